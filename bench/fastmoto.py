"""moto's server for the benchmark, without the costs of its own that AWS does not have.

On every request moto's server lists its own package directory (to tell a service name from a
host), runs ``inspect.getmembers`` over the response class (to see whether the action exists)
and logs the request line — none of which changes while it runs, and together about a third of
its CPU per call. Its web server closes the connection after every answer, so each call also
pays a new TCP connection and a new thread (AWS's endpoints keep connections alive, and the SDK
reuses them). Each KMS key it makes, even a symmetric one, comes with a freshly generated RSA-2048
key pair (30-90 ms of CPU; an encrypted EBS volume makes the account's default key). And its
heap (every AMI and instance type, reloaded at each reset) makes the garbage collector's full
passes stop the server for 50 to 250 ms, several times a run, stalling whatever calls are in
flight. On a small machine all of it is taken from the run measured, while AWS's servers cost
byoc nothing; so does matching every AMI moto knows to find the one a launch names (about 8 ms
of each RunInstances). So here those are computed once, connections are kept alive, KMS key
material is generated once per key spec, an AMI named by its id is looked up in moto's own index,
and the full collection runs when the benchmark resets the server (between measurements) instead
of in the middle of one. Its response serializer's pure work per member is remembered and its XML
written by a plain emitter (bench/fastserialize.py), and request headers are parsed without the
email parser (bench.awsproxy.parse_headers). What moto answers is unchanged (tests/test_bench_answers.py).
With ``BENCH_MOTO_CPU=1`` it also counts its CPU per action (``ActionCpu``).
Usage: ``python -m bench.fastmoto -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import json
import logging
import os
import socket
import sys
import threading
import time
from typing import Any

#: headers this server sets itself
_OWN = frozenset({"content-length", "connection", "transfer-encoding"})


def _lighter_moto() -> None:
    import moto.backends
    import moto.core.responses
    import moto.core.utils
    import moto.ec2.models.amis
    import moto.ec2.models.core
    import moto.kms.models

    from bench.fastserialize import faster_serializer

    modules = frozenset(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment,return-value]
    names = functools.lru_cache(maxsize=None)(
        lambda cls: frozenset(moto.core.utils.method_names_from_class(cls)))
    moto.core.responses.method_names_from_class = names  # type: ignore[assignment]
    moto.kms.models.generate_private_key = functools.lru_cache(maxsize=None)(  # type: ignore[assignment]
        moto.kms.models.generate_private_key)
    amis = moto.ec2.models.amis.AmiBackend
    amis.describe_images = _image_by_id(amis.describe_images)  # type: ignore[method-assign]
    tagged = moto.ec2.models.core.TaggedEC2Resource
    tagged.get_tags = _tags_by_id(tagged.get_tags)  # type: ignore[method-assign]
    faster_serializer()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.moto_api._internal.models import MotoAPIBackend

    reset = MotoAPIBackend.reset

    def reset_then_collect(self: MotoAPIBackend) -> None:
        gc.unfreeze()
        reset(self)
        gc.collect()
        gc.freeze()  # what is left (the server, the fresh backends) is not scanned until the next reset

    MotoAPIBackend.reset = reset_then_collect  # type: ignore[method-assign]
    gc.set_threshold(700, 10, 1_000_000)  # no full passes of its own: at each reset instead


def _image_by_id(describe_images: Any) -> Any:
    """moto's DescribeImages, answering the ``image-id`` filter of one plain id (what every
    RunInstances asks about its AMI) from its index instead of matching every AMI it knows."""

    @functools.wraps(describe_images)
    def wrapper(self: Any, ami_ids: Any = None, filters: Any = None, exec_users: Any = None,
                owners: Any = None) -> Any:
        wanted = filters.get("image-id") if filters and len(filters) == 1 else None
        if (isinstance(wanted, str) and not (ami_ids or exec_users or owners)
                and not any(c in wanted for c in "*?[")):
            ami = self.amis.get(wanted)
            return [ami] if ami is not None else []
        return describe_images(self, ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)

    return wrapper


def _tags_by_id(get_tags: Any) -> Any:
    """moto's ``TaggedEC2Resource.get_tags`` (``describe_tags`` filtered by the resource's id, which
    matches every tag of the account against that id), reading the one resource's entry of the
    tag index instead: the same list, in the same order."""
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    @functools.wraps(get_tags)
    def wrapper(self: Any) -> Any:
        rid = getattr(self, "id", None)
        if not rid:
            return []
        if any(c in rid for c in "*?["):  # an id moto would read as a pattern: its own way
            return get_tags(self)
        tags = self.ec2_backend.tags
        own = tags.get(rid, {})  # a defaultdict: .get adds no entry
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
        return [{"resource_id": rid, "key": k, "value": v, "resource_type": kind} for k, v in own.items()]

    return wrapper


class ActionCpu:
    """moto's CPU per action (BENCH_MOTO_CPU=1): the handling thread's CPU time around moto's
    application, by (service, action) as the proxy names them; ``GET /__bench__/cpu`` answers
    {"service:action": [calls, seconds]} since the last such request, and starts afresh."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, list[float]] = {}

    def add(self, method: str, path: str, headers: Any, body: bytes, seconds: float) -> None:
        from bench.awsproxy import action_of, service_of

        service = service_of(headers)
        key = f"{service}:{action_of(method, path, headers, body, service)}"
        with self._lock:
            seen = self._seen.setdefault(key, [0, 0.0])
            seen[0] += 1
            seen[1] += seconds

    def take(self) -> bytes:
        with self._lock:
            seen, self._seen = self._seen, {}
        return json.dumps({k: [int(n), round(s, 6)] for k, (n, s) in sorted(seen.items())}).encode()


def serve(host: str, port: int, app: Any = None) -> None:
    """moto's application (or ``app``, for tests) behind a threaded HTTP/1.1 server that keeps
    connections alive."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class KeepAlive(MotoRequestHandler):
        """moto's request handler (its environ), answering with a length instead of closing."""

        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # the answer leaves in one write, but a kept-alive connection must not wait on
            # Nagle's algorithm either
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            pass  # the request line, logged by werkzeug at INFO: not kept

        def run_wsgi(self) -> None:
            from werkzeug.serving import DechunkedInput

            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = DechunkedInput(self.rfile).read()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("wsgi.input_terminated", None)
            if cpu is not None and self.path.startswith("/__bench__/"):
                self._answer(200, [("Content-Type", "application/json")], cpu.take())
                return
            started = time.thread_time()
            answer: dict[str, Any] = {}
            chunks: list[bytes] = []

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                answer["status"], answer["headers"] = status, headers
                return chunks.append

            try:
                result = self.server.app(environ, start_response)
                try:
                    chunks.extend(result)
                finally:
                    getattr(result, "close", lambda: None)()
            except Exception:
                logging.getLogger("werkzeug").exception("error on request")
                # moto itself failed (its backends are not thread-safe everywhere): answer as a
                # server in front of AWS does, an empty 500, which the SDK reads as a generic server
                # error and retries like AWS's own InternalError (a text body it cannot parse, and
                # the call failed at once with ResponseParserError)
                answer["status"] = "500 INTERNAL SERVER ERROR"
                answer["headers"] = [("Content-Type", "text/html")]
                chunks[:] = []
            data = b"".join(chunks)
            if cpu is not None:
                cpu.add(self.command, self.path, self.headers, body, time.thread_time() - started)
            code, _, reason = answer["status"].partition(" ")
            self._answer(int(code), answer["headers"], data, reason)

        def _answer(self, code: int, headers: list[tuple[str, str]], data: bytes, reason: str = "") -> None:
            self.send_response(code, reason or None)
            length = str(len(data))
            for k, v in headers:
                if k.lower() == "content-length" and self.command == "HEAD":
                    length = v  # what a GET would answer
                elif k.lower() not in _OWN:
                    self.send_header(k, v)
            self.send_header("Content-Length", length)
            # headers and body in one write (end_headers() would send them in two)
            self._headers_buffer.append(b"\r\n" + (data if self.command != "HEAD" else b""))  # type: ignore[attr-defined]
            self.flush_headers()

    cpu = ActionCpu() if os.environ.get("BENCH_MOTO_CPU") else None
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto.server sets it: moto builds some URLs from it
    app = app or DomainDispatcherApplication(create_backend_app)
    make_server(host, port, app, threaded=True, request_handler=KeepAlive).serve_forever()


def main(argv: list[str] | None = None) -> None:
    from bench.awsproxy import faster_header_parsing
    from byoc.sandbox import lambda_without_docker, moto_answers_as_aws

    ap = argparse.ArgumentParser(description="moto's server for the benchmark")
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=5000)
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    _lighter_moto()
    faster_header_parsing()  # the requests' headers, as the proxy parses them
    moto_answers_as_aws()  # as the sandbox's moto: a bucket's EventBridge notifications read back
    lambda_without_docker()  # and the password rotation function invoked without Docker
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
