"""Drift, health and plan over a fleet of clusters in several AWS accounts (moto separates them by
account id: AssumeRole into a role of another account id gives that account's credentials), with
assumed roles, one bounded gate of AWS calls, per-cluster failures, --json, --notify, --shard and
refreshed credentials. What moto cannot answer (a role that refuses, an expiry) is injected with
botocore hooks on the STS client."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from byoc import fleet
from byoc.aws.context import AwsContext
from byoc.aws.credentials import AssumeRole, assumed_credentials, default_session_name
from byoc.engine import Engine, credentials_for
from byoc.errors import ByocError
from byoc.fleet import CallGate, FleetOptions, drift_check, health_check, plan_check, run_fleet
from byoc.operations.notify import parse_target, post_webhook
from byoc.spec import load_spec
from byoc.state import LocalBackend
from tests.awsrealism import SNS_COUNTS, https_bucket_policies
from tests.daytwo import AMI, DEV

ACCOUNTS = {"a": "111111111111", "b": "111111111111", "c": "222222222222"}
DENIED = "arn:aws:iam::333333333333:role/byoc-drift"
REGION = "us-west-2"


def role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/byoc-drift"


def write_spec(root: Path, name: str, role: str | None, external_id: str | None = "customer-42") -> Path:
    data = yaml.safe_load(DEV.read_text())
    data["cluster"]["name"] = f"fleet-{name}"
    data["storage"]["bucket_name"] = f"fleet-{name}-data-byoc-example"
    data["state"] = {"path": str(root / "state")}
    if role is not None:
        data["aws"]["assume_role"] = {"role_arn": role, "external_id": external_id}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def deny_role(arn: str) -> tuple[str, Any]:
    """STS refuses AssumeRole of ``arn`` (moto assumes any role; AWS checks the trust policy)."""
    from botocore.awsrequest import AWSResponse

    def hook(params: Any = None, **_: Any) -> Any:
        if (params or {}).get("body", {}).get("RoleArn") == arn:
            return AWSResponse("https://sts", 403, {}, None), {
                "Error": {"Code": "AccessDenied",
                          "Message": f"not authorized to perform sts:AssumeRole on {arn}"},
                "ResponseMetadata": {"HTTPStatusCode": 403}}
        return None
    return "before-call.sts.AssumeRole", hook


TEST_HOOKS = (*SNS_COUNTS, deny_role(DENIED))
QUIET = {"sleep": lambda s: None, "poll_delay": 0.01}


def options(**kw: Any) -> FleetOptions:
    return FleetOptions(event_hooks=TEST_HOOKS, context=QUIET, **kw)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Three dev clusters applied on moto through their assumed roles: a and b in one account, c in
    another; d names a role that cannot be assumed."""
    from moto import mock_aws

    root = tmp_path_factory.mktemp("fleet")
    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        https_bucket_policies(mp)
        for name, account in ACCOUNTS.items():
            path = write_spec(root, name, role_arn(account))
            spec = load_spec(str(path))
            ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, event_hooks=SNS_COUNTS,
                             credentials=credentials_for(spec), **QUIET)  # type: ignore[arg-type]
            eng = Engine(spec, ctx=ctx, backend=LocalBackend(root / "state", spec.cluster_name),
                         ami_resolver=lambda itype: AMI)
            result = eng.apply(eng.plan())
            assert result.ok, [str(f.error) for f in result.failures]
        write_spec(root, "d", DENIED)
        yield root


def specs(root: Path, *names: str) -> list[Path]:
    return [root / f"{n}.yaml" for n in names]


def test_each_cluster_lives_in_its_roles_account(fleet_dir: Path) -> None:
    import boto3

    for name, account in ACCOUNTS.items():
        spec = load_spec(str(fleet_dir / f"{name}.yaml"))
        ctx = AwsContext(cluster=spec.cluster_name, region=REGION, credentials=credentials_for(spec))
        assert ctx.client("sts").get_caller_identity()["Account"] == account
        tagged = [{"Name": "tag:byoc:cluster", "Values": [f"fleet-{name}"]}]
        vpcs = ctx.client("ec2").describe_vpcs(Filters=tagged)
        assert len(vpcs["Vpcs"]) == 1
    # the caller's own account holds none of them
    own = boto3.client("ec2", region_name=REGION).describe_vpcs(
        Filters=[{"Name": "tag-key", "Values": ["byoc:cluster"]}])
    assert own["Vpcs"] == []


def test_fleet_drift_in_sync_one_unassumable_role_exit_1(fleet_dir: Path) -> None:
    records = run_fleet(specs(fleet_dir, "a", "b", "c", "d"), drift_check, options(parallelism=4, clusters=2))
    by = {r.cluster: r for r in records}
    assert [r.spec for r in records] == [str(p) for p in specs(fleet_dir, "a", "b", "c", "d")]
    assert {c: by[f"fleet-{c}"].status for c in "abc"} == {"a": "in_sync", "b": "in_sync", "c": "in_sync"}
    assert {c: by[f"fleet-{c}"].account for c in "abc"} == ACCOUNTS
    d = by["fleet-d"]
    assert d.status == "error" and d.account == "333333333333"
    assert DENIED in (d.error or "") and "AccessDenied" in (d.error or "")
    assert "with an external id" in (d.error or "") and "trust policy" in (d.error or "")
    assert fleet.exit_code(records) == 1
    assert all(r.calls > 0 for r in records if r.status != "error")


def test_an_assumed_roles_account_is_taken_from_its_arn_not_asked_again(fleet_dir: Path) -> None:
    """The ARNs drift compares need the account: with an assumed role it is the role's own (no
    GetCallerIdentity per cluster), and the clusters are still in sync in their own accounts."""
    asked: list[str] = []
    count = ("before-call.sts.GetCallerIdentity", lambda **_: asked.append("GetCallerIdentity"))
    opts = dataclasses.replace(options(parallelism=4, clusters=3), event_hooks=(count, *TEST_HOOKS))
    records = run_fleet(specs(fleet_dir, "a", "b", "c"), drift_check, opts)
    assert [(r.status, r.account) for r in records] == [("in_sync", ACCOUNTS[c]) for c in "abc"]
    assert asked == []
    # in sync: the ARNs built with that account (the volumes') matched the state's
    assert all(r.counts["checked"] > 20 for r in records)


def test_clusters_with_different_roles_never_share_credentials_or_calls(fleet_dir: Path) -> None:
    """Each cluster signs with its own role's session: a and b (one account, two sessions) and c
    (another account) have their own credentials; their calls go through one SDK client per service,
    each through a view of its own, and are counted as each cluster's own."""
    seen: dict[str, Engine] = {}

    def keep(engine: Engine) -> fleet.Outcome:
        seen[engine.spec.cluster_name] = engine
        return drift_check(engine)

    records = run_fleet(specs(fleet_dir, "a", "b", "c"), keep, options(parallelism=4, clusters=3))
    assert [r.status for r in records] == ["in_sync"] * 3
    ctxs = [seen[f"fleet-{c}"].ctx for c in "abc"]
    keys = [c.credentials.get_frozen_credentials().access_key for c in ctxs]
    assert len({id(c.credentials) for c in ctxs}) == 3 and len(set(keys)) == 3
    for service in ("ec2", "iam", "s3"):
        assert len({id(c.client(service)) for c in ctxs}) == 3
        assert len({id(c.client(service).meta.events) for c in ctxs}) == 1
    # each call was counted as its own cluster's, once: three like clusters, three like counts
    assert len({r.calls for r in records}) == 1 and records[0].calls > 20, [r.calls for r in records]


def test_one_role_session_is_assumed_once_and_shared_but_never_across_roles(fleet_dir: Path) -> None:
    """Clusters whose specs name the same role, external id and session name sign with one set of
    credentials, assumed once; a cluster of another role (here: another account, same session name)
    gets its own, and its calls land in its own account although its clients are of the same class."""
    names = {"s1": "a", "s2": "a", "s3": "c"}
    for new, like in names.items():
        data = yaml.safe_load((fleet_dir / f"{like}.yaml").read_text())
        data["aws"]["assume_role"]["session_name"] = "byoc-fleet-drift"
        (fleet_dir / f"{new}.yaml").write_text(yaml.safe_dump(data))
    assumed: list[str] = []
    count = ("before-call.sts.AssumeRole", lambda params=None, **_: assumed.append(params["body"]["RoleArn"]))
    seen: dict[str, Engine] = {}

    def keep(engine: Engine) -> fleet.Outcome:
        seen[engine.spec.source] = engine
        return drift_check(engine)

    opts = dataclasses.replace(options(parallelism=4, clusters=3), event_hooks=(count, *TEST_HOOKS))
    records = run_fleet(specs(fleet_dir, *names), keep, opts)
    assert [(r.status, r.account) for r in records] == [
        ("in_sync", ACCOUNTS["a"]), ("in_sync", ACCOUNTS["a"]), ("in_sync", ACCOUNTS["c"])]
    s1, s2, s3 = (seen[str(fleet_dir / f"{n}.yaml")].ctx for n in names)
    assert s1.credentials is s2.credentials and s3.credentials is not s1.credentials
    assert sorted(assumed) == sorted({role_arn(ACCOUNTS["a"]), role_arn(ACCOUNTS["c"])})
    # each cluster its own view (its own counts), of one shared client per service
    assert len({id(c.client("ec2")) for c in (s1, s2, s3)}) == 3
    assert type(s1.client("ec2")) is type(s3.client("ec2"))
    assert [c.client("sts").get_caller_identity()["Account"] for c in (s1, s2, s3)] == [
        ACCOUNTS["a"], ACCOUNTS["a"], ACCOUNTS["c"]]


def test_gate_bounds_the_calls_in_flight_across_the_fleet(fleet_dir: Path) -> None:
    """Counted by hooks of the test's own, on every client: from sending an attempt (after the SDK's
    rate limiter and the gate let it go: ``before-send`` handlers registered last) to parsing its
    answer; and by the gate itself."""
    lock = threading.Lock()
    seen = {"now": 0, "peak": 0, "calls": 0}

    def sent(**_: Any) -> None:
        with lock:
            seen["now"] += 1
            seen["calls"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])

    def answered(**_: Any) -> None:
        with lock:
            seen["now"] -= 1

    class Last(AwsContext):
        """A context whose clients also carry the test's counting hooks, after byoc's own (once per
        emitter: the clusters' views of a shared client share its emitter)."""

        def _make_client(self, service: str) -> Any:
            client = super()._make_client(service)
            client.meta.events.register_last("before-send", sent, unique_id="test-sent")
            client.meta.events.register_first("before-parse", answered, unique_id="test-answered")
            return client

    gate = CallGate(2)
    opts = options(parallelism=2, clusters=3)
    with mock.patch("byoc.fleet.AwsContext", Last):
        records = run_fleet(specs(fleet_dir, "a", "b", "c"), drift_check, opts, gate=gate)
    assert [r.status for r in records] == ["in_sync"] * 3
    assert seen["calls"] >= sum(r.calls for r in records) > 30
    assert 1 <= seen["peak"] <= 2 and gate.peak == 2 and gate.in_flight == 0


def test_drifted_cluster_exit_2_and_health_and_plan(fleet_dir: Path) -> None:
    spec = load_spec(str(fleet_dir / "c.yaml"))
    ctx = AwsContext(cluster=spec.cluster_name, region=REGION, credentials=credentials_for(spec))
    ctx.client("logs").put_retention_policy(logGroupName="/aws/proton/fleet-c", retentionInDays=30)
    try:
        records = run_fleet(specs(fleet_dir, "a", "c"), drift_check, options())
        assert [r.status for r in records] == ["in_sync", "drifted"]
        assert records[1].counts["modified"] == 1 and fleet.exit_code(records) == 2
        d = records[1].to_dict()
        assert d["report"]["resources"][0]["address"] == "aws_cloudwatch_log_group.main"
        assert {k: d[k] for k in ("cluster", "account", "status", "error")} == {
            "cluster": "fleet-c", "account": "222222222222", "status": "drifted", "error": None}

        planned = run_fleet(specs(fleet_dir, "a", "c"), plan_check, options())
        assert [r.status for r in planned] == ["no_changes", "changes"]
        assert planned[1].counts == {"add": 0, "change": 1, "destroy": 0}

        healthy = run_fleet(specs(fleet_dir, "a", "c", "d"), health_check(), options())
        assert [r.status for r in healthy] == ["healthy", "healthy", "error"]
        assert healthy[0].counts == {"nodes": 1, "healthy": 1, "expected": 1}
    finally:
        ctx.client("logs").put_retention_policy(logGroupName="/aws/proton/fleet-c", retentionInDays=7)


def test_a_spec_that_is_invalid_is_its_own_error(fleet_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: {name: x}\n")
    records = run_fleet([bad, fleet_dir / "a.yaml"], drift_check, options())
    assert records[0].status == "error" and records[0].cluster is None
    assert str(bad) in (records[0].error or "")
    assert records[1].status == "in_sync"


# -- the CLI ------------------------------------------------------------------------------------
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        *args: str) -> tuple[int, str, str]:
    """``byoc ARGS`` in this process (moto in-process), with the test's hooks in every cluster's context."""
    from byoc.cli import main

    real = fleet.run_fleet
    monkeypatch.setattr(fleet, "run_fleet", lambda s, c, o, gate=None: real(
        s, c, dataclasses.replace(o, event_hooks=TEST_HOOKS, context=QUIET), gate))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def sqs_inbox(topic_name: str) -> tuple[str, Any, str]:
    """A topic in the caller's own account and a queue subscribed to it (raw delivery)."""
    import boto3

    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    queue = sqs.create_queue(QueueName=topic_name)["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    return topic, sqs, queue


def test_cli_json_notify_sns_and_quiet(fleet_dir: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    topic, sqs, queue = sqs_inbox("fleet-drift")
    # all in sync: exit 0, nothing sent, nothing printed with --quiet
    code, out, err = cli(capsys, monkeypatch, "drift", *map(str, specs(fleet_dir, "a", "b", "c")),
                         "--quiet", "--notify", f"sns:{topic}")
    assert (code, out, err) == (0, "", "")
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)

    code, out, err = cli(capsys, monkeypatch, "drift", *map(str, specs(fleet_dir, "a", "b", "c", "d")),
                         "--json", "--notify", f"sns:{topic}", "--parallelism", "4", "--clusters", "2")
    assert code == 1 and DENIED in err and "Traceback" not in err and err.count("Error:") == 1
    data = json.loads(out)
    assert [(c["cluster"], c["status"]) for c in data["clusters"]] == [
        ("fleet-a", "in_sync"), ("fleet-b", "in_sync"), ("fleet-c", "in_sync"), ("fleet-d", "error")]
    assert data["in_sync"] is False and data["summary"] == {"error": 1, "in_sync": 3}
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert len(got) == 1
    msg = json.loads(got[0]["Body"])
    assert [f["cluster"] for f in msg["failed"]] == ["fleet-d"] and msg["drifted"] == []
    assert "customer-42" not in got[0]["Body"]  # the external id is no part of the message

    code, out, err = cli(capsys, monkeypatch, "health", *map(str, specs(fleet_dir, "a", "c")))
    assert code == 0 and "Fleet: 2 cluster(s): 2 fine, 0 degraded, 0 failed" in out, out + err
    code, out, err = cli(capsys, monkeypatch, "plan", *map(str, specs(fleet_dir, "a", "c")),
                         "--detailed-exitcode", "--json")
    assert code == 0 and [c["status"] for c in json.loads(out)["clusters"]] == ["no_changes"] * 2


def test_cli_refuses_bad_targets_and_shards(fleet_dir: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for bad, what in (("--notify", "http://example.com/hook"), ("--shard", "5/4"), ("--shard", "0/4")):
        code, _out, err = cli(capsys, monkeypatch, "drift", str(fleet_dir / "a.yaml"), bad, what)
        assert code == 1 and what in err and "Traceback" not in err, err


class Hook(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    fail_first = 0

    def do_POST(self) -> None:
        Hook.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        status = 500 if Hook.fail_first > 0 else 204
        Hook.fail_first -= 1
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.bodies, Hook.fail_first = [], 0
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_one_post_per_run_and_retries(fleet_dir: Path, webhook: str,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, _ = cli(capsys, monkeypatch, "drift", *map(str, specs(fleet_dir, "a", "b")), "-q",
                     "--notify", webhook)
    assert code == 0 and Hook.bodies == []
    code, _, err = cli(capsys, monkeypatch, "drift", *map(str, specs(fleet_dir, "a", "d")), "-q",
                       "--notify", webhook)
    assert code == 1 and len(Hook.bodies) == 1 and "Traceback" not in err
    body = json.loads(Hook.bodies[0])
    assert body["command"] == "drift" and [f["cluster"] for f in body["failed"]] == ["fleet-d"]
    # a 5xx is tried again with backoff; a 4xx is not
    Hook.bodies, Hook.fail_first = [], 2
    post_webhook(webhook, {"x": 1}, sleep=lambda s: None)
    assert len(Hook.bodies) == 3
    Hook.bodies, Hook.fail_first = [], 9
    with pytest.raises(ByocError, match="HTTP 500"):
        post_webhook(webhook, {"x": 1}, sleep=lambda s: None, attempts=2)
    assert len(Hook.bodies) == 2


def test_notify_targets() -> None:
    assert parse_target("sns:arn:aws:sns:us-east-1:111122223333:drift") == (
        "sns", "arn:aws:sns:us-east-1:111122223333:drift")
    assert parse_target("https://hooks.example.com/x?token=1")[0] == "webhook"
    assert parse_target("http://localhost:8080/x")[0] == "webhook"
    for bad in ("http://hooks.example.com/x", "sns:arn:aws:s3:::bucket", "ftp://x", "mailto:a@b"):
        with pytest.raises(ByocError, match="--notify"):
            parse_target(bad)


# -- shards -------------------------------------------------------------------------------------
def test_shards_partition_the_specs_stably() -> None:
    paths = [Path(f"specs/customers/customer-{i:03}.yaml") for i in range(200)]
    for n in (1, 3, 4):
        shards = [fleet.pick_shard(paths, (k, n)) for k in range(1, n + 1)]
        assert sorted(p for s in shards for p in s) == sorted(paths)  # each spec in exactly one shard
        assert sum(len(s) for s in shards) == len(paths)
        assert all(len(s) > len(paths) / n / 2 for s in shards)  # roughly even
    # the same on another runner: whatever the order and the directory the specs are listed from
    again = fleet.pick_shard([Path("/ci/checkout") / p for p in reversed(paths)], (2, 4))
    assert sorted(p.name for p in again) == sorted(p.name for p in fleet.pick_shard(paths, (2, 4)))
    # a new spec moves no other; a fifth runner moves about a fifth of them, each to the new shard
    more = [*paths, Path("specs/customers/new.yaml")]
    assert {p: fleet.shard_of(p, 4) for p in paths} == {p: fleet.shard_of(p, 4) for p in more[:-1]}
    moved = [p for p in paths if fleet.shard_of(p, 4) != fleet.shard_of(p, 5)]
    assert 0 < len(moved) < len(paths) * 0.3 and all(fleet.shard_of(p, 5) == 5 for p in moved)
    assert fleet.parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "-1/4"):
        with pytest.raises(ByocError, match="--shard"):
            fleet.parse_shard(bad)


# -- credentials ---------------------------------------------------------------------------------
def test_assumed_credentials_are_refreshed_before_they_expire(moto: None) -> None:
    calls: list[dict[str, Any]] = []
    expires = {"in": dt.timedelta(minutes=5)}

    def record(params: Any = None, **_: Any) -> None:
        calls.append(dict(params["body"]))

    def expiry(parsed: Any = None, **_: Any) -> None:
        parsed["Credentials"]["Expiration"] = dt.datetime.now(dt.UTC) + expires["in"]

    role = AssumeRole(role_arn("444444444444"), "ext-id-1", default_session_name("c1"))
    creds = assumed_credentials(role, REGION, event_hooks=[("before-call.sts.AssumeRole", record),
                                                           ("after-call.sts.AssumeRole", expiry)])
    assert calls == []  # nothing is assumed before the first call
    ctx = AwsContext(cluster="c1", region=REGION, credentials=creds)
    sts = ctx.client("sts")
    assert sts.get_caller_identity()["Account"] == "444444444444"
    # five minutes left is inside botocore's refresh window: the next call assumes the role again
    assert sts.get_caller_identity()["Account"] == "444444444444"
    assert len(calls) == 2
    assert calls[0]["ExternalId"] == "ext-id-1" and calls[0]["RoleSessionName"] == "byoc-c1"
    expires["in"] = dt.timedelta(hours=1)
    sts.get_caller_identity()
    sts.get_caller_identity()
    assert len(calls) == 3  # refreshed once more (the 5-minute ones), then kept: an hour is left


def test_assume_role_spec_validation(tmp_path: Path) -> None:
    from byoc.errors import SpecError

    spec = load_spec(str(write_spec(tmp_path, "ok", role_arn("111111111111"), external_id=None)))
    role = AssumeRole.of_spec(spec.data["aws"], spec.cluster_name)
    assert role == AssumeRole(role_arn("111111111111"), None, "byoc-fleet-ok")
    assert default_session_name("x" * 80) == ("byoc-" + "x" * 80)[:64]
    cases = {
        "role_arn": ("arn:aws:iam::1234:role/x", "aws.assume_role.role_arn"),
        "external_id": ("has space", "aws.assume_role.external_id"),
        "session_name": ("a/b", "aws.assume_role.session_name"),
    }
    for field_, (value, where) in cases.items():
        conf = {"role_arn": role_arn("111111111111"), field_: value}
        with pytest.raises(SpecError, match=where.replace(".", r"\.")):
            load_spec(str(DEV), (f"aws.assume_role={json.dumps(conf)}",))
    with pytest.raises(SpecError, match="aws-cn partition"):
        load_spec(str(DEV), ('aws.assume_role={"role_arn": "arn:aws-cn:iam::111111111111:role/x"}',))


# -- the cross-account role byoc creates (docs/operations.md "The role in the customer's account") --
#: API name → IAM action, where they differ (the rest: the same name, service prefix mapped below)
IAM_ACTION = {
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "s3:GetBucketReplication": "s3:GetReplicationConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
}
PREFIX = {"monitoring": "cloudwatch", "tagging": "tag"}
#: what drift calls that the management role does not allow (the docs list these)
DRIFT_LACKS: set[str] = set()  # the cross-account role reads all drift needs (blueprint/iam.py)


def iam_actions(counts: Any) -> set[str]:
    names = {f"{PREFIX.get(s, s)}:{a}" for s, a in counts}
    return {IAM_ACTION.get(n, n) for n in names} - {"sts:GetCallerIdentity"}  # needs no permission


def test_cross_account_role_allows_health_and_what_drift_lacks(tmp_path: Path, moto: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from byoc.operations.health import check_health
    from tests.daytwo import applied, engine_for, quiet_ctx

    eng = applied(tmp_path, monkeypatch, 'security.cross_account_role={"provider_account_id": '
                  '"111111111111", "external_id": "abc-123"}', count=1)
    state = eng.state()
    assert state is not None
    policy = state.resources["aws_iam_role.management"].props["inline_policies"]
    allowed = {a for doc in policy.values() for st in doc["Statement"] for a in st["Action"]}
    health = engine_for(eng.spec, quiet_ctx(eng.spec), tmp_path)
    assert check_health(health.ctx, health.state(), expected_nodes=1).status == "healthy"
    assert iam_actions(health.ctx.calls.counts) - allowed == set()
    drift = engine_for(eng.spec, quiet_ctx(eng.spec), tmp_path)
    assert drift.drift().in_sync
    assert iam_actions(drift.ctx.calls.counts) - allowed == DRIFT_LACKS


def test_the_kinds_registry_is_whole_in_every_thread_of_a_fresh_process() -> None:
    """Clusters side by side make their engines in threads at once: none may see the registry half
    filled (its clusters' discovery would skip kinds and report their resources missing)."""
    import subprocess
    import sys

    code = """
import threading
from byoc import resources
seen, done = set(), threading.Event()
def first():
    resources.registry()
    done.set()
def spin():
    while not resources.REGISTRY and not done.is_set():
        pass
    seen.add(len(resources.registry()))  # asked while another thread fills it
threads = [threading.Thread(target=spin) for _ in range(3)] + [threading.Thread(target=first)]
[t.start() for t in threads]; [t.join() for t in threads]
print(sorted(seen), len(resources.MODULES))
"""
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        sizes, modules = out.rsplit(" ", 1)
        assert sizes == f"[{int(modules)}]", out
