"""SSM Run Command on moto (outputs injected with tests.nodeshell): every node answers, a node SSM
cannot reach is reported as such, slow invocations are polled, and SQL comes back as rows or as
Proton's error; the script never carries the password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from byoc.errors import ByocError
from byoc.operations.ssm import (
    SQL_FAILED,
    NodeRun,
    QueryResult,
    node_instances,
    run_script,
    run_sql,
    secret_arn_of,
    sql_script,
)
from tests.daytwo import applied
from tests.nodeshell import Answer, NodeShell


@pytest.fixture
def cluster(moto: None, tmp_path: Path, monkeypatch: Any) -> Any:
    return applied(tmp_path, monkeypatch, count=3)


def test_every_node_runs_the_script_and_answers(cluster: Any) -> None:
    # as in AWS: no invocation at first, then InProgress, then the answer
    shell = NodeShell(lambda iid, script: Answer(stdout=f"hello from {iid}\n"), in_progress_polls=2,
                      not_yet_polls=2)
    shell.install(cluster.ctx.client("ssm"))
    nodes = node_instances(cluster.state())
    runs = run_script(cluster.ctx, nodes, "echo hello", comment="test")
    assert list(runs) == ["0", "1", "2"]
    for key, run in runs.items():
        assert run.ok and run.reachable
        assert run.stdout == f"hello from {nodes[key]}\n"
    assert sorted(i for i, _ in shell.sent) == sorted(nodes.values())


def test_an_unreachable_node_is_reported_and_the_others_still_run(cluster: Any) -> None:
    nodes = node_instances(cluster.state())
    shell = NodeShell(lambda iid, script: Answer(stdout="ok"), unreachable={nodes["1"]})
    shell.install(cluster.ctx.client("ssm"))
    runs = run_script(cluster.ctx, nodes, "true", comment="test")
    assert runs["0"].ok and runs["2"].ok
    assert not runs["1"].reachable and runs["1"].status == "Unreachable"
    assert "not reachable through SSM" in runs["1"].describe()


def test_a_failing_script_keeps_its_exit_code_and_last_words(cluster: Any) -> None:
    shell = NodeShell(lambda iid, script: Answer(stderr="one\ntwo\nboom\n", exit_code=7))
    shell.install(cluster.ctx.client("ssm"))
    run = run_script(cluster.ctx, node_instances(cluster.state(), ["0"]), "false", comment="t")["0"]
    assert not run.ok and run.reachable and run.exit_code == 7
    assert run.describe().endswith("Failed, exit 7: one / two / boom")


def test_sql_comes_back_as_rows(cluster: Any) -> None:
    answer = {"meta": [{"name": "version()", "type": "string"}], "data": [["1.6.1"]],
              "statistics": {"elapsed": 0.001}}
    NodeShell(lambda iid, script: Answer(stdout=json.dumps(answer))).install(cluster.ctx.client("ssm"))
    state = cluster.state()
    out = run_sql(cluster.ctx, node_instances(state, ["0"]), secret_arn_of(state), "SELECT version()")
    result = out["0"]
    assert isinstance(result, QueryResult)
    assert result.columns == ["version()"] and result.rows == [["1.6.1"]]


def test_a_failing_query_is_protons_message(cluster: Any) -> None:
    msg = "Code: 60. DB::Exception: Stream default.nope doesn't exist. (UNKNOWN_STREAM)"
    NodeShell(lambda iid, script: Answer(stderr=msg, exit_code=SQL_FAILED)).install(cluster.ctx.client("ssm"))
    state = cluster.state()
    nodes = node_instances(state, ["0"])
    result = run_sql(cluster.ctx, nodes, secret_arn_of(state), "SELECT * FROM nope")["0"]
    assert isinstance(result, NodeRun) and result.exit_code == SQL_FAILED
    assert "UNKNOWN_STREAM" in result.describe()


def test_the_sql_script_reads_the_password_on_the_node_and_never_carries_it() -> None:
    arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:byoc/dev/admin-AbCdEf"
    script = sql_script(arn, "us-west-2", "SELECT 'it''s'")
    assert "get-secret-value" in script and "curl -sS -K -" in script
    assert "SELECT" not in script  # the SQL travels base64-encoded: no quoting to get wrong
    assert "password" not in script.split("cannot read the admin password")[1]


def test_unknown_nodes_are_named(cluster: Any) -> None:
    with pytest.raises(ByocError, match="no node 7 in the state"):
        node_instances(cluster.state(), ["7"])
