"""``aws_lb_target_group_attachment``: one instance registered in one target group on one port.

Not taggable: discovery reads each owned group's targets and names an attachment after its group
and instance (``aws_lb_target_group.main["8123"]`` + ``aws_instance.node["0"]`` →
``aws_lb_target_group_attachment.node["8123-0"]``). Delete waits until the target has drained;
``wait_healthy`` waits until the load balancer's health checks pass (rolling node changes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, is_not_found
from byoc.aws.tags import ADDRESS_TAG, CLUSTER_TAG, is_owned
from byoc.errors import CloudError
from byoc.model import Live, make_address, parse_address
from byoc.resources._batch import Batcher, batcher
from byoc.resources._ec2 import ADDRESS_BATCH
from byoc.resources._elb import cluster_instances, is_registered, owned_target_groups, target_health
from byoc.resources.base import ResourceType

#: "the target is not registered": DescribeTargetHealth(Targets=…) reports it as unused for this reason
#: deregistration delay can be up to an hour
_DRAIN_TIMEOUT = 3600.0 + 300.0
#: how long a new instance may be unknown to ELB (InvalidTarget) before registering fails
_REGISTER_TIMEOUT = 300.0


class TargetGroupAttachment(ResourceType):
    kind = "aws_lb_target_group_attachment"
    service = "elbv2"
    seconds = (1.0, 30.0)
    force_new = frozenset({"target_group_arn", "target_id", "port"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        return self._registered(ctx, lambda ids: _addresses_described(ctx))

    def looked_at(self, ctx: AwsContext) -> list[Live]:
        """The look before create: the registered instances' addresses from their tags alone
        (DescribeTags), not a describe of every instance of the cluster."""
        return self._registered(ctx, lambda ids: _addresses_tagged(ctx, ids))

    def _registered(self, ctx: AwsContext, addresses: Callable[[list[str]], dict[str, str]]) -> list[Live]:
        """The registered targets of the owned groups whose instance is one of the cluster's managed
        ones; ``addresses(ids)``: {instance id: its byoc:address} of the cluster's among ``ids``."""
        targets = []  # (group, group tags, target) of every registered target not being removed
        for tg, tg_tags in owned_target_groups(ctx):
            for desc in target_health(ctx, tg["TargetGroupArn"]) or ():
                if desc["TargetHealth"].get("State") != "draining" and is_registered(desc):
                    targets.append((tg, tg_tags, desc["Target"]))
        if not targets:
            return []
        instances = addresses(sorted({target["Id"] for _, _, target in targets}))
        out = []
        for tg, tg_tags, target in targets:
            instance_address = instances.get(target["Id"])
            if instance_address is None or ADDRESS_TAG not in tg_tags:
                continue  # not one of this cluster's managed instances or target groups
            try:
                address = attachment_address(tg_tags[ADDRESS_TAG], instance_address)
            except ValueError:
                continue  # a hand-made tag that is no address
            port = int(target.get("Port") or tg["Port"])
            props = {"target_group_arn": tg["TargetGroupArn"], "target_id": target["Id"], "port": port}
            out.append(Live(address, self.kind, _id(props), props, {}))
        return out

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        want = _props(props)
        # a just-launched instance may be unknown to ELB for a moment; the nodes registering in
        # this group at the same moment share one call (each attachment is recorded once AWS took it)
        registrar = _batched(ctx, "register", want["target_group_arn"], _register)
        ctx.retry(
            lambda: registrar.get((want["target_id"], want["port"])),
            codes={"InvalidTarget"},
            timeout=min(ctx.retry_timeout, _REGISTER_TIMEOUT),
        )
        # registered is enough: "healthy" needs Proton up, which is not this resource's business
        try:
            ctx.poll(
                lambda: _state(ctx, want),
                lambda desc: (
                    desc is not None and desc["TargetHealth"].get("State") != "draining"
                    and is_registered(desc)
                ),
                timeout=300.0,
                what=f"{want['target_id']} to be registered in {want['target_group_arn']}",
            )
        except CloudError as exc:
            exc.address, exc.aws_id = address, _id(want)
            raise
        return Live(address, self.kind, _id(want), want, {})

    def delete(self, ctx: AwsContext, live: Live) -> None:
        want = _props(live.props)
        elb = ctx.client("elbv2")
        target = {"Id": want["target_id"], "Port": want["port"]}
        try:
            ctx.retry(
                lambda: elb.deregister_targets(TargetGroupArn=want["target_group_arn"], Targets=[target])
            )
        except ClientError as exc:
            # InvalidTarget: the instance is gone or was never registered
            if not (is_not_found(exc) or error_code(exc) == "InvalidTarget"):
                raise
        # the node must not be stopped while it still drains (deregistration delay)
        try:
            ctx.poll(
                lambda: _state(ctx, want),
                lambda desc: desc is None or not is_registered(desc),
                timeout=_DRAIN_TIMEOUT,
                what=f"{want['target_id']} to drain from {want['target_group_arn']}",
            )
        except CloudError as exc:
            exc.address, exc.aws_id = live.address, live.id
            raise


    def wait_healthy(self, ctx: AwsContext, live: Live, *, timeout: float) -> None:
        """Wait until the target is ``healthy`` (AWS: ``initial`` for healthy_threshold times interval
        after registration, while Proton starts). ``unused`` for reason Target.NotInUse (no
        listener uses the group: nothing checks it) and ``unavailable`` (health checks off) pass."""
        want = _props(live.props)
        last: list[dict[str, Any] | None] = [None]

        def read() -> dict[str, Any] | None:
            last[0] = _state(ctx, want)
            return last[0]

        try:
            ctx.poll(read, _healthy, timeout=timeout,
                     what=f"{want['target_id']} to be healthy in {want['target_group_arn']}")
        except CloudError as exc:
            health = (last[0] or {}).get("TargetHealth") or {}
            seen = " ".join(str(x) for x in (health.get("State"), health.get("Reason")) if x)
            seen = seen or "not registered"
            detail = f" ({health['Description']})" if health.get("Description") else ""
            raise CloudError(
                f"instance {want['target_id']} did not become healthy in target group "
                f"{want['target_group_arn'].rsplit(':', 1)[-1]} within {timeout:.0f}s: last seen "
                f"{seen}{detail}",
                address=live.address, aws_id=want["target_id"], code="TargetUnhealthy",
            ) from exc


def _addresses_described(ctx: AwsContext) -> dict[str, str]:
    """{instance id: byoc:address} of the cluster's managed instances, from the describe of them
    that discovery shares with the instance kind."""
    out = {}
    for inst in cluster_instances(ctx):
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags") or ()}
        if is_owned(ctx, tags) and ADDRESS_TAG in tags:
            out[inst["InstanceId"]] = tags[ADDRESS_TAG]
    return out


def _addresses_tagged(ctx: AwsContext, ids: list[str]) -> dict[str, str]:
    """{instance id: byoc:address} of the cluster's managed instances among ``ids``, from their
    tags alone (DescribeTags, ``ADDRESS_BATCH`` ids a call: EC2 takes 200 filter values in all)."""
    ec2 = ctx.client("ec2")
    tags: dict[str, dict[str, str]] = {}
    for i in range(0, len(ids), ADDRESS_BATCH):
        filters = [{"Name": "resource-id", "Values": ids[i : i + ADDRESS_BATCH]},
                   {"Name": "key", "Values": [CLUSTER_TAG, ADDRESS_TAG]}]
        for page in ec2.get_paginator("describe_tags").paginate(Filters=filters):
            for t in page["Tags"]:
                tags.setdefault(t["ResourceId"], {})[t["Key"]] = t["Value"]
    return {rid: kv[ADDRESS_TAG] for rid, kv in tags.items() if is_owned(ctx, kv) and ADDRESS_TAG in kv}


def _healthy(desc: Mapping[str, Any] | None) -> bool:
    health = (desc or {}).get("TargetHealth") or {}
    state, reason = health.get("State"), health.get("Reason")
    return state in ("healthy", "unavailable") or (state == "unused" and reason == "Target.NotInUse")


def attachment_address(tg_address: str, instance_address: str) -> str:
    """The attachment's address by convention: the instance's name, keyed "<group key>-<instance key>"."""
    _, _, tg_key = parse_address(tg_address)
    _, name, instance_key = parse_address(instance_address)
    key = "-".join(k for k in (tg_key, instance_key) if k is not None)
    return make_address("aws_lb_target_group_attachment", name, key or None)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "target_group_arn": props["target_group_arn"],
        "target_id": props["target_id"],
        "port": int(props["port"]),
    }


def _id(props: Mapping[str, Any]) -> str:
    return f"{props['target_group_arn']}|{props['target_id']}|{props['port']}"


#: (instance id, port): one target of a group
Target = tuple[str, int]
#: targets per RegisterTargets / DescribeTargetHealth of the batched calls
_BATCH = 100


#: a call about some targets of one group: {target: its answer}
_Call = Callable[[AwsContext, str, list[Target]], dict[Target, Any]]


def _batched(ctx: AwsContext, what: str, tg_arn: str, call: _Call) -> Batcher[Target, Any]:
    """The context's batcher of ``call`` for the targets of one group."""
    return batcher(ctx, f"elbv2:{what}:{tg_arn}",
                   lambda: Batcher(lambda keys: call(ctx, tg_arn, keys), size=_BATCH))


def _one_at_a_time(ctx: AwsContext, tg_arn: str, keys: list[Target], call: _Call) -> dict[Target, Any]:
    """``call`` for each target alone, its error kept as its own answer: AWS refuses a whole call
    for one target it does not know (InvalidTarget), and must not fail the others."""
    out: dict[Target, Any] = {}
    for key in keys:
        try:
            out.update(call(ctx, tg_arn, [key]))
        except ClientError as exc:
            out[key] = exc
    return out


def _register(ctx: AwsContext, tg_arn: str, keys: list[Target]) -> dict[Target, Any]:
    """RegisterTargets for ``keys`` in one call: {target: True}."""
    try:
        ctx.client("elbv2").register_targets(
            TargetGroupArn=tg_arn, Targets=[{"Id": i, "Port": p} for i, p in keys])
    except ClientError as exc:
        if error_code(exc) == "InvalidTarget" and len(keys) > 1:
            return _one_at_a_time(ctx, tg_arn, keys, _register)
        raise
    return dict.fromkeys(keys, True)


def _health(ctx: AwsContext, tg_arn: str, keys: list[Target]) -> dict[Target, Any]:
    """DescribeTargetHealth of ``keys`` in one call; none found when the group or an instance is
    gone (a batch refused for one unknown instance is read again one target at a time)."""
    try:
        descs = ctx.client("elbv2").describe_target_health(
            TargetGroupArn=tg_arn, Targets=[{"Id": i, "Port": p} for i, p in keys]
        )["TargetHealthDescriptions"]
    except ClientError as exc:
        if error_code(exc) == "InvalidTarget" and len(keys) > 1:
            return _one_at_a_time(ctx, tg_arn, keys, _health)
        if is_not_found(exc) or error_code(exc) == "InvalidTarget":
            return {}
        raise
    out: dict[Target, Any] = {}
    for desc in descs:
        target = desc["Target"]
        for key in keys:
            if target["Id"] == key[0] and int(target.get("Port") or key[1]) == key[1]:
                out.setdefault(key, dict(desc))
    return out


def _state(ctx: AwsContext, want: Mapping[str, Any]) -> dict[str, Any] | None:
    """DescribeTargetHealth of this one target (with the group's other targets read at that
    moment); None when the group or the instance is gone."""
    found: dict[str, Any] | None = _batched(ctx, "health", want["target_group_arn"], _health).get(
        (want["target_id"], want["port"]))
    return found


KIND = TargetGroupAttachment()
