"""Valid specs: the two examples, defaults, digests, overrides, warnings and the schema itself."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from byoc.spec import Spec, apply_overrides, load_spec, load_spec_dict
from byoc.spec.cidr import carve
from byoc.spec.schema import spec_schema

ROOT = Path(__file__).resolve().parent.parent
PROD = ROOT / "specs" / "prod.yaml"
DEV = ROOT / "specs" / "dev.yaml"

MINIMAL: dict[str, Any] = {
    "cluster": {"name": "demo-proton", "proton_version": "1.6.16"},
    "aws": {"region": "us-west-2", "availability_zones": ["us-west-2a", "us-west-2b"]},
    "storage": {"bucket_name": "demo-proton-data-test"},
}


def minimal(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(MINIMAL))
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}
    return data


@pytest.mark.parametrize("path", [PROD, DEV], ids=["prod", "dev"])
def test_example_specs_load_cleanly(path: Path) -> None:
    spec = load_spec(path)
    assert spec.warnings == ()
    assert spec.source == str(path)
    assert path.read_text().splitlines()[0] == (
        "# yaml-language-server: $schema=../schemas/spec.schema.json"
    )


def test_prod_spec_matches_the_reference_example() -> None:
    spec = load_spec(PROD)
    d = spec.data
    assert spec.cluster_name == "production-proton"
    assert spec.region == "us-west-2"
    assert spec.availability_zones == ["us-west-2a", "us-west-2b", "us-west-2c"]
    assert spec.instance_count == 3
    assert d["cluster"]["proton_version"] == "1.6.16"
    assert d["network"] == {
        "vpc_cidr": "10.0.0.0/16",
        "subnet_newbits": 4,
        "nat_gateway": "per_az",
        "public_access": False,
        "allowed_cidrs": ["10.0.0.0/8"],
        "flow_logs": {"enabled": True, "traffic_type": "ALL", "retention_days": None},
        "private_link": None,
    }
    assert d["compute"]["instance_type"] == "c5.2xlarge"
    assert d["compute"]["detailed_monitoring"] is True
    assert d["monitoring"]["log_retention_days"] == 365
    assert d["compute"]["disk_size_gb"] == 500
    assert d["compute"]["ssh_key_name"] == "my-ssh-key"
    assert d["storage"]["bucket_name"] == "my-company-proton-data"
    assert d["storage"]["backups"] == {"enabled": True, "retention_days": 30}
    assert d["security"]["encryption"]["enabled"] is True
    assert d["load_balancer"]["type"] == "application"
    assert d["tags"] == {
        "Environment": "production",
        "Team": "data-platform",
        "CostCenter": "engineering",
    }
    text = PROD.read_text()
    assert "instance_count: 3" in text
    assert "vpc_cidr: 10.0.0.0/16" in text


def test_dev_spec_is_small_and_cheap() -> None:
    spec = load_spec(DEV)
    d = spec.data
    assert spec.cluster_name == "dev-proton"
    assert spec.instance_count == 1
    assert spec.availability_zones == ["us-west-2a", "us-west-2b"]
    assert d["compute"]["instance_type"] == "t3.large"
    assert d["compute"]["disk_size_gb"] == 20
    assert d["compute"]["ssh_key_name"] is None
    assert d["network"]["nat_gateway"] == "single"
    assert d["storage"]["bucket_name"] == "dev-proton-data-byoc-example"
    assert d["storage"]["backups"]["retention_days"] == 7
    assert d["monitoring"]["log_retention_days"] == 7
    assert d["tags"] == {"Environment": "dev"}
    subnets = [carve(d["network"]["vpc_cidr"], d["network"]["subnet_newbits"], az)
               for az in spec.availability_zones]
    assert subnets == [("10.0.0.0/20", "10.0.128.0/20"), ("10.0.16.0/20", "10.0.144.0/20")]


def _defaults(
    schema: Mapping[str, Any], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, default) of every leaf field with a default, through sections that default to {}."""
    for key, sub in schema.get("properties", {}).items():
        if sub.get("type") == "object" and sub.get("default") == {}:
            yield from _defaults(sub, (*path, key))
        elif "default" in sub:
            yield (*path, key), sub["default"]


def test_every_default_is_filled_in() -> None:
    spec = load_spec_dict(MINIMAL)
    schema = spec_schema()
    found = 0
    for path, default in _defaults(schema):
        value: Any = spec.data
        for part in path:
            value = value[part]
        assert value == default, path
        found += 1
    assert found >= 29
    assert spec.data["version"] == 1
    assert spec.data["security"]["cross_account_role"] is None
    assert spec.data["state"] == {"backend": "local", "path": "state", "lock": "s3"}


def test_defaults_fill_into_list_items() -> None:
    spec = load_spec_dict(minimal(drift={"ignore": [{"address": "aws_instance.*"}]}))
    assert spec.data["drift"]["ignore"] == [{"address": "aws_instance.*", "attributes": ["*"]}]


def test_input_is_not_modified() -> None:
    data = minimal()
    before = json.dumps(data, sort_keys=True)
    load_spec_dict(data, ["compute.instance_count=2"])
    assert json.dumps(data, sort_keys=True) == before


def test_digest_is_stable_and_covers_overrides() -> None:
    first, second = load_spec(PROD), load_spec(str(PROD))
    assert first.digest == second.digest
    assert len(first.digest) == 64 and int(first.digest, 16) >= 0
    changed = load_spec(PROD, ["compute.instance_count=4"])
    assert changed.digest != first.digest
    assert changed.instance_count == 4
    assert changed.overrides == ("compute.instance_count=4",)
    assert first.overrides == ()
    same = load_spec(PROD, ["compute.instance_count=3"])
    assert same.digest == first.digest
    assert load_spec_dict(first.data).digest == first.digest
    assert load_spec(DEV).digest != first.digest


def test_spec_is_frozen_and_hashable() -> None:
    spec = load_spec(DEV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.source = "x"  # type: ignore[misc]
    assert hash(spec) == hash(load_spec(DEV))
    assert isinstance(spec, Spec)


def test_override_values_are_yaml() -> None:
    spec = load_spec(DEV, [
        "compute.instance_count=3",
        "compute.spot=true",
        "network.allowed_cidrs=[10.0.0.0/8, 192.168.0.0/16]",
        "compute.ssh_key_name=null",
        "tags.Owner = data team ",
        "tags.Version='1.0'",
        "security.cross_account_role={provider_account_id: '123456789012', external_id: abc}",
    ])
    d = spec.data
    assert d["compute"]["instance_count"] == 3
    assert d["compute"]["spot"] is True
    assert d["network"]["allowed_cidrs"] == ["10.0.0.0/8", "192.168.0.0/16"]
    assert d["compute"]["ssh_key_name"] is None
    assert d["tags"] == {"Environment": "dev", "Owner": "data team", "Version": "1.0"}
    assert d["security"]["cross_account_role"] == {
        "provider_account_id": "123456789012",
        "external_id": "abc",
    }


def test_overrides_apply_in_order_and_create_mappings() -> None:
    data = {"cluster": {"name": "a"}, "network": None}
    out = apply_overrides(data, ["cluster.name=b", "cluster.name=c", "network.nat_gateway=single",
                                 "state.backend=s3", "compute.ssh_key_name="])
    assert out == {
        "cluster": {"name": "c"},
        "network": {"nat_gateway": "single"},
        "state": {"backend": "s3"},
        "compute": {"ssh_key_name": None},
    }
    assert data == {"cluster": {"name": "a"}, "network": None}


def test_leading_v_is_dropped_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.chdir(tmp_path)
    text = DEV.read_text().replace("proton_version: 1.6.16", "proton_version: v3.0.19")
    Path("dev.yaml").write_text(text)
    spec = load_spec("dev.yaml")
    assert spec.data["cluster"]["proton_version"] == "3.0.19"
    line = text.splitlines().index("  proton_version: v3.0.19") + 1
    assert spec.warnings == (
        f"dev.yaml:{line} cluster.proton_version: 'v3.0.19': the image tag is 3.0.19 without "
        "the v; write proton_version: 3.0.19",
    )


@pytest.mark.parametrize(
    ("sections", "overrides", "warnings"),
    [
        (
            {},
            ["cluster.proton_version=latest"],
            [
                "--set cluster.proton_version=latest cluster.proton_version: 'latest' has "
                "crossed the 1.x→3.x boundary; pin an exact version such as 1.6.16 or 3.0.19"
            ],
        ),
        (
            {},
            ["cluster.proton_version=4.0.1"],
            [
                "--set cluster.proton_version=4.0.1 cluster.proton_version: 4.0.1 is not a known "
                "Proton release line (1.3 to 1.6, 3.x); check that the image tag exists"
            ],
        ),
        (
            {"security": {"encryption": {"enabled": False}}},
            [],
            [
                "<dict> security.encryption.enabled: encryption at rest is off: EBS volumes and "
                "the bucket's objects will not be encrypted by byoc"
            ],
        ),
        (
            {"storage": {"bucket_name": "demo.proton.data", "backups": {"enabled": False}}},
            [],
            [
                "<dict> storage.backups.enabled: backups are off: a lost data volume cannot be "
                "restored",
                "<dict> storage.bucket_name: 'demo.proton.data' contains dots: HTTPS to "
                "virtual-hosted bucket addresses fails certificate checks and Transfer "
                "Acceleration is unavailable; prefer hyphens",
            ],
        ),
        (
            {
                "network": {"public_access": True, "allowed_cidrs": ["0.0.0.0/0", "8.0.0.0/7"]},
                "compute": {"ssh_key_name": "ops"},
            },
            [],
            [
                "<dict> compute.ssh_key_name: SSH to the nodes is open to 0.0.0.0/0 "
                "(network.allowed_cidrs); narrow the CIDRs or drop the key and use SSM Session "
                "Manager",
                "<dict> load_balancer.certificate_arn: network.public_access is on but the load "
                "balancer has no TLS certificate: queries and passwords cross the internet in clear "
                "text; set load_balancer.certificate_arn",
                "<dict> network.allowed_cidrs[0]: 0.0.0.0/0 is the whole internet, and "
                "network.public_access is on: the cluster is reachable from all of it",
                "<dict> network.allowed_cidrs[1]: 8.0.0.0/7 is a very wide range, and "
                "network.public_access is on: the cluster is reachable from all of it",
            ],
        ),
        (
            {"network": {"allowed_cidrs": ["10.0.0.0/8", "52.0.0.0/12"]}, "compute": {"ssh_key_name": "ops"}},
            [],
            [
                "<dict> compute.ssh_key_name: SSH to the nodes is open to 52.0.0.0/12, a wide range "
                "(network.allowed_cidrs); narrow the CIDRs or drop the key and use SSM Session Manager",
            ],
        ),
        (
            {"network": {"public_access": True, "allowed_cidrs": ["203.0.113.0/24"]},
             "load_balancer": {"certificate_arn": "arn:aws:acm:us-west-2:123456789012:certificate/abc"},
             "compute": {"ssh_key_name": "ops"}},
            [],
            [],
        ),
    ],
    ids=["latest", "unknown-line", "no-encryption", "bucket-dots-no-backups", "wide-open", "ssh-wide",
         "public-done-right"],
)
def test_risky_choices_warn(sections: dict[str, Any], overrides: list[str], warnings: list[str]
                            ) -> None:
    spec = load_spec_dict(minimal(**sections), overrides)
    assert list(spec.warnings) == warnings


def test_warnings_are_located_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(DEV.read_text().replace("    enabled: true", "    enabled: false"))
    spec = load_spec("s.yaml")
    line = Path("s.yaml").read_text().splitlines().index("    enabled: false") + 1
    assert spec.warnings == (
        f"s.yaml:{line} storage.backups.enabled: backups are off: a lost data volume cannot be "
        "restored",
    )


def test_yaml_features_that_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "\ufeff# a BOM, anchors, merge keys, comments and a date-looking tag value\n"
        "cluster: {name: demo-proton, proton_version: '3.0.19'}\n"
        "aws:\n"
        "  region: us-gov-west-1\n"
        "  availability_zones:\n"
        "    - us-gov-west-1a\n"
        "    - us-gov-west-1c\n"
        "storage: {bucket_name: demo-proton-data-test}\n"
        "tags: &common\n"
        "  Created: 2024-01-01\n"
        "  Team: data\n"
        "  <<: {Team: ignored, Owner: me}\n"
        "state:\n"
        "  backend: s3\n"
        "  bucket: demo-proton-state\n"
        "  lock: dynamodb\n"
        "  dynamodb_table: byoc-locks\n"
    )
    spec = load_spec(path)
    assert spec.warnings == ()
    assert spec.data["tags"] == {"Created": "2024-01-01", "Team": "data", "Owner": "me"}
    assert spec.region == "us-gov-west-1"
    assert spec.data["state"]["bucket"] == "demo-proton-state"


def test_schema_is_well_formed() -> None:
    from jsonschema import Draft202012Validator

    schema = spec_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"]
    assert (ROOT / "byoc" / "_schemas" / "spec.schema.json").read_text() == (
        ROOT / "schemas" / "spec.schema.json"
    ).read_text()


def _walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}.{key}".lstrip("."), sub
        yield from _walk(sub, f"{path}.{key}")
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield from _walk(items, f"{path}[]")


def test_every_field_is_described_and_every_object_is_closed() -> None:
    schema = spec_schema()
    fields = list(_walk(schema))
    assert len(fields) > 50
    for name, sub in fields:
        assert sub.get("description"), f"{name} has no description"
        if "object" in (sub.get("type") or []) and name != "tags":
            assert sub.get("additionalProperties") is False, name
    assert schema["additionalProperties"] is False


def test_every_pattern_has_words() -> None:
    def patterns(node: Any) -> Iterator[Mapping[str, Any]]:
        if isinstance(node, Mapping):
            if "pattern" in node:
                yield node
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    found = list(patterns(spec_schema()))
    assert len(found) >= 10
    assert all(p.get("x-allowed") for p in found)


def test_importing_the_spec_package_does_not_import_jsonschema() -> None:
    code = "import sys, byoc.spec; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "False"
