"""Security defaults, asserted on the blueprint of specs/prod.yaml and variants (pure and fast),
plus one apply on moto for where secrets may never appear, and the state file's mode."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from byoc import blueprint
from byoc.blueprint import Facts
from byoc.model import Resource
from byoc.spec import load_spec
from tests.daytwo import quiet_ctx

ROOT = Path(__file__).resolve().parents[1]
FACTS = Facts(ami="ami-0123456789abcdef0")
PUBLIC = ["network.public_access=true", 'network.allowed_cidrs=["0.0.0.0/0"]']
VARIANTS = {
    "prod": [],
    "public": PUBLIC,
    "public-nlb-ssh": [*PUBLIC, "load_balancer.type=network", "compute.ssh_key_name=ops"],
    "aws-managed-keys": ["security.encryption.create_kms_key=false"],
    "cross-account": ['security.cross_account_role={"provider_account_id": "123456789012", '
                      '"external_id": "byoc-external-id-1"}'],
    "replication-kms": ["security.encryption.create_kms_key=true",
                        'storage.replication={"destination_bucket_arn": "arn:aws:s3:::acme-proton-dr", '
                        '"destination_kms_key_arn": "arn:aws:kms:eu-west-1:210987654321:key/dr-key"}'],
}
#: actions AWS cannot scope to a resource (the service authorisation reference lists no resource types)
UNSCOPABLE = {"cloudwatch:PutMetricData", "ec2messages:", "ssmmessages:", "ssm:UpdateInstanceInformation",
              "ec2:Describe", "elasticloadbalancing:Describe", "cloudwatch:Describe", "cloudwatch:GetMetric",
              "cloudwatch:ListMetrics", "logs:DescribeLogGroups", "ssm:DescribeInstanceInformation",
              "ec2:CreateSnapshot", "ec2:CreateTags", "sts:GetCallerIdentity",
              # list calls for which the Service Authorization Reference names no resource type
              "iam:ListRoles", "iam:ListInstanceProfiles", "kms:ListAliases", "secretsmanager:ListSecrets",
              "tag:GetResources",
              # the password rotation function's: no resource type either
              "secretsmanager:GetRandomPassword", "ssm:GetCommandInvocation", "xray:PutTelemetryRecords",
              "xray:PutTraceSegments", "lambda:ListFunctions", "sqs:ListQueues"}


def build(name: str) -> tuple[Any, list[Resource]]:
    spec = load_spec(ROOT / "specs/prod.yaml", VARIANTS[name])
    return spec, blueprint.build(spec, FACTS)


def of(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r.kind == kind]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_ingress_from_the_internet_but_listener_ports_when_public(variant: str) -> None:
    spec, resources = build(variant)
    listener_ports = {r.props["port"] for r in of(resources, "aws_lb_listener")}
    for sg in of(resources, "aws_security_group"):
        for rule in sg.props["ingress"]:
            if rule.get("cidr_block") != "0.0.0.0/0":
                continue
            assert spec.data["network"]["public_access"], (sg.address, rule)
            assert sg.address == "aws_security_group.lb", (sg.address, rule)
            assert rule["from_port"] == rule["to_port"] and rule["from_port"] in listener_ports, rule
    lb = of(resources, "aws_lb")[0]
    assert lb.props["internal"] is (not spec.data["network"]["public_access"])
    for inst in of(resources, "aws_instance"):  # nodes never get a public address
        assert not inst.props.get("associate_public_ip_address")
        assert "private" in inst.props["subnet_id"].address


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_imdsv2_and_encryption_at_rest(variant: str) -> None:
    spec, resources = build(variant)
    for inst in of(resources, "aws_instance"):
        assert inst.props["metadata_options"]["http_tokens"] == "required"
        assert inst.props["metadata_options"]["http_put_response_hop_limit"] <= 2
        assert inst.props["root_block_device"]["encrypted"] is True
    for vol in of(resources, "aws_ebs_volume"):
        assert vol.props["encrypted"] is True
    bucket, logs = by_address(resources, "aws_s3_bucket.data"), by_address(resources, "aws_s3_bucket.logs")
    assert bucket.props["sse_algorithm"] in {"AES256", "aws:kms"}
    assert all(bucket.props["public_access_block"].values())
    assert bucket.props["versioning"] is True
    (secret,) = of(resources, "aws_secretsmanager_secret")  # Secrets Manager always encrypts
    # ELB log delivery accepts only SSE-S3: the log bucket keeps it whatever the data bucket uses
    assert logs.props["sse_algorithm"] == "AES256" and logs.props["kms_master_key_id"] is None
    assert all(logs.props["public_access_block"].values()) and logs.props["versioning"] is True
    assert logs.props["object_ownership"] == "BucketOwnerEnforced"
    if spec.data["security"]["encryption"]["create_kms_key"]:
        assert bucket.props["sse_algorithm"] == "aws:kms"
        assert secret.props["kms_key_id"] is not None and vol.props["kms_key_id"] is not None


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_egress_is_narrow_the_default_group_empty_and_flow_logs_on(variant: str) -> None:
    from byoc.spec.cidr import carve

    spec, resources = build(variant)
    net = spec.data["network"]
    sgs = {sg.address: sg for sg in of(resources, "aws_security_group")}
    # the load balancer reaches only the nodes' subnets, only on the listeners' ports
    ports = {r.props["port"] for r in of(resources, "aws_lb_listener")}
    private = {carve(net["vpc_cidr"], net["subnet_newbits"], az)[1] for az in spec.availability_zones}
    lb_egress = sgs["aws_security_group.lb"].props["egress"]
    assert {(r["protocol"], r["from_port"], r["to_port"], r["cidr_block"]) for r in lb_egress} == {
        ("tcp", p, p, c) for p in ports for c in private}
    # the nodes: HTTPS out (AWS APIs, packages, the image registry) and each other, nothing else
    node_egress = sgs["aws_security_group.node"].props["egress"]
    rules = sorted((r["protocol"], r["from_port"], r.get("cidr_block"), r.get("self")) for r in node_egress)
    assert rules == [("-1", 0, None, True), ("tcp", 443, "0.0.0.0/0", None)]
    for sg in sgs.values():  # never all traffic to the world (checkov CKV_AWS_382)
        assert not [r for r in sg.props["egress"] if r["protocol"] == "-1" and "cidr_block" in r]
    (default,) = of(resources, "aws_default_security_group")
    assert default.props["ingress"] == [] and default.props["egress"] == []
    assert default.props["vpc_id"].address == "aws_vpc.main"
    (flow,) = of(resources, "aws_flow_log")
    assert flow.props["vpc_id"].address == "aws_vpc.main" and flow.props["traffic_type"] == "ALL"
    role = next(r for r in of(resources, "aws_iam_role") if r.address == flow.props["iam_role_arn"].address)
    (trust,) = role.props["assume_role_policy"]["Statement"]
    assert trust["Principal"] == {"Service": ["vpc-flow-logs.amazonaws.com"]}
    assert list(trust["Condition"]["StringEquals"]) == ["aws:SourceAccount"]
    (deliver,) = next(iter(role.props["inline_policies"].values()))["Statement"]
    assert deliver["Action"] == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert [r.address for r in deliver["Resource"]] == [flow.props["log_destination"].address]


def test_flow_logs_can_be_turned_off_or_narrowed() -> None:
    spec = load_spec(ROOT / "specs/prod.yaml", ["network.flow_logs.enabled=false"])
    kinds = {r.kind for r in blueprint.build(spec, FACTS)}
    assert "aws_flow_log" not in kinds and "aws_default_security_group" in kinds
    assert "production-proton-flow-logs" not in blueprint.known_names(spec)["aws_iam_role"]
    spec = load_spec(ROOT / "specs/prod.yaml", ["network.flow_logs.traffic_type=REJECT",
                                                "network.flow_logs.retention_days=90"])
    resources = blueprint.build(spec, FACTS)
    (flow,) = of(resources, "aws_flow_log")
    group = next(r for r in resources if r.address == flow.props["log_destination"].address)
    assert flow.props["traffic_type"] == "REJECT" and group.props["retention_in_days"] == 90
    assert "production-proton-flow-logs" in blueprint.known_names(spec)["aws_iam_role"]


def test_encryption_off_is_a_warned_choice() -> None:
    spec = load_spec(ROOT / "specs/prod.yaml", ["security.encryption.enabled=false",
                                                "security.encryption.create_kms_key=false"])
    assert any("encryption at rest is off" in w for w in spec.warnings)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_buckets_refuse_plain_http(variant: str) -> None:
    _, resources = build(variant)
    buckets = of(resources, "aws_s3_bucket")
    assert [b.address for b in buckets] == ["aws_s3_bucket.logs", "aws_s3_bucket.data"]
    for bucket in buckets:
        deny = [s for s in bucket.props["policy"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}} and s["Action"] == ["s3:*"]
                   and s["Principal"] == "*" for s in deny), bucket.address


def test_both_buckets_send_events_to_eventbridge_unless_turned_off() -> None:
    on = {"eventbridge": True, "lambda_function": [], "queue": [], "topic": []}
    for overrides, want in (([], on), (["storage.event_notifications=none"], {**on, "eventbridge": False})):
        spec = load_spec(ROOT / "specs/prod.yaml", overrides)
        buckets = of(blueprint.build(spec, FACTS), "aws_s3_bucket")
        assert [b.props["notification"] for b in buckets] == [want, want], overrides
    default = load_spec(ROOT / "specs/dev.yaml")  # dev does not name the field: on by default
    assert default.data["storage"]["event_notifications"] == "eventbridge"


def by_address(resources: list[Resource], address: str) -> Resource:
    return next(r for r in resources if r.address == address)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_log_bucket_takes_only_access_logs_from_their_services(variant: str) -> None:
    spec, resources = build(variant)
    data, logs = by_address(resources, "aws_s3_bucket.data"), by_address(resources, "aws_s3_bucket.logs")
    name, account = logs.props["bucket"], FACTS.account
    assert name == f"{spec.data['storage']['bucket_name']}-logs"
    # the data bucket logs into the log bucket, which does not log into itself
    assert data.props["logging"] == [{"target_bucket": name, "target_prefix": "s3-access/"}]
    assert "aws_s3_bucket.logs" in data.depends_on and logs.props["logging"] == []
    allows = {s["Sid"]: s for s in logs.props["policy"]["Statement"] if s["Effect"] == "Allow"}
    s3_logs = allows.pop("S3ServerAccessLogs")
    assert s3_logs["Principal"] == {"Service": ["logging.s3.amazonaws.com"]}
    assert s3_logs["Action"] == ["s3:PutObject"]
    assert s3_logs["Resource"] == [f"arn:aws:s3:::{name}/s3-access/*"]
    assert s3_logs["Condition"] == {"ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{data.props['bucket']}"]},
                                    "StringEquals": {"aws:SourceAccount": [account]}}
    lb_logs = allows.pop("LoadBalancerAccessLogs")
    assert lb_logs["Action"] == ["s3:PutObject"]
    assert lb_logs["Resource"] == [f"arn:aws:s3:::{name}/lb/AWSLogs/{account}/*"]
    if spec.data["load_balancer"]["type"] == "application":  # us-west-2's ELB account
        assert lb_logs["Principal"] == {"AWS": ["arn:aws:iam::797873946194:root"]} and not allows
    else:  # an NLB delivers through CloudWatch's log delivery, which reads the bucket ACL too
        assert lb_logs["Principal"] == {"Service": ["delivery.logs.amazonaws.com"]}
        assert lb_logs["Condition"]["StringEquals"]["aws:SourceAccount"] == [account]
        acl = allows.pop("LoadBalancerAccessLogsAcl")
        assert acl["Action"] == ["s3:GetBucketAcl"] and acl["Resource"] == [f"arn:aws:s3:::{name}"]
        assert not allows
    (rule,) = logs.props["lifecycle_rules"]
    days = spec.data["storage"]["access_logs"]["retention_days"]
    assert (rule["prefix"], rule["expiration_days"], rule["noncurrent_version_expiration_days"]) == (
        "", days, days)
    lb = of(resources, "aws_lb")[0]
    assert lb.props["enable_deletion_protection"] is True
    assert lb.props["access_logs"] == [{"bucket": name, "prefix": "lb", "enabled": True}]
    assert "aws_s3_bucket.logs" in lb.depends_on


def test_elb_log_delivery_principal_per_region() -> None:
    from byoc.blueprint.logdelivery import ELB_ACCOUNTS, elb_log_principal

    documented = {"us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
                  "us-west-2": "797873946194", "eu-west-1": "156460612806", "eu-central-1": "054676820928",
                  "ap-southeast-1": "114774131450"}
    assert documented.items() <= ELB_ACCOUNTS.items() and len(ELB_ACCOUNTS) == 26
    assert elb_log_principal("eu-west-1", "aws") == {"AWS": ["arn:aws:iam::156460612806:root"]}
    assert elb_log_principal("cn-north-1", "aws-cn") == {"AWS": ["arn:aws-cn:iam::638102146993:root"]}
    # regions opened since August 2022 (Zurich, Tel Aviv, Calgary …) name ELB's service principal
    for region in ("eu-central-2", "il-central-1", "ca-west-1", "ap-southeast-5"):
        assert elb_log_principal(region, "aws") == {
            "Service": ["logdelivery.elasticloadbalancing.amazonaws.com"]}


def test_log_bucket_name_is_derived_within_s3_limits_or_chosen() -> None:
    long = "a" * 57 + "-bcde"  # 62 characters: "-logs" would pass 63
    spec = load_spec(ROOT / "specs/prod.yaml", [f"storage.bucket_name={long}"])
    # cut to 58 characters ("a" * 57 + "-"), without the trailing hyphen, then "-logs"
    assert spec.data["storage"]["access_logs"]["bucket_name"] == "a" * 57 + "-logs"
    spec = load_spec(ROOT / "specs/prod.yaml", ["storage.access_logs.bucket_name=acme-proton-logs"])
    logs = by_address(blueprint.build(spec, FACTS), "aws_s3_bucket.logs")
    assert logs.props["bucket"] == "acme-proton-logs"


def _statements(resources: list[Resource]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for role in of(resources, "aws_iam_role"):
        for doc in role.props["inline_policies"].values():
            out += [(role.address, s) for s in doc["Statement"]]
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_iam_has_no_wildcard_actions_and_scopes_resources(variant: str) -> None:
    _, resources = build(variant)
    statements = _statements(resources)
    assert statements
    for where, s in statements:
        if s["Effect"] != "Allow":
            continue
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        for a in actions:
            assert a != "*" and not a.endswith(":*"), (where, s.get("Sid"), a)
        res = s.get("Resource")
        if res == "*" or (isinstance(res, list) and "*" in res):
            loose = [a for a in actions if not any(a.startswith(u) for u in UNSCOPABLE)]
            assert not loose, f"{where} {s.get('Sid')}: {loose} on Resource '*' though AWS can scope them"
    for role in of(resources, "aws_iam_role"):  # only the intended principals may assume the roles
        for s in role.props["assume_role_policy"]["Statement"]:
            assert s["Principal"] != "*" and s["Principal"].get("AWS") != "*"


def test_the_replication_role_reads_the_data_bucket_and_writes_only_replicas() -> None:
    _, resources = build("replication-kms")
    [role] = [r for r in of(resources, "aws_iam_role") if r.address == "aws_iam_role.replication"]
    [trust] = role.props["assume_role_policy"]["Statement"]
    assert trust["Principal"] == {"Service": ["s3.amazonaws.com"]}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": [FACTS.account]}}
    data, dr = "arn:aws:s3:::my-company-proton-data", "arn:aws:s3:::acme-proton-dr"
    by_sid = {s["Sid"]: s for s in role.props["inline_policies"]["s3-replication"]["Statement"]}
    scopes = {sid: (s["Action"], s["Resource"]) for sid, s in by_sid.items() if "crypt" not in sid}
    assert scopes == {
        "SourceBucket": (["s3:GetReplicationConfiguration", "s3:ListBucket"], [data]),
        "SourceObjects": (["s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication",
                           "s3:GetObjectVersionTagging"], [f"{data}/*"]),
        "DestinationObjects": (["s3:ReplicateObject", "s3:ReplicateTags"], [f"{dr}/*"]),
    }
    # each key only through S3 in its own region, for its own bucket's objects
    assert by_sid["DecryptSource"]["Action"] == ["kms:Decrypt"]
    via = by_sid["DecryptSource"]["Condition"]["StringLike"]["kms:ViaService"]
    assert via == ["s3.us-west-2.amazonaws.com"]
    assert by_sid["EncryptReplicas"]["Resource"] == ["arn:aws:kms:eu-west-1:210987654321:key/dr-key"]
    assert by_sid["EncryptReplicas"]["Condition"]["StringLike"] == {
        "kms:ViaService": ["s3.eu-west-1.amazonaws.com"], "kms:EncryptionContext:aws:s3:arn": [dr, f"{dr}/*"]}
    buckets = {r.address: r for r in of(resources, "aws_s3_bucket")}
    [conf] = buckets["aws_s3_bucket.data"].props["replication_configuration"]
    assert conf["rules"][0]["source_selection_criteria"] == [
        {"sse_kms_encrypted_objects": [{"enabled": True}]}]
    logs = buckets["aws_s3_bucket.logs"]
    assert logs.props["replication_configuration"] == []  # the log bucket is not replicated
    # without the option: no role, no configuration
    _, plain = build("prod")
    assert "aws_iam_role.replication" not in {r.address for r in plain}
    assert all(r.props["replication_configuration"] == [] for r in of(plain, "aws_s3_bucket"))


def test_secrets_never_in_state_plan_logs_or_user_data(
    moto: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from byoc.engine import Engine
    from byoc.render import render_plan, render_plan_json
    from byoc.state import LocalBackend
    from tests.awsrealism import free_eips_of_deleted_nat_gateways

    spec = load_spec(ROOT / "specs/dev.yaml")
    ctx = quiet_ctx(spec)
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    backend = LocalBackend(tmp_path, spec.cluster_name)
    eng = Engine(spec, ctx=ctx, backend=backend, ami_resolver=lambda t: FACTS.ami)
    caplog.set_level(logging.DEBUG)
    result = eng.apply(eng.plan())
    assert result.ok
    state = eng.state()
    assert state is not None
    arn = state.outputs["admin_password_secret_arn"]
    password = ctx.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert len(password) >= 16
    again = eng.plan()
    ec2 = ctx.client("ec2")
    user_data = [ec2.describe_instance_attribute(InstanceId=i, Attribute="userData")["UserData"]["Value"]
                 for i in state.outputs["instance_ids"]]
    import base64

    scripts = [base64.b64decode(u).decode() for u in user_data]
    assert all("SECRET_ARN=" in s for s in scripts)  # the nodes fetch it at boot, by ARN
    places = {
        "state": backend.path.read_text(),
        "plan": render_plan_json(again) + render_plan(again),
        "logs": caplog.text,
        "user data": "".join(scripts),
    }
    assert "aws secretsmanager CreateSecret" in caplog.text or "CreateSecret" in caplog.text
    for where, text in places.items():
        assert password not in text, f"the admin password leaked into the {where}"
    mode = stat.S_IMODE(backend.path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert json.loads(places["state"])["version"] == 1


def test_state_and_lock_files_are_private(tmp_path: Path) -> None:
    from byoc.state import LocalBackend, State

    b = LocalBackend(tmp_path / "st", "c1")
    with b.lock("apply"):
        b.write(State.new("c1"))
        b.write(b.read().bumped())  # type: ignore[union-attr]
        assert stat.S_IMODE(b.lock_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(b.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(b.backup_path.stat().st_mode) == 0o600
