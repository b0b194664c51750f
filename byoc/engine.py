"""The engine: one cluster's spec, state store, AWS context and kinds, wired into plan and apply.

This is the layer the CLI and the Python API share. It does I/O (state files, AWS) but no
terminal output: progress leaves as events. Below it, and never importing it: the toolbox, the
executor, the planner and plan, the blueprint, the state stores, discovery and the resource kinds
(docs/architecture.md; tests/test_layers.py keeps it so).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from byoc import blueprint, toolbox
from byoc.aws.context import AwsContext
from byoc.aws.gate import CallGate
from byoc.aws.tags import account_id
from byoc.blueprint import Facts
from byoc.blueprint.rotation import PACKAGE, package_zip
from byoc.discover import discover
from byoc.drift import DriftReport, IgnoreRule
from byoc.errors import AdoptError, ByocError, PlanError, StateError
from byoc.executor import ApplyResult, Event, Executor, guarded
from byoc.model import DEFAULT_PARALLELISM, Live, parse_address
from byoc.outputs import outputs_of
from byoc.plan import Plan
from byoc.planner import PlanOptions, make_plan, rules_of
from byoc.resources.base import ResourceType
from byoc.resources.lambda_function import register_package
from byoc.resources.s3_bucket import BUCKET_ADDRESS, LOGS_ADDRESS, S3Bucket
from byoc.spec import Spec
from byoc.state.base import Backend
from byoc.state.local import LocalBackend
from byoc.state.model import ResourceState, State
from byoc.upgrade import IMAGE_FACT, ROLLING_FACT, VERSION_FACT

#: the code byoc deploys as Lambda functions (the password rotation's zip)
register_package(PACKAGE, package_zip)


def credentials_for(spec: Spec) -> Any:
    """The credentials of the spec's ``aws.assume_role`` (refreshed, fetched on first use), or None
    for the caller's own."""
    from byoc.aws.credentials import AssumeRole, assumed_credentials

    role = AssumeRole.of_spec(spec.data["aws"], spec.cluster_name)
    return None if role is None else assumed_credentials(role, spec.region)


def backend_for(spec: Spec, state_dir: str | Path | None = None, kind: str | None = None,
                credentials: Any = None, client_maker: Any = None, gate: CallGate | None = None) -> Backend:
    """The state store the spec asks for (``kind`` overrides ``state.backend``, for migrations). An
    S3 state is read with ``credentials`` (by default the spec's assumed role, as the cluster); in a
    fleet, through its shared clients (``client_maker``) and its call ``gate``."""
    conf = spec.data.get("state") or {}
    kind = kind or conf.get("backend", "local")
    if kind == "s3":
        from byoc.state.s3 import S3Backend

        if not conf.get("bucket"):
            raise StateError(f"{spec.source}: state.bucket is needed for the s3 backend")
        ctx = AwsContext(cluster=spec.cluster_name, region=conf.get("region") or spec.region,
                         credentials=credentials or credentials_for(spec), client_maker=client_maker)
        ctx.gate = gate
        return S3Backend(
            ctx.client, bucket=conf["bucket"], cluster=spec.cluster_name, key=conf.get("key"),
            lock_table=conf.get("dynamodb_table") if conf.get("lock") == "dynamodb" else None,
            unlock_hint=f"byoc force-unlock {spec.source}",
        )
    return LocalBackend(state_dir or conf.get("path") or "state", spec.cluster_name)


def state_location(backend: Backend) -> str:
    """Where the state lives, as the plan's first line shows it: a relative local path with the
    directory it resolves to (it is relative to the working directory, as in Terraform)."""
    if isinstance(backend, LocalBackend):
        if backend.path.is_absolute():
            return f"{backend.path} (local)"
        return f"{backend.path} (local: {backend.path.absolute()})"
    return f"{backend.describe()} ({backend.kind})"


@dataclasses.dataclass(frozen=True)
class UpgradeSteps:
    """What an upgrade plan (``plan.upgrade``) needs around its roll, from the layer above the
    engine (``byoc.operations.upgrading.upgrade_steps``): ``backup(plan)`` before anything changes
    (says what it took; raises ByocError to stop the apply), and ``check(node, instance_id)`` once
    each node is healthy (says what it found; raises CloudError to stop the roll)."""

    backup: Callable[[Plan], str]
    check: Callable[[str, str], str]


class Engine:
    """Plan and apply one cluster. ``kinds`` and ``ctx`` are injectable for tests."""

    def __init__(
        self,
        spec: Spec,
        *,
        kinds: Mapping[str, ResourceType] | None = None,
        ctx: Any = None,
        backend: Backend | None = None,
        parallelism: int = DEFAULT_PARALLELISM,
        ami_resolver: Callable[[str], str] | None = None,
        health_timeout: float = 900.0,
        adopt: bool = False,
        upgrade_steps: UpgradeSteps | None = None,
    ) -> None:
        self.spec = spec
        #: an upgrade plan's backup and version check (an upgrade plan is refused without them)
        self.upgrade_steps = upgrade_steps
        #: take over a cluster that AWS has but no state knows (``--adopt``; see ``plan``)
        self.adopt = adopt
        #: rolling changes: how long a replaced node may take to pass the health checks
        self.health_timeout = health_timeout
        self._ami_resolver = ami_resolver
        if kinds is None:
            from byoc.resources import registry

            kinds = registry()
        self.kinds = kinds
        self.parallelism = parallelism
        credentials = credentials_for(spec) if ctx is None else getattr(ctx, "credentials", None)
        self.ctx = ctx if ctx is not None else AwsContext(
            cluster=spec.cluster_name, region=spec.region, parallelism=parallelism, credentials=credentials
        )
        self.backend = backend or backend_for(spec, credentials=credentials)

    # -- reading -------------------------------------------------------------------------------
    def state(self) -> State | None:
        return self.backend.read()

    def refresh(self, state: State | None = None, *, audit: bool = True) -> dict[str, Live]:
        """What the cluster owns in AWS now. A full ``audit`` (drift, refresh, ``--delete-unmanaged``,
        destroy) lets every kind list all it can find (strangers under the cluster's IAM path,
        extra inline policies); otherwise kinds that can read by name (IAM) read just the names
        the spec and ``state`` give them (see ``expected_names``)."""
        if isinstance(self.ctx, AwsContext):
            self.ctx.known = None if audit else self.expected_names(state)
        live = discover(self.kinds, self.ctx, self.parallelism)
        return live | self._untagged_buckets(state, live)

    def _untagged_buckets(self, state: State | None, live: Mapping[str, Live]) -> dict[str, Live]:
        """Buckets under the names the spec and the state give them that carry no tags, which the
        tagging index cannot see: ours by the bucket kind's rule (a run killed before tagging)."""
        kind = self.kinds.get("aws_s3_bucket")
        if not isinstance(kind, S3Bucket) or not isinstance(self.ctx, AwsContext):
            return {}
        seen = {x.id for x in live.values() if x.kind == kind.kind}
        storage = self.spec.data["storage"]
        names = {BUCKET_ADDRESS: str(storage["bucket_name"]),
                 LOGS_ADDRESS: str(storage["access_logs"]["bucket_name"])}
        names |= {a: rs.id for a, rs in (state.resources.items() if state else ()) if rs.kind == kind.kind}
        wanted = {a: n for a, n in names.items() if a not in live and n not in seen}
        return {x.address: x for x in kind.find_untagged(self.ctx, wanted)} if wanted else {}

    def expected_names(self, state: State | None) -> dict[str, dict[str, frozenset[str]]]:
        """The names the blueprint gives the kinds that read by name, plus the ids (and a role's
        inline policy names) the state records for those kinds: kind → name → part names."""
        known = {kind: dict(names) for kind, names in blueprint.known_names(self.spec).items()}
        for rs in state.resources.values() if state else ():
            if rs.kind in known:
                parts = frozenset(rs.props.get("inline_policies") or ())
                known[rs.kind][rs.id] = known[rs.kind].get(rs.id, frozenset()) | parts
        return known

    def facts(
        self,
        state: State | None,
        live: Mapping[str, Live],
        update_ami: bool = False,
        restore: Mapping[str, tuple[str, str]] | None = None,
    ) -> Facts:
        """What the blueprint cannot know: the AMI (see ``_ami``), the AZ of every node whose
        data volume exists (a volume cannot move, so its node stays with it) and the snapshot it
        was created from (a create-time fact, never a reason to replace it). ``restore`` (node key
        → (snapshot id, AZ), from a backup) replaces the snapshots, and places nodes that have no
        volume yet in the backup's AZ. And the account (from STS, once per context)."""
        volumes = {key: x for x in live.values()
                   if x.kind == "aws_ebs_volume" and (key := parse_address(x.address)[2]) is not None}
        node_azs = {k: str(v.props["availability_zone"]) for k, v in volumes.items()
                    if v.props.get("availability_zone")}
        snapshots = {k: str(v.props["snapshot_id"]) for k, v in volumes.items() if v.props.get("snapshot_id")}
        for key, (snapshot_id, az) in (restore or {}).items():
            snapshots[key] = snapshot_id
            node_azs.setdefault(key, az)
        account = account_id(self.ctx) if isinstance(self.ctx, AwsContext) else Facts.account
        return Facts(ami=self._ami(state, live, update_ami), node_azs=tuple(sorted(node_azs.items())),
                     node_snapshots=tuple(sorted(snapshots.items())), account=account)

    def _ami(self, state: State | None, live: Mapping[str, Live], update_ami: bool) -> str:
        """The spec's AMI, else the one pinned in state, else the one running nodes use, else
        today's Amazon Linux 2023 (resolved once, then pinned). ``update_ami`` skips the pins and
        resolves afresh (new nodes, and replacement of the running ones)."""
        compute = self.spec.data["compute"]
        if compute.get("ami"):
            return str(compute["ami"])
        itype = compute["instance_type"]
        if not update_ami:
            pinned = (state.facts if state else {}).get("ami")
            if pinned and (state.facts if state else {}).get("ami_instance_type") == itype:
                return str(pinned)
            running = Counter(str(x.props["ami"]) for x in live.values()
                              if x.kind == "aws_instance" and x.props.get("instance_type") == itype)
            if running:
                return running.most_common(1)[0][0]
        return self._resolve_ami(itype)

    def _resolve_ami(self, instance_type: str) -> str:
        if self._ami_resolver is not None:
            return self._ami_resolver(instance_type)
        from byoc.resources.ami import resolve_ami

        return resolve_ami(self.ctx, instance_type)

    def notes(self) -> tuple[str, ...]:
        count = self.spec.instance_count
        if count > 1:
            return (
                f"open-source Proton is single-node: these {count} nodes are {count} independent "
                "Proton servers behind one load balancer, not a replicated cluster. Each keeps its own "
                "streams, views and data; sticky sessions (load_balancer.sticky_sessions) keep a "
                "client on one node. Ingest into every node (e.g. from one Kafka topic) if all must "
                "answer the same queries.",
            )
        return ()

    def plan(
        self,
        options: PlanOptions | None = None,
        *,
        update_ami: bool = False,
        restore: Mapping[str, tuple[str, str]] | None = None,
    ) -> Plan:
        """Read state, discover what exists, and compare with the spec. ``restore`` (node key →
        (snapshot id, AZ)) plans data volumes created from a backup's snapshots (see ``facts``)."""
        state = self.state()
        # only a plan that deletes what is not in the state must find every stranger
        audit = options is not None and (options.delete_unmanaged or options.destroy)
        plan = self._plan(state, self.refresh(state, audit=audit), options, update_ami, restore)
        if state is None and not self.adopt:
            self._refuse_takeover(plan)
        return dataclasses.replace(plan, state_location=state_location(self.backend))

    def _refuse_takeover(self, plan: Plan) -> None:
        """No state, yet AWS has this cluster (resources with its tags that the plan would adopt
        or delete): the state is elsewhere. Refused unless ``adopt`` (--adopt). A crashed run
        always leaves a state (``apply`` writes one before its first create), so crash recovery
        never comes here."""
        taken = sorted(set(plan.adopt) | {c.address for c in plan.changes if c.prior_id is not None})
        if not taken:
            return
        ids = {c.address: c.prior_id for c in plan.changes if c.prior_id is not None}
        shown = ", ".join(f"{a} ({ids[a]})" if ids.get(a) else a for a in taken[:3])
        more = f" and {len(taken) - 3} more" if len(taken) > 3 else ""
        raise AdoptError(
            f"no state for cluster {self.spec.cluster_name} at {state_location(self.backend)}, "
            f"but it is already deployed in {self.spec.region}: {len(taken)} resource(s) carry "
            f"its byoc:cluster tag or the names its spec gives ({shown}{more}). byoc will not "
            "take a deployed cluster into a new, empty state: that would make two states and two "
            "locks for one cluster. Likely cause: its state is elsewhere: byoc ran from another "
            "directory (a relative state.path, and the default state/, is relative to the working "
            "directory), or on another machine (share the state with the S3 backend, "
            "state.backend: s3). Run from the directory that holds the state, or point state.path "
            "at it. To take the cluster over into this state on purpose, run again with --adopt; "
            "likewise if a first `byoc apply` of this cluster was interrupted before it saved any "
            "state, run again with --adopt."
        )

    def drift(self) -> DriftReport:
        """What changed in AWS since byoc last applied (see byoc.drift); changes nothing."""
        report = self._plan(self.state(), self.refresh(), PlanOptions(report_only=True), False).drift
        assert report is not None
        return report

    def refresh_state(self) -> tuple[State, DriftReport]:
        """Record what AWS has now in the state (takes the lock); AWS is not changed."""
        return toolbox.refresh_state(self)

    def import_resource(self, address: str, aws_id: str) -> ResourceState:
        """Start managing an existing AWS resource as ``address`` (takes the lock)."""
        return toolbox.import_resource(self, address, aws_id)

    def _plan(
        self,
        state: State | None,
        live: Mapping[str, Live],
        options: PlanOptions | None,
        update_ami: bool,
        restore: Mapping[str, tuple[str, str]] | None = None,
    ) -> Plan:
        options = options or PlanOptions()
        if not options.ignore:
            options = dataclasses.replace(options, ignore=IgnoreRule.from_spec(self.spec.data))
        facts = Facts() if options.destroy else self.facts(state, live, update_ami, restore)
        return make_plan(
            blueprint.build(self.spec, facts),
            state,
            live,
            rules_of(self.kinds),
            cluster=self.spec.cluster_name,
            spec_digest=self.spec.digest,
            spec_source=self.spec.source,
            spec_overrides=self.spec.overrides,
            region=self.spec.region,
            options=options,
            notes=() if options.destroy else self.notes(),
            facts={} if options.destroy else {
                "ami": facts.ami, "ami_instance_type": self.spec.data["compute"]["instance_type"]},
            proton=None if options.destroy else self.proton(),
        )

    def proton(self) -> dict[str, str]:
        """The Proton the spec asks the nodes to run: ``{"version", "image"}``."""
        cluster = self.spec.data["cluster"]
        return {"version": str(cluster["proton_version"]), "image": str(cluster["image"])}

    # -- writing -------------------------------------------------------------------------------
    def check_fresh(self, plan: Plan) -> None:
        """Refuse a saved plan that no longer matches the state or the spec."""
        if plan.cluster != self.spec.cluster_name:
            raise PlanError(f"the plan is for cluster {plan.cluster!r}, not {self.spec.cluster_name!r}")
        if plan.spec_digest != self.spec.digest:
            raise PlanError(
                f"the spec {self.spec.source} has changed since this plan was made; "
                "run `byoc plan` again"
            )
        state = self.state()
        lineage = state.lineage if state else None
        serial = state.serial if state else 0
        if (plan.lineage is not None and plan.lineage != lineage) or plan.serial != serial:
            raise PlanError(
                f"the plan is stale: it was made against state serial {plan.serial}"
                f"{'' if plan.lineage is None else ' of lineage ' + plan.lineage}, but the state is "
                f"now at serial {serial}; run `byoc plan` again"
            )

    def apply(
        self,
        plan: Plan,
        *,
        on_event: Callable[[Event], None] = lambda e: None,
        recheck: bool = False,
        cancel: threading.Event | None = None,
    ) -> ApplyResult:
        """Carry out a plan; the caller holds the lock. State is saved after every operation.
        Setting ``cancel`` stops new operations from starting (see ``Executor.cancel``)."""
        state = self.state()
        if state is None:
            # a state (of a new lineage) before the first AWS call: a run killed at any later
            # point leaves one, so the next run recovers by adopting (see ``_refuse_takeover``)
            state = State.new(self.spec.cluster_name).bumped()
            guarded(self.backend.write)(state)
        node_check = self._before_upgrade(plan, on_event)
        facts = {**state.facts, **plan.facts}
        if plan.upgrade is not None:  # until every node runs it, some may run either version
            facts[ROLLING_FACT] = plan.upgrade.to_version
        if plan.facts and dict(state.facts) != facts:
            state = state.with_facts(facts).bumped()
            guarded(self.backend.write)(state)
        executor = Executor(
            self.kinds, self.ctx, state, self.backend.write,
            parallelism=self.parallelism, on_event=on_event, recheck=recheck,
            health_timeout=self.health_timeout, cancel=cancel, node_check=node_check,
        )
        result = executor.run(plan)
        done = result.state
        outputs = outputs_of({a: r.to_live() for a, r in done.resources.items()})
        if outputs != dict(done.outputs):
            done = done.with_outputs(outputs)
        running = {VERSION_FACT: self.proton()["version"], IMAGE_FACT: self.proton()["image"]}
        if result.ok and not plan.destroy and not plan.targets and (ROLLING_FACT in done.facts or any(
                done.facts.get(k) != v for k, v in running.items())):
            # every node now runs the spec's Proton (a partial or targeted apply keeps the old record,
            # so the next plan is still an upgrade from what some nodes run)
            kept = {k: v for k, v in done.facts.items() if k != ROLLING_FACT}
            done = done.with_facts({**kept, **running})
        if done is not result.state:
            executor.save(done)
            result.state = executor.state
        return result


    def refuse_upgrade_without_steps(self, plan: Plan) -> None:
        """An upgrade plan needs the backup and version check (``upgrade_steps``) that only apply
        sets up: scale and restore call this right after planning, before they ask anything."""
        if plan.upgrade is not None and self.upgrade_steps is None:
            raise PlanError(
                f"this plan upgrades the nodes ({plan.upgrade.label}: cluster.proton_version or "
                "cluster.image changed), which only `byoc apply` (or byoc.Cluster.apply) does: it takes "
                "a backup first and checks each node's version. Run `byoc apply SPEC` first"
            )

    def _before_upgrade(
        self, plan: Plan, on_event: Callable[[Event], None]
    ) -> Callable[[str, str], str] | None:
        """An upgrade plan: the backup, before anything changes (a failed one stops the apply with
        nothing changed); the version check for the roll's nodes."""
        up = plan.upgrade
        if up is None:
            return None
        self.refuse_upgrade_without_steps(plan)
        steps = self.upgrade_steps
        assert steps is not None
        if up.backup:
            on_event(Event("start", "backup", "backup"))
            started = time.monotonic()
            try:
                message = steps.backup(plan)
            except ByocError as exc:
                on_event(Event("failed", "backup", "backup", time.monotonic() - started, message=str(exc)))
                raise ByocError(
                    f"the backup before the upgrade {up.label} failed, so nothing was changed: {exc}\n"
                    "Fix the cause and apply again, or apply with --no-backup (also with a saved plan) "
                    "to upgrade without a backup."
                ) from exc
            on_event(Event("done", "backup", "backup", time.monotonic() - started, message=message))
            on_event(Event("note", "backup", "backup", message=message))
        return steps.check


def read_plan_file(path: str | Path) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: cannot read the plan file: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}: not a byoc plan file (invalid JSON: {exc})") from exc
    return Plan.from_dict(data, source=str(path))
