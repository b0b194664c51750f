"""byoc.aws.clients.ClientMaker: clients of many contexts from one botocore session, made as botocore's
own ``Session.create_client`` makes them (endpoint, configuration, handlers), each signing with the
credentials it was made with, sharing only the service model and the client class."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.credentials import Credentials

from byoc.aws.clients import ClientMaker
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
