"""bench/: the proxy forwards faithfully and counts by service and action; the runner completes a
tiny lifecycle and writes its JSON. Timings are never asserted here (they belong to bench/)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.awsproxy import AwsProxy, action_of
from tests.motoserver import MotoServer

SCOPE = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/{}/aws4_request, SignedHeaders=host"


class Echo(BaseHTTPRequestHandler):
    """An upstream that answers 201 with the method, path and body it received."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = json.dumps({"method": self.command, "path": self.path, "body": body.decode(),
                           "auth": self.headers.get("Authorization")}).encode()
        self.send_response(201)
        self.send_header("X-Echo", "yes")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _echo


@pytest.fixture
def echo_proxy() -> Iterator[AwsProxy]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = AwsProxy(f"http://127.0.0.1:{upstream.server_address[1]}").start()
    yield proxy
    proxy.stop()
    upstream.shutdown()
    upstream.server_close()


def send(proxy: AwsProxy, method: str, path: str, service: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    req = urllib.request.Request(proxy.url + path, data=body or None, method=method,
                                 headers={"Authorization": SCOPE.format(service), **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read()), dict(resp.headers)


def test_the_proxy_forwards_requests_and_answers_unchanged(echo_proxy: AwsProxy) -> None:
    status, echoed, headers = send(echo_proxy, "POST", "/?x=1", "ec2", b"Action=DescribeVpcs&Version=2016",
                                   {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 201 and headers["X-Echo"] == "yes"
    assert echoed["method"] == "POST" and echoed["path"] == "/?x=1"
    assert echoed["body"] == "Action=DescribeVpcs&Version=2016"
    assert echoed["auth"] == SCOPE.format("ec2")  # the signature reaches the server intact


class SlowEcho(Echo):
    """An upstream that takes 40 ms to answer."""

    def _echo(self) -> None:
        time.sleep(0.04)
        super()._echo()

    do_GET = do_POST = do_PUT = do_DELETE = _echo


@pytest.mark.parametrize("total", [False, True])
def test_the_proxys_delay_is_the_networks_or_the_whole_calls(total: bool) -> None:
    """Network delay: held for the delay, then forwarded (the upstream's 40 ms come on top). Total:
    forwarded at once, held only for what the upstream left of the delay."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), SlowEcho)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = AwsProxy(f"http://127.0.0.1:{upstream.server_address[1]}").start()
    held: list[float] = []
    proxy.sleep = held.append  # what the proxy would sleep, not slept
    try:
        with urllib.request.urlopen(f"{proxy.url}/__bench__/delay?ms=50&total={int(total)}", timeout=10):
            pass
        send(proxy, "POST", "/", "ec2", b"Action=DescribeVpcs&Version=2016")
        (call,) = proxy.take()
    finally:
        proxy.stop()
        upstream.shutdown()
        upstream.server_close()
    assert proxy.delay == 0.05 and proxy.total is total and call.upstream >= 0.04
    if total:
        assert held and held[0] <= 0.05 - call.upstream
    else:
        assert held and 0.01 < held[0] <= 0.05


def test_the_proxy_counts_by_service_and_action(echo_proxy: AwsProxy) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    send(echo_proxy, "POST", "/", "ec2", b"Action=DescribeVpcs&Version=2016", form)
    send(echo_proxy, "POST", "/", "ec2", b"Action=DescribeVpcs&Version=2016", form)
    send(echo_proxy, "POST", "/", "kms", b"{}", {"X-Amz-Target": "TrentService.ListAliases"})
    send(echo_proxy, "GET", "/my-bucket?versioning", "s3")
    send(echo_proxy, "PUT", "/my-bucket", "s3")
    send(echo_proxy, "GET", "/my-bucket/some/key", "s3")
    send(echo_proxy, "POST", "/service/GraniteServiceVersion20100801/operation/DescribeAlarms", "monitoring")
    assert echo_proxy.counts() == {
        ("ec2", "DescribeVpcs"): 2,
        ("kms", "ListAliases"): 1,
        ("s3", "GetBucketVersioning"): 1,
        ("s3", "CreateBucket"): 1,
        ("s3", "GetObject"): 1,
        ("monitoring", "DescribeAlarms"): 1,
    }
    calls = echo_proxy.take()
    assert len(calls) == 7 and all(c.end >= c.start for c in calls)
    assert echo_proxy.counts() == {}  # take() starts afresh


@pytest.mark.parametrize("block", [
    b"Host: 127.0.0.1:5000\r\nContent-Length: 12\r\nX-Amz-Target: TrentService.ListAliases\r\n\r\n",
    b"A:  spaced value \t \r\nB:\r\nC:no-space\r\nSet-Cookie: 1\r\nSet-Cookie: 2\r\n\n",
    b"Content-Type: text/xml; charset=\xe9\r\n\r\n",  # latin-1, as http.client reads it
    b"\r\n",  # no headers
    b"Folded: one\r\n two\r\nNext: x\r\n\r\n",  # folded: the email parser's way
    b"From someone\r\nA: b\r\n\r\n",
    b"no colon here\r\nA: b\r\n\r\n",
    b": empty name\r\n\r\n",
    b"Bare: cr\rinside\r\n\r\n",
    b"A: b\r\n",  # the stream ends before the blank line
])
def test_the_proxy_parses_headers_as_http_client_does(block: bytes) -> None:
    """bench.awsproxy.parse_headers, used by the proxy and the benchmark's moto for requests and
    answers alike, gives the message http.client's own email-parser gives."""
    import email.parser
    import http.client
    import io

    from bench.awsproxy import parse_headers

    rest = b"BODY"
    theirs_fp, ours_fp = io.BytesIO(block + rest), io.BytesIO(block + rest)
    text = b"".join(http.client._read_headers(theirs_fp)).decode("iso-8859-1")  # type: ignore[attr-defined]
    theirs = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
    ours = parse_headers(ours_fp)
    assert isinstance(ours, http.client.HTTPMessage)
    assert ours.items() == theirs.items()
    assert ours.get_payload() == theirs.get_payload() and ours.get_unixfrom() == theirs.get_unixfrom()
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]
    assert ours_fp.read() == theirs_fp.read()  # the body is left where it was


@pytest.mark.parametrize(("method", "path", "action"), [
    ("GET", "/b?tagging", "GetBucketTagging"),
    ("PUT", "/b/k?tagging", "PutObjectTagging"),
    ("GET", "/b?versions", "ListObjectVersions"),
    ("POST", "/b?delete", "DeleteObjects"),
    ("GET", "/b?list-type=2", "ListObjectsV2"),
    ("DELETE", "/b", "DeleteBucket"),
    ("GET", "/", "ListBuckets"),
    ("GET", "/b?publicAccessBlock", "GetPublicAccessBlock"),
])
def test_s3_actions_are_named_from_method_path_and_query(method: str, path: str, action: str) -> None:
    assert action_of(method, path, {}, b"", "s3") == action


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    s = MotoServer()
    yield s
    s.stop()


def test_real_sdk_calls_through_the_proxy_to_moto(server: MotoServer) -> None:
    server.reset()
    proxy = AwsProxy(server.url).start()
    try:
        import boto3

        kw: dict[str, Any] = {"region_name": "us-west-2", "endpoint_url": proxy.url,
                              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        ec2, s3 = boto3.client("ec2", **kw), boto3.client("s3", **kw)
        assert ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["CidrBlock"] == "10.7.0.0/16"
        s3.create_bucket(Bucket="bench-b", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        s3.put_bucket_versioning(Bucket="bench-b", VersioningConfiguration={"Status": "Enabled"})
        assert s3.get_bucket_versioning(Bucket="bench-b")["Status"] == "Enabled"
        boto3.client("logs", **kw).describe_log_groups()
        assert proxy.counts() == {
            ("ec2", "CreateVpc"): 1, ("s3", "CreateBucket"): 1, ("s3", "PutBucketVersioning"): 1,
            ("s3", "GetBucketVersioning"): 1, ("logs", "DescribeLogGroups"): 1,
        }
    finally:
        proxy.stop()


def test_an_answers_key_is_the_request_and_its_signer_not_the_attempt() -> None:
    """Two attempts of one request (another signature, date and invocation id) share a key; another
    body, path, access key (account or role session), region or service does not."""
    from bench.awsproxy import answer_key

    def auth(key: str = "AKID", date: str = "20260101", region: str = "us-west-2", service: str = "ec2",
             signature: str = "aa") -> dict[str, str]:
        return {"Host": "127.0.0.1:1", "amz-sdk-invocation-id": signature,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{date}/{region}/{service}/aws4_request, "
                                 f"SignedHeaders=host, Signature={signature}"}

    body = b"Action=DescribeVpcs&Version=2016-11-15"
    first = answer_key("POST", "/", auth(), body)
    assert answer_key("POST", "/", auth(date="20260102", signature="bb"), body) == first
    others = [answer_key("POST", "/", auth(), body + b"&VpcId.1=vpc-1"),
              answer_key("POST", "/x", auth(), body), answer_key("GET", "/", auth(), body),
              answer_key("POST", "/", auth(key="ASIA2"), body),
              answer_key("POST", "/", auth(region="eu-west-1"), body),
              answer_key("POST", "/", auth(service="iam"), body)]
    assert first not in others and len(set(others)) == len(others)


class Counting(Echo):
    """An upstream that answers with how many requests it has had; 503 to a body of ``fail``."""

    seen = 0

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Counting.seen += 1
        data = json.dumps({"seen": Counting.seen}).encode()
        self.send_response(503 if body == b"fail" else 200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _echo


def test_the_proxy_replays_the_answers_it_recorded_without_the_upstream() -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = AwsProxy(f"http://127.0.0.1:{upstream.server_address[1]}").start()

    def answers(mode: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{proxy.url}/__bench__/answers?mode={mode}", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def fails(body: bytes) -> int:
        req = urllib.request.Request(proxy.url + "/", data=body, method="POST",
                                     headers={"Authorization": SCOPE.format("ec2")})
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(req, timeout=10)
        return failed.value.code

    Counting.seen = 0
    try:
        assert answers("record") == {"mode": "off", "kept": 0, "misses": 0}
        assert send(proxy, "POST", "/", "ec2", b"a")[1] == {"seen": 1}
        assert send(proxy, "POST", "/", "ec2", b"b")[1] == {"seen": 2}
        assert fails(b"fail") == 503  # a server error: not kept, so asked again when replayed
        assert answers("replay") == {"mode": "record", "kept": 2, "misses": 0}
        assert send(proxy, "POST", "/", "ec2", b"b")[1] == {"seen": 2}  # the recorded answer
        assert send(proxy, "POST", "/", "ec2", b"a")[1] == {"seen": 1}
        assert Counting.seen == 3  # neither reached the upstream
        assert send(proxy, "POST", "/", "ec2", b"c")[1] == {"seen": 4}  # not recorded: asked upstream
        assert fails(b"fail") == 503 and Counting.seen == 5
        assert len(proxy.take()) == 7  # replayed calls are counted as calls
        assert answers("off") == {"mode": "replay", "kept": 2, "misses": 2}
        assert send(proxy, "POST", "/", "ec2", b"a")[1] == {"seen": 6}
        with pytest.raises(urllib.error.HTTPError) as bad:
            answers("rewind")
        assert bad.value.code == 400
        assert answers("record")["kept"] == 2 and answers("off")["kept"] == 0  # a recording starts afresh
    finally:
        proxy.stop()
        upstream.shutdown()
        upstream.server_close()


def test_signed_sdk_calls_replay_what_moto_answered(server: MotoServer) -> None:
    """Real SDK calls, signed afresh at each attempt, find the answers moto gave to the same calls;
    what changed in moto after the recording is not seen; the same call signed with another access
    key (another account's, or another role session's) is not answered from this one's."""
    server.reset()
    proxy = AwsProxy(server.url).start()
    try:
        import boto3

        def client(service: str, key: str = "testing") -> Any:
            return boto3.client(service, region_name="us-west-2", endpoint_url=proxy.url,
                                aws_access_key_id=key, aws_secret_access_key="testing")

        ec2, s3 = client("ec2"), client("s3")
        ec2.create_vpc(CidrBlock="10.7.0.0/16")
        s3.create_bucket(Bucket="bench-r", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        proxy.answers_mode = "record"
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.7.0.0/16"]}])["Vpcs"]
        assert s3.get_bucket_versioning(Bucket="bench-r").get("Status") is None
        with pytest.raises(s3.exceptions.ClientError):
            s3.get_bucket_policy(Bucket="bench-r")  # an error answer is an answer
        ec2.create_vpc(CidrBlock="10.7.0.0/16")
        s3.put_bucket_versioning(Bucket="bench-r", VersioningConfiguration={"Status": "Enabled"})
        proxy.answers_mode, proxy.misses = "replay", 0
        again = client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.7.0.0/16"]}])["Vpcs"]
        assert again == vpcs and len(vpcs) == 1
        assert client("s3").get_bucket_versioning(Bucket="bench-r").get("Status") is None
        with pytest.raises(s3.exceptions.ClientError):
            client("s3").get_bucket_policy(Bucket="bench-r")
        assert proxy.misses == 0
        other = client("ec2", key="AKIAOTHERACCOUNT1234").describe_vpcs(
            Filters=[{"Name": "cidr", "Values": ["10.7.0.0/16"]}])["Vpcs"]
        assert proxy.misses == 1 and len(other) == 2  # asked of moto
    finally:
        proxy.stop()


def test_the_runner_completes_a_one_node_lifecycle(
    server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.run import main

    for k, v in server.env().items():
        monkeypatch.setenv(k, v)  # main() points AWS_ENDPOINT_URL at its proxy; undone afterwards
    out = tmp_path / "r.json"
    assert main(["--nodes", "1", "--delays", "0", "--no-startup", "--no-engine", "--no-warm-up",
                 "--moto", server.url, "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    [case] = data["cases"]
    steps = {s["step"]: s for s in case["parallel"]}
    assert list(steps) == ["plan", "apply", "noop-plan", "destroy-plan", "destroy"]
    assert steps["noop-plan"]["changes"] == 0 and steps["plan"]["changes"] > 0
    assert steps["apply"]["calls"] == sum(steps["apply"]["by_action"].values()) > 0
    assert 0 < steps["apply"]["chain"] < steps["apply"]["calls"]
    assert steps["noop-plan"]["by_action"]["tagging:GetResources"] == 1
    # the proxy's CPU is measured beside moto's, and at 0 ms only the machine bounds the wall
    apply = steps["apply"]
    assert apply["proxy_cpu"] > 0 and apply["bound_that_holds"] == "machine"
    spent = apply["cpu"] + apply["moto_cpu"] + apply["proxy_cpu"]
    assert apply["machine_bound"] == pytest.approx(spent / data["cpus"], abs=0.002)
    assert "moto_by_action" not in apply  # only with --moto-actions


def test_each_row_says_which_bound_holds() -> None:
    """bench/report.py: per step the chain bound (chain x delay), the work bound (calls x delay /
    parallelism) and the machine bound (byoc's, moto's and the proxy's CPU over the cores), the
    largest of which holds; the table prints the proxy's CPU, the machine bound and that name."""
    from bench.report import step_bounds, table

    step = {"step": "apply", "wall": 3.8, "calls": 460, "chain": 19, "cpu": 1.7, "moto_cpu": 1.9,
            "proxy_cpu": 0.4}
    at50 = step_bounds(step, 50, 20, 2)
    assert at50["chain_bound"] == 0.95 and at50["work_bound"] == 1.15 and at50["machine_bound"] == 2.0
    assert at50["bound_that_holds"] == "machine" and at50["wall_over_bound"] == 1.9
    slow = step_bounds(step, 200, 20, 2)  # the calls' time outgrows the CPU
    assert slow["bound_that_holds"] == "work" and slow["work_bound"] == 4.6
    chained = step_bounds({**step, "calls": 40}, 200, 20, 8)
    assert chained["bound_that_holds"] == "chain" and chained["chain_bound"] == 3.8
    assert step_bounds({**step, "proxy_cpu": None}, 0, 20, 2)["machine_bound"] == 1.8  # proxy not measured
    assert step_bounds({**step, "cpu": 0, "moto_cpu": 0, "proxy_cpu": 0}, 0, 20, 2)["wall_over_bound"] is None
    results = {"parallelism": 20, "cpus": 2, "cases": [{"nodes": 30, "delay_ms": 50, "parallel": [step]}]}
    [row] = [line for line in table(results).splitlines() if line.lstrip().startswith("30")]
    assert row.split()[-5:-2] == ["0.40", "2.00", "machine"]
    actions = {"ec2:DescribeInstances": [28, 0.25], "ec2:RunInstances": [30, 0.19]}
    results["cases"][0]["parallel"] = [{**step, "moto_by_action": actions}]
    text = table(results)
    assert "moto's CPU in the apply, 30 node(s) at 50 ms: 0.44 s" in text
    assert text.index("ec2:DescribeInstances") < text.index("ec2:RunInstances")


def test_the_benchmark_moto_counts_its_cpu_per_action_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """BENCH_MOTO_CPU=1: bench/fastmoto.py times moto's application per (service, action), as the
    proxy names them, and GET /__bench__/cpu answers the counts and starts afresh."""

    def app(environ: Any, start_response: Any) -> list[bytes]:
        sum(range(20_000))  # some CPU
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [b"<DescribeRegionsResponse><regionInfo/></DescribeRegionsResponse>"]

    monkeypatch.setenv("BENCH_MOTO_CPU", "1")
    port, client = serve_in_thread(app)
    for _ in range(3):
        client.describe_regions()

    def take() -> dict[str, list[float]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/__bench__/cpu", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    [(action, (calls, seconds))] = take().items()
    assert action == "ec2:DescribeRegions" and calls == 3 and seconds > 0
    assert take() == {}  # taken: counting starts afresh


def test_the_synthetic_engine_graph_plans_applies_and_plans_nothing_after() -> None:
    from bench.synthetic import measure

    result = measure(300)
    assert 290 <= result["resources"] <= 310


@pytest.fixture(scope="module")
def fast_server() -> Iterator[MotoServer]:
    s = MotoServer("bench.fastmoto")
    yield s
    s.stop()


def test_the_benchmark_moto_keeps_connections_alive_and_answers_like_moto(fast_server: MotoServer) -> None:
    import http.client

    from botocore.exceptions import ClientError

    fast_server.reset()
    ec2, s3, kms = (fast_server.client(s) for s in ("ec2", "s3", "kms"))
    # a POST with a body, and the AMI a launch reads through the benchmark's index
    image_id = ec2.register_image(Name="bench-image")["ImageId"]
    [image] = ec2.describe_images(ImageIds=[image_id])["Images"]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    [inst] = ec2.run_instances(ImageId=image["ImageId"], MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"]
    [inst] = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"]
    assert inst["ImageId"] == image_id and inst["RootDeviceName"] == image["RootDeviceName"]
    # HEAD keeps the length a GET would answer; a PUT body arrives whole
    s3.create_bucket(Bucket="fast-b", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="fast-b", Key="k", Body=b"x" * 1234)
    assert s3.head_object(Bucket="fast-b", Key="k")["ContentLength"] == 1234
    assert s3.get_object(Bucket="fast-b", Key="k")["Body"].read() == b"x" * 1234
    # keys made from one shared key pair still encrypt and decrypt as moto's do
    a, b = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    assert a != b
    blob = kms.encrypt(KeyId=a, Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    # an error answer keeps its status
    with pytest.raises(ClientError) as refused:
        s3.head_bucket(Bucket="no-such-bucket")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # one connection serves several requests
    conn = http.client.HTTPConnection("127.0.0.1", fast_server.port, timeout=10)
    for _ in range(3):
        conn.request("GET", "/moto-api/data.json")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Connection") != "close"
        resp.read()
    sock = conn.sock
    conn.request("GET", "/moto-api/data.json")
    conn.getresponse().read()
    assert conn.sock is sock  # not reconnected
    conn.close()


def test_the_benchmark_finds_an_image_by_id_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws
    from moto.ec2.models.amis import AmiBackend

    from bench.fastmoto import _image_by_id

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "true")
    with mock_aws():
        boto3.client("ec2", region_name="us-west-2").describe_vpcs()
        from moto.ec2.models import ec2_backends

        backend = ec2_backends["123456789012"]["us-west-2"]
        fast = _image_by_id(AmiBackend.describe_images)
        some = sorted(backend.amis)[:20]
        assert len(some) == 20
        for image_id in [*some, "ami-00000000000000000", some[0][:8] + "*"]:
            expected = [a.id for a in backend.describe_images(filters={"image-id": image_id})]
            assert [a.id for a in fast(backend, filters={"image-id": image_id})] == expected
        # anything else is moto's own answer
        assert len(fast(backend, filters={"image-id": some[0][:8] + "*"})) >= 1
        assert [a.id for a in fast(backend, ami_ids=some[:2])] == some[:2]


def test_the_benchmark_reads_a_resources_tags_as_moto_does() -> None:
    """bench.fastmoto's tag lookup by id answers as moto's scan of every tag: the same tags in the
    same order, none for an untagged resource, and no entry added to moto's index by asking."""
    import boto3
    from moto import mock_aws
    from moto.ec2.models.core import TaggedEC2Resource

    from bench.fastmoto import _tags_by_id

    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-west-2")
        tags = [{"Key": k, "Value": v} for k, v in (("b", "2"), ("a", "1"), ("byoc:cluster", "x"))]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16",
                             TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])["Vpc"]["VpcId"]
        bare = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
        ec2.create_tags(Resources=[group], Tags=[{"Key": "c", "Value": "3"}])
        from moto.ec2.models import ec2_backends

        backend = ec2_backends["123456789012"]["us-west-2"]
        fast = _tags_by_id(TaggedEC2Resource.get_tags)
        for resource in (backend.vpcs[vpc], backend.vpcs[bare], backend.get_security_group_from_id(group)):
            assert fast(resource) == TaggedEC2Resource.get_tags(resource)
        assert [t["key"] for t in fast(backend.vpcs[vpc])] == ["b", "a", "byoc:cluster"]
        assert fast(backend.vpcs[bare]) == [] and bare not in backend.tags


def test_the_fleet_benchmark_says_which_bound_holds() -> None:
    """bench/fleet.py: the work bound (calls x delay / parallelism) against the machine's CPU bound
    (byoc's, moto's and the proxy's CPU over the cores) and byoc's one process (its CPU), and the
    wall time over the largest."""
    import os

    from bench.fleet import bounds, cpu_seconds

    cores = os.cpu_count() or 1
    run = {"fleet_seconds": 12.0, "process_cpu_seconds": 4.0, "moto_cpu_seconds": 6.0 * cores - 4.0,
           "proxy_cpu_seconds": None}
    slow = bounds(run, calls=1000, delay_ms=50, parallelism=5)  # 10 s of work, 6 s of CPU
    assert slow["bound_that_holds"] == "work" and slow["work_bound_seconds"] == 10.0
    assert slow["cpu_bound_seconds"] == 6.0 and slow["wall_over_bound"] == 1.2
    fast = bounds(run, calls=1000, delay_ms=50, parallelism=20)  # 2.5 s of work, 6 s of CPU
    assert fast["bound_that_holds"] == "cpu" and fast["wall_over_work_bound"] == 4.8
    assert fast["wall_over_bound"] == 2.0 and fast["machine_share"] == 0.5
    if cores > 1:  # one process's CPU over the machine's (on one core the two are the same)
        one = bounds({**run, "process_cpu_seconds": 8.0, "moto_cpu_seconds": 0.0}, 1000, 50, 20)
        assert one["bound_that_holds"] == "process" and one["wall_over_bound"] == 1.5
    mine = cpu_seconds(os.getpid())
    assert mine is None or mine > 0
    assert cpu_seconds(2**22 + 12345) is None  # no such process


def test_the_fleet_benchmark_says_what_the_calls_took_at_the_proxy() -> None:
    """Mean call time and moto's share, calls in flight on average, and the bound the calls' own
    times give: here two calls of 60 ms and one of 30 ms over 0.1 s, two at a time."""
    from bench.awsproxy import Call
    from bench.fleet import at_the_proxy

    calls = [Call("ec2", "DescribeVpcs", 0.0, 0.06, 200, 0.01),
             Call("ec2", "DescribeVpcs", 0.04, 0.1, 200, 0.02), Call("iam", "GetRole", 0.06, 0.09, 200, 0.0)]
    assert at_the_proxy(calls, 2) == {"call_ms": 50.0, "moto_ms": 10.0, "in_flight_at_proxy": 1.5,
                                      "calls_bound_seconds": 0.07}
    assert at_the_proxy([], 2) == {}


def test_byoc_timings_reports_its_split_and_the_cli_section_reads_it(tmp_path: Path) -> None:
    """BYOC_TIMINGS=1 makes a command print one line of where its time went (stderr, at exit), in
    the form bench/run.py's CLI section parses; without it nothing is printed."""
    import os
    import subprocess
    import sys

    from bench.report import cli_table
    from bench.run import ROOT, parse_timings

    env = {k: v for k, v in os.environ.items() if k != "BYOC_TIMINGS"}
    argv = [sys.executable, "-m", "byoc", "validate", str(ROOT / "specs/dev.yaml")]
    quiet = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    assert "byoc timings" not in quiet.stderr and parse_timings(quiet.stderr) == {}
    timed = subprocess.run(argv, capture_output=True, text=True, env={**env, "BYOC_TIMINGS": "1"},
                           cwd=tmp_path, check=True)
    parts = parse_timings(timed.stderr)
    assert list(parts) == ["total", "start-up", "imports", "clients", "aws", "render", "other"]
    assert parts["total"] > 0 and parts["imports"] > 0 and parts["clients"] == 0  # validate makes none
    assert abs(sum(v for k, v in parts.items() if k != "total") - parts["total"]) < 0.01
    assert quiet.stdout == timed.stdout
    table = cli_table({"runs": 1, "command": "byoc", "commands": {"validate": {"wall": 0.3, **parts}}})
    assert any(line.startswith("validate") and f"{parts['imports']:.3f}" in line for line in table)


def test_a_failure_inside_the_benchmark_moto_is_a_server_error_the_sdk_retries() -> None:
    """moto failing inside a request (its backends race under concurrent calls) answers an empty 500,
    which the SDK reads as a generic server error and retries, as it does AWS's InternalError; a body
    it cannot parse failed the call at once."""
    answers = iter([None, b"<DescribeRegionsResponse><regionInfo/></DescribeRegionsResponse>"])
    seen: list[str] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(environ["PATH_INFO"])
        body = next(answers)
        if body is None:
            raise RuntimeError("dictionary changed size during iteration")
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [body]

    _, client = serve_in_thread(app)
    assert client.describe_regions()["Regions"] == []
    assert len(seen) == 2  # the failed request, then the SDK's retry


def serve_in_thread(app: Any) -> tuple[int, Any]:
    """bench.fastmoto's server of ``app`` on a free port, in a daemon thread of this process, once it
    listens: (its port, an EC2 client of it)."""
    import socket

    import botocore.session

    from bench.fastmoto import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threading.Thread(target=serve, args=("127.0.0.1", port, app), daemon=True).start()
    client = botocore.session.get_session().create_client(
        "ec2", region_name="us-west-2", endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="k", aws_secret_access_key="s")
    for _ in range(50):  # the server thread listens shortly
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return port, client


def test_the_fleet_benchmark_reads_a_process_peak_memory_of_its_own() -> None:
    """bench/fleet.py's peak memory is the child's own (VmHWM), not ``ru_maxrss``, into which Linux
    carries the resident size of the benchmark the child was forked from."""
    from bench.fleet import run_measured

    ballast = bytearray(300 * 1024 * 1024)  # the benchmark's own memory: 300 MiB resident
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    child = "import time; b = bytearray(40 * 1024 * 1024); time.sleep(0.3); print('byoc')"
    command = [sys.executable, "-c", child]
    code, out, _, usage, peak = run_measured(command, dict(os.environ))
    assert code == 0 and out.strip() == "byoc"
    assert 40 <= peak < 150, peak  # about the child's 40 MiB and an interpreter
    assert usage.ru_maxrss / 1024 >= 300  # what ru_maxrss says instead
    del ballast


def test_the_timeline_counts_the_seconds_at_each_number_of_calls_in_flight() -> None:
    """bench/timeline.py: calls over [0, 2] and [1, 3] (seconds after the start): one in flight
    for 1 s, two for 1 s, one again for 1 s."""
    from bench.timeline import in_flight

    op = ("aws_vpc.main", "apply")
    calls = [(op, "CreateVpc", 10.0, 12.0), (op, "DescribeVpcs", 11.0, 13.0)]
    assert in_flight(calls, 10.0) == {0: 0.0, 1: 2.0, 2: 1.0}
