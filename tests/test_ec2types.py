"""byoc's table of EBS optimisation per instance type agrees with AWS's data (moto ships a copy of
DescribeInstanceTypes for every type), and the blueprint sets ``ebs_optimized`` from it."""

from __future__ import annotations

from pathlib import Path

import boto3
from moto import mock_aws

from byoc import blueprint
from byoc.blueprint import Facts
from byoc.spec import load_spec
from byoc.spec.ec2types import ebs_optimized, ebs_optimized_support

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_says_what_describe_instance_types_says_for_every_type() -> None:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-west-2")
        support = {t["InstanceType"]: t["EbsInfo"]["EbsOptimizedSupport"]
                   for page in ec2.get_paginator("describe_instance_types").paginate()
                   for t in page["InstanceTypes"]}
    assert len(support) > 1000
    wrong = {t: (s, ebs_optimized_support(t)) for t, s in support.items() if ebs_optimized_support(t) != s}
    assert not wrong
    assert {s for s in support.values()} == {"default", "supported", "unsupported"}


def test_nodes_are_ebs_optimized_unless_their_type_cannot_be() -> None:
    for itype, want in (("c5.2xlarge", True), ("m3.xlarge", True), ("t2.large", False), ("t3.large", True)):
        spec = load_spec(ROOT / "specs/prod.yaml", [f"compute.instance_type={itype}"])
        nodes = [r for r in blueprint.build(spec, Facts()) if r.kind == "aws_instance"]
        assert nodes and all(n.props["ebs_optimized"] is want for n in nodes), itype
        assert ebs_optimized(itype) is want
