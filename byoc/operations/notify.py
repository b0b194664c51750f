"""Telling someone about a fleet run (``--notify``): one message per run listing the clusters that
drifted (or are degraded, or have changes) and those that failed — to an SNS topic, published with
the caller's own credentials, or as one JSON POST to an https webhook (retried with backoff). The
message holds names, statuses, counts and error messages: never credentials or spec contents.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from byoc.errors import ByocError

#: SNS's limit on a message, in bytes, and on a subject
SNS_MAX_BYTES = 256 * 1024
SUBJECT_MAX = 100
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_ATTEMPTS = 4
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def parse_target(text: str) -> tuple[str, str]:
    """``sns:ARN`` → ("sns", ARN); ``https://…`` → ("webhook", URL); http:// only to this machine."""
    if text.startswith("sns:"):
        arn = text[4:]
        parts = arn.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[5]:
            raise ByocError(f"--notify {text}: not an SNS topic ARN; "
                            "give sns:arn:aws:sns:REGION:ACCOUNT:TOPIC")
        return "sns", arn
    url = urllib.parse.urlsplit(text)
    if url.scheme == "https" and url.hostname:
        return "webhook", text
    if url.scheme == "http" and url.hostname in _LOCAL_HOSTS:
        return "webhook", text
    raise ByocError(f"--notify {text}: give sns:TOPIC_ARN or an https:// URL (http:// only to localhost)")


def message(command: str, records: Sequence[Mapping[str, Any]], problem: str) -> dict[str, Any] | None:
    """The run's message: the clusters with a problem and those that failed; None when there are none.
    ``records`` are the fleet's JSON records (spec, cluster, account, status, counts, error)."""
    keep = ("spec", "cluster", "account", "status", "counts", "error")
    bad = [{k: r.get(k) for k in keep} for r in records if r.get("status") == "error"]
    worse = [{k: r.get(k) for k in keep} for r in records if r.get("problem") and r.get("status") != "error"]
    if not bad and not worse:
        return None
    return {"source": "byoc", "command": command, "clusters": len(records),
            problem: worse, "failed": bad}


def subject(msg: Mapping[str, Any], problem: str) -> str:
    text = (f"byoc {msg['command']}: {len(msg[problem])} {problem}, {len(msg['failed'])} failed "
            f"of {msg['clusters']} clusters")
    return text[:SUBJECT_MAX]


def publish_sns(client: Any, topic_arn: str, msg: Mapping[str, Any], problem: str) -> None:
    """One SNS Publish (the message is cut to SNS's limit: the lists first, keeping their sizes)."""
    body = json.dumps(msg, indent=1)
    if len(body.encode()) > SNS_MAX_BYTES:
        short = dict(msg)
        for key in (problem, "failed"):
            short[key] = [{"cluster": r.get("cluster"), "spec": r.get("spec"), "status": r.get("status")}
                          for r in msg[key]]
        body = json.dumps(short)[:SNS_MAX_BYTES - 64]
    try:
        client.publish(TopicArn=topic_arn, Subject=subject(msg, problem), Message=body)
    except Exception as exc:
        raise ByocError(f"--notify sns:{topic_arn}: Publish failed: {exc}; check that the topic exists in "
                        "the account and region of byoc's own credentials and that they may sns:Publish "
                        "to it") from exc


def post_webhook(
    url: str,
    msg: Mapping[str, Any],
    *,
    timeout: float = WEBHOOK_TIMEOUT,
    attempts: int = WEBHOOK_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """One JSON POST; a connection error, a timeout, 429 or a 5xx is tried again with backoff."""
    data = json.dumps(msg).encode()
    delay = 1.0
    last = ""
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "byoc/0.1"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
                return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if attempt < attempts - 1:
            sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, 30.0)
    raise ByocError(f"--notify {_redacted(url)}: the webhook did not accept the message ({last})")


def send(target: str, msg: Mapping[str, Any], problem: str) -> None:
    """Send ``msg`` to a ``--notify`` target (see ``parse_target``); SNS with byoc's own credentials,
    in the topic's region."""
    kind, where = parse_target(target)
    if kind == "webhook":
        post_webhook(where, msg)
        return
    from byoc.aws.context import AwsContext

    ctx = AwsContext(cluster="fleet", region=where.split(":")[3])
    publish_sns(ctx.client("sns"), where, msg, problem)


def _redacted(url: str) -> str:
    """The URL without its query (which may hold a token)."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc.rpartition("@")[2], u.path, "", ""))
