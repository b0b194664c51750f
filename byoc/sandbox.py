"""The local AWS sandbox: moto's server on 127.0.0.1, started in the background for demos and tests.

It speaks TLS with a self-signed certificate it generates for 127.0.0.1/localhost (``sandbox-ca.pem``
in its state directory, key file 0600 beside it). byoc talks to it through ``AWS_ENDPOINT_URL``
(``https://127.0.0.1:PORT``), which boto3 honours for every service, and trusts it through
``AWS_CA_BUNDLE``. The sandbox records its pid, port and certificate in ``<state dir>/sandbox.json``.
Where moto forgets in an answer what it stored (``moto_answers_as_aws``), the sandbox's moto answers
it as AWS does; and it evaluates a bucket policy's ``aws:SecureTransport`` from the request
(``secure_transport_from_requests``: true over TLS, false over plain HTTP) where moto alone counts
every such condition as matching; and it answers calls made side by side as AWS does, where moto's
own tables fail a listing another thread changes (``alarms_listed_safely``,
``route_tables_read_safely``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from byoc.errors import ByocError

DEFAULT_PORT = 4566
HOST = "127.0.0.1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
}


#: the sandbox's certificate (what AWS_CA_BUNDLE names) and its private key, in its state directory
CERT_FILE, KEY_FILE = "sandbox-ca.pem", "sandbox-key.pem"


@dataclass(frozen=True)
class SandboxInfo:
    pid: int
    port: int
    #: running and accepting connections, but it did not answer in time (busy with a long request)
    busy: bool = False
    #: the certificate the sandbox serves (None: a sandbox of an older byoc, on plain HTTP)
    ca_bundle: str | None = None
    #: a second, plain-HTTP listener on the same data (``--plain-http-port``), if asked for
    plain_port: int | None = None

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.ca_bundle else 'http'}://{HOST}:{self.port}"

    @property
    def plain_endpoint(self) -> str | None:
        return f"http://{HOST}:{self.plain_port}" if self.plain_port else None

    def env(self) -> dict[str, str]:
        tls = {"AWS_CA_BUNDLE": self.ca_bundle} if self.ca_bundle else {}
        return {"AWS_ENDPOINT_URL": self.endpoint, **tls, **DUMMY_CREDENTIALS}

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "port": self.port, "ca_bundle": self.ca_bundle,
                           "plain_port": self.plain_port})

    @classmethod
    def read(cls, directory: Path) -> SandboxInfo | None:
        """What ``sandbox.json`` in ``directory`` records (None when there is none, or it is unreadable)."""
        try:
            d = json.loads(_info_path(directory).read_text())
            plain = d.get("plain_port")
            return cls(int(d["pid"]), int(d["port"]), ca_bundle=d.get("ca_bundle") or None,
                       plain_port=int(plain) if plain else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


def is_sandbox_endpoint(url: str | None) -> bool:
    """True when ``url`` points at a local address (the sandbox), never at real AWS."""
    if not url:
        return False
    from urllib.parse import urlparse

    host = urlparse(url).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")


def _info_path(directory: Path) -> Path:
    return directory / "sandbox.json"


#: how long ``status`` waits for the sandbox to answer (a busy moto server can take seconds)
STATUS_TIMEOUT = 5.0


def status(directory: Path, timeout: float | None = None) -> SandboxInfo | None:
    """The running sandbox: its process is alive and it answers, or it accepts connections but did
    not answer within ``timeout`` (``busy``: a slow answer is not a dead sandbox). None when no
    sandbox was started from this directory, its process is gone, or its port is closed."""
    info = SandboxInfo.read(directory)
    if info is None:
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, owned by someone else
        pass
    if _answers(info, STATUS_TIMEOUT if timeout is None else timeout):
        return info
    if not _listening(info.port):
        return None
    return SandboxInfo(info.pid, info.port, True, info.ca_bundle, info.plain_port)


def _answers(info: SandboxInfo, timeout: float = 1.0) -> bool:
    """The sandbox answers over its own scheme (with TLS: trusting only its certificate)."""
    tls = ssl.create_default_context(cafile=info.ca_bundle) if info.ca_bundle else None
    try:
        with urllib.request.urlopen(f"{info.endpoint}/moto-api/data.json", timeout=timeout, context=tls):
            return True
    except (OSError, ssl.SSLError):
        return False


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start(
    directory: Path, port: int = DEFAULT_PORT, timeout: float = 30.0, *, plain_port: int | None = None
) -> SandboxInfo:
    """Start moto's server over TLS on 127.0.0.1:port (0: any free port) in the background, with a
    certificate generated for it, or return the one already running from this directory.
    ``plain_port`` (0: any free one) also serves the same data over plain HTTP (to see a bucket
    policy's aws:SecureTransport at work)."""
    running = status(directory)
    if running:
        return running
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise ByocError(
            "the sandbox needs moto's server: pip install 'byoc[sandbox]' (make demo does this)"
        ) from None
    port = _pick_port(port)
    plain = None if plain_port is None else _pick_port(plain_port, "--plain-http-port")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = write_certificate(directory)
    log = open(directory / "sandbox.log", "ab")  # noqa: SIM115
    env = {**os.environ, "MOTO_PORT": str(port)}
    extra = ["--plain-port", str(plain)] if plain else []
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "-H", HOST, "-p", str(port), "--cert", str(cert), "--key", str(key),
         *extra],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, start_new_session=True,
    )
    info = SandboxInfo(proc.pid, port, ca_bundle=str(cert.resolve()), plain_port=plain)
    deadline = time.monotonic() + timeout
    while not _answers(info):
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                proc.kill()
            raise ByocError(f"the sandbox did not start; see {directory / 'sandbox.log'}")
        time.sleep(0.1)
    _info_path(directory).write_text(info.to_json())
    return info


def _pick_port(port: int, option: str = "--port") -> int:
    if port == 0:
        return _any_free_port()
    if not _port_free(port):
        raise ByocError(f"port {port} on {HOST} is in use; choose another with {option} (0 picks a free one)")
    return port


def write_certificate(directory: Path, days: int = 30) -> tuple[Path, Path]:
    """A new self-signed certificate for 127.0.0.1 and localhost, and its key (mode 0600), in
    ``directory``; returns their paths. boto3 trusts it through AWS_CA_BUNDLE."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "byoc sandbox on 127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        key_path.unlink()
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def stop(directory: Path) -> SandboxInfo | None:
    """Stop the sandbox started from this directory; its data is gone with it."""
    info = SandboxInfo.read(directory)
    if info is None:
        return None
    with contextlib.suppress(OSError):
        os.kill(info.pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(info.pid, 0)
            time.sleep(0.1)
        os.kill(info.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        _info_path(directory).unlink()
    return info


#: the sandbox's process: moto's server, answering as ``moto_answers_as_aws`` says
SERVE = "import sys; from byoc.sandbox import serve; serve(sys.argv[1:])"


def serve(argv: list[str]) -> None:
    """Run moto's server answering as AWS does: ``-H HOST -p PORT`` (moto's own options), over TLS
    with ``--cert FILE --key FILE``, and also over plain HTTP on ``--plain-port PORT``."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(prog="byoc-sandbox")
    parser.add_argument("-H", "--host", default=HOST)
    parser.add_argument("-p", "--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--plain-port", type=int)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    moto_answers_as_aws()
    lambda_without_docker()
    secure_transport_from_requests()
    alarms_listed_safely()  # the server answers calls in threads of its own
    route_tables_read_safely()
    app = _RecordScheme(DomainDispatcherApplication(create_backend_app))
    tls = (args.cert, args.key) if args.cert and args.key else None
    servers = [make_server(args.host, args.port, app, threaded=True, ssl_context=tls,
                           request_handler=MotoRequestHandler)]
    if args.plain_port:
        servers.append(make_server(args.host, args.plain_port, app, threaded=True,
                                   request_handler=MotoRequestHandler))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for extra in servers[1:]:
        threading.Thread(target=extra.serve_forever, name="plain-http", daemon=True).start()
    servers[0].serve_forever()


#: per request thread of the sandbox's server: whether the request came over TLS
_REQUEST = threading.local()


class _RecordScheme:
    """WSGI middleware: notes, for the thread that handles a request, whether it came over TLS."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        _REQUEST.secure = environ.get("wsgi.url_scheme") == "https"
        return self.app(environ, start_response)


def secure_transport_from_requests() -> None:
    """In the sandbox's moto: bucket policies see ``aws:SecureTransport`` as the request was made
    (``_RecordScheme``); idempotent."""
    from moto.s3.models import FakeBucket

    if getattr(FakeBucket, "_byoc_secure_transport", False):
        return
    FakeBucket.get_permission = secure_transport_permission(  # type: ignore[method-assign,assignment]
        lambda: bool(getattr(_REQUEST, "secure", False)))
    FakeBucket._byoc_secure_transport = True  # type: ignore[attr-defined]


def secure_transport_permission(is_secure: Callable[[], bool]) -> Callable[[Any, str, str], Any]:
    """A ``FakeBucket.get_permission`` that evaluates the policy's ``Bool`` ``aws:SecureTransport``
    conditions as AWS does, from ``is_secure()`` (was this request made over TLS?): a statement whose
    condition does not match does not apply; one whose condition matches applies without it (moto
    evaluates what else it says). moto alone cannot evaluate the condition and counts it as matching,
    so a TLS-only policy denies every object call. The policy stored on the bucket is untouched."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        doc = json.loads(self.policy.decode())
        stmts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        secure = "true" if is_secure() else "false"
        kept = [s for s in (_without_secure_transport(s, secure) for s in stmts) if s is not None]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**doc, "Statement": kept})).is_action_permitted(action, resource)

    return get_permission


def _without_secure_transport(stmt: dict[str, Any], secure: str) -> dict[str, Any] | None:
    """The statement with its aws:SecureTransport condition evaluated: None when it does not match."""
    conditions = dict(stmt.get("Condition") or {})
    flags = {str(k).lower(): (k, v) for k, v in dict(conditions.get("Bool") or {}).items()}
    if "aws:securetransport" not in flags:
        return stmt
    key, value = flags["aws:securetransport"]
    wanted = {str(v).lower() for v in (value if isinstance(value, list) else [value])}
    if secure not in wanted:
        return None
    rest = {k: v for k, v in conditions["Bool"].items() if k != key}
    if rest:
        conditions["Bool"] = rest
    else:
        del conditions["Bool"]
    out = {k: v for k, v in stmt.items() if k != "Condition"}
    return {**out, "Condition": conditions} if conditions else out


def lambda_without_docker() -> None:
    """moto runs a Lambda function's code in Docker, which the sandbox does not need: Secrets
    Manager's RotateSecret invokes the password rotation function, and moto without Docker answers
    that invocation itself (the function's code is tested in-process by byoc's tests). moto also
    drops a function's ``DeadLetterConfig``: kept here and answered as AWS does. Idempotent."""
    from moto.awslambda.models import LambdaFunction
    from moto.core.config import default_user_config

    default_user_config["lambda"] = {"use_docker": False}
    _rotation_rules_as_aws()
    if getattr(LambdaFunction, "_byoc_dlq", False):
        return
    init, configuration, update = (LambdaFunction.__init__, LambdaFunction.get_configuration,
                                   LambdaFunction.update_configuration)

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        init(self, account_id, spec, *args, **kwargs)
        self.byoc_dead_letter = dict(spec.get("DeadLetterConfig") or {})

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        out: dict[str, Any] = configuration(self, *args, **kwargs)
        if getattr(self, "byoc_dead_letter", None):
            out["DeadLetterConfig"] = dict(self.byoc_dead_letter)
        return out

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "DeadLetterConfig" in config_updates:
            self.byoc_dead_letter = dict(config_updates["DeadLetterConfig"] or {})
        out: dict[str, Any] = update(self, config_updates)
        return out

    LambdaFunction.__init__ = __init__  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]
    LambdaFunction._byoc_dlq = True  # type: ignore[attr-defined]


def _rotation_rules_as_aws() -> None:
    """moto keeps only a rotation's AutomaticallyAfterDays (and counts a schedule expression as
    rotation off): the whole RotationRules kept and answered, rotation on with either, as in AWS.
    And with RotateImmediately false, AWS removes the AWSPENDING version its testSecret run used;
    moto leaves it (a rotation that looks in progress): removed here."""
    from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

    if getattr(FakeSecret, "_byoc_rules", False):
        return
    rotate, as_dict = SecretsManagerBackend.rotate_secret, FakeSecret.to_dict

    def rotate_secret(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        out = rotate(self, secret_id, *args, **kwargs)
        rules = kwargs.get("rotation_rules")
        secret = self.secrets[secret_id]
        if not kwargs.get("rotate_immediately", True):
            for version in [v for v, d in secret.versions.items() if d["version_stages"] == ["AWSPENDING"]]:
                del secret.versions[version]
        if rules:
            secret.byoc_rules = dict(rules)
            secret.rotation_enabled = bool(rules.get("AutomaticallyAfterDays")
                                           or rules.get("ScheduleExpression"))
        return out

    def to_dict(self: Any) -> dict[str, Any]:
        out: dict[str, Any] = as_dict(self)
        if "RotationRules" in out and getattr(self, "byoc_rules", None):
            out["RotationRules"] = dict(self.byoc_rules)
        return out

    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
    FakeSecret.to_dict = to_dict  # type: ignore[method-assign]
    FakeSecret._byoc_rules = True  # type: ignore[attr-defined]


def moto_answers_as_aws() -> None:
    """moto keeps a bucket's ``EventBridgeConfiguration`` but leaves it out of its
    GetBucketNotificationConfiguration answer (AWS includes it): this puts it back, from moto's
    own record, so that a bucket sending events to EventBridge reads back as it was written.
    Idempotent; the sandbox's server and byoc's tests call it."""
    import re

    from moto.s3.responses import S3Response

    if getattr(S3Response, "_byoc_eventbridge", False):
        return
    answer = S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        status, headers, body = answer(self)
        conf = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if status != 200 or conf is None or conf.event_bridge is None:
            return status, headers, body
        text = body.decode() if isinstance(body, bytes) else str(body)
        eventbridge = "<EventBridgeConfiguration></EventBridgeConfiguration>"
        # moto names the root element NotificationConfiguration, empty (<... />) without targets
        text, n = re.subn(r"<(NotificationConfiguration|GetBucketNotificationResponse)(\s[^>]*)?/>",
                          lambda m: f"<{m[1]}{m[2] or ''}>{eventbridge}</{m[1]}>", text, count=1)
        if not n:
            text = re.sub(r"</(NotificationConfiguration|GetBucketNotificationResponse)>",
                          lambda m: f"{eventbridge}{m[0]}", text, count=1)
        return status, headers, text.encode() if isinstance(body, bytes) else text

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]
    S3Response._byoc_eventbridge = True  # type: ignore[attr-defined]


class _Snapshots(dict):  # type: ignore[type-arg]
    """A dict whose views and iteration are lists taken at once (under the GIL), not live iterators."""

    def __iter__(self) -> Any:
        return iter(list(super().keys()))

    def keys(self) -> list[Any]:  # type: ignore[override]
        return list(super().keys())

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(super().values())

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return list(super().items())


def alarms_listed_safely() -> None:
    """moto's CloudWatch (in-process, and its server, which answers each request in a thread) lists
    alarms by iterating its dict while other threads' PutMetricAlarm add to it ("RuntimeError:
    dictionary changed size during iteration", an apply's alarms made side by side with discovery's
    reads); AWS answers such calls concurrently. The backend's alarm table answers snapshots
    instead (moto's own data, nothing faked)."""
    from moto.cloudwatch.models import CloudWatchBackend

    if getattr(CloudWatchBackend, "_byoc_snapshots", False):
        return
    init = CloudWatchBackend.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.alarms = _Snapshots(self.alarms)

    CloudWatchBackend.__init__ = __init__  # type: ignore[method-assign]
    CloudWatchBackend._byoc_snapshots = True  # type: ignore[attr-defined]


def route_tables_read_safely() -> None:
    """moto's EC2 walks a route table's associations (DescribeRouteTables, its filters) and the
    route tables (DisassociateRouteTable) by iterating dicts that other threads' disassociations
    and deletions change meanwhile ("RuntimeError: dictionary changed size during iteration": a
    destroy removes a route table's three associations side by side); AWS answers such calls
    concurrently. Both tables answer snapshots instead (moto's own data, nothing faked)."""
    from moto.ec2.models.route_tables import RouteBackend, RouteTable

    if getattr(RouteTable, "_byoc_snapshots", False):
        return
    table_init, backend_init = RouteTable.__init__, RouteBackend.__init__

    def table(self: Any, *args: Any, **kwargs: Any) -> None:
        table_init(self, *args, **kwargs)
        self._associations = _Snapshots(self._associations)

    def backend(self: Any, *args: Any, **kwargs: Any) -> None:
        backend_init(self, *args, **kwargs)
        self.route_tables = _Snapshots(self.route_tables)

    RouteTable.__init__ = table  # type: ignore[method-assign]
    RouteBackend.__init__ = backend  # type: ignore[method-assign]
    RouteTable._byoc_snapshots = True  # type: ignore[attr-defined]
