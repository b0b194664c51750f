"""What an upgrade does around its roll (``plan.upgrade``, byoc/upgrade.py): the backup before the
first node goes out of service (``byoc backup``'s own function), and after each node is healthy,
Proton's own answer: ``SELECT version()`` on that node through SSM, compared with the spec's
``cluster.proton_version``. An answer that differs, no answer, or a node SSM cannot reach stops the
roll; ``--skip-version-check`` skips the question (and says so), and so does the local sandbox,
where no Proton runs (also said).
"""

from __future__ import annotations

import copy
import dataclasses
import os

from byoc.aws.context import AwsContext
from byoc.engine import Engine, UpgradeSteps
from byoc.errors import CloudError
from byoc.operations.backup import take_backup
from byoc.operations.ssm import NodeRun, QueryResult, run_sql, secret_arn_of
from byoc.plan import Plan
from byoc.sandbox import is_sandbox_endpoint
from byoc.spec import Spec
from byoc.upgrade import LATEST, Upgrade, version_matches

QUERY = "SELECT version()"
#: a node just registered may not be known to SSM yet: asked again this many times, this far apart
ATTEMPTS, RETRY_SECONDS = 6, 10.0


def upgrade_steps(engine: Engine, *, skip_version_check: bool = False) -> UpgradeSteps:
    """The backup and version check of ``engine``'s upgrade plans."""

    def backup(plan: Plan) -> str:
        assert plan.upgrade is not None
        manifest = take_backup(engine.ctx, spec_before(engine.spec, plan.upgrade))
        snapshots = ", ".join(n.snapshot_id for _, n in sorted(manifest.nodes.items()))
        return (f"backup {manifest.backup_id} taken before the upgrade {plan.upgrade.label} "
                f"({len(manifest.nodes)} snapshot(s): {snapshots}); to go back: `byoc restore SPEC "
                f"{manifest.backup_id}` with proton_version: {manifest.proton_version}")

    def check(node: str, instance_id: str) -> str:
        wanted = engine.spec.data["cluster"]["proton_version"]
        if skip_version_check:
            return f"version check skipped (--skip-version-check): Proton {wanted} not confirmed"
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if is_sandbox_endpoint(endpoint):
            return (f"version check skipped: {endpoint} is the local sandbox, where no Proton runs "
                    "to answer")
        return check_version(engine.ctx, secret_arn_of(engine.state()), node, instance_id, str(wanted))

    return UpgradeSteps(backup=backup, check=check)


def spec_before(spec: Spec, upgrade: Upgrade) -> Spec:
    """``spec`` as the nodes run it before the upgrade (the version and image the state records),
    so that the backup's manifest names the version that wrote the data."""
    if upgrade.from_version is None:
        return spec
    data = copy.deepcopy(spec.data)
    data["cluster"]["proton_version"] = upgrade.from_version
    if upgrade.from_image is not None:
        data["cluster"]["image"] = upgrade.from_image
    return dataclasses.replace(spec, data=data)


def check_version(ctx: AwsContext, secret_arn: str, node: str, instance_id: str, wanted: str) -> str:
    """Ask the node's Proton for ``version()``; what it said, or CloudError when it is not ``wanted``
    or gave no answer."""
    answer: QueryResult | NodeRun | None = None
    for attempt in range(ATTEMPTS):
        answer = run_sql(ctx, {node: instance_id}, secret_arn, QUERY, max_seconds=30)[node]
        if not isinstance(answer, NodeRun) or answer.reachable or attempt == ATTEMPTS - 1:
            break
        ctx.sleep(RETRY_SECONDS)
    escape = ("If you have confirmed the version another way (the node's Proton log in the cluster's "
              "log group), apply again with --skip-version-check")
    if isinstance(answer, NodeRun):
        raise CloudError(
            f"byoc could not ask its Proton for {QUERY} through SSM: {answer.describe()}. {escape}",
            aws_id=instance_id, code="VersionCheckFailed")
    reported = _first_cell(answer)
    if not reported:
        raise CloudError(
            f"{QUERY} through SSM brought back no answer (the command succeeded with empty output), "
            f"so the version is not confirmed. {escape}",
            aws_id=instance_id, code="VersionCheckFailed")
    if not version_matches(wanted, reported):
        raise CloudError(
            f"its Proton reports version {reported}, not {wanted} (cluster.proton_version): the image "
            "tag does not hold that version, or the node did not start the new image. Look at the "
            "node's boot log and Proton log; set proton_version to the version you want",
            aws_id=instance_id, code="VersionMismatch")
    if wanted == LATEST:
        return f"Proton reports version {reported} (cluster.proton_version is {LATEST}: not compared)"
    return f"Proton reports version {reported}, as cluster.proton_version asks"


def _first_cell(answer: QueryResult | None) -> str:
    if answer is None or not answer.rows or not answer.rows[0]:
        return ""
    return str(answer.rows[0][0] or "").strip()
