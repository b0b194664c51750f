"""An in-memory fake cloud for the pure engine's unit tests (never for AWS behaviour).

``FakeKind`` stores resources in a dict shared through ``FakeCloud``, records every call in
order, and can be told to fail or to block, so ordering, parallelism and failure isolation can
be asserted without AWS.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from byoc.errors import CloudError
from byoc.model import Live, Resource
from byoc.planner import hash_props
from byoc.resources.base import ResourceType


class FakeCloud:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}  # id -> {"address", "kind", "props"}
        self.calls: list[tuple[str, str]] = []  # (verb, address)
        self.fail: dict[tuple[str, str], str] = {}  # (verb, address) -> error code
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.active = 0
        self.max_active = 0
        self.barrier: threading.Barrier | None = None

    def record(self, verb: str, address: str) -> None:
        with self.lock:
            self.calls.append((verb, address))
        code = self.fail.get((verb, address))
        if code:
            raise CloudError(f"{verb} failed (injected)", address=address, code=code)

    def order(self, verb: str) -> list[str]:
        return [a for v, a in self.calls if v == verb]


def attrs_of(rid: str) -> dict[str, Any]:
    """The computed attributes real kinds report, in fake form."""
    return {"arn": f"arn:{rid}", "arn_wildcard": f"arn:{rid}:*", "arn_suffix": f"suffix/{rid}",
            "dns_name": f"{rid}.elb.example", "owner_id": "123456789012"}


class FakeKind(ResourceType):
    service: ClassVar[str] = "fake"

    def __init__(self, kind: str, cloud: FakeCloud, force_new: frozenset[str] = frozenset(),
                 holds_data: bool = False, like: ResourceType | None = None) -> None:
        self.kind = kind  # type: ignore[misc]
        self.cloud = cloud
        self.force_new = like.force_new if like else force_new  # type: ignore[misc]
        self.holds_data = like.holds_data if like else holds_data  # type: ignore[misc]
        self.pins = like.pins if like else frozenset()  # type: ignore[misc]
        self.hashed = like.hashed if like else frozenset()  # type: ignore[misc]
        self.snapshots = like.snapshots if like else False  # type: ignore[misc]

    def _busy(self) -> None:
        c = self.cloud
        with c.lock:
            c.active += 1
            c.max_active = max(c.max_active, c.active)
        if c.barrier is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                c.barrier.wait(timeout=0.5)
        with c.lock:
            c.active -= 1

    def discover(self, ctx: Any) -> list[Live]:
        return [
            Live(v["address"], self.kind, i, dict(v["props"]), attrs_of(i))
            for i, v in sorted(self.cloud.items.items())
            if v["kind"] == self.kind
        ]

    def create(self, ctx: Any, address: str, props: Mapping[str, Any]) -> Live:
        self.cloud.record("create", address)
        self._busy()
        rid = f"{self.kind}-{next(self.cloud.ids)}"
        props = hash_props(props, self.hashed)
        with self.cloud.lock:
            self.cloud.items[rid] = {"address": address, "kind": self.kind, "props": dict(props)}
        return Live(address, self.kind, rid, dict(props), attrs_of(rid))

    def update(self, ctx: Any, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        self.cloud.record("update", live.address)
        self._busy()
        props = hash_props(props, self.hashed)
        with self.cloud.lock:
            self.cloud.items[live.id]["props"] = dict(props)
        return Live(live.address, self.kind, live.id, dict(props), attrs_of(live.id))

    def delete(self, ctx: Any, live: Live) -> None:
        self.cloud.record("delete", live.address)
        self._busy()
        with self.cloud.lock:
            self.cloud.items.pop(live.id, None)


def kinds(cloud: FakeCloud) -> dict[str, ResourceType]:
    return {
        "fake_net": FakeKind("fake_net", cloud, frozenset({"cidr"})),
        "fake_sub": FakeKind("fake_sub", cloud, frozenset({"net_id", "cidr"})),
        "fake_vm": FakeKind("fake_vm", cloud, frozenset({"sub_id"})),
        "fake_disk": FakeKind("fake_disk", cloud, frozenset({"size"}), holds_data=True),
    }


def res(address: str, **props: Any) -> Resource:
    kind = address.split(".")[0]
    depends = tuple(props.pop("depends_on", ()))
    return Resource(address, kind, props, depends)
