"""`byoc logs` against moto: the nodes' streams read in one FilterLogEvents, interleaved by time with
the node on each line, --grep, --since, --node, follow mode, a missing log group; and the real CLI
(logs and metrics) on the moto server."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from byoc.api import Cluster
from byoc.cli.observe import _print_events, follow_logs
from byoc.engine import Engine
from byoc.errors import ByocError
from byoc.operations.logs import (
    FOLLOW_LOOKBACK_MS,
    LogEvent,
    LogFollower,
    cluster_logs,
    literal_pattern,
    log_query,
    parse_since,
)
from tests.daytwo import applied
from tests.motoserver import MotoServer
from tests.test_cli_e2e import byoc, no_traceback

GROUP = "/aws/proton/dev-proton"
OLD = "i-0aaaaaaaaaaaaaaaa"  # a replaced node's former instance: its stream stays in the group


def nodes_of(eng: Engine) -> dict[str, str]:
    from byoc.operations.ssm import node_instances

    return node_instances(eng.state())


def put(logs: Any, stream: str, *events: tuple[int, str]) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    logs.put_log_events(logGroupName=GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": m} for t, m in events])


@pytest.fixture
def cluster(moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    return applied(tmp_path, monkeypatch)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_two_nodes_interleave_by_time_each_line_names_its_node(cluster: Engine) -> None:
    n = nodes_of(cluster)
    logs = cluster.ctx.client("logs")
    t = now_ms() - 60_000
    put(logs, n["0"], (t, "0 starts"), (t + 2000, "0 ready"))
    put(logs, n["1"], (t + 1000, "1 starts"), (t + 3000, "1 ready"))
    put(logs, OLD, (t + 500, "old instance's last words"))
    put(logs, n["0"] + "/bootstrap", (t + 100, "byoc-bootstrap: instance"))
    put(logs, "proton", (t + 200, '{"_aws": "an EMF metrics record"}'))  # the agent's metrics stream
    before = cluster.ctx.calls.counts[("logs", "FilterLogEvents")]

    events = cluster_logs(cluster.ctx, cluster.state(), since="10m")
    assert [(e.node, e.message) for e in events] == [
        ("0", "0 starts"), (OLD, "old instance's last words"), ("1", "1 starts"), ("0", "0 ready"),
        ("1", "1 ready")]
    assert events[0].instance_id == n["0"] and events[0].source == "proton"
    assert cluster.ctx.calls.counts[("logs", "FilterLogEvents")] - before == 1  # one call, every stream

    with_boot = cluster_logs(cluster.ctx, cluster.state(), since="10m", bootstrap=True)
    boot = [e for e in with_boot if e.source == "bootstrap"]
    assert [(e.node, e.message) for e in boot] == [("0", "byoc-bootstrap: instance")]

    class Con:
        lines: list[str] = []

        def print(self, text: str, **kw: Any) -> None:
            self.lines.append(text)

    con = Con()
    _print_events(con, with_boot[:3], False, False)
    w = len(OLD)  # labels are padded to the widest: here the former instance's id
    assert con.lines[0].endswith(f"  {'node 0':<{w}}  0 starts")
    assert con.lines[1].endswith(f"  {'node 0 boot':<{w}}  byoc-bootstrap: instance")
    assert con.lines[2].endswith(f"  {OLD}  old instance's last words")
    assert con.lines[0].startswith(events[0].time) and events[0].time.endswith("Z")


def test_node_filter_grep_and_since(cluster: Engine) -> None:
    n = nodes_of(cluster)
    logs = cluster.ctx.client("logs")
    t = now_ms()
    put(logs, n["0"], (t - 2 * 3600_000, "old: Code: 60. DB::Exception"),
        (t - 60_000, "Code: 60. DB::Exception"), (t - 50_000, "all fine"))
    put(logs, n["1"], (t - 40_000, "Code: 60. DB::Exception on 1"))

    only0 = cluster_logs(cluster.ctx, cluster.state(), nodes=["0"], since="1h")
    assert [e.message for e in only0] == ["Code: 60. DB::Exception", "all fine"]
    assert {e.node for e in only0} == {"0"}
    found = cluster_logs(cluster.ctx, cluster.state(), since="1h", grep="Code: 60")
    assert [(e.node, e.message) for e in found] == [
        ("0", "Code: 60. DB::Exception"), ("1", "Code: 60. DB::Exception on 1")]
    assert len(cluster_logs(cluster.ctx, cluster.state(), since="3h", grep="Code: 60")) == 3
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((t - 3 * 3600_000) / 1000))
    assert len(cluster_logs(cluster.ctx, cluster.state(), since=iso)) == 4
    with pytest.raises(ByocError, match=r"no node 7 in the state \(nodes: 0, 1\)"):
        cluster_logs(cluster.ctx, cluster.state(), nodes=["7"])


def test_since_and_grep_are_parsed_strictly() -> None:
    now = 1_767_225_600.0
    assert parse_since("30s", now) == (now - 30) * 1000
    assert parse_since("15m", now) == (now - 900) * 1000
    assert parse_since("2d", now) == (now - 2 * 86400) * 1000
    assert parse_since("2026-01-01T00:00:00Z", now) == 1_767_225_600_000
    assert parse_since("2026-01-01T00:00:00", now) == 1_767_225_600_000  # no zone: UTC
    with pytest.raises(ByocError, match="--since yesterday: not a time"):
        parse_since("yesterday", now)
    assert literal_pattern("Code: 60") == '"Code: 60"'
    assert literal_pattern('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    with pytest.raises(ByocError, match="--grep"):
        literal_pattern("")


def test_follow_prints_new_lines_once_and_catches_late_ones(cluster: Engine) -> None:
    n = nodes_of(cluster)
    logs = cluster.ctx.client("logs")
    t = now_ms() - 30_000
    put(logs, n["0"], (t, "first"))
    q = log_query(cluster.ctx, cluster.state())
    follower = LogFollower(cluster.ctx, q, t - 1000)
    shown: list[list[str]] = []
    arrivals = [
        [(n["1"], t + 1000, "second"), (n["0"], t + 2000, "third")],
        [(n["1"], t + 1500, "late, older than third")],  # accepted by CloudWatch after 'third'
        [], [],
    ]

    def show(batch: list[LogEvent]) -> None:
        shown.append([e.message for e in batch])
        for stream, ts, msg in arrivals[len(shown) - 1]:
            put(logs, stream, (ts, msg))

    polls = follow_logs(follower, show, sleep=lambda s: None, polls=4)
    assert polls == 4
    assert shown == [["first"], ["second", "third"], ["late, older than third"], []]
    assert FOLLOW_LOOKBACK_MS >= 1000


def test_follow_stops_cleanly_on_ctrl_c() -> None:
    class Follower:
        def poll(self) -> list[LogEvent]:
            raise KeyboardInterrupt

    assert follow_logs(Follower(), lambda b: None, sleep=lambda s: None) == 0


def test_follow_stops_between_polls_when_its_stop_is_set() -> None:
    """The first Ctrl-C sets the stop flag: the poll under way finishes, then the loop ends."""
    import threading

    stop = threading.Event()
    shown: list[int] = []

    class Follower:
        def poll(self) -> list[LogEvent]:
            if len(shown) == 2:
                stop.set()  # as the signal handler does, in the middle of the third poll
            return []

    assert follow_logs(Follower(), lambda b: shown.append(1), sleep=stop.wait, interval=0.01, stop=stop) == 3
    assert len(shown) == 3


def test_the_first_signal_sets_the_stop_the_second_interrupts_and_ignored_stays_ignored() -> None:
    import os
    import signal

    from byoc.cli.observe import _stopped_by_signals

    # a job started with `&` by a shell without job control inherits SIGINT ignored: start from
    # the default, as an interactive terminal gives it
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    with _stopped_by_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(5)  # set, and nothing raised
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the second signal interrupts this at once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    signal.signal(signal.SIGINT, before)
    term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with _stopped_by_signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)  # nohup'ed: still ignored
            assert not stop.wait(0.2)
    finally:
        signal.signal(signal.SIGTERM, term)


def test_missing_log_group_and_missing_state(cluster: Engine) -> None:
    cluster.ctx.client("logs").delete_log_group(logGroupName=GROUP)
    with pytest.raises(ByocError, match=f"log group {GROUP} does not exist in us-west-2.*byoc apply"):
        cluster_logs(cluster.ctx, cluster.state())
    with pytest.raises(ByocError, match="has no nodes in its state: run `byoc apply` first"):
        cluster_logs(cluster.ctx, None)


def test_cluster_api_reads_the_same_events(cluster: Engine) -> None:
    n = nodes_of(cluster)
    put(cluster.ctx.client("logs"), n["1"], (now_ms() - 1000, "hello"))
    c = Cluster(cluster.spec, ctx=cluster.ctx, backend=cluster.backend)
    events = c.logs(since="5m", nodes=["1"])
    assert [e.to_dict()["message"] for e in events] == ["hello"]
    assert events[0].to_dict()["node"] == "1"


# --- the real CLI on the moto server ---------------------------------------------------------------

@pytest.fixture
def aws(server: MotoServer) -> MotoServer:
    server.reset()
    return server


def test_cli_logs_and_metrics_end_to_end(aws: MotoServer, work: Path) -> None:
    env = aws.env()
    for cmd in (["logs", "specs/dev.yaml"], ["metrics", "specs/dev.yaml"]):
        p = byoc(cmd, env, work)
        assert p.returncode == 1 and "has no nodes in its state: run `byoc apply` first" in p.stderr, p.stderr
        no_traceback(p)

    p = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    state = json.loads((work / "state/dev-proton.json").read_text())
    iid = next(r["id"] for r in state["resources"] if r["address"] == 'aws_instance.node["0"]')
    logs = aws.client("logs")
    put(logs, iid, (now_ms() - 5000, "Ready for connections"))

    p = byoc(["logs", "specs/dev.yaml", "--since", "5m"], env, work)
    assert p.returncode == 0, p.stderr
    assert "node 0  Ready for connections" in p.stdout
    p = byoc(["logs", "specs/dev.yaml", "--grep", "nothing like this", "--json"], env, work)
    assert p.returncode == 0 and json.loads(p.stdout) == []
    p = byoc(["logs", "specs/dev.yaml", "--node", "9"], env, work)
    assert p.returncode == 1 and "no node 9 in the state" in p.stderr
    no_traceback(p)

    aws.client("cloudwatch").put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": iid}], "Value": v,
         "Timestamp": time.time() - 600 + 60 * i} for i, v in enumerate((20.0, 40.0, 90.0))])
    p = byoc(["metrics", "specs/dev.yaml", "--since", "1h", "--no-color", "--html", "m.html"], env, work)
    assert p.returncode == 0, p.stderr
    assert "min   20.0 avg   50.0 max   90.0" in p.stdout and "no data yet" in p.stdout
    assert "max at/over alarm 80" in p.stdout
    assert max(len(line) for line in p.stdout.splitlines()) <= 80
    page = (work / "m.html").read_text()
    assert "<svg" in page and "http://" not in page and "https://" not in page
    p = byoc(["metrics", "specs/dev.yaml", "--since", "1h", "--json"], env, work)
    cpu = next(m for m in json.loads(p.stdout)["metrics"] if m["key"] == "cpu")
    assert cpu["nodes"]["0"]["max"] == 90.0 and len(cpu["nodes"]["0"]["points"]) == 3
    assert json.loads(p.stdout)["get_metric_data_calls"] == 1

    # --follow prints what there is, then new lines; Ctrl-C (SIGINT) ends it with exit 0, no traceback
    import os
    import signal
    import subprocess
    import sys

    follow = subprocess.Popen([sys.executable, "-m", "byoc", "logs", "specs/dev.yaml", "--since", "5m", "-f"],
                              env={**env, "PYTHONUNBUFFERED": "1"}, cwd=work, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              # SIGINT as a terminal gives it, also when the suite runs as a
                              # background job (`&` without job control starts it ignored)
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    import threading

    guard = threading.Timer(120, follow.kill)  # a readline that never returns fails the test instead
    guard.start()
    try:
        assert follow.stdout is not None
        assert "Ready for connections" in follow.stdout.readline()
        put(logs, iid, (now_ms(), "a new line"))
        assert "a new line" in follow.stdout.readline()  # the next poll, 3 s later
        os.kill(follow.pid, signal.SIGINT)
        rest, err = follow.communicate(timeout=60)
    finally:
        guard.cancel()
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0, err
    assert "Traceback" not in err and "a new line" not in rest and "Ready" not in rest
