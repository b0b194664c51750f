"""Health on moto: a healthy cluster; a stopped node and a deregistered node are degraded (exit 2);
the probe asks a tiny HTTP server on 127.0.0.1 (never an address moto invents) and is skipped
against the sandbox."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from byoc.errors import ByocError
from byoc.operations.health import DEGRADED, HEALTHY, Prober, check_health, sandbox_reason
from byoc.state.model import State
from tests.daytwo import applied


class _Proton(http.server.BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:
        status, body = self.answers.get(self.path, (404, b"no"))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proton() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    answers: dict[str, tuple[int, bytes]] = {"/": (200, b"Ok.\n"), "/proton/ping": (200, b'{"status":"UP"}')}
    handler = type("Handler", (_Proton,), {"answers": answers})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()
    server.server_close()


def test_healthy_then_a_stopped_and_a_deregistered_node_are_degraded(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = applied(tmp_path, monkeypatch)
    state = eng.state()
    assert state is not None
    report = check_health(eng.ctx, state, expected_nodes=2)
    assert report.status == HEALTHY and report.exit_code == 0, report.to_dict()
    assert [n.key for n in report.nodes] == ["0", "1"]
    assert set(report.nodes[0].targets.values()) == {"healthy"} and len(report.nodes[0].targets) == 2
    assert report.nodes[0].state == "running"

    ec2, elbv2 = eng.ctx.client("ec2"), eng.ctx.client("elbv2")
    ec2.stop_instances(InstanceIds=[report.nodes[0].instance_id])
    tg = next(r.id for a, r in state.resources.items() if a == 'aws_lb_target_group.main["8123"]')
    elbv2.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": report.nodes[1].instance_id, "Port": 8123}])
    report = check_health(eng.ctx, state, expected_nodes=3)
    assert report.status == DEGRADED and report.exit_code == 2
    n0, n1 = report.nodes
    assert n0.state == "stopped" and any("is stopped" in p for p in n0.problems)
    assert n1.targets['aws_lb_target_group.main["8123"]'] == "not registered" and not any(
        "stopped" in p for p in n1.problems
    )
    assert report.problems == ["node 2 does not exist (the spec asks for 3): run `byoc apply`"]
    d = report.to_dict()
    assert d["status"] == "degraded" and d["nodes"][1]["healthy"] is False
    # an instance deleted outside byoc: the others are still reported
    node1 = state.resources['aws_instance.node["1"]']
    gone = state.with_resource(dataclasses.replace(node1, id="i-0000000000000dead"))
    n0, n1 = check_health(eng.ctx, gone).nodes
    assert (
        n0.state == "stopped"
        and n1.state == "missing"
        and "instance i-0000000000000dead is missing" in n1.problems
    )


def test_no_state_is_an_error(ctx: object) -> None:
    with pytest.raises(ByocError, match="run `byoc apply` first"):
        check_health(ctx, State.new("test"))  # type: ignore[arg-type]


def test_the_probe_asks_proton_through_an_injected_base_url(
    proton: tuple[str, dict[str, tuple[int, bytes]]],
) -> None:
    url, answers = proton
    checks = Prober(url).check()
    assert [(c.url, c.status, c.ok) for c in checks] == [
        (url + "/", 200, True),
        (url + "/proton/ping", 200, True),
    ]
    answers["/proton/ping"] = (404, b'{"status":"Initializing"}')
    assert Prober(url).check()[1].detail == "Initializing (Proton is starting)"
    answers["/proton/ping"] = (401, b"auth")
    assert Prober(url).check()[1].ok
    answers["/"] = (502, b"bad gateway")
    assert not Prober(url).check()[0].ok
    closed = Prober("http://127.0.0.1:9", timeout=1.0).check()
    assert closed[0].status is None and "no answer" in closed[0].detail


def test_the_probe_in_the_report_and_skipped_against_the_sandbox(
    moto: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    proton: tuple[str, dict[str, tuple[int, bytes]]],
) -> None:
    eng = applied(tmp_path, monkeypatch, count=1)
    state = eng.state()
    url, answers = proton
    answers["/"] = (503, b"")
    report = check_health(eng.ctx, state, probe=True, prober=Prober(url))
    assert report.status == DEGRADED and report.problems[0].startswith(f"probe {url}/: HTTP 503")
    # without an injected prober, the sandbox is detected and nothing is opened
    skipped = check_health(eng.ctx, state, probe=True, environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    assert skipped.status == HEALTHY and not skipped.probe
    assert "AWS_ENDPOINT_URL is set (http://127.0.0.1:4566)" in str(skipped.probe_skipped)
    assert sandbox_reason({}) is None


def test_cli_exit_codes_against_the_moto_server(tmp_path: Path) -> None:
    """The real CLI: health 0 then 2 (a stopped node), the probe skipped against the sandbox,
    backup denied over plain HTTP by the bucket's TLS-only policy, then backup, list and restore."""
    import json
    import shutil

    from tests.motoserver import ROOT, MotoServer
    from tests.test_cli_e2e import byoc, no_traceback

    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "specs/dev.yaml", tmp_path / "specs/dev.yaml")
    server = MotoServer()
    try:
        env = server.env()
        p = byoc(["apply", "specs/dev.yaml", "--auto-approve", "--skip-preflight"], env, tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        p = byoc(["health", "specs/dev.yaml", "--probe"], env, tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        assert (
            "Cluster dev-proton: healthy" in p.stdout and "probe skipped: AWS_ENDPOINT_URL is set" in p.stdout
        )

        p = byoc(["backup", "specs/dev.yaml"], env, tmp_path)
        assert p.returncode == 1 and "over TLS (aws:SecureTransport)" in p.stderr, p.stdout + p.stderr
        assert "its 1 snapshot(s) were deleted" in p.stderr
        no_traceback(p)
        server.client("s3").delete_bucket_policy(Bucket="dev-proton-data-byoc-example")
        p = byoc(["backup", "specs/dev.yaml", "--json"], env, tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        backup_id = json.loads(p.stdout)["backup_id"]
        # an interrupted backup: a tagged snapshot without a manifest; prune lists it and asks
        ec2 = server.client("ec2")
        vol = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["dev-proton-data-0"]}])[
            "Volumes"
        ][0]
        tags = [
            {"Key": "byoc:cluster", "Value": "dev-proton"},
            {"Key": "byoc:backup-id", "Value": "backup-dev-proton-5"},
        ]
        ec2.create_snapshot(
            VolumeId=vol["VolumeId"], TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}]
        )
        p = byoc(["backups", "prune", "specs/dev.yaml"], env, tmp_path)
        assert p.returncode == 1 and "backup-dev-proton-5" in p.stdout and "incomplete" in p.stdout
        assert "--auto-approve" in p.stderr and backup_id not in p.stdout
        p = byoc(["backups", "prune", "specs/dev.yaml", "--auto-approve"], env, tmp_path)
        assert p.returncode == 0 and "Deleted 1 backup(s) (1 snapshot(s))" in p.stdout, p.stdout + p.stderr
        p = byoc(["backups", "list", "specs/dev.yaml"], env, tmp_path)
        assert p.returncode == 0 and f"{backup_id}" in p.stdout and "complete" in p.stdout

        p = byoc(["restore", "specs/dev.yaml", backup_id, "--auto-approve"], env, tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "-/+" in p.stdout and 'Final snapshot of aws_ebs_volume.data["0"]' in p.stdout

        state = json.loads((tmp_path / "state/dev-proton.json").read_text())
        (instance,) = [r["id"] for r in state["resources"] if r["address"] == 'aws_instance.node["0"]']
        server.client("ec2").stop_instances(InstanceIds=[instance])
        p = byoc(["health", "specs/dev.yaml", "--json"], env, tmp_path)
        assert p.returncode == 2, p.stdout + p.stderr
        report = json.loads(p.stdout)
        assert report["status"] == "degraded" and report["nodes"][0]["state"] == "stopped"
    finally:
        server.stop()
