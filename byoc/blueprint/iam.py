"""Identities: the nodes' role and instance profile (least privilege, no wildcard actions) and
the optional cross-account management role for the provider (trust requires sts:ExternalId); every
role byoc makes carries ``security.permissions_boundary_arn`` when the spec sets it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from byoc.blueprint.base import Builder, rotation_enabled, rotation_function_name
from byoc.blueprint.network import FLOW_LOGS_POLICY, flow_logs_role_name
from byoc.blueprint.policy import document, statement
from byoc.blueprint.replication import REPLICATION_POLICY, replication_role_name
from byoc.blueprint.storage import Storage
from byoc.model import Ref, default_state_key
from byoc.spec import Spec

NODE_POLICY = "proton-node"
OPERATIONS_POLICY = "proton-operations"
#: the password rotation function's inline policy (blueprint.rotation)
ROTATION_POLICY = "password-rotation"


@dataclass(frozen=True)
class Identity:
    role: str
    profile: str


def metrics_namespace(cluster: str) -> str:
    return f"ProtonCluster/{cluster}"


def iam_names(spec: Spec) -> dict[str, dict[str, frozenset[str]]]:
    """The IAM names ``build_iam`` gives for ``spec`` (no facts needed): kind → name → the
    role's inline policy names. IAM names are unique in an account, so discovery reads these."""
    cluster = spec.cluster_name
    roles = {f"{cluster}-node": frozenset({NODE_POLICY})}
    if spec.data["security"].get("cross_account_role"):
        roles[f"{cluster}-management"] = frozenset({OPERATIONS_POLICY})
    if spec.data["network"]["flow_logs"]["enabled"]:
        roles[flow_logs_role_name(cluster)] = frozenset({FLOW_LOGS_POLICY})
    if spec.data["storage"].get("replication"):
        roles[replication_role_name(cluster)] = frozenset({REPLICATION_POLICY})
    if rotation_enabled(spec):
        roles[rotation_function_name(cluster)] = frozenset({ROTATION_POLICY})
    return {"aws_iam_role": roles, "aws_iam_instance_profile": {f"{cluster}-node": frozenset()}}


def build_iam(b: Builder, storage: Storage, log_group: str) -> Identity:
    path = f"/byoc/{b.cluster}/"
    node_statements = [
        statement("Allow", ["s3:GetBucketLocation", "s3:ListBucket"], [storage.bucket_arn],
                  sid="BucketList"),
        statement("Allow", ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                  [f"{storage.bucket_arn}/*"], sid="BucketObjects"),
        statement("Allow", ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                  [Ref(log_group, "arn_wildcard")], sid="Logs"),
        statement("Allow", ["cloudwatch:PutMetricData"], ["*"], sid="Metrics",
                  condition={"StringEquals": {"cloudwatch:namespace": [metrics_namespace(b.cluster)]}}),
        statement("Allow", ["secretsmanager:GetSecretValue"], [Ref(storage.secret, "arn")],
                  sid="AdminPassword"),
        # Session Manager (shell access without SSH): these actions support no resource scoping
        statement("Allow", [
            "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
            "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
            "ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel",
            "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
            "ssmmessages:OpenDataChannel",
        ], ["*"], sid="SessionManager"),
    ]
    if storage.kms_key is not None:
        node_statements.append(statement("Allow", ["kms:Decrypt", "kms:GenerateDataKey"], [storage.kms_key],
                                         sid="Kms"))
    role = b.add("aws_iam_role", "node", None, {
        "name": f"{b.cluster}-node",
        "path": path,
        "description": f"byoc {b.cluster}: Proton nodes",
        "assume_role_policy": document(statement(
            "Allow", ["sts:AssumeRole"], principal={"Service": ["ec2.amazonaws.com"]})),
        "inline_policies": {NODE_POLICY: document(*node_statements)},
        "max_session_duration": 3600,
    })
    profile = b.add("aws_iam_instance_profile", "node", None, {
        "name": f"{b.cluster}-node", "path": path, "role": Ref(role, "name"),
    })

    xacct = b.spec.data["security"].get("cross_account_role")
    if xacct:
        _management_role(b, path, xacct, storage, log_group)
    _bound_roles(b)
    return Identity(role, profile)


def _bound_roles(b: Builder) -> None:
    """Every role built so far (node, management, flow logs, replication: all of the cluster's)
    gets the spec's permissions boundary, if it names one."""
    boundary = b.spec.data["security"].get("permissions_boundary_arn")
    if boundary:
        b.nodes[:] = [replace(r, props={**r.props, "permissions_boundary": boundary})
                      if r.kind == "aws_iam_role" else r for r in b.nodes]


#: the kinds of alarm ``monitoring.build_alarms`` names ``<cluster>-<kind>-<key>``
ALARM_KINDS = ("cpu", "status", "disk", "unhealthy")


def alarm_arns(b: Builder) -> list[str]:
    """ARN patterns of the cluster's alarms, per kind: ``<cluster>-*`` alone would also match
    the alarms of a cluster whose name starts with ``<cluster>-``."""
    base = f"arn:{b.partition}:cloudwatch:{b.region}:{b.facts.account}:alarm:{b.cluster}"
    return [f"{base}-{kind}-*" for kind in ALARM_KINDS]


def _management_role(b: Builder, path: str, xacct: dict[str, Any], storage: Storage, log_group: str) -> None:
    account = xacct["provider_account_id"]
    read = [
        "cloudwatch:GetMetricData", "cloudwatch:ListMetrics",
        "ec2:DescribeInstanceStatus", "ec2:DescribeInstances", "ec2:DescribeSnapshots",
        "ec2:DescribeVolumes", "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
    ]
    b.add("aws_iam_role", "management", None, {
        "name": f"{b.cluster}-management",
        "path": path,
        "description": f"byoc {b.cluster}: read-only operations access for the provider",
        "assume_role_policy": document(statement(
            "Allow", ["sts:AssumeRole"],
            principal={"AWS": [f"arn:{b.partition}:iam::{account}:root"]},
            condition={"StringEquals": {"sts:ExternalId": [xacct["external_id"]]}},
        )),
        "inline_policies": {OPERATIONS_POLICY: document(
            # these Describe/List actions support no resource-level scoping in IAM
            statement("Allow", read, ["*"], sid="Observe"),
            # DescribeAlarms takes the alarm resource type: the cluster's metric alarms only (their
            # names are <cluster>-<kind>-<key>, see monitoring.build_alarms)
            statement("Allow", ["cloudwatch:DescribeAlarms"], alarm_arns(b), sid="ReadAlarms"),
            statement("Allow", ["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"],
                      [Ref(log_group, "arn_wildcard")], sid="ReadLogs"),
            statement("Allow", ["s3:ListBucket"], [storage.bucket_arn], sid="ListBackups",
                      condition={"StringLike": {"s3:prefix": ["backups/*"]}}),
            statement("Allow", ["s3:GetObject"], [f"{storage.bucket_arn}/backups/*"], sid="ReadBackups"),
            *([statement("Allow", ["kms:Decrypt"], [storage.kms_key], sid="DecryptBackups")]
              if storage.kms_key is not None else []),
            *_drift_statements(b, path, storage),
        )},
        "max_session_duration": 3600,
    })


#: what `byoc drift` reads besides what health and the operations above read: each kind's
#: Describe/List call, which IAM cannot scope to a resource
DRIFT_READ = [
    "ec2:DescribeAddresses", "ec2:DescribeFlowLogs", "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets", "ec2:DescribeVpcAttribute", "ec2:DescribeVpcs",
    "ec2:DescribeVpcEndpointServiceConfigurations", "ec2:DescribeVpcEndpointServicePermissions",
    "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetGroupAttributes",
    "iam:ListInstanceProfiles", "iam:ListRoles", "kms:ListAliases", "logs:DescribeLogGroups",
    "secretsmanager:ListSecrets", "tag:GetResources", "lambda:ListFunctions", "sqs:ListQueues",
]

#: the buckets' configuration reads of drift (scoped to the cluster's buckets)
DRIFT_BUCKET_READ = [
    "s3:GetBucketLogging", "s3:GetBucketNotification", "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging",
    "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
]
#: the roles' and instance profile's reads of drift (scoped to the cluster's IAM path)
DRIFT_ROLE_READ = ["iam:GetInstanceProfile", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies",
                   "iam:ListRoleTags"]
#: the created key's reads of drift
DRIFT_KEY_READ = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]


def _drift_statements(b: Builder, path: str, storage: Storage) -> list[dict[str, Any]]:
    """Read-only access for `byoc drift` from the provider's account: the unscopable Describe/List
    calls, and the reads that IAM scopes to the cluster's own buckets, roles, topic, dashboard, key
    and (with the s3 backend) state object. Nothing here changes anything."""
    iam = f"arn:{b.partition}:iam::{b.facts.account}"
    buckets = [storage.bucket_arn, f"arn:{b.partition}:s3:::{storage.log_bucket_name}"]
    out = [
        statement("Allow", DRIFT_READ, ["*"], sid="DriftDescribe"),
        statement("Allow", DRIFT_BUCKET_READ, buckets, sid="DriftBuckets"),
        statement("Allow", DRIFT_ROLE_READ, [f"{iam}:role{path}*", f"{iam}:instance-profile{path}*"],
                  sid="DriftRoles"),
        statement("Allow", ["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic"],
                  [f"arn:{b.partition}:sns:{b.region}:{b.facts.account}:{b.cluster}-alarms"],
                  sid="DriftTopic"),
        statement("Allow", ["cloudwatch:GetDashboard"],
                  [f"arn:{b.partition}:cloudwatch::{b.facts.account}:dashboard/{b.cluster}"],
                  sid="DriftDashboard"),
    ]
    if storage.kms_key is not None:
        out.append(statement("Allow", DRIFT_KEY_READ, [storage.kms_key], sid="DriftKey"))
    if rotation_enabled(b.spec):  # the rotation function and its queue (blueprint.rotation)
        name = rotation_function_name(b.cluster)
        out += [
            statement("Allow", ["lambda:GetFunction", "lambda:GetFunctionCodeSigningConfig",
                                "lambda:GetPolicy"],
                      [f"arn:{b.partition}:lambda:{b.region}:{b.facts.account}:function:{name}"],
                      sid="DriftRotationFunction"),
            statement("Allow", ["sqs:GetQueueAttributes", "sqs:ListQueueTags"],
                      [f"arn:{b.partition}:sqs:{b.region}:{b.facts.account}:{name}-dlq"],
                      sid="DriftRotationQueue"),
        ]
    state = b.spec.data.get("state") or {}
    if state.get("backend") == "s3" and state.get("bucket"):
        key = state.get("key") or default_state_key(b.cluster)
        out += [
            statement("Allow", ["s3:GetObject"], [f"arn:{b.partition}:s3:::{state['bucket']}/{key}"],
                      sid="ReadState"),
            statement("Allow", ["s3:ListBucket"], [f"arn:{b.partition}:s3:::{state['bucket']}"],
                      sid="ListState"),
        ]
    return out
