"""The local AWS sandbox: moto's server on 127.0.0.1, started in the background for demos and tests.

byoc talks to it through ``AWS_ENDPOINT_URL``, which boto3 honours for every service. The
sandbox records its pid and port in ``<state dir>/sandbox.json``. Where moto forgets in an answer
what it stored (``moto_answers_as_aws``), the sandbox's moto answers it as AWS does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


@dataclass(frozen=True)
class SandboxInfo:
    pid: int
    port: int
    #: running and accepting connections, but it did not answer in time (busy with a long request)
    busy: bool = False

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, **DUMMY_CREDENTIALS}


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
    try:
        d = json.loads(_info_path(directory).read_text())
        info = SandboxInfo(int(d["pid"]), int(d["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, owned by someone else
        pass
    if _answers(info.port, STATUS_TIMEOUT if timeout is None else timeout):
        return info
    return SandboxInfo(info.pid, info.port, busy=True) if _listening(info.port) else None


def _answers(port: int, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/moto-api/data.json", timeout=timeout):
            return True
    except OSError:
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


def start(directory: Path, port: int = DEFAULT_PORT, timeout: float = 30.0) -> SandboxInfo:
    """Start moto's server on 127.0.0.1:port (0: any free port) in the background, or return the
    one already running from this directory."""
    running = status(directory)
    if running:
        return running
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise ByocError(
            "the sandbox needs moto's server: pip install 'byoc[sandbox]' (make demo does this)"
        ) from None
    if port == 0:
        port = _any_free_port()
    elif not _port_free(port):
        raise ByocError(f"port {port} on {HOST} is in use; choose another with --port (0 picks a free one)")
    directory.mkdir(parents=True, exist_ok=True)
    log = open(directory / "sandbox.log", "ab")  # noqa: SIM115
    env = {**os.environ, "MOTO_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "-H", HOST, "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, start_new_session=True,
    )
    info = SandboxInfo(proc.pid, port)
    deadline = time.monotonic() + timeout
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                proc.kill()
            raise ByocError(f"the sandbox did not start; see {directory / 'sandbox.log'}")
        time.sleep(0.1)
    _info_path(directory).write_text(json.dumps({"pid": info.pid, "port": info.port}))
    return info


def stop(directory: Path) -> SandboxInfo | None:
    """Stop the sandbox started from this directory; its data is gone with it."""
    try:
        d = json.loads(_info_path(directory).read_text())
        info = SandboxInfo(int(d["pid"]), int(d["port"]))
    except (OSError, ValueError, KeyError, TypeError):
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
    """Run moto's server (its own command line, ``-H HOST -p PORT``) answering as AWS does."""
    from moto.server import main

    moto_answers_as_aws()
    main(argv)


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
