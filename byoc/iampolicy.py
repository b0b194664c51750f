"""``byoc iam-policy``: the IAM policy the principal running byoc needs for one use of one spec
(``plan``, ``drift``, ``apply``, ``ops``), and the permissions boundary of the roles byoc creates.

Pure generation from the spec and ``byoc.iamactions.GRANTS`` (no AWS call): actions scoped by the
cluster's names and ARNs, or by its ``byoc:cluster`` tag where AWS supports it; documents split to
fit IAM's managed policy size; rendered as JSON, a CloudFormation template or Terraform HCL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from byoc.errors import ByocError
from byoc.iamactions import GRANTS, READ_ONLY_ACTIONS, READ_ONLY_PREFIXES, Grant
from byoc.spec import Spec

__all__ = [
    "READ_ONLY_ACTIONS",
    "READ_ONLY_PREFIXES",
    "USES",
    "DeployerPolicy",
    "boundary_document",
    "deployer_policy",
    "iam_action",
    "policy_size",
    "render",
]

USES = ("plan", "drift", "apply", "ops")
FORMATS = ("json", "cloudformation", "terraform")
#: IAM's limit for a managed policy document, in characters without whitespace
MAX_POLICY = 6144
CLUSTER_TAG = "byoc:cluster"
#: the public SSM parameters byoc reads the Amazon Linux 2023 AMI from (``byoc.resources.ami``)
AMI_PARAMETERS = "/aws/service/ami-amazon-linux-latest/"

#: API operations whose IAM action has another name (the rest: ``<service>:<operation>``)
_RENAMED = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "PutBucketReplication"): "s3:PutReplicationConfiguration",
    ("s3", "DeleteBucketReplication"): "s3:PutReplicationConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeleteBucketTagging"): "s3:PutBucketTagging",
    ("s3", "DeleteBucketLifecycle"): "s3:PutLifecycleConfiguration",
    ("s3", "DeleteBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    ("s3", "PutBucketNotificationConfiguration"): "s3:PutBucketNotification",
    ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
}
#: botocore endpoint prefixes whose IAM service prefix differs
_SERVICES = {"monitoring": "cloudwatch", "tagging": "tag"}


def iam_action(endpoint_prefix: str, operation: str) -> str:
    """The IAM action that authorises an API call (botocore's endpoint prefix and operation name)."""
    service = _SERVICES.get(endpoint_prefix, endpoint_prefix)
    return _RENAMED.get((service, operation), f"{service}:{operation}")


@dataclass(frozen=True)
class DeployerPolicy:
    """The deployer's policy documents for ``use`` (several when one would be too big), the
    boundary the roles byoc creates carry, and what the user must know."""

    cluster: str
    use: str
    documents: tuple[dict[str, Any], ...]
    boundary_arn: str
    boundary: dict[str, Any]
    notes: tuple[str, ...] = field(default=())

    def named(self) -> list[tuple[str, dict[str, Any]]]:
        """(policy name, document) of each document."""
        base = f"byoc-{self.cluster}-{self.use}"
        if len(self.documents) == 1:
            return [(base, self.documents[0])]
        return [(f"{base}-{i}", doc) for i, doc in enumerate(self.documents, 1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "use": self.use,
            "policies": [{"name": n, "document": d} for n, d in self.named()],
            "boundary": {
                "name": boundary_name(self.cluster),
                "arn": self.boundary_arn,
                "document": self.boundary,
            },
            "notes": list(self.notes),
        }


def boundary_name(cluster: str) -> str:
    return f"byoc-{cluster}-boundary"


class _Names:
    """The ARNs of what the cluster owns, from the spec (account unknown: ``*``)."""

    def __init__(self, spec: Spec) -> None:
        from byoc.blueprint.base import log_group_name, rotation_function_name
        from byoc.blueprint.network import flow_logs_group_name
        from byoc.model import partition

        self.spec = spec
        self.cluster = c = spec.cluster_name
        self.region = r = spec.region
        self.p = p = partition(r)
        storage = spec.data["storage"]
        names = [storage["bucket_name"], (storage.get("access_logs") or {}).get("bucket_name")]
        self.buckets = [f"arn:{p}:s3:::{n}" for n in names if n]
        groups = [log_group_name(c), flow_logs_group_name(c), f"/aws/lambda/{rotation_function_name(c)}"]
        self.log_groups = [f"arn:{p}:logs:{r}:*:log-group:{g}{tail}" for g in groups for tail in ("", ":*")]
        self.secret = [f"arn:{p}:secretsmanager:{r}:*:secret:byoc/{c}/*"]
        given = spec.data["security"].get("permissions_boundary_arn")
        self.boundary_arn = given or f"arn:{p}:iam::*:policy/{boundary_name(c)}"
        self.given_boundary = bool(given)

    def tagged(self, actions: tuple[str, ...]) -> list[str]:
        """Where tag-scoped ``actions`` apply: the ARNs of their service's resource types."""
        r, p = self.region, self.p
        kinds = {
            "ec2": f"arn:{p}:ec2:{r}:*:*",
            "kms": f"arn:{p}:kms:{r}:*:key/*",
            "ssm": f"arn:{p}:ec2:{r}:*:instance/*",
        }
        return sorted({kinds[a.split(":")[0]] for a in actions})

    def groups(self) -> dict[str, list[str]]:
        c, r, p = self.cluster, self.region, self.p
        state = self.spec.data.get("state") or {}
        remote = state.get("backend") == "s3" and state.get("bucket")
        key = state.get("key") or f"byoc/{c}/state.json"
        cert = (self.spec.data.get("load_balancer") or {}).get("certificate_arn")
        given_key = self.spec.data["security"]["encryption"].get("kms_key_arn")
        destination = (self.spec.data["storage"].get("replication") or {}).get("destination_bucket_arn")
        return {
            "*": ["*"],
            "iam": [f"arn:{p}:iam::*:role/byoc/{c}/*", f"arn:{p}:iam::*:instance-profile/byoc/{c}/*"],
            "buckets": self.buckets,
            "bucket_objects": [f"{b}/*" for b in self.buckets],
            "state": (
                [
                    f"arn:{p}:s3:::{state['bucket']}",
                    f"arn:{p}:s3:::{state['bucket']}/{key}",
                    f"arn:{p}:s3:::{state['bucket']}/{key}.lock",
                ]
                if remote
                else []
            ),
            "lock_table": (
                [f"arn:{p}:dynamodb:{r}:*:table/{state['dynamodb_table']}"]
                if remote and state.get("lock") == "dynamodb" and state.get("dynamodb_table")
                else []
            ),
            "log_groups": self.log_groups,
            "secret": self.secret,
            "topics": [f"arn:{p}:sns:{r}:*:{c}-*"],
            "alarms": [f"arn:{p}:cloudwatch:{r}:*:alarm:{c}-*"],
            "dashboard": [f"arn:{p}:cloudwatch::*:dashboard/{c}"],
            # a code signing config the spec names is the user's: any (AWS checks it at create)
            "functions": [f"arn:{p}:lambda:{r}:*:function:{c}-*",
                          f"arn:{p}:lambda:{r}:*:code-signing-config:*"],
            "queues": [f"arn:{p}:sqs:{r}:*:{c}-*"],
            "load_balancer": [
                f"arn:{p}:elasticloadbalancing:{r}:*:{kind}/{c}-*"
                for kind in (
                    "loadbalancer/app",
                    "loadbalancer/net",
                    "targetgroup",
                    "listener/app",
                    "listener/net",
                    "listener-rule/app",
                    "listener-rule/net",
                )
            ],
            "images": [f"arn:{p}:ec2:{r}::image/*", f"arn:{p}:ec2:{r}:*:key-pair/*"],
            "kms_alias": [f"arn:{p}:kms:{r}:*:alias/byoc/{c}*", f"arn:{p}:kms:{r}:*:key/*"],
            "ssm_document": [f"arn:{p}:ssm:{r}:*:document/AWS-RunShellScript"],
            "ami_parameter": [f"arn:{p}:ssm:{r}:*:parameter{AMI_PARAMETERS}*"],
            "certificate": [cert] if cert else [],
            "destination": [destination] if destination else [],
            "given_key": [given_key] if given_key else [],
        }


def _statement(
    sid: str,
    actions: list[str],
    resources: list[str],
    condition: dict[str, Any] | None = None,
    effect: str = "Allow",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Sid": sid,
        "Effect": effect,
        "Action": sorted(set(actions)),
        "Resource": resources if len(resources) != 1 else resources[0],
    }
    if condition:
        out["Condition"] = condition
    return out


def _grant_statements(g: Grant, names: _Names, groups: dict[str, list[str]]) -> list[dict[str, Any]]:
    tag = {names.cluster}
    if g.scope == "resource_tag":
        return [
            _statement(
                g.sid,
                list(g.actions),
                names.tagged(g.actions),
                {"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": sorted(tag)}},
            )
        ]
    if g.scope == "request_tag":
        return [
            _statement(
                g.sid,
                list(g.actions),
                ["*"] if g.actions == ("kms:CreateKey",) else names.tagged(g.actions),
                {"StringEquals": {f"aws:RequestTag/{CLUSTER_TAG}": sorted(tag)}},
            )
        ]
    if g.scope == "ssm_nodes":  # the AWS document has no tags: IfExists lets it through, not others' nodes
        return [
            _statement(
                g.sid,
                list(g.actions),
                groups["ssm_document"] + names.tagged(g.actions),
                {"StringEqualsIfExists": {f"aws:ResourceTag/{CLUSTER_TAG}": sorted(tag)}},
            )
        ]
    resources = groups[g.scope]
    return [_statement(g.sid, list(g.actions), resources)] if resources else []


def _role_statements(names: _Names) -> list[dict[str, Any]]:
    """Roles: created and given policies only with the boundary; the boundary cannot be lifted,
    swapped or edited."""
    c, p, arn = names.cluster, names.p, names.boundary_arn
    roles = [f"arn:{p}:iam::*:role/byoc/{c}/*"]
    bounded = {"ArnLike": {"iam:PermissionsBoundary": [arn]}}
    return [
        _statement(
            "CreateBoundedRoles",
            ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"],
            roles,
            bounded,
        ),
        _statement("KeepTheBoundary", ["iam:DeleteRolePermissionsBoundary"], ["*"], effect="Deny"),
        _statement(
            "NoOtherBoundary",
            ["iam:PutRolePermissionsBoundary", "iam:CreateRole"],
            ["*"],
            {"ArnNotLike": {"iam:PermissionsBoundary": [arn]}},
            effect="Deny",
        ),
        _statement(
            "BoundaryIsFixed",
            [
                "iam:CreatePolicyVersion",
                "iam:DeletePolicy",
                "iam:DeletePolicyVersion",
                "iam:SetDefaultPolicyVersion",
            ],
            [arn],
            effect="Deny",
        ),
    ]


def deployer_policy(spec: Spec, use: str) -> DeployerPolicy:
    """The policy for ``use`` of ``spec`` (``USES``); ByocError for another use."""
    if use not in USES:
        raise ByocError(f"--for must be one of {', '.join(USES)}, not {use!r}")
    names = _Names(spec)
    groups = names.groups()
    statements = [s for g in GRANTS if use in g.uses for s in _grant_statements(g, names, groups)]
    if use in ("apply", "ops"):
        statements += _role_statements(names)
    documents = _split(statements)
    notes = []
    if len(documents) > 1:
        notes.append(
            f"the policy is {len(documents)} managed policies (IAM allows {MAX_POLICY} "
            "characters each): attach all of them"
        )
    if not names.given_boundary and use in ("apply", "ops"):
        notes.append(
            f"create the boundary policy {boundary_name(names.cluster)} (printed with it) and "
            "put its ARN in the spec as security.permissions_boundary_arn: roles byoc creates "
            "without it are refused by this policy"
        )
    return DeployerPolicy(
        names.cluster, use, tuple(documents), names.boundary_arn, boundary_document(spec), tuple(notes)
    )


def policy_size(doc: dict[str, Any]) -> int:
    """The size IAM counts: the JSON text without whitespace."""
    return len(json.dumps(doc, separators=(",", ":")))


def _split(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements packed in order into documents of at most ``MAX_POLICY`` characters."""
    docs: list[list[dict[str, Any]]] = [[]]
    for s in statements:
        if docs[-1] and policy_size(_doc(docs[-1] + [s])) > MAX_POLICY:
            docs.append([])
        docs[-1].append(s)
    return [_doc(d) for d in docs]


def _doc(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def boundary_document(spec: Spec) -> dict[str, Any]:
    """What the roles byoc creates may ever do: the union of the node, flow log, replication and
    cross-account roles' policies (``byoc.blueprint``), scoped to the cluster's names."""
    from byoc.blueprint.iam import (
        DRIFT_BUCKET_READ,
        DRIFT_KEY_READ,
        DRIFT_READ,
        DRIFT_ROLE_READ,
        metrics_namespace,
    )

    names = _Names(spec)
    groups = names.groups()
    c, p, r = names.cluster, names.p, names.region
    replication = (spec.data["storage"].get("replication") or {}).get("destination_bucket_arn")
    buckets = groups["buckets"] + ([replication] if replication else [])
    # keys the spec names (not tagged for the cluster): its kms_key_arn, the replicas' key
    keys = [
        spec.data["security"]["encryption"].get("kms_key_arn"),
        (spec.data["storage"].get("replication") or {}).get("destination_kms_key_arn"),
    ]
    named_keys = (
        [
            _statement(
                "NamedKeys", ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [k for k in keys if k]
            )
        ]
        if any(keys)
        else []
    )
    return _doc(
        [
            _statement(
                "Buckets",
                ["s3:GetBucketLocation", "s3:ListBucket", "s3:GetReplicationConfiguration"],
                buckets,
            ),
            _statement(
                "Objects",
                [
                    "s3:AbortMultipartUpload",
                    "s3:DeleteObject",
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionTagging",
                    "s3:ReplicateObject",
                    "s3:ReplicateTags",
                    "s3:ReplicateDelete",
                ],
                [f"{b}/*" for b in buckets],
            ),
            _statement(
                "Logs",
                [
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                    "logs:FilterLogEvents",
                    "logs:GetLogEvents",
                ],
                names.log_groups,
            ),
            _statement(
                "Metrics",
                ["cloudwatch:PutMetricData"],
                ["*"],
                {"StringEquals": {"cloudwatch:namespace": [metrics_namespace(c)]}},
            ),
            _statement(
                "Observe",
                [
                    "cloudwatch:GetMetricData",
                    "cloudwatch:ListMetrics",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeInstances",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeVolumes",
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetHealth",
                ],
                ["*"],
            ),
            _statement(
                "ReadAlarms", ["cloudwatch:DescribeAlarms"], [f"arn:{p}:cloudwatch:{r}:*:alarm:{c}-*"]
            ),
            # the cross-account role's reads for drift (byoc.blueprint.iam._drift_statements)
            _statement("DriftDescribe", DRIFT_READ, ["*"]),
            _statement("DriftBuckets", DRIFT_BUCKET_READ, groups["buckets"]),
            _statement("DriftRoles", DRIFT_ROLE_READ, groups["iam"]),
            _statement(
                "DriftTopic", ["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic"], groups["topics"]
            ),
            _statement("DriftDashboard", ["cloudwatch:GetDashboard"], groups["dashboard"]),
            _statement(
                "DriftKeys",
                DRIFT_KEY_READ,
                [f"arn:{p}:kms:{r}:*:key/*"],
                {"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": [c]}},
            ),
            *([_statement("DriftState", ["s3:GetObject", "s3:ListBucket"], groups["state"])]
              if groups["state"] else []),
            _statement("AdminPassword", ["secretsmanager:GetSecretValue"], names.secret),
            _statement(
                "SessionManager",
                [
                    "ec2messages:AcknowledgeMessage",
                    "ec2messages:DeleteMessage",
                    "ec2messages:FailMessage",
                    "ec2messages:GetEndpoint",
                    "ec2messages:GetMessages",
                    "ec2messages:SendReply",
                    "ssm:UpdateInstanceInformation",
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                ["*"],
            ),
            _statement(
                "Keys",
                ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                [f"arn:{p}:kms:{r}:*:key/*"],
                {"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": [c]}},
            ),
            _statement(
                "ManagedKeys",
                ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                [f"arn:{p}:kms:{r}:*:key/*"],
                {
                    "StringLike": {
                        "kms:ViaService": [f"s3.{r}.amazonaws.com", f"secretsmanager.{r}.amazonaws.com"]
                    }
                },
            ),
            *named_keys,
            *_rotation_statements(names),
        ]
    )


def _rotation_statements(names: _Names) -> list[dict[str, Any]]:
    """The password rotation function's role (``byoc.blueprint.rotation``), when the spec has one: its
    secret, SSM commands on the cluster's nodes, its queue and network interfaces, X-Ray."""
    from byoc.blueprint.base import rotation_enabled

    if not rotation_enabled(names.spec):
        return []
    c, p, r = names.cluster, names.p, names.region
    return [
        _statement("RotateThePassword", ["secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue",
                                         "secretsmanager:UpdateSecretVersionStage"], names.secret),
        _statement("RotationUnscoped", ["ec2:DescribeNetworkInterfaces", "secretsmanager:GetRandomPassword",
                                        "ssm:GetCommandInvocation", "xray:PutTelemetryRecords",
                                        "xray:PutTraceSegments"], ["*"]),
        _statement("RotationCommands", ["ssm:SendCommand"], [f"arn:{p}:ssm:{r}:*:document/AWS-RunShellScript",
                                                              f"arn:{p}:ec2:{r}:*:instance/*"],
                   {"StringEqualsIfExists": {f"ssm:resourceTag/{CLUSTER_TAG}": [c]}}),
        _statement("RotationDeadLetters", ["sqs:SendMessage"], [f"arn:{p}:sqs:{r}:*:{c}-*"]),
        # the cross-account role's drift reads of the function and its queue
        _statement("DriftRotation", ["lambda:GetFunction", "lambda:GetFunctionCodeSigningConfig",
                                     "lambda:GetPolicy", "sqs:GetQueueAttributes", "sqs:ListQueueTags"],
                   [f"arn:{p}:lambda:{r}:*:function:{c}-*", f"arn:{p}:sqs:{r}:*:{c}-*"]),
        _statement("RotationNetwork", ["ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
                                       "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"],
                   [f"arn:{p}:ec2:{r}:*:{w}/*" for w in ("network-interface", "security-group", "subnet")]),
    ]


def render(policy: DeployerPolicy, fmt: str) -> str:
    """The policy as ``json`` (documents, boundary, notes), a CloudFormation template or Terraform."""
    if fmt == "json":
        return json.dumps(policy.to_dict(), indent=2)
    if fmt == "cloudformation":
        return json.dumps(_cloudformation(policy), indent=2)
    if fmt == "terraform":
        return _terraform(policy)
    raise ByocError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def _logical(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def _cloudformation(policy: DeployerPolicy) -> dict[str, Any]:
    """A template: the boundary and each deployer policy as AWS::IAM::ManagedPolicy; the boundary's
    ARN in the documents is the template's own (``!Ref``)."""
    name = boundary_name(policy.cluster)
    resources: dict[str, Any] = {
        "Boundary": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "ManagedPolicyName": name,
                "Description": f"byoc {policy.cluster}: what its roles may do",
                "PolicyDocument": policy.boundary,
            },
        },
    }
    for n, doc in policy.named():
        text = json.dumps(doc).replace(json.dumps(policy.boundary_arn), '"${Boundary}"')
        resources[_logical(n)] = {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "ManagedPolicyName": n,
                "Description": f"byoc {policy.cluster}: {policy.use}",
                "PolicyDocument": {"Fn::Sub": text},
            },
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"byoc iam-policy for cluster {policy.cluster}, --for {policy.use}",
        "Resources": resources,
        "Outputs": {
            "BoundaryArn": {
                "Description": "security.permissions_boundary_arn in the spec",
                "Value": {"Ref": "Boundary"},
            }
        },
    }


def _terraform(policy: DeployerPolicy) -> str:
    name = boundary_name(policy.cluster)
    out = [
        f"# byoc iam-policy for cluster {policy.cluster}, --for {policy.use}",
        'resource "aws_iam_policy" "boundary" {',
        f'  name   = "{name}"',
        f"  policy = jsonencode({json.dumps(policy.boundary, indent=2)})",
        "}",
        "",
    ]
    for n, doc in policy.named():
        text = json.dumps(doc, indent=2).replace(
            json.dumps(policy.boundary_arn), '"${aws_iam_policy.boundary.arn}"'
        )
        out += [
            f'resource "aws_iam_policy" "{n.replace("-", "_")}" {{',
            f'  name   = "{n}"',
            f"  policy = jsonencode({text})",
            "}",
            "",
        ]
    out += ['output "permissions_boundary_arn" {', "  value = aws_iam_policy.boundary.arn", "}"]
    return "\n".join(out) + "\n"
