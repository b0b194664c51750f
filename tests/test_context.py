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
