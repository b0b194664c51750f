"""aws_default_security_group against moto: adopting the VPC's default group empties and tags it,
discovery tells it from the cluster's other groups, and delete only forgets it."""

from __future__ import annotations

from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources import security_group
from byoc.resources.default_security_group import KIND

ADDR = "aws_default_security_group.main"
TAGS = {"Name": "test-default", "byoc:cluster": "test", "byoc:address": ADDR}


@pytest.fixture
def vpc(ctx: AwsContext) -> str:
    return str(ctx.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])


def props(vpc: str, **over: Any) -> dict[str, Any]:
    return {"vpc_id": vpc, "ingress": [], "egress": [], "tags": dict(TAGS), **over}


def default_group(ctx: AwsContext, vpc: str) -> dict[str, Any]:
    groups = ctx.client("ec2").describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    (group,) = groups
    return dict(group)


def test_create_adopts_the_default_group_and_revokes_every_rule(ctx: AwsContext, vpc: str) -> None:
    ec2 = ctx.client("ec2")
    gid = default_group(ctx, vpc)["GroupId"]
    # what AWS gives a default group (moto leaves out the self ingress), and a rule added by hand
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": gid}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert default_group(ctx, vpc)["IpPermissionsEgress"]  # AWS's allow-all egress
    live = KIND.create(ctx, ADDR, props(vpc))
    assert live.id == gid and live.props == props(vpc)
    group = default_group(ctx, vpc)
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []
    assert {t["Key"]: t["Value"] for t in group["Tags"]} == TAGS
    assert KIND.discover(ctx) == [live]


def test_the_other_kind_never_reports_it_and_it_never_reports_them(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc))
    ctx.client("ec2").create_security_group(
        GroupName="test-node", Description="nodes", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [
            {"Key": "byoc:cluster", "Value": "test"},
            {"Key": "byoc:address", "Value": "aws_security_group.node"}]}])
    assert [x.address for x in security_group.KIND.discover(ctx)] == ["aws_security_group.node"]
    assert security_group.KIND.find(ctx, ADDR) is None
    assert KIND.discover(ctx) == [live] and KIND.find(ctx, ADDR) == live


def test_a_group_put_back_by_hand_is_drift_that_update_revokes(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc))
    ctx.client("ec2").authorize_security_group_egress(GroupId=live.id, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    (drifted,) = KIND.discover(ctx)
    assert drifted.props["egress"] == [{"protocol": "-1", "from_port": 0, "to_port": 0,
                                        "cidr_block": "0.0.0.0/0", "description": ""}]
    fixed = KIND.update(ctx, drifted, props(vpc), {"egress"})
    assert fixed.props == props(vpc) and default_group(ctx, vpc)["IpPermissionsEgress"] == []


def test_a_second_create_is_the_same_adoption(ctx: AwsContext, vpc: str) -> None:
    first = KIND.create(ctx, ADDR, props(vpc))
    assert KIND.create(ctx, ADDR, props(vpc)) == first


def test_another_clusters_default_group_is_not_taken(ctx: AwsContext, vpc: str) -> None:
    gid = default_group(ctx, vpc)["GroupId"]
    ctx.client("ec2").create_tags(Resources=[gid], Tags=[{"Key": "byoc:cluster", "Value": "other"}])
    with pytest.raises(CloudError, match="tagged for the cluster other") as err:
        KIND.create(ctx, ADDR, props(vpc))
    assert err.value.aws_id == gid


def test_delete_forgets_it_and_leaves_it_empty(ctx: AwsContext, vpc: str) -> None:
    ec2 = ctx.client("ec2")
    gid = default_group(ctx, vpc)["GroupId"]
    ec2.create_tags(Resources=[gid], Tags=[{"Key": "owner", "Value": "someone"}])
    live = KIND.create(ctx, ADDR, props(vpc))  # its tags become the blueprint's, as Terraform's
    assert {t["Key"] for t in default_group(ctx, vpc)["Tags"]} == set(TAGS)
    ec2.create_tags(Resources=[gid], Tags=[{"Key": "owner", "Value": "someone"}])  # added since
    KIND.delete(ctx, live)
    group = default_group(ctx, vpc)
    assert group["GroupId"] == gid and group["IpPermissionsEgress"] == []
    assert {t["Key"]: t["Value"] for t in group["Tags"]} == {"owner": "someone"}
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # again: nothing to do
    ec2.delete_vpc(VpcId=vpc)  # AWS deletes the default group with its VPC
    KIND.delete(ctx, live)


def test_rules_and_provider_values(vpc: str) -> None:
    assert KIND.force_new == {"vpc_id"}
    assert KIND.provider_values(props(vpc)) == props(vpc)
    rule = {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_block": "10.0.0.0/8", "description": "x"}
    assert KIND.provider_values(props(vpc, ingress=[rule]))["ingress"] == [{
        "protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["10.0.0.0/8"],
        "ipv6_cidr_blocks": [], "prefix_list_ids": [], "security_groups": [], "self": False,
        "description": "x"}]
