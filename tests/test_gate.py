"""The call gate: at most ``parallelism`` AWS calls in flight, waiting calls served by rank, and an
apply whose operations wait (for AWS, for another's batched read) without holding a call's place."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from byoc.aws.gate import CallGate, ranked
from byoc.executor import OPERATIONS_PER_CALL, Executor
from byoc.model import Live
from byoc.planner import make_plan, rules_of
from byoc.state.model import State
from tests.fakecloud import FakeCloud, FakeKind, kinds, res


def test_calls_in_flight_never_exceed_the_limit() -> None:
    gate = CallGate(3)
    lock, now, most = threading.Lock(), [0], [0]

    def call() -> None:
        for _ in range(20):
            gate.acquire()
            with lock:
                now[0] += 1
                most[0] = max(most[0], now[0])
            time.sleep(0.001)
            with lock:
                now[0] -= 1
            gate.release()

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 3 and gate.peak == 3
    assert gate.in_flight == 0


def test_waiting_calls_go_by_rank_then_in_the_order_they_came() -> None:
    gate = CallGate(1)
    gate.acquire()  # the only permit, held here
    order: list[str] = []
    started: list[threading.Thread] = []

    def call(name: str, rank: float) -> None:
        with ranked(rank):
            gate.acquire()
        order.append(name)
        gate.release()

    for name, rank in (("late-a", 5.0), ("urgent", -9.0), ("late-b", 5.0), ("soon", 0.0)):
        t = threading.Thread(target=call, args=(name, rank))
        t.start()
        started.append(t)
        while len(gate._waiting) < len(started):  # each is queued before the next comes
            time.sleep(0.001)
    gate.release()
    for t in started:
        t.join(timeout=5)
    assert order == ["urgent", "soon", "late-a", "late-b"]
    assert gate.in_flight == 0 and gate.peak == 1


def test_an_attempt_whose_answer_never_came_keeps_its_one_permit() -> None:
    """botocore sends a retry without ``needs-retry`` when an attempt raised before its answer: the
    thread's permit is reused, not a second one taken (which would deadlock a gate of one)."""
    gate = CallGate(1)
    gate.acquire()
    gate.acquire()
    assert gate.in_flight == 1
    gate.release()
    gate.release()  # after-call after needs-retry: nothing more to give back
    assert gate.in_flight == 0
    gate.acquire()  # free again
    gate.release()


class GatedContext:
    """What the executor needs of a context that gates its calls: a ``gate`` it may set."""

    gate: CallGate | None = None


class WaitingKind(FakeKind):
    """A fake kind whose create waits (no call in flight) at a barrier, then makes one call
    through the context's gate, counting the calls in flight."""

    def __init__(self, kind: str, cloud: FakeCloud, barrier: threading.Barrier,
                 flying: list[int], wait: float) -> None:
        super().__init__(kind, cloud)
        self.barrier, self.flying, self.lock, self.wait = barrier, flying, threading.Lock(), wait

    def create(self, ctx: Any, address: str, props: Mapping[str, Any]) -> Live:
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=self.wait)
        ctx.gate.acquire()
        with self.lock:
            self.flying[0] += 1
            self.flying[1] = max(self.flying[1], self.flying[0])
        time.sleep(0.005)
        with self.lock:
            self.flying[0] -= 1
        ctx.gate.release()
        return super().create(ctx, address, props)


def _waiting_world(parties: int, parallelism: int,
                   wait: float = 10.0) -> tuple[Executor, Any, threading.Barrier, list[int]]:
    cloud = FakeCloud()
    barrier = threading.Barrier(parties)
    flying = [0, 0]
    all_kinds = {**kinds(cloud), "fake_vm": WaitingKind("fake_vm", cloud, barrier, flying, wait)}
    resources = [res(f'fake_vm.n["{i}"]', size="m5") for i in range(parties)]
    state = State.new("c1")
    plan = make_plan(resources, state, {}, rules_of(all_kinds), cluster="c1")
    ctx = GatedContext()
    ex = Executor(all_kinds, ctx, state, lambda s: None, parallelism=parallelism)
    return ex, plan, barrier, flying


def test_operations_that_wait_hold_no_call_place_and_calls_stay_bounded() -> None:
    """Six operations wait for one another at once under ``parallelism 2``: only possible when
    waiting holds no place; their calls never exceed two in flight."""
    ex, plan, barrier, flying = _waiting_world(6, parallelism=2)
    result = ex.run(plan)
    assert result.ok
    assert not barrier.broken  # all six were waiting at the same moment
    assert 1 <= flying[1] <= 2
    assert ex.workers == 2 * OPERATIONS_PER_CALL
    assert ex.ctx.gate is None  # the run's gate is gone with the run


def test_parallelism_one_runs_one_operation_at_a_time() -> None:
    ex, plan, barrier, flying = _waiting_world(2, parallelism=1, wait=0.5)  # the first waits in vain
    assert ex.run(plan).ok
    assert barrier.broken  # the second never came while the first waited
    assert flying[1] == 1 and ex.workers == 1


@pytest.mark.usefixtures("moto")
def test_an_apply_on_moto_passes_every_call_through_the_gate(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """specs/dev.yaml applied at ``parallelism 3``: every AWS call of the apply took a permit, no
    more than three were in flight, and the gate is gone afterwards."""
    from byoc.engine import Engine
    from byoc.spec import load_spec
    from byoc.state import LocalBackend
    from tests.daytwo import AMI, DEV, quiet_ctx

    gates: list[CallGate] = []
    taken = [0]

    class Counting(CallGate):
        def __init__(self, limit: int) -> None:
            super().__init__(limit)
            gates.append(self)

        def _taken(self) -> None:
            taken[0] += 1
            super()._taken()

    monkeypatch.setattr("byoc.executor.CallGate", Counting)
    spec = load_spec(str(DEV))
    ctx = quiet_ctx(spec)
    eng = Engine(spec, ctx=ctx, backend=LocalBackend(tmp_path, spec.cluster_name),
                 ami_resolver=lambda itype: AMI, parallelism=3)
    plan = eng.plan()
    before = sum(ctx.calls.counts.values())
    assert eng.apply(plan).ok
    assert len(gates) == 1 and gates[0].limit == 3
    assert taken[0] == sum(ctx.calls.counts.values()) - before > 50  # each attempt once
    assert 1 <= gates[0].peak <= 3 and gates[0].in_flight == 0
    assert ctx.gate is None


def test_state_writes_during_a_run_go_first_at_the_gate() -> None:
    """What a state write holds waits for it: a state store on the run's own clients (its calls
    through the same gate) is served before any operation's calls."""
    from byoc.aws.gate import RANK
    from byoc.model import Ref

    resources = [res("fake_net.main", cidr="10.0.0.0/16"),
                 res('fake_sub.s["a"]', net_id=Ref("fake_net.main"), cidr="10.0.1.0/24")]
    all_kinds, state = kinds(FakeCloud()), State.new("c1")
    plan = make_plan(resources, state, {}, rules_of(all_kinds), cluster="c1")
    ranks: list[float] = []
    ex = Executor(all_kinds, GatedContext(), state, lambda s: ranks.append(RANK.get()), parallelism=2)
    assert ex.run(plan).ok
    # the net's record, written before the subnet starts, by the run's writer: first at the gate
    assert ranks and ranks[0] == float("-inf")


class _Interrupted(threading.Event):
    """A waiting thread's event whose wait is interrupted (Ctrl-C in the main thread), after
    ``meanwhile`` has run."""

    def __init__(self, meanwhile: Any = None) -> None:
        super().__init__()
        self.meanwhile = meanwhile

    def wait(self, timeout: float | None = None) -> bool:
        if self.meanwhile is not None:
            self.meanwhile()
        raise KeyboardInterrupt


@pytest.mark.parametrize("handed_over", [False, True])
def test_an_interrupted_wait_keeps_no_permit_and_loses_none(handed_over: bool) -> None:
    gate = CallGate(1)
    release, released = threading.Event(), threading.Event()

    def holder() -> None:
        gate.acquire()
        release.wait(5)
        gate.release()
        released.set()

    t = threading.Thread(target=holder)
    t.start()
    while gate.in_flight == 0:
        time.sleep(0.001)

    def hand_over() -> None:  # the holder lets go while this thread waits: the permit comes here
        release.set()
        released.wait(5)

    gate._local.event = _Interrupted(hand_over if handed_over else None)
    with pytest.raises(KeyboardInterrupt):
        gate.acquire()
    assert not gate._waiting
    release.set()
    t.join(5)
    assert gate.in_flight == 0 and gate._free == 1  # the one permit is free again
    del gate._local.event
    gate.acquire()  # at once
    gate.release()
