"""The engine benchmark: plan (and apply) a synthetic graph of thousands of resources against
the in-memory fake of tests/fakecloud.py, so only byoc's own planning and scheduling is timed.

The graph: networks, each with subnets, each subnet with VMs and a disk per VM; every VM
refers to its subnet, every subnet to its network (four kinds, references as in a cluster).
"""

from __future__ import annotations

import time
from typing import Any

from byoc.model import Ref, Resource


def graph(total: int) -> list[Resource]:
    """About ``total`` resources: 1 network per 100, 4 subnets per network, the rest VMs and disks."""
    out: list[Resource] = []
    nets = max(1, total // 100)
    subs_per_net = 4
    per_sub = -(-max(1, total - nets * (1 + subs_per_net)) // (nets * subs_per_net * 2))
    for n in range(nets):
        net = f"fake_net.n{n}"
        out.append(Resource(net, "fake_net", {"cidr": f"10.{n % 256}.0.0/16", "name": f"net-{n}"}))
        for s in range(subs_per_net):
            sub = f"fake_sub.n{n}s{s}"
            cidr = f"10.{n % 256}.{s}.0/24"
            out.append(Resource(sub, "fake_sub", {"net_id": Ref(net, "id"), "cidr": cidr}))
            for v in range(per_sub):
                if len(out) + 2 > total:
                    break
                key = f"n{n}s{s}v{v}"
                out.append(Resource(f"fake_disk.{key}", "fake_disk", {"size": 100, "name": key}))
                out.append(Resource(f"fake_vm.{key}", "fake_vm", {
                    "sub_id": Ref(sub, "id"), "disk": Ref(f"fake_disk.{key}", "id"),
                    "tags": {"Name": key, "Net": Ref(net, "id")}}))
    return out


def measure(total: int = 5000) -> dict[str, Any]:
    """Seconds to plan from empty, apply that plan (the fake does no I/O), and plan again (no-op)."""
    from byoc.discover import discover
    from byoc.executor import Executor
    from byoc.planner import make_plan, rules_of
    from byoc.state.model import State
    from tests.fakecloud import FakeCloud, kinds

    cloud = FakeCloud()
    ks = kinds(cloud)
    rules = rules_of(ks)
    desired = graph(total)
    out: dict[str, Any] = {"resources": len(desired)}

    started = time.monotonic()
    plan = make_plan(desired, None, discover(ks, None), rules, cluster="synthetic")
    out["plan_create_s"] = round(time.monotonic() - started, 3)

    started = time.monotonic()
    result = Executor(ks, None, State.new("synthetic"), lambda s: None, parallelism=10).run(plan)
    out["apply_s"] = round(time.monotonic() - started, 3)
    assert result.ok, result.failures

    started = time.monotonic()
    noop = make_plan(desired, result.state, discover(ks, None), rules, cluster="synthetic")
    out["plan_noop_s"] = round(time.monotonic() - started, 3)
    assert not noop.has_changes, noop.counts()
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5000), indent=2))
