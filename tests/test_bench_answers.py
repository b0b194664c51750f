"""bench/fastmoto.py answers as stock moto does: the same requests, in the same order, sent to
stock moto's server (tests.realmoto) and to the benchmark's, both reset and seeded alike, get the
same status, content type and body byte for byte (timestamps masked) — over EC2's query protocol,
ELBv2's and IAM's query, CloudWatch's JSON and query, S3's REST, and KMS's, Logs' and Secrets
Manager's JSON, answers and errors. No timing is asserted here."""

from __future__ import annotations

import http.client
import json
import random
import re
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.motoserver import MotoServer

#: ISO-8601 and RFC-822 times, epoch seconds and milliseconds: the two servers answer at different moments
_TIMES = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?"
                    rb"|\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT"
                    rb"|(?<![\d.])1[7-9]\d{8}(\d{3})?(\.\d+)?(?![\d.])")
SCOPE = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-west-2/{}/aws4_request, SignedHeaders=host"


def masked(body: bytes) -> bytes:
    return _TIMES.sub(b"<time>", body)


class Tee:
    """botocore hooks for a client of the benchmark's moto: each request also goes, unchanged (its
    Host header too, so URLs built from it agree), to stock moto; both answers are kept."""

    def __init__(self, stock_url: str) -> None:
        self.stock = urlsplit(stock_url)
        self.pending: tuple[int, str, bytes | None] | None = None
        self.answers: list[tuple[str, tuple[Any, ...], tuple[Any, ...]]] = []

    def send(self, request: Any, event_name: str = "", **kwargs: Any) -> None:
        body = request.body
        if hasattr(body, "read"):
            at = body.tell()
            body = body.read()
            request.body.seek(at)
        elif isinstance(body, str):
            body = body.encode()
        split = urlsplit(request.url)
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        headers["Host"] = split.netloc
        conn = http.client.HTTPConnection(self.stock.hostname, self.stock.port, timeout=30)
        try:
            path = split.path + (f"?{split.query}" if split.query else "")
            conn.request(request.method, path or "/", body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.pending = (resp.status, resp.getheader("Content-Type", ""), data)
        finally:
            conn.close()

    def parsed(self, response_dict: Any, event_name: str = "", **kwargs: Any) -> None:
        assert self.pending is not None
        body = response_dict["body"]
        stock_status, stock_type, stock_body = self.pending
        fast = (response_dict["status_code"], response_dict["headers"].get("content-type", ""),
                masked(body) if isinstance(body, bytes) else None)
        stock = (stock_status, stock_type, masked(stock_body) if isinstance(body, bytes) else None)
        self.answers.append((event_name.split(".", 1)[1], fast, stock))
        self.pending = None

    def client(self, server: MotoServer, service: str) -> Any:
        client = server.client(service)
        client.meta.events.register_first("before-send", self.send)
        client.meta.events.register_first("before-parse", self.parsed)
        return client


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[MotoServer, MotoServer]]:
    stock, fast = MotoServer("tests.realmoto"), MotoServer("bench.fastmoto")
    yield stock, fast
    stock.stop()
    fast.stop()


def fresh(*servers: MotoServer) -> None:
    """Reset each server and seed moto's random ids alike."""
    for server in servers:
        server.reset()
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/moto-api/seed?a=19", method="POST"),
                               timeout=10).close()


def raw(server: MotoServer, method: str, path: str, service: str, body: bytes, headers: dict[str, str]
        ) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Authorization": SCOPE.format(service), **headers})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), masked(resp.read())
    finally:
        conn.close()


def ec2_calls(ec2: Any) -> None:
    tags = [{"ResourceType": "vpc", "Tags": [{"Key": "byoc:cluster", "Value": "c"},
                                             {"Key": "Name", "Value": "v"}]}]
    vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16", TagSpecifications=tags)["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.3.1.0/24", AvailabilityZone="us-west-2a")["Subnet"]
    group = ec2.create_security_group(GroupName="g", Description="d & <g>", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8123, "ToPort": 8123, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.create_nat_gateway(SubnetId=subnet["SubnetId"], AllocationId=eip)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet["SubnetId"])
    ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    image = ec2.register_image(Name="img", RootDeviceName="/dev/xvda")["ImageId"]
    ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image]}])
    run = ec2.run_instances(
        ImageId=image, MinCount=2, MaxCount=2, SubnetId=subnet["SubnetId"], InstanceType="m5.large",
        SecurityGroupIds=[group], TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "byoc:cluster", "Value": "c"}, {"Key": "byoc:node", "Value": "1"}]}],
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3"}}])
    first = run["Instances"][0]["InstanceId"]
    volume = ec2.create_volume(AvailabilityZone="us-west-2a", Size=50, VolumeType="gp3", Encrypted=True,
                               TagSpecifications=[{"ResourceType": "volume", "Tags": [
                                   {"Key": "byoc:cluster", "Value": "c"}]}])["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=first, Device="/dev/sdf")
    ec2.describe_instances(Filters=[{"Name": "tag:byoc:cluster", "Values": ["c"]}])
    ec2.describe_volumes(Filters=[{"Name": "tag:byoc:cluster", "Values": ["c"]}])
    ec2.create_tags(Resources=[volume], Tags=[{"Key": "quote", "Value": "it's \"x\""}])
    ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [volume]}])
    ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])
    ec2.describe_nat_gateways()
    ec2.describe_addresses()
    ec2.terminate_instances(InstanceIds=[first])
    with pytest.raises(ClientError):
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])


def elbv2_calls(elbv2: Any, ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.4.{i}.0/24", AvailabilityZone=f"us-west-2{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    lb = elbv2.create_load_balancer(Name="lb", Subnets=subnets, Type="network", Scheme="internal",
                                    Tags=[{"Key": "byoc:cluster", "Value": "c"}])["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name="tg", Protocol="TCP", Port=8123, VpcId=vpc,
                                   TargetType="instance")["TargetGroups"][0]
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=8123,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    elbv2.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}])
    elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])
    elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])
    elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])
    elbv2.describe_tags(ResourceArns=[lb["LoadBalancerArn"], tg["TargetGroupArn"]])
    elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
    elbv2.describe_load_balancers()
    with pytest.raises(ClientError):
        elbv2.describe_load_balancers(Names=["nope"])


def s3_calls(s3: Any) -> None:
    s3.create_bucket(Bucket="answers-b", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_versioning(Bucket="answers-b", VersioningConfiguration={"Status": "Enabled"})
    s3.get_bucket_versioning(Bucket="answers-b")
    s3.put_bucket_encryption(Bucket="answers-b", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.get_bucket_encryption(Bucket="answers-b")
    s3.put_public_access_block(Bucket="answers-b", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    s3.get_public_access_block(Bucket="answers-b")
    s3.put_bucket_tagging(Bucket="answers-b", Tagging={"TagSet": [{"Key": "byoc:cluster", "Value": "c"}]})
    s3.get_bucket_tagging(Bucket="answers-b")
    s3.get_bucket_location(Bucket="answers-b")
    s3.put_object(Bucket="answers-b", Key="state/c.json", Body=b'{"serial": 1}')
    s3.head_object(Bucket="answers-b", Key="state/c.json")
    s3.list_objects_v2(Bucket="answers-b", Prefix="state/")
    s3.list_object_versions(Bucket="answers-b")
    s3.list_buckets()
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket="answers-b")
    with pytest.raises(ClientError):
        s3.get_object(Bucket="answers-b", Key="missing")


def iam_calls(iam: Any) -> None:
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]})
    iam.create_role(RoleName="node", AssumeRolePolicyDocument=trust,
                    Tags=[{"Key": "byoc:cluster", "Value": "c"}])
    iam.put_role_policy(RoleName="node", PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    iam.get_role(RoleName="node")
    iam.get_role_policy(RoleName="node", PolicyName="p")
    iam.create_instance_profile(InstanceProfileName="node")
    iam.add_role_to_instance_profile(InstanceProfileName="node", RoleName="node")
    iam.get_instance_profile(InstanceProfileName="node")
    iam.list_roles()
    with pytest.raises(ClientError):
        iam.get_role(RoleName="nobody")


def json_calls(cloudwatch: Any, kms: Any, logs: Any, secrets: Any) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName="a1", MetricName="CPUUtilization", Namespace="AWS/EC2", Statistic="Average", Period=60,
        EvaluationPeriods=2, Threshold=90.0, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "InstanceId", "Value": "i-1"}], Tags=[{"Key": "byoc:cluster", "Value": "c"}])
    cloudwatch.describe_alarms(AlarmNames=["a1"])
    cloudwatch.put_dashboard(DashboardName="d", DashboardBody=json.dumps({"widgets": []}))
    cloudwatch.get_dashboard(DashboardName="d")
    key = kms.create_key(Description="state", Tags=[{"TagKey": "byoc:cluster", "TagValue": "c"}])
    kms.create_alias(AliasName="alias/c", TargetKeyId=key["KeyMetadata"]["KeyId"])
    kms.describe_key(KeyId="alias/c")
    kms.list_aliases()
    logs.create_log_group(logGroupName="/byoc/c", tags={"byoc:cluster": "c"})
    logs.put_retention_policy(logGroupName="/byoc/c", retentionInDays=30)
    logs.describe_log_groups(logGroupNamePrefix="/byoc/")
    secrets.create_secret(Name="c/admin", SecretString="s3cret")
    secrets.describe_secret(SecretId="c/admin")
    with pytest.raises(ClientError):
        cloudwatch.get_dashboard(DashboardName="none")


def test_the_benchmark_moto_answers_the_same_bytes_as_stock_moto(
    servers: tuple[MotoServer, MotoServer],
) -> None:
    stock, fast = servers
    fresh(stock, fast)
    tee = Tee(stock.url)
    ec2 = tee.client(fast, "ec2")
    ec2_calls(ec2)
    elbv2_calls(tee.client(fast, "elbv2"), ec2)
    s3_calls(tee.client(fast, "s3"))
    iam_calls(tee.client(fast, "iam"))
    json_calls(*(tee.client(fast, s) for s in ("cloudwatch", "kms", "logs", "secretsmanager")))
    assert len(tee.answers) > 80
    differ = [(action, f, s) for action, f, s in tee.answers if f != s]
    assert differ == []
    statuses = {f[0] for _, f, _ in tee.answers}
    assert 200 in statuses and statuses & {400, 404}  # errors compared too
    described = [f for action, f, _ in tee.answers if action == "ec2.DescribeInstances"]
    assert b"<instanceId>i-" in described[0][2] and b"byoc:node" in described[0][2]


@pytest.mark.parametrize(("service", "headers", "body"), [
    ("monitoring", {"Content-Type": "application/x-www-form-urlencoded"},
     {"Action": "DescribeAlarms", "Version": "2010-08-01"}),
    ("monitoring", {"Content-Type": "application/x-www-form-urlencoded"},
     {"Action": "GetDashboard", "Version": "2010-08-01", "DashboardName": "none"}),
    ("elasticloadbalancing", {"Content-Type": "application/x-www-form-urlencoded"},
     {"Action": "DescribeTargetGroups", "Version": "2015-12-01"}),
    ("sns", {"Content-Type": "application/x-www-form-urlencoded"},
     {"Action": "CreateTopic", "Version": "2010-03-31", "Name": "t"}),
    ("sqs", {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"}, {}),
])
def test_raw_query_and_json_requests_get_the_same_answers(
    servers: tuple[MotoServer, MotoServer], service: str, headers: dict[str, str], body: dict[str, str]
) -> None:
    """What an SDK of another protocol sends (CloudWatch's query protocol, which boto3 does not speak)."""
    stock, fast = servers
    fresh(stock, fast)
    data = (json.dumps(body) if "json" in headers["Content-Type"] else urlencode(body)).encode()
    answers = [raw(s, "POST", "/", service, data, {**headers, "Host": f"127.0.0.1:{fast.port}"})
               for s in (stock, fast)]
    assert answers[0] == answers[1]
    assert answers[1][2]  # a body was compared


def _tree(rng: random.Random, depth: int = 0) -> Any:
    keys = ["a", "Item", "member", "#text", "@id", "@x", "@xmlns", "b", "#comment", "bad name", "x/y", 3]
    roll = rng.random()
    if depth > 4 or roll < 0.3:
        return rng.choice([None, "", "t", "a&b<c>\"'\n\t\r", 0, 5, 1.5, True, False, b"b\xff", [], (),
                           ["x", None]])
    if roll < 0.55:
        return [_tree(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(keys[:8] if rng.random() < 0.9 else keys): _tree(rng, depth + 1)
            for _ in range(rng.randint(0, 4))}


def test_the_plain_xml_emitter_writes_what_xmltodict_writes() -> None:
    """bench/fastserialize.py's emitter against xmltodict.unparse on random trees: attributes, text,
    escaping and quoting, None, numbers, bytes, lists, empty lists and elements, invalid names,
    comments and several roots (the same text, or a ValueError from both)."""
    import xmltodict

    from bench.fastserialize import xml_unparse

    fast = xml_unparse(xmltodict.unparse)
    rng = random.Random(19)
    outcomes = set()
    for _ in range(3000):
        doc = {rng.choice(["a", "Resp", "Item"]): _tree(rng)} if rng.random() < 0.85 else _tree(rng)
        if not isinstance(doc, dict):
            doc = {"r": doc}
        for options in ({"full_document": True, "short_empty_elements": True},
                        {"full_document": False, "short_empty_elements": True},
                        {"full_document": True, "short_empty_elements": False, "pretty": False}):
            answers = []
            for unparse in (xmltodict.unparse, fast):
                try:
                    answers.append(unparse(doc, **options))
                except ValueError:
                    answers.append(ValueError)
            assert answers[0] == answers[1], (doc, options)
            outcomes.add(answers[0] is ValueError)
    assert outcomes == {True, False}
