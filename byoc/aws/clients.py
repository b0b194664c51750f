"""Clients for many AWS contexts, shared: a fleet's clusters each sign with their own credentials, but
one client per service and region serves them all, each cluster's calls through a view of it.

botocore's ``Session.create_client`` builds a new client class each time (a method per operation:
about 750 for EC2), a new ``ServiceModel``, a copy of the session's event emitter with every handler
in it, an endpoint with its own pool of connections; byoc made about 11 clients per cluster, and the
cycles they leave behind cost full passes of the collector. ``ClientMaker.client`` makes one client
per (service, region) the way botocore's session does (same configuration chain, endpoint resolution,
retries, S3 and plugin handlers) and hands each context a view of it (``view``), whose calls run
with that context current (``CURRENT``). What is a cluster's own is then looked up per call:

- the credentials it signs with (``ContextCredentials``: the context's, else byoc's own; a call made
  outside any context fails rather than sign as anyone);
- its call counts and log, its retry policy's memory of unreachable endpoints, its client-side rate
  limiter (a throttled account slows its own calls, not the fleet's) and its call gate, through
  hooks registered once per shared client that dispatch to the current context.
"""

from __future__ import annotations

import contextvars
import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any

import botocore.client
import botocore.session
from botocore.context import get_context, start_as_current_context
from botocore.model import ServiceModel

from byoc.aws.calls import (
    MAX_ATTEMPTS,
    CallRecorder,
    SdkRetries,
    TimestampParser,
    quiet_sdk_logs,
    register_form_encoding,
)
from byoc.aws.gate import gate_hooks
from byoc.aws.models import session_with_shared_models

Hook = tuple[str, Callable[..., Any]]

#: the context (``AwsContext``) whose call a shared client is making: set by the context's view for
#: the call's length, in the thread that makes it (every hook of the call runs there)
CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("byoc_aws_context", default=None)


def current() -> Any:
    """The context whose call is being made; an error outside any (a shared client called directly:
    a bug, which must fail rather than sign, count or gate as nobody)."""
    ctx = CURRENT.get()
    if ctx is None:
        raise RuntimeError("an AWS call through a shared client outside any cluster's context")
    return ctx


class ContextCredentials:
    """What a shared client's signer holds: the credentials of the context whose call it signs (its
    own, else ``default()``, byoc's own found the usual way). The signer asks only for frozen
    credentials, once per attempt."""

    def __init__(self, default: Callable[[], Any]) -> None:
        self._default = default

    def _now(self) -> Any:
        own = current().credentials
        return own if own is not None else self._default()

    def get_frozen_credentials(self) -> Any:
        creds = self._now()
        return None if creds is None else creds.get_frozen_credentials()

    def get_deferred_property(self, name: str) -> Callable[[], Any]:
        """What the endpoint rules read per call (the account id, for account-based endpoints)."""
        return lambda: getattr(self._now(), name, None)


def rate_limiter() -> Any:
    """botocore's adaptive client-side rate limiter, as its ``adaptive`` retry mode makes one per
    client (botocore.retries.adaptive.register_retry_handler), unregistered: a context keeps one per
    service and a shared client's hooks call the current context's."""
    from botocore.retries import adaptive, bucket, standard, throttling

    clock = bucket.Clock()
    return adaptive.ClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time()),
        rate_clocker=adaptive.RateClocker(clock),
        token_bucket=bucket.TokenBucket(max_rate=1, clock=clock),
        throttling_detector=standard.ThrottlingErrorDetector(retry_event_adapter=standard.RetryEventAdapter()),
        clock=clock)


def view(client: Any, ctx: Any) -> Any:
    """``client`` as ``ctx`` uses it: the same object in all but its calls (operations, paginators
    and waiters all go through ``_make_api_call``), which run with ``ctx`` current."""
    seen = object.__new__(type(client))
    seen.__dict__.update(client.__dict__)
    make = type(client)._make_api_call

    def _make_api_call(operation_name: str, api_params: Any) -> Any:
        token = CURRENT.set(ctx)
        try:
            return make(seen, operation_name, api_params)
        finally:
            CURRENT.reset(token)

    seen._make_api_call = _make_api_call
    return seen


class _Creator(botocore.client.ClientCreator):  # type: ignore[misc]
    """botocore's ClientCreator, taking the service model and class from its ``maker``'s caches."""

    def __init__(self, maker: ClientMaker, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._maker = maker

    def _load_service_model(self, service_name: str, api_version: str | None = None) -> Any:
        make = super()._load_service_model
        return self._maker._cached(("model", service_name, api_version),
                                   lambda: make(service_name, api_version))

    def _create_client_class(self, service_name: str, service_model: ServiceModel) -> Any:
        make = super()._create_client_class
        return self._maker._cached(("class", service_name, service_model.api_version),
                                   lambda: make(service_name, service_model))


class ClientMaker:
    """Makes clients from one botocore session (byoc's own credentials, the process's shared service
    models, byoc's timestamp parser), one per service, region and set of extra hooks, shared by every
    context that asks (``client``). ``pool``: the connections each keeps (a fleet's calls in flight
    at most). Safe to use from many threads."""

    def __init__(self, pool: int = 10) -> None:
        quiet_sdk_logs()
        self.session = session_with_shared_models(botocore.session.Session())
        self.session.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=TimestampParser())
        self.pool = pool
        self._cache: dict[tuple[str, str, str | None], Any] = {}
        self._shared: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.RLock()  # held while a shared client is made, which takes it again
        self._credentials = ContextCredentials(self.session.get_credentials)

    def _cached(self, key: tuple[str, str, str | None], make: Any) -> Any:
        """``make()`` once per key (called while a client is made, under the lock)."""
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = make()
        return found

    def client(self, ctx: Any, service: str, *, config: Any, hooks: Sequence[Hook] = ()) -> Any:
        """``ctx``'s view (``view``) of the shared client of ``service`` in ``ctx.region``, made the
        first time with ``config`` (its retries and pool size are the maker's) and ``hooks``."""
        key = (service, ctx.region, tuple(hooks))
        client = self._shared.get(key)
        if client is None:
            with self._lock:
                client = self._shared.get(key)
                if client is None:
                    client = self._shared[key] = self._make_shared(service, ctx.region, config, hooks)
        return view(client, ctx)

    def _make_shared(self, service: str, region: str, config: Any, hooks: Sequence[Hook]) -> Any:
        from botocore.config import Config

        # standard retries: the adaptive mode's rate limiter is the current context's (below)
        config = config.merge(Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                                     max_pool_connections=self.pool))
        client = self.create_client(service, region=region, config=config, credentials=self._credentials)
        client.exceptions  # noqa: B018 (made once here, not by each view)
        service_id = client.meta.service_model.service_id.hyphenize()
        events = client.meta.events
        # in the order botocore's adaptive mode and byoc's own contexts put them (byoc.aws.context)
        events.register("before-send",
                        lambda **kw: current().rate_limiter(service_id).on_sending_request(**kw))
        events.register("needs-retry",
                        lambda **kw: current().rate_limiter(service_id).on_receiving_response(**kw))
        SdkRetries.register_shared(client, lambda: current().sdk_retries)
        CallRecorder.register_shared(client, lambda: current().calls)
        register_form_encoding(client)
        for event, hook in hooks:
            events.register_first(event, hook)
        for event, hook in gate_hooks(lambda **kw: current().gate_acquire(**kw),
                                      lambda **kw: current().gate_release(**kw)):
            events.register(event, hook)
        return client

    def create_client(self, service: str, *, region: str, config: Any = None, credentials: Any = None) -> Any:
        """A client of ``service`` in ``region`` of its own, signing with ``credentials`` (botocore's;
        None: the session's own, found the usual way), as ``Session.create_client(service,
        region_name=region, config=config)`` makes it."""
        # one at a time: botocore's session sets up its components lazily and keeps the user agent's
        # state in one shared object; it is CPU under one GIL anyway
        with self._lock, start_as_current_context():
            return self._create(service, region, config, credentials)

    def _create(self, service: str, region: str, config: Any, credentials: Any) -> Any:
        # botocore 1.44's Session.create_client, for explicit region and botocore credentials
        s = self.session
        default = s.get_default_client_config()
        if default is not None:
            config = default.merge(config) if config is not None else default
        region = s._resolve_region_name(region, config)
        if credentials is None:
            credentials = s.get_credentials()
        config_store = copy.copy(s.get_component("config_store"))
        user_agent_creator = s.get_component("user_agent_creator")
        user_agent_creator.set_session_config(session_user_agent_name=s.user_agent_name,
                                              session_user_agent_version=s.user_agent_version,
                                              session_user_agent_extra=s.user_agent_extra)
        defaults_mode = s._resolve_defaults_mode(config, config_store)
        if defaults_mode != "legacy":
            s._get_internal_component("smart_defaults_factory").merge_smart_defaults(
                config_store, defaults_mode, region)
        s._add_configured_endpoint_provider(client_name=service, config_store=config_store)
        user_agent_creator.set_client_features(get_context().features)
        creator = _Creator(
            self, s.get_component("data_loader"), s._get_internal_component("endpoint_resolver"),
            s.user_agent(), s.get_component("event_emitter"), botocore.session.retryhandler,
            botocore.session.translate, s.get_component("response_parser_factory"),
            s._get_internal_component("exceptions_factory"), config_store,
            user_agent_creator=user_agent_creator, auth_token_resolver=s.get_auth_token)
        client = creator.create_client(
            service_name=service, region_name=region, is_secure=True, endpoint_url=None,
            verify=s.get_config_variable("ca_bundle"), credentials=credentials,
            scoped_config=s.get_scoped_config(), client_config=config,
            api_version=s.get_config_variable("api_versions").get(service, None),
            auth_token=s.get_auth_token())
        monitor = s._get_internal_component("monitor")
        if monitor is not None:
            monitor.register(client.meta.events)
        s._register_client_plugins(client)
        return client

