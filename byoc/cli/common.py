"""What several commands share: loading a spec, building the engine, asking for confirmation,
running a plan with progress and interrupts, printing the outputs, the preflight checks and cost
footer that plan and apply show, and a drift report as text. Command modules import from here and
from byoc.cli.options, never from each other or from byoc.cli.app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from byoc.cli.ui import Progress, console, error, print_checks, stdin_is_tty, warning
from byoc.drift import MISSING, MODIFIED, UNMANAGED, DriftReport
from byoc.render import fmt


def _duration(text: str, flag: str = "--lock-timeout") -> float:
    """Seconds in a Terraform/Go duration: ``30s``, ``5m``, ``1m30s``, ``1h``, ``500ms`` (a bare
    number is seconds)."""
    import re

    from byoc.errors import ByocError

    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ByocError(f"{flag} {text}: not a duration; give e.g. 30s, 5m or 1m30s")
    unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * unit[u] for n, u in parts)


def _load(spec: Path, overrides: list[str] | None) -> Any:
    from byoc.spec import load_spec

    return load_spec(str(spec), overrides or ())


def _show_warnings(spec: Any, no_color: bool) -> None:
    err = console(stderr=True, no_color=no_color)
    for w in spec.warnings:
        warning(err, w)


def _engine(spec: Any, parallelism: int, adopt: bool = False) -> Any:
    from byoc.cli import timing
    from byoc.engine import Engine

    engine = Engine(spec, parallelism=parallelism, adopt=adopt)
    timing.track(engine.ctx)
    return engine


def _confirm(question: str, auto_approve: bool, what: str) -> None:
    from byoc.errors import ByocError

    if auto_approve:
        return
    if not stdin_is_tty():
        from byoc.cli.ui import input_disabled

        why = "-input=false forbids asking" if input_disabled() else "there is no terminal to ask on"
        raise ByocError(
            f"byoc {what} needs confirmation, but {why}; "
            "run it in a terminal, or pass --auto-approve"
        )
    con = console()
    con.print(f"\n{question}\n  Only 'yes' will be accepted to approve.\n")
    answer = input("  Enter a value: ").strip()
    if answer != "yes":
        raise ByocError(f"{what} cancelled.")


def _run(engine: Any, p: Any, no_color: bool, recheck: bool = False) -> None:
    """Run the executor with SIGINT/SIGTERM handled as Terraform does (see byoc.cli.interrupt)."""
    from byoc.cli.interrupt import DONE, Interrupts
    from byoc.errors import ByocError

    con = console(no_color=no_color)
    progress = Progress(con)
    note = ("The state lock stays in S3 until removed: when nothing else runs, use `byoc force-unlock`."
            if getattr(engine.backend, "kind", "") == "s3" else "")
    try:
        with Interrupts(progress.in_flight, note) as interrupts:
            result = engine.apply(p, on_event=progress, recheck=recheck, cancel=interrupts.event)
    finally:
        progress.close()
    for address, snapshot_id in sorted(result.snapshots.items()):
        con.print(f"Final snapshot of {address}: {snapshot_id} (recorded in the state; restore with "
                  "`aws ec2 create-volume --snapshot-id " + snapshot_id + " …`)")
    if result.ok and not interrupts.received:
        c = p.counts()
        verb = "Destroy" if p.destroy else "Apply"
        imported = f"{len(p.adopt)} adopted, " if p.adopt else ""
        con.print(f"\n{verb} complete! Resources: {imported}{c['add']} added, {c['change']} changed, "
                  f"{c['destroy']} destroyed.", style="bold green")
        if not p.destroy:
            _outputs(con, engine)
        return
    err = console(stderr=True, no_color=no_color)
    for f in result.failures:
        error(err, f"{f.action} {f.error}")
    if result.skipped:
        err.print(f"{len(result.skipped)} resource(s) were skipped because something they need failed.")
    what = "destroy" if p.destroy else "apply"
    if interrupts.received:
        err.print(DONE + " Run the command again to continue.")
        raise ByocError(f"{what} was interrupted")
    err.print("The state was saved after every step; fix the cause and run the command again to continue.")
    raise ByocError(f"{what} did not complete")


def _outputs(con: Any, engine: Any) -> None:
    state = engine.state()
    if state and state.outputs:
        con.print("\nOutputs:\n")
        for k, v in state.outputs.items():
            con.print(f"{k} = {json.dumps(v, ensure_ascii=False)}")


def preflight_or_stop(engine: Any, spec: Any, plan: Any, no_color: bool) -> None:
    """Run the preflight checks for this plan; stop before any change when one fails."""
    from byoc.errors import ByocError
    from byoc.operations.preflight import FAIL, WARN, failed, nodes_added, run_preflight

    checks = run_preflight(engine.ctx, spec, new_nodes=nodes_added(plan), plan=plan)
    shown = [c for c in checks if c.status in (FAIL, WARN)]
    if shown:
        con = console(stderr=True, no_color=no_color)
        con.print("\nPreflight:")
        print_checks(con, shown)
    if failed(checks):
        raise ByocError("preflight checks failed: nothing was changed. Fix the above, or pass "
                        "--skip-preflight if you are sure.")


def cost_footer(con: Any, plan: Any) -> None:
    """The estimated monthly cost now and after the plan (approximate)."""
    try:
        from byoc.cost import footer, plan_cost
    except ImportError:  # pragma: no cover - cost module absent
        return
    before, after = plan_cost(plan, plan.region)
    con.print("")
    con.print(footer(before, after))


def render_drift(report: DriftReport) -> str:
    """The report as text: one block per drifted resource."""
    if report.in_sync:
        lines = [f"cluster {report.cluster}: in sync ({report.checked} resources checked)."]
    else:
        s = {k: len(report.by_status(k)) for k in (MODIFIED, MISSING, UNMANAGED)}
        lines = [f"cluster {report.cluster}: drift found — {s[MODIFIED]} modified, {s[MISSING]} missing, "
                 f"{s[UNMANAGED]} unmanaged ({report.checked} resources checked)."]
    for r in report.resources:
        lines.append("")
        if r.status == MISSING:
            lines.append(f"  - {r.address} ({r.aws_id}) is missing: deleted outside byoc; "
                         "apply re-creates it")
        elif r.status == UNMANAGED:
            lines.append(f"  ? {r.address} ({r.aws_id}) is unmanaged: tagged for this cluster, in no state; "
                         + ("apply adopts it" if r.adoptable else
                            "apply lists it (--delete-unmanaged deletes it)"))
        else:
            lines.append(f"  ~ {r.address} ({r.aws_id}) was modified:")
            for a in r.attributes:
                lines.append(f"      {a.name}: expected {fmt(a.expected)}, actual {fmt(a.actual)}"
                             + (f" (the spec now asks for {fmt(a.desired)})" if a.has_desired else ""))
    if report.ignored:
        lines.append("")
        lines.append(f"  ({len(report.ignored)} accepted difference(s) hidden by drift.ignore: "
                     + ", ".join(report.ignored) + ")")
    return "\n".join(lines) + "\n"
