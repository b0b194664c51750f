"""AwsContext's shared reads and side-by-side calls: once per context, once per discovery pass."""

from __future__ import annotations

import threading
import time

import pytest

from byoc.aws.context import AwsContext


def ctx() -> AwsContext:
    return AwsContext(cluster="test", region="us-west-2", client_factory=lambda service: None)


def test_once_shares_one_fetch_between_threads_and_retries_a_failure() -> None:
    c, calls = ctx(), []

    def fetch() -> str:
        calls.append(1)
        time.sleep(0.05)  # the other threads arrive while this one fetches
        if len(calls) == 1:
            raise RuntimeError("throttled")
        return "123456789012"

    with pytest.raises(RuntimeError):
        c.once("sts", "account", fetch)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(c.once("sts", "account", fetch)))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["123456789012"] * 5 and len(calls) == 2


def test_memo_shares_within_a_pass_only() -> None:
    c, calls = ctx(), []

    def fetch() -> int:
        calls.append(1)
        return len(calls)

    assert [c.memo("ec2", "k", fetch), c.memo("ec2", "k", fetch)] == [1, 2]  # outside a pass
    with c.discovery_pass():
        assert [c.memo("ec2", "k", fetch), c.memo("ec2", "k", fetch)] == [3, 3]
    with c.discovery_pass():
        assert c.memo("ec2", "k", fetch) == 4  # a new pass reads afresh


def test_together_runs_side_by_side_keeps_order_and_raises_the_first_failure() -> None:
    c = ctx()
    meet = threading.Barrier(3, timeout=10)  # passes only when all three are under way at once

    def call(n: int) -> int:
        meet.wait()
        return n

    assert c.together(lambda: call(1), lambda: call(2), lambda: call(3)) == [1, 2, 3]

    def fail(message: str) -> None:
        raise ValueError(message)

    with pytest.raises(ValueError, match="first"):
        c.together(lambda: 0, lambda: fail("first"), lambda: fail("second"))


def test_together_reuses_its_threads_waits_for_all_and_keeps_the_callers_context_vars() -> None:
    import contextvars

    c, var = ctx(), contextvars.ContextVar("who", default="nobody")
    var.set("caller")
    seen: list[tuple[int, str]] = []

    def call() -> str:
        time.sleep(0.02)  # the others start meanwhile
        seen.append((threading.get_ident(), var.get()))
        var.set("changed")  # in a copy: the caller's is kept
        return "ok"

    assert c.together(call, call, call) == ["ok"] * 3
    first = {ident for ident, _ in seen}
    seen.clear()
    assert c.together(call, call, call) == ["ok"] * 3
    assert {ident for ident, _ in seen} == first and len(first) == 3  # the same threads, none new
    assert {who for _, who in seen} == {"caller"} and var.get() == "caller"

    done: list[int] = []

    def slow() -> None:
        time.sleep(0.1)
        done.append(1)

    def fail() -> None:
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):  # the caller's own call failed: the rest finish first
        c.together(fail, slow, slow)
    assert done == [1, 1]


# -- the SDK's data files: one loader per process, a disk cache between runs ----------------------

def _data_file(tmp_path):  # type: ignore[no-untyped-def]
    from collections import OrderedDict

    src = tmp_path / "data" / "svc" / "2020-01-01"
    src.mkdir(parents=True)
    (src / "service-2.json").write_text('{"b": {"y": 1, "x": [2, 3]}, "a": "z"}')
    return str(src / "service-2"), OrderedDict([("b", OrderedDict([("y", 1), ("x", [2, 3])])), ("a", "z")])


def test_sdk_data_files_are_parsed_once_then_read_from_the_cache(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from byoc.aws.models import CachingFileLoader

    path, expected = _data_file(tmp_path)
    cache = tmp_path / "cache"
    first = CachingFileLoader(cache)
    data = first.load_file(path)
    assert data == expected and list(data) == ["b", "a"] and type(data["b"]) is type(expected["b"])
    [entry] = list(cache.iterdir())
    assert oct(cache.stat().st_mode & 0o777) == "0o700"

    parsed: list[str] = []
    second = CachingFileLoader(cache)
    monkeypatch.setattr(second, "_load_file", lambda *a: parsed.append(a[0]))  # would parse afresh
    again = second.load_file(path)
    assert again == expected and type(again) is type(expected) and parsed == []
    assert list(cache.iterdir()) == [entry]


def test_a_stale_a_corrupt_or_a_foreign_cache_entry_is_never_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from byoc.aws.models import CachingFileLoader

    path, _ = _data_file(tmp_path)
    cache = tmp_path / "cache"
    CachingFileLoader(cache).load_file(path)
    # the data file changes (a botocore upgrade in place): its size and mtime make a new key
    with open(path + ".json", "w") as f:
        f.write('{"a": "new"}')
    assert CachingFileLoader(cache).load_file(path) == {"a": "new"}
    # a truncated entry is parsed around (and replaced)
    for entry in cache.iterdir():
        entry.write_bytes(entry.read_bytes()[:10])
    assert CachingFileLoader(cache).load_file(path) == {"a": "new"}
    # an entry under the right name holding another key is not believed
    import pickle

    for entry in cache.iterdir():
        entry.write_bytes(pickle.dumps(("another key", {"a": "forged"})))
    assert CachingFileLoader(cache).load_file(path) == {"a": "new"}
    # a directory others may write in is not read at all
    for entry in cache.iterdir():
        entry.write_bytes(pickle.dumps((CachingFileLoader._key(path + ".json", os.stat(path + ".json")),
                                        {"a": "planted"})))
    assert CachingFileLoader(cache).load_file(path) == {"a": "planted"}  # (the entry itself is read)
    cache.chmod(0o777)
    assert CachingFileLoader(cache).load_file(path) == {"a": "new"}
    assert CachingFileLoader(None).load_file(path) == {"a": "new"}  # the cache turned off


def test_the_cache_lives_in_the_users_cache_dir_and_can_be_turned_off(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from byoc.aws.models import cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("BYOC_NO_CACHE", raising=False)
    assert cache_dir() == tmp_path / "byoc" / "sdk-models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "byoc" / "sdk-models"
    monkeypatch.setenv("BYOC_NO_CACHE", "1")
    assert cache_dir() is None


def test_clients_of_every_context_share_one_loader_and_answer_as_botocores(  # type: ignore[no-untyped-def]
    moto, monkeypatch, tmp_path
) -> None:
    import botocore.session

    from byoc.aws import models

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(models, "_LOADERS", {})
    a, b = (AwsContext(cluster="test", region="us-west-2") for _ in range(2))
    ec2_a, ec2_b = a.client("ec2"), b.client("ec2")
    assert a.client("ec2") is ec2_a and ec2_a is not ec2_b
    loader = a._session.get_component("data_loader")
    assert loader is b._session.get_component("data_loader")
    model_a, model_b = ec2_a.meta.service_model, ec2_b.meta.service_model
    assert model_a._service_description is model_b._service_description  # parsed once in this process
    plain = botocore.session.Session().get_service_model("ec2")
    assert ec2_a.meta.service_model.operation_names == plain.operation_names
    assert loader.list_available_services("service-2") == \
        botocore.session.Session().get_available_services()
    assert ec2_a.meta.region_name == "us-west-2" and a.client_seconds > 0
    assert any((tmp_path / "byoc" / "sdk-models").iterdir())
    vpc = ec2_a.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    assert [v["VpcId"] for v in ec2_b.describe_vpcs(VpcIds=[vpc])["Vpcs"]] == [vpc]


@pytest.mark.parametrize("value", [
    "2026-12-02T09:00:00.000Z", "2026-12-02T09:00:00Z", "2026-12-02T09:00:00.5Z",
    "2026-12-02T23:59:59.123456Z", "2026-12-02T09:00:00+00:00", "2026-12-02T09:00:00.250+00:00",
    "2026-12-02T09:00:00+02:00",
    "Wed, 02 Dec 2026 09:00:00 GMT", "1764666000", 1764666000, 1764666000.5, "2026-12-02",
])
def test_the_fast_timestamp_parser_answers_as_botocores(value: object) -> None:
    """The same datetime, time zone object's type included, as botocore's own parser, for AWS's
    usual UTC times (read fast after the first of each suffix) and for everything else."""
    from botocore.utils import parse_timestamp

    from byoc.aws.calls import TimestampParser

    parse = TimestampParser()
    expected = parse_timestamp(value)
    for _ in range(3):  # the first of a suffix goes to botocore's parser, the next ones do not
        got = parse(value)
        assert got == expected and type(got.tzinfo) is type(expected.tzinfo)
        assert got.utcoffset() == expected.utcoffset() and got.isoformat() == expected.isoformat()


def test_clients_read_times_in_answers_as_datetimes(ctx) -> None:  # type: ignore[no-untyped-def]
    import datetime

    ec2 = ctx.client("ec2")
    volume = ec2.create_volume(AvailabilityZone="us-west-2a", Size=10)
    [again] = ec2.describe_volumes(VolumeIds=[volume["VolumeId"]])["Volumes"]
    assert isinstance(again["CreateTime"], datetime.datetime) and again["CreateTime"].tzinfo is not None
    assert again["CreateTime"] == volume["CreateTime"]
