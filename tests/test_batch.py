"""``Batcher``: callers asking at the same moment share one call, never an answer read before they
asked; a missing id or an id's own error touches no other caller."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from byoc.resources._batch import Batcher


class Gate:
    """A batch call that records its ids and holds its first ``hold`` calls until released."""

    def __init__(self, known: set[str] | None = None, errors: dict[str, Exception] | None = None,
                 hold: int = 1) -> None:
        self.hold = hold  # how many calls are held
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.known = known
        self.errors = errors or {}

    def __call__(self, ids: list[str]) -> dict[str, Any]:
        self.batches.append(sorted(ids))
        if len(self.batches) <= self.hold:
            assert self.release.wait(10)
        number = len(self.batches)
        out: dict[str, Any] = {}
        for i in ids:
            if i in self.errors:
                out[i] = self.errors[i]
            elif self.known is None or i in self.known:
                out[i] = f"{i}@{number}"
        return out


def until(condition: Any) -> None:
    """Wait for a thread to reach a state (a synchronisation point, not a timing assertion)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def ask_all(batcher: Batcher[str, Any], ids: list[str]) -> tuple[dict[str, Any], list[threading.Thread]]:
    answers: dict[str, Any] = {}

    def ask(i: str) -> None:
        try:
            answers[i] = batcher.get(i)
        except Exception as exc:
            answers[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    return answers, threads


def test_callers_arriving_during_a_call_share_the_next_one() -> None:
    call = Gate()
    batcher: Batcher[str, Any] = Batcher(call, size=200, few=0)
    first, t1 = ask_all(batcher, ["a"])
    until(lambda: len(call.batches) == 1)
    rest, t2 = ask_all(batcher, ["b", "c", "d", "e", "b"])
    until(lambda: len(batcher._pending) == 5)
    assert len(call.batches) == 1  # nobody else called while the first call was in flight
    call.release.set()
    for t in t1 + t2:
        t.join(10)
    assert call.batches == [["a"], ["b", "c", "d", "e"]]
    # each answer comes from a call sent after the caller asked
    assert first == {"a": "a@1"} and rest == {i: f"{i}@2" for i in "bcde"}
    assert (batcher.batches, batcher.asked) == (2, 5)


def test_a_missing_id_fails_nobody_and_is_found_by_a_later_call() -> None:
    call = Gate(known={"a"})
    call.release.set()
    batcher: Batcher[str, Any] = Batcher(call, size=200)
    assert batcher.get_many(["a", "b"]) == {"a": "a@1"}
    assert batcher.get("b") is None
    call.known = {"a", "b"}  # b has become visible
    assert batcher.get("b") == "b@3"


def test_an_ids_own_error_is_raised_for_that_id_only() -> None:
    call = Gate(errors={"bad": ValueError("bad alone")})
    batcher: Batcher[str, Any] = Batcher(call, size=200, few=0)
    _, t1 = ask_all(batcher, ["x"])
    until(lambda: len(call.batches) == 1)
    rest, t2 = ask_all(batcher, ["good", "bad"])
    until(lambda: len(batcher._pending) == 2)
    call.release.set()
    for t in t1 + t2:
        t.join(10)
    assert call.batches[1] == ["bad", "good"]  # asked together
    assert rest["good"] == "good@2"
    assert isinstance(rest["bad"], ValueError) and str(rest["bad"]) == "bad alone"


def test_a_failed_call_fails_its_batch_and_the_next_call_is_made_afresh() -> None:
    answers = iter([RuntimeError("throttled"), None])

    def call(ids: list[str]) -> dict[str, str]:
        error = next(answers)
        if error is not None:
            raise error
        return {i: i.upper() for i in ids}

    batcher: Batcher[str, str] = Batcher(call, size=200)
    with pytest.raises(RuntimeError, match="throttled"):
        batcher.get_many(["a", "b"])
    assert batcher.get_many(["a", "b"]) == {"a": "A", "b": "B"}


def test_more_ids_than_a_call_takes_are_split() -> None:
    sent: list[list[str]] = []

    def call(ids: list[str]) -> dict[str, str]:
        sent.append(list(ids))
        return {i: i for i in ids}

    batcher: Batcher[str, str] = Batcher(call, size=2)
    assert batcher.get_many(["a", "b", "c", "d", "e"]) == {i: i for i in "abcde"}
    assert sent == [["a", "b"], ["c", "d"], ["e"]]
    assert batcher.get_many([]) == {} and len(sent) == 3


def test_a_few_callers_each_call_at_once() -> None:
    """A small cluster's waits are not held back: up to ``few`` callers waiting, nobody waits for
    another's call; past that, they share."""
    call = Gate(hold=3)
    batcher: Batcher[str, Any] = Batcher(call, size=200, few=3)
    _, t1 = ask_all(batcher, ["a"])
    until(lambda: len(call.batches) == 1)
    for i, key in enumerate("bc", start=2):  # each calls while the first is held
        _, more = ask_all(batcher, [key])
        t1 += more
        until(lambda i=i: len(call.batches) == i)  # type: ignore[misc]
    rest, t2 = ask_all(batcher, ["d", "e"])  # a crowd now: these wait to go together
    until(lambda: len(batcher._pending) == 2)
    call.release.set()
    for t in t1 + t2:
        t.join(10)
    assert call.batches[:3] == [["a"], ["b"], ["c"]] and call.batches[3:] == [["d", "e"]]
    assert rest == {"d": "d@4", "e": "e@4"}


def test_a_kinds_looks_at_one_moment_share_one_discovery_each_answered_its_own(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ResourceType.find`` (kinds without a look of their own): a discovery per moment, not per
    look, and none read before the look asked."""
    from byoc.aws.context import AwsContext
    from byoc.model import Live
    from byoc.resources import _batch
    from byoc.resources.base import ResourceType

    monkeypatch.setattr(_batch, "FEW", 0)
    gate = threading.Event()
    existing = {"t.a": "a-1", "t.c": "c-1"}

    class Kind(ResourceType):
        kind, service = "t", "t"
        discoveries = 0

        def discover(self, ctx: AwsContext) -> list[Live]:
            Kind.discoveries += 1
            if Kind.discoveries == 1:
                assert gate.wait(10)
            return [Live(a, "t", i, {}) for a, i in sorted(existing.items())]

        def create(self, ctx: AwsContext, address: str, props: Any) -> Live:
            raise NotImplementedError

        def delete(self, ctx: AwsContext, live: Live) -> None:
            raise NotImplementedError

    kind, ctx = Kind(), AwsContext(cluster="test", region="us-west-2")
    answers: dict[str, Any] = {}
    first = threading.Thread(target=lambda: answers.update({"t.a": kind.find(ctx, "t.a")}))
    first.start()
    until(lambda: Kind.discoveries == 1)
    existing["t.b"] = "b-1"  # made while the first discovery is under way: the later looks see it
    rest = [threading.Thread(target=lambda a=a: answers.update({a: kind.find(ctx, a)}))
            for a in ("t.b", "t.c", "t.d")]
    for t in rest:
        t.start()
    until(lambda: len(_batch.batcher(ctx, "find:t", lambda: None)._pending) == 3)  # type: ignore[arg-type,return-value]
    gate.set()
    for t in (first, *rest):
        t.join(10)
    assert {a: (live.id if live else None) for a, live in answers.items()} == {
        "t.a": "a-1", "t.b": "b-1", "t.c": "c-1", "t.d": None}
    assert Kind.discoveries == 2
