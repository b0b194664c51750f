"""The test kit for engine-level moto tests: specs/dev.yaml, the AMI the tests register, an
AwsContext that never sleeps, and (for the day-2 tests) a small dev cluster applied on moto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from byoc.aws.context import AwsContext
from byoc.engine import Engine
from byoc.spec import Spec, load_spec
from byoc.state import LocalBackend
from tests.awsrealism import SNS_COUNTS, https_bucket_policies

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "specs/dev.yaml"
AMI = "ami-0123456789abcdef0"


def dev_spec(*overrides: str, count: int = 2) -> Spec:
    return load_spec(str(DEV), (f"compute.instance_count={count}", *overrides))


def quiet_ctx(spec: Spec) -> AwsContext:
    """An AwsContext for the spec's cluster on moto that never sleeps (topics count their
    subscriptions as in AWS)."""
    return AwsContext(cluster=spec.cluster_name, region=spec.region, sleep=lambda s: None, poll_delay=0.01,
                      event_hooks=SNS_COUNTS)


def engine_for(spec: Spec, ctx: AwsContext, state_dir: Path) -> Engine:
    return Engine(
        spec, ctx=ctx, backend=LocalBackend(state_dir, spec.cluster_name), ami_resolver=lambda itype: AMI
    )


def applied(tmp_path: Path, monkeypatch: Any, *overrides: str, count: int = 2) -> Engine:
    """Apply the dev cluster (moto must be running in-process) and return its engine."""
    https_bucket_policies(monkeypatch)
    spec = dev_spec(*overrides, count=count)
    eng = engine_for(spec, quiet_ctx(spec), tmp_path)
    result = eng.apply(eng.plan())
    assert result.ok, [str(f.error) for f in result.failures]
    return eng
