"""The planner: a pure function of (desired resources, state, live) to a Plan. No I/O.

Each desired resource is compared with what discovery found, attribute by attribute: values
that depend on something not yet created are UNKNOWN (known after apply); a change to an
attribute the kind cannot change in place means replacement. Owned resources nobody wants any
more are deleted; data-bearing (protected) resources are kept unless explicitly allowed. A change
that would replace a protected resource without that consent makes the whole plan an error
(``PlanError``): what depends on it must never go ahead as if the replacement had happened.

It stands in the pure core (docs/architecture.md), with rolling, protection, render and cost,
above the plan data and the state document: it imports no I/O layer and no boto3.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from byoc.drift import IgnoreRule, accept_ignored, detect
from byoc.errors import PlanError
from byoc.graph import graph_of
from byoc.model import UNKNOWN, Live, Ref, Resource, canonical_json, contains_unknown, substitute
from byoc.plan import CREATE, DELETE, NOOP, REPLACE, UPDATE, AttrChange, Change, Plan
from byoc.protection import Blocked, blocked_message
from byoc.rolling import replaced_nodes, rolling_order
from byoc.state.model import State
from byoc.upgrade import Upgrade
from byoc.upgrade import detect as detect_upgrade


@dataclass(frozen=True)
class KindRules:
    """What the planner must know of a kind: its replacement rules and whether it holds data."""

    #: props that cannot change in place
    force_new: frozenset[str] = frozenset()
    #: props whose referent cannot be deleted while this resource still refers to it (an
    #: attached internet gateway pins its VPC, a rule pins the group it names): when the
    #: referent is replaced, this resource is replaced too rather than updated after the fact
    pins: frozenset[str] = frozenset()
    holds_data: bool = False
    #: props compared (and shown) by their sha256 only, like Terraform's user_data: the kind's
    #: discovery reports them as ``sha256:<hex>``
    hashed: frozenset[str] = frozenset()
    #: the kind can take a final snapshot of what it holds before it is deleted (EBS volumes)
    snapshots: bool = False
    #: numeric props that grow in place but cannot shrink: a decrease forces replacement
    grow_only: frozenset[str] = frozenset()
    #: (prop, value) a data-bearing resource that destroy keeps is set to first: settings that
    #: name what destroy deletes (the data bucket's replication configuration, its role)
    kept_resets: tuple[tuple[str, Any], ...] = ()


def rules_of(kinds: Mapping[str, Any]) -> dict[str, KindRules]:
    """The rules of registered kinds (objects with ``force_new``, ``pins``, ``holds_data``)."""
    return {
        name: KindRules(
            frozenset(k.force_new),
            frozenset(getattr(k, "pins", ())),
            bool(k.holds_data),
            frozenset(getattr(k, "hashed", ())),
            bool(getattr(k, "snapshots", False)),
            frozenset(getattr(k, "grow_only", ())),
            tuple(getattr(k, "kept_resets", ())),
        )
        for name, k in kinds.items()
    }


@dataclass(frozen=True)
class PlanOptions:
    """What the user asked for beyond the spec."""

    destroy: bool = False
    #: allow deleting/replacing protected (data-bearing) resources
    allow_data_loss: bool = False
    #: allow deleting/replacing protected resources whose kind can snapshot them, taking a
    #: final snapshot first (scale-down, restore); others are still refused
    final_snapshots: bool = False
    #: -target: only these addresses (``kind.name`` matches every key) and what they depend on
    targets: tuple[str, ...] = ()
    #: -replace: replace these even though nothing forces it
    replace: tuple[str, ...] = ()
    #: delete resources tagged for the cluster that no state or spec knows (never data-bearing
    #: ones without ``allow_data_loss``)
    delete_unmanaged: bool = False
    #: the spec's drift.ignore rules: accepted differences apply does not undo
    ignore: tuple[IgnoreRule, ...] = ()
    #: only the drift report is wanted (nothing will be applied): a protected replacement the
    #: spec asks for is left as a no-op instead of making the plan an error
    report_only: bool = False
    #: an upgrade (nodes replaced for a new proton_version or image) takes no backup first
    no_backup: bool = False
    #: allow a move across major Proton versions (1.x ↔ 3.x, or any other)
    allow_major: bool = False


def make_plan(
    desired: Iterable[Resource],
    state: State | None,
    live: Mapping[str, Live],
    rules: Mapping[str, KindRules],
    *,
    cluster: str,
    spec_digest: str = "",
    spec_source: str = "",
    spec_overrides: tuple[str, ...] = (),
    region: str = "",
    options: PlanOptions | None = None,
    notes: tuple[str, ...] = (),
    facts: Mapping[str, Any] | None = None,
    proton: Mapping[str, str] | None = None,
) -> Plan:
    """Compare and decide; ``rules`` says, per kind, what forces replacement and what holds data.
    ``proton`` (the spec's ``{"version", "image"}``) makes a plan that replaces nodes for a new
    version an upgrade (``byoc.upgrade``); a refused version move is a PlanError."""
    protected_kinds = frozenset(k for k, r in rules.items() if r.holds_data)
    options = options or PlanOptions()
    wanted = list(desired)
    known_deps = {r.address: r.dependencies() for r in wanted}
    resources = [] if options.destroy else wanted
    graph = graph_of(resources)
    in_state = dict(state.resources) if state else {}
    changes: list[Change] = []
    fate: dict[str, str] = {}
    refused: list[str] = []
    blocked: list[Blocked] = []
    afters: dict[str, dict[str, Any]] = {}
    replace = _matching(options.replace, set(graph.nodes), "-replace")

    def resolve(ref: Ref) -> Any:
        if fate.get(ref.address) in (CREATE, REPLACE):
            return UNKNOWN
        found = live.get(ref.address)
        return UNKNOWN if found is None else found.attr(ref.attr)

    for address in nx.lexicographical_topological_sort(graph):
        r: Resource = graph.nodes[address]["resource"]
        after = hash_props(substitute(r.props, resolve), rules.get(r.kind, KindRules()).hashed)
        deps = tuple(sorted(r.dependencies()))
        found = live.get(address)
        afters[address] = after
        if found is not None and options.ignore:
            after = accept_ignored(address, after, found.props, options.ignore)
        if found is None:
            reason = (
                "was in the state but no longer exists in AWS (deleted outside byoc)"
                if address in in_state
                else "does not exist yet"
            )
            fate[address] = CREATE
            changes.append(
                Change(address, r.kind, CREATE, reason, None, after, r.props,
                       _attr_changes({}, after, frozenset()), deps,
                       protected=r.protected or r.kind in protected_kinds)
            )
            continue
        old_deps = in_state[address].depends_on if address in in_state else ()
        c = _compare(r, found, after, deps, old_deps, rules.get(r.kind, KindRules()),
                     r.protected or r.kind in protected_kinds, options, blocked, address in replace)
        fate[address] = c.action
        changes.append(c)

    # What exists but is no longer wanted.
    unmanaged: list[str] = []
    forget: list[str] = []
    gone_candidates = sorted((set(live) | set(in_state)) - set(graph.nodes))
    for address in gone_candidates:
        found = live.get(address)
        if found is None:
            forget.append(address)  # in state, already gone from AWS
            continue
        if address not in in_state and not options.destroy and not options.delete_unmanaged:
            unmanaged.append(address)
            continue
        if address in in_state or address in known_deps:
            deps_of = set(in_state[address].depends_on if address in in_state else ())
            deps_of |= known_deps.get(address, set())
        else:  # no state and no spec knows it: infer its order from the AWS ids it refers to
            deps_of = _inferred_deps(found, live)
        old_deps = tuple(sorted(deps_of))
        protected = found.kind in protected_kinds
        snapshot = protected and _snapshot_first(rules.get(found.kind, KindRules()), options)
        if protected and not options.allow_data_loss and not snapshot:
            refused.append(
                f"{address} ({found.id}) holds data and was kept; "
                "deleting it needs an explicit flag (--include-data)"
            )
            kept = _kept(found, rules.get(found.kind, KindRules()), old_deps) if options.destroy else None
            if kept is not None:
                changes.append(kept)
            continue
        # a destroy needs no reason: "will be destroyed" says it all
        reason = ("" if options.destroy else "is no longer in the spec"
                  if address in in_state else "is unmanaged (--delete-unmanaged)")
        if snapshot:
            first = "a final snapshot is taken first"
            reason = f"{reason} ({first})" if reason else first
        changes.append(
            Change(address, found.kind, DELETE, reason, found.props, None, None, (), (), old_deps,
                   found.id, found.attrs, protected, final_snapshot=snapshot)
        )

    if blocked and not options.report_only:  # whatever the targets: a dependent may name it by value
        raise PlanError(blocked_message(blocked))
    adopt = [a for a in sorted(graph.nodes) if a in live and a not in in_state]
    targets: tuple[str, ...] = ()
    if options.targets:
        keep = _targeted(options.targets, graph, set(live) | set(in_state), known_deps, in_state,
                         options.destroy)
        changes = [c for c in changes if c.address in keep]
        forget = [a for a in forget if a in keep]
        unmanaged = [a for a in unmanaged if a in keep]
        adopt = [a for a in adopt if a in keep]
        refused = [r for r in refused if r.split(" ", 1)[0] in keep]
        targets = tuple(sorted(keep))
    drift = None if options.destroy else detect(state, live, options.ignore, cluster=cluster,
                                                desired=afters)
    rolling, rolling_notes = ((), ()) if options.destroy else rolling_order(changes)
    upgrade: Upgrade | None = None
    upgrade_notes: tuple[str, ...] = ()
    if proton is not None and not options.destroy and not options.report_only:
        upgrade, upgrade_notes = detect_upgrade(state.facts if state else {}, proton,
                                                replaced_nodes(changes), backup=not options.no_backup,
                                                allow_major=options.allow_major)
        if upgrade is not None and not rolling:  # the nodes go together: no gate between them
            upgrade_notes = (*upgrade_notes[:-1], (
                "the nodes are replaced together (see above), so apply cannot ask each node for its "
                "version before the next goes: ask them afterwards (SELECT version() on each node)."))
    return Plan(
        cluster=cluster,
        lineage=state.lineage if state else None,
        serial=state.serial if state else 0,
        spec_digest=spec_digest,
        spec_source=spec_source,
        spec_overrides=spec_overrides,
        changes=tuple(changes),
        destroy=options.destroy,
        forget=tuple(forget),
        unmanaged=tuple(unmanaged),
        refused=tuple(refused),
        region=region,
        notes=(*notes, *rolling_notes, *upgrade_notes),
        facts=dict(facts or {}),
        adopt=tuple(adopt),
        targets=targets,
        drift=drift,
        rolling=rolling,
        upgrade=upgrade,
    )


def _matching(patterns: Iterable[str], addresses: set[str], flag: str) -> set[str]:
    """The addresses each pattern names (exactly, or ``kind.name`` for every key); a pattern
    that names nothing is an error."""
    out: set[str] = set()
    for pattern in patterns:
        hits = {a for a in addresses if a == pattern or a.split("[", 1)[0] == pattern}
        if not hits:
            raise PlanError(
                f"{flag} {pattern}: no resource of this cluster has this address; "
                "`byoc state list SPEC` and `byoc graph SPEC` show the addresses"
            )
        out |= hits
    return out


def _targeted(
    targets: Iterable[str],
    graph: nx.DiGraph,
    existing: set[str],
    known_deps: Mapping[str, set[str]],
    in_state: Mapping[str, Any],
    destroy: bool,
) -> set[str]:
    """The targets with what they depend on (or, when destroying, what depends on them)."""
    chosen = _matching(targets, set(graph.nodes) | existing | set(known_deps), "-target")
    keep = set(chosen)
    if not destroy:
        for a in chosen:
            if a in graph:
                keep |= nx.ancestors(graph, a)
        return keep
    users: dict[str, set[str]] = {}
    for a in existing | set(known_deps):
        deps = set(known_deps.get(a, set())) | set(in_state[a].depends_on if a in in_state else ())
        for d in deps:
            users.setdefault(d, set()).add(a)
    todo = list(chosen)
    while todo:
        for u in users.get(todo.pop(), set()) - keep:
            keep.add(u)
            todo.append(u)
    return keep


def hash_props(props: Mapping[str, Any], hashed: frozenset[str]) -> dict[str, Any]:
    """``props`` with each hashed prop replaced by ``sha256:<hex>`` of its text (when known)."""
    out = dict(props)
    for name in hashed:
        value = out.get(name)
        if isinstance(value, str) and not value.startswith("sha256:"):
            out[name] = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return out


def _compare(
    r: Resource,
    found: Live,
    after: Mapping[str, Any],
    deps: tuple[str, ...],
    old_deps: tuple[str, ...],
    rules: KindRules,
    is_protected: bool,
    options: PlanOptions,
    blocked: list[Blocked],
    force_replace: bool = False,
) -> Change:
    """Decide no-op, update or replace for a desired resource that exists. A protected resource
    that would be replaced without consent is added to ``blocked`` (the plan is then an error)."""
    attrs = _shrinks(_attr_changes(found.props, after, rules.force_new, rules.pins), rules.grow_only)

    forcing = [a.name for a in attrs if a.forces_replacement]
    snapshot = bool(forcing) and is_protected and _snapshot_first(rules, options)

    def change(action: str, reason: str) -> Change:
        return Change(r.address, r.kind, action, reason, found.props, after, r.props, attrs,
                      deps, old_deps, found.id, found.attrs, is_protected,
                      final_snapshot=snapshot and action == REPLACE)

    if snapshot:
        return change(REPLACE, f"{', '.join(forcing)} cannot be changed in place "
                      "(a final snapshot of the old one is taken first)")
    if is_protected and not options.allow_data_loss and (forcing or force_replace):
        blocked.append(Blocked(r.address, r.kind, found.id,
                               tuple(a for a in attrs if a.forces_replacement), not forcing))
        return change(NOOP, "replacement refused: holds data")
    if force_replace and not forcing:
        return change(REPLACE, "replacement requested with -replace")
    if forcing:
        return change(REPLACE, f"{', '.join(forcing)} cannot be changed in place")
    if attrs:
        return change(UPDATE, f"{', '.join(a.name for a in attrs)} changed")
    return change(NOOP, "up to date")


def _shrinks(attrs: tuple[AttrChange, ...], grow_only: frozenset[str]) -> tuple[AttrChange, ...]:
    """``attrs`` with a decrease of a grow-only prop marked as forcing replacement."""
    def smaller(a: AttrChange) -> bool:
        return (a.name in grow_only and isinstance(a.before, int | float)
                and isinstance(a.after, int | float) and a.after < a.before)
    return tuple(dataclasses.replace(a, forces_replacement=True) if smaller(a) else a for a in attrs)


def _snapshot_first(rules: KindRules, options: PlanOptions) -> bool:
    """Whether a protected resource may go because a final snapshot keeps its data."""
    return options.final_snapshots and rules.snapshots and not options.allow_data_loss


def _kept(found: Live, rules: KindRules, old_deps: tuple[str, ...]) -> Change | None:
    """The update that a resource destroy keeps gets first (its ``kept_resets``), or None. Its old
    dependencies order it before the deletes of what those settings name."""
    after = {**found.props, **{name: value for name, value in rules.kept_resets if name in found.props}}
    attrs = _attr_changes(found.props, after, frozenset())
    if not attrs:
        return None
    names = ", ".join(a.name for a in attrs)
    return Change(found.address, found.kind, UPDATE,
                  f"holds data and is kept; {names} removed first (it names what destroy deletes)",
                  found.props, after, after, attrs, (), old_deps, found.id, found.attrs, True)


def _inferred_deps(found: Live, live: Mapping[str, Live]) -> set[str]:
    """What a live resource refers to by AWS id (ordering for resources no state remembers)."""
    ids = {other.id: other.address for other in live.values() if other.address != found.address}
    out: set[str] = set()

    def scan(v: Any) -> None:
        if isinstance(v, str) and v in ids:
            out.add(ids[v])
        elif isinstance(v, Mapping):
            for x in v.values():
                scan(x)
        elif isinstance(v, list | tuple):
            for x in v:
                scan(x)

    scan({k: v for k, v in found.props.items() if k != "tags"})
    return out


def _attr_changes(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    force_new: frozenset[str],
    pins: frozenset[str] = frozenset(),
) -> tuple[AttrChange, ...]:
    out = []
    for name in sorted(after):
        b = before.get(name)
        a = after[name]
        if contains_unknown(a):
            out.append(AttrChange(name, b, a, name in force_new | pins and bool(before)))
            continue
        if name in before and canonical_json(a) == canonical_json(b):
            continue
        if not before:
            out.append(AttrChange(name, None, a))
            continue
        out.append(AttrChange(name, b, a, name in force_new, _detail(b, a)))
    return tuple(out)


def _detail(before: Any, after: Any) -> tuple[str, ...]:
    """deepdiff's view of what changed inside one attribute (for lists of rules, tag maps …)."""
    if not isinstance(before, dict | list) or not isinstance(after, dict | list):
        return ()
    from deepdiff import DeepDiff

    diff = DeepDiff(before, after, ignore_order=True, verbose_level=2)
    lines = []
    for kind, entries in diff.items():
        items = entries.items() if isinstance(entries, dict) else ((e, None) for e in entries)
        for path, value in items:
            lines.append(f"{kind}: {path}" + (f" = {value!r}" if value is not None else ""))
    return tuple(sorted(lines))
