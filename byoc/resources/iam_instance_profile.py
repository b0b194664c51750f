"""``aws_iam_instance_profile``: an instance profile under ``/byoc/<cluster>/`` holding one role.

A plan's discovery reads the profiles the spec and state name, a full audit (``ctx.known`` None)
lists them by path; either reads each one with GetInstanceProfile (its tags and role);
adding a role retries IAM's eventual consistency right after the role or the profile was created
(a create does not wait for the new profile to show).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
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
    pages,
    sync_tags,
    tags_of,
    unsettled,
)
from byoc.resources.base import ResourceType


class IamInstanceProfile(ResourceType):
    kind = "aws_iam_instance_profile"
    service = "iam"
    seconds = (10.0, 3.0)
    force_new = frozenset({"name", "path"})
    #: a profile holding a role blocks deleting the role
    pins = frozenset({"role"})

    # -- reading -----------------------------------------------------------------------------
    def discover(self, ctx: AwsContext) -> list[Live]:
        expected = ctx.expected(self.kind)
        if expected is not None:  # names are unique in an account: read the expected ones
            names = sorted(expected)
        else:
            prefix = cluster_path(ctx)
            listed = pages(ctx.client("iam"), "list_instance_profiles", "InstanceProfiles", PathPrefix=prefix)
            # ListInstanceProfiles returns no tags (and moto ignores PathPrefix): read each of ours
            names = [item["InstanceProfileName"] for item in listed if item["Path"].startswith(prefix)]
        named = (self.read(ctx, name) for name in names)
        return [live for live in named if live is not None]

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        """The profile ``aws_id`` (one GetInstanceProfile) if it is the cluster's: under its path,
        with its tags."""
        profile = self._get(ctx, aws_id)
        if profile is None or not profile["Path"].startswith(cluster_path(ctx)):
            return None
        return self._live(profile) if is_owned(ctx, tags_of(profile.get("Tags"))) else None

    def _get(self, ctx: AwsContext, name: str) -> dict[str, Any] | None:
        try:
            profile: dict[str, Any] = ctx.client("iam").get_instance_profile(InstanceProfileName=name)[
                "InstanceProfile"
            ]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        return profile

    def _live(self, profile: Mapping[str, Any], address: str | None = None) -> Live:
        tags = tags_of(profile.get("Tags"))
        roles = sorted(r["RoleName"] for r in profile.get("Roles") or ())
        props = {
            "name": profile["InstanceProfileName"],
            "path": profile["Path"],
            "role": roles[0] if roles else "",
            "tags": tags,
        }
        attrs = {"arn": profile["Arn"], "name": profile["InstanceProfileName"]}
        name = profile["InstanceProfileName"]
        return Live(address or address_of(tags, self.kind, name), self.kind, name, props, attrs)

    # -- writing -----------------------------------------------------------------------------
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        iam = ctx.client("iam")
        p = _props(props)
        name = p["name"]
        try:
            profile = iam.create_instance_profile(
                InstanceProfileName=name, Path=p["path"], Tags=iam_tags(p["tags"])
            )["InstanceProfile"]
        except ClientError as exc:
            if error_code(exc) != "EntityAlreadyExists":
                raise
            return self._adopt(ctx, address, p)
        # no wait for the profile to show: adding the role waits out IAM's propagation itself
        if p["role"]:
            self._add_role(ctx, address, name, p["role"])
        roles = [{"RoleName": p["role"]}] if p["role"] else []
        profile = {**profile, "Roles": roles, "Tags": iam_tags(p["tags"])}
        return self._live(profile, address)

    def _adopt(self, ctx: AwsContext, address: str, p: Mapping[str, Any]) -> Live:
        """The name is taken: a profile of ours under ``address`` (a crashed run) is brought in
        line with ``p``; anything else is reported."""
        profile = self._get(ctx, p["name"])
        if profile is None:
            raise CloudError(f"instance profile {p['name']!r} vanished while being adopted",
                             address=address, aws_id=p["name"], code="NoSuchEntity")
        check_adoptable(ctx, "IAM instance profile", p["name"], tags_of(profile.get("Tags")), address)
        if profile["Path"] != p["path"]:
            raise CloudError(
                f"instance profile {p['name']!r} already exists under path {profile['Path']!r}, "
                f"not {p['path']!r}",
                address=address, aws_id=p["name"], code="EntityAlreadyExists",
            )
        current = self._live(profile, address)
        changed = changed_props(current.props, p)
        return self.update(ctx, current, p, changed) if changed else current

    def _add_role(self, ctx: AwsContext, address: str, name: str, role: str) -> None:
        """Put ``role`` in the profile ``name``. Right after CreateRole / CreateInstanceProfile, IAM
        may answer NoSuchEntity for seconds: retried for the settle time, then reported."""
        iam = ctx.client("iam")
        timeout = min(ctx.retry_timeout, IAM_SETTLE_SECONDS)

        def added() -> bool:
            profile = self._get(ctx, name)
            return profile is not None and role in {r["RoleName"] for r in profile.get("Roles") or ()}

        # LimitExceeded: the profile holds a role already, this one if an earlier answer was lost
        with unsettled(f"IAM still answers NoSuchEntity to adding role {role!r} to instance profile "
                       f"{name!r} after {timeout:.0f} s: the role or the profile does not exist "
                       "(deleted, or a wrong role name?)", address=address, aws_id=name):
            ctx.mutate(
                lambda: ctx.retry(
                    lambda: iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role),
                    codes={"NoSuchEntity"},
                    timeout=timeout,
                ),
                already={"LimitExceeded", "EntityAlreadyExists"},
                done=added,
            )

    def _remove_roles(self, ctx: AwsContext, name: str, roles: list[str]) -> None:
        remove = ctx.client("iam").remove_role_from_instance_profile
        for role in roles:
            ignore_gone(partial(remove, InstanceProfileName=name, RoleName=role))

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        iam = ctx.client("iam")
        p = _props(props)
        name = live.id
        if "role" in changed:
            profile = self._get(ctx, name)
            if profile is None:
                raise CloudError("instance profile vanished", address=live.address, aws_id=name,
                                 code="NoSuchEntity")
            roles = [r["RoleName"] for r in profile.get("Roles") or ()]
            self._remove_roles(ctx, name, [r for r in roles if r != p["role"]])
            if p["role"] and p["role"] not in roles:
                self._add_role(ctx, live.address, name, p["role"])
        if "tags" in changed:
            sync_tags(
                live.props["tags"],
                p["tags"],
                lambda tags: iam.tag_instance_profile(InstanceProfileName=name, Tags=iam_tags(tags)),
                lambda keys: iam.untag_instance_profile(InstanceProfileName=name, TagKeys=keys),
            )
        return Live(live.address, self.kind, live.id, p, dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        iam = ctx.client("iam")
        name = live.id
        profile = self._get(ctx, name)
        if profile is None:
            return
        self._remove_roles(ctx, name, [r["RoleName"] for r in profile.get("Roles") or ()])
        # DeleteConflict for a few seconds after its role was removed
        delete_and_wait(ctx, live, lambda: iam.delete_instance_profile(InstanceProfileName=name),
                        lambda: iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"])


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "name": props["name"],
        "path": props["path"],
        "role": props.get("role") or "",
        "tags": dict(props["tags"]),
    }


KIND = IamInstanceProfile()
