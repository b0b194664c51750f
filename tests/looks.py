"""Helpers for the tests of the look before create: several looks made at one moment, and a hold
that keeps the first call open until the other looks wait on the same batcher."""

from __future__ import annotations

import threading
from typing import Any

from byoc.aws.context import AwsContext
from byoc.model import Live
from byoc.resources._batch import batcher
from byoc.resources.base import ResourceType


def wait_pending(ctx: AwsContext, name: str, count: int) -> None:
    """Block until ``count`` callers wait on the context's batcher ``name`` (10 s at most)."""
    reader: Any = batcher(ctx, name, lambda: None)  # type: ignore[arg-type,return-value]
    waited = threading.Event()
    for _ in range(10_000):
        if len(reader._pending) >= count:
            return
        waited.wait(0.001)
    raise AssertionError(f"{count} callers never waited on {name}")


def look_all(kind: ResourceType, ctx: AwsContext, addresses: list[str]) -> dict[str, Live | None]:
    """``kind.find`` of every address, each in a thread of its own, all at once."""
    found: dict[str, Live | None] = {}
    threads = [threading.Thread(target=lambda a=a: found.update({a: kind.find(ctx, a)})) for a in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return found
