"""``aws_iam_role``: an IAM role under ``/byoc/<cluster>/`` with its trust policy and inline policies.

A plan's discovery reads the roles the spec and state name (GetRole, then GetRolePolicy for each
known inline policy); a full audit (``ctx.known`` None) lists roles by path (IAM is outside the
tagging API) with their tags and inline policies, so it finds strangers too. Policy documents are
compared in ``_iam.normalise_policy``'s normal form. A role given ``permissions_boundary`` (the
spec's ``security.permissions_boundary_arn``) is created with it and has it put back when it differs.
A create does not wait for the new role to show: its inline policies are put side by side, each
retrying IAM's NoSuchEntity while the role propagates.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, unless_gone
from byoc.aws.tags import address_of, is_owned
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._iam import (
    IAM_SETTLE_SECONDS,
    changed_props,
    check_adoptable,
    cluster_path,
    delete_and_wait,
    iam_tags,
    ignore_gone,
    normalise_policy,
    pages,
    policy_text,
    sync_tags,
    tags_of,
    unsettled,
)
from byoc.resources._shapes import json_text
from byoc.resources.base import ResourceType


class IamRole(ResourceType):
    kind = "aws_iam_role"
    service = "iam"
    seconds = (3.0, 3.0)
    force_new = frozenset({"name", "path"})

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``assume_role_policy`` as JSON text; ``inline_policies`` as the provider's
        ``inline_policy`` blocks ``{name, policy}`` (policy as JSON text), by name."""
        out = {k: v for k, v in values.items() if k != "inline_policies"}
        if "assume_role_policy" in values:
            out["assume_role_policy"] = json_text(values["assume_role_policy"])
        if "inline_policies" in values:
            policies = values["inline_policies"]
            out["inline_policy"] = policies if not isinstance(policies, Mapping) else [
                {"name": name, "policy": json_text(policies[name])} for name in sorted(policies)]
        return out

    # -- reading -----------------------------------------------------------------------------
    def discover(self, ctx: AwsContext) -> list[Live]:
        expected = ctx.expected(self.kind)
        if expected is not None:  # names are unique in an account: read the expected ones
            named = (self._read_named(ctx, name, policies) for name, policies in sorted(expected.items()))
            return [live for live in named if live is not None]
        prefix = cluster_path(ctx)
        out = []
        for role in pages(ctx.client("iam"), "list_roles", "Roles", PathPrefix=prefix):
            if not role["Path"].startswith(prefix):
                continue
            live = self._read_rest(ctx, role)
            if live is not None:
                out.append(live)
        return out

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        return self._read_named(ctx, aws_id, None)

    def _read_named(self, ctx: AwsContext, name: str, policies: frozenset[str] | None) -> Live | None:
        """The role ``name`` if it is the cluster's (under its path, with its tags), read with one
        GetRole, and the inline ``policies`` (None: the ones IAM lists); None if not ours or gone."""
        role = unless_gone(lambda: ctx.client("iam").get_role(RoleName=name)["Role"])
        if role is None or not role["Path"].startswith(cluster_path(ctx)):
            return None
        tags = tags_of(role.get("Tags"))
        return self._with_policies(ctx, role, tags, policies) if is_owned(ctx, tags) else None

    def _read_rest(self, ctx: AwsContext, role: Mapping[str, Any], address: str | None = None) -> Live | None:
        """Tags and inline policies of a listed role (``address`` given: ``role`` is GetRole's answer
        already); None if not ours or gone meanwhile. A listed role is read again with GetRole:
        ListRoles leaves out its tags and its permissions boundary."""
        name = role["RoleName"]
        if address is None:
            got = unless_gone(lambda: ctx.client("iam").get_role(RoleName=name)["Role"])
            if got is None:
                return None
            role = got
        tags = tags_of(role.get("Tags"))
        if address is None and not is_owned(ctx, tags):
            return None
        return self._with_policies(ctx, role, tags, None, address)

    def _with_policies(
        self,
        ctx: AwsContext,
        role: Mapping[str, Any],
        tags: dict[str, str],
        policies: frozenset[str] | None,
        address: str | None = None,
    ) -> Live | None:
        """The role's Live with its inline policies: each of ``policies`` that exists (None: the
        ones IAM lists); None if the role is gone."""
        iam = ctx.client("iam")
        name = role["RoleName"]
        names = policies if policies is not None else unless_gone(
            lambda: frozenset(map(str, pages(iam, "list_role_policies", "PolicyNames", RoleName=name))))
        if names is None:
            return None
        docs = {}
        for policy in sorted(names):  # NoSuchEntity: absent (deleted by hand: drift, put back by apply)
            got = unless_gone(partial(iam.get_role_policy, RoleName=name, PolicyName=policy))
            if got is not None:
                docs[policy] = got["PolicyDocument"]
        props = {
            "name": name,
            "path": role["Path"],
            "description": role.get("Description") or "",
            "assume_role_policy": role["AssumeRolePolicyDocument"],
            "inline_policies": docs,
            "max_session_duration": role.get("MaxSessionDuration") or 3600,
            "tags": tags,
        }
        boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if boundary:
            props["permissions_boundary"] = boundary
        return self._live(address or address_of(tags, self.kind, name), role, props)

    def _live(self, address: str, role: Mapping[str, Any], props: Mapping[str, Any]) -> Live:
        attrs = {"arn": role["Arn"], "unique_id": role["RoleId"], "name": role["RoleName"]}
        return Live(address, self.kind, role["RoleName"], _props(props), attrs)

    # -- writing -----------------------------------------------------------------------------
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        iam = ctx.client("iam")
        p = _props(props)
        params: dict[str, Any] = {
            "RoleName": p["name"],
            "Path": p["path"],
            "AssumeRolePolicyDocument": policy_text(p["assume_role_policy"]),
            "MaxSessionDuration": p["max_session_duration"],
            "Tags": iam_tags(p["tags"]),
        }
        if p["description"]:
            params["Description"] = p["description"]
        if p.get("permissions_boundary"):
            params["PermissionsBoundary"] = p["permissions_boundary"]
        try:
            role = iam.create_role(**params)["Role"]
        except ClientError as exc:
            if error_code(exc) != "EntityAlreadyExists":
                raise
            return self._adopt(ctx, address, p)
        # no wait for the role to show: each policy's put waits out IAM's propagation itself
        ctx.together(*(partial(self._put_new_policy, ctx, address, p["name"], name, doc)
                       for name, doc in p["inline_policies"].items()))
        return self._live(address, role, p)

    def _put_new_policy(self, ctx: AwsContext, address: str, role: str, name: str, doc: Any) -> None:
        """Put an inline policy on a role just created: for a moment after CreateRole, IAM may
        answer NoSuchEntity (eventual consistency); retried for the settle time, then reported."""
        iam = ctx.client("iam")
        timeout = min(ctx.retry_timeout, IAM_SETTLE_SECONDS)
        with unsettled(f"IAM role {role!r} was created, but IAM still answers NoSuchEntity to putting "
                       f"its inline policy {name!r} after {timeout:.0f} s (was the role deleted meanwhile?)",
                       address=address, aws_id=role):
            ctx.retry(partial(iam.put_role_policy, RoleName=role, PolicyName=name,
                              PolicyDocument=policy_text(doc)),
                      codes={"NoSuchEntity"}, timeout=timeout)

    def _adopt(self, ctx: AwsContext, address: str, p: Mapping[str, Any]) -> Live:
        """The name is taken: a role of ours under ``address`` (a crashed run) is brought in line
        with ``p``; anything else is reported."""
        role = ctx.client("iam").get_role(RoleName=p["name"])["Role"]
        tags = tags_of(role.get("Tags"))
        check_adoptable(ctx, "IAM role", p["name"], tags, address)
        if role["Path"] != p["path"]:
            raise CloudError(
                f"IAM role {p['name']!r} already exists under path {role['Path']!r}, not {p['path']!r}",
                address=address, aws_id=p["name"], code="EntityAlreadyExists",
            )
        current = self._read_rest(ctx, role, address)
        if current is None:
            raise CloudError(f"IAM role {p['name']!r} vanished while being adopted",
                             address=address, aws_id=p["name"], code="NoSuchEntity")
        changed = changed_props(current.props, p)
        return self.update(ctx, current, p, changed) if changed else current

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        iam = ctx.client("iam")
        p = _props(props)
        name = live.id
        if "assume_role_policy" in changed:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=policy_text(p["assume_role_policy"]))
        if changed & {"description", "max_session_duration"}:
            # both always: UpdateRole without one of them may reset it
            iam.update_role(
                RoleName=name, Description=p["description"], MaxSessionDuration=p["max_session_duration"]
            )
        if "inline_policies" in changed:
            old, new = live.props["inline_policies"], p["inline_policies"]
            for policy, doc in new.items():
                if old.get(policy) != doc:
                    iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=policy_text(doc))
            for policy in sorted(set(old) - set(new)):
                ignore_gone(partial(iam.delete_role_policy, RoleName=name, PolicyName=policy))
        if "permissions_boundary" in changed and p.get("permissions_boundary"):
            iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=p["permissions_boundary"])
        if "tags" in changed:
            sync_tags(
                live.props["tags"],
                p["tags"],
                lambda tags: iam.tag_role(RoleName=name, Tags=iam_tags(tags)),
                lambda keys: iam.untag_role(RoleName=name, TagKeys=keys),
            )
        return Live(live.address, self.kind, live.id, p, dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        iam = ctx.client("iam")
        name = live.id
        try:
            # what holds the role, read at once; then all of it let go at once
            policies, attached, profiles = ctx.together(
                lambda: pages(iam, "list_role_policies", "PolicyNames", RoleName=name),
                lambda: pages(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name),
                lambda: pages(iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=name),
            )
            ctx.together(
                *(partial(ignore_gone, partial(iam.delete_role_policy, RoleName=name, PolicyName=p))
                  for p in policies),
                *(partial(ignore_gone,
                          partial(iam.detach_role_policy, RoleName=name, PolicyArn=a["PolicyArn"]))
                  for a in attached),
                *(partial(ignore_gone, partial(iam.remove_role_from_instance_profile,
                                               InstanceProfileName=p["InstanceProfileName"], RoleName=name))
                  for p in profiles),
            )
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            return
        # DeleteConflict for a few seconds after the role left its profiles / lost its policies
        delete_and_wait(ctx, live, lambda: iam.delete_role(RoleName=name),
                        lambda: iam.get_role(RoleName=name)["Role"])


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly (policy documents in normal form)."""
    out: dict[str, Any] = {
        "name": props["name"],
        "path": props["path"],
        "description": props.get("description") or "",
        "assume_role_policy": normalise_policy(props["assume_role_policy"]),
        "inline_policies": {
            name: normalise_policy(doc)
            for name, doc in sorted(dict(props.get("inline_policies") or {}).items())
        },
        "max_session_duration": int(props.get("max_session_duration") or 3600),
        "tags": dict(props["tags"]),
    }
    if props.get("permissions_boundary"):  # only when set: a role without one reads as before
        out["permissions_boundary"] = str(props["permissions_boundary"])
    return out


KIND = IamRole()
