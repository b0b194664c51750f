"""Clients for many AWS contexts from one botocore session: a fleet's clusters each sign with their own
credentials, but what a client of a service shares with every other one — the service model, the
client class, the session's setup — is made once per process instead of once per client.

botocore's ``Session.create_client`` builds a new client class each time (a method per operation:
about 750 for EC2), a new ``ServiceModel`` (whose derived data, e.g. the endpoint-discovery operation,
is computed again), and byoc made a session per cluster besides: about half of a client's CPU, and
the cycles the collector must then walk; and each client's event emitter translates every event
name it meets for the first time (a few ms per call of a new client). ``ClientMaker.create_client``
does what botocore's does (same configuration chain, endpoint resolution, retry, S3 and plugin
handlers), with the credentials given per call, the class and model cached per service, and one
cache of event-name translations for all.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import botocore.client
import botocore.session
from botocore.context import get_context, start_as_current_context
from botocore.model import ServiceModel

from byoc.aws.calls import TimestampParser, quiet_sdk_logs
from byoc.aws.models import session_with_shared_models


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
    models, byoc's timestamp parser); each client signs with the credentials it is made with. Safe to
    use from many threads."""

    def __init__(self) -> None:
        quiet_sdk_logs()
        self.session = session_with_shared_models(botocore.session.Session())
        self.session.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=TimestampParser())
        self._cache: dict[tuple[str, str, str | None], Any] = {}
        self._lock = threading.Lock()
        #: botocore's translation of old event names to new ones, the same for every client, which
        #: each client's event emitter would otherwise work out afresh for each event it emits
        self._aliases: dict[str, str] = {}

    def _cached(self, key: tuple[str, str, str | None], make: Any) -> Any:
        """``make()`` once per key (called while a client is made, under the lock)."""
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = make()
        return found

    def create_client(self, service: str, *, region: str, config: Any = None, credentials: Any = None) -> Any:
        """A client of ``service`` in ``region`` signing with ``credentials`` (botocore's; None: the
        session's own, found the usual way), as ``Session.create_client(service, region_name=region,
        config=config)`` makes it."""
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
        events = client.meta.events
        if isinstance(getattr(events, "_alias_name_cache", None), dict):
            events._alias_name_cache = self._aliases
        return client

