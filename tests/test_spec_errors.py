"""Malformed specs: each one raises a SpecError listing exactly the expected located issues."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from byoc.errors import SpecError
from byoc.spec import apply_overrides, load_spec, load_spec_dict

# The smallest valid spec; extra sections appended below start on line 9.
BASE = """\
cluster:
  name: demo-proton
  proton_version: 1.6.16
aws:
  region: us-west-2
  availability_zones: [us-west-2a, us-west-2b]
storage:
  bucket_name: demo-proton-data-test
"""

NAME_RULE = (
    "expected 3-24 lowercase letters, digits and single hyphens, starting with a letter and "
    "ending with a letter or digit"
)
BUCKET_RULE = (
    "3-63 lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit"
)
TAG_CHARS = "use letters, digits, spaces and _ . : / = + - @"


def base(old: str = "", new: str = "", extra: str = "") -> str:
    """BASE with one line replaced (``old`` must occur) and ``extra`` appended."""
    assert old in BASE
    return (BASE.replace(old, new, 1) if old else BASE) + extra


# (id, YAML text, overrides, expected issues) — issues are located at spec.yaml:<line>.
CASES: list[tuple[str, str, list[str], list[str]]] = [
    (
        "below-minimum",
        base(extra="compute:\n  instance_count: 0\n"),
        [],
        ["spec.yaml:10 compute.instance_count: 0 is less than the minimum of 1"],
    ),
    (
        "above-maximum",
        base(extra="compute:\n  instance_count: 51\n  disk_size_gb: 20000\n"),
        [],
        [
            "spec.yaml:10 compute.instance_count: 51 is greater than the maximum of 50",
            "spec.yaml:11 compute.disk_size_gb: 20000 is greater than the maximum of 16384",
        ],
    ),
    (
        "unknown-key-did-you-mean",
        base(extra="compute:\n  instanc_count: 3\n"),
        [],
        ["spec.yaml:10 compute: unknown key 'instanc_count' (did you mean 'instance_count'?)"],
    ),
    (
        "unknown-key-lists-allowed",
        base(extra="load_balancer:\n  colour: red\n"),
        [],
        [
            "spec.yaml:10 load_balancer: unknown key 'colour'; allowed keys: type, "
            "certificate_arn, idle_timeout_seconds, sticky_sessions"
        ],
    ),
    (
        "unknown-top-level-key",
        base(extra="tag:\n  Team: x\n"),
        [],
        ["spec.yaml:9 unknown top-level key 'tag' (did you mean 'tags'?)"],
    ),
    (
        "missing-required-field",
        base("  proton_version: 1.6.16\n"),
        [],
        [
            "spec.yaml:1 cluster.proton_version: is required (an exact Proton release such as "
            "1.6.16 or 3.0.19)"
        ],
    ),
    (
        "missing-required-section",
        BASE.replace("storage:\n  bucket_name: demo-proton-data-test\n", ""),
        [],
        ["spec.yaml:1 storage: is required"],
    ),
    (
        "wrong-type",
        base(extra="compute:\n  instance_count: three\n"),
        [],
        ["spec.yaml:10 compute.instance_count: expected an integer, got string 'three'"],
    ),
    (
        "float-is-not-an-integer",
        base(extra="compute:\n  instance_count: 2.0\n"),
        [],
        ["spec.yaml:10 compute.instance_count: expected an integer, got number 2.0"],
    ),
    (
        "number-where-a-string-belongs",
        base("proton_version: 1.6.16", "proton_version: 1.6"),
        [],
        [
            "spec.yaml:3 cluster.proton_version: expected a string, got number 1.6; "
            "put the value in quotes"
        ],
    ),
    (
        "yaml-boolean-where-a-string-belongs",
        base(extra="tags:\n  Country: NO\n"),
        [],
        [
            "spec.yaml:10 tags.Country: expected a string, got boolean false (YAML reads "
            "yes/no/on/off/true/false as booleans); put the value in quotes"
        ],
    ),
    (
        "empty-section",
        base(extra="network:\n"),
        [],
        [
            "spec.yaml:9 network: expected a mapping, got null (an empty section: remove it or "
            "give it fields)"
        ],
    ),
    (
        "string-where-a-list-belongs",
        base("[us-west-2a, us-west-2b]", "us-west-2a"),
        [],
        [
            "spec.yaml:6 aws.availability_zones: expected a list, got string 'us-west-2a'; "
            "write a list such as [us-west-2a]"
        ],
    ),
    (
        "enum",
        base(extra="network:\n  nat_gateway: foo\n"),
        [],
        ["spec.yaml:10 network.nat_gateway: 'foo' is not one of: per_az, single, none"],
    ),
    (
        "event-notifications",
        base(extra="  event_notifications: sns\n"),
        [],
        ["spec.yaml:9 storage.event_notifications: 'sns' is not one of: eventbridge, none"],
    ),
    (
        "integer-enum",
        base(extra="monitoring:\n  log_retention_days: 10\n"),
        [],
        [
            "spec.yaml:10 monitoring.log_retention_days: 10 is not one of: 1, 3, 5, 7, 14, 30, "
            "60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"
        ],
    ),
    (
        "spec-format-version",
        "version: 2\n" + BASE,
        [],
        [
            "spec.yaml:1 version: 2 is not supported: expected 1 (the only spec format version "
            "so far)"
        ],
    ),
    (
        "cluster-name-pattern",
        base("name: demo-proton", "name: Demo_1"),
        [],
        [f"spec.yaml:2 cluster.name: 'Demo_1' is not valid: {NAME_RULE}"],
    ),
    (
        "cluster-name-double-hyphen",
        base("name: demo-proton", "name: demo--proton"),
        [],
        [f"spec.yaml:2 cluster.name: 'demo--proton' is not valid: {NAME_RULE}"],
    ),
    (
        "cluster-name-too-long-reported-once",
        base("name: demo-proton", "name: a-very-long-cluster-name-x-"),
        [],
        [
            "spec.yaml:2 cluster.name: 'a-very-long-cluster-name-x-' is too long "
            f"(27 characters): {NAME_RULE}"
        ],
    ),
    (
        "cluster-name-trailing-newline",
        base("name: demo-proton", 'name: "demo\\n"'),
        [],
        [f"spec.yaml:2 cluster.name: 'demo\\n' is not valid: {NAME_RULE}"],
    ),
    (
        "other-patterns-in-words",
        base(
            extra="compute:\n  instance_type: large\n  ami: ami-XYZ\n"
            "monitoring:\n  alarm_email: ops\n"
        ),
        [],
        [
            "spec.yaml:10 compute.instance_type: 'large' is not valid: expected an EC2 instance "
            "type such as t3.large or c5.2xlarge",
            "spec.yaml:11 compute.ami: 'ami-XYZ' is not valid: expected an AMI id such as "
            "ami-0123456789abcdef0",
            "spec.yaml:13 monitoring.alarm_email: 'ops' is not valid: expected an email address "
            "such as ops@example.com",
        ],
    ),
    (
        "region-pattern",
        base("region: us-west-2", "region: uswest2"),
        [],
        [
            "spec.yaml:5 aws.region: 'uswest2' is not valid: expected an AWS region name such "
            "as us-west-2, eu-central-1 or us-gov-west-1"
        ],
    ),
    (
        "duplicate-key",
        base(extra="compute:\n  instance_count: 2\n  instance_count: 3\n"),
        [],
        ["spec.yaml:11 compute.instance_count: duplicate key; also set on line 10"],
    ),
    (
        "duplicate-list-items",
        base("[us-west-2a, us-west-2b]", "[us-west-2a, us-west-2b, us-west-2a]"),
        [],
        ["spec.yaml:6 aws.availability_zones[2]: 'us-west-2a' is listed twice (also item [0])"],
    ),
    (
        "too-many-zones",
        base(
            "[us-west-2a, us-west-2b]",
            "[us-west-2a, us-west-2b, us-west-2c, us-west-2d, us-west-2e, us-west-2f, us-west-2g]",
        ),
        [],
        ["spec.yaml:6 aws.availability_zones: has 7 items; at most 6 are allowed"],
    ),
    (
        "zone-of-another-region",
        base("[us-west-2a, us-west-2b]", "[us-west-2a, us-east-1b]"),
        [],
        [
            "spec.yaml:6 aws.availability_zones[1]: 'us-east-1b' is not an availability zone "
            "of us-west-2; expected us-west-2 followed by one letter, such as us-west-2a"
        ],
    ),
    (
        "zone-id-instead-of-name",
        base("[us-west-2a, us-west-2b]", "[us-west-2a, usw2-az2]"),
        [],
        [
            "spec.yaml:6 aws.availability_zones[1]: 'usw2-az2' is not an availability zone of "
            "us-west-2; use the zone's name (such as us-west-2a), not its zone id"
        ],
    ),
    (
        "alb-needs-two-zones",
        base("[us-west-2a, us-west-2b]", "[us-west-2a]"),
        [],
        [
            "spec.yaml:6 aws.availability_zones: an application load balancer needs subnets in "
            "at least 2 availability zones; list a second zone or set load_balancer.type: network"
        ],
    ),
    (
        "vpc-cidr-host-bits",
        base(extra="network:\n  vpc_cidr: 10.0.1.0/16\n"),
        [],
        [
            "spec.yaml:10 network.vpc_cidr: '10.0.1.0/16' has host bits set; the network is "
            "10.0.0.0/16"
        ],
    ),
    (
        "vpc-cidr-too-large",
        base(extra="network:\n  vpc_cidr: 10.0.0.0/8\n"),
        [],
        ["spec.yaml:10 network.vpc_cidr: /8 is outside what AWS allows for a VPC (/16 to /28)"],
    ),
    (
        "vpc-cidr-not-a-cidr",
        base(extra="network:\n  vpc_cidr: 10.0.0/16\n"),
        [],
        ["spec.yaml:10 network.vpc_cidr: '10.0.0/16' is not a CIDR block such as 10.0.0.0/16"],
    ),
    (
        "subnets-too-small",
        base(extra="network:\n  vpc_cidr: 10.0.0.0/24\n  subnet_newbits: 5\n"),
        [],
        [
            "spec.yaml:11 network.subnet_newbits: network.subnet_newbits 5 on a /24 VPC gives "
            "/29 subnets, smaller than AWS allows (/28); use at most 4"
        ],
    ),
    (
        "zone-letter-without-a-slot",
        base(extra="network:\n  subnet_newbits: 1\n"),
        [],
        [
            "spec.yaml:6 aws.availability_zones[1]: us-west-2b does not fit: "
            "network.subnet_newbits 1 makes 1 public and 1 private subnet slot, for zones "
            "ending in a only; raise network.subnet_newbits to 2"
        ],
    ),
    (
        "allowed-cidrs",
        base(extra="network:\n  allowed_cidrs:\n    - 10.0.0.0/8\n    - 192.168.1.1\n"),
        [],
        [
            "spec.yaml:12 network.allowed_cidrs[1]: '192.168.1.1' has no prefix length; for one "
            "address write 192.168.1.1/32"
        ],
    ),
    (
        "whole-internet-without-public-access",
        base(extra="network:\n  allowed_cidrs: ['0.0.0.0/0', '::/0']\n"),
        [],
        [
            "spec.yaml:10 network.allowed_cidrs[0]: 0.0.0.0/0 is the whole internet but "
            "network.public_access is false; turn on network.public_access or narrow the CIDR",
            "spec.yaml:10 network.allowed_cidrs[1]: ::/0 is the whole internet but "
            "network.public_access is false; turn on network.public_access or narrow the CIDR",
        ],
    ),
    (
        "bucket-pattern",
        base("bucket_name: demo-proton-data-test", "bucket_name: Demo_Bucket"),
        [],
        [f"spec.yaml:8 storage.bucket_name: 'Demo_Bucket' is not valid: expected {BUCKET_RULE}"],
    ),
    (
        "bucket-double-dot",
        base("bucket_name: demo-proton-data-test", "bucket_name: demo..data"),
        [],
        ["spec.yaml:8 storage.bucket_name: 'demo..data' is not valid: S3 bucket names cannot "
         "contain '..'"],
    ),
    (
        "bucket-ip-address",
        base("bucket_name: demo-proton-data-test", "bucket_name: 192.168.5.4"),
        [],
        ["spec.yaml:8 storage.bucket_name: '192.168.5.4' is not valid: S3 bucket names cannot "
         "look like an IP address"],
    ),
    (
        "bucket-reserved-prefix",
        base("bucket_name: demo-proton-data-test", "bucket_name: xn--demo"),
        [],
        ["spec.yaml:8 storage.bucket_name: 'xn--demo' is not valid: S3 reserves names starting "
         "with 'xn--'"],
    ),
    (
        "bucket-reserved-suffix",
        base("bucket_name: demo-proton-data-test", "bucket_name: demo-s3alias"),
        [],
        ["spec.yaml:8 storage.bucket_name: 'demo-s3alias' is not valid: S3 reserves names "
         "ending with '-s3alias'"],
    ),
    (
        "proton-2x",
        base("proton_version: 1.6.16", "proton_version: 2.1.0"),
        [],
        [
            "spec.yaml:3 cluster.proton_version: '2.1.0': there is no Proton 2.x; 2.x numbers "
            "belong to Timeplus Enterprise; pin an exact version such as 1.6.16 or 3.0.19"
        ],
    ),
    (
        "proton-not-a-version",
        base("proton_version: 1.6.16", "proton_version: stable"),
        [],
        [
            "spec.yaml:3 cluster.proton_version: 'stable' is not a Proton version: expected "
            "X.Y.Z such as 1.6.16 or 3.0.19"
        ],
    ),
    (
        "kms-key-without-encryption",
        base(
            extra="security:\n  encryption:\n    enabled: false\n"
            "    kms_key_arn: arn:aws:kms:us-west-2:123456789012:key/abcd-1234\n"
        ),
        [],
        [
            "spec.yaml:12 security.encryption.kms_key_arn: a KMS key is given but "
            "security.encryption.enabled is false; turn encryption on or remove the key"
        ],
    ),
    (
        "create-kms-key-and-kms-key-arn",
        base(
            extra="security:\n  encryption:\n    create_kms_key: true\n"
            "    kms_key_arn: arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab\n"
        ),
        [],
        [
            "spec.yaml:11 security.encryption.create_kms_key: cannot be true together with "
            "kms_key_arn: choose a new key (create_kms_key) or an existing one (kms_key_arn)"
        ],
    ),
    (
        "kms-alias-is-not-a-key",
        base(extra="security:\n  encryption:\n"
                   "    kms_key_arn: arn:aws:kms:us-west-2:123456789012:alias/proton\n"),
        [],
        [
            "spec.yaml:11 security.encryption.kms_key_arn: 'arn:aws:kms:us-west-2:123456789012:alias/proton' "
            "is not valid: expected a KMS key ARN (not an alias) such as "
            "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ],
    ),
    (
        "kms-arn-pattern",
        base(extra="security:\n  encryption:\n    kms_key_arn: my-key\n"),
        [],
        [
            "spec.yaml:11 security.encryption.kms_key_arn: 'my-key' is not valid: expected a KMS "
            "key ARN (not an alias) such as "
            "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ],
    ),
    (
        "cross-account-role",
        base(extra="security:\n  cross_account_role:\n    provider_account_id: 123456789012\n"),
        [],
        [
            "spec.yaml:10 security.cross_account_role.external_id: is required (2-1224 letters, "
            "digits and the characters _+=,.@:/-)",
            "spec.yaml:11 security.cross_account_role.provider_account_id: expected a string, "
            "got integer 123456789012; put the value in quotes",
        ],
    ),
    (
        "state-s3-needs-bucket-and-table",
        base(extra="state:\n  backend: s3\n  lock: dynamodb\n"),
        [],
        [
            "spec.yaml:9 state.bucket: is required when state.backend is s3 (3-63 lowercase "
            "letters, digits, dots and hyphens, beginning and ending with a letter or digit)",
            "spec.yaml:9 state.dynamodb_table: is required when state.lock is dynamodb (3-255 "
            "letters, digits, underscores, dots and hyphens)",
        ],
    ),
    (
        "tag-characters",
        base(extra='tags:\n  Team: "data; rm -rf /"\n  "Cost$Center": x\n  Note: "a\\nb"\n'),
        [],
        [
            f"spec.yaml:10 tags.Team: 'data; rm -rf /' has characters AWS tags do not allow "
            f"(';'); {TAG_CHARS}",
            f"spec.yaml:11 tags: key 'Cost$Center' has characters AWS tags do not allow ('$'); "
            f"{TAG_CHARS}",
            f"spec.yaml:12 tags.Note: 'a\\nb' has characters AWS tags do not allow ('\\n'); "
            f"{TAG_CHARS}",
        ],
    ),
    (
        "tag-reserved-prefix-and-lengths",
        base(extra=f"tags:\n  aws:owner: me\n  BYOC:cluster: x\n  Long: {'v' * 257}\n"),
        [],
        [
            "spec.yaml:10 tags: key 'aws:owner' is not allowed: expected 1-128 characters, not "
            "starting with aws: or byoc: (reserved)",
            "spec.yaml:11 tags: key 'BYOC:cluster' is not allowed: expected 1-128 characters, "
            "not starting with aws: or byoc: (reserved)",
            "spec.yaml:12 tags.Long: '"
            + "v" * 55
            + "...' is too long (257 characters; at most 256)",
        ],
    ),
    (
        "too-many-tags",
        base(extra="tags:\n" + "".join(f"  T{i}: v\n" for i in range(41))),
        [],
        ["spec.yaml:9 tags: has 41 entries; at most 40 are allowed"],
    ),
    (
        "drift-ignore-needs-address",
        base(extra="drift:\n  ignore:\n    - attributes: [tags]\n"),
        [],
        ["spec.yaml:11 drift.ignore[0].address: is required"],
    ),
    (
        "unsupported-yaml-tag-and-infinity",
        base(extra="compute:\n  instance_type: !Ref InstanceType\nmonitoring:\n"
                   "  cpu_alarm_threshold_percent: .inf\n"),
        [],
        [
            "spec.yaml:10 compute.instance_type: YAML tag !Ref is not supported here",
            "spec.yaml:12 monitoring.cpu_alarm_threshold_percent: .inf is not a finite number",
        ],
    ),
    (
        "complex-key-and-bad-merge",
        base(extra="compute:\n  ? [a, b]\n  : x\n  <<: [1]\n"),
        [],
        [
            "spec.yaml:10 compute: a mapping key must be a plain name, not a list or mapping",
            "spec.yaml:12 compute: '<<' (merge) takes a mapping or a list of them",
        ],
    ),
    (
        "three-independent-problems-at-once",
        base("name: demo-proton", "name: X", "compute:\n  instance_count: 0\nnetwork:\n  nat: x\n"),
        [],
        [
            f"spec.yaml:2 cluster.name: 'X' is too short (1 character): {NAME_RULE}",
            "spec.yaml:10 compute.instance_count: 0 is less than the minimum of 1",
            "spec.yaml:12 network: unknown key 'nat' (did you mean 'nat_gateway'?)",
        ],
    ),
    (
        "semantic-checks-run-beside-schema-errors",
        base(
            "[us-west-2a, us-west-2b]",
            "[us-west-2a, us-east-1b]",
            "network:\n  vpc_cidr: 10.0.0.1/16\n  nat_gateway: all\n",
        ),
        [],
        [
            "spec.yaml:6 aws.availability_zones[1]: 'us-east-1b' is not an availability zone "
            "of us-west-2; expected us-west-2 followed by one letter, such as us-west-2a",
            "spec.yaml:10 network.vpc_cidr: '10.0.0.1/16' has host bits set; the network is "
            "10.0.0.0/16",
            "spec.yaml:11 network.nat_gateway: 'all' is not one of: per_az, single, none",
        ],
    ),
    (
        "override-is-located-at-the-override",
        BASE,
        ["compute.instance_count=0"],
        [
            "--set compute.instance_count=0 compute.instance_count: 0 is less than the minimum "
            "of 1"
        ],
    ),
    (
        "override-replacing-a-file-value",
        base(extra="network:\n  nat_gateway: single\n"),
        ["network.nat_gateway=both"],
        ["--set network.nat_gateway=both network.nat_gateway: 'both' is not one of: per_az, "
         "single, none"],
    ),
    (
        "override-creating-a-section",
        BASE,
        ["security.cross_account_role.external_id=abc"],
        [
            "--set security.cross_account_role.external_id=abc "
            "security.cross_account_role.provider_account_id: is required (a 12-digit AWS "
            'account id in quotes, such as "123456789012")'
        ],
    ),
    (
        "missing-section-is-not-blamed-on-an-override",
        BASE.replace("storage:\n  bucket_name: demo-proton-data-test\n", ""),
        ["compute.instance_count=2", "storage.backups.enabled=true"],
        [
            "--set storage.backups.enabled=true storage.bucket_name: is required (3-63 lowercase "
            "letters, digits, dots and hyphens, beginning and ending with a letter or digit)"
        ],
    ),
    (
        "missing-section-with-an-unrelated-override",
        BASE.replace("storage:\n  bucket_name: demo-proton-data-test\n", ""),
        ["compute.instance_count=2"],
        ["spec.yaml:1 storage: is required"],
    ),
    (
        "bad-overrides",
        BASE,
        ["compute.instance_count", "=3", "compute..spot=true", "cluster.name.first=x",
         "aws.availability_zones.0=us-west-2c", "tags.x=[a,"],
        [
            "--set compute.instance_count expected key.path=value (there is no '=')",
            "--set =3 the key path before '=' is empty",
            "--set compute..spot=true the key path 'compute..spot' has an empty part",
            "--set cluster.name.first=x cluster.name.first: cannot be set: cluster.name is a "
            "string, not a mapping",
            '--set aws.availability_zones.0=us-west-2c aws.availability_zones["0"]: cannot be set: '

            "aws.availability_zones is a list, not a mapping; set the whole list instead, such "
            "as aws.availability_zones=[a, b]",
            "--set tags.x=[a, the value is not valid YAML at column 4: expected the node "
            "content, but found '<stream end>' (while parsing a flow node)",
        ],
    ),
    (
        "replication-into-its-own-log-bucket",
        base(extra="  replication:\n    destination_bucket_arn: arn:aws:s3:::demo-proton-data-test-logs\n"),
        [],
        ["spec.yaml:10 storage.replication.destination_bucket_arn: 'demo-proton-data-test-logs' is "
         "storage.access_logs.bucket_name: replication needs a bucket of your own in another region or "
         "account; name that bucket's ARN"],
    ),
    (
        "replication-shapes",
        base(extra="  replication:\n    destination_bucket_arn: s3://demo-proton-dr\n"
                   "    storage_class: COLD\n"),
        [],
        [
            "spec.yaml:10 storage.replication.destination_bucket_arn: 's3://demo-proton-dr' is not valid: "
            "expected an S3 bucket ARN such as arn:aws:s3:::my-company-proton-dr",
            "spec.yaml:11 storage.replication.storage_class: 'COLD' is not one of: STANDARD, STANDARD_IA, "
            "ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE",
        ],
    ),
    (
        "replication-of-sse-kms-objects-needs-a-destination-key",
        base(extra="  replication:\n    destination_bucket_arn: arn:aws:s3:::demo-proton-dr\n"
                   "security:\n  encryption:\n    create_kms_key: true\n"),
        [],
        ["spec.yaml:9 storage.replication.destination_kms_key_arn: is required: the data bucket uses "
         "SSE-KMS (security.encryption), and S3 replicates SSE-KMS objects only with a key in the "
         "destination's region to encrypt the replicas; give that key's ARN"],
    ),
    (
        "file-and-override-problems-together",
        base(extra="compute:\n  disk_size_gb: 5\n"),
        ["compute.instance_count=-1"],
        [
            "spec.yaml:10 compute.disk_size_gb: 5 is less than the minimum of 10",
            "--set compute.instance_count=-1 compute.instance_count: -1 is less than the "
            "minimum of 1",
        ],
    ),
]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("text", "overrides", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_spec(in_tmp: Path, text: str, overrides: list[str], expected: list[str]) -> None:
    (in_tmp / "spec.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec("spec.yaml", overrides)
    assert caught.value.issues == expected
    count = len(expected)
    assert str(caught.value).splitlines()[0] == (
        f"spec.yaml: {count} problem{'s' if count != 1 else ''}"
    )


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 25


# File-level problems: (id, how to make the file, expected SpecError message, expected issues).
def _write(text: str | bytes) -> object:
    def make(path: Path) -> None:
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")

    return make


def _mkdir(path: Path) -> None:
    path.mkdir()


def _nothing(path: Path) -> None:
    pass


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef", strict=True)
)

FILE_CASES: list[tuple[str, object, str, list[str]]] = [
    ("missing-file", _nothing, "spec.yaml: no such file", []),
    ("directory", _mkdir, "spec.yaml: is a directory, not a spec file", []),
    (
        "empty-file",
        _write(""),
        "spec.yaml: is empty; a spec needs at least the cluster, aws and storage sections",
        [],
    ),
    (
        "only-comments",
        _write("# nothing here yet\n"),
        "spec.yaml: is empty; a spec needs at least the cluster, aws and storage sections",
        [],
    ),
    (
        "too-large",
        _write("# " + "x" * (1 << 20) + "\n"),
        "spec.yaml: is larger than 1 MiB; a spec is a small YAML file, is this the right one?",
        [],
    ),
    (
        "utf-16",
        _write("cluster: {}\n".encode("utf-16")),
        "spec.yaml: is UTF-16 text; save it as UTF-8",
        [],
    ),
    (
        "top-level-list",
        _write("- cluster\n- aws\n"),
        "spec.yaml: 1 problem",
        [
            "spec.yaml:1 the top level must be a mapping of sections (cluster, aws and storage "
            "at least), not a list"
        ],
    ),
    (
        "top-level-scalar",
        _write("# a comment first\nhello\n"),
        "spec.yaml: 1 problem",
        [
            "spec.yaml:2 the top level must be a mapping of sections (cluster, aws and storage "
            "at least), not a single value ('hello')"
        ],
    ),
    (
        "invalid-yaml",
        _write("cluster:\n  name: demo\n   proton_version: 1.6.16\n"),
        "spec.yaml: 1 problem",
        ["spec.yaml:3 invalid YAML at column 18: mapping values are not allowed here"],
    ),
    (
        "invalid-yaml-tab",
        _write("cluster:\n\tname: demo\n"),
        "spec.yaml: 1 problem",
        [
            "spec.yaml:2 invalid YAML at column 1: found character '\\t' that cannot start any "
            "token (while scanning for the next token)"
        ],
    ),
    (
        "unclosed-quote",
        _write('cluster:\n  name: "demo\n'),
        "spec.yaml: 1 problem",
        [
            "spec.yaml:3 invalid YAML at column 1: found unexpected end of stream (while "
            "scanning a quoted scalar on line 2)"
        ],
    ),
    (
        "two-documents",
        _write(BASE + "---\n" + BASE),
        "spec.yaml: 1 problem",
        [
            "spec.yaml:9 invalid YAML: a spec is one YAML document, but a second one starts "
            "here ('---')"
        ],
    ),
    (
        "control-character",
        _write('cluster:\n  name: "de\x07mo"\n'),
        "spec.yaml: 1 problem",
        ["spec.yaml:2 invalid YAML at column 12: character U+0007 is not allowed in YAML"],
    ),
    (
        "not-utf-8",
        _write(b"cluster:\n  name: caf\xe9\n"),
        "spec.yaml: 1 problem",
        ["spec.yaml:2 not UTF-8 text: byte 0xe9 at column 12; save the file as UTF-8"],
    ),
    (
        "alias-bomb",
        _write(ALIAS_BOMB),
        "spec.yaml: 1 problem",
        [
            "spec.yaml:1 the document expands to more than 20000 values (are YAML aliases such "
            "as *name multiplying it?)"
        ],
    ),
    (
        "recursive-alias",
        _write("cluster: &c [*c]\n"),
        "spec.yaml: 1 problem",
        ["spec.yaml:1 nesting deeper than 32 levels"],
    ),
    (
        "deep-nesting",
        _write("cluster: " + "[" * 5000 + "]" * 5000 + "\n"),
        "spec.yaml: 1 problem",
        ["spec.yaml nesting deeper than 32 levels"],
    ),
]


@pytest.mark.parametrize(("make", "message", "issues"), [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_unusable_file(in_tmp: Path, make: object, message: str, issues: list[str]) -> None:
    assert callable(make)
    make(in_tmp / "spec.yaml")
    with pytest.raises(SpecError) as caught:
        load_spec("spec.yaml")
    assert caught.value.args[0] == message
    assert caught.value.issues == issues


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(in_tmp: Path) -> None:
    path = in_tmp / "spec.yaml"
    path.write_text(BASE)
    path.chmod(0)
    with pytest.raises(SpecError, match=r"^spec.yaml: cannot be read \(permission denied\)$"):
        load_spec("spec.yaml")


def test_nul_in_path() -> None:
    with pytest.raises(SpecError, match=r"is not a usable file name$"):
        load_spec("spec\0.yaml")


def test_random_damage_never_escapes_as_a_traceback(in_tmp: Path) -> None:
    """Mangle the production example a few hundred times: each result loads or is a SpecError."""
    import random

    source = (Path(__file__).resolve().parent.parent / "specs" / "prod.yaml").read_bytes()
    rng = random.Random(7)
    noise = b" \n\t:-[]{}&*!|>'\"#%@`,?0123456789abz.\\\xff\xe9~<="
    for _ in range(200):
        data = bytearray(source)
        for _ in range(rng.randint(1, 5)):
            at = rng.randrange(len(data))
            if rng.random() < 0.5:
                del data[at : at + rng.randint(1, 5)]
            else:
                data[at:at] = bytes(rng.choice(noise) for _ in range(rng.randint(1, 3)))
        (in_tmp / "spec.yaml").write_bytes(bytes(data))
        try:
            load_spec("spec.yaml")
        except SpecError as exc:
            assert str(exc).startswith("spec.yaml")


def test_source_is_the_path_as_typed(in_tmp: Path) -> None:
    (in_tmp / "sub").mkdir()
    (in_tmp / "sub" / "x.yaml").write_text(base(extra="compute:\n  spot: maybe\n"))
    with pytest.raises(SpecError) as caught:
        load_spec("./sub/../sub/x.yaml")
    assert caught.value.issues == [
        "./sub/../sub/x.yaml:10 compute.spot: expected true or false, got string 'maybe'"
    ]
    with pytest.raises(SpecError, match=r"^nope/x.yaml: no such file$"):
        load_spec(Path("nope/x.yaml"))


def test_error_text_lists_every_issue(in_tmp: Path) -> None:
    (in_tmp / "spec.yaml").write_text(base(extra="compute:\n  instance_count: 0\n"))
    with pytest.raises(SpecError) as caught:
        load_spec("spec.yaml")
    assert str(caught.value) == (
        "spec.yaml: 1 problem\n"
        "  spec.yaml:10 compute.instance_count: 0 is less than the minimum of 1"
    )


def test_dict_input_is_located_by_source_name() -> None:
    data = {
        "cluster": {"name": "demo-proton", "proton_version": "1.6.16"},
        "aws": {"region": "us-west-2", "availability_zones": ("us-west-2a", "us-west-2b")},
        "storage": {"bucket_name": "demo-proton-data-test"},
        "compute": {"instance_count": 0, "spot": {1, 2}},
        "tags": {1: "x"},
    }
    with pytest.raises(SpecError) as caught:
        load_spec_dict(data, source="api")
    assert caught.value.issues == [
        "api compute.instance_count: 0 is less than the minimum of 1",
        "api compute.spot: a set is not a spec value",
        "api tags: key 1 is not a string",
    ]
    with pytest.raises(SpecError) as caught:
        load_spec_dict(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert caught.value.issues == [
        "<dict> the top level must be a mapping of sections (cluster, aws and storage at "
        "least), not a list"
    ]


def test_apply_overrides_reports_every_bad_one() -> None:
    with pytest.raises(SpecError) as caught:
        apply_overrides({"cluster": {"name": "x"}}, ["a", "cluster.name.x=1", "b.c=2"])
    assert str(caught.value).splitlines()[0] == "--set: 2 problems"
    assert caught.value.issues == [
        "--set a expected key.path=value (there is no '=')",
        "--set cluster.name.x=1 cluster.name.x: cannot be set: cluster.name is a string, not a "
        "mapping",
    ]
