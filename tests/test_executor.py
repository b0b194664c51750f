"""The executor against the in-memory fake cloud: ordering, parallelism, failure isolation, state."""

from __future__ import annotations

import threading
import time
from typing import Any

from byoc.executor import Executor, operation_graph
from byoc.model import Ref
from byoc.plan import Plan
from byoc.planner import PlanOptions, make_plan, rules_of
from byoc.state.model import State
from tests.fakecloud import FakeCloud, kinds, res


def world() -> list[Any]:
    """A net, two subnets, two VMs per subnet, and an independent disk."""
    out = [res("fake_net.main", cidr="10.0.0.0/16")]
    for az in ("a", "b"):
        out.append(res(f'fake_sub.s["{az}"]', net_id=Ref("fake_net.main"), cidr=f"10.0.{ord(az)}.0/24"))
        for i in (1, 2):
            out.append(res(f'fake_vm.n["{az}{i}"]', sub_id=Ref(f'fake_sub.s["{az}"]'), size="m5"))
    out.append(res("fake_disk.data", size=10))
    return out


class Harness:
    def __init__(self) -> None:
        self.cloud = FakeCloud()
        self.kinds = kinds(self.cloud)
        self.saves: list[State] = []
        self.state = State.new("c1")
        self.events: list[Any] = []
        self.on_save: Any = lambda s: None

    def plan(self, resources: list[Any], **kw: Any) -> Plan:
        live = {}
        for kind in self.kinds.values():
            for x in kind.discover(None):
                live[x.address] = x
        return make_plan(resources, self.state, live, rules_of(self.kinds), cluster="c1", **kw)

    def apply(self, p: Plan, parallelism: int = 10) -> Any:
        def save(s: State) -> None:
            self.saves.append(s)
            self.on_save(s)

        ex = Executor(self.kinds, None, self.state, save, parallelism=parallelism,
                      on_event=self.events.append)
        result = ex.run(p)
        self.state = result.state
        return result


def test_creates_follow_dependencies_and_state_is_saved_before_dependents_start() -> None:
    """Each resource is in a state write before anything that depends on it is created
    (operations that finish together share one write)."""
    h = Harness()
    h.on_save = lambda s: h.cloud.calls.append(("save", "\n".join(s.resources)))  # into the call log
    plan = h.plan(world())
    result = h.apply(plan)
    assert result.ok
    order = h.cloud.order("create")
    assert order.index("fake_net.main") < order.index('fake_sub.s["a"]') < order.index('fake_vm.n["a1"]')
    assert order.index('fake_sub.s["b"]') < order.index('fake_vm.n["b2"]')
    saved: set[str] = set()
    for verb, value in list(h.cloud.calls):
        if verb == "save":
            saved |= set(value.split("\n"))
        elif verb == "create":
            deps = set(plan.change(value).depends_on)
            assert deps <= saved, f"{value} was created before {deps - saved} was saved"
    assert set(h.state.resources) == set(order) and len(order) == 8
    assert [s.serial for s in h.saves] == sorted({s.serial for s in h.saves})  # one write per serial
    assert [s.serial for s in h.saves] == list(range(1, len(h.saves) + 1))
    assert len(h.saves[0].resources) == 1 and len(h.saves[-1].resources) == 8
    # references were resolved to the real ids at apply time
    vm = h.state.resources['fake_vm.n["a1"]']
    assert vm.props["sub_id"] == h.state.resources['fake_sub.s["a"]'].id
    # a second plan is empty
    assert not h.plan(world()).has_changes


def test_with_slow_state_writes_nothing_starts_before_a_finished_write_holds_what_it_needs() -> None:
    """State writes run on their own thread, one at a time, and what finishes meanwhile goes into
    the next one: with writes that take a while, a create starts only after a write that holds
    everything it depends on has finished (not merely begun), and the serials stay consecutive."""
    h = Harness()
    finished_writes: list[tuple[float, set[str]]] = []
    starts: dict[str, float] = {}

    def slow_save(s: State) -> None:
        time.sleep(0.05)
        finished_writes.append((time.monotonic(), set(s.resources)))

    for name in ("fake_net", "fake_sub", "fake_vm", "fake_disk"):
        kind = h.kinds[name]
        real = kind.create

        def create(ctx: Any, address: str, props: Any, real: Any = real) -> Any:
            starts[address] = time.monotonic()
            return real(ctx, address, props)

        kind.create = create  # type: ignore[method-assign]
    h.on_save = slow_save
    plan = h.plan(world())
    result = h.apply(plan)
    assert result.ok and len(starts) == 8
    for address, began in starts.items():
        needed = set(plan.change(address).depends_on)
        durable = set().union(*(saved for at, saved in finished_writes if at <= began))
        assert needed <= durable, f"{address} started before {needed - durable} was written"
    assert [s.serial for s in h.saves] == list(range(1, len(h.saves) + 1))
    assert set(h.saves[-1].resources) == set(starts) and len(h.saves) < 8  # grouped, not one each


def test_an_error_in_the_loop_still_saves_what_was_recorded() -> None:
    """Something in the executor's own loop fails (here the progress display, on the net's "done"):
    the run stops with that error, and the net it had recorded is in the state written."""
    h = Harness()

    def events(e: Any) -> None:
        if e.kind == "done" and e.address == "fake_net.main":
            raise RuntimeError("the terminal went away")

    ex = Executor(h.kinds, None, h.state, h.saves.append, on_event=events)
    try:
        ex.run(h.plan(world()))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the error was swallowed")
    assert h.saves and "fake_net.main" in h.saves[-1].resources


def test_independent_work_runs_in_parallel_and_is_bounded() -> None:
    h = Harness()
    h.cloud.barrier = threading.Barrier(2)
    h.apply(h.plan(world()), parallelism=2)
    assert h.cloud.max_active == 2
    h2 = Harness()
    h2.apply(h2.plan(world()), parallelism=1)
    assert h2.cloud.max_active == 1


def test_a_failure_skips_only_its_dependents_and_reports_the_root_cause_once() -> None:
    h = Harness()
    h.cloud.fail[("create", 'fake_sub.s["a"]')] = "InvalidSubnet.Conflict"
    result = h.apply(h.plan(world()))
    assert not result.ok
    failures = [(f.address, f.error.code) for f in result.failures]
    assert failures == [('fake_sub.s["a"]', "InvalidSubnet.Conflict")]
    assert result.skipped == {'fake_vm.n["a1"]': 'fake_sub.s["a"]', 'fake_vm.n["a2"]': 'fake_sub.s["a"]'}
    # the other branch completed and is in the saved state
    assert {'fake_vm.n["b1"]', 'fake_vm.n["b2"]', "fake_disk.data"} <= set(h.saves[-1].resources)
    assert [e.address for e in h.events if e.kind == "failed"] == ['fake_sub.s["a"]']
    # re-running continues where it stopped
    h.cloud.fail.clear()
    again = h.plan(world())
    assert {c.address for c in again.actionable} == {'fake_sub.s["a"]', 'fake_vm.n["a1"]', 'fake_vm.n["a2"]'}
    assert h.apply(again).ok
    assert not h.plan(world()).has_changes


def test_destroy_deletes_in_reverse_dependency_order() -> None:
    h = Harness()
    h.apply(h.plan(world()))
    h.cloud.calls.clear()
    result = h.apply(h.plan(world(), options=PlanOptions(destroy=True, allow_data_loss=True)))
    assert result.ok
    order = h.cloud.order("delete")
    assert order.index('fake_vm.n["a1"]') < order.index('fake_sub.s["a"]') < order.index("fake_net.main")
    assert order.index('fake_vm.n["b2"]') < order.index('fake_sub.s["b"]')
    assert h.cloud.items == {} and not h.state.resources


def test_replacement_deletes_dependents_first_then_recreates_in_order() -> None:
    h = Harness()
    h.apply(h.plan(world()))
    h.cloud.calls.clear()
    new_net = res("fake_net.main", cidr="10.9.0.0/16")
    changed = [r if r.address != "fake_net.main" else new_net for r in world()]
    p = h.plan(changed)
    assert h.apply(p).ok
    calls = h.cloud.calls
    assert calls.index(("delete", 'fake_vm.n["a1"]')) < calls.index(("delete", 'fake_sub.s["a"]'))
    assert calls.index(("delete", 'fake_sub.s["a"]')) < calls.index(("delete", "fake_net.main"))
    assert calls.index(("delete", "fake_net.main")) < calls.index(("create", "fake_net.main"))
    assert calls.index(("create", "fake_net.main")) < calls.index(("create", 'fake_sub.s["a"]'))
    assert not h.plan(changed).has_changes


def test_operation_graph_is_acyclic_for_update_of_a_dependent_of_a_replaced_node() -> None:
    # a VM whose subnet is replaced but whose own change is in place must not form a cycle:
    # subnet delete → subnet create → VM update, with no edge from the VM update back to the delete
    from byoc.executor import APPLY, REMOVE
    from byoc.planner import KindRules

    h = Harness()
    h.apply(h.plan(world()))
    live = {x.address: x for k in h.kinds.values() for x in k.discover(None)}
    rules = {**rules_of(h.kinds), "fake_vm": KindRules()}  # the VM's subnet can change in place
    changed = [r if not r.address.startswith("fake_sub") else
               res(r.address, net_id=Ref("fake_net.main"), cidr="10.1.1.0/24") for r in world()]
    p = make_plan(changed, h.state, live, rules, cluster="c1")
    actions = {c.address: c.action for c in p.changes}
    assert actions['fake_sub.s["a"]'] == "replace" and actions['fake_vm.n["a1"]'] == "update"
    g = operation_graph(p)
    sub, vm = 'fake_sub.s["a"]', 'fake_vm.n["a1"]'
    assert g.has_edge((sub, REMOVE), (sub, APPLY)) and g.has_edge((sub, APPLY), (vm, APPLY))
    assert not g.has_edge((vm, APPLY), (sub, REMOVE))


def test_interrupted_by_failure_in_delete_keeps_the_resource_in_state() -> None:
    h = Harness()
    h.apply(h.plan(world()))
    h.cloud.fail[("delete", 'fake_sub.s["a"]')] = "DependencyViolation"
    result = h.apply(h.plan(world(), options=PlanOptions(destroy=True)))
    assert not result.ok
    assert 'fake_sub.s["a"]' in h.state.resources
    assert "fake_net.main" in h.state.resources  # skipped: its dependent could not be deleted
    assert "fake_disk.data" in h.state.resources  # protected without the flag
    assert 'fake_vm.n["a1"]' not in h.state.resources


def test_a_full_pool_starts_the_longest_chain_first() -> None:
    """With one worker, the net and subnets (three and two operations deep) go before the
    independent disk, which sorts first by address: the critical path never waits behind work
    nothing depends on."""
    h = Harness()
    assert h.apply(h.plan(world()), parallelism=1).ok
    order = h.cloud.order("create")
    assert order[:3] == ["fake_net.main", 'fake_sub.s["a"]', 'fake_sub.s["b"]']
    assert order[3] == "fake_disk.data"  # then by address among equals


def test_a_slow_kind_starts_before_a_deeper_chain_of_quick_ones() -> None:
    """The road ahead is measured in expected AWS time (the kinds' ``seconds`` hints), not in
    operations: a disk that takes minutes starts before the net → subnet → VM chain (three
    operations deep), both when creating and when deleting."""
    h = Harness()
    h.kinds["fake_disk"].seconds = (300.0, 300.0)  # type: ignore[misc]
    assert h.apply(h.plan(world()), parallelism=1).ok
    assert h.cloud.order("create")[0] == "fake_disk.data"
    options = PlanOptions(destroy=True, allow_data_loss=True)
    assert h.apply(h.plan(world(), options=options), parallelism=1).ok
    assert h.cloud.order("delete")[0] == "fake_disk.data"


def test_a_cancel_stops_new_work_and_records_what_was_in_flight() -> None:
    """Cancelled when the net's create finishes: it is recorded, nothing that waited on it starts
    (the independent disk, started in the same first wave, finishes and is recorded too)."""
    h = Harness()
    cancel = threading.Event()

    def save(s: State) -> None:
        if "fake_net.main" in s.resources:
            cancel.set()

    ex = Executor(h.kinds, None, h.state, save, on_event=h.events.append, cancel=cancel)
    result = ex.run(h.plan(world()))
    assert result.cancelled and not result.ok and not result.failures
    assert set(result.state.resources) == {"fake_net.main", "fake_disk.data"}
    assert set(h.cloud.order("create")) == {"fake_net.main", "fake_disk.data"}


def test_a_second_interrupt_waits_for_a_state_write_in_progress() -> None:
    """The immediate exit of a second SIGINT/SIGTERM never lands inside a state write: it takes the
    write lock first (here a write holds it until released)."""
    from byoc.cli.interrupt import Interrupts

    writing, exits = threading.Lock(), []
    done = threading.Event()
    interrupts = Interrupts(lambda: ['fake_vm.n["a1"]'], exit=lambda code: (exits.append(code), done.set()),
                            write_lock=writing)
    writing.acquire()  # a state write in progress
    interrupts.handle(2)
    assert interrupts.received and exits == []  # the first one only cancels
    interrupts.handle(2)
    assert not done.wait(0.3) and exits == []  # not while the write runs
    writing.release()
    assert done.wait(10) and exits == [1]


def test_what_a_kind_does_before_a_delete_is_told_between_start_and_done() -> None:
    """``prepare_delete`` runs just before the delete (a load balancer's deletion protection goes
    off there); each line it returns becomes a "note" event of that operation."""
    h = Harness()
    h.apply(h.plan(world()))
    disk = h.kinds["fake_disk"]
    prepared: list[str] = []

    def prepare(ctx: Any, live: Any) -> tuple[str, ...]:
        prepared.append(live.address)
        assert ("delete", live.address) not in h.cloud.calls  # before the delete itself
        return ("deletion protection turned off",)

    disk.prepare_delete = prepare  # type: ignore[method-assign]
    h.events.clear()
    assert h.apply(h.plan(world(), options=PlanOptions(destroy=True, allow_data_loss=True))).ok
    assert prepared == ["fake_disk.data"]
    mine = [(e.kind, e.message) for e in h.events if e.address == "fake_disk.data"]
    assert mine == [("start", ""), ("note", "deletion protection turned off"), ("done", "")]
    note = next(e for e in h.events if e.kind == "note")
    assert note.action == "destroy" and note.aws_id


def test_the_garbage_collector_is_set_for_the_run_and_given_back_after() -> None:
    """While operations run, the young generation is collected less often and the objects that
    existed before are frozen; afterwards both are as they were."""
    import gc

    h = Harness()
    before, seen = gc.get_threshold(), []
    real = h.kinds["fake_net"].create

    def create(ctx: Any, address: str, props: Any) -> Any:
        seen.append((gc.get_threshold()[0], gc.get_freeze_count() > 0))
        return real(ctx, address, props)

    h.kinds["fake_net"].create = create  # type: ignore[method-assign]
    assert h.apply(h.plan(world())).ok
    assert seen == [(max(before[0], 20_000), True)]
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_overlapping_runs_share_the_collector_setting_and_the_last_puts_it_back() -> None:
    """Two runs in one process (engines in threads) that overlap, ending in the order they began:
    the one that ends first leaves the setting to the one still running, and the last to end puts
    back what was there before either; neither leaves the process with the run's setting."""
    import gc

    from byoc.executor import _long_lived_frozen

    before = gc.get_threshold()
    first, second = _long_lived_frozen(), _long_lived_frozen()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == max(before[0], 20_000)  # the second run still has it
    assert gc.get_freeze_count() > 0
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def _order_log(h: Harness) -> list[tuple[str, Any]]:
    """Creates (as they start) and state writes (as they finish), in one list in the order they happen."""
    log: list[tuple[str, Any]] = []
    for name in ("fake_net", "fake_sub", "fake_vm", "fake_disk"):
        kind = h.kinds[name]
        real = kind.create

        def create(ctx: Any, address: str, props: Any, real: Any = real) -> Any:
            log.append(("create", address))
            return real(ctx, address, props)

        kind.create = create  # type: ignore[method-assign]
    h.on_save = lambda s: log.append(("write", set(s.resources)))
    return log


def test_records_nothing_waits_for_share_a_later_write_and_dependents_still_wait_for_theirs() -> None:
    """A finished create that nothing waits for (the VMs, the disk) may wait to share a write; one
    whose dependents are ready (the net, the subnets) is written before any of them starts. With a
    gathering window longer than the run, a write is made only for creates that wait, and the last."""
    h = Harness()
    log = _order_log(h)
    plan = h.plan(world())
    ex = Executor(h.kinds, None, h.state, lambda s: (h.saves.append(s), h.on_save(s)), gather=3600)
    result = ex.run(plan)
    assert result.ok
    written: set[str] = set()
    for what, item in log:
        if what == "write":
            written |= item
        else:
            needed = set(plan.change(item).depends_on)
            assert needed <= written, f"{item} started before {needed - written} was written"
    # a write only when creates wait for it (after the net, after each subnet), and the last one
    writes = [item for what, item in log if what == "write"]
    assert len(writes) <= 4 and set(writes[-1]) == {c.address for c in plan.changes}
    assert set(result.state.resources) == {c.address for c in plan.changes}
    assert [s.serial for s in h.saves] == list(range(1, len(h.saves) + 1))


def test_a_record_nothing_waits_for_is_written_once_its_window_has_passed_while_work_goes_on() -> None:
    """The disk, which nothing needs, finishes first; the VMs go on until a write holding the disk
    has happened: the window's end starts that write although nothing waits for it (the VMs give up
    after 10 s, and the test fails, if it never comes)."""
    h = Harness()
    log = _order_log(h)
    disk_written = threading.Event()
    h.on_save = lambda s: (log.append(("write", set(s.resources))),
                           disk_written.set() if "fake_disk.data" in s.resources else None)
    real = h.kinds["fake_vm"].create

    def vm(ctx: Any, address: str, props: Any) -> Any:
        assert disk_written.wait(10), "the disk's record was never written while the VMs ran"
        return real(ctx, address, props)

    h.kinds["fake_vm"].create = vm  # type: ignore[method-assign]
    ex = Executor(h.kinds, None, h.state, lambda s: (h.saves.append(s), h.on_save(s)), gather=0.05)
    result = ex.run(h.plan(world()))
    assert result.ok, [str(f.error) for f in result.failures]
    first_with_disk = next(i for i, s in enumerate(h.saves) if "fake_disk.data" in s.resources)
    assert first_with_disk < len(h.saves) - 1  # not only in the last write
