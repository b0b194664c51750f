"""``aws_kms_key``: a customer-managed KMS key with its alias, rotation and key policy (only when byoc
makes the key).

Data-bearing: deleting it schedules deletion, after which everything encrypted with it is lost.
Discovery reads ARNs and tags from the tagging index; a key pending deletion or disabled is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.aws.tags import ADDRESS_TAG, address_of, is_owned
from byoc.errors import CloudError
from byoc.model import UNKNOWN, Companion, Live
from byoc.resources._iam import (
    changed_props,
    ignore_gone,
    normalise_policy,
    pages,
    policy_text,
    sync_tags,
    tags_of,
)
from byoc.resources._shapes import json_text
from byoc.resources._tagging import tagged
from byoc.resources.base import ResourceType

#: KMS's not-found code (not one of base.NOT_FOUND_CODES)
NOT_FOUND = frozenset({"NotFoundException"})
#: key states in which byoc considers the key gone
_GONE = frozenset({"PendingDeletion", "PendingReplicaDeletion"})
#: deletion_window_in_days cannot be read back: discovery reports this default
DEFAULT_WINDOW = 30
#: how long a just-created key may be unknown to the rest of KMS
KMS_SETTLE_SECONDS = 60.0


class KmsKey(ResourceType):
    kind = "aws_kms_key"
    service = "kms"
    seconds = (2.0, 1.0)
    holds_data = True

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The key's own attributes (``policy`` as JSON text); its ``alias`` is the provider's
        ``aws_kms_alias``."""
        return {k: json_text(v) if k == "policy" else v for k, v in values.items() if k != "alias"}

    def provider_companions(self, values: Mapping[str, Any], aws_id: str | None) -> list[Companion]:
        """``aws_kms_alias`` with ``target_key_id`` referencing the key."""
        if "alias" not in values:
            return []
        target = aws_id if aws_id is not None else UNKNOWN
        return [Companion("aws_kms_alias", {"name": values["alias"], "target_key_id": target},
                          {"target_key_id": "key_id"})]

    # -- reading -----------------------------------------------------------------------------
    def discover(self, ctx: AwsContext) -> list[Live]:
        items = tagged(ctx, "kms", "key/")
        if not items:
            return []
        kms = ctx.client("kms")
        aliases: dict[str, list[str]] = ctx.memo("kms", "list_aliases", lambda: _alias_index(kms))
        out = []
        for item in items:
            meta = _describe(kms, item.arn)
            if meta is None or meta["KeyState"] != "Enabled":
                continue
            tags = {k: v for k, v in item.tags.items() if not k.startswith("aws:")}
            live = self._read(ctx, meta, tags, aliases.get(meta["KeyId"], []),
                              address_of(tags, self.kind, meta["Arn"]))
            if live is not None:
                out.append(live)
        return out

    def _read(
        self, ctx: AwsContext, meta: Mapping[str, Any], tags: dict[str, str], aliases: list[str], address: str
    ) -> Live | None:
        try:
            rotation = ctx.client("kms").get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]
            policy = ctx.client("kms").get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"]
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise
        props = {
            "description": meta.get("Description") or "",
            "enable_key_rotation": bool(rotation),
            "deletion_window_in_days": DEFAULT_WINDOW,
            "alias": _pick_alias(aliases),
            "policy": policy,
            "tags": tags,
        }
        return self._live(address, meta, props)

    def _live(self, address: str, meta: Mapping[str, Any], props: Mapping[str, Any]) -> Live:
        attrs = {"arn": meta["Arn"], "key_id": meta["KeyId"]}
        return Live(address, self.kind, meta["KeyId"], _props(props), attrs)

    # -- writing -----------------------------------------------------------------------------
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        kms = ctx.client("kms")
        p = _props(props)
        alias = p["alias"]
        repoint = False
        if alias:  # the alias is the key's only deterministic name: look before create
            target = _describe(kms, alias)
            if target is not None:
                tags = tags_of(pages(kms, "list_resource_tags", "Tags", KeyId=target["KeyId"]))
                ours = is_owned(ctx, tags) and tags.get(ADDRESS_TAG) == address
                if target["KeyState"] == "Enabled" and ours:
                    return self._adopt(ctx, address, target, tags, p)
                _check_claimable(ctx, alias, target, tags, address)
                repoint = True
        params: dict[str, Any] = {"Description": p["description"], "KeyUsage": "ENCRYPT_DECRYPT",
                                  "Tags": _kms_tags(p["tags"])}
        if p["policy"] is not None:  # else KMS's default policy: the account administers the key
            params["Policy"] = policy_text(p["policy"])
        meta = kms.create_key(**params)["KeyMetadata"]
        key_id = meta["KeyId"]
        if meta["KeyState"] != "Enabled":
            meta = ctx.poll(
                lambda: _settle(ctx, lambda: kms.describe_key(KeyId=key_id))["KeyMetadata"],
                lambda m: m["KeyState"] == "Enabled",
                timeout=300,
                what=f"KMS key {key_id} to be enabled",
            )
        # The alias and rotation are independent of each other: set side by side. Should either
        # fail, the key already carries its tags, so discovery finds it and a later run (or the
        # adopt above, once the alias is in place) sets what is missing.
        calls: list[Callable[[], Any]] = []
        if alias:
            claim = kms.update_alias if repoint else kms.create_alias
            calls.append(lambda: ctx.mutate(
                lambda: _settle(ctx, lambda: claim(AliasName=alias, TargetKeyId=key_id)),
                already={"AlreadyExistsException"},
                done=lambda: (_describe(kms, alias) or {}).get("KeyId") == key_id))
        if p["enable_key_rotation"]:
            calls.append(lambda: _settle(ctx, lambda: kms.enable_key_rotation(KeyId=key_id)))
        ctx.together(*calls)
        # built from what is known, no read back: CreateKey's metadata gives the id and ARN, and
        # the props are what was just set (discovery reads the same back)
        return self._live(address, meta, p)

    def _adopt(
        self, ctx: AwsContext, address: str, meta: Mapping[str, Any], tags: dict[str, str], p: dict[str, Any]
    ) -> Live:
        """Our key already carries the alias (an earlier create that did not finish): update it."""
        listed = pages(ctx.client("kms"), "list_aliases", "Aliases", KeyId=meta["KeyId"])
        aliases = [a["AliasName"] for a in listed]
        current = self._read(ctx, meta, tags, aliases, address)
        if current is None:
            raise CloudError("KMS key vanished while being adopted", address=address,
                             aws_id=meta["KeyId"], code="NotFoundException")
        current = Live(address, self.kind, current.id, {**current.props, "deletion_window_in_days":
                                                         p["deletion_window_in_days"]}, current.attrs)
        changed = changed_props(current.props, p)
        return self.update(ctx, current, p, changed) if changed else current

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        kms = ctx.client("kms")
        p = _props(props)
        key_id = live.id
        if "description" in changed:
            kms.update_key_description(KeyId=key_id, Description=p["description"])
        if "enable_key_rotation" in changed:
            if p["enable_key_rotation"]:
                kms.enable_key_rotation(KeyId=key_id)
            else:
                kms.disable_key_rotation(KeyId=key_id)
        if "policy" in changed and p["policy"] is not None:
            kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy_text(p["policy"]))
        if "alias" in changed:
            self._move_alias(ctx, live, live.props.get("alias") or "", p["alias"])
        if "tags" in changed:
            sync_tags(
                live.props["tags"],
                p["tags"],
                lambda tags: kms.tag_resource(KeyId=key_id, Tags=_kms_tags(tags)),
                lambda keys: kms.untag_resource(KeyId=key_id, TagKeys=keys),
            )
        # deletion_window_in_days is only used at delete time: nothing to change in AWS
        return Live(live.address, self.kind, key_id, p, dict(live.attrs))

    def _move_alias(self, ctx: AwsContext, live: Live, old: str, new: str) -> None:
        """Point alias ``new`` at this key (create it, or take it over from a dead key of ours),
        then delete ``old`` if it still points here."""
        kms = ctx.client("kms")
        if new:
            target = _describe(kms, new)
            if target is None:
                ctx.mutate(lambda: kms.create_alias(AliasName=new, TargetKeyId=live.id),
                           already={"AlreadyExistsException"},
                           done=lambda: (_describe(kms, new) or {}).get("KeyId") == live.id)
            elif target["KeyId"] != live.id:
                tags = tags_of(pages(kms, "list_resource_tags", "Tags", KeyId=target["KeyId"]))
                _check_claimable(ctx, new, target, tags, live.address)
                kms.update_alias(AliasName=new, TargetKeyId=live.id)
        if old and old != new:
            target = _describe(kms, old)
            if target is not None and target["KeyId"] == live.id:
                ignore_gone(lambda: kms.delete_alias(AliasName=old), NOT_FOUND)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        kms = ctx.client("kms")
        meta = _describe(kms, live.id)
        if meta is None or meta["KeyState"] in _GONE:
            return
        for alias in pages(kms, "list_aliases", "Aliases", KeyId=live.id):
            name = alias["AliasName"]
            ignore_gone(partial(kms.delete_alias, AliasName=name), NOT_FOUND)
        window = min(30, max(7, int(live.props.get("deletion_window_in_days") or DEFAULT_WINDOW)))
        try:
            kms.schedule_key_deletion(KeyId=live.id, PendingWindowInDays=window)
        except ClientError as exc:
            code = error_code(exc)
            if code in NOT_FOUND:
                return
            # already pending deletion (a concurrent or earlier destroy): gone for byoc
            after = _describe(kms, live.id) if code == "KMSInvalidStateException" else meta
            if after is None or after["KeyState"] in _GONE:
                return
            raise
        ctx.poll(
            lambda: _describe(kms, live.id),
            lambda m: m is None or m["KeyState"] in _GONE,
            timeout=300,
            what=f"KMS key {live.id} to be pending deletion",
        )


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "description": props.get("description") or "",
        "enable_key_rotation": bool(props.get("enable_key_rotation")),
        "deletion_window_in_days": int(props.get("deletion_window_in_days") or DEFAULT_WINDOW),
        "alias": props.get("alias") or "",
        # None: not managed (a state written before byoc set the key's policy)
        "policy": normalise_policy(props["policy"]) if props.get("policy") else None,
        "tags": dict(props["tags"]),
    }


def _kms_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())]


def _describe(kms: Any, key: str) -> dict[str, Any] | None:
    """DescribeKey by id, ARN or alias name; None when there is no such key or alias."""
    try:
        meta: dict[str, Any] = kms.describe_key(KeyId=key)["KeyMetadata"]
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise
    return meta


def _alias_index(kms: Any) -> dict[str, list[str]]:
    """Key id -> its alias names, from one (paginated) ListAliases of the whole region."""
    out: dict[str, list[str]] = {}
    for alias in pages(kms, "list_aliases", "Aliases"):
        if alias.get("TargetKeyId"):
            out.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    return out


def _pick_alias(names: list[str]) -> str:
    """The alias byoc manages: one under ``alias/byoc/`` if any, else the first; "" if none."""
    ordered = sorted(names, key=lambda n: (not n.startswith("alias/byoc/"), n))
    return ordered[0] if ordered else ""


def _check_claimable(
    ctx: AwsContext, alias: str, target: Mapping[str, Any], tags: Mapping[str, str], address: str
) -> None:
    """An alias may be taken over from a key of this cluster that is dead (disabled, pending
    deletion) or belongs to the same address; anything else is someone else's."""
    if is_owned(ctx, tags) and (target["KeyState"] != "Enabled" or tags.get(ADDRESS_TAG) == address):
        return
    raise CloudError(
        f"KMS alias {alias!r} already names key {target['KeyId']}, which byoc cluster {ctx.cluster!r} "
        "does not manage here; choose another alias or delete that alias",
        address=address,
        aws_id=target["KeyId"],
        code="AlreadyExistsException",
    )


def _settle(ctx: AwsContext, fn: Callable[[], Any]) -> Any:
    """Call ``fn``, retrying NotFoundException while a just-created key propagates through KMS."""
    return ctx.retry(fn, codes=NOT_FOUND, timeout=min(ctx.retry_timeout, KMS_SETTLE_SECONDS))


KIND = KmsKey()
