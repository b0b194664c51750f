"""Drift against moto: one dev cluster is applied once per module; each case changes it behind
byoc's back through boto3 (as another tool or a person would), then asserts what `drift` reports,
that apply repairs it, and that drift is back in sync."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from byoc.drift import MISSING, MODIFIED, UNMANAGED, IgnoreRule
from byoc.errors import PlanError
from byoc.planner import PlanOptions
from byoc.render import render_plan
from byoc.state.model import State
from tests.clusterkit import Cluster, applied_cluster, owned_tags

T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from applied_cluster(tmp_path_factory)


# -- the changes made behind byoc's back --------------------------------------------------------
def open_ssh(c: Cluster) -> None:
    c.client("ec2").authorize_security_group_ingress(
        GroupId=c.id("aws_security_group.node"),
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])


def reroute_private(c: Cluster) -> None:
    c.client("ec2").replace_route(
        RouteTableId=c.id('aws_route_table.private["us-west-2a"]'), DestinationCidrBlock="0.0.0.0/0",
        GatewayId=c.id("aws_internet_gateway.main"))


def suspend_versioning(c: Cluster) -> None:
    c.client("s3").put_bucket_versioning(Bucket=c.id("aws_s3_bucket.data"),
                                         VersioningConfiguration={"Status": "Suspended"})


def change_encryption(c: Cluster) -> None:
    c.client("s3").put_bucket_encryption(
        Bucket=c.id("aws_s3_bucket.data"),
        ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})


def drop_public_access_block(c: Cluster) -> None:
    c.client("s3").delete_public_access_block(Bucket=c.id("aws_s3_bucket.data"))


def drop_bucket_policy(c: Cluster) -> None:
    c.client("s3").delete_bucket_policy(Bucket=c.id("aws_s3_bucket.data"))


def drop_lifecycle(c: Cluster) -> None:
    c.client("s3").delete_bucket_lifecycle(Bucket=c.id("aws_s3_bucket.data"))


def stop_access_logging(c: Cluster) -> None:
    c.client("s3").put_bucket_logging(Bucket=c.id("aws_s3_bucket.data"), BucketLoggingStatus={})


def stop_bucket_events(c: Cluster) -> None:
    c.client("s3").put_bucket_notification_configuration(Bucket=c.id("aws_s3_bucket.logs"),
                                                         NotificationConfiguration={})


def add_bucket_event_target(c: Cluster) -> None:
    """A target added by hand beside EventBridge: byoc manages the whole configuration."""
    topic = c.client("sns").create_topic(Name="added-by-hand")["TopicArn"]
    c.client("s3").put_bucket_notification_configuration(
        Bucket=c.id("aws_s3_bucket.data"),
        NotificationConfiguration={
            "EventBridgeConfiguration": {},
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectRemoved:*"]}],
        },
    )


def stop_lb_access_logs(c: Cluster) -> None:
    c.client("elbv2").modify_load_balancer_attributes(
        LoadBalancerArn=c.id("aws_lb.main"), Attributes=[{"Key": "access_logs.s3.enabled", "Value": "false"}])


def unprotect_lb(c: Cluster) -> None:
    c.client("elbv2").modify_load_balancer_attributes(
        LoadBalancerArn=c.id("aws_lb.main"),
        Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])


def resize_instance(c: Cluster) -> None:
    ec2, iid = c.client("ec2"), c.id('aws_instance.node["0"]')
    ec2.stop_instances(InstanceIds=[iid])
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.xlarge"})
    ec2.start_instances(InstanceIds=[iid])


def allow_imdsv1(c: Cluster) -> None:
    c.client("ec2").modify_instance_metadata_options(
        InstanceId=c.id('aws_instance.node["0"]'), HttpTokens="optional")


def move_listener(c: Cluster) -> None:
    c.client("elbv2").modify_listener(ListenerArn=c.id('aws_lb_listener.main["8123"]'), Port=9999)


def raise_alarm_threshold(c: Cluster) -> None:
    cw = c.client("cloudwatch")
    a = cw.describe_alarms(AlarmNames=[c.id('aws_cloudwatch_metric_alarm.cpu["0"]')])["MetricAlarms"][0]
    keep = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
            "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "Dimensions", "Period",
            "EvaluationPeriods", "DatapointsToAlarm", "ComparisonOperator", "TreatMissingData")
    cw.put_metric_alarm(**{k: a[k] for k in keep if k in a}, Threshold=a["Threshold"] + 10)


def lengthen_log_retention(c: Cluster) -> None:
    c.client("logs").put_retention_policy(logGroupName=c.id("aws_cloudwatch_log_group.main"),
                                          retentionInDays=30)


def retag_vpc(c: Cluster) -> None:
    c.client("ec2").create_tags(Resources=[c.id("aws_vpc.main")],
                                Tags=[{"Key": "Environment", "Value": "prod"},
                                      {"Key": "Owner", "Value": "x"}])


def drop_inline_policy(c: Cluster) -> None:
    c.client("iam").delete_role_policy(RoleName=c.id("aws_iam_role.node"), PolicyName="proton-node")


CASES: list[tuple[Callable[[Cluster], None], str, str]] = [
    (open_ssh, "aws_security_group.node", "ingress"),
    (reroute_private, 'aws_route_table.private["us-west-2a"]', "route"),
    (suspend_versioning, "aws_s3_bucket.data", "versioning"),
    (change_encryption, "aws_s3_bucket.data", "sse_algorithm"),
    (drop_public_access_block, "aws_s3_bucket.data", "public_access_block"),
    (drop_bucket_policy, "aws_s3_bucket.data", "policy"),
    (drop_lifecycle, "aws_s3_bucket.data", "lifecycle_rules"),
    (stop_access_logging, "aws_s3_bucket.data", "logging"),
    (stop_bucket_events, "aws_s3_bucket.logs", "notification"),
    (add_bucket_event_target, "aws_s3_bucket.data", "notification"),
    (stop_lb_access_logs, "aws_lb.main", "access_logs"),
    (unprotect_lb, "aws_lb.main", "enable_deletion_protection"),
    (resize_instance, 'aws_instance.node["0"]', "instance_type"),
    (allow_imdsv1, 'aws_instance.node["0"]', "metadata_options"),
    (move_listener, 'aws_lb_listener.main["8123"]', "port"),
    (raise_alarm_threshold, 'aws_cloudwatch_metric_alarm.cpu["0"]', "threshold"),
    (lengthen_log_retention, "aws_cloudwatch_log_group.main", "retention_in_days"),
    (retag_vpc, "aws_vpc.main", "tags"),
    (drop_inline_policy, "aws_iam_role.node", "inline_policies"),
]


@pytest.mark.parametrize(("change", "address", "attribute"), CASES, ids=[c[0].__name__ for c in CASES])
def test_modified_attribute_is_reported_and_repaired(
    cluster: Cluster, change: Callable[[Cluster], None], address: str, attribute: str
) -> None:
    change(cluster)
    report = cluster.engine().drift()
    assert [(r.address, r.status) for r in report.resources] == [(address, MODIFIED)]
    (drifted,) = report.resources
    assert attribute in [a.name for a in drifted.attributes]
    a = next(a for a in drifted.attributes if a.name == attribute)
    assert a.expected != a.actual
    assert a.expected == cluster.backend.read().resources[address].props[attribute]  # type: ignore[union-attr]
    plan = cluster.engine().plan()
    text = render_plan(plan)
    assert "Objects have changed outside of byoc" in text and f"# {address} (" in text
    assert plan.change(address).action in ("update", "replace")
    cluster.repair(plan=plan)


def test_missing_resource_is_reported_and_recreated(cluster: Cluster) -> None:
    old = cluster.id("aws_cloudwatch_dashboard.main")
    cluster.client("cloudwatch").delete_dashboards(DashboardNames=[old])
    report = cluster.engine().drift()
    assert [(r.address, r.status, r.aws_id) for r in report.resources] == [
        ("aws_cloudwatch_dashboard.main", MISSING, old)]
    plan = cluster.engine().plan()
    assert plan.change("aws_cloudwatch_dashboard.main").action == "create"
    assert plan.to_dict()["resource_drift"][0]["change"]["actions"] == ["delete"]
    cluster.repair()


def test_resource_left_by_a_crash_is_unmanaged_then_adopted(cluster: Cluster) -> None:
    # A crash between AWS's create call and the state write leaves a tagged resource no state knows.
    address = "aws_cloudwatch_log_group.main"
    state = cluster.backend.read()
    assert state is not None
    cluster.backend.write(state.without(address).bumped())
    report = cluster.engine().drift()
    assert [(r.address, r.status, r.adoptable) for r in report.resources] == [(address, UNMANAGED, True)]
    plan = cluster.engine().plan()
    assert plan.adopt == (address,) and plan.has_changes
    assert f"# {address} (/aws/proton/dev-proton) exists in AWS with byoc's tags but not in the state: " \
           "adopting it" in render_plan(plan)
    cluster.repair()
    assert address in cluster.backend.read().resources  # type: ignore[union-attr]


def test_unmanaged_stranger_is_listed_and_deleted_only_on_request(cluster: Cluster) -> None:
    ec2 = cluster.client("ec2")
    sg = ec2.create_security_group(
        GroupName="stray", Description="made by hand", VpcId=cluster.id("aws_vpc.main"),
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": owned_tags("aws_security_group.stray")}],
    )["GroupId"]
    report = cluster.engine().drift()
    assert [(r.address, r.status, r.adoptable, r.aws_id) for r in report.resources] == [
        ("aws_security_group.stray", UNMANAGED, False, sg)]
    plan = cluster.engine().plan()
    assert plan.unmanaged == ("aws_security_group.stray",) and not plan.actionable
    plan = cluster.engine().plan(PlanOptions(delete_unmanaged=True))
    assert [(c.address, c.action) for c in plan.actionable] == [("aws_security_group.stray", "delete")]
    cluster.repair(PlanOptions(delete_unmanaged=True))
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroups"]


def test_unmanaged_data_volume_is_never_deleted_without_the_data_flag(cluster: Cluster) -> None:
    ec2 = cluster.client("ec2")
    vol = ec2.create_volume(AvailabilityZone="us-west-2a", Size=1, TagSpecifications=[
        {"ResourceType": "volume", "Tags": owned_tags('aws_ebs_volume.data["9"]')}])["VolumeId"]
    plan = cluster.engine().plan(PlanOptions(delete_unmanaged=True))
    assert not plan.actionable and any(r.startswith('aws_ebs_volume.data["9"]') for r in plan.refused)
    plan = cluster.engine().plan(PlanOptions(delete_unmanaged=True, allow_data_loss=True))
    assert [(c.address, c.action) for c in plan.actionable] == [('aws_ebs_volume.data["9"]', "delete")]
    ec2.delete_volume(VolumeId=vol)
    assert cluster.engine().drift().in_sync


def test_ignore_list_hides_accepted_differences_and_apply_keeps_them(cluster: Cluster) -> None:
    ec2, vpc = cluster.client("ec2"), cluster.id("aws_vpc.main")
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "CostCenter", "Value": "42"}])
    rules = (IgnoreRule("aws_vpc.*", ("tags.CostCenter",)),)
    eng = cluster.engine()
    state, live = eng.state(), eng.refresh()
    plan = eng._plan(state, live, PlanOptions(ignore=rules), False)
    assert plan.drift is not None and plan.drift.in_sync and plan.drift.ignored == ("aws_vpc.main: tags",)
    assert not plan.actionable
    whole = eng._plan(state, live, PlanOptions(ignore=(IgnoreRule("aws_vpc.main"),)), False).drift
    assert whole is not None and whole.in_sync and whole.ignored == ("aws_vpc.main",)
    assert eng.drift().resources[0].address == "aws_vpc.main"  # without the rules, it is drift
    cluster.repair()
    assert {"Key": "CostCenter", "Value": "42"} not in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"]


def test_drift_shows_the_spec_value_where_the_spec_changed_too(cluster: Cluster) -> None:
    lengthen_log_retention(cluster)
    report = cluster.engine("monitoring.log_retention_days=14").drift()
    (a,) = [a for r in report.resources for a in r.attributes]
    assert (a.name, a.expected, a.actual, a.desired) == ("retention_in_days", 7, 30, 14)
    assert report.to_dict()["resources"][0]["attributes"][0]["desired"] == 14
    cluster.repair()


def test_drift_reports_even_when_the_spec_would_replace_protected_data(cluster: Cluster) -> None:
    # a renamed bucket makes plan and apply an error, but drift compares AWS with the state
    renamed = cluster.engine("storage.bucket_name=dev-proton-renamed")
    with pytest.raises(PlanError, match=r"set storage\.bucket_name back to"):
        renamed.plan()
    assert renamed.drift().in_sync


def test_refresh_records_aws_without_changing_it(cluster: Cluster) -> None:
    lengthen_log_retention(cluster)
    eng = cluster.engine()
    before: State = eng.state()  # type: ignore[assignment]
    state, report = eng.refresh_state()
    assert [r.address for r in report.resources] == ["aws_cloudwatch_log_group.main"]
    assert state.serial == before.serial + 1 and cluster.backend.backup_path.exists()
    assert state.resources["aws_cloudwatch_log_group.main"].props["retention_in_days"] == 30
    assert eng.drift().in_sync
    assert cluster.client("logs").describe_log_groups(logGroupNamePrefix="/aws/proton/dev-proton")[
        "logGroups"][0]["retentionInDays"] == 30
    plan = eng.plan()
    assert [(c.address, c.action) for c in plan.actionable] == [("aws_cloudwatch_log_group.main", "update")]
    cluster.repair()


# -- what a plan reads, and what only a full audit finds ---------------------------------------------
def calls_of(cluster: Cluster, service: str, run: Callable[[], T]) -> tuple[T, set[str]]:
    """``run()``, and the actions of ``service`` it called."""
    before = Counter(cluster.ctx.calls.counts)
    result = run()
    return result, {a for (s, a), n in (cluster.ctx.calls.counts - before).items() if s == service and n}


def test_plan_reads_iam_by_name_and_the_full_audit_lists_the_path(cluster: Cluster) -> None:
    iam, node = cluster.client("iam"), cluster.id("aws_iam_role.node")
    doc = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
    iam.put_role_policy(RoleName=node, PolicyName="extra", PolicyDocument=doc)
    trust = '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, ' \
            '"Action": "sts:AssumeRole"}]}'
    iam.create_role(RoleName="dev-proton-stray", Path="/byoc/dev-proton/", AssumeRolePolicyDocument=trust,
                    Tags=owned_tags("aws_iam_role.stray"))
    plan, read = calls_of(cluster, "iam", cluster.engine().plan)
    assert read == {"GetRole", "GetRolePolicy", "GetInstanceProfile"}
    assert not plan.actionable and plan.unmanaged == ()
    report, read = calls_of(cluster, "iam", cluster.engine().drift)
    assert {"ListRoles", "GetRole", "ListRolePolicies", "ListInstanceProfiles"} <= read
    assert [(r.address, r.status) for r in report.resources] == [
        ("aws_iam_role.node", MODIFIED), ("aws_iam_role.stray", UNMANAGED)]
    plan, read = calls_of(cluster, "iam", lambda: cluster.engine().plan(PlanOptions(delete_unmanaged=True)))
    assert "ListRoles" in read
    assert [(c.address, c.action) for c in plan.actionable] == [
        ("aws_iam_role.node", "update"), ("aws_iam_role.stray", "delete")]
    cluster.repair(PlanOptions(delete_unmanaged=True))
    assert iam.list_role_policies(RoleName=node)["PolicyNames"] == ["proton-node"]


def test_iam_role_left_by_a_crash_is_adopted_by_a_plain_plan(cluster: Cluster) -> None:
    state = cluster.backend.read()
    assert state is not None
    cluster.backend.write(state.without("aws_iam_role.node").bumped())
    plan = cluster.engine().plan()
    assert plan.adopt == ("aws_iam_role.node",) and plan.change("aws_iam_role.node").action != "create"
    cluster.repair()


def test_subscriptions_are_listed_only_when_the_topic_counts_any(cluster: Cluster) -> None:
    _, read = calls_of(cluster, "sns", cluster.engine().plan)
    assert read == {"GetTopicAttributes"}
    sns, topic = cluster.client("sns"), cluster.id("aws_sns_topic.alarms")
    arn = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="someone@example.com",
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    plan, read = calls_of(cluster, "sns", cluster.engine().plan)
    assert read == {"GetTopicAttributes", "ListSubscriptionsByTopic"}
    assert plan.unmanaged == ("aws_sns_topic_subscription.email",)
    sns.unsubscribe(SubscriptionArn=arn)
    assert cluster.engine().drift().in_sync
