"""byoc.aws.clients.ClientMaker: clients made as botocore's own ``Session.create_client`` makes them
(endpoint, configuration, handlers), and one client per service and region shared by many contexts
(a fleet's clusters), each context's calls through a view of its own: signed with its credentials,
counted, retried, rate-limited and gated as its own; a call outside any context fails unsent."""

from __future__ import annotations

import os
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.credentials import Credentials

from byoc.aws.clients import ClientMaker
from byoc.aws.context import AwsContext
from byoc.aws.gate import CallGate
from byoc.aws.models import session_with_shared_models

REGION = "us-west-2"
CONFIG = Config(retries={"mode": "adaptive", "total_max_attempts": 11}, max_pool_connections=20,
                user_agent_extra="byoc/0.1")
EVENTS = ("needs-retry.ec2.DescribeVpcs", "before-parameter-build.s3.PutObject", "before-call.s3.PutObject",
          "before-sign.s3.PutObject", "after-call.ec2.DescribeVpcs", "request-created.iam.GetRole",
          "before-send.ec2.DescribeVpcs", "choose-signer.sts.AssumeRole")


def handlers(client: Any, event: str) -> list[str]:
    """The names of the handlers ``client`` runs for ``event`` (botocore's own emitter, in order)."""
    found = client.meta.events._emitter._handlers.prefix_search(event)
    return [getattr(h, "__qualname__", type(h).__name__) for h in found]


@pytest.mark.parametrize("service", ["ec2", "s3", "iam", "sts"])
def test_a_made_client_is_botocores_own(moto: None, monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    own = session_with_shared_models(botocore.session.Session()).create_client(
        service, region_name=REGION, config=CONFIG)
    made = ClientMaker().create_client(service, region=REGION, config=CONFIG)
    assert type(made).__name__ == type(own).__name__
    assert made.meta.endpoint_url == own.meta.endpoint_url == "http://127.0.0.1:5999"
    assert made.meta.region_name == own.meta.region_name == REGION
    for key in ("retries", "max_pool_connections", "user_agent_extra", "connect_timeout",
                "signature_version"):
        assert getattr(made.meta.config, key) == getattr(own.meta.config, key), key
    for event in EVENTS:
        assert handlers(made, event) == handlers(own, event), event
    assert made._request_signer._credentials.access_key == own._request_signer._credentials.access_key


def test_clients_of_a_service_share_the_class_but_sign_each_with_its_own_credentials(moto: None) -> None:
    maker = ClientMaker()
    one, two = (Credentials(f"AKIA{n}", "secret") for n in ("ONE", "TWO"))
    a, b = (maker.create_client("ec2", region=REGION, config=CONFIG, credentials=c) for c in (one, two))
    assert a is not b and type(a) is type(b) and a.meta.service_model is b.meta.service_model
    assert a.meta.events is not b.meta.events
    signed: dict[str, str] = {}

    def keep(request: Any = None, **_: Any) -> None:
        header = request.headers["Authorization"]
        text = header.decode() if isinstance(header, bytes) else str(header)
        signed[text.split("Credential=")[1].split("/")[0]] = "seen"

    for client in (a, b):
        client.meta.events.register("before-send.ec2", keep)
        client.describe_vpcs()
    assert set(signed) == {"AKIAONE", "AKIATWO"}
    # a handler registered on one client is not on the other
    a.meta.events.register("before-call.ec2.DescribeVpcs", keep, unique_id="only-a")
    assert "only-a" not in str(b.meta.events._emitter._unique_id_handlers)


def signer_of(request: Any) -> str:
    """The access key an attempt was signed with."""
    header = request.headers["Authorization"]
    text = header.decode() if isinstance(header, bytes) else str(header)
    return text.split("Credential=")[1].split("/")[0]


def contexts(maker: ClientMaker, *keys: str | None, hooks: Any = ()) -> list[AwsContext]:
    """A context per access key (None: byoc's own credentials), all making clients with ``maker``."""
    return [AwsContext(cluster=f"c{i}", region=REGION, client_maker=maker, event_hooks=hooks,
                       credentials=None if key is None else Credentials(key, "secret"))
            for i, key in enumerate(keys)]


def test_contexts_share_one_client_but_each_call_is_its_contexts_own(moto: None) -> None:
    signed: list[str] = []
    keep = ("before-send.ec2", lambda request=None, **_: signed.append(signer_of(request)))
    maker = ClientMaker()
    a, b, own = contexts(maker, "AKIAONE", "AKIATWO", None, hooks=[keep])
    views = [c.client("ec2") for c in (a, b, own)]
    assert len({id(v) for v in views}) == 3 and len({id(v.meta.events) for v in views}) == 1
    a.client("ec2").describe_vpcs()
    for page in b.client("ec2").get_paginator("describe_subnets").paginate():
        assert "Subnets" in page
    own.client("ec2").get_waiter("vpc_available").wait(VpcIds=[], WaiterConfig={"Delay": 0})
    # each signed with its own context's credentials; byoc's own (the environment's) for the third
    assert signed == ["AKIAONE", "AKIATWO", os.environ["AWS_ACCESS_KEY_ID"]]
    assert [dict(c.calls.counts) for c in (a, b, own)] == [
        {("ec2", "DescribeVpcs"): 1}, {("ec2", "DescribeSubnets"): 1}, {("ec2", "DescribeVpcs"): 1}]
    # another service or region is another client
    assert a.client("s3").meta.events is not a.client("ec2").meta.events
    other = AwsContext(cluster="x", region="eu-west-1", client_maker=maker, event_hooks=[keep])
    assert other.client("ec2").meta.events is not a.client("ec2").meta.events


def test_a_shared_client_called_outside_any_context_sends_nothing(moto: None) -> None:
    sent: list[str] = []
    keep = ("before-send.ec2", lambda request=None, **_: sent.append(signer_of(request)))
    (a,) = contexts(ClientMaker(), "AKIAONE", hooks=[keep])
    view = a.client("ec2")
    shared = object.__new__(type(view))
    shared.__dict__.update({k: v for k, v in view.__dict__.items() if k != "_make_api_call"})
    with pytest.raises(RuntimeError, match="outside any cluster's context"):
        shared.describe_vpcs()
    assert sent == [] and not a.calls.counts
    view.describe_vpcs()
    assert sent == ["AKIAONE"]


def test_a_throttled_context_slows_its_own_calls_not_the_others(moto: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's adaptive mode keeps a client-side rate limiter per client; a shared client's is the
    calling context's own: AWS throttles an account, and one account's throttling must not slow the
    calls a fleet makes into the others."""
    from botocore.awsrequest import AWSResponse

    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda s: None)  # the SDK's backoff
    throttled: list[str] = []

    def throttle(request: Any = None, **_: Any) -> Any:
        if signer_of(request) == "AKIAONE" and not throttled:
            throttled.append("once")
            return AWSResponse(request.url, 400, {}, _Raw(THROTTLED))
        return None

    a, b = contexts(ClientMaker(), "AKIAONE", "AKIATWO", hooks=[("before-send.ec2", throttle)])
    a.client("ec2").describe_vpcs()  # throttled once, then answered
    b.client("ec2").describe_vpcs()
    assert throttled == ["once"] and a.calls.counts[("ec2", "DescribeVpcs")] == 1
    assert a.rate_limiter("ec2")._enabled and not b.rate_limiter("ec2")._enabled


THROTTLED = (b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow down</Message>"
             b"</Error></Errors><RequestID>x</RequestID></Response>")


class _Raw:
    """The raw body of an injected answer, as urllib3 gives it to botocore."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


class Counting(CallGate):
    """A gate that counts the permits it is asked for."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.asked = 0

    def acquire(self, **kwargs: Any) -> None:
        self.asked += 1
        super().acquire(**kwargs)


def test_each_context_passes_its_calls_through_its_own_gate(moto: None) -> None:
    a, b, c = contexts(ClientMaker(), "AKIAONE", "AKIATWO", "AKIATHREE")
    a.gate, b.gate = Counting(1), Counting(1)
    a.client("ec2").describe_vpcs()
    for _ in range(2):
        b.client("ec2").describe_vpcs()
    c.client("ec2").describe_vpcs()  # no gate: passes through none
    assert (a.gate.asked, b.gate.asked) == (1, 2)
    assert a.gate.peak == b.gate.peak == 1 and a.gate.in_flight == b.gate.in_flight == 0


def test_closing_a_context_ends_its_threads_and_connections_not_a_shared_clients(
        moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from botocore.httpsession import URLLib3Session

    closed: list[Any] = []
    monkeypatch.setattr(URLLib3Session, "close", lambda self: closed.append(self))

    def helpers() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("byoc-together"))

    before = helpers()
    own = AwsContext(cluster="own", region=REGION)
    own.together(lambda: own.client("ec2").describe_vpcs(), lambda: own.client("iam").list_roles())
    sessions = [own.client(s)._endpoint.http_session for s in ("ec2", "iam")]
    assert helpers() > before
    own.close()
    deadline = time.monotonic() + 5
    while helpers() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert helpers() == before and sorted(map(id, closed)) == sorted(map(id, sessions))
    # a view's context lets go of its view only: the shared client still serves the others
    a, b = contexts(ClientMaker(), "AKIAONE", "AKIATWO")
    a.client("ec2").describe_vpcs()
    a.close()
    assert len(closed) == 2 and "Vpcs" in b.client("ec2").describe_vpcs()
