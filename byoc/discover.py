"""Discovery: what the cluster owns in AWS right now, found by tag, one batched read per kind.

It stands below the engine (its only caller) and above the resource kinds, whose batched reads it
runs side by side (docs/architecture.md).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from collections.abc import Mapping
from typing import Any

from byoc.aws.errors import is_run_problem, to_cloud_error
from byoc.errors import CloudError
from byoc.model import DEFAULT_PARALLELISM, Live
from byoc.resources.base import ResourceType


def discover(
    kinds: Mapping[str, ResourceType], ctx: Any, parallelism: int = DEFAULT_PARALLELISM
) -> dict[str, Live]:
    """Run every kind's discovery concurrently; map address → Live.

    A kind that fails raises a CloudError naming the kind. A problem of the whole run (no or bad
    credentials, AWS not reachable) stops the kinds not yet started and is reported once, without
    a kind. Two AWS resources claiming one address (a duplicate left by a crash or a copy made by
    hand) are reported, never merged.
    """
    passes = getattr(ctx, "discovery_pass", None)
    with passes() if callable(passes) else contextlib.nullcontext():
        return _discover(kinds, ctx, parallelism)


def _discover(kinds: Mapping[str, ResourceType], ctx: Any, parallelism: int) -> dict[str, Live]:
    found: dict[str, Live] = {}
    duplicates: list[str] = []
    with cf.ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="discover") as pool:
        futures = {pool.submit(kind.discover, ctx): name for name, kind in sorted(kinds.items())}
        errors: list[CloudError] = []
        for fut in cf.as_completed(futures):
            name = futures[fut]
            if fut.cancelled():
                continue
            try:
                lives = fut.result()
            except Exception as exc:
                err = to_cloud_error(exc)
                if is_run_problem(err):
                    for other in futures:  # the others would only meet the same problem
                        other.cancel()
                    raise CloudError(err.message, code=err.code) from exc
                errors.append(CloudError(f"discovering {name}: {err.message}", code=err.code))
                continue
            for live in lives:
                if live.address in found:
                    duplicates.append(f"{live.address}: {found[live.address].id} and {live.id}")
                    continue
                found[live.address] = live
    if errors:
        raise errors[0]
    if duplicates:
        raise CloudError(
            "more than one AWS resource is tagged as the same byoc address: "
            + "; ".join(sorted(duplicates))
            + ". Delete the extra one(s) (or remove their byoc:cluster tag) and run again."
        )
    return found
