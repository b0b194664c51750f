"""aws_s3_bucket against moto: create = discover, settings in place, adoption, emptying on delete,
and what moto does not do (propagation delays, busy buckets, other accounts' names) by injection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources._replication import replication_from_aws, replication_to_aws
from byoc.resources._s3 import (
    lifecycle_from_aws,
    normalise_policy,
    notification_from_aws,
    notification_from_props,
    notification_to_aws,
)
from byoc.resources.s3_bucket import KIND, S3Bucket

ADDR = "aws_s3_bucket.data"
NAME = "byoc-test-data"
TAGS = {"Name": NAME, "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"}
KMS_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def tls_policy(bucket: str = NAME) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": ["false"]}},
            }
        ],
    }


def rule(rule_id: str, prefix: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": rule_id,
        "prefix": prefix,
        "expiration_days": None,
        "noncurrent_version_expiration_days": None,
        "transitions": [],
        "abort_incomplete_multipart_upload_days": None,
    }
    return {**base, **over}


RULES = [
    rule("abort-uploads", "", abort_incomplete_multipart_upload_days=7),
    rule(
        "expire-backups",
        "backups/",
        expiration_days=365,
        noncurrent_version_expiration_days=30,
        transitions=[{"days": 90, "storage_class": "GLACIER"}],
    ),
]


#: the blueprint's notification configurations: every event to EventBridge, or none at all
EVENTBRIDGE = {"eventbridge": True, "lambda_function": [], "queue": [], "topic": []}
NO_EVENTS = {**EVENTBRIDGE, "eventbridge": False}


def props(**over: Any) -> dict[str, Any]:
    base = {
        "bucket": NAME,
        "versioning": True,
        "sse_algorithm": "AES256",
        "kms_master_key_id": None,
        "bucket_key_enabled": False,
        "public_access_block": {
            "block_public_acls": True,
            "block_public_policy": True,
            "ignore_public_acls": True,
            "restrict_public_buckets": True,
        },
        "object_ownership": "BucketOwnerEnforced",
        "policy": tls_policy(),
        "lifecycle_rules": RULES,
        "logging": [],
        "notification": EVENTBRIDGE,
        "replication_configuration": [],
        "tags": TAGS,
    }
    return {**base, **over}


ROLE_ARN = "arn:aws:iam::123456789012:role/byoc/test/test-replication"
DR_ARN = "arn:aws:s3:::byoc-test-dr"
DR_KEY = "arn:aws:kms:us-east-1:123456789012:key/abcd1234-12ab-34cd-56ef-1234567890ab"


def replication(key: str | None = None, storage_class: str = "STANDARD_IA") -> list[dict[str, Any]]:
    """The blueprint's ``replication_configuration`` (the provider's block) to ``DR_ARN``."""
    return [{"role": ROLE_ARN, "rules": [{
        "id": "replicate-all", "priority": 1, "status": "Enabled", "filter": [{"prefix": ""}],
        "delete_marker_replication_status": "",
        "destination": [{"bucket": DR_ARN, "storage_class": storage_class, "replica_kms_key_id": key}],
        "source_selection_criteria": [{"sse_kms_encrypted_objects": [{"enabled": True}]}] if key else [],
    }]}]


def calls(ctx: AwsContext, service: str = "s3") -> list[str]:
    """Every operation the ctx's client for ``service`` sends, in order."""
    seen: list[str] = []
    ctx.client(service).meta.events.register_first(
        f"before-call.{service}", lambda model, **kw: seen.append(model.name)
    )
    return seen


def fail_first(ctx: AwsContext, op: str, code: str, times: int, message: str = "injected") -> list[int]:
    """``op`` raises ``code`` on its first ``times`` calls; returns the call counter."""
    counter: list[int] = []

    def hook(**kwargs: Any) -> None:
        counter.append(1)
        if len(counter) <= times:
            raise ClientError({"Error": {"Code": code, "Message": message}}, op)

    ctx.client("s3").meta.events.register_first(f"before-call.s3.{op}", hook)
    return counter


def other_ctx(cluster: str = "other", region: str = "us-west-2") -> AwsContext:
    return AwsContext(cluster=cluster, region=region, sleep=lambda s: None, poll_delay=0.01)


# -- create / discover -------------------------------------------------------------------------
def test_create_equals_discover(ctx: AwsContext) -> None:
    seen = calls(ctx)
    live = KIND.create(ctx, ADDR, props())
    assert live.id == NAME and live.address == ADDR
    assert live.props == props()
    assert live.attrs == {
        "arn": f"arn:aws:s3:::{NAME}",
        "bucket_regional_domain_name": f"{NAME}.s3.us-west-2.amazonaws.com",
        "region": "us-west-2",
    }
    assert KIND.discover(ctx) == [live]
    # tags straight after create; ownership went in CreateBucket itself
    assert seen[:9] == [
        "CreateBucket",
        "PutBucketTagging",
        "PutPublicAccessBlock",
        "PutBucketEncryption",
        "PutBucketVersioning",
        "PutBucketLifecycleConfiguration",
        "PutBucketPolicy",
        "PutBucketNotificationConfiguration",
        "HeadBucket",
    ]
    notification = ctx.client("s3").get_bucket_notification_configuration(Bucket=NAME)
    assert notification["EventBridgeConfiguration"] == {}


def test_create_passes_location_and_ownership(ctx: AwsContext) -> None:
    seen: list[dict[str, Any]] = []
    ctx.client("s3").meta.events.register_first(
        "before-parameter-build.s3.CreateBucket", lambda params, **kw: seen.append(dict(params))
    )
    KIND.create(ctx, ADDR, props(policy=None, lifecycle_rules=[], versioning=False))
    assert seen == [
        {
            "Bucket": NAME,
            "ObjectOwnership": "BucketOwnerEnforced",
            "CreateBucketConfiguration": {"LocationConstraint": "us-west-2"},
        }
    ]
    s3 = ctx.client("s3")
    assert s3.get_bucket_versioning(Bucket=NAME).get("Status") is None  # never versioned
    assert KIND.discover(ctx)[0].props == props(policy=None, lifecycle_rules=[], versioning=False)


def test_kms_encryption_round_trips(ctx: AwsContext) -> None:
    want = props(sse_algorithm="aws:kms", kms_master_key_id=KMS_ARN, bucket_key_enabled=True)
    live = KIND.create(ctx, ADDR, want)
    assert live.props == want and KIND.discover(ctx) == [live]


def test_us_east_1_has_no_location_constraint(moto: None) -> None:
    east = other_ctx("test", "us-east-1")
    seen: list[dict[str, Any]] = []
    east.client("s3").meta.events.register_first(
        "before-parameter-build.s3.CreateBucket", lambda params, **kw: seen.append(dict(params))
    )
    live = KIND.create(east, ADDR, props())
    assert "CreateBucketConfiguration" not in seen[0]
    assert live.attrs["bucket_regional_domain_name"] == f"{NAME}.s3.us-east-1.amazonaws.com"
    assert KIND.discover(east) == [live]


def test_discovery_is_per_cluster_and_without_an_address_unmanaged(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket="byoc-no-address", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_tagging(
        Bucket="byoc-no-address", Tagging={"TagSet": [{"Key": "byoc:cluster", "Value": "test"}]}
    )
    assert KIND.discover(other_ctx()) == []
    found = {x.address: x.id for x in KIND.discover(ctx)}
    assert found == {ADDR: live.id, 'aws_s3_bucket.unmanaged["byoc-no-address"]': "byoc-no-address"}
    assert KIND.find(ctx, ADDR) == live and KIND.find(other_ctx(), ADDR) is None


def test_discovery_reads_tags_from_the_index_and_eight_settings_per_bucket(ctx: AwsContext) -> None:
    KIND.create(ctx, ADDR, props())
    seen, index = calls(ctx), calls(ctx, "resourcegroupstaggingapi")
    with ctx.discovery_pass():
        assert len(KIND.discover(ctx)) == 1
        KIND.discover(ctx)  # the index is shared within a pass
    assert index == ["GetResources"]
    assert sorted(seen) == sorted(2 * [
        "GetBucketVersioning",
        "GetBucketEncryption",
        "GetPublicAccessBlock",
        "GetBucketOwnershipControls",
        "GetBucketPolicy",
        "GetBucketLifecycleConfiguration",
        "GetBucketLogging",
        "GetBucketNotificationConfiguration",
        "GetBucketReplication",
    ])


def test_settings_never_set_read_as_their_equivalents(ctx: AwsContext) -> None:
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=NAME, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_tagging(Bucket=NAME, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in TAGS.items()]})
    [live] = KIND.discover(ctx)
    assert live.props == props(
        versioning=False,
        public_access_block=dict.fromkeys(props()["public_access_block"], False),
        object_ownership="ObjectWriter",
        policy=None,
        lifecycle_rules=[],
        notification=NO_EVENTS,
    )


def test_bucket_deleted_behind_the_index_is_skipped(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())

    def stale(parsed: dict[str, Any], **kw: Any) -> None:
        parsed["ResourceTagMappingList"].append({
            "ResourceARN": "arn:aws:s3:::byoc-test-gone",
            "Tags": [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": "x.y"}],
        })

    ctx.client("resourcegroupstaggingapi").meta.events.register_first(
        "after-call.resource-groups-tagging-api.GetResources", stale
    )
    assert KIND.discover(ctx) == [live]


def test_discovery_raises_a_refused_read(ctx: AwsContext) -> None:
    KIND.create(ctx, ADDR, props())
    counter = fail_first(ctx, "GetBucketPolicy", "AccessDenied", 5)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.discover(ctx)
    assert len(counter) == 1


# -- update ------------------------------------------------------------------------------------
UPDATES: list[tuple[str, dict[str, Any]]] = [
    ("versioning", {"versioning": False}),
    ("encryption", {"sse_algorithm": "aws:kms", "kms_master_key_id": KMS_ARN, "bucket_key_enabled": True}),
    ("public_access_block", {"public_access_block": {
        "block_public_acls": True,
        "block_public_policy": False,
        "ignore_public_acls": True,
        "restrict_public_buckets": False,
    }}),
    ("object_ownership", {"object_ownership": "BucketOwnerPreferred"}),
    ("policy", {"policy": {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadOnly",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/b"]},
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{NAME}", f"arn:aws:s3:::{NAME}/*"],
        }],
    }}),
    ("policy_removed", {"policy": None}),
    ("lifecycle", {"lifecycle_rules": [rule("expire-all", "tmp/", expiration_days=1)]}),
    ("lifecycle_removed", {"lifecycle_rules": []}),
    ("events_off", {"notification": NO_EVENTS}),
    ("tags", {"tags": {k: v for k, v in TAGS.items() if k != "team"} | {"env": "prod"}}),
    ("replication", {"replication_configuration": replication()}),
]


@pytest.mark.parametrize(("label", "change"), UPDATES, ids=[u[0] for u in UPDATES])
def test_update_in_place(ctx: AwsContext, label: str, change: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, props())
    new = props(**change)
    changed = {k for k in new if new[k] != live.props[k]}
    updated = KIND.update(ctx, live, new, changed)
    assert updated.props == new and updated.id == live.id
    assert KIND.discover(ctx) == [updated]


def test_events_off_clears_the_configuration_and_on_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(notification=NO_EVENTS))
    s3 = ctx.client("s3")
    assert "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket=NAME)
    live = KIND.update(ctx, live, props(), {"notification"})
    assert s3.get_bucket_notification_configuration(Bucket=NAME)["EventBridgeConfiguration"] == {}
    KIND.update(ctx, live, props(notification=NO_EVENTS), {"notification"})
    assert KIND.discover(ctx)[0].props["notification"] == NO_EVENTS


def test_a_notification_target_added_by_hand_shows_and_the_update_removes_it(ctx: AwsContext) -> None:
    """byoc manages the whole configuration (PutBucketNotificationConfiguration replaces it): a
    topic someone added reads back in the provider's ``topic`` block, and converging drops it."""
    live = KIND.create(ctx, ADDR, props())
    topic = ctx.client("sns").create_topic(Name="by-hand")["TopicArn"]
    s3 = ctx.client("s3")
    s3.put_bucket_notification_configuration(Bucket=NAME, NotificationConfiguration={
        "EventBridgeConfiguration": {},
        "TopicConfigurations": [{
            "Id": "hand", "TopicArn": topic, "Events": ["s3:ObjectRemoved:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "backups/"}]}},
        }],
    })
    [found] = KIND.discover(ctx)
    assert found.props["notification"] == {**EVENTBRIDGE, "topic": [{
        "id": "hand", "topic_arn": topic, "events": ["s3:ObjectRemoved:*"], "filter_prefix": "backups/",
        "filter_suffix": "",
    }]}
    KIND.update(ctx, found, props(), {"notification"})
    assert s3.get_bucket_notification_configuration(Bucket=NAME).get("TopicConfigurations") is None
    assert KIND.discover(ctx) == [live]


def test_notification_shapes_round_trip() -> None:
    target = {"id": "q", "queue_arn": "arn:aws:sqs:us-west-2:123456789012:q",
              "events": ["s3:ObjectCreated:*"], "filter_prefix": "", "filter_suffix": ".gz"}
    conf = {**EVENTBRIDGE, "queue": [target]}
    aws = notification_to_aws(conf)
    assert aws == {"EventBridgeConfiguration": {}, "QueueConfigurations": [{
        "QueueArn": target["queue_arn"], "Events": ["s3:ObjectCreated:*"], "Id": "q",
        "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".gz"}]}}}]}
    assert notification_from_aws(aws) == conf
    assert notification_to_aws(NO_EVENTS) == {} and notification_from_aws({}) == NO_EVENTS
    assert notification_from_props(None) == NO_EVENTS  # a state written before the prop existed

def test_replication_round_trips_written_after_versioning_and_removed(ctx: AwsContext) -> None:
    seen = calls(ctx)
    live = KIND.create(ctx, ADDR, props(replication_configuration=replication()))
    assert live.props == props(replication_configuration=replication())
    assert KIND.discover(ctx) == [live]
    # S3 takes a replication configuration only on a versioned bucket
    assert seen.index("PutBucketVersioning") < seen.index("PutBucketReplication")
    got = ctx.client("s3").get_bucket_replication(Bucket=NAME)["ReplicationConfiguration"]
    assert got["Role"] == ROLE_ARN
    assert got["Rules"][0]["Destination"] == {"Bucket": DR_ARN, "StorageClass": "STANDARD_IA"}
    assert got["Rules"][0]["DeleteMarkerReplication"] == {"Status": "Disabled"}
    off = KIND.update(ctx, live, props(), {"replication_configuration"})
    assert seen[-1] == "DeleteBucketReplication"
    assert KIND.discover(ctx) == [off] and off.props["replication_configuration"] == []


def test_replication_of_sse_kms_objects_names_the_replica_key(ctx: AwsContext) -> None:
    want = props(sse_algorithm="aws:kms", kms_master_key_id=KMS_ARN, bucket_key_enabled=True,
                 replication_configuration=replication(DR_KEY))
    sent: list[dict[str, Any]] = []
    ctx.client("s3").meta.events.register_first(
        "before-parameter-build.s3.PutBucketReplication", lambda params, **kw: sent.append(params))
    live = KIND.create(ctx, ADDR, want)
    rule_sent = sent[0]["ReplicationConfiguration"]["Rules"][0]
    assert rule_sent["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    assert rule_sent["Destination"]["EncryptionConfiguration"] == {"ReplicaKmsKeyID": DR_KEY}
    # moto leaves SourceSelectionCriteria out of its answer; AWS returns it: both read the same
    assert KIND.discover(ctx) == [live]


def test_replication_read_back_forms() -> None:
    aws = {"Role": ROLE_ARN, "Rules": [{
        "ID": "replicate-all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
        "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"},
                                    "ReplicaModifications": {"Status": "Disabled"}},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {"Bucket": DR_ARN, "StorageClass": "STANDARD_IA",
                        "EncryptionConfiguration": {"ReplicaKmsKeyID": DR_KEY}},
    }]}
    assert replication_from_aws(aws) == replication(DR_KEY)
    assert replication_to_aws(replication(DR_KEY)) == {**aws, "Rules": [{
        **aws["Rules"][0], "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}}}]}
    # a rule disabled by hand, delete markers turned on: both differences show
    hand = {**aws, "Rules": [{**aws["Rules"][0], "Status": "Disabled",
                              "DeleteMarkerReplication": {"Status": "Enabled"}}]}
    [rule_read] = replication_from_aws(hand)[0]["rules"]
    assert (rule_read["status"], rule_read["delete_marker_replication_status"]) == ("Disabled", "Enabled")
    assert replication_from_aws(None) == [] and replication_to_aws([]) is None


def test_versioning_off_suspends_and_back_on(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    s3 = ctx.client("s3")
    live = KIND.update(ctx, live, props(versioning=False), {"versioning"})
    assert s3.get_bucket_versioning(Bucket=NAME)["Status"] == "Suspended"
    assert KIND.discover(ctx)[0].props["versioning"] is False
    KIND.update(ctx, live, props(), {"versioning"})
    assert s3.get_bucket_versioning(Bucket=NAME)["Status"] == "Enabled"


def test_rules() -> None:
    assert KIND.force_new == frozenset({"bucket"})
    assert KIND.pins == frozenset()
    assert KIND.holds_data is True
    assert KIND.hashed == frozenset()
    # a bucket that destroy keeps gives up its replication (its role goes with the cluster)
    assert KIND.kept_resets == (("replication_configuration", []),)


# -- adoption and names ------------------------------------------------------------------------
def test_untagged_bucket_is_adopted_and_converged(ctx: AwsContext) -> None:
    # an earlier run stopped between CreateBucket and PutBucketTagging
    ctx.client("s3").create_bucket(Bucket=NAME, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    live = KIND.create(ctx, ADDR, props())
    assert live.props == props()
    assert KIND.discover(ctx) == [live]


def test_our_own_bucket_is_adopted_without_rewriting_what_matches(ctx: AwsContext) -> None:
    KIND.create(ctx, ADDR, props())
    seen = calls(ctx)
    live = KIND.create(ctx, ADDR, props(versioning=False))
    assert live.props == props(versioning=False) and KIND.discover(ctx) == [live]
    assert [c for c in seen if c.startswith(("Put", "Delete"))] == ["PutBucketTagging", "PutBucketVersioning"]


def test_bucket_of_something_else_in_the_account_is_refused(ctx: AwsContext) -> None:
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=NAME, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_tagging(Bucket=NAME, Tagging={"TagSet": [{"Key": "app", "Value": "billing"}]})
    with pytest.raises(CloudError, match="not this cluster's") as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.code == "BucketAlreadyOwnedByYou"
    assert s3.get_bucket_tagging(Bucket=NAME)["TagSet"] == [{"Key": "app", "Value": "billing"}]


def test_us_east_1_looks_before_create(moto: None) -> None:
    # us-east-1 answers CreateBucket of a bucket you own with 200: byoc must not take it over
    east = other_ctx("test", "us-east-1")
    s3 = east.client("s3")
    s3.create_bucket(Bucket=NAME)
    s3.put_bucket_tagging(Bucket=NAME, Tagging={"TagSet": [{"Key": "app", "Value": "billing"}]})
    seen = calls(east)
    with pytest.raises(CloudError, match="not this cluster's"):
        KIND.create(east, ADDR, props())
    assert "CreateBucket" not in seen and "PutBucketTagging" not in seen


def test_name_taken_by_another_account(ctx: AwsContext) -> None:
    seen = calls(ctx)
    counter = fail_first(ctx, "CreateBucket", "BucketAlreadyExists", 1)
    taken = r"taken by another AWS account; choose another storage\.bucket_name"
    with pytest.raises(CloudError, match=taken):
        KIND.create(ctx, ADDR, props())
    # the injected CreateBucket failure fires before the generic recorder: nothing else was sent
    assert len(counter) == 1 and seen == []


# -- AWS behaviours moto does not show ---------------------------------------------------------
def test_new_bucket_not_yet_visible_to_tagging_is_retried(ctx: AwsContext) -> None:
    counter = fail_first(ctx, "PutBucketTagging", "NoSuchBucket", 2)
    live = KIND.create(ctx, ADDR, props())
    assert len(counter) == 3 and KIND.discover(ctx) == [live]


def test_conflicting_operation_on_create_is_retried(ctx: AwsContext) -> None:
    # S3 answers OperationAborted while a just-deleted bucket of that name is still going away
    counter = fail_first(ctx, "CreateBucket", "OperationAborted", 2)
    KIND.create(ctx, ADDR, props())
    assert len(counter) == 3


def test_policy_naming_a_new_role_is_retried(ctx: AwsContext) -> None:
    counter = fail_first(ctx, "PutBucketPolicy", "MalformedPolicy", 2, "Invalid principal in policy")
    live = KIND.create(ctx, ADDR, props())
    assert len(counter) == 3 and KIND.discover(ctx) == [live]


def test_other_errors_are_raised_at_once(ctx: AwsContext) -> None:
    counter = fail_first(ctx, "PutBucketPolicy", "MalformedPolicy", 5, "Policy has invalid action")
    with pytest.raises(ClientError, match="MalformedPolicy"):
        KIND.create(ctx, ADDR, props())
    assert len(counter) == 1
    denied = fail_first(ctx, "CreateBucket", "AccessDenied", 5)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.create(ctx, "aws_s3_bucket.other", props(bucket="byoc-test-other"))
    assert len(denied) == 1


# -- delete ------------------------------------------------------------------------------------
def fill(ctx: AwsContext) -> int:
    """Three keys with three versions each, and a delete marker on each: 12 entries."""
    s3 = ctx.client("s3")
    for key in ("a/1", "b/2", "c/3"):
        for version in range(3):
            s3.put_object(Bucket=NAME, Key=key, Body=f"v{version}".encode())
        s3.delete_object(Bucket=NAME, Key=key)
    return 12


def test_delete_empties_every_version_page_by_page(ctx: AwsContext) -> None:
    # moto refuses object calls under an aws:SecureTransport Deny: fill first, then set the policy
    live = KIND.create(ctx, ADDR, props(policy=None))
    fill(ctx)
    live = KIND.update(ctx, live, props(), {"policy"})
    seen = calls(ctx)
    kind = S3Bucket(page_size=2, batch=4)
    kind.delete(ctx, live)
    assert seen.count("ListObjectVersions") == 6  # three rounds of two pages of two
    assert seen.count("DeleteObjects") == 3
    assert seen[0] == "DeleteBucketPolicy" and "DeleteBucket" in seen
    assert KIND.discover(ctx) == []
    with pytest.raises(ClientError):
        ctx.client("s3").head_bucket(Bucket=NAME)
    kind.delete(ctx, live)  # already gone: fine


def test_delete_batches_up_to_a_thousand(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(policy=None))
    fill(ctx)
    seen = calls(ctx)
    KIND.delete(ctx, live)
    assert seen.count("ListObjectVersions") == 1 and seen.count("DeleteObjects") == 1
    assert KIND.discover(ctx) == []


def test_delete_of_an_empty_bucket_then_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)


def test_object_written_while_emptying_is_emptied_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(policy=None))
    s3 = ctx.client("s3")
    attempts: list[int] = []

    def writer(**kw: Any) -> None:  # a node still shipping data: the real DeleteBucket fails
        attempts.append(1)
        if len(attempts) == 1:
            s3.put_object(Bucket=NAME, Key="late", Body=b"x")

    s3.meta.events.register_first("before-call.s3.DeleteBucket", writer)
    KIND.delete(ctx, live)
    assert len(attempts) == 2 and KIND.discover(ctx) == []


def test_delete_raises_a_refusal_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(policy=None))
    fill(ctx)
    counter = fail_first(ctx, "DeleteBucket", "AccessDenied", 5)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.delete(ctx, live)
    assert len(counter) == 1
    assert KIND.discover(ctx)[0].id == NAME


def test_delete_reports_objects_s3_would_not_delete(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(policy=None))
    fill(ctx)

    def refuse(parsed: dict[str, Any], **kw: Any) -> None:  # e.g. object lock
        parsed["Errors"] = [{"Key": "a/1", "VersionId": "v", "Code": "AccessDenied", "Message": "locked"}]

    ctx.client("s3").meta.events.register_first("after-call.s3.DeleteObjects", refuse)
    with pytest.raises(CloudError, match="a/1 \\(AccessDenied: locked\\)"):
        KIND.delete(ctx, live)


# -- pure normalisers --------------------------------------------------------------------------
def test_normalise_policy() -> None:
    raw = json.dumps({
        "Version": "2012-10-17",
        "Statement": {
            "Sid": "X",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:role/b", "Service": ["z", "a"]},
            "Action": "s3:GetObject",
            "NotResource": ["b", "a", "a"],
            "Condition": {"Bool": {"aws:SecureTransport": False}, "NumericLessThan": {"s3:max-keys": 10}},
        },
    })
    want = {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "X",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::1:role/b"], "Service": ["a", "z"]},
            "Action": ["s3:GetObject"],
            "NotResource": ["a", "a", "b"],
            "Condition": {
                "Bool": {"aws:SecureTransport": ["false"]},
                "NumericLessThan": {"s3:max-keys": ["10"]},
            },
        }],
    }
    assert normalise_policy(raw) == want
    assert normalise_policy(want) == want
    assert normalise_policy(None) is None
    star = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}
    assert normalise_policy(star) == {
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": ["s3:*"], "Resource": ["*"]}]
    }


def test_lifecycle_read_back_forms() -> None:
    glacier, ia = {"Days": 60, "StorageClass": "GLACIER"}, {"Days": 30, "StorageClass": "STANDARD_IA"}
    rules: list[dict[str, Any]] = [
        {"ID": "z", "Status": "Enabled", "Prefix": "legacy/", "Expiration": {"Days": 3}},
        {"ID": "a", "Status": "Enabled", "Filter": {"And": {"Prefix": "p/"}}, "Transitions": [glacier, ia]},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
    ]
    assert lifecycle_from_aws(rules) == [
        rule("a", "p/", transitions=[{"days": 30, "storage_class": "STANDARD_IA"},
                                     {"days": 60, "storage_class": "GLACIER"}]),
        rule("z", "legacy/", expiration_days=3),
    ]


def test_us_east_1_name_of_another_account(moto: None) -> None:
    east = other_ctx("test", "us-east-1")

    def forbidden(**kw: Any) -> None:  # HeadBucket of another account's bucket: a bare 403
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadBucket")

    east.client("s3").meta.events.register_first("before-call.s3.HeadBucket", forbidden)
    with pytest.raises(CloudError, match="taken by another AWS account") as err:
        KIND.create(east, ADDR, props())
    assert err.value.code == "BucketAlreadyExists"


# -- server access logging (the data bucket into the log bucket) -----------------------------------
LOGS = "byoc-test-logs"


def log_delivery_policy() -> dict[str, Any]:
    """The log bucket's policy as the blueprint writes it: S3's log delivery may put objects under
    s3-access/ for the data bucket only; TLS only."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "S3ServerAccessLogs", "Effect": "Allow",
         "Principal": {"Service": ["logging.s3.amazonaws.com"]},
         "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{LOGS}/s3-access/*"],
         "Condition": {"ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{NAME}"]},
                       "StringEquals": {"aws:SourceAccount": ["123456789012"]}}},
        *tls_policy(LOGS)["Statement"],
    ]}


def log_bucket(ctx: AwsContext, delivery: bool = True) -> None:
    """The log bucket; without ``delivery``, with no policy (so nothing lets S3 deliver logs)."""
    tags = {**TAGS, "Name": LOGS, "byoc:address": "aws_s3_bucket.logs"}
    policy = log_delivery_policy() if delivery else None
    KIND.create(ctx, "aws_s3_bucket.logs", props(bucket=LOGS, policy=policy, lifecycle_rules=[], tags=tags))


TO_LOGS = [{"target_bucket": LOGS, "target_prefix": "s3-access/"}]


def test_server_access_logging_round_trips_and_turns_off_in_place(ctx: AwsContext) -> None:
    log_bucket(ctx)
    live = KIND.create(ctx, ADDR, props(logging=TO_LOGS))
    assert live.props == props(logging=TO_LOGS)
    s3 = ctx.client("s3")
    assert s3.get_bucket_logging(Bucket=NAME)["LoggingEnabled"] == {
        "TargetBucket": LOGS, "TargetPrefix": "s3-access/"}
    found = {x.address: x for x in KIND.discover(ctx)}
    assert found[ADDR] == live and found["aws_s3_bucket.logs"].props["logging"] == []
    off = KIND.update(ctx, live, props(), {"logging"})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=NAME)
    assert off.props["logging"] == [] and KIND.find(ctx, ADDR) == off


def test_logging_needs_the_log_bucket_to_let_s3_write(moto: None) -> None:
    # without the log-delivery statement S3 refuses PutBucketLogging (moto checks it as AWS does);
    # byoc retries a while (a new policy may take a moment to count), then reports it
    ctx = AwsContext(cluster="test", region="us-west-2", sleep=lambda s: None, poll_delay=0.01,
                     retry_timeout=0.3)
    log_bucket(ctx, delivery=False)
    with pytest.raises(ClientError, match="InvalidTargetBucketForLogging"):
        KIND.create(ctx, ADDR, props(logging=TO_LOGS))


def test_the_policy_goes_to_s3_with_single_values_as_strings_and_reads_back_the_same() -> None:
    from byoc.resources._s3 import policy_to_aws

    sent = policy_to_aws(log_delivery_policy())
    first = sent["Statement"][0]
    assert first["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert first["Action"] == "s3:PutObject" and first["Resource"] == f"arn:aws:s3:::{LOGS}/s3-access/*"
    assert first["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:s3:::{NAME}"}
    assert sent["Statement"][1]["Resource"] == [f"arn:aws:s3:::{LOGS}", f"arn:aws:s3:::{LOGS}/*"]
    assert normalise_policy(json.dumps(sent)) == log_delivery_policy()
