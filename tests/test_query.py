"""`byoc query` on moto, the nodes' answers injected with tests.nodeshell: rows come back as a table
or JSON, Proton's error and an unreachable node exit 1 with what happened, --node picks the nodes,
and the whole CLI runs in-process on the applied cluster (``main`` with the engine swapped in)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from byoc.api import Cluster
from byoc.cli import main
from byoc.errors import ByocError
from byoc.operations.query import run_query
from byoc.operations.ssm import SQL_FAILED, node_instances
from tests.daytwo import applied
from tests.nodeshell import Answer, NodeShell

VERSION = {"meta": [{"name": "version()", "type": "string"}, {"name": "n", "type": "uint64"}],
           "data": [["1.6.16", 3], ["1.6.16", None]], "statistics": {"elapsed": 0.0021, "rows_read": 1}}
UNKNOWN = "Code: 60. DB::Exception: Stream default.nope doesn't exist. (UNKNOWN_STREAM) (version 1.6.16)"


@pytest.fixture
def cluster(moto: None, tmp_path: Path, monkeypatch: Any) -> Any:
    eng = applied(tmp_path, monkeypatch, count=3)
    monkeypatch.setattr("byoc.cli.nodeops._engine", lambda spec, parallelism, adopt=False: eng)
    return eng


def sql_of(script: str) -> str:
    """The SQL a script carries (base64, so that no quoting can go wrong)."""
    match = re.search(r"printf %s ([A-Za-z0-9+/=]+) \| base64 -d", script)
    return base64.b64decode(match.group(1)).decode() if match else ""


def answering(eng: Any, answer: Any, **kw: Any) -> NodeShell:
    return NodeShell(answer, **kw).install(eng.ctx.client("ssm"))


def cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_rows_come_back_as_a_table_from_the_first_node(cluster: Any, capsys: Any) -> None:
    shell = answering(cluster, lambda iid, script: Answer(stdout=json.dumps(VERSION)))
    code, out, err = cli(["query", "specs/dev.yaml", "SELECT version(), n FROM t", "--no-color"], capsys)
    assert code == 0, err
    nodes = node_instances(cluster.state())
    (sent,) = shell.sent
    assert sent[0] == nodes["0"] and sql_of(sent[1]) == "SELECT version(), n FROM t"
    assert f"node 0 ({nodes['0']}): the first node; --node all asks every node" in out
    assert re.search(r"version\(\)\s+n\b", out) and re.search(r"string\s+uint64", out)
    assert re.search(r"1\.6\.16\s+3", out) and re.search(r"1\.6\.16\s+NULL", out)
    assert "2 row(s) in 0.002 s" in out
    assert "\x1b[" not in out  # readable without colour


def test_json_gives_columns_types_and_rows(cluster: Any, capsys: Any) -> None:
    answering(cluster, lambda iid, script: Answer(stdout=json.dumps(VERSION)))
    code, out, _ = cli(["query", "specs/dev.yaml", "SELECT version()", "--json", "--node", "1"], capsys)
    assert code == 0
    doc = json.loads(out)
    (r,) = doc["results"]
    assert doc["ok"] is True and doc["sql"] == "SELECT version()"
    assert r["node"] == "1" and r["ok"] is True
    assert r["columns"] == ["version()", "n"] and r["types"] == ["string", "uint64"]
    assert r["rows"] == [["1.6.16", 3], ["1.6.16", None]]


def test_a_failing_query_exits_1_with_protons_message(cluster: Any, capsys: Any) -> None:
    answering(cluster, lambda iid, script: Answer(stderr=UNKNOWN, exit_code=SQL_FAILED))
    code, out, err = cli(["query", "specs/dev.yaml", "SELECT * FROM nope", "--no-color"], capsys)
    assert code == 1
    assert "Proton refused the query: " + UNKNOWN in " ".join(err.split())
    assert "Traceback" not in out + err


def test_an_unreachable_node_exits_1_naming_it_and_the_others_answer(cluster: Any, capsys: Any) -> None:
    nodes = node_instances(cluster.state())
    answering(cluster, lambda iid, script: Answer(stdout=json.dumps(VERSION)), unreachable={nodes["2"]})
    code, out, err = cli(["query", "specs/dev.yaml", "SELECT 1", "--node", "all", "--no-color"], capsys)
    assert code == 1
    assert f"node 0 ({nodes['0']})" in out and f"node 1 ({nodes['1']})" in out
    assert f"node 2 ({nodes['2']}): not reachable through SSM" in " ".join(err.split())
    assert "the first node" not in out


def test_node_selection(cluster: Any) -> None:
    shell = answering(cluster, lambda iid, script: Answer(stdout=json.dumps(VERSION)))
    nodes = node_instances(cluster.state())
    outcome = run_query(cluster.ctx, cluster.state(), "SELECT 1", nodes=["2", "0", "2"])
    assert [a.node for a in outcome.answers] == ["0", "2"] and outcome.ok
    assert sorted(i for i, _ in shell.sent) == sorted([nodes["0"], nodes["2"]])
    every = run_query(cluster.ctx, cluster.state(), "SELECT 1", nodes=["all"])
    assert [a.node for a in every.answers] == ["0", "1", "2"] and not every.first_node_only
    with pytest.raises(ByocError, match="no node 7 in the state"):
        run_query(cluster.ctx, cluster.state(), "SELECT 1", nodes=["7"])
    with pytest.raises(ByocError, match="the query is empty"):
        run_query(cluster.ctx, cluster.state(), "  ")


def test_an_answer_too_big_for_ssm_says_add_a_limit(cluster: Any, capsys: Any) -> None:
    big = json.dumps({"meta": [{"name": "x", "type": "string"}], "data": [["y" * 100]] * 400})
    answering(cluster, lambda iid, script: Answer(stdout=big))
    code, _, err = cli(["query", "specs/dev.yaml", "SELECT x FROM big", "--no-color"], capsys)
    assert code == 1 and "add a LIMIT" in err


def test_a_statement_without_result_and_the_time_limit(cluster: Any, capsys: Any) -> None:
    shell = answering(cluster, lambda iid, script: Answer(stdout=""))
    code, out, _ = cli(["query", "specs/dev.yaml", "CREATE STREAM s (x int)", "--max-seconds", "5",
                        "--no-color"], capsys)
    assert code == 0 and "the statement returned nothing" in out
    # the query runs on the batch port, in table mode, and Proton itself stops it after the limit
    script = shell.sent[0][1]
    assert "http://127.0.0.1:8123/?" in script and "max_execution_time=5" in script
    assert "--max-time 5 " in script


def test_the_api_answers_the_same(cluster: Any, tmp_path: Path) -> None:
    answering(cluster, lambda iid, script: Answer(stdout=json.dumps(VERSION)))
    c = Cluster(cluster.spec, ctx=cluster.ctx, backend=cluster.backend)
    outcome = c.query("SELECT version()", nodes=["all"])
    assert outcome.ok and [a.result.rows[0][0] for a in outcome.answers if a.result] == ["1.6.16"] * 3
