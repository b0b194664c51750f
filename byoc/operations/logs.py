"""The cluster's logs: the log group ``/aws/proton/<cluster>`` holds one stream per instance, named
by its id (Proton's console log, shipped by Docker's awslogs driver), and ``<instance>/bootstrap``
(the boot script's log, shipped by the CloudWatch agent once it runs). One paginated
FilterLogEvents reads the chosen streams, interleaved by time; ``LogFollower`` polls for new ones.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, to_cloud_error
from byoc.blueprint.base import log_group_name
from byoc.errors import ByocError
from byoc.operations.ssm import node_instances
from byoc.state.model import State

PROTON, BOOTSTRAP = "proton", "bootstrap"
#: the boot script's stream is ``<instance id>`` + this (byoc.userdata: ``{instance_id}/bootstrap``)
BOOTSTRAP_SUFFIX = "/bootstrap"
#: FilterLogEvents takes at most 100 stream names per call
MAX_STREAMS = 100
#: how far behind the newest event a follow poll looks again: CloudWatch may accept an event
#: whose time is older than one already seen (the awslogs driver buffers); ids seen are skipped
FOLLOW_LOOKBACK_MS = 60_000
_INSTANCE = re.compile(r"i-[0-9a-f]{8,17}")
_SINCE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class LogEvent:
    """One log line. ``node`` is the node key, or the instance id for an instance that is no
    longer in the state (a replaced node's old instance)."""

    timestamp: int  # milliseconds since the epoch (the event's own time)
    node: str
    instance_id: str
    source: str  # "proton" (the server's console log) or "bootstrap" (the boot script's)
    message: str
    event_id: str

    @property
    def time(self) -> str:
        return iso_ms(self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "timestamp": self.timestamp, "node": self.node,
                "instance_id": self.instance_id, "source": self.source,
                "message": self.message, "event_id": self.event_id}


def iso_ms(ms: int) -> str:
    """``2026-12-02T13:05:01.123Z``"""
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_since(text: str, now: float) -> int:
    """Milliseconds since the epoch for ``--since``: a span back from ``now`` (30s, 15m, 1h, 2d)
    or an ISO 8601 time (without a zone: UTC)."""
    text = text.strip()
    m = _SINCE.fullmatch(text)
    if m:
        return int((now - int(m.group(1)) * _UNITS[m.group(2)]) * 1000)
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ByocError(
            f"--since {text}: not a time; give a span such as 30s, 15m, 1h or 2d, or an ISO time "
            "such as 2026-12-02T09:00:00Z"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return int(t.timestamp() * 1000)


def literal_pattern(text: str) -> str:
    """``text`` as a CloudWatch Logs filter pattern that matches it literally: one quoted term
    (an exact phrase), its backslashes and double quotes escaped. Matching is case-sensitive."""
    if not text:
        raise ByocError("--grep: give the text to look for")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class LogQuery:
    """What to read: the group, the streams (None: every instance's, by prefix ``i-``), the
    filter pattern, and who is who (instance id → node key, from the state)."""

    group: str
    streams: tuple[str, ...] | None
    pattern: str
    bootstrap: bool
    nodes_by_instance: Mapping[str, str] = field(default_factory=dict)

    def event(self, raw: Mapping[str, Any]) -> LogEvent | None:
        """The event, labelled; None for a stream that is not an instance's (or a source not asked)."""
        stream = str(raw.get("logStreamName", ""))
        instance, _, rest = stream.partition("/")
        source = PROTON if not rest else BOOTSTRAP if "/" + rest == BOOTSTRAP_SUFFIX else ""
        if not _INSTANCE.fullmatch(instance) or not source or (source == BOOTSTRAP and not self.bootstrap):
            return None
        return LogEvent(int(raw["timestamp"]), self.nodes_by_instance.get(instance, instance), instance,
                        source, str(raw.get("message", "")).rstrip("\n"), str(raw.get("eventId", "")))


def log_query(
    ctx: AwsContext, state: State | None, nodes: list[str] | None = None, grep: str | None = None,
    bootstrap: bool = False,
) -> LogQuery:
    """The query for ``nodes`` (keys; default every node, and every former instance whose stream
    is still in the group). Raises ByocError when the state has no nodes or a key is unknown."""
    current = node_instances(state, nodes)
    by_instance = {iid: key for key, iid in node_instances(state).items()}
    streams: tuple[str, ...] | None = None
    if nodes:
        streams = tuple(s for iid in current.values()
                        for s in (iid, *([iid + BOOTSTRAP_SUFFIX] if bootstrap else [])))
    return LogQuery(log_group_name(ctx.cluster), streams, literal_pattern(grep) if grep is not None else "",
                    bootstrap, by_instance)


def _pages(ctx: AwsContext, q: LogQuery, start_ms: int, end_ms: int | None) -> Iterator[dict[str, Any]]:
    logs = ctx.client("logs")
    base: dict[str, Any] = {"logGroupName": q.group, "startTime": start_ms}
    if end_ms is not None:
        base["endTime"] = end_ms
    if q.pattern:
        base["filterPattern"] = q.pattern
    chunks: list[dict[str, Any]] = [{"logStreamNamePrefix": "i-"}] if q.streams is None else [
        {"logStreamNames": list(q.streams[i:i + MAX_STREAMS])} for i in range(0, len(q.streams), MAX_STREAMS)]
    try:
        for chunk in chunks:
            yield from logs.get_paginator("filter_log_events").paginate(**base, **chunk)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise ByocError(
                f"log group {q.group} does not exist in {ctx.region}: it is made with the cluster "
                "(`byoc apply`); check the spec's region, or that the cluster was applied"
            ) from exc
        raise to_cloud_error(exc, "aws_cloudwatch_log_group.main", q.group) from exc


def read_logs(ctx: AwsContext, q: LogQuery, start_ms: int, end_ms: int | None = None) -> list[LogEvent]:
    """Every event of the query from ``start_ms``, oldest first (one paginated FilterLogEvents
    per 100 named streams; one in all without --node)."""
    found: dict[tuple[str, str], LogEvent] = {}
    for page in _pages(ctx, q, start_ms, end_ms):
        for raw in page.get("events", []):
            e = q.event(raw)
            if e is not None:
                found[(e.instance_id, e.event_id)] = e
    return sorted(found.values(), key=lambda e: (e.timestamp, e.node, e.event_id))


class LogFollower:
    """``--follow``: each ``poll`` returns the events not returned before, oldest first. It asks
    again from a little before the newest event seen (``FOLLOW_LOOKBACK_MS``) and skips the ids it
    has seen, so an event is printed once, and one that CloudWatch accepts late is not lost."""

    def __init__(self, ctx: AwsContext, q: LogQuery, start_ms: int) -> None:
        self.ctx, self.q = ctx, q
        self.start_ms = start_ms
        self.newest = start_ms
        self.seen: dict[tuple[str, str], int] = {}

    def poll(self) -> list[LogEvent]:
        since = max(self.start_ms, self.newest - FOLLOW_LOOKBACK_MS)
        found = read_logs(self.ctx, self.q, since)
        fresh = [e for e in found if (e.instance_id, e.event_id) not in self.seen]
        for e in fresh:
            self.seen[(e.instance_id, e.event_id)] = e.timestamp
            self.newest = max(self.newest, e.timestamp)
        floor = self.newest - FOLLOW_LOOKBACK_MS
        self.seen = {k: ts for k, ts in self.seen.items() if ts >= floor}
        return fresh


def cluster_logs(
    ctx: AwsContext, state: State | None, *, nodes: list[str] | None = None, since: str = "1h",
    grep: str | None = None, bootstrap: bool = False, now: float | None = None,
) -> list[LogEvent]:
    """The events of ``byoc logs`` (``Cluster.logs``): every node's (or ``nodes``') since ``since``."""
    import time

    q = log_query(ctx, state, nodes, grep, bootstrap)
    return read_logs(ctx, q, parse_since(since, time.time() if now is None else now))
