"""Upgrades that cannot lose data: the pure version rules (moves across major versions refused
without --allow-major, version() answers compared leniently), and on moto a version bump's plan
(its notes and JSON), the backup taken before the first instance goes, a failed backup that changes
nothing, and Proton's version answer after each node (injected through SSM) gating the roll."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from byoc.cli import main
from byoc.engine import Engine
from byoc.errors import ByocError, PlanError
from byoc.executor import Event
from byoc.operations.backup import COMPLETE, list_backups
from byoc.operations.upgrading import upgrade_steps
from byoc.plan import Plan
from byoc.planner import PlanOptions
from byoc.render import render_plan
from byoc.rolling import node_of
from byoc.upgrade import DOWNGRADE, IMAGE, MAJOR, UNPINNED, UNRECORDED, UPGRADE, detect, version_matches
from tests.awsrealism import record_calls
from tests.daytwo import applied, dev_spec, engine_for
from tests.nodeshell import NodeShell, proton_version

BUMP = "cluster.proton_version=1.6.17"
FACTS = {"proton_version": "1.6.16", "proton_image": "d.timeplus.com/timeplus-io/proton"}
IMG = FACTS["proton_image"]
ALL = {"0": frozenset({"user_data"}), "1": frozenset({"user_data"})}


def wanted(version: str, image: str = IMG) -> dict[str, str]:
    return {"version": version, "image": image}


# -- the pure rules ----------------------------------------------------------------------------
def test_version_answers_are_compared_by_the_specs_prefix() -> None:
    assert version_matches("1.6.1", "1.6.1") and version_matches("1.6.1", "1.6.1.4\n")
    assert version_matches("1.6.17", "v1.6.17") and version_matches("1.6.16-rc", "1.6.16")
    assert not version_matches("1.6.1", "1.6.16") and not version_matches("1.6.17", "1.6.16")
    assert version_matches("latest", "3.0.19") and not version_matches("latest", "")
    assert not version_matches("1.6.17", "")


def test_an_upgrade_says_a_backup_comes_first_and_no_backup_says_it_does_not() -> None:
    up, notes = detect(FACTS, wanted("1.6.17"), ALL)
    assert up is not None and up.move == UPGRADE and up.backup and up.nodes == ("0", "1")
    assert notes[0] == ("upgrade 1.6.16 → 1.6.17: a backup is taken before the first node is replaced "
                        "(--no-backup to skip)")
    assert "version()" in notes[-1] and "--skip-version-check" in notes[-1]
    up, notes = detect(FACTS, wanted("1.6.17"), ALL, backup=False)
    assert up is not None and not up.backup and "no backup is taken first (--no-backup)" in notes[0]
    # nothing replaced, or the same version and image: not an upgrade
    assert detect(FACTS, wanted("1.6.17"), {}) == (None, ())
    assert detect(FACTS, wanted("1.6.16"), ALL) == (None, ())


def test_a_same_major_downgrade_is_allowed_with_a_warning() -> None:
    up, notes = detect({**FACTS, "proton_version": "1.6.17"}, wanted("1.6.16"), ALL)
    assert up is not None and up.move == DOWNGRADE
    assert notes[0].startswith("downgrade 1.6.17 → 1.6.16: a backup is taken")
    assert any("older than 1.6.17" in n and "allowed" in n for n in notes)


@pytest.mark.parametrize(("old", "new"), [("1.6.16", "3.0.19"), ("3.0.19", "1.6.16"), ("3.0.19", "1.5.18")])
def test_a_move_across_the_1x_3x_boundary_is_refused_without_allow_major(old: str, new: str) -> None:
    with pytest.raises(PlanError) as exc:
        detect({**FACTS, "proton_version": old}, wanted(new), ALL)
    text = str(exc.value)
    assert f"{old} → {new}" in text and "1.x → 3.x boundary" in text and "there is no Proton 2.x" in text
    assert "data format" in text and "config keys" in text and "users.d" in text and "ports" in text
    assert "byoc backup SPEC" in text and "copy" in text and "--allow-major" in text
    assert f"proton_version: {old}" in text and "Nothing was changed" in text
    if new < old:
        assert "downgrade across major versions" in text
    up, notes = detect({**FACTS, "proton_version": old}, wanted(new), ALL, allow_major=True)
    assert up is not None and up.move == MAJOR and up.allow_major and up.backup
    assert notes[0].startswith(f"major version move {old} → {new}: a backup is taken")
    assert any("allowed with --allow-major" in n for n in notes)


def test_another_major_move_is_refused_too_and_says_byoc_does_not_know_it() -> None:
    with pytest.raises(PlanError, match=r"(?s)\(3\.x → 4\.x\).*not known to byoc"):
        detect({**FACTS, "proton_version": "3.0.19"}, wanted("4.0.1"), ALL)


def test_latest_is_unpinned_never_upgrade_checked_and_refused_next_to_1x() -> None:
    with pytest.raises(PlanError, match=r"now points at the 3\.x line"):
        detect(FACTS, wanted("latest"), ALL)
    with pytest.raises(PlanError, match="unpinned"):
        detect({**FACTS, "proton_version": "latest"}, wanted("1.6.16"), ALL)
    up, notes = detect({**FACTS, "proton_version": "3.0.18"}, wanted("latest"), ALL)
    assert up is not None and up.move == UNPINNED
    assert any("not upgrade-checked" in n and "Pin an exact version" in n for n in notes)
    assert "answers" in notes[-1]  # latest: the check wants an answer, any version


def test_an_image_change_alone_is_an_upgrade_and_an_unrecorded_version_is_said() -> None:
    up, notes = detect(FACTS, wanted("1.6.16", "ghcr.io/timeplus-io/proton"), ALL)
    assert up is not None and up.move == IMAGE
    assert notes[0].startswith(f"upgrade {IMG}:1.6.16 → ghcr.io/timeplus-io/proton:1.6.16")
    up, notes = detect({}, wanted("1.6.17"), ALL)
    assert up is not None and up.move == UNRECORDED and up.backup
    assert "does not record which Proton version" in notes[0] and "--no-backup" in notes[0]
    # nodes replaced for another reason, with no version recorded: not taken for an upgrade
    assert detect({}, wanted("1.6.17"), {"0": frozenset({"instance_type"})}) == (None, ())


def test_going_back_after_a_stopped_roll_is_a_move_from_what_the_replaced_nodes_run() -> None:
    stopped = {**FACTS, "proton_version_rolling": "1.6.17"}
    up, notes = detect(stopped, wanted("1.6.16"), ALL)
    assert up is not None and up.move == DOWNGRADE and up.rolling_from == "1.6.17" and up.backup
    assert notes[0].startswith("downgrade 1.6.16 (and 1.6.17 on the nodes a stopped roll replaced) → 1.6.16")
    up, _ = detect(stopped, wanted("1.6.17"), ALL)  # the same roll, continued
    assert up is not None and up.move == UPGRADE and up.rolling_from is None
    with pytest.raises(PlanError, match=r"3\.0\.19 → 1\.6\.16 is a downgrade across major versions"):
        detect({**FACTS, "proton_version_rolling": "3.0.19"}, wanted("1.6.16"), ALL)


def test_the_upgrade_round_trips_through_the_plan_json() -> None:
    up, _ = detect(FACTS, wanted("1.6.17"), ALL, backup=False)
    plan = Plan("c", None, 0, "", "", (), (), upgrade=up)
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["byoc"]["upgrade"] == {
        "move": "upgrade", "from": {"proton_version": "1.6.16", "image": IMG},
        "to": {"proton_version": "1.6.17", "image": IMG}, "nodes": ["0", "1"], "backup": False,
        "allow_major": False, "rolling_from": None}
    assert Plan.from_dict(d).upgrade == up
    assert "upgrade" not in Plan("c", None, 0, "", "", (), ()).to_dict()["byoc"]


# -- on moto -----------------------------------------------------------------------------------
@pytest.fixture
def cluster(moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Three nodes of specs/dev.yaml at 1.6.16, applied."""
    return applied(tmp_path, monkeypatch, count=3)


def bumped(eng: Engine, tmp_path: Path, *overrides: str, skip: bool = False) -> Engine:
    new = engine_for(dev_spec(*(overrides or (BUMP,)), count=3), eng.ctx, tmp_path)
    new.upgrade_steps = upgrade_steps(new, skip_version_check=skip)
    return new


def instances(eng: Engine) -> dict[str, str]:
    state = eng.state()
    assert state is not None
    return {node_of(a) or "": r.id for a, r in state.resources.items() if r.kind == "aws_instance"}


def test_apply_records_the_version_and_a_bump_plans_an_upgrade(cluster: Engine, tmp_path: Path) -> None:
    state = cluster.state()
    assert state is not None and state.facts["proton_version"] == "1.6.16"
    assert state.facts["proton_image"] == IMG
    plan = bumped(cluster, tmp_path).plan()
    assert plan.upgrade is not None and plan.upgrade.nodes == ("0", "1", "2") and plan.upgrade.backup
    text = render_plan(plan)
    assert ("upgrade 1.6.16 → 1.6.17: a backup is taken before the first node is replaced "
            "(--no-backup to skip)") in text
    assert json.loads(json.dumps(plan.to_dict()))["byoc"]["upgrade"]["backup"] is True

    quiet = bumped(cluster, tmp_path).plan(PlanOptions(no_backup=True))
    assert quiet.upgrade is not None and not quiet.upgrade.backup
    assert "no backup is taken first (--no-backup)" in render_plan(quiet)


def test_a_major_move_is_refused_at_plan_time_and_allowed_with_allow_major(
    cluster: Engine, tmp_path: Path
) -> None:

    before = cluster.state()
    eng = bumped(cluster, tmp_path, "cluster.proton_version=3.0.19")
    with pytest.raises(PlanError, match=r"1\.x → 3\.x boundary"):
        eng.plan()
    assert cluster.state() == before
    plan = eng.plan(PlanOptions(allow_major=True))
    assert plan.upgrade is not None and plan.upgrade.move == MAJOR


def test_the_backup_is_taken_before_the_first_instance_goes_and_each_node_is_asked(
    cluster: Engine, tmp_path: Path
) -> None:
    old = instances(cluster)
    shell = NodeShell(proton_version(lambda iid: "1.6.16" if iid in old.values() else "1.6.17.2"))
    shell.install(cluster.ctx.client("ssm"))
    eng = bumped(cluster, tmp_path)
    calls = record_calls(cluster.ctx, "ec2")
    events: list[Event] = []
    result = eng.apply(eng.plan(), on_event=events.append)
    assert result.ok, [str(f.error) for f in result.failures]

    actions = [a for a, _, _ in calls]
    first_out = min(i for i, a in enumerate(actions) if a in ("StopInstances", "TerminateInstances"))
    snapshots = [i for i, a in enumerate(actions) if a == "CreateSnapshot"]
    assert len(snapshots) == 3 and max(snapshots) < first_out
    (backup,) = list_backups(cluster.ctx, eng.spec)
    assert backup.status == COMPLETE and backup.manifest is not None
    assert backup.manifest.proton_version == "1.6.16"  # the version that wrote the data
    kinds = [(e.kind, e.address) for e in events]
    assert kinds.index(("done", "backup")) < kinds.index(("start", 'aws_instance.node["0"]'))
    assert any(e.kind == "note" and backup.backup_id in e.message for e in events)

    new = instances(eng)
    checks = [e for e in events if e.kind == "note" and e.action == "wait-healthy"]
    assert [(node_of(e.address), e.aws_id) for e in checks] == [(k, new[k]) for k in ("0", "1", "2")]
    assert all("Proton reports version 1.6.17.2" in e.message for e in checks)
    asked = [iid for iid, script in shell.sent if "base64 -d" in script]
    assert asked == [new["0"], new["1"], new["2"]]  # in roll order, each new node once
    state = eng.state()
    assert state is not None and state.facts["proton_version"] == "1.6.17"
    plan = eng.plan()
    assert not plan.has_changes and plan.upgrade is None


def _refuse_snapshots(ctx: Any) -> None:
    def refuse(**_: Any) -> Any:
        error = {"Error": {"Code": "UnauthorizedOperation",
                           "Message": "You are not authorized to perform this operation."},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://ec2.invalid/", 400, {}, None), error

    ctx.client("ec2").meta.events.register("before-call.ec2.CreateSnapshot", refuse)


def test_a_failed_backup_stops_the_apply_with_nothing_replaced(cluster: Engine, tmp_path: Path) -> None:

    NodeShell(proton_version("1.6.17")).install(cluster.ctx.client("ssm"))
    old, serial = instances(cluster), cluster.state().serial  # type: ignore[union-attr]
    _refuse_snapshots(cluster.ctx)
    eng = bumped(cluster, tmp_path)
    with pytest.raises(ByocError) as exc:
        eng.apply(eng.plan())
    text = str(exc.value)
    assert "backup before the upgrade 1.6.16 → 1.6.17 failed, so nothing was changed" in text
    assert "UnauthorizedOperation" in text and "--no-backup" in text
    assert instances(eng) == old and eng.state().serial == serial  # type: ignore[union-attr]
    for inst in cluster.ctx.client("ec2").describe_instances(InstanceIds=list(old.values()))["Reservations"]:
        assert inst["Instances"][0]["State"]["Name"] == "running"
    # the way forward: --no-backup
    result = eng.apply(eng.plan(PlanOptions(no_backup=True)))
    assert result.ok, [str(f.error) for f in result.failures]
    assert set(instances(eng).values()).isdisjoint(old.values())


def test_a_wrong_version_on_the_first_node_stops_the_roll_and_the_rest_stay(
    cluster: Engine, tmp_path: Path
) -> None:
    old = instances(cluster)
    reported = {"version": "1.6.16"}  # the new node still runs the old image
    NodeShell(proton_version(lambda iid: reported["version"])).install(cluster.ctx.client("ssm"))
    eng = bumped(cluster, tmp_path)
    result = eng.apply(eng.plan())
    assert not result.ok
    (failure,) = result.failures
    assert failure.address == 'aws_instance.node["0"]'
    text = str(failure.error)
    assert "node 0 is healthy, but its check failed: its Proton reports version 1.6.16, not 1.6.17" in text
    assert "The roll stopped here (nodes 1, 2 were not touched)" in text and "byoc apply" in text
    now = instances(eng)
    assert now["0"] != old["0"] and now["1"] == old["1"] and now["2"] == old["2"]
    assert {node_of(a) for a in result.skipped if a.startswith("aws_instance")} == {"1", "2"}
    state = eng.state()
    assert state is not None and state.facts["proton_version"] == "1.6.16"  # not every node moved
    assert state.facts["proton_version_rolling"] == "1.6.17"

    # applied again while node 0 still reports 1.6.16: the roll does not start
    again = bumped(cluster, tmp_path)
    result = again.apply(again.plan())
    (failure,) = result.failures
    assert "node 0 is healthy, but its check failed" in str(failure.error)
    assert "The roll did not start (nodes 1, 2 were not touched)" in str(failure.error)
    assert instances(again) == now

    # fixed: the roll goes on with nodes 1 and 2
    reported["version"] = "1.6.17"
    result = again.apply(again.plan())
    assert result.ok, [str(f.error) for f in result.failures]
    assert instances(again)["0"] == now["0"] and instances(again)["1"] != old["1"]
    state = again.state()
    assert state is not None and state.facts["proton_version"] == "1.6.17"
    assert "proton_version_rolling" not in state.facts


class _Except(set[str]):
    """Every instance id but these (the new nodes, whose ids are not known in advance)."""

    def __contains__(self, item: object) -> bool:
        return not super().__contains__(item)


def test_no_answer_or_no_ssm_stops_the_roll_and_skip_version_check_says_it_skipped(
    cluster: Engine, tmp_path: Path
) -> None:
    old = instances(cluster)
    eng = bumped(cluster, tmp_path)
    result = eng.apply(eng.plan())  # moto's SSM: "Success" and no output
    (failure,) = result.failures
    assert "brought back no answer" in str(failure.error) and "--skip-version-check" in str(failure.error)
    assert instances(eng)["1"] == old["1"]

    NodeShell(unreachable=_Except(old.values())).install(cluster.ctx.client("ssm"))
    again = bumped(cluster, tmp_path)
    with pytest.raises(ByocError, match="could not be frozen through SSM"):  # the backup asks SSM first
        again.apply(again.plan())
    result = again.apply(again.plan(PlanOptions(no_backup=True)))
    (failure,) = result.failures
    assert "not reachable through SSM" in str(failure.error)
    assert "The roll did not start" in str(failure.error)  # node 0, replaced before, is asked first

    events: list[Event] = []
    skipping = bumped(cluster, tmp_path, skip=True)
    result = skipping.apply(skipping.plan(PlanOptions(no_backup=True)), on_event=events.append)
    assert result.ok, [str(f.error) for f in result.failures]
    notes = [e.message for e in events if e.kind == "note" and e.action == "wait-healthy"]
    assert len(notes) == 3 and all("version check skipped (--skip-version-check)" in n for n in notes)


def test_the_sandbox_skips_the_version_check_and_says_why(
    cluster: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = bumped(cluster, tmp_path)
    steps = eng.upgrade_steps
    assert steps is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    message = steps.check("0", instances(eng)["0"])
    assert "version check skipped" in message and "local sandbox" in message


def test_an_engine_without_upgrade_steps_refuses_an_upgrade(cluster: Engine, tmp_path: Path) -> None:
    eng = engine_for(dev_spec(BUMP, count=3), cluster.ctx, tmp_path)
    old = instances(cluster)
    with pytest.raises(PlanError, match="only `byoc apply`"):
        eng.apply(eng.plan())
    assert instances(eng) == old
    from byoc.operations.scale import plan_scale

    with pytest.raises(PlanError, match="only `byoc apply`"):  # refused when planned, before any question
        plan_scale(eng, 4)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_the_cli_refuses_a_major_move_and_plans_it_with_allow_major(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(tmp_path / "state", monkeypatch, count=2)
    monkeypatch.chdir(tmp_path)
    spec = str(Path(__file__).resolve().parents[1] / "specs/dev.yaml")
    argv = ["plan", spec, "--set", "compute.instance_count=2", "--set", "cluster.proton_version=3.0.19"]
    code, _, err = _cli(argv, capsys)
    assert code == 1 and "refused" in err and "--allow-major" in err and "Traceback" not in err
    code, out, _ = _cli([*argv, "--allow-major", "--no-backup", "--json"], capsys)
    assert code == 0
    up = json.loads(out)["byoc"]["upgrade"]
    assert up["move"] == "major" and up["backup"] is False and up["allow_major"] is True
