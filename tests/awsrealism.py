"""Hooks that make moto behave like AWS where moto is stricter or simpler (a seam, not a fake).

Each hook is registered on a real boto3 client talking to moto and adjusts moto's own state the
way AWS would, using moto's own API.
"""

from __future__ import annotations

from typing import Any


def free_eips_of_deleted_nat_gateways(ec2: Any) -> None:
    """AWS disassociates a NAT gateway's Elastic IPs when the gateway is deleted; moto keeps them
    associated (so a new NAT gateway on the same EIP fails with Resource.AlreadyAssociated)."""

    def after_delete(parsed: dict[str, Any], **kwargs: Any) -> None:
        nat_id = parsed.get("NatGatewayId")
        if not nat_id:
            return
        for nat in ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]:
            for addr in nat.get("NatGatewayAddresses", []):
                if addr.get("AssociationId"):
                    ec2.disassociate_address(AssociationId=addr["AssociationId"])

    ec2.meta.events.register_first("after-call.ec2.DeleteNatGateway", after_delete)


def count_topic_subscriptions(parsed: dict[str, Any], **kwargs: Any) -> None:
    """``after-call.sns.GetTopicAttributes`` hook: AWS counts a topic's subscriptions in
    ``SubscriptionsConfirmed``/``SubscriptionsPending``; moto always answers "0". This answers
    moto's own count (all confirmed: moto confirms at once). Register it through AwsContext's
    ``event_hooks`` (see ``SNS_COUNTS``) or on an SNS client."""
    from moto.sns.models import sns_backends

    attributes = parsed.get("Attributes") or {}
    arn = attributes.get("TopicArn")
    if not arn:
        return
    region, account = arn.split(":")[3:5]
    subs = sns_backends[account][region].subscriptions.values()
    attributes["SubscriptionsConfirmed"] = str(sum(1 for sub in subs if sub.topic.arn == arn))


#: AwsContext ``event_hooks`` that make moto's topic attributes count subscriptions as AWS does
SNS_COUNTS = (("after-call.sns.GetTopicAttributes", count_topic_subscriptions),)


class TargetHealth:
    """DescribeTargetHealth as AWS answers it where moto is instant: a deregistered target is
    ``draining`` for a while (deregistration delay), a newly registered one is ``initial`` until
    its health checks pass, and targets marked here stay ``unhealthy`` (a node whose Proton does
    not come up). Counts are in DescribeTargetHealth answers, not seconds."""

    def __init__(self, elbv2: Any, *, draining: int = 2, initial: int = 1) -> None:
        self.draining_answers = draining
        self.initial_answers = initial
        self.draining: dict[tuple[str, str], int] = {}
        self.initial: dict[tuple[str, str], int] = {}
        #: instance ids that never become healthy; ``fail_new`` adds every one registered later
        self.unhealthy: set[str] = set()
        self.fail_new = False
        #: the target id of every draining answer given, in order
        self.drained: list[str] = []
        events = elbv2.meta.events
        events.register_first("before-parameter-build.elbv2", _stash_params)
        events.register("after-call.elbv2.DeregisterTargets", self._deregistered)
        events.register("after-call.elbv2.RegisterTargets", self._registered)
        events.register("after-call.elbv2.DescribeTargetHealth", self._describe)

    def _deregistered(self, context: dict[str, Any], **kw: Any) -> None:
        params = context.get("test_params", {})
        for t in params.get("Targets", ()):
            self.draining[(params["TargetGroupArn"], t["Id"])] = self.draining_answers

    def _registered(self, context: dict[str, Any], **kw: Any) -> None:
        params = context.get("test_params", {})
        for t in params.get("Targets", ()):
            self.initial[(params["TargetGroupArn"], t["Id"])] = self.initial_answers
            if self.fail_new:
                self.unhealthy.add(t["Id"])

    def _describe(self, parsed: dict[str, Any], context: dict[str, Any], **kw: Any) -> None:
        tg = context.get("test_params", {}).get("TargetGroupArn", "")
        for desc in parsed.get("TargetHealthDescriptions", ()):
            key, health = (tg, desc["Target"]["Id"]), desc["TargetHealth"]
            if self.draining.get(key, 0) > 0:
                self.draining[key] -= 1
                self.drained.append(key[1])
                health.update(State="draining", Reason="Target.DeregistrationInProgress",
                              Description="Target deregistration is in progress")
            elif health.get("State") == "healthy" and key[1] in self.unhealthy:
                health.update(State="unhealthy", Reason="Target.ResponseCodeMismatch",
                              Description="Health checks failed with these codes: [502]")
            elif health.get("State") == "healthy" and self.initial.get(key, 0) > 0:
                self.initial[key] -= 1
                health.update(State="initial", Reason="Elb.RegistrationInProgress",
                              Description="Target registration is in progress")


def _stash_params(params: dict[str, Any], context: dict[str, Any], **kw: Any) -> None:
    """Keep a call's parameters where its after-call hook finds them (same request context)."""
    context["test_params"] = dict(params)


def record_calls(ctx: Any, *services: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every successful call of ``services`` on ctx's clients, in the order they completed, as
    (action, parameters, answer)."""
    import threading

    lock = threading.Lock()
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def after(model: Any, parsed: dict[str, Any], context: dict[str, Any], **kw: Any) -> None:
        with lock:
            calls.append((model.name, context.get("test_params", {}), parsed))

    for service in services:
        events = ctx.client(service).meta.events
        events.register_first(f"before-parameter-build.{service}", _stash_params)
        events.register(f"after-call.{service}", after)
    return calls


def https_bucket_policies(monkeypatch: Any) -> None:
    """AWS evaluates a bucket policy's ``aws:SecureTransport`` from the request: byoc's calls go
    over HTTPS, so the cluster bucket's "deny unless TLS" statement does not match them. moto
    (in-process and server) cannot evaluate a ``Bool`` condition and counts it as matching, so
    every object call is denied. In-process requests are HTTPS (boto3 sends them to
    ``https://…amazonaws.com`` and moto intercepts them), so this evaluates the bucket policy as
    the sandbox's server does for a request over TLS (``byoc.sandbox.secure_transport_permission``).
    The policy stored on the bucket is left untouched."""
    from moto.s3.models import FakeBucket

    from byoc.sandbox import secure_transport_permission

    monkeypatch.setattr(FakeBucket, "get_permission", secure_transport_permission(lambda: True))


def replaced_profiles_show_on_instances() -> Any:
    """AWS's DescribeInstances shows an instance's new profile after
    ReplaceIamInstanceProfileAssociation; moto updates only the association. A context manager
    (for in-process moto) that makes moto's replace update the instance too."""
    from unittest import mock

    from moto.ec2.models.iam_instance_profile import IamInstanceProfileAssociationBackend as Backend

    original = Backend.replace_iam_instance_profile_association

    def replace(self: Any, association_id: str, *args: Any, **kwargs: Any) -> Any:
        assoc = original(self, association_id, *args, **kwargs)
        self.modify_instance_attribute(assoc.instance_id, "iam_instance_profile",
                                       {"Arn": assoc.iam_instance_profile.arn, "Id": association_id})
        return assoc

    return mock.patch.object(Backend, "replace_iam_instance_profile_association", replace)


def lb_deletion_protection() -> None:
    """AWS refuses DeleteLoadBalancer while the load balancer's ``deletion_protection.enabled`` is
    true (OperationNotPermitted); moto deletes it anyway. moto's backend refuses it the same way
    (in-process, and in the moto server that ``tests.realmoto`` runs)."""
    from moto.elbv2.exceptions import ELBClientError
    from moto.elbv2.models import ELBv2Backend

    if getattr(ELBv2Backend, "_byoc_protection", False):
        return
    delete = ELBv2Backend.delete_load_balancer

    def delete_load_balancer(self: Any, arn: str) -> None:
        lb = self.load_balancers.get(arn)
        if lb is not None and str(lb.attrs.get("deletion_protection.enabled")).lower() == "true":
            raise ELBClientError(
                "OperationNotPermitted",
                f"Load balancer '{arn}' cannot be deleted because deletion protection is enabled",
            )
        delete(self, arn)

    ELBv2Backend.delete_load_balancer = delete_load_balancer  # type: ignore[method-assign]
    ELBv2Backend._byoc_protection = True  # type: ignore[attr-defined]


def log_group_kms_keys() -> Any:
    """AWS associates a KMS key with a log group (AssociateKmsKey) and takes it off again
    (DisassociateKmsKey); moto 5.2 implements neither (NotImplementedError). A context manager (for
    in-process moto) that gives moto's logs responses both, on moto's own log group records."""
    from contextlib import ExitStack
    from unittest import mock

    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    def set_key(response: Any, key: str | None) -> str:
        name = response._get_param("logGroupName")
        group = response.logs_backend.groups.get(name)
        if group is None:
            raise ResourceNotFoundException()
        group.kms_key_id = key
        return ""

    def associate(self: Any) -> str:
        return set_key(self, self._get_param("kmsKeyId"))

    def disassociate(self: Any) -> str:
        return set_key(self, None)

    stack = ExitStack()
    stack.enter_context(mock.patch.object(LogsResponse, "associate_kms_key", associate, create=True))
    stack.enter_context(mock.patch.object(LogsResponse, "disassociate_kms_key", disassociate, create=True))
    return stack
