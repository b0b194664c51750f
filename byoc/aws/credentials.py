"""Credentials of an assumed role (the spec's ``aws.assume_role``): STS AssumeRole with the external
id, made from the caller's own credentials, fetched on first use and refreshed before they expire
(botocore's ``DeferredRefreshableCredentials`` over an ``AssumeRoleCredentialFetcher``).

A role that cannot be assumed raises a ``CloudError`` (code ``AssumeRoleFailed``) that names the
role, says whether an external id was given, and what to check.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from byoc.errors import CloudError

#: STS's own limits: RoleSessionName is 2-64 of [\w+=,.@-]
SESSION_NAME_MAX = 64
_SESSION_BAD = re.compile(r"[^\w+=,.@-]")
#: how long each assumed session lasts (the role's MaxSessionDuration is at least this)
DURATION_SECONDS = 3600


@dataclass(frozen=True)
class AssumeRole:
    """The role to assume in the cluster's account."""

    role_arn: str
    external_id: str | None
    session_name: str

    @classmethod
    def of_spec(cls, aws: Mapping[str, Any], cluster: str) -> AssumeRole | None:
        """The spec's ``aws.assume_role``, with its default session name; None when absent."""
        conf = aws.get("assume_role")
        if not conf:
            return None
        return cls(str(conf["role_arn"]), conf.get("external_id"),
                   str(conf.get("session_name") or default_session_name(cluster)))

    @property
    def account(self) -> str:
        """The account id in the role's ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)."""
        parts = self.role_arn.split(":")
        return parts[4] if len(parts) > 5 else ""

    def describe(self) -> str:
        return f"role {self.role_arn} ({'with' if self.external_id else 'without'} an external id)"


def default_session_name(cluster: str) -> str:
    """``byoc-<cluster>``, cut to what STS accepts."""
    return _SESSION_BAD.sub("-", f"byoc-{cluster}")[:SESSION_NAME_MAX]


class Caller:
    """byoc's own credentials, found the usual way, in one botocore session (with the process's shared
    service models) whose STS clients every role assumed with it shares: a fleet run makes one STS
    client, not one per cluster. The clients carry ``event_hooks`` like the contexts' own (the
    fleet's call gate, tests' injections). ``last_hooks`` run after the SDK's own (the gate's: a call
    the SDK's rate limiter holds back holds no place at the gate meanwhile)."""

    def __init__(self, event_hooks: Iterable[tuple[str, Callable[..., Any]]] = (),
                 last_hooks: Iterable[tuple[str, Callable[..., Any]]] = ()) -> None:
        import botocore.session

        from byoc.aws.models import session_with_shared_models

        self.session = session_with_shared_models(botocore.session.Session())
        self._hooks = list(event_hooks)
        self._last = list(last_hooks)
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, **kwargs: Any) -> Any:
        key = (service, *sorted(kwargs.items()))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self.session.create_client(service, **kwargs)
                for event, hook in self._hooks:
                    client.meta.events.register_first(event, hook)
                for event, hook in self._last:
                    client.meta.events.register(event, hook)
            return client


def assumed_credentials(
    role: AssumeRole,
    region: str,
    *,
    caller: Caller | None = None,
    event_hooks: Iterable[tuple[str, Callable[..., Any]]] = (),
) -> Any:
    """Refreshable credentials of ``role``, made with the ``caller``'s (by default a new ``Caller``
    with ``event_hooks``). Nothing is called until first use."""
    from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

    caller = caller or Caller(event_hooks)
    base = caller.session

    def sts_client(service: str, **kwargs: Any) -> Any:
        kwargs.setdefault("region_name", region)
        return caller.client(service, **kwargs)

    source = base.get_credentials()
    if source is None:
        raise CloudError(f"cannot assume {role.describe()}: byoc found no AWS credentials of its own to "
                         "assume it with; set them the usual way (environment, profile, instance role)",
                         code="NoCredentials")
    extra: dict[str, Any] = {"RoleSessionName": role.session_name, "DurationSeconds": DURATION_SECONDS}
    if role.external_id:
        extra["ExternalId"] = role.external_id
    fetcher = AssumeRoleCredentialFetcher(sts_client, source, role.role_arn, extra_args=extra)

    def fetch() -> Any:
        try:
            return fetcher.fetch_credentials()
        except Exception as exc:  # botocore's ClientError, a connection error, expired source keys
            raise assume_error(role, exc) from exc

    _quiet_refresh_failures()
    return DeferredRefreshableCredentials(refresh_using=fetch, method="assume-role")


class _ReportedByByoc:
    """A logging filter: botocore logs a failed refresh with its traceback before raising it; when the
    error is byoc's own (``assume_error``), byoc reports it, once and without a traceback."""

    def filter(self, record: Any) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, CloudError) and exc.code == "AssumeRoleFailed")


def _quiet_refresh_failures() -> None:
    import logging

    logger = logging.getLogger("botocore.credentials")
    if not any(isinstance(f, _ReportedByByoc) for f in logger.filters):
        logger.addFilter(_ReportedByByoc())


def assume_error(role: AssumeRole, exc: BaseException) -> CloudError:
    """What failed when assuming ``role``, and what to check."""
    from byoc.aws.errors import error_code

    code = error_code(exc) or type(exc).__name__
    hint = ("check that the role exists, that its trust policy names the account byoc runs as"
            + (" and requires this external id (sts:ExternalId)" if role.external_id else
               "; if the trust policy requires an external id, set aws.assume_role.external_id")
            + ", and that byoc's own credentials may call sts:AssumeRole on it")
    return CloudError(f"cannot assume {role.describe()}: {code}: {_message(exc)}; {hint}",
                      code="AssumeRoleFailed")


def _message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message") or exc)
    return str(exc)


def use_credentials(session: Any, credentials: Any) -> None:
    """Make every client of the botocore ``session`` sign with ``credentials``."""
    from botocore.credentials import CredentialProvider, CredentialResolver

    class _Given(CredentialProvider):  # type: ignore[misc]
        METHOD = "byoc-assume-role"

        def load(self) -> Any:
            return credentials

    session.register_component("credential_provider", CredentialResolver([_Given()]))


def check_assumable(credentials: Any) -> None:
    """Assume the role now (raises the ``CloudError`` of ``assumed_credentials``)."""
    credentials.get_frozen_credentials()
