"""Fault injection through botocore's ``before-send`` event: a fraction of AWS calls (seeded) is
answered with the protocol's own throttling error or a 5xx, before it reaches moto.

The answer is an HTTP response, so it goes through botocore's retry handler exactly like one from
AWS would (unlike an exception raised in a ``before-call`` hook, which skips retries). ``script``
answers chosen operations with chosen error codes (AWS's eventual-consistency errors) instead.

botocore runs every ``before-send`` handler, moto's too, and uses the first answer. A refused call
(throttled, 503) must not reach moto, so the hook points the request at an address moto does not
serve, and puts it back when botocore sends the same request again (the retry). A *lost* answer
(``lost`` > 0: a 500 after AWS did the work) lets moto act and then answers 500 anyway; ``lose``
does so for the first calls of chosen operations.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

#: services whose REST protocol answers errors in JSON (no X-Amz-Target header to tell)
REST_JSON = frozenset({"lambda"})


def error_response(
    service: str, headers: Mapping[str, Any], status: int, code: str, message: str
) -> AWSResponse:
    """An error answer in the wire format of the service's protocol."""
    if "Smithy-Protocol" in headers:  # CloudWatch's CBOR: a bare 5xx is understood by every parser
        return AWSResponse("https://fault", 503 if status < 500 else status, {}, MockRawResponse(b""))
    if "X-Amz-Target" in headers or service in REST_JSON:  # JSON protocols
        body = json.dumps({"__type": code, "message": message})
        return AWSResponse("https://fault", status, {"x-amzn-ErrorType": code}, MockRawResponse(body))
    if service == "ec2":
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                "<RequestID>fault</RequestID></Response>")
    elif service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    else:  # query protocols
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                "</Error><RequestId>fault</RequestId></ErrorResponse>")
    return AWSResponse("https://fault", status, {}, MockRawResponse(body))


#: (status, code) of the transient faults, per kind; botocore retries every one of them
THROTTLE = {"ec2": (503, "RequestLimitExceeded"), "s3": (503, "SlowDown"),
            "lambda": (429, "TooManyRequestsException")}
TRANSIENT = [(500, "InternalError"), (503, "ServiceUnavailable")]


class FaultInjector:
    """Answer a ``rate`` fraction of calls with a transient fault, plus a burst of ``burst`` faults
    in a row every ``burst_every`` calls; or ``script``: {operation: [code or (code, message)…]}
    answered in order; ``lost``: a fraction of calls done by moto but answered 500; ``lose``:
    {operation: n}, its first n calls done by moto but answered 500."""

    def __init__(self, rate: float = 0.0, seed: int = 0, burst_every: int = 0, burst: int = 0,
                 script: Mapping[str, list[str | tuple[str, str]]] | None = None, lost: float = 0.0,
                 lose: Mapping[str, int] | None = None) -> None:
        self.rate = rate
        self.lost = lost
        self.lose = dict(lose or {})
        self.rng = random.Random(seed)
        self.burst_every, self.burst = burst_every, burst
        self.script = {op: list(codes) for op, codes in (script or {}).items()}
        self.calls = 0
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._burst_left = 0

    def hook(self, request: Any = None, event_name: str = "", **kwargs: Any) -> AWSResponse | None:
        _, service, op = event_name.split(".", 2)
        url = getattr(request, "byoc_url", None)
        if url is not None:  # the retry of a refused call: to moto this time (unless refused again)
            request.url = url
            del request.byoc_url
        with self._lock:
            self.calls += 1
            if self.lose.get(op):
                self.lose[op] -= 1
                self.injected[f"{op}:lost"] += 1
                return error_response(service, request.headers, 500, "InternalError", "injected after")
            if self.lost and self.rng.random() < self.lost:
                self.injected["lost:InternalError"] += 1
                return error_response(service, request.headers, 500, "InternalError", "injected after")
            answer = self._fault(service, op, request.headers)
        if answer is not None:
            request.byoc_url, request.url = request.url, "http://refused.invalid/"
        return answer

    def _fault(self, service: str, op: str, headers: Any) -> AWSResponse | None:
        if self.script.get(op):
            entry = self.script[op].pop(0)
            code, message = entry if isinstance(entry, tuple) else (entry, f"injected {entry}")
            self.injected[f"{op}:{code}"] += 1
            return error_response(service, headers, 400, code, message)
        if self.burst_every and self.calls % self.burst_every == 0:
            self._burst_left = self.burst
        if self._burst_left:
            self._burst_left -= 1
        elif not self.rng.random() < self.rate:
            return None
        if self.rng.random() < 0.5:
            status, code = THROTTLE.get(service, (400, "Throttling"))
            if "X-Amz-Target" in headers:
                code = "ThrottlingException"
        else:
            status, code = self.rng.choice(TRANSIENT)
        self.injected[code] += 1
        return error_response(service, headers, status, code, "injected fault")

    @property
    def total(self) -> int:
        return sum(self.injected.values())


def as_500(hook: Any) -> Any:
    """``hook`` (a ``before-send`` hook such as ``FaultInjector.hook``) with every injected answer
    given HTTP status 500, as AWS's internal errors come."""

    def hook_500(**kw: Any) -> Any:
        resp = hook(**kw)
        if resp is not None:
            resp.status_code = 500
        return resp

    return hook_500
