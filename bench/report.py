"""The benchmark's table: per case and step, calls, wall time, critical-path bound and ratio,
serial against parallel, and the calls of the no-op plan by service and action."""

from __future__ import annotations

from typing import Any


def _step(case: dict[str, Any], label: str, name: str) -> dict[str, Any] | None:
    return next((s for s in case.get(label) or () if s["step"] == name), None)


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    if "cli" in results:
        lines += cli_table(results["cli"])
    if "startup" in results:
        st = results["startup"]
        lines.append(f"start-up: byoc --help {st['help']:.3f} s, byoc validate {st['validate']:.3f} s")
    if "engine" in results:
        en = results["engine"]
        lines.append(f"engine ({en['resources']} synthetic resources, in-memory fake): plan "
                     f"{en['plan_create_s']:.3f} s, apply {en['apply_s']:.3f} s, "
                     f"no-op plan {en['plan_noop_s']:.3f} s")
    if not results.get("cases"):
        return "\n".join(lines)
    par = results.get("parallelism", 10)
    cores = results.get("cpus") or 1
    head = (f"{'nodes':>5} {'delay':>6} {'step':<13} {'calls':>6} {'chain':>6} {'wall s':>7} {'bound s':>7} "
            f"{'ratio':>6} {'work s':>7} {'cpu s':>6} {'moto s':>6} {'proxy s':>7} {'machine s':>9} "
            f"{'holds':>7} {'serial s':>8} {'speed-up':>8}")
    lines += ["", head, "-" * len(head)]
    for case in results["cases"]:
        for s in case["parallel"]:
            b = step_bounds(s, case["delay_ms"], par, cores)
            bound = b["chain_bound"]
            ratio = f"{s['wall'] / bound:6.2f}" if bound else f"{'-':>6}"
            serial = _step(case, "serial", s["step"])
            ser = f"{serial['wall']:8.2f}" if serial else f"{'-':>8}"
            speed = f"{serial['wall'] / s['wall']:7.1f}x" if serial and s["wall"] else f"{'-':>8}"
            proxy = f"{s['proxy_cpu']:>7.2f}" if s.get("proxy_cpu") is not None else f"{'-':>7}"
            lines.append(f"{case['nodes']:>5} {case['delay_ms']:>4g}ms {s['step']:<13} {s['calls']:>6} "
                         f"{s['chain']:>6} {s['wall']:>7.2f} {bound:>7.2f} {ratio} {b['work_bound']:>7.2f} "
                         f"{s.get('cpu', 0):>6.2f} {s.get('moto_cpu', 0):>6.2f} {proxy} "
                         f"{b['machine_bound']:>9.2f} {b['bound_that_holds']:>7} {ser} {speed}")
    lines += ["", "chain: the longest chain of dependent calls; bound = chain x delay; ratio = wall / bound;",
              f"work = calls x delay / parallelism ({par}); cpu = CPU seconds of byoc; moto, proxy = CPU",
              "seconds of the moto server and of the proxy (each in its own process); machine = (cpu + moto",
              f"+ proxy) / {cores} cores, the wall this machine allows when all three share it (against AWS",
              "the servers' CPU is not the user's); holds: the largest of the three bounds (chain, work,",
              "machine), the one the wall time is measured against."]
    lines += moto_actions(results)
    for case in results["cases"]:
        noop = _step(case, "parallel", "noop-plan")
        if noop is None or case["delay_ms"]:
            continue
        lines += ["", f"no-op plan, {case['nodes']} node(s): {noop['calls']} calls"]
        lines += [f"  {n:>4}  {action}" for action, n in sorted(noop["by_action"].items())]
    return "\n".join(lines)


def step_bounds(step: dict[str, Any], delay_ms: float, parallelism: int, cores: int) -> dict[str, Any]:
    """A step's lower bounds of the wall time: the chain (its longest chain of dependent calls at
    the delay), the work (its calls at the delay, ``parallelism`` at a time) and the machine
    (byoc's, moto's and the proxy's CPU over the cores), and which of the three holds."""
    delay = delay_ms / 1000
    found = {"chain": step["chain"] * delay, "work": step["calls"] * delay / parallelism,
             "machine": (step.get("cpu", 0) + step.get("moto_cpu", 0) + (step.get("proxy_cpu") or 0)) / cores}
    holds = max(found, key=lambda name: found[name])
    return {"chain_bound": round(found["chain"], 3), "work_bound": round(found["work"], 3),
            "machine_bound": round(found["machine"], 3), "bound_that_holds": holds,
            "wall_over_bound": round(step["wall"] / found[holds], 3) if found[holds] else None}


def moto_actions(results: dict[str, Any], top: int = 8) -> list[str]:
    """Per case, the actions moto spent the most CPU on in the apply (run with --moto-actions)."""
    lines: list[str] = []
    for case in results.get("cases", ()):
        apply = _step(case, "parallel", "apply")
        seen = (apply or {}).get("moto_by_action")
        if not seen:
            continue
        total = sum(s for _, s in seen.values())
        lines += ["", f"moto's CPU in the apply, {case['nodes']} node(s) at {case['delay_ms']:g} ms: "
                      f"{total:.2f} s in its application (of {apply['moto_cpu']:.2f} s in all)"]
        for action, (n, sec) in sorted(seen.items(), key=lambda kv: -kv[1][1])[:top]:
            lines.append(f"  {sec * 1000:7.0f} ms {n:>5} calls {sec / n * 1000:6.2f} ms/call  {action}")
    return lines


CLI_PARTS = ("start-up", "imports", "clients", "aws", "render", "other")


def cli_table(cli: dict[str, Any]) -> list[str]:
    """The CLI section: per command, the median wall from process start to exit and the median of
    each part byoc reported (BYOC_TIMINGS=1)."""
    head = f"{'command':<14} {'wall s':>7} " + " ".join(f"{p:>8}" for p in CLI_PARTS)
    lines = [f"CLI: `{cli['command']} COMMAND` in its own process against an idle moto server holding "
             f"the applied specs/dev.yaml, median of {cli['runs']} runs", head, "-" * len(head)]
    for name, rec in cli["commands"].items():
        lines.append(f"{name:<14} {rec['wall']:>7.3f} " + " ".join(
            f"{rec[p]:>8.3f}" if p in rec else f"{'-':>8}" for p in CLI_PARTS))
    lines += ["wall: measured outside (process start to exit); the parts are byoc's own BYOC_TIMINGS=1",
              "report (byoc/cli/timing.py), medians each, so they need not add up to the wall exactly.", ""]
    return lines
