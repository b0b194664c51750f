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
