"""The nodes' waits batched on moto: one DescribeVolumes / DescribeInstances answers every node
waiting at that moment; an id AWS does not show yet (eventual consistency) fails nothing and is
found later; an item that goes to a failure state fails its own operation only.

AWS answers in tens of milliseconds, so the nodes' calls overlap there; moto in-process answers
at once, so a few tests add that latency (``lag``) to see the calls overlap. Counts are asserted,
never times.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.engine import Engine
from byoc.resources import _batch as batch
from byoc.resources._volumes import describe_volume, volumes_by_id
from tests.awsrealism import SNS_COUNTS, https_bucket_policies
from tests.daytwo import dev_spec, engine_for

NODES = 5


def lag(**kwargs: Any) -> None:
    """Each call takes 50 ms, as AWS's do (tens of ms): calls of several nodes overlap."""
    time.sleep(0.05)


def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *hooks: tuple[str, Any], count: int = NODES,
           ) -> Engine:
    https_bucket_policies(monkeypatch)
    spec = dev_spec(count=count)
    ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, sleep=lambda s: None, poll_delay=0.01,
                     event_hooks=(*SNS_COUNTS, *hooks))
    return engine_for(spec, ctx, tmp_path)


def edit_answers(op: str, key: str, edit: Any) -> tuple[str, Any]:
    """An ``after-call`` hook for EC2 describe ``op`` calling ``edit(item, address)`` on each item
    (``key``: "Volumes" or "Instances") of every answer, with the item's ``byoc:address``."""

    def hook(parsed: dict[str, Any], **kw: Any) -> None:
        for item in _items(parsed, key):
            edit(item, _address(item))

    return (f"after-call.ec2.{op}", hook)


def _items(parsed: dict[str, Any], key: str) -> list[dict[str, Any]]:
    if key == "Volumes":
        return list(parsed.get(key, ()))
    return [i for r in parsed.get("Reservations", ()) for i in r["Instances"]]


def _address(item: dict[str, Any]) -> str:
    return next((t["Value"] for t in item.get("Tags") or () if t["Key"] == "byoc:address"), "")


def test_waits_of_many_nodes_share_their_describes(moto: None, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # a few callers each call at once (tests/test_batch.py); five nodes' polls are shared here
    monkeypatch.setattr(batch, "FEW", 0)
    eng = engine(tmp_path, monkeypatch, ("before-send", lag))
    plan = eng.plan()
    before = Counter(eng.ctx.calls.counts)
    result = eng.apply(plan)
    assert result.ok, [str(f.error) for f in result.failures]
    calls = Counter(eng.ctx.calls.counts) - before
    volumes, instances = calls[("ec2", "DescribeVolumes")], calls[("ec2", "DescribeInstances")]
    # Per node, one at a time, the apply polls its volumes 3 times (the data volume to be
    # available, then attached; the attachment's look first) and its instance 3 times (the look
    # for a crashed run's, running, the attachment's look): 30 calls for 5 nodes. Shared, the
    # nodes' polls of one moment are one call.
    assert volumes + instances < 5 * NODES, calls
    assert volumes < 3 * NODES and instances < 3 * NODES, calls
    assert eng.plan().has_changes is False


def test_an_id_not_visible_yet_fails_nothing_and_is_found_later(moto: None, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Just after CreateVolume / RunInstances AWS may not show the new id (describing it by id
    fails with InvalidVolume.NotFound / InvalidInstanceID.NotFound): each new volume and instance
    is left out of the first answer it would be in, batched with others or not."""
    lock = threading.Lock()
    hidden: Counter[str] = Counter()

    def first_answer_misses_it(op: str, key: str) -> tuple[str, Any]:
        def hook(parsed: dict[str, Any], **kw: Any) -> None:
            items = _items(parsed, key)
            id_key = "VolumeId" if key == "Volumes" else "InstanceId"
            with lock:
                new = [i for i in items if _address(i) and not hidden[i[id_key]]]
                for item in new:
                    hidden[item[id_key]] += 1
            drop = {i[id_key] for i in new}
            if key == "Volumes":
                parsed[key] = [v for v in items if v["VolumeId"] not in drop]
            else:
                for r in parsed.get("Reservations", ()):
                    r["Instances"] = [i for i in r["Instances"] if i["InstanceId"] not in drop]
        return (f"after-call.ec2.{op}", hook)

    eng = engine(tmp_path, monkeypatch, ("before-send", lag),
                 first_answer_misses_it("DescribeVolumes", "Volumes"),
                 first_answer_misses_it("DescribeInstances", "Instances"), count=3)
    result = eng.apply(eng.plan())
    assert result.ok, [str(f.error) for f in result.failures]
    state = eng.backend.read()
    assert state is not None
    made = {r.id for a, r in state.resources.items()
            if a.startswith(("aws_ebs_volume.", "aws_instance."))}
    assert len(made) == 6 and made <= set(hidden), (made, hidden)


def test_a_batch_answers_the_visible_volumes_and_a_later_poll_finds_the_new_one(ctx: AwsContext) -> None:
    ec2 = ctx.client("ec2")
    old = ec2.create_volume(AvailabilityZone="us-west-2a", Size=10)["VolumeId"]
    new = ec2.create_volume(AvailabilityZone="us-west-2a", Size=10)["VolumeId"]
    answers: list[list[str]] = []

    def not_yet(parsed: dict[str, Any], **kw: Any) -> None:
        if not answers:  # the first answer does not show the new volume yet
            parsed["Volumes"] = [v for v in parsed["Volumes"] if v["VolumeId"] != new]
        answers.append(sorted(v["VolumeId"] for v in parsed["Volumes"]))

    ec2.meta.events.register("after-call.ec2.DescribeVolumes", not_yet)
    assert set(volumes_by_id(ctx, [old, new])) == {old}  # no InvalidVolume.NotFound for the batch
    assert describe_volume(ctx, new) is not None
    assert answers == [[old], [new]]


def apply_with_one_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: tuple[str, Any],
                           bad: str, message: str, kept: list[str]) -> None:
    """A 3-node apply where ``hook`` breaks the resource at ``bad``: only it fails, saying
    ``message`` with its address, and the ``kept`` addresses are made."""
    eng = engine(tmp_path, monkeypatch, ("before-send", lag), hook, count=3)
    result = eng.apply(eng.plan())
    assert [f.address for f in result.failures] == [bad]
    error = str(result.failures[0].error)
    assert bad in error and message in error, error
    state = eng.backend.read()
    assert state is not None
    assert bad not in state.resources and set(kept) <= set(state.resources)


def test_a_volume_that_fails_fails_its_own_node_only(moto: None, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bad = 'aws_ebs_volume.data["1"]'

    def error_state(vol: dict[str, Any], address: str) -> None:
        if address == bad and vol["State"] == "available":
            vol["State"] = "error"

    kept = [f'{kind}["{n}"]' for n in "02" for kind in ("aws_volume_attachment.data",
                                                        "aws_lb_target_group_attachment.node")]
    kept = [k.replace('node["', 'node["8123-') for k in kept]
    apply_with_one_failing(tmp_path, monkeypatch, edit_answers("DescribeVolumes", "Volumes", error_state),
                           bad, "'error' instead of available", kept)


def test_an_instance_terminated_while_waited_on_fails_its_own_node_only(
        moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = 'aws_instance.node["2"]'
    reason = {"Code": "Server.InsufficientInstanceCapacity", "Message": "insufficient capacity"}

    def terminated(inst: dict[str, Any], address: str) -> None:
        if address == bad:
            inst.update(State={"Code": 48, "Name": "terminated"}, StateReason=reason)

    kept = [f'{kind}["{n}"]' for n in "01" for kind in ("aws_instance.node", "aws_volume_attachment.data")]
    apply_with_one_failing(tmp_path, monkeypatch, edit_answers("DescribeInstances", "Instances", terminated),
                           bad, "terminated instead of running: insufficient capacity", kept)
