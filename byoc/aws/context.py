"""``AwsContext``: what the kinds, operations and state stores share during one run: cluster
identity, boto3 clients (made lazily, once), memoised reads, concurrent calls, retries of AWS's
eventual consistency, mutating sub-calls, waiters and polling.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import contextvars
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from byoc.aws.calls import (
    MAX_ATTEMPTS,
    CallRecorder,
    SdkRetries,
    TimestampParser,
    quiet_sdk_logs,
    register_form_encoding,
)
from byoc.aws.errors import EVENTUAL_CODES, THROTTLING_CODES, error_code, maybe_done
from byoc.aws.gate import gate_hooks
from byoc.errors import CloudError
from byoc.model import DEFAULT_PARALLELISM

T = TypeVar("T")

#: What a plan expects to exist, for the kinds that can read it by name instead of listing:
#: kind → name (or id) → the names of its parts read by name too (an IAM role's inline policies).
Known = Mapping[str, Mapping[str, frozenset[str]]]

#: At most this many threads make ``AwsContext.together``'s calls at once (per context).
HELPER_THREADS = 256

#: How often ``AwsContext.mutate`` makes a sub-call whose answers say it may not have happened.
SUBCALL_ATTEMPTS = 5


class AwsContext:
    """What the kinds share during one run: cluster identity, clients, and the retry policy.

    ``sleep`` and ``poll_delay`` are injectable so tests do not wait; ``client_factory`` is the
    seam through which tests may hand in their own boto3 clients. ``credentials`` (botocore's, e.g.
    an assumed role's) sign every client made here instead of the caller's own.
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
        credentials: Any = None,
        client_maker: Any = None,
    ) -> None:
        self.cluster = cluster
        self.region = region
        self.parallelism = parallelism
        self.sleep = sleep
        self.poll_delay = poll_delay
        self.retry_timeout = retry_timeout
        self._client_factory = client_factory
        self._event_hooks = list(event_hooks)
        #: botocore credentials every client signs with (an assumed role's, byoc/aws/credentials.py);
        #: None: the caller's own, found the usual boto3 way
        self.credentials = credentials
        #: when given (a fleet's ``byoc.aws.clients.ClientMaker``, shared by its clusters), this context's
        #: clients are its views of the maker's shared ones
        self._client_maker = client_maker
        self._clients: dict[str, Any] = {}
        self._limiters: dict[str, Any] = {}
        #: seconds spent making this context's clients (``BYOC_TIMINGS``)
        self.client_seconds = 0.0
        self._lock = threading.Lock()
        self._session: Any = None
        self._memo: dict[tuple[str, str], Any] = {}
        self._memo_locks: dict[tuple[str, str], threading.Lock] = {}
        self._passes = 0
        self._once: dict[tuple[str, str], Any] = {}
        self._once_locks: dict[tuple[str, str], threading.Lock] = {}
        self._helper_pool: cf.ThreadPoolExecutor | None = None
        #: salts idempotency tokens: retries within a run reuse a token, a later run never
        #: receives a resource an earlier run created and deleted under the same token
        self.run_id = uuid.uuid4().hex
        #: every AWS call of this context, logged (``byoc -v``) and counted
        self.calls = CallRecorder()
        #: the SDK's retry policy for this context's clients (no quota; unreachable endpoints remembered)
        self.sdk_retries = SdkRetries(self.calls.log)
        #: bounds the AWS calls in flight while set (``byoc.aws.gate.CallGate``; an apply's
        #: executor sets one for the run): every client made here passes each attempt through it
        self.gate: Any = None
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
        import botocore.session
        from botocore.config import Config

        from byoc.aws.models import session_with_shared_models

        started = time.perf_counter()  # after the imports: BYOC_TIMINGS counts those apart
        if self._session is None and self._client_maker is None:
            quiet_sdk_logs()
            # botocore's own session: boto3's adds nothing byoc uses, and importing boto3 imports
            # s3transfer (about 0.1 s on every run)
            self._session = session_with_shared_models(botocore.session.Session())
            self._session.get_component("response_parser_factory").set_parser_defaults(
                timestamp_parser=TimestampParser())
            if self.credentials is not None:
                from byoc.aws.credentials import use_credentials

                use_credentials(self._session, self.credentials)
        config = Config(
            retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
            max_pool_connections=max(10, self.parallelism * 2),
            connect_timeout=10,
            read_timeout=60,
            user_agent_extra="byoc/0.1",
        )
        if self._client_maker is not None:
            # a view of the maker's shared client, whose hooks dispatch to this context per call
            client = self._client_maker.client(self, service, config=config, hooks=self._event_hooks)
            self.client_seconds += time.perf_counter() - started
            return client
        client = self._session.create_client(service, region_name=self.region, config=config)
        self.sdk_retries.register(client)
        self.calls.register(client)
        register_form_encoding(client)
        for event, hook in self._event_hooks:
            client.meta.events.register_first(event, hook)
        for event, hook in gate_hooks(self.gate_acquire, self.gate_release):
            client.meta.events.register(event, hook)
        self.client_seconds += time.perf_counter() - started
        return client

    def gate_acquire(self, **kwargs: Any) -> None:
        """``before-send``: a place at the gate, while one is set."""
        gate = self.gate
        if gate is not None:
            gate.acquire()

    def gate_release(self, **kwargs: Any) -> None:
        """The place back, when an attempt's answer is in."""
        gate = self.gate
        if gate is not None:
            gate.release()

    def rate_limiter(self, service_id: str) -> Any:
        """This context's adaptive client-side rate limiter for a service (botocore's), for the shared
        clients of ``byoc.aws.clients``, which call the current context's: its own clients have one each."""
        limiter = self._limiters.get(service_id)
        if limiter is None:
            from byoc.aws.clients import rate_limiter

            with self._lock:
                limiter = self._limiters.setdefault(service_id, rate_limiter())
        return limiter

    def close(self) -> None:
        """Let go of what this context holds: its helper threads (they end once idle) and its clients
        (their connections are closed; a shared client's views leave the client to its maker)."""
        with self._lock:
            pool, self._helper_pool = self._helper_pool, None
            clients, self._clients = self._clients, {}
        if pool is not None:
            pool.shutdown(wait=False)
        if self._client_maker is None and self._client_factory is None:
            for client in clients.values():
                client.close()

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
        pool = self._helpers()
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls[1:]]
        try:  # the first in this thread, which would only wait otherwise
            first = contextvars.copy_context().run(calls[0])
        except Exception:
            cf.wait(futures)
            raise
        cf.wait(futures)
        return [first, *(f.result() for f in futures)]

    def _helpers(self) -> cf.ThreadPoolExecutor:
        """The threads ``together`` runs calls in, kept for the life of the context: an idle one is
        reused, another started when none is idle (a thread started per call cost more CPU than a
        simple AWS call). Its bound is far above what side-by-side calls ever need at once."""
        pool = self._helper_pool
        if pool is None:
            with self._lock:
                if self._helper_pool is None:
                    self._helper_pool = cf.ThreadPoolExecutor(max_workers=HELPER_THREADS,
                                                              thread_name_prefix="byoc-together")
                pool = self._helper_pool
        return pool

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
