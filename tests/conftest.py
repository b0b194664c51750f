"""Shared fixtures: an in-process moto AWS and an AwsContext pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from byoc.sandbox import (
    alarms_listed_safely,
    lambda_without_docker,
    moto_answers_as_aws,
    route_tables_read_safely,
)
from tests.awsrealism import lb_deletion_protection

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ["AWS_DEFAULT_REGION"] = "us-west-2"
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

# moto loads ~1,200 default AMIs per mock (slow); tests that need an AMI register their own.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

alarms_listed_safely()  # moto's in-process CloudWatch is not thread-safe where AWS is
route_tables_read_safely()  # nor are its route tables
lb_deletion_protection()  # AWS refuses to delete a protected load balancer; moto did not
moto_answers_as_aws()  # a bucket's EventBridge notifications read back, as in AWS and the sandbox
lambda_without_docker()  # RotateSecret invokes the rotation function: moto answers it without Docker

REGION = "us-west-2"


@pytest.fixture
def moto() -> Iterator[None]:
    """A fresh in-process moto for one test."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def ctx(moto: None):  # type: ignore[no-untyped-def]
    """An AwsContext for cluster 'test' on moto that never sleeps (topics count their
    subscriptions as in AWS: see tests.awsrealism)."""
    from byoc.aws.context import AwsContext
    from tests.awsrealism import SNS_COUNTS

    return AwsContext(cluster="test", region=REGION, sleep=lambda s: None, poll_delay=0.01,
                      event_hooks=SNS_COUNTS)


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    """A moto server on 127.0.0.1 for the tests of one module that run the real CLI."""
    from tests.motoserver import MotoServer

    s = MotoServer("tests.realmoto")  # moto's server, refusing to delete a protected load balancer
    yield s
    s.stop()


@pytest.fixture
def work(tmp_path):  # type: ignore[no-untyped-def]
    """A working directory holding specs/dev.yaml, as a user's checkout would."""
    import shutil
    from pathlib import Path

    (tmp_path / "specs").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "specs/dev.yaml", tmp_path / "specs/dev.yaml")
    return tmp_path
