"""Every malformed spec reaches the user as its message and exit 1 through the real CLI entry point."""

from __future__ import annotations

import os
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


@pytest.mark.parametrize("command", ["plan", "apply", "destroy", "graph", "output", "show", "drift"])
def test_every_spec_command_reports_bad_specs_the_same_way(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run([command, "missing.yaml"], capsys)
    assert code == 1
    assert "Error: missing.yaml: no such file" in err and "Traceback" not in err
    assert err.count("missing.yaml") == 1  # named once, not `missing.yaml: missing.yaml: …`


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


def _rewrite(argv: list[str]) -> tuple[list[str], bool]:
    import typer

    from byoc.cli.app import app
    from byoc.cli.argv import rewrite

    no_input = [False]
    return rewrite(argv, typer.main.get_command(app), no_input), no_input[0]


@pytest.mark.parametrize(("argv", "expected"), [
    (["plan", "s.yaml", "-out=prod.plan", "-json", "-no-color", "-detailed-exitcode", "-parallelism=4"],
     ["plan", "s.yaml", "--out=prod.plan", "--json", "--no-color", "--detailed-exitcode",
      "--parallelism=4"]),
    (["plan", "s.yaml", "-out", "prod.plan", "-target=aws_vpc.main", "-replace", 'aws_instance.node["0"]'],
     ["plan", "s.yaml", "--out", "prod.plan", "--target=aws_vpc.main", "--replace",
      'aws_instance.node["0"]']),
    (["apply", "-auto-approve", "-lock-timeout=30s", "-refresh=true", "s.yaml"],
     ["apply", "--auto-approve", "--lock-timeout=30s", "s.yaml"]),
    (["destroy", "s.yaml", "-target=aws_lb.main", "-auto-approve"],
     ["destroy", "s.yaml", "--target=aws_lb.main", "--auto-approve"]),
    (["output", "s.yaml", "vpc_id", "-raw"], ["output", "s.yaml", "vpc_id", "--raw"]),
    (["plan", "s.yaml", "-v"], ["-v", "plan", "s.yaml"]),
    (["-vv", "state", "list", "s.yaml", "--verbose"], ["-vv", "--verbose", "state", "list", "s.yaml"]),
    (["plan", "s.yaml", "-o", "p", "--set", "a.b=-x", "-h"],
     ["plan", "s.yaml", "-o", "p", "--set", "a.b=-x", "-h"]),
    (["plan", "s.yaml", "-help"], ["plan", "s.yaml", "--help"]),
])
def test_terraform_single_dash_spellings_become_byoc_options(argv: list[str], expected: list[str]) -> None:
    assert _rewrite(argv) == (expected, False)


def test_input_false_is_dropped_and_turns_questions_off() -> None:
    assert _rewrite(["apply", "s.yaml", "-input=false"]) == (["apply", "s.yaml"], True)
    assert _rewrite(["apply", "s.yaml", "-input=true"]) == (["apply", "s.yaml"], False)


@pytest.mark.parametrize(("argv", "message"), [
    (["plan", "s.yaml", "-refresh=false"],
     "byoc has no -refresh=false: byoc always reads what exists in AWS"),
    (["plan", "s.yaml", "-var", "x=1"], "byoc spells it --set KEY.PATH=VALUE"),
    (["apply", "s.yaml", "-lock=false"], "byoc always locks the state"),
    (["apply", "s.yaml", "-out=x"], "`byoc apply` has no --out (Terraform's -out)"),
    (["validate", "s.yaml", "-json"], "`byoc validate` has no --json (Terraform's -json)"),
    (["plan", "s.yaml", "-frobnicate"], "`byoc plan` has no option -frobnicate: byoc spells long options "
     "with two dashes"),
])
def test_terraform_spellings_byoc_lacks_are_refused_naming_its_own(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 1 and message in err, err
    assert not list(tmp_path.iterdir())  # nothing written (no `ut=x`)


def test_apply_with_input_false_refuses_like_no_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from byoc.cli import common, ui

    monkeypatch.setattr(ui.sys.stdin, "isatty", lambda: True, raising=False)
    ui.allow_input(False)
    try:
        assert not ui.stdin_is_tty()
        with pytest.raises(Exception, match="-input=false forbids asking; run it in a terminal, or pass "
                                            "--auto-approve"):
            common._confirm("Go?", False, "apply")
    finally:
        ui.allow_input(True)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1m30s", 90), ("1h", 3600),
                                               ("500ms", 0.5), ("0s", 0), ("12", 12)])
def test_lock_timeout_durations(text: str, seconds: float) -> None:
    from byoc.cli.common import _duration

    assert _duration(text) == seconds


def test_a_bad_lock_timeout_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["apply", "x.yaml", "-lock-timeout=soon"], capsys)
    assert code == 1 and "--lock-timeout soon: not a duration; give e.g. 30s" in err


@pytest.mark.parametrize("command", ["apply", "show"])
def test_a_file_that_is_neither_spec_nor_plan_is_refused_as_such(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("deploy on friday\nthen go home\n")
    Path("prod.plan").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    for name in ("notes.txt", "prod.plan"):
        code, _, err = run([command, name], capsys)
        assert code == 1 and "Traceback" not in err
        assert f"{name} is neither a spec (.yaml) nor a plan file saved by `byoc plan -o`" in err
    # a spec under another name is still a spec
    root = Path(__file__).resolve().parents[1]
    Path("dev.spec").write_text((root / "specs/dev.yaml").read_text())
    code, out, err = run(["show", "dev.spec"], capsys)
    assert code == 0 and "No state for cluster dev-proton" in out, err


def test_sandbox_status_says_busy_not_down_while_a_live_sandbox_answers_slowly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox whose process lives and whose port accepts connections but does not answer in
    time (a long request in moto) is running, busy; a dead pid or a closed port is not running."""
    import json
    import socket

    from byoc import sandbox

    monkeypatch.setattr(sandbox, "STATUS_TIMEOUT", 0.3)
    with socket.socket() as silent:  # accepts (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        (tmp_path / "sandbox.json").write_text(json.dumps({"pid": os.getpid(), "port": port}))
        code, out, _ = run(["sandbox", "status", "--state-dir", str(tmp_path)], capsys)
        assert code == 0
        assert f"Sandbox running at http://127.0.0.1:{port} (pid {os.getpid()}), but busy" in out
    code, out, _ = run(["sandbox", "status", "--state-dir", str(tmp_path)], capsys)  # port closed now
    assert code == 1 and "No sandbox is running." in out


def test_the_sandbox_reads_a_buckets_eventbridge_notifications_back_as_aws_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto alone leaves EventBridgeConfiguration out of GetBucketNotificationConfiguration: without
    the sandbox's correction every plan after apply would turn the buckets' events on again."""
    import boto3

    code, out, _ = run(["sandbox", "start", "--port", "0", "--state-dir", str(tmp_path)], capsys)
    assert code == 0
    try:
        env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
        s3 = boto3.client("s3", region_name="us-west-2", endpoint_url=env["AWS_ENDPOINT_URL"],
                          verify=env["AWS_CA_BUNDLE"],  # the sandbox speaks TLS with its own certificate
                          aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
        bucket = "sandbox-events"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        assert "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket=bucket)
        s3.put_bucket_notification_configuration(Bucket=bucket,
                                                 NotificationConfiguration={"EventBridgeConfiguration": {}})
        assert s3.get_bucket_notification_configuration(Bucket=bucket)["EventBridgeConfiguration"] == {}
    finally:
        assert run(["sandbox", "stop", "--state-dir", str(tmp_path)], capsys)[0] == 0


def test_no_color_is_taken_by_every_command_as_in_terraform() -> None:
    import typer

    from byoc.cli.app import app
    from byoc.cli.argv import rewrite

    no_input, no_color = [False], [False]
    root = typer.main.get_command(app)
    assert rewrite(["plan", "s.yaml", "-no-color"], root, no_input, no_color) == [
        "plan", "s.yaml", "--no-color"]
    assert no_color == [False]
    assert rewrite(["output", "s.yaml", "-no-color"], root, no_input, no_color) == ["output", "s.yaml"]
    assert no_color == [True]


def test_an_interrupt_outside_the_operations_exits_1_saying_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM) while planning or asking: exit 1 as Terraform does, not a silent 130."""
    from byoc.cli import core

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "_load", interrupted)
    code, _, err = run(["validate", "x.yaml"], capsys)
    assert code == 1 and "Interrupted." in err
