"""Every malformed spec reaches the user as its message and exit 1 through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from byoc.cli import main
from tests.test_spec_errors import CASES


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.mark.parametrize(("text", "overrides", "issues"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validate_exit_1_with_each_message(
    text: str, overrides: list[str], issues: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("spec.yaml").write_text(text)
    argv = ["validate", "spec.yaml"]
    for o in overrides:
        argv += ["--set", o]
    code, out, err = run(argv, capsys)
    assert code == 1
    for issue in issues:
        assert issue in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("command", ["plan", "apply", "destroy", "graph", "output", "show"])
def test_every_spec_command_reports_bad_specs_the_same_way(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run([command, "missing.yaml"], capsys)
    assert code == 1
    assert "missing.yaml" in err and "Traceback" not in err


def test_usage_errors_exit_1_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", "--no-such-flag", "x.yaml"], capsys)
    assert code == 1 and "no-such-flag" in err


def test_set_override_reaches_validation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[1]
    code, _, err = run(["validate", str(root / "specs/dev.yaml"), "--set", "network.nat_gateway=sometimes"],
                       capsys)
    assert code == 1
    assert "--set network.nat_gateway=sometimes" in err and "per_az, single, none" in err


def test_state_file_problems_exit_1_naming_the_file_and_restore_backup_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No state but a backup: every command refuses naming it; `state restore-backup` puts it back
    (and is refused while a state exists); wrong types in the file and a state.path that is a file
    are messages, never an internal error."""
    import json

    from byoc.state import LocalBackend, State

    root = Path(__file__).resolve().parents[1]
    spec = str(root / "specs/dev.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from byoc.spec import load_spec

    name = load_spec(spec).cluster_name
    b = LocalBackend(tmp_path / "state", name)
    first = State.new(name).bumped()
    b.write(first)
    b.write(first.bumped())
    b.path.unlink()
    for argv in (["plan", spec], ["state", "list", spec], ["apply", spec, "--auto-approve"]):
        code, _, err = run(argv, capsys)
        assert code == 1, argv
        assert f"{name}.json.backup holds the state of cluster {name} (serial 1" in err
        assert "byoc state restore-backup SPEC" in err and "internal error" not in err
    code, out, _ = run(["state", "restore-backup", spec], capsys)
    assert code == 0 and f"serial 1, lineage {first.lineage}" in out
    assert LocalBackend(tmp_path / "state", name).read() == first
    code, _, err = run(["state", "restore-backup", spec], capsys)
    assert code == 1 and "a state file exists (serial 1" in err and "--force" in err
    code, out, _ = run(["state", "restore-backup", spec, "--force"], capsys)
    assert code == 0 and "serial 1" in out

    doc = json.loads(b.path.read_text())
    doc["final_snapshots"] = [{"address": 7}]
    b.path.write_text(json.dumps(doc))
    code, _, err = run(["state", "list", spec], capsys)
    assert code == 1 and "'final_snapshots[0]' has no 'snapshot_id'" in err and "internal error" not in err
    doc["final_snapshots"], doc["outputs"] = [], ["not", "a", "mapping"]
    b.path.write_text(json.dumps(doc))
    code, _, err = run(["output", spec], capsys)
    assert code == 1 and "'outputs' must be an object" in err and f"{name}.json" in err

    (tmp_path / "blocked").write_text("")
    code, _, err = run(["state", "list", spec, "--set", "state.path=blocked"], capsys)
    assert code == 1 and "blocked: the state directory (state.path) is not a directory" in err
