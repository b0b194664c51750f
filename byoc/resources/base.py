"""The contract every AWS resource kind implements, and the AWS context the kinds share.

One subclass of ``ResourceType`` per AWS kind, in its own module, registered in
``byoc.resources.REGISTRY``. boto3 is used only in these modules and the operations modules.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import contextvars
import random
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

from byoc.errors import CloudError
from byoc.model import DEFAULT_PARALLELISM, Live

T = TypeVar("T")

#: What a plan expects to exist, for the kinds that can read it by name instead of listing:
#: kind → name (or id) → the names of its parts read by name too (an IAM role's inline policies).
Known = Mapping[str, Mapping[str, frozenset[str]]]

CLUSTER_TAG = "byoc:cluster"
ADDRESS_TAG = "byoc:address"

#: Error codes that mean "the thing is already gone" across the services byoc uses.
NOT_FOUND_CODES = frozenset(
    {
        "InvalidVpcID.NotFound",
        "InvalidSubnetID.NotFound",
        "InvalidInternetGatewayID.NotFound",
        "InvalidAllocationID.NotFound",
        "InvalidAddress.NotFound",
        "NatGatewayNotFound",
        "InvalidNatGatewayID.NotFound",
        "InvalidRouteTableID.NotFound",
        "InvalidAssociationID.NotFound",
        "InvalidRoute.NotFound",
        "InvalidGroup.NotFound",
        "InvalidPermission.NotFound",
        "InvalidInstanceID.NotFound",
        "InvalidVolume.NotFound",
        "InvalidSnapshot.NotFound",
        "Gateway.NotAttached",
        "NoSuchEntity",
        "NoSuchBucket",
        "ResourceNotFoundException",
        "LoadBalancerNotFound",
        "TargetGroupNotFound",
        "ListenerNotFound",
        "ResourceNotFound",
        "NotFound",
    }
)

#: AWS's eventual-consistency errors: the same call succeeds once AWS catches up.
EVENTUAL_CODES = frozenset(
    {
        "DependencyViolation",
        "InvalidGroup.InUse",
        "InvalidNetworkInterfaceID.NotFound",
        "AuthFailure",
        "InvalidIPAddress.InUse",
        "IncorrectState",
        "ResourceInUse",
        "VolumeInUse",
    }
)

#: Answers to a create whose work AWS may have done anyway (a 5xx, a dropped connection), and the
#: answers of a repeated create that did happen: for these, look for the resource by tag.
MAYBE_DONE_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "EntityAlreadyExists",
        "DuplicateTargetGroupName",
        "DuplicateLoadBalancerName",
        "InvalidSubnet.Conflict",
        "InvalidGroup.Duplicate",
        "ResourceAlreadyExistsException",
        "ResourceExistsException",
        "BucketAlreadyOwnedByYou",
    }
)

#: Throttling answers: AWS did nothing, so the SDK may always repeat the call.
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown", "TooManyRequestsException",
     "RequestThrottled", "RequestThrottledException", "ThrottledException", "PriorRequestNotComplete"}
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

#: How often ``AwsContext.mutate`` makes a sub-call whose answers say it may not have happened.
SUBCALL_ATTEMPTS = 5

#: The botocore errors that mean the request never reached AWS: its endpoint cannot be reached.
UNREACHABLE_ERRORS = frozenset({"EndpointConnectionError", "ConnectTimeoutError", "ProxyConnectionError"})

#: Answers that mean the credentials are missing or not valid: a problem of the run, not of a resource.
CREDENTIAL_CODES = frozenset({
    "NoCredentialsError", "PartialCredentialsError", "ExpiredToken", "ExpiredTokenException",
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidToken",
    "RequestExpired", "InvalidAccessKeyId", "TokenRefreshRequired", "UnauthorizedSSOTokenError",
    "SSOTokenLoadError", "CredentialRetrievalError",
})


def endpoint_of(url: str) -> str:
    """``scheme://host[:port]`` of a request URL: what a person types as AWS_ENDPOINT_URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (a botocore error, or the CloudError made of one) says AWS's endpoint could
    not be reached at all."""
    name = exc.code if isinstance(exc, CloudError) else type(exc).__name__
    return name in UNREACHABLE_ERRORS


def is_run_problem(exc: BaseException) -> bool:
    """Whether ``exc`` is a problem of the whole run (no credentials, bad credentials, AWS not
    reachable) rather than of one resource or kind: reported once, without a resource's name."""
    code = exc.code if isinstance(exc, CloudError) else (error_code(exc) or type(exc).__name__)
    # AuthFailure: EC2's answer to credentials it cannot validate (also an eventual-consistency
    # answer of some writes, never of the reads discovery makes)
    return code in UNREACHABLE_ERRORS or code in CREDENTIAL_CODES or code == "AuthFailure"


def why_unreachable(exc: BaseException) -> str:
    """In a few words, why the endpoint could not be reached: "connection refused", "host name not
    found", "no answer within the connect timeout" …"""
    if type(exc).__name__ == "ConnectTimeoutError":
        return "no answer within the connect timeout"
    if type(exc).__name__ == "ProxyConnectionError":
        return "the proxy cannot be reached"
    cause = getattr(exc, "kwargs", {}).get("error")
    text = f"{type(cause).__name__} {cause} {exc}".lower()
    if any(s in text for s in ("nameresolution", "resolve", "name or service not known", "nodename nor",
                               "getaddrinfo", "gaierror", "no address associated")):
        return "host name not found"
    if "refused" in text:
        return "connection refused"
    if "timed out" in text:
        return "connection timed out"
    if "unreachable" in text:
        return "network unreachable"
    return "no connection"


def unreachable_message(exc: BaseException) -> str:
    url = endpoint_of(str(getattr(exc, "kwargs", {}).get("endpoint_url") or ""))
    return (f"cannot reach AWS at {url or 'its endpoint'} ({why_unreachable(exc)}): check AWS_ENDPOINT_URL, "
            "the network (proxy, VPN, firewall) and the region (aws.region, AWS_REGION)")


def maybe_done(exc: BaseException) -> bool:
    """Whether a failed create may have made its resource anyway (see MAYBE_DONE_CODES)."""
    code = error_code(exc) or getattr(exc, "code", None) or type(exc).__name__
    return code in MAYBE_DONE_CODES


#: What to do next, for the AWS errors users meet most.
HINTS = {
    "DependencyViolation": (
        "Something still uses it and AWS kept refusing for the whole retry period: often a network "
        "interface left by a load balancer, NAT gateway or instance, or a resource made outside byoc "
        "in the same VPC. Find it (EC2 console → Network Interfaces, filtered by the VPC), remove it, "
        "and run the command again"
    ),
    "AccessDenied": (
        "The AWS credentials in use may not do this: check the identity (aws sts get-caller-identity) "
        "and its IAM permissions"
    ),
    "RequestLimitExceeded": "AWS is throttling this account; run again later or lower --parallelism",
    "AddressLimitExceeded": "The account's Elastic IP quota is used up: release unused EIPs or ask AWS "
                            "for more, or use network.nat_gateway: single",
    "NatGatewayLimitExceeded": "The NAT gateway quota of an AZ is used up: use network.nat_gateway: "
                               "single, or ask AWS for more",
    "VpcLimitExceeded": "The region's VPC quota is used up: delete unused VPCs or ask AWS for more",
}


def error_code(exc: BaseException) -> str | None:
    """AWS's error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def is_not_found(exc: BaseException) -> bool:
    code = error_code(exc)
    return code is not None and (code in NOT_FOUND_CODES or code.endswith(".NotFound"))


def unless_gone(call: Callable[[], T]) -> T | None:
    """``call()``; None when AWS says the thing is not there (already deleted counts as success)."""
    try:
        return call()
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def to_cloud_error(exc: BaseException, address: str | None = None, aws_id: str | None = None) -> CloudError:
    """Wrap a botocore error (or any other) into a CloudError a person can read."""
    if isinstance(exc, CloudError):
        if address and not exc.address:
            exc.address = address
        if aws_id and not exc.aws_id:
            exc.aws_id = aws_id
        return exc
    code = error_code(exc)
    if code is not None:
        msg = getattr(exc, "response", {}).get("Error", {}).get("Message") or str(exc)
        op = getattr(exc, "operation_name", None)
        text = f"{op} failed: {msg}" if op else msg
        hint = HINTS.get(code)
        if hint is None and code in {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}:
            hint = HINTS["AccessDenied"]
        if hint is None and (code in CREDENTIAL_CODES or (code == "AuthFailure" and "credentials" in msg)):
            hint = ("The AWS credentials in use are not valid (expired, revoked or mistyped): renew them "
                    "(`aws sso login`, `aws configure`) or choose others with AWS_PROFILE")
        if hint:
            text = f"{text.rstrip('.')}. {hint}"
        return CloudError(text, address=address, aws_id=aws_id, code=code)
    name = type(exc).__name__
    if name in {"NoCredentialsError", "PartialCredentialsError"}:
        return CloudError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or point AWS_ENDPOINT_URL at the local sandbox (see README)",
            address=address,
            aws_id=aws_id,
            code=name,
        )
    if name in UNREACHABLE_ERRORS:
        return CloudError(unreachable_message(exc), address=address, aws_id=aws_id, code=name)
    if name in {"ReadTimeoutError", "ConnectionClosedError"}:
        return CloudError(f"AWS did not answer: {exc}", address=address, aws_id=aws_id, code=name)
    return CloudError(f"{name}: {exc}", address=address, aws_id=aws_id, code=name)


CALL_LOG = "byoc.aws"


class CallRecorder:
    """botocore event hooks that log every AWS call — service, action, duration, retries — to the
    ``byoc.aws`` logger (never parameters or bodies), and count calls by (service, action)."""

    def __init__(self) -> None:
        import collections
        import logging

        self.log = logging.getLogger(CALL_LOG)
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()

    def register(self, client: Any) -> None:
        events = client.meta.events
        events.register_first("before-call", self._before)
        events.register_first("after-call", self._after)
        events.register_first("after-call-error", self._after_error)

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
        if model is None:
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
        events.register(f"needs-retry.{service_id}", functools.partial(self.needs_retry, policy, adapter),
                        unique_id=unique_id)
        events.register_first(f"before-send.{service_id}", self.gate)

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


def quiet_sdk_logs() -> None:
    """Keep botocore's DEBUG records from ever being created: they carry request and response
    bodies, i.e. the admin password on CreateSecret. byoc logs its own calls (without bodies)."""
    import logging

    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


class AwsContext:
    """What the kinds share during one run: cluster identity, clients, and the retry policy.

    ``sleep`` and ``poll_delay`` are injectable so tests do not wait; ``client_factory`` is the
    seam through which tests may hand in their own boto3 clients.
    """

    def __init__(
        self,
        *,
        cluster: str,
        region: str,
        parallelism: int = DEFAULT_PARALLELISM,
        sleep: Callable[[float], None] = time.sleep,
        poll_delay: float = 5.0,
        retry_timeout: float = 600.0,
        client_factory: Callable[[str], Any] | None = None,
        event_hooks: Iterable[tuple[str, Callable[..., Any]]] = (),
    ) -> None:
        self.cluster = cluster
        self.region = region
        self.parallelism = parallelism
        self.sleep = sleep
        self.poll_delay = poll_delay
        self.retry_timeout = retry_timeout
        self._client_factory = client_factory
        self._event_hooks = list(event_hooks)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._session: Any = None
        self._memo: dict[tuple[str, str], Any] = {}
        self._memo_locks: dict[tuple[str, str], threading.Lock] = {}
        self._passes = 0
        self._once: dict[tuple[str, str], Any] = {}
        self._once_locks: dict[tuple[str, str], threading.Lock] = {}
        #: salts idempotency tokens: retries within a run reuse a token, a later run never
        #: receives a resource an earlier run created and deleted under the same token
        self.run_id = uuid.uuid4().hex
        #: every AWS call of this context, logged (``byoc -v``) and counted
        self.calls = CallRecorder()
        #: the SDK's retry policy for this context's clients (no quota; unreachable endpoints remembered)
        self.sdk_retries = SdkRetries(self.calls.log)
        #: the names the engine expects (the spec's and the state's; see ``expected``), set before
        #: a plain plan's discovery; None — unknown, or a full audit — makes kinds list everything
        self.known: Known | None = None

    def expected(self, kind: str) -> Mapping[str, frozenset[str]] | None:
        """The names of ``kind`` the engine expects to exist (name → part names), for kinds that
        read by name; None when not known, and the kind must list what exists."""
        return None if self.known is None else self.known.get(kind, {})

    # -- clients -------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (created once, shared by all threads).

        Made clients are handed out without the lock: making one takes a few hundred ms (boto3
        loads the service model), and other threads must not wait for it to use theirs."""
        client = self._clients.get(service)
        if client is not None:
            return client
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make_client(service)
            return self._clients[service]

    def _make_client(self, service: str) -> Any:
        if self._client_factory is not None:
            return self._client_factory(service)
        import boto3
        from botocore.config import Config

        if self._session is None:
            quiet_sdk_logs()
            self._session = boto3.session.Session(region_name=self.region)
        config = Config(
            retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
            max_pool_connections=max(10, self.parallelism * 2),
            connect_timeout=10,
            read_timeout=60,
            user_agent_extra="byoc/0.1",
        )
        client = self._session.client(service, config=config)
        self.sdk_retries.register(client)
        self.calls.register(client)
        for event, hook in self._event_hooks:
            client.meta.events.register_first(event, hook)
        return client

    # -- memoised reads (one describe per kind per discovery pass) -----------------------
    @contextlib.contextmanager
    def discovery_pass(self) -> Iterator[None]:
        """While open, ``memo`` shares describe results between kinds; closed, it reads afresh."""
        with self._lock:
            if not self._passes:
                self._memo.clear()
            self._passes += 1
        try:
            yield
        finally:
            with self._lock:
                self._passes -= 1
                if not self._passes:
                    self._memo.clear()
                    self._memo_locks.clear()

    def memo(self, service: str, key: str, fetch: Callable[[], T]) -> T:
        """``fetch()`` once per (service, key) within a discovery pass — also when several kinds
        ask at the same moment from their threads; outside a pass, every time."""
        with self._lock:
            shared = self._passes > 0
        if not shared:
            return fetch()
        return self._shared(self._memo, self._memo_locks, (service, key), fetch)

    def once(self, service: str, key: str, fetch: Callable[[], T]) -> T:
        """``fetch()`` once for the life of this context, for what cannot change while byoc runs
        (the account id, an AMI's root device): threads asking at the same moment share one call;
        a fetch that raises is tried again by the next caller."""
        return self._shared(self._once, self._once_locks, (service, key), fetch)

    def _shared(
        self, store: dict[tuple[str, str], Any], locks: dict[tuple[str, str], threading.Lock],
        k: tuple[str, str], fetch: Callable[[], T],
    ) -> T:
        """``store[k]``, fetched by the first caller while the others for ``k`` wait for it."""
        with self._lock:
            key_lock = locks.setdefault(k, threading.Lock())
        with key_lock:
            with self._lock:
                if k in store:
                    return store[k]  # type: ignore[no-any-return]
            value = fetch()
            with self._lock:
                store[k] = value
            return value

    def together(self, *calls: Callable[[], Any]) -> list[Any]:
        """Make independent calls at the same time (each in a copy of the caller's context); their
        results in order. Once all have finished, the first failure (in order) is raised."""
        if len(calls) <= 1:
            return [call() for call in calls]
        with cf.ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="byoc-together") as pool:
            futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
        return [f.result() for f in futures]

    # -- retries and waits ---------------------------------------------------------------
    def retry(
        self,
        fn: Callable[[], T],
        *,
        codes: Iterable[str] = EVENTUAL_CODES,
        timeout: float | None = None,
        match: Callable[[BaseException], bool] | None = None,
    ) -> T:
        """Call ``fn``, retrying AWS's eventual-consistency errors with capped exponential backoff.

        Only errors whose code is in ``codes`` (and, if given, for which ``match`` is true) are
        retried; anything else, or the last error once ``timeout`` has passed, is raised.
        """
        codes = frozenset(codes)
        deadline = time.monotonic() + (self.retry_timeout if timeout is None else timeout)
        delay = 1.0
        while True:
            try:
                return fn()
            except Exception as exc:
                code = error_code(exc)
                if code not in codes or (match is not None and not match(exc)):
                    raise
                if time.monotonic() + delay > deadline:
                    raise
                self.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, 30.0)

    def mutate(
        self,
        call: Callable[[], T],
        *,
        done: Callable[[], bool] | None = None,
        already: Iterable[str] = (),
        attempts: int = SUBCALL_ATTEMPTS,
    ) -> T | None:
        """A mutating sub-call of a create or update (CreateRoute in a route table's create,
        AddRoleToInstanceProfile, CreateAlias …), retried the way the executor retries creates.

        An answer after which AWS may have done the work anyway (a 5xx, a dropped connection: the
        SDK does not repeat such a create-like call), or throttling that outlasted the SDK's
        attempts, is looked at before the call is made again: ``done()`` reads back whether the
        change is in place. An answer whose code is in ``already`` (the call's "already exists" or
        "already done", e.g. to the SDK's own repeat of a call whose first answer was lost) means
        it may be: confirmed by ``done()`` when given. Returns the call's answer, or None when the
        work was found done; any other error is raised at once, and the last one after
        ``attempts`` tries.
        """
        already = frozenset(already)
        delay = 1.0
        for attempt in range(attempts):
            try:
                return call()
            except Exception as exc:
                code = error_code(exc)
                if code in already:
                    if done is None or done():
                        return None
                    raise
                if not (maybe_done(exc) or code in THROTTLING_CODES) or attempt == attempts - 1:
                    raise
            if done is not None and done():
                return None
            self.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def wait(self, client: Any, waiter: str, *, timeout: float = 900.0, **params: Any) -> None:
        """Block on a boto3 waiter, polling every ``poll_delay`` seconds for at most ``timeout``."""
        delay = max(self.poll_delay, 0.01)
        attempts = max(1, int(timeout / delay))
        client.get_waiter(waiter).wait(**params, WaiterConfig={"Delay": delay, "MaxAttempts": attempts})

    def poll(
        self, read: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 900.0, what: str = ""
    ) -> T:
        """Poll ``read`` until ``done``; raise CloudError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = read()
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise CloudError(f"timed out waiting for {what or 'AWS'}", code="Timeout")
            self.sleep(self.poll_delay)


class ResourceType(ABC):
    """One AWS kind: discover, create, update in place, delete, and what forces replacement.

    Failure rules (after Pulumi's dynamic provider): ``create`` is all-or-nothing from the
    caller's view — if it raises, whatever it made is tagged so discovery finds it; a ``delete``
    that raises means the thing still exists; ``delete`` of something already gone succeeds.
    """

    kind: ClassVar[str]
    service: ClassVar[str]
    #: props whose change cannot be made in place: changing them replaces the resource
    force_new: ClassVar[frozenset[str]] = frozenset()
    #: props whose referent cannot be deleted while this resource refers to it (see KindRules)
    pins: ClassVar[frozenset[str]] = frozenset()
    #: props compared by sha256 only (discovery reports ``sha256:<hex>``; see KindRules)
    hashed: ClassVar[frozenset[str]] = frozenset()
    #: the kind holds user data (bucket, data volume): never deleted or replaced without a flag
    holds_data: ClassVar[bool] = False
    #: the kind can snapshot what it holds before deletion (``snapshot``)
    snapshots: ClassVar[bool] = False
    #: rough seconds one create and one delete take in AWS, waits included: a scheduling hint
    #: (the executor starts first what has the longest road ahead), never a timeout
    seconds: ClassVar[tuple[float, float]] = (1.0, 1.0)

    @abstractmethod
    def discover(self, ctx: AwsContext) -> list[Live]:
        """Every resource of this kind owned by ``ctx.cluster``, in one paginated, tag-filtered
        describe where AWS allows it. Props are normalised to the blueprint's shape."""

    @abstractmethod
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        """Create with tags in the create call (ClientToken where offered) and wait until usable."""

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        """Change the ``changed`` props in place; never called for ``force_new`` props."""
        raise NotImplementedError(f"{self.kind} has no in-place update")

    @abstractmethod
    def delete(self, ctx: AwsContext, live: Live) -> None:
        """Delete and wait until gone; success if already gone."""

    def snapshot(self, ctx: AwsContext, live: Live) -> str:
        """Take a final snapshot of what ``live`` holds, wait until it is complete, return its id."""
        raise NotImplementedError(f"{self.kind} cannot be snapshotted")

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """Look before create: the resource already owned under ``address``, if any."""
        return next((live for live in self.discover(ctx) if live.address == address), None)

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        """The resource with AWS id ``aws_id``, normalised like discovery, if the cluster owns it
        (``byoc import`` calls ``claim`` first)."""
        return next((live for live in self.discover(ctx) if live.id == aws_id), None)

    def claim(self, ctx: AwsContext, aws_id: str, address: str) -> None:
        """Tag ``aws_id`` as the cluster's ``address`` so discovery finds it there (``byoc import``,
        ``byoc state mv``). EC2 kinds tag in place; others say how to do it by hand."""
        if self.service == "ec2" and ":" not in aws_id:
            ctx.client("ec2").create_tags(
                Resources=[aws_id], Tags=tag_list({CLUSTER_TAG: ctx.cluster, ADDRESS_TAG: address}))
            return
        raise CloudError(
            f"byoc cannot tag a {self.kind} for you: add the tags {CLUSTER_TAG}={ctx.cluster} and "
            f"{ADDRESS_TAG}={address} to it (console, or `aws resourcegroupstaggingapi tag-resources`), "
            "then run the command again",
            address=address, aws_id=aws_id, code="NotClaimable",
        )


# -- tag helpers shared by the EC2 kinds -------------------------------------------------------
def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_specs(resource_type: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """EC2 TagSpecifications for a create call."""
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}]


def tags_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}


def owned_filter(ctx: AwsContext) -> list[dict[str, Any]]:
    """The EC2 describe filter that selects what this cluster owns."""
    return [{"Name": f"tag:{CLUSTER_TAG}", "Values": [ctx.cluster]}]


def is_owned(ctx: AwsContext, tags: Mapping[str, str]) -> bool:
    """Tagged for this cluster: with a ``byoc:address`` it is that address's; without one it is
    unmanaged (see ``address_of``), reported by drift and removed by destroy."""
    return tags.get(CLUSTER_TAG) == ctx.cluster


def unmanaged_address(kind: str, aws_id: str) -> str:
    """The stable address of a resource tagged for the cluster without a ``byoc:address``
    (``aws_vpc.unmanaged["vpc-0abc"]``): no blueprint name, so never adopted, only unmanaged."""
    return f'{kind}.unmanaged["{aws_id}"]'


def address_of(tags: Mapping[str, str], kind: str, aws_id: str) -> str:
    """The ``byoc:address`` an owned resource carries, or its unmanaged address."""
    return tags.get(ADDRESS_TAG) or unmanaged_address(kind, aws_id)


def with_address(live: Live) -> Live:
    """``live``, or (read without a ``byoc:address``, address "") under its unmanaged address."""
    if live.address:
        return live
    return Live(unmanaged_address(live.kind, live.id), live.kind, live.id, live.props, live.attrs)


def update_ec2_tags(
    ctx: AwsContext, resource_id: str, old: Mapping[str, str], new: Mapping[str, str]
) -> None:
    """Make the tags of an EC2 resource equal ``new``."""
    ec2 = ctx.client("ec2")
    removed = [{"Key": k} for k in old if k not in new]
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if removed:
        ec2.delete_tags(Resources=[resource_id], Tags=removed)
    if changed:
        ec2.create_tags(Resources=[resource_id], Tags=tag_list(changed))


def account_id(ctx: AwsContext) -> str:
    """The caller's AWS account (one GetCallerIdentity per context): ARNs need it."""
    return ctx.once("sts", "account", lambda: str(ctx.client("sts").get_caller_identity()["Account"]))
