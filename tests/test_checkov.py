"""checkov on the plan JSON of specs/prod.yaml (made against moto) passes, apart from the justified
skip list in .checkov.yaml — and every skip there is still needed.

checkov lives in its own virtualenv (.venv-checkov, made by `make checkov-venv`, which `make test`
runs) so that its pinned dependencies never touch byoc's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.motoserver import ROOT, MotoServer

CHECKOV = ROOT / ".venv-checkov/bin/checkov"


def skip_list() -> set[str]:
    conf = yaml.safe_load((ROOT / ".checkov.yaml").read_text())
    return set(conf["skip-check"])


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed: run `make checkov-venv` "
                    "(a separate virtualenv .venv-checkov)")
def test_checkov_passes_on_the_prod_plan_but_for_justified_skips(tmp_path: Path) -> None:
    server = MotoServer()
    try:
        p = subprocess.run([sys.executable, "-m", "byoc", "plan", "--json", str(ROOT / "specs/prod.yaml")],
                           env=server.env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    finally:
        server.stop()
    assert p.returncode == 0, p.stderr
    plan = tmp_path / "plan.json"
    plan.write_text(p.stdout)
    run = subprocess.run([str(CHECKOV), "-f", str(plan), "--framework", "terraform_plan", "--skip-download",
                          "-o", "json", "--quiet"], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)  # not ROOT: checkov would read .checkov.yaml from there
    report = json.loads(run.stdout)
    failed = {c["check_id"]: c["resource"] for c in report["results"]["failed_checks"]}
    assert report["summary"]["passed"] > 40  # checkov did read the resources
    skips = skip_list()
    unexplained = {k: v for k, v in failed.items() if k not in skips}
    assert not unexplained, f"checkov findings to fix (or justify in .checkov.yaml): {unexplained}"
    stale = sorted(skips - set(failed))
    assert not stale, f"skips in .checkov.yaml no longer needed: {stale}"
    # and the repository's way of running it, with the config file, passes
    ok = subprocess.run([str(CHECKOV), "-f", str(plan), "--config-file", str(ROOT / ".checkov.yaml"),
                         "--quiet"], capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout[-3000:]
