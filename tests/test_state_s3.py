"""The S3 state backend on moto: conditional writes, the S3 and DynamoDB locks, migration, CLI."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.errors import LockError, StateError
from byoc.spec import load_spec_dict
from byoc.state import LocalBackend, LockInfo, ResourceState, State
from byoc.state.migrate import migrate_state
from byoc.state.s3 import S3Backend
from tests.motoserver import ROOT, MotoServer

BUCKET = "team-state"


def _bucket(client: Any, versioned: bool = True) -> None:
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    if versioned:
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def _table(client: Any) -> None:
    client.create_table(TableName="byoc-locks", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])


@pytest.fixture
def ctx(moto: None) -> AwsContext:
    c = AwsContext(cluster="ct1", region="us-west-2")
    _bucket(c.client("s3"))
    _table(c.client("dynamodb"))
    return c


def backend(ctx: AwsContext, table: str | None = None) -> S3Backend:
    return S3Backend(ctx.client, bucket=BUCKET, cluster="ct1", lock_table=table,
                     unlock_hint="byoc force-unlock specs/c1.yaml")


def _state(serial: int = 1, lineage: str = "L1") -> State:
    r = ResourceState("aws_vpc.main", "aws_vpc", "vpc-1", {"cidr_block": "10.0.0.0/16"})
    return State(cluster="ct1", lineage=lineage, serial=serial).with_resource(r)


def test_read_write_round_trip_with_versions(ctx: AwsContext) -> None:
    b = backend(ctx)
    assert b.read() is None
    b.write(_state(1))
    b.write(_state(2))
    assert b.read() == _state(2)
    assert backend(ctx).read() == _state(2)
    versions = ctx.client("s3").list_object_versions(Bucket=BUCKET, Prefix=b.key)["Versions"]
    assert len(versions) == 2
    assert b.describe() == "s3://team-state/byoc/ct1/state.json"


def test_write_refuses_lower_serial_and_other_lineage(ctx: AwsContext) -> None:
    backend(ctx).write(_state(5))
    late = backend(ctx)
    with pytest.raises(StateError, match="serial 5, newer than this run's 3"):
        late.write(_state(3))
    with pytest.raises(StateError, match="lineage L1, not L2"):
        backend(ctx).write(_state(9, lineage="L2"))
    assert backend(ctx).read() == _state(5)


def test_a_concurrent_write_is_detected_by_the_etag(ctx: AwsContext) -> None:
    a, b = backend(ctx), backend(ctx)
    a.write(_state(1))
    assert b.read() == _state(1)
    a.write(_state(4))
    with pytest.raises(StateError, match="is at serial 4 but this run read serial 1"):
        b.write(_state(2))  # b's ETag is stale: S3 answers 412, b re-reads and refuses
    with pytest.raises(StateError, match="is at serial 4 but this run read serial 1"):
        b.write(_state(6))  # still refused: b must read (plan) again, never write blindly
    assert b.read() == _state(4)
    b.write(_state(6))  # a later serial over what b has now read is fine
    assert a.read() == _state(6)


def test_an_equal_serial_written_meanwhile_is_never_overwritten(ctx: AwsContext) -> None:
    """Compare-and-swap: a `state rm` (serial 2) made meanwhile is not undone by another serial 2."""
    mine, theirs = backend(ctx), backend(ctx)
    mine.write(_state(1))
    base = theirs.read()
    assert base is not None
    removed = base.without("aws_vpc.main").bumped()
    theirs.write(removed)
    with pytest.raises(StateError, match=r"is at serial 2 but this run read serial 1.*Nothing was written"):
        mine.write(_state(2))
    assert backend(ctx).read() == removed
    with pytest.raises(StateError, match="the same as this run's 2"):
        backend(ctx).write(_state(2))  # a blind writer may not reuse the stored serial either


@pytest.mark.parametrize("table", [None, "byoc-locks"])
def test_lock_fails_fast_naming_the_holder_and_force_unlock_clears(
    ctx: AwsContext, table: str | None) -> None:
    a, b = backend(ctx, table), backend(ctx, table)
    with a.lock("apply") as info:
        with pytest.raises(LockError) as exc, b.lock("destroy"):
            pass
        msg = str(exc.value)
        assert f"pid {info.pid} on {info.host} (apply, since" in msg
        assert "byoc force-unlock specs/c1.yaml" in msg
        assert b.holder() == info
    assert b.holder() is None  # released on the way out
    with b.lock("apply"):
        pass
    # a lock left behind by a process that is gone stays until force-unlock
    assert b._acquire(LockInfo(2**22 + 7, info.host, "apply", "then"))
    with pytest.raises(LockError, match="no longer running on this host"), a.lock("apply"):
        pass
    gone = a.force_unlock()
    assert gone is not None and gone.pid == 2**22 + 7
    assert a.force_unlock() is None
    with a.lock("apply"):
        pass


def test_unversioned_or_missing_bucket_is_explained(moto: None) -> None:
    ctx = AwsContext(cluster="ct1", region="us-west-2")
    b = backend(ctx)
    with pytest.raises(StateError, match=r"does not exist.*put-bucket-versioning"), b.lock("apply"):
        pass
    _bucket(ctx.client("s3"), versioned=False)
    with pytest.raises(StateError, match="versioning off"), b.lock("apply"):
        pass


def _race(url: str, table: str | None, n: int, q: Any) -> None:
    import os

    os.environ["AWS_ENDPOINT_URL"] = url
    ctx = AwsContext(cluster="ct1", region="us-west-2")
    b = S3Backend(ctx.client, bucket=BUCKET, cluster="ct1", lock_table=table)
    won = 0
    for _ in range(n):
        try:
            with b.lock("apply"):
                state = b.read() or State(cluster="ct1", lineage="L1")
                b.write(state.bumped())
                won += 1
        except LockError:
            pass
        except StateError as exc:
            # moto's server does not make two conditional puts of the lock object atomic: when
            # both got the lock, the compare-and-swap refuses the second write (nothing lost)
            assert "someone changed it meanwhile" in str(exc), exc
    q.put(won)



@pytest.mark.parametrize("table", [None, "byoc-locks"])
def test_two_processes_racing_for_the_lock_never_lose_a_write(server: MotoServer, table: str | None) -> None:
    server.reset()
    _bucket(server.client("s3"))
    _table(server.client("dynamodb"))
    mp = multiprocessing.get_context("spawn")
    q = mp.Queue()
    procs = [mp.Process(target=_race, args=(server.url, table, 15, q)) for _ in range(2)]
    for p in procs:
        p.start()
    won = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sum(won) >= 1
    ctx_state = S3Backend(lambda s: server.client(s), bucket=BUCKET, cluster="ct1").read()
    assert ctx_state is not None and ctx_state.serial == sum(won)  # every locked write kept


def _spec(tmp_path: Path, **state: Any) -> Any:
    import yaml

    data = yaml.safe_load((ROOT / "specs/dev.yaml").read_text())
    data["cluster"]["name"] = "ct1"
    data["state"] = {"path": str(tmp_path / "st"), **state}
    return load_spec_dict(data, source="specs/c1.yaml")


def test_migrate_local_to_s3_and_back_keeps_the_serial(ctx: AwsContext, tmp_path: Path) -> None:
    from byoc.engine import backend_for

    spec = _spec(tmp_path, backend="s3", bucket=BUCKET)
    s3 = backend_for(spec)
    assert isinstance(s3, S3Backend) and s3.unlock_hint == "byoc force-unlock specs/c1.yaml"
    local = backend_for(spec, kind="local")
    assert isinstance(local, LocalBackend)
    local.write(_state(7))
    assert migrate_state(local, s3) == (_state(7), True)
    assert migrate_state(local, s3) == (_state(7), False)  # nothing to do the second time
    s3.write(_state(9))
    with pytest.raises(StateError, match=r"newer state \(serial 9 > 7"):
        migrate_state(local, s3)
    assert migrate_state(s3, local) == (_state(9), True)
    assert local.read() == _state(9)
    other = LocalBackend(tmp_path / "other", "ct1")
    other.write(_state(1, lineage="L2"))
    with pytest.raises(StateError, match="another lineage"):
        migrate_state(s3, other)
    with pytest.raises(StateError, match="no state to migrate"):
        migrate_state(LocalBackend(tmp_path / "empty", "ct1"), s3)


def test_state_migrate_cli(server: MotoServer, tmp_path: Path) -> None:
    import yaml

    server.reset()
    _bucket(server.client("s3"))
    data = yaml.safe_load((ROOT / "specs/dev.yaml").read_text())
    data["state"] = {"backend": "s3", "bucket": BUCKET}
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs/dev.yaml").write_text(yaml.safe_dump(data))
    LocalBackend(tmp_path / "state", "dev-proton").write(
        State(cluster="dev-proton", lineage="L1", serial=3))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "byoc", *args], env=server.env(), cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    p = run("state", "migrate", "specs/dev.yaml", "--to", "s3")
    assert p.returncode == 0, p.stderr
    assert "Copied the state (serial 3, lineage L1, 0 resources)" in p.stdout
    p = run("show", "specs/dev.yaml", "--json")
    assert p.returncode == 0 and '"serial": 3' in p.stdout
    held = b'{"pid": 1, "host": "elsewhere", "operation": "apply", "since": "x"}'
    server.client("s3").put_object(Bucket=BUCKET, Key="byoc/dev-proton/state.json.lock", Body=held)
    p = run("apply", "specs/dev.yaml", "--auto-approve")
    assert p.returncode == 1 and "locked by pid 1 on elsewhere" in p.stderr
    assert "byoc force-unlock specs/dev.yaml" in p.stderr and "Traceback" not in p.stderr
    p = run("force-unlock", "specs/dev.yaml")
    assert p.returncode == 0 and "Removed the lock held by pid 1 on elsewhere" in p.stdout
    p = run("state", "migrate", "specs/dev.yaml", "--to", "sideways")
    assert p.returncode == 1 and "--to must be s3 or local" in p.stderr


WRITER = """
import sys
from byoc.errors import StateError
from byoc.aws.context import AwsContext
from byoc.state import LocalBackend
from byoc.state.s3 import S3Backend
if sys.argv[1] == "s3":
    ctx = AwsContext(cluster="ct1", region="us-west-2")
    b = S3Backend(ctx.client, bucket=sys.argv[2], cluster="ct1")
else:
    b = LocalBackend(sys.argv[2], "ct1")
with b.lock("apply"):
    state = b.read()
    print("read", state.serial, flush=True)
    sys.stdin.readline()  # meanwhile: a forced unlock and a `state rm`
    try:
        b.write(state.with_outputs({"x": "1"}).bumped())
    except StateError as exc:
        print("refused:", exc, flush=True)
    else:
        print("written", flush=True)
"""


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_forced_unlock_and_a_state_rm_meanwhile_are_never_lost(
    kind: str, server: MotoServer, tmp_path: Path
) -> None:
    """Two processes: a run holds the lock and has read serial 1; someone force-unlocks and does a
    `state rm` (serial 2); the first run's next write (also serial 2) stops naming both serials,
    and the removal stays."""
    server.reset()
    _bucket(server.client("s3"))
    if kind == "s3":
        mine = S3Backend(lambda s: server.client(s), bucket=BUCKET, cluster="ct1")
        where = BUCKET
    else:
        mine = LocalBackend(tmp_path, "ct1")
        where = str(tmp_path)
    mine.write(_state(1))
    p = subprocess.Popen([sys.executable, "-c", WRITER, kind, where], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         env={**server.env(), "PYTHONPATH": str(ROOT)})
    assert p.stdout is not None and p.stdin is not None
    assert p.stdout.readline().split() == ["read", "1"]
    other = S3Backend(lambda s: server.client(s), bucket=BUCKET, cluster="ct1") if kind == "s3" \
        else LocalBackend(tmp_path, "ct1")
    assert other.force_unlock() is not None
    with other.lock("state rm"):
        state = other.read()
        assert state is not None
        removed = state.without("aws_vpc.main").bumped()
        other.write(removed)
    out, err = p.communicate("go\n", timeout=60)
    assert p.returncode == 0, err
    assert out.startswith("refused:"), out
    assert "is at serial 2 but this run read serial 1" in out and "Nothing was written" in out
    assert other.read() == removed


@pytest.mark.parametrize("table", [None, "byoc-locks"])
def test_lock_timeout_polls_until_the_holder_releases(
    ctx: AwsContext, table: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import byoc.state.s3 as s3

    a, b = backend(ctx, table), backend(ctx, table)
    polls: list[float] = []
    with a.lock("apply") as info:
        monkeypatch.setattr(s3, "LOCK_POLL", 0.01)
        with pytest.raises(LockError, match=f"pid {info.pid}"), b.lock("destroy", timeout=0.05):
            pass
        held = a._held

        def poll(seconds: float) -> None:  # the holder finishes while we wait
            polls.append(seconds)
            if held is not None and a.holder() == held:
                a._release(held)

        monkeypatch.setattr(s3.time, "sleep", poll)
        with b.lock("destroy", timeout=60) as mine:
            assert b.holder() == mine
    assert polls and b.holder() is None


@pytest.mark.parametrize("table", [None, "byoc-locks"])
def test_an_interrupted_apply_releases_the_s3_or_dynamodb_lock(
    server: MotoServer, tmp_path: Path, table: str | None
) -> None:
    """SIGTERM in the middle of an apply with the state in S3: in-flight work is recorded in the
    state object, and the lock (S3 object or DynamoDB item) is gone when byoc exits 1."""
    import json
    import signal

    import yaml

    from tests.killcli import run_until, untracked

    server.reset()
    _bucket(server.client("s3"))
    if table:
        _table(server.client("dynamodb"))
    data = yaml.safe_load((ROOT / "specs/dev.yaml").read_text())
    data["state"] = {"backend": "s3", "bucket": BUCKET, **({"lock": "dynamodb", "dynamodb_table": table}
                                                          if table else {})}
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs/dev.yaml").write_text(yaml.safe_dump(data))
    code, _, err = run_until(["apply", "specs/dev.yaml", "--auto-approve"], server.env(), tmp_path, 50,
                             signal.SIGTERM)
    assert code == 1 and "Interrupted: work in flight finished and the state was saved." in err, err[-3000:]
    s3 = server.client("s3")
    state = json.loads(s3.get_object(Bucket=BUCKET, Key="byoc/dev-proton/state.json")["Body"].read())
    assert untracked(server, "dev-proton", state) == set()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "byoc/dev-proton/state.json.lock" not in keys
    if table:
        assert server.client("dynamodb").scan(TableName=table)["Items"] == []


def test_a_fleets_state_store_calls_through_the_fleets_clients_and_gate(ctx: AwsContext,
                                                                        tmp_path: Path) -> None:
    """In a fleet (byoc.fleet), a cluster's S3 state is read through a view of the fleet's shared S3
    client, and its calls take their place at the fleet's gate like the cluster's own."""
    from byoc.aws.clients import ClientMaker
    from byoc.aws.gate import CallGate
    from byoc.engine import backend_for

    maker, gate = ClientMaker(), CallGate(1)
    spec = _spec(tmp_path, backend="s3", bucket=BUCKET)
    store = backend_for(spec, client_maker=maker, gate=gate)
    assert isinstance(store, S3Backend)
    store.write(_state(3))
    assert store.read() == _state(3)
    assert gate.peak == 1 and gate.in_flight == 0
    assert len(maker._shared) == 1  # one S3 client, shared: none made for the store alone
