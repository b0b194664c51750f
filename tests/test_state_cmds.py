"""The state toolbox on moto: rm forgets (AWS untouched, adopted back), mv re-tags, import reads a
resource through its kind and claims it; each write locks, bumps the serial and keeps a backup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from byoc.drift import UNMANAGED
from byoc.errors import ByocError, CloudError, LockError, StateError
from byoc.toolbox import state_mv, state_rm
from tests.clusterkit import Cluster, applied_cluster

LB_SG = "aws_security_group.lb"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from applied_cluster(tmp_path_factory)


def tags_of(c: Cluster, sg: str) -> dict[str, str]:
    group = c.client("ec2").describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
    return {t["Key"]: t["Value"] for t in group.get("Tags", [])}


def test_rm_forgets_without_deleting_and_apply_adopts_it_back(cluster: Cluster) -> None:
    eng = cluster.engine()
    serial = eng.state().serial  # type: ignore[union-attr]
    sg = cluster.id(LB_SG)
    (gone,) = state_rm(eng, [LB_SG])
    assert gone.id == sg
    state = eng.state()
    assert state is not None and LB_SG not in state.resources and state.serial == serial + 1
    assert cluster.backend.backup_path.exists()
    assert tags_of(cluster, sg)["byoc:address"] == LB_SG  # still in AWS, still tagged
    assert [(r.address, r.status) for r in eng.drift().resources] == [(LB_SG, UNMANAGED)]
    with pytest.raises(StateError, match=r"aws_vpc\.nope is not in the state"):
        state_rm(eng, ["aws_vpc.nope"])
    cluster.repair()
    assert cluster.id(LB_SG) == sg


def test_mv_retags_and_refuses_tricks(cluster: Cluster) -> None:
    eng = cluster.engine()
    sg = cluster.id(LB_SG)
    moved = state_mv(eng, LB_SG, "aws_security_group.edge")
    assert moved.id == sg and tags_of(cluster, sg)["byoc:address"] == "aws_security_group.edge"
    with pytest.raises(ByocError, match="can only move to a aws_security_group address"):
        state_mv(eng, "aws_security_group.edge", "aws_vpc.other")
    with pytest.raises(StateError, match="is already in the state"):
        state_mv(eng, "aws_security_group.edge", "aws_security_group.node")
    with pytest.raises(CloudError, match="byoc cannot tag a aws_s3_bucket for you"):
        state_mv(eng, "aws_s3_bucket.data", "aws_s3_bucket.elsewhere")
    assert "aws_s3_bucket.data" in eng.state().resources  # type: ignore[union-attr]
    state_mv(eng, "aws_security_group.edge", LB_SG)
    assert tags_of(cluster, sg)["byoc:address"] == LB_SG and eng.drift().in_sync


def test_import_claims_an_untagged_resource(cluster: Cluster) -> None:
    eng = cluster.engine()
    sg = cluster.id(LB_SG)
    # someone strips byoc's tags: discovery no longer sees it, and byoc forgets it
    cluster.client("ec2").delete_tags(Resources=[sg], Tags=[{"Key": "byoc:cluster"}, {"Key": "byoc:address"}])
    state_rm(eng, [LB_SG])
    assert eng.plan().change(LB_SG).action == "create"
    with pytest.raises(ByocError, match=r"aws_security_group\.nope: the spec .* describes no resource"):
        eng.import_resource("aws_security_group.nope", sg)
    with pytest.raises(ByocError, match="no aws_security_group with id sg-00000000 was found"):
        eng.import_resource(LB_SG, "sg-00000000")
    record = eng.import_resource(LB_SG, sg)
    assert record.id == sg and record.props["name"] == "dev-proton-lb"
    assert tags_of(cluster, sg)["byoc:cluster"] == "dev-proton"
    with pytest.raises(StateError, match="is already managed"):
        eng.import_resource(LB_SG, sg)
    plan = eng.plan()
    assert plan.change(LB_SG).action in ("no-op", "update")
    assert all(c.action != "create" for c in plan.actionable)
    cluster.repair()


def test_import_of_a_kind_byoc_cannot_tag_says_how(cluster: Cluster) -> None:
    eng = cluster.engine()
    state_rm(eng, ["aws_cloudwatch_log_group.main"])
    cluster.client("logs").untag_log_group(logGroupName="/aws/proton/dev-proton",
                                           tags=["byoc:cluster", "byoc:address"])
    with pytest.raises(CloudError, match=r"add the tags byoc:cluster=dev-proton and "
                       r"byoc:address=aws_cloudwatch_log_group\.main"):
        eng.import_resource("aws_cloudwatch_log_group.main", "/aws/proton/dev-proton")
    cluster.client("logs").tag_log_group(logGroupName="/aws/proton/dev-proton", tags={
        "byoc:cluster": "dev-proton", "byoc:address": "aws_cloudwatch_log_group.main"})
    assert eng.import_resource("aws_cloudwatch_log_group.main", "/aws/proton/dev-proton").id
    cluster.repair()


def test_writes_take_the_lock(cluster: Cluster) -> None:
    eng = cluster.engine()
    with cluster.backend.lock("apply"), pytest.raises(LockError):
        state_rm(eng, [LB_SG])
    with cluster.backend.lock("apply"), pytest.raises(LockError):
        eng.refresh_state()
    assert LB_SG in eng.state().resources  # type: ignore[union-attr]
