"""What byoc does to cut its own CPU per AWS call keeps every call as the SDK would make it: a Query
body encoded once, fast, is the very text the SDK makes."""

from __future__ import annotations

import base64
import random
from typing import Any
from urllib.parse import quote_plus

from botocore.awsrequest import AWSRequest, AWSRequestPreparer

from byoc.aws.calls import encode_form_body, form_value


def _sdk_body(data: dict[str, Any]) -> str:
    """The body the SDK makes of a Query call's parameters (without byoc's hook)."""
    return str(AWSRequestPreparer()._prepare_body(AWSRequest(method="POST", url="https://x", data=data)))


def test_a_value_is_encoded_as_the_sdk_encodes_it() -> None:
    rng = random.Random(19)
    alphabet = [chr(b) for b in range(128)] + ["é", "ß", "\u2603", "\U0001f600"]
    samples = ["", " ", "+", "%", "%2B", "a b+c%d", "".join(chr(b) for b in range(128)),
               base64.b64encode(bytes(range(256)) * 80).decode()]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(2000)]
    for text in samples:
        assert form_value(text) == quote_plus(text.encode("utf-8")), repr(text)


def test_a_query_body_is_encoded_once_into_the_text_the_sdk_would_send() -> None:
    data = {"Action": "RunInstances", "Version": "2016-11-15", "MaxCount": 1, "EbsOptimized": True,
            "Threshold": 80.5, "UserData": base64.b64encode(b"#!/bin/bash\necho a+b=c /\xff" * 500).decode(),
            "TagSpecification.1.Tag.1.Value": "prod proton é/ü", "Empty": ""}
    request = AWSRequest(method="POST", url="https://x", data=dict(data))
    encode_form_body(request=request)
    assert isinstance(request.data, str)
    assert request.data == _sdk_body(data)
    assert request.body == _sdk_body(data).encode()  # what is signed and what is sent


def test_a_body_that_is_not_a_form_of_text_and_numbers_is_left_to_the_sdk() -> None:
    for data in ({"Values": ["a", "b"]}, {1: "a"}):
        request = AWSRequest(method="POST", url="https://x", data=dict(data))
        encode_form_body(request=request)
        assert request.data == data
    request = AWSRequest(method="POST", url="https://x", data=b'{"a": 1}')
    encode_form_body(request=request)
    assert request.data == b'{"a": 1}'


def test_query_clients_encode_their_bodies_and_aws_reads_them(ctx: Any) -> None:
    """On moto: an instance's user data (base64 with "+", "/" and "=") and a tag with spaces and
    non-ASCII text arrive intact; the body signed is the text byoc encoded."""
    ec2 = ctx.client("ec2")
    signed: list[Any] = []
    ec2.meta.events.register_last("before-sign.ec2", lambda request=None, **kw: signed.append(request.data))
    user_data = "#!/bin/bash\n" + "echo 'é ü ~+/=' >> /tmp/x\n" * 400
    ami = ec2.register_image(Name="sdk-cost", RootDeviceName="/dev/xvda")["ImageId"]
    run = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData=user_data,
                            TagSpecifications=[{"ResourceType": "instance",
                                                "Tags": [{"Key": "Name", "Value": "node é 1+1"}]}])
    instance = run["Instances"][0]
    got = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    assert base64.b64decode(got["UserData"]["Value"]).decode() == user_data
    assert instance["Tags"] == [{"Key": "Name", "Value": "node é 1+1"}]
    assert [type(d) for d in signed[-2:]] == [str, str] and "UserData=" in signed[-2]
    # a JSON-protocol client is left as it is
    logs = ctx.client("logs")
    logs.create_log_group(logGroupName="/byoc/test")
    assert logs.describe_log_groups()["logGroups"][0]["logGroupName"] == "/byoc/test"
