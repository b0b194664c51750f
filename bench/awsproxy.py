"""A call-counting, latency-injecting reverse proxy in front of a moto server, for the benchmark.

Every request is held for a fixed delay (the proxy's own handling included) and forwarded to the
upstream server; or, with ``total`` set, forwarded at once and answered when the delay is up, so
that the delay stands for the whole call, the upstream's own time included (a call then takes the
delay, or the upstream's time when that is longer). With answers recorded (``answers_mode``
"record"), a later run of the same requests can be answered from them (``replay``): the upstream's
own answers, byte for byte, without its CPU; only for runs that read (a replayed write changes
nothing), over what has not changed since the recording. Each is counted by (service, action): the
service from the SigV4 credential scope, the action from X-Amz-Target, the query protocol's
``Action`` field, an RPC-v2 path, or (S3 and other REST APIs) the method and path/query. Each call
is also recorded with its start and end time and the upstream server's own share of it.
"""

from __future__ import annotations

import email.parser
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_RPCV2 = re.compile(r"/service/[^/]+/operation/([A-Za-z0-9]+)")
#: a plain header line: a name of visible characters but ":", a colon, a value without CR or LF
_PLAIN_HEADER = re.compile(r"[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n\Z")
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}

#: S3 sub-resources (query keys) and the action each method on them is
_S3_SUB = {
    "versioning": "BucketVersioning", "encryption": "BucketEncryption", "tagging": "Tagging",
    "policy": "BucketPolicy", "lifecycle": "BucketLifecycleConfiguration", "acl": "Acl",
    "publicAccessBlock": "PublicAccessBlock", "ownershipControls": "BucketOwnershipControls",
    "location": "BucketLocation", "logging": "BucketLogging", "versions": "ObjectVersions",
    "uploads": "MultipartUploads", "delete": "Objects", "notification": "BucketNotification",
    "cors": "BucketCors", "website": "BucketWebsite", "replication": "BucketReplication",
}
_VERB = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}


@dataclass(frozen=True)
class Call:
    service: str
    action: str
    start: float
    end: float
    status: int
    #: seconds the upstream server took (the injected delay not included)
    upstream: float


def answer_key(method: str, path: str, headers: Any, body: bytes) -> tuple[str, ...]:
    """What a request's answer depends on: its method, host, path and body, and who signed it for
    which region and service (the access key: an account's, or a role session's in it). Not its
    signature, its date or the SDK's invocation id, which change with every attempt."""
    scope = _CREDENTIAL.search(headers.get("Authorization") or "")
    return (method, headers.get("Host") or "", path, body.decode("latin-1"),
            *(scope.groups() if scope else ("", "", "")))


def service_of(headers: Any) -> str:
    match = _SCOPE.search(headers.get("Authorization", "") or "")
    return match.group(1) if match else "unknown"


def action_of(method: str, path: str, headers: Any, body: bytes, service: str) -> str:
    """The API action of one request, as precisely as the protocol lets us tell."""
    target = headers.get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    split = urlsplit(path)
    rpc = _RPCV2.search(split.path)
    if rpc:
        return rpc.group(1)
    query = parse_qs(split.query, keep_blank_values=True)
    if "Action" in query:
        return query["Action"][0]
    ctype = headers.get("Content-Type", "") or ""
    if method == "POST" and "x-www-form-urlencoded" in ctype:
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    if service == "s3":
        return _s3_action(method, split.path, query)
    return f"{method} {split.path}"


def _s3_action(method: str, path: str, query: dict[str, list[str]]) -> str:
    parts = [p for p in path.split("/") if p]
    verb = _VERB.get(method, method)
    for key, name in _S3_SUB.items():
        if key in query:
            if key == "versions":
                return "ListObjectVersions"
            if key == "delete":
                return "DeleteObjects"
            if key == "uploads":
                return "ListMultipartUploads" if method == "GET" else "CreateMultipartUpload"
            if key == "tagging" and len(parts) < 2:
                return f"{verb}BucketTagging"
            if key == "tagging":
                return f"{verb}ObjectTagging"
            return f"{verb}{name}"
    if not parts:
        return "ListBuckets" if method == "GET" else f"{verb}Service"
    if len(parts) == 1:
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(
            method, f"{verb}Bucket")
    return {"PUT": "PutObject", "GET": "GetObject", "DELETE": "DeleteObject", "HEAD": "HeadObject"}.get(
        method, f"{verb}Object")


def parse_headers(fp: Any, _class: Any = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers``, without the email parser where every line is a plain
    ``Name: value`` (what the SDK and moto send): the same message, name for name and value for
    value (the email parser's rules: the value's leading blanks and the line end dropped); any
    other block (folded lines, odd names, no blank line at the end) goes to the email parser."""
    lines = [line.decode("iso-8859-1") for line in http.client._read_headers(fp)]  # type: ignore[attr-defined]
    if lines[-1] in ("\r\n", "\n") and all(_PLAIN_HEADER.match(line) for line in lines[:-1]):
        msg = _class()
        for line in lines[:-1]:
            name, _, value = line.partition(":")
            msg.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
        msg.set_payload("")
        return msg
    return email.parser.Parser(_class=_class).parsestr("".join(lines))


def faster_header_parsing() -> None:
    """Parse HTTP headers with ``parse_headers`` in this process (http.client's answers and
    http.server's requests alike)."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]


class AwsProxy:
    """Run with ``start()``; ``url`` is what AWS_ENDPOINT_URL should point at."""

    def __init__(self, upstream: str, delay: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        up = urlsplit(upstream)
        self.host = host
        self.upstream_host = up.hostname or "127.0.0.1"
        self.upstream_port = up.port or 80
        self.delay = delay
        #: the delay is the whole call's (the upstream's time included), not the network's alone
        self.total = False
        self.sleep = time.sleep
        #: "record": keep each answer by its request (``answer_key``); "replay": answer a request
        #: that was kept with its answer, without the upstream (one that was not goes upstream and
        #: counts in ``misses``); "off": neither
        self.answers_mode = "off"
        self.answers: dict[tuple[str, ...], tuple[int, list[tuple[str, str]], bytes]] = {}
        self.misses = 0
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body leave in two writes: without this, Nagle's algorithm meets
                # the client's delayed ACK and every call gains ~40 ms
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy._forward(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    def start(self) -> AwsProxy:
        self._thread = threading.Thread(target=self.server.serve_forever, name="awsproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- counting ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.calls = []

    def take(self) -> list[Call]:
        """The calls recorded since the last take/reset, and start afresh."""
        with self._lock:
            calls, self.calls = self.calls, []
        return calls

    def counts(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter((c.service, c.action) for c in self.calls)

    # -- forwarding ----------------------------------------------------------------------------
    def _upstream(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
        return conn

    def _control(self, req: BaseHTTPRequestHandler) -> None:
        split = urlsplit(req.path)
        query = parse_qs(split.query)
        status = 200
        if split.path == "/__bench__/delay":
            self.delay = float(query["ms"][0]) / 1000
            self.total = query.get("total", ["0"])[0] == "1"
            body = b"{}"
        elif split.path == "/__bench__/answers":
            mode = query.get("mode", [self.answers_mode])[0]
            with self._lock:
                body = json.dumps({"mode": self.answers_mode, "kept": len(self.answers),
                                   "misses": self.misses}).encode()
                if mode not in ("off", "record", "replay"):
                    status, body = 400, json.dumps({"error": f"no answers mode {mode!r}"}).encode()
                else:
                    if mode == "record":  # afresh
                        self.answers = {}
                    self.answers_mode, self.misses = mode, 0
        else:
            body = json.dumps([vars(c) for c in self.take()]).encode()  # asdict() deep-copies: slow
        req.send_response(status)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _forward(self, req: BaseHTTPRequestHandler) -> None:
        if req.path.startswith("/__bench__/"):
            self._control(req)
            return
        start = time.monotonic()
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        service = service_of(req.headers)
        action = action_of(req.command, req.path, req.headers, body, service)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP}
        if self.delay and not self.total:  # with the proxy's own handling: it stands for the network
            self.sleep(max(0.0, self.delay - (time.monotonic() - start)))
        sent = time.monotonic()
        mode = self.answers_mode
        key = answer_key(req.command, req.path, req.headers, body) if mode != "off" else ()
        kept = self.answers.get(key) if mode == "replay" else None
        if kept is not None:
            status, resp_headers, data = kept
        else:
            status, resp_headers, data = self._send(req.command, req.path, body, headers)
            with self._lock:
                if mode == "replay":
                    self.misses += 1
                elif mode == "record" and status < 500:  # a server error is retried: not an answer
                    self.answers[key] = (status, resp_headers, data)
        upstream = time.monotonic() - sent
        if self.delay and self.total:  # what is left of the call's delay once the upstream answered
            self.sleep(max(0.0, self.delay - (time.monotonic() - start)))
        req.send_response(status)
        for k, v in resp_headers:
            if k.lower() not in _HOP and k.lower() != "content-length":
                req.send_header(k, v)
        req.send_header("Content-Length", str(len(data)))
        # counted before the answer leaves: whoever got it sees the call counted
        call = Call(service, action, start, time.monotonic(), status, upstream)
        with self._lock:
            self.calls.append(call)
        # headers and body in one write (end_headers() would send them in two)
        req._headers_buffer.append(b"\r\n" + (data if req.command != "HEAD" else b""))  # type: ignore[attr-defined]
        req.flush_headers()

    def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]
              ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in (1, 2):
            conn = self._upstream()
            try:
                conn.request(method, path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, resp.getheaders(), data
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class ProxyProcess:
    """An AwsProxy in a child process, driven like one: ``url``, ``delay``, ``take()``, ``stop()``."""

    def __init__(self, upstream: str) -> None:
        root = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.awsproxy", upstream, "0", "0", "--quiet"],
                                     stdout=subprocess.PIPE, cwd=root)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError("the proxy did not start")
        self._delay = 0.0
        #: sent with the next ``delay`` set: the proxy's ``total``
        self.total = False

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return bytes(resp.read())

    @property
    def delay(self) -> float:
        return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._get(f"/__bench__/delay?ms={seconds * 1000:g}&total={int(self.total)}")
        self._delay = seconds

    def take(self) -> list[Call]:
        return [Call(**c) for c in json.loads(self._get("/__bench__/take"))]

    def answers(self, mode: str) -> dict[str, Any]:
        """Switch the proxy's answers to ``mode`` (off, record, replay); what it had until then:
        its mode, the answers kept and the requests that missed them while replaying."""
        return dict(json.loads(self._get(f"/__bench__/answers?mode={mode}")))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def main() -> None:
    """``python -m bench.awsproxy UPSTREAM [DELAY_MS] [PORT] [--quiet]``: run the proxy in the
    foreground (its URL on the first line; unless --quiet, the counts every 5 s)."""
    args = [a for a in sys.argv[1:] if a != "--quiet"]
    upstream = args[0]
    delay = float(args[1]) / 1000 if len(args) > 1 else 0.0
    port = int(args[2]) if len(args) > 2 else 0
    faster_header_parsing()
    proxy = AwsProxy(upstream, delay, port=port).start()
    print(proxy.url, flush=True)
    try:
        while True:
            time.sleep(5)
            if "--quiet" not in sys.argv:
                print(sorted(proxy.counts().items()), flush=True)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
