"""Health on moto: a healthy cluster; a stopped node and a deregistered node are degraded (exit 2);
the probe asks a tiny HTTP server on 127.0.0.1 (never an address moto invents) and is skipped
against the sandbox."""

from __future__ import annotations

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
