"""What every boto3 client byoc makes carries: the call recorder (logs and counts every AWS call,
never bodies), the quieting of the SDK's own logs, and the SDK's ``needs-retry`` handler (no retry
quota, no blind repeat of a create, unreachable endpoints remembered).
"""

from __future__ import annotations

import datetime
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from byoc.aws.errors import (
    MAYBE_DONE_CODES,
    THROTTLING_CODES,
    UNREACHABLE_ERRORS,
    endpoint_of,
    why_unreachable,
)


def repeats_create(name: str) -> bool:
    """Whether a call makes a new resource each time it runs (so it must not be repeated blindly)."""
    return name.startswith(("Create", "Allocate", "Run")) and name != "CreateTags"


def no_blind_repeat(
    response: Any = None, operation: Any = None, caught_exception: Any = None, **kwargs: Any
) -> bool | None:
    """``needs-retry`` hook: after a 5xx or a dropped connection, AWS may have created the thing;
    the SDK must not repeat such a create (it would make a second one). The call fails instead,
    and the executor looks for the resource by tag before creating again. Throttling is repeated."""
    if operation is None or not repeats_create(operation.name):
        return None
    if caught_exception is not None:
        return False if type(caught_exception).__name__ in MAYBE_DONE_CODES else None
    if isinstance(response, tuple) and len(response) == 2:
        status = getattr(response[0], "status_code", 0)
        code = str((response[1] or {}).get("Error", {}).get("Code", ""))
        if status >= 500 and code not in THROTTLING_CODES:
            return False
    return None


#: How often a call is tried in all when AWS throttles it or answers 5xx (botocore's backoff between).
MAX_ATTEMPTS = 11
#: How often a call is tried in all when its endpoint cannot be reached (connection refused, host
#: name not found, no answer to connect), and the wait before the second attempt (doubled after):
#: a wrong AWS_ENDPOINT_URL or a network that is down is reported within seconds, not minutes.
CONNECT_ATTEMPTS = 3
CONNECT_BACKOFF = 0.5
#: How long an endpoint found unreachable stays so: calls to it fail at once meanwhile (seconds).
UNREACHABLE_FOR = 60.0


CALL_LOG = "byoc.aws"


class CallRecorder:
    """botocore event hooks that log every AWS call — service, action, duration, retries — to the
    ``byoc.aws`` logger (never parameters or bodies), and count calls by (service, action)."""

    def __init__(self) -> None:
        import collections

        self.log = logging.getLogger(CALL_LOG)
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()

    def register(self, client: Any) -> None:
        events = client.meta.events
        events.register_first("before-call", self._before)
        events.register_first("after-call", self._after)
        events.register_first("after-call-error", self._after_error)

    @staticmethod
    def register_shared(client: Any, owner: Callable[[], CallRecorder]) -> None:
        """The same hooks on a client shared by several contexts: each call is ``owner()``'s (the
        recorder of the context making it)."""
        events = client.meta.events
        events.register_first("before-call", lambda **kw: owner()._before(**kw))
        events.register_first("after-call", lambda **kw: owner()._after(**kw))
        events.register_first("after-call-error", lambda **kw: owner()._after_error(**kw))

    @staticmethod
    def _name(model: Any) -> tuple[str, str]:
        return model.service_model.endpoint_prefix, model.name

    def _before(self, model: Any = None, context: Any = None, **kwargs: Any) -> None:
        if context is not None:
            context["byoc_started"] = time.monotonic()
        if model is not None:
            with self._lock:
                self.counts[self._name(model)] += 1

    def _after(
        self, model: Any = None, context: Any = None, http_response: Any = None, **kwargs: Any
    ) -> None:
        if model is None or not self.log.isEnabledFor(logging.INFO):
            return
        started = (context or {}).get("byoc_started")
        took = f" {time.monotonic() - started:.3f}s" if started else ""
        status = getattr(http_response, "status_code", "")
        service, action = self._name(model)
        self.log.info("aws %s %s%s %s", service, action, took, status)

    def _after_error(self, model: Any = None, context: Any = None, exception: Any = None, **kw: Any) -> None:
        if model is not None:
            service, action = self._name(model)
            self.log.info("aws %s %s failed: %s", service, action, type(exception).__name__)


class SdkRetries:
    """The ``needs-retry`` handler of every client byoc makes, in place of botocore's standard one,
    whose error classification, attempt limit and backoff it keeps. What it changes:

    - No retry quota. botocore's standard and adaptive modes keep a token bucket per client (500
      tokens; a 5xx retry takes 14, a throttled one 5, a success gives 1 back) that sustained faults
      drain in a long run; once dry, every error is raised at its first occurrence
      (``RetryQuotaReached``). Here retries are bounded by ``MAX_ATTEMPTS`` and the backoff only
      (the adaptive mode's client-side rate limiter still slows a throttled client).
    - A create answered 5xx or cut off is not repeated (``no_blind_repeat``).
    - An endpoint that cannot be reached is tried ``CONNECT_ATTEMPTS`` times, then remembered for
      ``UNREACHABLE_FOR`` seconds: calls to it meanwhile fail at once (``gate``), in every thread,
      so a wrong AWS_ENDPOINT_URL or a network that is down is reported within seconds.
    - Every retry is logged to ``byoc.aws`` as it happens (``byoc -v``).
    """

    def __init__(self, log: Any) -> None:
        self.log = log
        #: endpoint (``scheme://host:port``) → the error that showed it cannot be reached, and when
        self.unreachable: dict[str, tuple[BaseException, float]] = {}
        self._lock = threading.Lock()

    def register(self, client: Any) -> None:
        """Put this handler in place of botocore's (same event, same unique id) on ``client``."""
        _register_retries(client, self.needs_retry, self.gate)

    @staticmethod
    def register_shared(client: Any, owner: Callable[[], SdkRetries]) -> None:
        """The same on a client shared by several contexts: each call's handler is ``owner()``'s (that
        of the context making it)."""
        def retry(*args: Any, **kw: Any) -> float | None:
            return owner().needs_retry(*args, **kw)

        def gate(**kw: Any) -> None:
            owner().gate(**kw)
        _register_retries(client, retry, gate)

    def gate(self, request: Any = None, **kwargs: Any) -> None:
        """``before-send``: a call to an endpoint already found unreachable fails at once."""
        if not self.unreachable or request is None:
            return
        found, since = self.unreachable.get(endpoint_of(str(request.url)), (None, 0.0))
        if found is not None and time.monotonic() - since < UNREACHABLE_FOR:
            err = type(found)(**{**getattr(found, "kwargs", {}), "endpoint_url": request.url})
            err.byoc_gated = True  # type: ignore[attr-defined]
            raise err

    def needs_retry(
        self, policy: Any, adapter: Any, response: Any = None, attempts: int = 1, operation: Any = None,
        caught_exception: BaseException | None = None, request_dict: Any = None, **kwargs: Any,
    ) -> float | None:
        """The delay before the next attempt, or None: do not repeat the call."""
        if operation is None:
            return None
        if caught_exception is None and attempts < MAX_ATTEMPTS and _succeeded(response, operation):
            return None  # what botocore's checks would conclude, without building their context
        what = (operation.service_model.endpoint_prefix, operation.name, attempts)
        if caught_exception is not None and type(caught_exception).__name__ in UNREACHABLE_ERRORS:
            return self._unreachable(what, caught_exception)
        answer = _answer(response, caught_exception)
        if no_blind_repeat(response, operation, caught_exception) is False:
            self.log.info("aws %s %s attempt %d answered %s; not repeated (AWS may have done it)",
                          *what, answer)
            return None
        context = adapter.create_retry_context(
            response=response, attempts=attempts, operation=operation, caught_exception=caught_exception,
            request_dict=request_dict or {"context": {}})
        if not policy.should_retry(context):
            adapter.adapt_retry_response_from_context(context)
            if answer and attempts >= MAX_ATTEMPTS:
                self.log.info("aws %s %s attempt %d answered %s; giving up", *what, answer)
            return None
        delay = float(policy.compute_retry_delay(context))
        adapter.adapt_retry_response_from_context(context)
        self.log.info("aws %s %s attempt %d answered %s; trying again in %.2fs", *what, answer, delay)
        return delay

    def _unreachable(self, what: tuple[str, str, int], exc: BaseException) -> float | None:
        endpoint = endpoint_of(str(getattr(exc, "kwargs", {}).get("endpoint_url") or ""))
        if getattr(exc, "byoc_gated", False):  # known already (the gate refused it): no new attempt
            return None
        why = why_unreachable(exc)
        if what[2] >= CONNECT_ATTEMPTS:
            with self._lock:
                self.unreachable[endpoint] = (exc, time.monotonic())
            self.log.info("aws %s %s attempt %d: cannot reach %s (%s); giving up", *what, endpoint, why)
            return None
        delay = float(CONNECT_BACKOFF * 2 ** (what[2] - 1) * (0.75 + random.random() / 4))
        self.log.info("aws %s %s attempt %d: cannot reach %s (%s); trying again in %.2fs",
                      *what, endpoint, why, delay)
        return delay


def _register_retries(client: Any, needs_retry: Callable[..., float | None],
                      gate: Callable[..., None]) -> None:
    """``needs_retry`` (with the standard policy's checks and backoff) in place of botocore's retry
    handler on ``client`` (same event, same unique id), and ``gate`` first before each send."""
    import functools

    from botocore.retries import standard

    service_id = client.meta.service_model.service_id.hyphenize()
    events = client.meta.events
    unique_id = f"retry-config-{service_id}"
    events.unregister(f"needs-retry.{service_id}", unique_id=unique_id)
    adapter = standard.RetryEventAdapter()
    policy = standard.RetryPolicy(
        retry_checker=standard.StandardRetryConditions(max_attempts=MAX_ATTEMPTS),
        retry_backoff=standard.ExponentialBackoff(
            service_name=service_id, throttling_detector=standard.ThrottlingErrorDetector(adapter)),
    )
    events.register(f"needs-retry.{service_id}", functools.partial(needs_retry, policy, adapter),
                    unique_id=unique_id)
    events.register_first(f"before-send.{service_id}", gate)


def _succeeded(response: Any, operation: Any) -> bool:
    """Whether an answer is a plain success that no retry condition of botocore's standard policy
    (error codes, 5xx/429 statuses, modeled retryable errors) can match: a status below 400 and no
    error in what was parsed. (DynamoDB's checksum check looks at successes too: not one of these.)"""
    if not isinstance(response, tuple) or len(response) != 2:
        return False
    status = getattr(response[0], "status_code", None)
    parsed = response[1]
    return (isinstance(status, int) and status < 400 and isinstance(parsed, dict) and "Error" not in parsed
            and operation.service_model.endpoint_prefix != "dynamodb")


def _answer(response: Any, caught_exception: BaseException | None) -> str:
    """The error code (or exception name, or HTTP status) of a failed attempt; "" for a success."""
    if caught_exception is not None:
        return type(caught_exception).__name__
    if isinstance(response, tuple) and len(response) == 2:
        status = getattr(response[0], "status_code", 0)
        parsed = response[1] if isinstance(response[1], dict) else {}
        code = str(parsed.get("Error", {}).get("Code", ""))
        if code or status >= 400:
            return code or str(status)
    return ""


#: an ISO 8601 time as AWS writes it, in UTC: ``2026-12-02T09:00:00.000Z`` (or ``+00:00``)
_ISO_UTC = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?)(Z|\+00:00)")


class TimestampParser:
    """The SDK's timestamp parser (``set_parser_defaults(timestamp_parser=…)``), fast for what AWS
    sends most: botocore parses every time in an answer with dateutil's general parser, about a
    third of the CPU of a describe that lists 30 volumes. An ISO time in UTC is read by
    ``datetime.fromisoformat`` and given the very time zone botocore's parser gave the first such
    time of the same suffix (it depends on the machine's local zone); anything else, and that
    first time, goes to botocore's parser: the answers are the same datetimes either way."""

    def __init__(self) -> None:
        from botocore.utils import parse_timestamp

        self.slow = parse_timestamp
        self._zones: dict[str, Any] = {}

    def __call__(self, value: Any) -> Any:
        m = _ISO_UTC.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            return self.slow(value)
        zone = self._zones.get(m.group(2))
        if zone is None:
            parsed = self.slow(value)
            if parsed.replace(tzinfo=None) == datetime.datetime.fromisoformat(m.group(1)):
                self._zones[m.group(2)] = parsed.tzinfo
            return parsed
        return datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=zone)


#: what a form-encoded value keeps as it is (urllib.parse's always-safe characters)
_FORM_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
#: every other ASCII character and its escape, "%" first (no escape is escaped again) and the space,
#: which becomes "+", last (after "+" itself became "%2B")
_FORM_ESCAPES = tuple(
    (c, "+" if c == " " else f"%{ord(c):02X}")
    for c in ["%", *(chr(b) for b in range(128) if chr(b) not in _FORM_SAFE + "% "), " "]
)


def form_value(text: str) -> str:
    """``text`` form-encoded exactly as the SDK encodes a Query body's value
    (``urllib.parse.quote_plus(text.encode("utf-8"))``), fast for long ASCII text: urllib escapes
    byte by byte in Python once a value holds one character to escape (an instance's 20 kB of
    base64 user data: about 1 ms, and the SDK encodes a body twice, to sign it and to send it)."""
    if not text.isascii():
        from urllib.parse import quote_plus

        return quote_plus(text.encode("utf-8"))
    if not text.strip(_FORM_SAFE):
        return text
    for char, escape in _FORM_ESCAPES:
        if char in text:
            text = text.replace(char, escape)
    return text


def encode_form_body(request: Any = None, **kwargs: Any) -> None:
    """``before-sign`` of a Query-protocol client (EC2, CloudWatch, ELBv2, IAM …): its body, still
    the parameters' dict, encoded once here into the very text the SDK would make
    (``urlencode(…, doseq=True)``), which the signature and the request sent then both use. A value
    of another type than text or number (none in these protocols) leaves the body to the SDK."""
    data = getattr(request, "data", None)
    if not isinstance(data, dict):
        return
    parts = []
    for key, value in data.items():
        if isinstance(value, (int, float)):
            value = str(value)  # what urlencode makes of a number (and of a bool)
        if not isinstance(key, str) or not isinstance(value, str):
            return
        parts.append(form_value(key) + "=" + form_value(value))
    request.data = "&".join(parts)


#: the protocols whose request bodies the SDK form-encodes from a dict
FORM_PROTOCOLS = frozenset({"query", "ec2"})


def register_form_encoding(client: Any) -> None:
    """Encode the body of each of ``client``'s calls once, fast (``encode_form_body``), when its
    service speaks a Query protocol; other clients are left as they are."""
    model = client.meta.service_model
    if model.protocol in FORM_PROTOCOLS:
        client.meta.events.register(f"before-sign.{model.service_id.hyphenize()}", encode_form_body,
                                    unique_id="byoc-form-body")


def quiet_sdk_logs() -> None:
    """Keep botocore's DEBUG records from ever being created: they carry request and response
    bodies, i.e. the admin password on CreateSecret. byoc logs its own calls (without bodies)."""
    import logging

    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
