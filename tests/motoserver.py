"""A moto server in a child process on 127.0.0.1, for tests that run the real CLI (over plain HTTP,
or over TLS with a certificate generated as the sandbox's is)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    def __init__(self, module: str = "tests.realmoto", *, tls: bool = False) -> None:
        """``module``: what ``python -m`` runs (moto's server answering as AWS does where tests.realmoto
        says, or another wrapper taking moto's options). ``tls``: serve HTTPS (tests.realmoto only),
        with ``ca_bundle`` the certificate to trust."""
        self.port = free_port()
        self.ca_bundle: str | None = None
        extra: list[str] = []
        if tls:
            from byoc.sandbox import write_certificate

            self._certs = tempfile.TemporaryDirectory(prefix="moto-tls-")
            cert, key = write_certificate(Path(self._certs.name))
            self.ca_bundle = str(cert)
            extra = ["--cert", str(cert), "--key", str(key)]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(self.port), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=ROOT,
        )
        self._tls = ssl.create_default_context(cafile=self.ca_bundle) if tls else None
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1, context=self._tls):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10, context=self._tls):
            pass

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-west-2",
            "NO_COLOR": "1",
        })
        if self.ca_bundle:
            env["AWS_CA_BUNDLE"] = self.ca_bundle
        return env

    def client(self, service: str, region: str = "us-west-2"):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.url, verify=self.ca_bundle,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
