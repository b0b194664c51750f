"""The Python API: ``byoc.Cluster``, one cluster's plan, apply, destroy and day-2 operations.

Each method is a thin layer over the engine or an operations function; the ones that change
the cluster take the state lock as the CLI does. Methods return data (Plan, ApplyResult,
HealthReport, Manifest …) and raise the ``byoc.errors`` tree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from byoc.errors import ApplyError

if TYPE_CHECKING:
    from byoc.drift import DriftReport
    from byoc.engine import Engine
    from byoc.executor import ApplyResult, Event
    from byoc.iampolicy import DeployerPolicy
    from byoc.operations.backup import BackupInfo, Manifest, PruneResult
    from byoc.operations.health import HealthReport, Prober
    from byoc.operations.logs import LogEvent
    from byoc.operations.metrics import MetricsReport
    from byoc.operations.query import QueryOutcome
    from byoc.operations.rotate import RotationResult
    from byoc.operations.scale import ScaleResult
    from byoc.plan import Plan
    from byoc.spec import Spec


class Cluster:
    """One cluster, from a spec file or a dict. For example::

        c = Cluster.from_spec("specs/dev.yaml", overrides=["compute.instance_count=2"])
        c.apply()                       # plan and apply (no confirmation: the call is the approval)
        c.health().status               # "healthy" or "degraded"
        c.logs(since="15m")             # the nodes' log lines, interleaved by time
        c.metrics(since="24h")          # per node CPU, memory, disk, network, Proton's metrics
        backup = c.backup()             # snapshots + manifest in S3
        c.restore(backup.backup_id)     # data volumes replaced from the snapshots
        c.scale(3)                      # nodes added in the next AZs (removed: final snapshots)
        c.drift().in_sync               # changed outside byoc?
        c.query("SELECT version()")     # SQL on a node through SSM (table mode)
        c.rotate_password()             # a new admin password, node by node

    ``engine_options`` go to ``byoc.engine.Engine`` (``ctx``, ``backend``, ``parallelism`` …).
    """

    def __init__(
        self,
        spec: Spec,
        *,
        on_event: Callable[[Event], None] | None = None,
        cancel: threading.Event | None = None,
        **engine_options: Any,
    ) -> None:
        from byoc.engine import Engine

        self.spec = spec
        self.engine: Engine = Engine(spec, **engine_options)
        self.on_event = on_event or (lambda e: None)
        #: set it (from any thread) to stop an apply, destroy, scale or restore gracefully: work in
        #: flight finishes and is recorded, nothing new starts, and ApplyError says "interrupted"
        self.cancel = cancel if cancel is not None else threading.Event()

    @classmethod
    def from_spec(cls, path: str | Path, overrides: Sequence[str] = (), **options: Any) -> Cluster:
        """Load and validate a spec file (``overrides`` as for ``--set``)."""
        from byoc.spec import load_spec

        return cls(load_spec(str(path), overrides), **options)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], name: str = "<dict>", overrides: Sequence[str] = (), **options: Any
    ) -> Cluster:
        """Validate a spec given as plain values; ``name`` is how errors and plans refer to it."""
        from byoc.spec.load import load_spec_dict

        return cls(load_spec_dict(data, overrides, source=name), **options)

    @property
    def name(self) -> str:
        return self.spec.cluster_name

    @contextmanager
    def _locked(self, operation: str) -> Iterator[None]:
        with self.engine.backend.lock(operation):
            yield

    # -- plan / apply / destroy -------------------------------------------------------------
    def plan(
        self, *, destroy: bool = False, include_data: bool = False, update_ami: bool = False,
        adopt: bool = False, no_backup: bool = False, allow_major: bool = False,
    ) -> Plan:
        """What apply (or destroy) would change; nothing is changed. With no state, a cluster
        that AWS already has is refused (AdoptError: its state is elsewhere) unless ``adopt``.
        An upgrade (nodes replaced for a new proton_version or image) takes a backup first unless
        ``no_backup``; a move across major versions is refused (PlanError) unless ``allow_major``."""
        from byoc.planner import PlanOptions

        with self._adopting(adopt):
            return self.engine.plan(
                PlanOptions(destroy=destroy, allow_data_loss=destroy and include_data, no_backup=no_backup,
                            allow_major=allow_major), update_ami=update_ami
            )

    def plan_json(self, plan: Plan, *, pretty: bool = False) -> str:
        """``plan`` as ``byoc plan --json`` prints it (one line, or indented with ``pretty``):
        Terraform's layout with the AWS provider's attribute shapes, for policy tools."""
        from byoc.render import render_plan_json
        from byoc.resources import shaper

        return render_plan_json(plan, shaper(), pretty=pretty)

    @contextmanager
    def _adopting(self, adopt: bool) -> Iterator[None]:
        before = self.engine.adopt
        self.engine.adopt = before or adopt
        try:
            yield
        finally:
            self.engine.adopt = before

    def apply(
        self, plan: Plan | None = None, *, adopt: bool = False, no_backup: bool = False,
        allow_major: bool = False, skip_version_check: bool = False,
    ) -> ApplyResult:
        """Apply ``plan`` (refused if stale), or plan and apply now. Raises ApplyError on failure.
        ``adopt``, ``no_backup``, ``allow_major``: as for ``plan`` (``no_backup`` also drops a given
        plan's backup). An upgrade asks each replaced node's Proton for its version before the next
        node goes, unless ``skip_version_check``."""
        import dataclasses

        from byoc.operations.upgrading import upgrade_steps

        with self._locked("apply"):
            if plan is None:
                plan = self.plan(adopt=adopt, no_backup=no_backup, allow_major=allow_major)
                recheck = False
            else:
                self.engine.check_fresh(plan)
                recheck = True
                if no_backup and plan.upgrade is not None:
                    plan = dataclasses.replace(plan, upgrade=dataclasses.replace(plan.upgrade, backup=False))
            self.engine.upgrade_steps = upgrade_steps(self.engine, skip_version_check=skip_version_check)
            try:
                return self._run(plan, "apply", recheck)
            finally:
                self.engine.upgrade_steps = None

    def destroy(self, include_data: bool = False, *, adopt: bool = False) -> ApplyResult:
        """Delete the cluster; the bucket and data volumes too only with ``include_data``.
        ``adopt``: as for ``plan``."""
        with self._locked("destroy"):
            return self._run(self.plan(destroy=True, include_data=include_data, adopt=adopt), "destroy")

    def _run(self, plan: Plan, what: str, recheck: bool = False) -> ApplyResult:
        result = self.engine.apply(plan, on_event=self.on_event, recheck=recheck,
                                   cancel=self.cancel)
        if not result.ok:
            causes = "; ".join(str(f.error) for f in result.failures) or "interrupted"
            raise ApplyError(f"{what} of cluster {self.name} did not complete: {causes}", result)
        return result

    # -- day 2 ------------------------------------------------------------------------------
    def drift(self) -> DriftReport:
        """What changed in AWS since byoc last applied (modified, missing, unmanaged), minus the
        spec's drift.ignore rules. Read-only: no lock, nothing changed."""
        return self.engine.drift()

    def scale(self, count: int, *, update_spec: bool = True, adopt: bool = False) -> ScaleResult:
        """Plan and apply ``compute.instance_count = count``: new nodes go to the next AZs; removed
        nodes drain, stop, and their data volumes get a final snapshot (``result.snapshots``)
        before they are deleted. With ``update_spec``, a spec file's count is edited in place
        (``spec_line``; ``spec_warning`` says what to change when that was impossible), unless
        the count came from ``overrides``. The cluster object then uses the new count.
        ``adopt``: as for ``plan``."""
        from byoc.operations.scale import apply_scale, counts_overridden, plan_scale, refuse_replaced_data

        update_spec = update_spec and not counts_overridden(self.spec)
        with self._locked("scale"), self._adopting(adopt):
            scale = plan_scale(self.engine, count)
            refuse_replaced_data(scale.plan)
            outcome = apply_scale(scale, on_event=self.on_event, update_spec=update_spec,
                                  cancel=self.cancel)
        if not outcome.result.ok:
            causes = "; ".join(str(f.error) for f in outcome.result.failures) or "interrupted"
            raise ApplyError(f"scale of cluster {self.name} to {count} did not complete: {causes}",
                             outcome.result)
        self.engine = scale.engine
        self.spec = scale.engine.spec
        return outcome

    def health(self, probe: bool = False, prober: Prober | None = None) -> HealthReport:
        """Each node's EC2 and target health, and with ``probe`` Proton's answer through the
        load balancer (``prober`` overrides where it asks). Read-only: no lock."""
        from byoc.operations.health import check_health

        return check_health(
            self.engine.ctx,
            self.engine.state(),
            expected_nodes=self.spec.instance_count,
            probe=probe,
            prober=prober,
        )

    def logs(self, nodes: Sequence[str] | None = None, since: str = "1h", grep: str | None = None,
             bootstrap: bool = False) -> list[LogEvent]:
        """The nodes' log lines since ``since`` (30s, 15m, 1h, 2d or an ISO time), oldest first,
        each with its node; ``grep``: only lines containing that text. Read-only: no lock."""
        from byoc.operations.logs import cluster_logs

        return cluster_logs(self.engine.ctx, self.engine.state(), nodes=list(nodes or []) or None,
                            since=since, grep=grep, bootstrap=bootstrap)

    def metrics(self, since: str = "24h", nodes: Sequence[str] | None = None) -> MetricsReport:
        """Each node's CPU, memory, disk, network and Proton metrics since ``since`` (one batched
        GetMetricData); ``report.to_dict()`` is what ``byoc metrics --json`` prints. Read-only."""
        from byoc.operations.metrics import cluster_metrics_report

        return cluster_metrics_report(self.engine.ctx, self.engine.state(), self.spec.data["monitoring"],
                                      since=since, nodes=list(nodes or []) or None)

    def backup(
        self, *, crash_consistent: bool = False, allow_crash_consistent: bool = False,
        freeze_timeout: int = 60,
    ) -> Manifest:
        """Snapshot every node's data volume and write the manifest; returns it. Each node's data
        filesystem is frozen through SSM while its snapshot starts (``crash_consistent`` skips that;
        ``allow_crash_consistent`` snapshots nodes that cannot be frozen anyway, recorded as such)."""
        from byoc.operations.backup import take_backup

        with self._locked("backup"):
            return take_backup(self.engine.ctx, self.spec, crash_consistent=crash_consistent,
                               allow_crash_consistent=allow_crash_consistent, freeze_timeout=freeze_timeout)

    def backups(self) -> list[BackupInfo]:
        """Every backup of the cluster, oldest first (complete, incomplete or damaged)."""
        from byoc.operations.backup import list_backups

        return list_backups(self.engine.ctx, self.spec)

    def prune_backups(self, now: float | None = None) -> PruneResult:
        """Delete backups older than storage.backups.retention_days, and interrupted ones."""
        from byoc.operations.backup import delete_backups, list_backups, prune_candidates

        with self._locked("prune backups"):
            doomed = prune_candidates(
                list_backups(self.engine.ctx, self.spec),
                self.retention_days,
                time.time() if now is None else now,
            )
            return delete_backups(self.engine.ctx, self.spec, doomed)

    @property
    def retention_days(self) -> int:
        return int((self.spec.data["storage"].get("backups") or {}).get("retention_days", 7))

    def plan_restore(self, backup_id: str, force: bool = False, *, adopt: bool = False) -> Plan:
        """The restore plan, for a look before ``restore`` (nothing is changed). ``adopt``: as
        for ``plan``."""
        from byoc.operations.restore import plan_restore

        with self._adopting(adopt):
            return plan_restore(self.engine, backup_id, force=force)[0]

    def restore(self, backup_id: str, force: bool = False, *, adopt: bool = False) -> ApplyResult:
        """Replace every node's data volume by one created from the backup's snapshot (the old
        volumes get a final snapshot, in ``result.snapshots``). A backup that does not fit the
        spec (cluster, node count, AZs) is refused unless ``force``. ``adopt``: as for ``plan``."""
        from byoc.operations.restore import plan_restore

        with self._locked("restore"), self._adopting(adopt):
            plan, _ = plan_restore(self.engine, backup_id, force=force)
            return self._run(plan, "restore")

    def query(self, sql: str, *, nodes: Sequence[str] | None = None, max_seconds: int = 60) -> QueryOutcome:
        """Run ``sql`` on the first node (``nodes`` picks others; ``["all"]`` every one) through SSM
        Run Command, in table mode on port 8123; each node's columns, types and rows, or its error
        (``outcome.ok``). The password is read on the node. Read-only for byoc: no lock."""
        from byoc.operations.query import run_query

        return run_query(self.engine.ctx, self.engine.state(), sql, nodes=nodes, max_seconds=max_seconds)

    def iam_policy(self, use: str = "apply") -> DeployerPolicy:
        """The IAM policy running byoc for ``use`` (plan, drift, apply, ops) on this spec needs, and
        the permissions boundary of the roles byoc creates (``byoc iam-policy``). No AWS call."""
        from byoc.iampolicy import deployer_policy

        return deployer_policy(self.spec, use)

    def rotate_password(self) -> RotationResult:
        """Put a new admin password in the secret and apply it node by node (health-gated); an
        unfinished rotation is resumed with the value already there. Raises RotationError (a
        ByocError, with ``.result``) at the first node that fails; the rest are left as they were.
        With ``security.password_rotation`` on, Secrets Manager's rotation is started instead
        (``result.started``; its function rolls the nodes); ByocError while one is in progress."""
        from byoc.operations.rotate import plan_rotation, rotate_password

        with self._locked("rotate-password"):
            state = self.engine.state()
            return rotate_password(self.engine.ctx, state, plan_rotation(self.engine.ctx, state))
