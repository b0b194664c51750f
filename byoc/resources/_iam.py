"""Helpers for the IAM kinds: the policy-document normal form, IAM tag lists, adoption checks.

``normalise_policy`` is public: the blueprint runs its own documents through it, so desired and
discovered policies compare equal whenever they mean the same thing.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.aws.tags import ADDRESS_TAG, is_owned
from byoc.errors import CloudError
from byoc.model import canonical_json

POLICY_VERSION = "2012-10-17"
#: statement keys whose value is a string or a list of strings (kept as a sorted list)
_LIST_KEYS = ("Action", "NotAction", "Resource", "NotResource")
#: statement keys whose value is "*" or a dict of principal type -> string or list
_PRINCIPAL_KEYS = ("Principal", "NotPrincipal")
#: how many seconds IAM's eventual consistency is given before an error is final
IAM_SETTLE_SECONDS = 120.0


@contextlib.contextmanager
def unsettled(message: str, *, address: str, aws_id: str) -> Iterator[None]:
    """A NoSuchEntity that outlasted IAM's settle time inside, reported as a CloudError saying
    ``message`` (and AWS's own words); any other error passes unchanged."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        raise CloudError(f"{message}: {exc}", address=address, aws_id=aws_id, code="NoSuchEntity") from exc


def normalise_policy(doc: Any) -> dict[str, Any]:
    """A policy document in byoc's normal form (see the module docstring of the IAM kinds).

    ``{"Version", "Statement": [...]}``; each statement keeps ``Sid`` only if given, and its
    ``Effect``; ``Principal`` is ``"*"`` or a dict of type -> sorted list; ``Action`` and
    ``Resource`` (and their ``Not`` forms) are sorted lists, absent when absent; ``Condition`` is
    operator -> key -> sorted list of strings. Statements keep their order. ``doc`` may be a dict
    or JSON text, URL-encoded or not.
    """
    if isinstance(doc, str | bytes):
        text = doc.decode() if isinstance(doc, bytes) else doc
        stripped = text.strip()
        doc = json.loads(stripped if stripped.startswith("{") else urllib.parse.unquote(stripped))
    if not isinstance(doc, Mapping):
        raise CloudError(f"a policy document must be a JSON object, not {type(doc).__name__}")
    statements = doc.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    return {
        "Version": str(doc.get("Version") or POLICY_VERSION),
        "Statement": [_statement(s) for s in statements],
    }


def _statement(s: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.get("Sid") is not None:
        out["Sid"] = str(s["Sid"])
    out["Effect"] = str(s.get("Effect", ""))
    for key in _PRINCIPAL_KEYS:
        if key in s:
            out[key] = _principal(s[key])
    for key in _LIST_KEYS:
        if key in s:
            out[key] = _strings(s[key])
    if s.get("Condition"):
        out["Condition"] = {
            str(op): {str(k): _strings(v) for k, v in dict(keys).items()}
            for op, keys in dict(s["Condition"]).items()
        }
    return out


def _principal(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _strings(v) for k, v in value.items()}
    return str(value)  # a bare "*"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strings(value: Any) -> list[str]:
    """A string, scalar or list as a sorted list of distinct strings."""
    items = value if isinstance(value, list | tuple) else [value]
    return sorted({_text(v) for v in items})


def policy_text(doc: Any) -> str:
    """The JSON text sent to IAM for a document (in normal form, so it reads back identical)."""
    return json.dumps(normalise_policy(doc), separators=(",", ":"))


# -- tags --------------------------------------------------------------------------------------
def iam_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tags_of(items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """IAM/KMS tag lists as a dict, without the ``aws:`` tags nobody can set or remove."""
    out: dict[str, str] = {}
    for t in items or ():
        key = t.get("Key", t.get("TagKey"))
        if key is not None and not key.startswith("aws:"):
            out[key] = t.get("Value", t.get("TagValue", ""))
    return out


def sync_tags(
    old: Mapping[str, str],
    new: Mapping[str, str],
    tag: Callable[[dict[str, str]], Any],
    untag: Callable[[list[str]], Any],
) -> None:
    """Make tags ``old`` into ``new``: one untag call for removed keys, one tag call for the rest."""
    removed = sorted(k for k in old if k not in new)
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if removed:
        untag(removed)
    if changed:
        tag(changed)


# -- misc --------------------------------------------------------------------------------------
def cluster_path(ctx: AwsContext) -> str:
    """The IAM path every role and instance profile of the cluster is under."""
    return f"/byoc/{ctx.cluster}/"


def pages(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated IAM/KMS list call."""
    return [item for page in client.get_paginator(operation).paginate(**params) for item in page[key]]


def changed_props(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    return {k for k in after if canonical_json(after[k]) != canonical_json(before.get(k))}


def check_adoptable(ctx: AwsContext, what: str, name: str, tags: Mapping[str, str], address: str) -> None:
    """An entity named ``name`` already exists: fine if it is ours under ``address`` (an earlier
    run that did not finish), else a CloudError saying whose it is."""
    if not is_owned(ctx, tags):
        raise CloudError(
            f"an {what} named {name!r} already exists and is not managed by byoc cluster "
            f"{ctx.cluster!r} (it has no byoc tags for it); delete or rename it, or change the name",
            address=address,
            aws_id=name,
            code="EntityAlreadyExists",
        )
    if tags.get(ADDRESS_TAG) != address:
        raise CloudError(
            f"an {what} named {name!r} already exists and belongs to "
            f"{tags.get(ADDRESS_TAG) or 'no address (it is unmanaged)'} of this cluster",
            address=address,
            aws_id=name,
            code="EntityAlreadyExists",
        )


def ignore_gone(fn: Callable[[], Any], codes: frozenset[str] = frozenset({"NoSuchEntity"})) -> bool:
    """Call ``fn``; False if it failed because the thing is gone (an error code in ``codes``)."""
    try:
        fn()
    except Exception as exc:
        if error_code(exc) in codes:
            return False
        raise
    return True


def delete_and_wait(ctx: AwsContext, live: Any, delete: Callable[[], Any], get: Callable[[], Any]) -> None:
    """Delete an IAM object and wait until IAM no longer shows it.

    DeleteConflict is retried for a while (IAM still sees a role in a profile, or policies, for
    seconds after they were removed); NoSuchEntity means it is already gone.
    """
    from byoc.resources._ec2 import delete_then_wait, found

    delete_then_wait(ctx, live, delete, lambda: found(lambda: [get()]), codes={"DeleteConflict"},
                     retry_timeout=min(ctx.retry_timeout, IAM_SETTLE_SECONDS), timeout=IAM_SETTLE_SECONDS)
