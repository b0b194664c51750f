"""The IAM actions byoc calls, per service and per use (``byoc iam-policy``'s table).

Each entry names the actions of one group of AWS calls that byoc's kinds (``byoc.resources``), its
operations (``byoc.operations``) and its state store make, and how they can be scoped: by the
cluster's ARNs (``arns``: names the spec fixes), by the ``byoc:cluster`` tag of an existing resource
(``"resource_tag"``) or of one being created (``"request_tag"``), or not at all (``"*"``: the
Describe/List actions that AWS authorises on ``*`` only). ``tests/test_iam_policy.py`` proves the
table against every call of a recorded lifecycle on moto.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    """Actions byoc needs for ``uses``, scoped by ``scope``: ``"*"``, ``"resource_tag"``,
    ``"request_tag"``, or the name of an ARN group of ``byoc.iampolicy.arn_groups``."""

    sid: str
    actions: tuple[str, ...]
    scope: str
    uses: frozenset[str]


READ = frozenset({"plan", "drift", "apply", "ops"})
WRITE = frozenset({"apply", "ops"})
OPS = frozenset({"ops"})


def _g(sid: str, scope: str, uses: frozenset[str], *actions: str) -> Grant:
    return Grant(sid, tuple(sorted(set(actions))), scope, uses)


GRANTS: tuple[Grant, ...] = (
    # -- reading: discovery, plan, drift (every Describe here is authorised on * only) ----------------
    _g("DescribeEverywhere", "*", READ,
       "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones", "ec2:DescribeFlowLogs",
       "ec2:DescribeImages", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceStatus",
       "ec2:DescribeInstanceTypes", "ec2:DescribeInstances", "ec2:DescribeInternetGateways",
       "ec2:DescribeNatGateways", "ec2:DescribeNetworkInterfaces", "ec2:DescribeRouteTables",
       "ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups", "ec2:DescribeSnapshots",
       "ec2:DescribeSubnets", "ec2:DescribeTags", "ec2:DescribeVolumes", "ec2:DescribeVpcAttribute",
       "ec2:DescribeVpcs", "ec2:DescribeAccountAttributes", "ec2:DescribeVolumesModifications",
       "ec2:DescribeKeyPairs",
       "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancerAttributes",
       "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTags",
       "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:DescribeTargetGroups",
       "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeRules",
       "elasticloadbalancing:DescribeListenerAttributes",
       "kms:ListAliases", "kms:ListKeys", "logs:DescribeLogGroups", "cloudwatch:ListDashboards",
       "cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource",
       "sns:ListTopics", "iam:ListRoles", "iam:ListInstanceProfiles",
       "secretsmanager:ListSecrets", "s3:ListAllMyBuckets", "tag:GetResources", "sts:GetCallerIdentity",
       "servicequotas:GetServiceQuota"),
    _g("ReadKeys", "resource_tag", READ,
       "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"),
    _g("ReadRoles", "iam", READ,
       "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListRoleTags",
       "iam:GetInstanceProfile", "iam:ListInstanceProfileTags"),
    _g("ReadBuckets", "buckets", READ,
       "s3:GetBucketTagging", "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration",
       "s3:GetBucketPublicAccessBlock", "s3:GetBucketPolicy", "s3:GetLifecycleConfiguration",
       "s3:GetBucketLogging", "s3:GetBucketOwnershipControls", "s3:GetReplicationConfiguration",
       "s3:GetBucketNotification", "s3:GetBucketLocation", "s3:ListBucket", "s3:GetBucketAcl",
       "s3:GetBucketObjectLockConfiguration"),
    _g("ReadState", "state", READ, "s3:GetObject", "s3:GetBucketVersioning", "s3:ListBucket"),
    _g("ReadLogGroups", "log_groups", READ, "logs:ListTagsForResource", "logs:ListTagsLogGroup",
       "logs:DescribeLogStreams"),
    _g("ReadSecret", "secret", READ, "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"),
    _g("ReadTopics", "topics", READ, "sns:GetTopicAttributes", "sns:ListTagsForResource",
       "sns:ListSubscriptionsByTopic", "sns:GetSubscriptionAttributes"),
    _g("ReadDashboard", "dashboard", READ, "cloudwatch:GetDashboard"),
    # -- changing: apply and destroy ---------------------------------------------------------------
    _g("Ec2CreateTagged", "request_tag", WRITE,
       "ec2:AllocateAddress", "ec2:CreateFlowLogs", "ec2:CreateInternetGateway", "ec2:CreateNatGateway",
       "ec2:CreateRouteTable", "ec2:CreateSecurityGroup", "ec2:CreateSubnet", "ec2:CreateVolume",
       "ec2:CreateVpc", "ec2:RunInstances", "ec2:CreateSnapshot", "ec2:CreateTags"),
    _g("Ec2ChangeOwned", "resource_tag", WRITE,
       "ec2:AssociateRouteTable", "ec2:AttachInternetGateway", "ec2:AttachVolume",
       "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateRoute",
       "ec2:CreateTags", "ec2:DeleteFlowLogs", "ec2:DeleteInternetGateway", "ec2:DeleteNatGateway",
       "ec2:DeleteRoute", "ec2:DeleteRouteTable", "ec2:DeleteSecurityGroup", "ec2:DeleteSnapshot",
       "ec2:DeleteSubnet", "ec2:DeleteTags", "ec2:DeleteVolume", "ec2:DeleteVpc", "ec2:DetachInternetGateway",
       "ec2:DetachVolume", "ec2:DisassociateRouteTable", "ec2:ModifyInstanceAttribute",
       "ec2:ModifyInstanceMetadataOptions", "ec2:ModifySubnetAttribute", "ec2:ModifyVolume",
       "ec2:ModifyVpcAttribute", "ec2:ReleaseAddress", "ec2:ReplaceRoute", "ec2:RevokeSecurityGroupEgress",
       "ec2:RevokeSecurityGroupIngress", "ec2:StartInstances", "ec2:StopInstances",
       "ec2:TerminateInstances", "ec2:DisassociateAddress", "ec2:MonitorInstances",
       "ec2:UnmonitorInstances", "ec2:ModifySecurityGroupRules", "ec2:ReplaceRouteTableAssociation",
       "ec2:CreateSnapshot", "ec2:CreateVolume", "ec2:RunInstances", "ec2:CreateNatGateway",
       "ec2:CreateSubnet", "ec2:CreateSecurityGroup", "ec2:CreateRouteTable", "ec2:CreateFlowLogs"),
    _g("Ec2Image", "images", WRITE, "ec2:RunInstances"),
    _g("PassNodeRoles", "iam", WRITE, "iam:PassRole"),
    _g("ChangeRoles", "iam", WRITE,
       "iam:DeleteRolePolicy", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:TagRole",
       "iam:UntagRole", "iam:DeleteRole", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole",
       "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:AddRoleToInstanceProfile",
       "iam:RemoveRoleFromInstanceProfile", "iam:TagInstanceProfile", "iam:UntagInstanceProfile"),
    _g("CreateKeys", "request_tag", WRITE, "kms:CreateKey", "kms:TagResource"),
    _g("ChangeKeys", "resource_tag", WRITE,
       "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion",
       "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription", "kms:CreateGrant",
       "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom",
       "kms:ReEncryptTo"),
    _g("KeyAliases", "kms_alias", WRITE, "kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"),
    _g("ChangeBuckets", "buckets", WRITE,
       "s3:CreateBucket", "s3:PutBucketTagging", "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration",
       "s3:PutBucketPublicAccessBlock", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
       "s3:PutLifecycleConfiguration", "s3:PutBucketLogging", "s3:PutBucketOwnershipControls",
       "s3:PutReplicationConfiguration", "s3:PutBucketNotification", "s3:DeleteBucket",
       "s3:ListBucketVersions"),
    _g("BucketObjects", "bucket_objects", WRITE, "s3:DeleteObject", "s3:DeleteObjectVersion",
       "s3:GetObject", "s3:PutObject"),
    _g("WriteState", "state", WRITE, "s3:PutObject", "s3:DeleteObject"),
    _g("StateLockTable", "lock_table", WRITE,
       "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DescribeTable"),
    _g("ChangeLogGroups", "log_groups", WRITE,
       "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
       "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:TagResource", "logs:UntagResource",
       "logs:TagLogGroup", "logs:UntagLogGroup"),
    _g("ChangeSecret", "secret", WRITE,
       "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:UpdateSecret",
       "secretsmanager:TagResource", "secretsmanager:UntagResource", "secretsmanager:RestoreSecret",
       "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"),
    _g("GeneratePassword", "*", WRITE, "secretsmanager:GetRandomPassword"),
    _g("ChangeTopics", "topics", WRITE,
       "sns:CreateTopic", "sns:DeleteTopic", "sns:SetTopicAttributes", "sns:Subscribe", "sns:Unsubscribe",
       "sns:TagResource", "sns:UntagResource"),
    _g("ChangeAlarms", "alarms", WRITE,
       "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource",
       "cloudwatch:UntagResource"),
    _g("ChangeDashboard", "dashboard", WRITE, "cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"),
    _g("ChangeLoadBalancer", "load_balancer", WRITE,
       "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:DeleteLoadBalancer",
       "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetSecurityGroups",
       "elasticloadbalancing:SetSubnets", "elasticloadbalancing:CreateTargetGroup",
       "elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:ModifyTargetGroup",
       "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:CreateListener",
       "elasticloadbalancing:DeleteListener", "elasticloadbalancing:ModifyListener",
       "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets",
       "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags",
       "elasticloadbalancing:ModifyListenerAttributes"),
    # SSM Run Command: the nodes (by tag) and the AWS document byoc runs (health gates, freeze)
    _g("RunOnNodes", "resource_tag", WRITE, "ssm:SendCommand"),
    _g("RunDocument", "ssm_document", WRITE, "ssm:SendCommand"),
    _g("CommandResults", "*", WRITE, "ssm:GetCommandInvocation", "ssm:ListCommandInvocations",
       "ssm:CancelCommand", "ssm:DescribeInstanceInformation"),
    # -- day 2 only ----------------------------------------------------------------------------------
    _g("ReadNodeLogs", "log_groups", OPS, "logs:FilterLogEvents", "logs:GetLogEvents"),
    _g("ReadMetrics", "*", OPS, "cloudwatch:GetMetricData", "cloudwatch:ListMetrics",
       "cloudwatch:GetMetricStatistics"),
    _g("ReadSecretValue", "secret", OPS, "secretsmanager:GetSecretValue"),
)

#: the first words of actions that change nothing (``--for plan`` and ``--for drift`` use only these)
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head")
#: read-only actions whose names do not say so
READ_ONLY_ACTIONS = frozenset()
