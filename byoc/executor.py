"""The executor: walks a plan as a DAG of operations with a bounded worker pool.

Each operation starts as soon as its own dependencies are done (not level by level). Creates
and updates follow dependency order; deletes follow it reversed; a replacement is a delete
followed by a create. State is saved after every operation (in a group commit: see
``_GroupCommit``), always before anything that depends on it starts. When an operation fails, work in
flight finishes, only what depends on the failure is skipped, and the root cause is reported
once. Progress is reported as events; the CLI renders them. In a rolling plan the nodes go one
at a time: each node's operations wait until the previous node is healthy again. A cancellation
(``cancel``, set by the CLI's SIGINT/SIGTERM handler) stops new work from starting: what is in
flight finishes and is recorded, as after a failure.

It stands below the engine (which makes one per apply) and above the planner and plan it reads,
the state document it records into and the resource kinds it calls (docs/architecture.md).
"""

from __future__ import annotations

import bisect
import concurrent.futures as cf
import contextlib
import gc
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from byoc.aws.errors import maybe_done, to_cloud_error
from byoc.aws.gate import CallGate, ranked
from byoc.errors import ByocError, CloudError, PlanError
from byoc.model import DEFAULT_PARALLELISM, UNKNOWN, Live, Ref, canonical_json, contains_unknown, substitute
from byoc.plan import CREATE, DELETE, NOOP, REPLACE, UPDATE, Change, Plan
from byoc.planner import hash_props
from byoc.resources.base import ResourceType
from byoc.rolling import INSTANCE, TARGET_ATTACHMENT, VOLUME_ATTACHMENT, instance_address, node_of
from byoc.state.model import ResourceState, State

APPLY, REMOVE = "apply", "delete"
#: a data volume's final snapshot, its own operation before the volume's delete: the snapshot id
#: is recorded in the state (on the main thread, as every write) before the delete starts
SNAPSHOT = "snapshot"
#: rolling plans: wait until a node is healthy in every target group before the next node goes
HEALTHY = "healthy"
Op = tuple[str, str]  # (address, phase)

#: held by every state write of an apply: an immediate exit (a second interrupt) takes it first,
#: so the process never ends in the middle of a write
STATE_WRITE = threading.Lock()

#: how long a finished operation's record that nothing waits for may wait to share a state write
GATHER_SECONDS = 0.2


def guarded(write: Callable[[State], None]) -> Callable[[State], None]:
    """``write`` made under ``STATE_WRITE``."""

    def locked(state: State) -> None:
        with STATE_WRITE:
            write(state)

    return locked


@dataclass(frozen=True)
class Event:
    """Something the user may want to see: an operation started, finished, failed or was skipped."""

    kind: str  # "start" | "done" | "failed" | "skipped" | "note" (something done on the way, in message)
    address: str
    action: str  # create | update | delete | replace (for the delete half: "destroy")
    elapsed: float = 0.0
    aws_id: str | None = None
    message: str = ""


@dataclass
class Failure:
    address: str
    action: str
    error: ByocError


@dataclass
class ApplyResult:
    state: State
    done: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # address -> root cause address
    #: final snapshots taken before deleting data volumes: address -> snapshot id
    snapshots: dict[str, str] = field(default_factory=dict)
    #: a cancellation stopped work that had not started yet
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures and not self.skipped and not self.cancelled


def operation_graph(plan: Plan) -> nx.DiGraph:
    """The DAG of operations for a plan (edges: must finish before)."""
    by_addr = {c.address: c for c in plan.changes}
    g: nx.DiGraph = nx.DiGraph()
    for c in plan.changes:
        if c.action in (CREATE, UPDATE):
            g.add_node((c.address, APPLY), change=c)
        elif c.action == DELETE:
            g.add_node((c.address, REMOVE), change=c)
        elif c.action == REPLACE:
            g.add_node((c.address, REMOVE), change=c)
            g.add_node((c.address, APPLY), change=c)
            g.add_edge((c.address, REMOVE), (c.address, APPLY))

    for c in plan.changes:
        # Creates and updates wait for what they refer to.
        if (c.address, APPLY) in g:
            for dep in c.depends_on:
                if (dep, APPLY) in g:
                    g.add_edge((dep, APPLY), (c.address, APPLY))
        # Deletes wait for whatever used the thing being deleted (edges reversed).
        first = (c.address, REMOVE) if (c.address, REMOVE) in g else (c.address, APPLY)
        if first not in g:
            continue
        for dep in set(c.old_depends_on) | set(c.depends_on):
            d = by_addr.get(dep)
            if d is None or (dep, REMOVE) not in g:
                continue
            if d.action == DELETE or (d.action == REPLACE and first[1] == REMOVE):
                g.add_edge(first, (dep, REMOVE))
    _snapshot_before_delete(g)
    _drain_before_stop(g)
    if plan.rolling:
        _chain_nodes(g, plan)
    if not nx.is_directed_acyclic_graph(g):
        cycle = " → ".join(f"{a}:{p}" for (a, p), _ in nx.find_cycle(g))
        raise PlanError(f"the plan's operations form a cycle ({cycle}); this is a byoc bug")
    return g


def _snapshot_before_delete(g: nx.DiGraph) -> None:
    """A delete with a final snapshot becomes two operations: the snapshot (after everything the
    delete waited for), then the delete, so the snapshot is in the state before the volume goes."""
    for op in [op for op in g.nodes if op[1] == REMOVE and g.nodes[op]["change"].final_snapshot]:
        snap = (op[0], SNAPSHOT)
        g.add_node(snap, change=g.nodes[op]["change"])
        for pred in list(g.predecessors(op)):
            g.remove_edge(pred, op)
            g.add_edge(pred, snap)
        g.add_edge(snap, op)


def _drain_before_stop(g: nx.DiGraph) -> None:
    """A node leaving its target groups drains before its data volume is detached (which stops
    the instance): in-flight queries finish."""
    leaving: dict[str, list[Op]] = {}
    for op in g.nodes:
        if op[1] == REMOVE and g.nodes[op]["change"].kind == TARGET_ATTACHMENT:
            leaving.setdefault(node_of(op[0]) or "", []).append(op)
    for op in list(g.nodes):
        if op[1] == REMOVE and g.nodes[op]["change"].kind == VOLUME_ATTACHMENT:
            for first in leaving.get(node_of(op[0]) or "", ()):
                g.add_edge(first, op)


def _chain_nodes(g: nx.DiGraph, plan: Plan) -> None:
    """Rolling: the nodes that stay must be healthy before the first node goes; a health wait
    after each rolled node's own operations; every operation of the next node only after it
    (never more than one node out of service, also when a roll stopped earlier is continued)."""
    kept = [node for c in plan.changes if c.kind == INSTANCE and c.action in (NOOP, UPDATE)
            and (node := node_of(c.address)) is not None and node not in plan.rolling]
    before: list[Op] = []
    for node in [*kept, *plan.rolling]:
        ops = [op for op in g.nodes if node_of(op[0]) == node]
        address = instance_address(node)
        targets = tuple(c.address for c in plan.changes
                        if c.kind == TARGET_ATTACHMENT and node_of(c.address) == node and c.action != DELETE)
        health = (address, HEALTHY)
        g.add_node(health, change=plan.change(address), targets=targets)
        for op in ops:
            g.add_edge(op, health)
            if node in plan.rolling:
                for prev in before:
                    g.add_edge(prev, op)
        before = [*before, health] if node in kept else [health]


class Executor:
    """Applies a plan through the registered kinds; ``ctx`` is passed through to them."""

    def __init__(
        self,
        kinds: Mapping[str, ResourceType],
        ctx: Any,
        state: State,
        save: Callable[[State], None],
        *,
        parallelism: int = DEFAULT_PARALLELISM,
        on_event: Callable[[Event], None] = lambda e: None,
        recheck: bool = False,
        health_timeout: float = 900.0,
        cancel: threading.Event | None = None,
        node_check: Callable[[str, str], str] | None = None,
        gather: float = GATHER_SECONDS,
    ) -> None:
        self.kinds = kinds
        self.ctx = ctx
        self.state = state
        self._save = guarded(save)
        #: once set, nothing new starts; what is in flight finishes and is recorded
        self.cancelled = cancel if cancel is not None else threading.Event()
        self.parallelism = max(1, parallelism)
        #: operations under way at once (set by ``run``): with a context that gates its AWS calls,
        #: more than the calls allowed in flight (``parallelism``, held by the gate), since an
        #: operation spends much of its time waiting (for AWS to finish something, for another's
        #: batched read) with no call in flight; else, and at ``--parallelism 1``, ``parallelism``
        self.workers = self.parallelism
        self.on_event = on_event
        self.recheck = recheck
        #: how long a rolled node may take to pass the load balancer's health checks
        self.health_timeout = health_timeout
        #: rolling plans: asked (node key, instance id) once a node is healthy, before the next node
        #: goes; says what it found, raises CloudError to stop the roll (an upgrade's version check)
        self.node_check = node_check
        #: how long a record nothing waits for may wait to share a state write (see ``_GroupCommit``)
        self.gather = gather
        self.known: dict[str, Live] = {}
        self.snapshots: dict[str, str] = {}
        #: address -> the props an operation resolved, recorded from there (resolved once)
        self._resolved: dict[str, dict[str, Any]] = {}
        self._batch = False
        self._dirty = False
        #: an operation's rank at the call gate during a run (its road ahead, negated: first goes first)
        self._rank: Callable[[Op], float] = lambda op: 0.0
        #: during a run, the resources recorded since ``state`` was last brought up to date:
        #: address -> its record (None: gone). Folded into the state once per write, not copied
        #: into a new document per finished operation (30 nodes: ~750 resources, ~300 records)
        self._pending: dict[str, ResourceState | None] = {}

    def cancel(self) -> None:
        """Stop starting new operations (safe from any thread and from a signal handler)."""
        self.cancelled.set()

    # -- state ---------------------------------------------------------------------------------
    def save(self, state: State) -> None:
        if self._batch:  # during a run: written by the next state write (see _GroupCommit)
            # what was staged meanwhile is newer than anything ``state`` was made from
            self.state, self._pending = state.with_changes(self._pending), {}
            self._dirty = True
            return
        self.state = state.bumped()
        self._save(self.state)

    def _stage(self, address: str, record: ResourceState | None) -> None:
        """Record (or, with None, forget) one resource: during a run, kept aside until the next
        state write (``_settle``); otherwise saved at once."""
        if self._batch:
            self._pending[address] = record
            self._dirty = True
            return
        self.save(self.state.with_resource(record) if record else self.state.without(address))

    def _settle(self) -> State:
        """``state`` with every staged record folded in (one new document for all of them)."""
        if self._pending:
            self.state, self._pending = self.state.with_changes(self._pending), {}
        return self.state

    def _refresh(self, plan: Plan) -> None:
        """Before acting: record adopted resources, forget vanished ones, know every prior value."""
        state = self.state
        for address in plan.forget:
            state = state.without(address)
        for c in plan.changes:
            prior = c.prior
            if prior is not None:
                self.known[c.address] = prior
            if c.action == NOOP and prior is not None:
                rs = state.resources.get(c.address)
                if rs is None or rs.id != prior.id or rs.props != prior.props:
                    state = state.with_resource(
                        ResourceState(c.address, c.kind, prior.id, c.after or prior.props,
                                      prior.attrs, c.depends_on)
                    )
        if state != self.state:
            self.save(state)

    # -- the walk ------------------------------------------------------------------------------
    def _seconds(self, op: Op, change: Change) -> float:
        """How long ``op`` is expected to take in AWS (the kind's hint; 1 s when it has none)."""
        if op[1] == HEALTHY:
            return HEALTH_WAIT_SECONDS
        hint = getattr(self.kinds.get(change.kind), "seconds", None)
        if not hint:
            return 1.0
        return float(hint[1] if op[1] == REMOVE else hint[0])

    def run(self, plan: Plan) -> ApplyResult:
        with _long_lived_frozen():
            return self._run(plan)

    def _run(self, plan: Plan) -> ApplyResult:
        g = operation_graph(plan)
        self._refresh(plan)
        result = ApplyResult(self.state)
        waiting = {op: g.in_degree(op) for op in g.nodes}
        first = _critical_first(g, self._seconds)
        ready = sorted((op for op, n in waiting.items() if n == 0), key=first)
        blocked: set[Op] = set()
        running: dict[cf.Future[Live | None], tuple[Op, float]] = {}
        #: every future of the run (operations and state writes) is put here as it finishes: the
        #: loop waits on this one queue instead of installing a waiter on each future per turn
        finishing: queue.SimpleQueue[cf.Future[Any]] = queue.SimpleQueue()
        self._rank = lambda op: first(op)[0]
        gated = getattr(self.ctx, "gate", False) is None  # a context that can gate, not gated yet
        many = gated and self.parallelism > 1
        self.workers = self.parallelism * OPERATIONS_PER_CALL if many else self.parallelism
        pool = cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="byoc")
        writes = _GroupCommit(self, finishing.put)
        self._batch, self._dirty = True, False
        if gated:
            self.ctx.gate = CallGate(self.parallelism)
        try:
            while ready or running or writes.busy:
                if self.cancelled.is_set() and ready:
                    result.cancelled = True
                    ready.clear()
                for _ in range(_startable(ready, writes.waiting(), self.workers - len(running), first)):
                    op = ready.pop(0)
                    change: Change = g.nodes[op]["change"]
                    self.on_event(Event("start", op[0], _label(change, op)))
                    if op[1] == HEALTHY:
                        fut = pool.submit(self._ranked, op, self._wait_healthy, op, change,
                                          g.nodes[op]["targets"], plan)
                    else:
                        fut = pool.submit(self._ranked, op, self._perform, op, change)
                    running[fut] = (op, time.monotonic())
                    fut.add_done_callback(finishing.put)
                if not running and writes.writing is None:
                    break
                try:
                    finished = _finished(finishing, writes.due())
                except KeyboardInterrupt:  # a caller without a signal handler: cancel the same way
                    self.cancel()
                    continue
                for op in writes.collect():  # their predecessors' records are on disk now
                    bisect.insort(ready, op, key=first)
                for fut in sorted((f for f in finished if f in running), key=lambda f: running[f][0]):
                    op, started = running.pop(fut)
                    change = g.nodes[op]["change"]
                    elapsed = time.monotonic() - started
                    try:
                        live = fut.result()
                    except Exception as exc:  # every failure becomes a person-readable error
                        self._resolved.pop(change.address, None)  # nothing to record
                        err = _as_error(exc, change)
                        result.failures.append(Failure(op[0], _label(change, op), err))
                        self.on_event(Event("failed", op[0], _label(change, op), elapsed,
                                            change.prior_id, str(err)))
                        for desc in nx.descendants(g, op):
                            if desc not in blocked:
                                blocked.add(desc)
                                result.skipped.setdefault(desc[0], op[0])
                        continue
                    if op[1] != HEALTHY:
                        self._record(op, change, live)
                    if op[1] not in (HEALTHY, SNAPSHOT):  # a snapshot is half of its delete
                        result.done.append(op[0])
                    snap = self.snapshots.get(op[0]) if op[1] == REMOVE else None
                    if snap:
                        result.snapshots[op[0]] = snap
                    self.on_event(Event("done", op[0], _label(change, op), elapsed,
                                        live.id if live else change.prior_id,
                                        f"final snapshot {snap}" if snap else ""))
                    for succ in sorted(g.successors(op)):
                        waiting[succ] -= 1
                        if waiting[succ] == 0 and succ not in blocked:
                            writes.hold(succ)
                for op in writes.flush():
                    bisect.insort(ready, op, key=first)
        finally:
            pool.shutdown(wait=True)
            if gated:
                self.ctx.gate = None
            writes.close()
            self._batch = False
            settled = self._settle()
            if self._dirty and not writes.failed:  # stopped by an error: what was recorded is kept
                self.save(settled)
        for op in sorted(blocked):
            change = g.nodes[op]["change"]
            self.on_event(Event("skipped", op[0], _label(change, op),
                                message=f"skipped because {result.skipped[op[0]]} failed"))
        result.state = self.state
        return result

    def _ranked(self, op: Op, fn: Callable[..., Live | None], *args: Any) -> Live | None:
        """``fn(*args)`` with its AWS calls ranked at the call gate by ``op``'s road ahead."""
        with ranked(self._rank(op)):
            return fn(*args)

    def _wait_healthy(self, op: Op, change: Change, targets: tuple[str, ...], plan: Plan) -> Live | None:
        """A rolled node is back only when every target group says it is healthy."""
        for address in targets:
            kind = self.kinds.get(TARGET_ATTACHMENT)
            live = self.known.get(address)
            wait = getattr(kind, "wait_healthy", None)
            if live is None or wait is None:
                continue
            try:
                wait(self.ctx, live, timeout=self.health_timeout)
            except CloudError as exc:
                raise self._roll_stopped(op[0], exc, plan) from exc
        self._check_node(op, plan)
        return self.known.get(op[0])

    def _check_node(self, op: Op, plan: Plan) -> None:
        """The node is healthy: ask ``node_check`` too (an upgrade's version check)."""
        node, live = node_of(op[0]), self.known.get(op[0])
        if self.node_check is None or node is None or live is None:
            return
        try:
            message = self.node_check(node, live.id)
        except CloudError as exc:
            why = str(exc.args[0]).rstrip(".") if exc.args else str(exc)
            raise CloudError(
                f"node {node} is healthy, but its check failed: {why}. {_roll_position(node, plan)}. "
                "Fix the cause and run `byoc apply` again to continue the roll.",
                address=op[0], aws_id=live.id, code=exc.code,
            ) from exc
        self.on_event(Event("note", op[0], "wait-healthy", aws_id=live.id, message=message))

    def _roll_stopped(self, address: str, exc: CloudError, plan: Plan) -> CloudError:
        node = node_of(address)
        why = str(exc.args[0]).rstrip(".") if exc.args else str(exc)  # without the attachment's address
        what, where = (f"node {node} did not come back: {why}", _roll_position(node, plan))
        if node not in plan.rolling:
            what, where = f"node {node} is not healthy: {why}", (
                f"{where}: it would take a second node out of service")
        return CloudError(
            f"{what}. {where}. Look at why it fails its health checks (`aws elbv2 "
            "describe-target-health`, the node's Proton log in the cluster's CloudWatch log group), "
            "fix the cause (spec, image, version) and run `byoc apply` again to continue the roll.",
            address=address, aws_id=self.known[address].id if address in self.known else None,
            code=exc.code,
        )

    def _record(self, op: Op, change: Change, live: Live | None) -> None:
        if op[1] in (SNAPSHOT, REMOVE):
            if op[1] == REMOVE:
                self.known.pop(change.address, None)
                self._stage(change.address, None)
            snap = self.snapshots.get(change.address)
            if snap and change.prior_id and not any(
                    r.get("snapshot_id") == snap for r in self.state.final_snapshots):
                # the intent, saved before the delete starts: a run killed after it (or after
                # the delete) still knows the snapshot, and the next run reuses it
                when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self.save(self._settle().with_final_snapshot(change.address, change.prior_id, snap, when))
            return
        assert live is not None
        self.known[change.address] = live
        kind = self.kinds.get(change.kind)
        resolved = self._resolved.pop(change.address, None)  # as the operation used them
        if resolved is None:
            resolved = self._resolve(change.desired or {})
        props = hash_props(resolved, kind.hashed if kind else frozenset())
        self._stage(change.address, ResourceState(change.address, change.kind, live.id, props,
                                                  dict(live.attrs), change.depends_on))

    # -- one operation (runs in a worker thread) ------------------------------------------------
    def _resolve(self, props: Mapping[str, Any]) -> dict[str, Any]:
        def value(ref: Ref) -> Any:
            live = self.known.get(ref.address)
            return UNKNOWN if live is None else live.attr(ref.attr)

        resolved: dict[str, Any] = substitute(props, value)
        return resolved

    def _perform(self, op: Op, change: Change) -> Live | None:
        kind = self.kinds.get(change.kind)
        if kind is None:
            raise PlanError(f"{change.address}: unknown resource kind {change.kind}")
        if op[1] == SNAPSHOT:
            prior = change.prior
            assert prior is not None
            if change.address not in self.snapshots:
                # the kind reuses a final snapshot of this volume that a killed run already took
                self.snapshots[change.address] = kind.snapshot(self.ctx, prior)
            return Live(change.address, "snapshot", self.snapshots[change.address], {})
        if op[1] == REMOVE:
            prior = change.prior
            assert prior is not None
            for note in kind.prepare_delete(self.ctx, prior):  # from this worker thread
                self.on_event(Event("note", op[0], _label(change, op), aws_id=prior.id, message=note))
            kind.delete(self.ctx, prior)
            return None
        props = self._resolve(change.desired or {})
        self._resolved[change.address] = props
        if contains_unknown(props):
            missing = sorted(r.address for r in _refs(change.desired) if r.address not in self.known)
            raise PlanError(f"{change.address}: values still unknown at apply time (from {missing})")
        if change.action == UPDATE:
            prior = self.known.get(change.address) or change.prior
            assert prior is not None
            return kind.update(self.ctx, prior, props, _changed(prior.props, props, kind.hashed))
        if self.recheck:
            existing = kind.find(self.ctx, change.address)
            if existing is not None:
                return self._adopt(kind, change, existing, props)
        return self._create(kind, change, props)

    def _create(self, kind: ResourceType, change: Change, props: Mapping[str, Any]) -> Live:
        """Create; when the answer was a 5xx or a dropped connection, AWS may have done the work
        anyway: look by tag (which takes a moment), adopt what is there, else create again."""
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return kind.create(self.ctx, change.address, props)
            except Exception as exc:
                if not maybe_done(exc) or attempt == CREATE_ATTEMPTS - 1:
                    raise
            existing = kind.find(self.ctx, change.address)
            if existing is not None:
                return self._adopt(kind, change, existing, props)
        raise AssertionError("unreachable")

    def _adopt(self, kind: ResourceType, change: Change, existing: Live, props: Mapping[str, Any]) -> Live:
        """Take over what already exists under the address, updating it in place where needed."""
        changed = _changed(existing.props, props, kind.hashed)
        if not changed:
            return existing
        if changed & kind.force_new:
            raise CloudError(
                f"already exists with different {', '.join(sorted(changed & kind.force_new))}; "
                "run `byoc plan` again",
                address=change.address, aws_id=existing.id, code="Conflict",
            )
        return kind.update(self.ctx, existing, props, changed)


class _GroupCommit:
    """The state writes of a run, made one at a time on a thread of their own (group commit).

    What operations record while a write is under way goes into the next write, one for all of them
    (a write per operation kept the critical path waiting: two fsyncs and a rename each), and the
    main loop goes on starting ready work meanwhile. An operation whose predecessors are done waits
    (``hold``) until a write holding their records has finished: nothing starts before what it
    depends on is in the state on disk. The written state's serial is one above the last.

    A record that nothing waits for (a leaf such as an alarm, or a create whose dependents wait for
    other things too) may wait up to ``Executor.gather`` seconds for others to share its write: at 30
    nodes about two writes in three had nothing waiting on them, each a whole document, two fsyncs
    and a rename. The moment an operation waits for a write, or nothing is left running, the write
    starts: nothing starts before what it depends on is on disk, and the run's last write holds all.
    Once the run is cancelled (an interrupt), nothing waits: a second interrupt abandons only what
    was in flight.
    """

    def __init__(self, executor: Executor, on_done: Callable[[cf.Future[None]], None]) -> None:
        self.ex = executor
        #: called with each write's future when it has finished (from the writing thread)
        self.on_done = on_done
        self.pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="byoc-state")
        #: the write under way, and the operations it releases when it has finished
        self.writing: cf.Future[None] | None = None
        self.covered: list[Op] = []
        #: operations waiting for the next write
        self.held: list[Op] = []
        #: a write failed (the run stops with its error; nothing more is written)
        self.failed = False
        #: when the records nothing waits for are written at the latest (None: none such)
        self.deadline: float | None = None

    @property
    def busy(self) -> bool:
        return self.writing is not None or bool(self.held) or self.ex._dirty

    def hold(self, op: Op) -> None:
        self.held.append(op)

    def due(self) -> float | None:
        """When the loop must look again to start a gathered write (None: it may wait for work)."""
        return self.deadline if self.writing is None else None

    def waiting(self) -> list[Op]:
        """The operations waiting for a write (to start the moment it has finished)."""
        return [*self.covered, *self.held]

    def collect(self) -> list[Op]:
        """The operations a finished write releases (a failed write's error is raised: the run
        stops, as on any failure to save the state)."""
        if self.writing is None or not self.writing.done():
            return []
        done, self.writing = self.writing, None
        if done.exception() is not None:
            self.failed = True
        done.result()
        released, self.covered = self.covered, []
        return released

    def flush(self) -> list[Op]:
        """Start a write of what changed unless one is under way; returns the held operations that
        need no write (nothing was recorded since the last write started: what they depend on is
        already on disk)."""
        if not self.ex._dirty:
            released, self.held = self.held, []
            return released
        if self.writing is None and not self.held and self.ex.gather > 0 and not self.ex.cancelled.is_set():
            now = time.monotonic()
            if self.deadline is None:
                self.deadline = now + self.ex.gather
            if now < self.deadline:
                return []  # nothing waits for these records yet: more may share their write
        if self.writing is None:
            self.deadline = None
            state = self.ex._settle().bumped()
            self.ex.state, self.ex._dirty = state, False
            self.writing = self.pool.submit(self._save, state)
            self.writing.add_done_callback(self.on_done)
            self.covered, self.held = self.held, []
        return []

    def _save(self, state: State) -> None:
        """One state write, its AWS calls (a state store on the run's own clients) ranked first at
        the call gate: what it holds waits for it."""
        with ranked(float("-inf")):
            self.ex._save(state)

    def close(self) -> None:
        """Wait for a write under way (never abandoned halfway); its error, if any, is left to
        ``collect`` (the run ends with the first error anyway)."""
        self.pool.shutdown(wait=True)
        if self.writing is not None and self.writing.exception() is not None:
            self.failed = True


def _finished(finishing: queue.SimpleQueue[cf.Future[Any]], due: float | None = None) -> list[cf.Future[Any]]:
    """The futures that have finished: waits for the first (until ``due``, a ``time.monotonic()``
    value, when one is given: then none may have), then takes all that are there. (A state write's
    future may come after ``collect`` already took its write: harmless, the loop goes round once
    more.)"""
    try:
        if due is None:
            finished = [finishing.get()]
        else:
            finished = [finishing.get(timeout=max(0.0, due - time.monotonic()))]
    except queue.Empty:
        return []
    with contextlib.suppress(queue.Empty):
        while True:
            finished.append(finishing.get_nowait())
    return finished


def _startable(ready: list[Op], waiting: list[Op], free: int, first: Callable[[Op], Any]) -> int:
    """How many of ``ready`` (sorted by ``first``) to start in ``free`` worker slots: those that rank
    among the first ``free`` of ``ready`` and the operations ``waiting`` for a state write, which
    keep their slots — a full pool never lets work nothing waits on pass the critical path."""
    if free <= 0 or not ready:
        return 0
    if not waiting:
        return min(free, len(ready))
    candidates = ready[:free]
    top = sorted([*candidates, *waiting], key=first)[:free]
    chosen = set(candidates)
    return sum(1 for op in top if op in chosen)


#: operations under way per AWS call allowed in flight (see ``Executor.workers``)
OPERATIONS_PER_CALL = 4

#: how often a create answered 5xx is looked for and tried again before its failure is reported
CREATE_ATTEMPTS = 6


@contextlib.contextmanager
def _long_lived_frozen() -> Iterator[None]:
    """While operations run, the objects that already exist (the SDK's service models, clients,
    the plan) are left out of the garbage collector's full passes, each of which would otherwise
    stop every worker for tens of milliseconds; they are handed back afterwards. The young
    generation is collected every 20,000 allocations instead of 700 meanwhile (the SDK makes
    thousands of short-lived objects per call: at 30 nodes, about 130 passes become 8).

    The collector is the process's: runs that overlap in one process (engines in threads) share one
    setting, made by the first to start and undone by the last to end, so none of them puts back
    another's values while that one still runs."""
    with _GC_LOCK:
        if not _GC_SAVED:
            gc.freeze()
            threshold = gc.get_threshold()
            _GC_SAVED.append(threshold)
            gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
        _GC_RUNS[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_RUNS[0] -= 1
            if _GC_RUNS[0] == 0:
                gc.set_threshold(*_GC_SAVED.pop())
                gc.unfreeze()


#: the collector's settings before the first of the runs under way, and how many run
_GC_LOCK = threading.Lock()
_GC_SAVED: list[tuple[int, ...]] = []
_GC_RUNS = [0]


#: what a health wait is expected to take (a scheduling hint, like ``ResourceType.seconds``)
HEALTH_WAIT_SECONDS = 60.0


def _critical_first(
    g: nx.DiGraph, seconds: Callable[[Op, Change], float]
) -> Callable[[Op], tuple[float, Op]]:
    """Sort key for ready operations: the longest road still ahead of one — its own expected
    duration plus the longest chain of operations behind it — goes first (then by address), so a
    worker pool that is full never makes the critical path wait."""
    depth: dict[Op, float] = {}
    for op in reversed(list(nx.topological_sort(g))):
        ahead = max((depth[s] for s in g.successors(op)), default=0.0)
        depth[op] = seconds(op, g.nodes[op]["change"]) + ahead
    return lambda op: (-depth[op], op)


def _changed(before: Mapping[str, Any], after: Mapping[str, Any], hashed: frozenset[str]) -> set[str]:
    """Props whose value differs (hashed props compared by their hash)."""
    after = hash_props(after, hashed)
    return {k for k in after if canonical_json(after[k]) != canonical_json(before.get(k))}


def _refs(value: Any) -> list[Ref]:
    from byoc.model import walk_refs

    return list(walk_refs(value))


def _roll_position(node: str | None, plan: Plan) -> str:
    """Where a roll stopped, for a message: after ``node`` (a rolled node), or before it started
    (a node that stays)."""
    order = list(plan.rolling)
    if node in order:
        rest = order[order.index(node) + 1:]
        return "The roll stopped here " + (
            f"(nodes {', '.join(rest)} were not touched)" if rest else "(it was the last node)")
    return f"The roll did not start (nodes {', '.join(order)} were not touched)"


def _label(change: Change, op: Op) -> str:
    if op[1] == HEALTHY:
        return "wait-healthy"
    if op[1] == SNAPSHOT:
        return "final-snapshot"
    if change.action == REPLACE:
        return "destroy" if op[1] == REMOVE else "create"
    return "destroy" if change.action == DELETE else change.action


def _as_error(exc: BaseException, change: Change) -> ByocError:
    if isinstance(exc, ByocError) and not isinstance(exc, CloudError):
        return exc
    return to_cloud_error(exc, change.address, change.prior_id)
