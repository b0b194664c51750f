"""The state toolbox: forget, move, import and refresh state records without changing what byoc
manages in AWS (apart from ownership tags when importing or moving), and put a local backup back in
place. Every write takes the lock, bumps the serial and keeps the previous state as the backup.

It stands just below the engine (docs/architecture.md), and above the executor, the plan, the
blueprint, the state stores and the resource kinds: its functions take anything shaped like
``EngineLike`` (``byoc.engine.Engine`` is one), and the engine's ``refresh_state`` and
``import_resource`` call them; the toolbox never imports the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from byoc import blueprint
from byoc.aws.errors import is_not_found, to_cloud_error
from byoc.drift import DriftReport, detect
from byoc.errors import ByocError, StateError
from byoc.model import parse_address
from byoc.state.model import ResourceState, State

if TYPE_CHECKING:
    from byoc.blueprint import Facts
    from byoc.model import Live
    from byoc.resources.base import ResourceType
    from byoc.spec import Spec
    from byoc.state.base import Backend


class EngineLike(Protocol):
    """What the toolbox needs of an engine: the spec, the state store, the kinds and the AWS
    context, and the engine's reading of state, of AWS and of the blueprint's facts."""

    @property
    def spec(self) -> Spec: ...

    @property
    def backend(self) -> Backend: ...

    @property
    def kinds(self) -> Mapping[str, ResourceType]: ...

    @property
    def ctx(self) -> Any: ...

    def state(self) -> State | None: ...

    def refresh(self) -> Mapping[str, Live]: ...

    def facts(self, state: State | None, live: Mapping[str, Live]) -> Facts: ...


def _address(address: str) -> str:
    try:
        parse_address(address)
    except ValueError as exc:
        raise ByocError(str(exc)) from None
    return address


def _existing(engine: EngineLike) -> State:
    state = engine.state()
    if state is None:
        raise StateError(f"no state for cluster {engine.spec.cluster_name} ({engine.backend.describe()}): "
                         "nothing has been applied")
    return state


def _missing(state: State, address: str) -> StateError:
    return StateError(f"{address} is not in the state of cluster {state.cluster}; "
                      "`byoc state list SPEC` shows what is")


def state_rm(engine: EngineLike, addresses: Iterable[str]) -> list[ResourceState]:
    """Forget resources (never deletes them in AWS). They keep byoc's tags, so drift lists them as
    unmanaged and the next apply adopts them again if the spec still wants them."""
    with engine.backend.lock("state rm"):
        state = _existing(engine)
        gone = []
        for address in addresses:
            if _address(address) not in state.resources:
                raise _missing(state, address)
            gone.append(state.resources[address])
            state = state.without(address)
        engine.backend.write(state.bumped())
    return gone


def state_mv(engine: EngineLike, src: str, dst: str) -> ResourceState:
    """Record the resource at ``src`` as ``dst`` (same kind), re-tagging it in AWS so that
    discovery finds it at the new address."""
    src_kind, dst_kind = parse_address(_address(src))[0], parse_address(_address(dst))[0]
    if src_kind != dst_kind:
        raise ByocError(f"cannot move {src} to {dst}: a {src_kind} can only move to a {src_kind} address")
    with engine.backend.lock("state mv"):
        state = _existing(engine)
        if src not in state.resources:
            raise _missing(state, src)
        if dst in state.resources:
            raise StateError(f"cannot move {src} to {dst}: {dst} is already in the state "
                             f"({state.resources[dst].id}); `byoc state rm` it first")
        old = state.resources[src]
        kind = engine.kinds.get(old.kind)
        if kind is None:
            raise StateError(f"{src}: unknown resource kind {old.kind}")
        try:
            kind.claim(engine.ctx, old.id, dst)
        except Exception as exc:
            raise to_cloud_error(exc, dst, old.id) from exc
        moved = ResourceState(dst, old.kind, old.id, old.props, old.attrs, old.depends_on)
        engine.backend.write(state.without(src).with_resource(moved).bumped())
    return moved


def import_resource(engine: EngineLike, address: str, aws_id: str) -> ResourceState:
    """Record the existing AWS resource ``aws_id`` as ``address``, which the spec must describe.
    The resource is read through its kind (and tagged as the cluster's, for EC2 kinds)."""
    _address(address)
    state = engine.state()
    live = engine.refresh()
    desired = {r.address: r for r in blueprint.build(engine.spec, engine.facts(state, live))}
    if address not in desired:
        kind = parse_address(address)[0]
        similar = sorted(a for a in desired if a.startswith(kind + "."))
        raise ByocError(
            f"{address}: the spec {engine.spec.source} describes no resource with this address"
            + (f"; its {kind} addresses are: {', '.join(similar)}" if similar else
               f" (it has no {kind} at all)")
        )
    kind_name: str = desired[address].kind
    kind_type = engine.kinds.get(kind_name)
    if kind_type is None:
        raise ByocError(f"{address}: byoc cannot import a {kind_name} (no such resource kind)")
    with engine.backend.lock("import"):
        state = engine.state() or State.new(engine.spec.cluster_name)
        if address in state.resources:
            raise StateError(f"{address} is already managed ({state.resources[address].id}); "
                             "`byoc state rm` it first to import another resource in its place")
        try:
            found = kind_type.read(engine.ctx, aws_id)
            if found is None or found.address != address:
                kind_type.claim(engine.ctx, aws_id, address)
                found = kind_type.read(engine.ctx, aws_id)
        except Exception as exc:
            if is_not_found(exc):
                found = None
            else:
                raise to_cloud_error(exc, address, aws_id) from exc
        if found is None:
            raise ByocError(f"{address}: no {kind_name} with id {aws_id} was found in {engine.spec.region}")
        record = ResourceState(address, kind_name, found.id, dict(found.props), dict(found.attrs),
                               tuple(sorted(desired[address].dependencies())))
        engine.backend.write(state.with_resource(record).bumped())
    return record


def refresh_state(engine: EngineLike) -> tuple[State, DriftReport]:
    """Update the recorded attributes of every state resource from AWS and forget the ones that
    are gone; AWS is not changed and unmanaged resources are not added (apply adopts them)."""
    with engine.backend.lock("refresh"):
        state = _existing(engine)
        live = engine.refresh()
        report = detect(state, live, cluster=state.cluster)
        new = state
        for address, rs in state.resources.items():
            found = live.get(address)
            if found is None:
                new = new.without(address)
                continue
            props = {k: found.props.get(k) for k in rs.props}
            new = new.with_resource(ResourceState(address, rs.kind, found.id, props, dict(found.attrs),
                                                  rs.depends_on))
        if new != state:
            new = new.bumped()
            engine.backend.write(new)
    return new, report


def restore_backup(engine: EngineLike, force: bool = False) -> tuple[str, State]:
    """Put the local backup (or the newest valid temporary an interrupted write left) in place of
    the state file, under the lock; refused while a state file exists unless ``force``. Returns
    (the file restored from, the state now in place)."""
    from byoc.state.local import LocalBackend

    backend = engine.backend
    if not isinstance(backend, LocalBackend):
        raise StateError(
            f"{backend.describe()}: restore-backup is for the local backend; the S3 backend keeps "
            "every earlier state as an object version (aws s3api list-object-versions, then copy "
            "the version you want back with aws s3api copy-object)"
        )
    with backend.lock("state restore-backup"):
        source, state = backend.restore_backup(force=force)
    return str(source), state


def final_snapshots(engine: EngineLike) -> list[dict[str, str | bool | None]]:
    """Every final snapshot of the cluster (taken before byoc deleted a data volume), from the
    state and from AWS (by tags, so one a killed run never recorded is listed too), oldest first:
    ``snapshot_id, address, node, volume_id, time, state`` (AWS's, or "missing"), ``recorded``
    (in the state) and ``in_aws``."""
    from byoc.resources._snapshots import FINAL_SNAPSHOT_TAG, VOLUME_ID_TAG
    from byoc.resources._snapshots import final_snapshots as in_aws
    from byoc.rolling import node_of

    state = engine.state()
    found: dict[str, dict[str, str | bool | None]] = {}
    for r in state.final_snapshots if state else ():
        sid = r.get("snapshot_id", "")
        found[sid] = {"snapshot_id": sid, "address": r.get("address"), "volume_id": r.get("volume_id"),
                      "time": r.get("time"), "state": "missing", "recorded": True, "in_aws": False}
    try:
        snapshots = in_aws(engine.ctx)
    except Exception as exc:
        raise to_cloud_error(exc) from exc
    for snap in snapshots:
        tags = {str(t["Key"]): str(t["Value"]) for t in snap.get("Tags") or ()}
        sid = str(snap["SnapshotId"])
        entry = found.setdefault(sid, {
            "snapshot_id": sid, "address": tags.get(FINAL_SNAPSHOT_TAG),
            "volume_id": tags.get(VOLUME_ID_TAG) or snap.get("VolumeId"),
            "time": str(snap.get("StartTime") or ""), "recorded": False})
        entry["state"], entry["in_aws"] = str(snap.get("State")), True
    for entry in found.values():
        address = entry.get("address")
        entry["node"] = node_of(address) if isinstance(address, str) else None
    return sorted(found.values(), key=lambda e: (str(e.get("time") or ""), str(e["snapshot_id"])))
