"""The core commands: `byoc validate | graph | plan | apply | destroy | output | show | force-unlock`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from byoc.cli.common import (
    _confirm,
    _duration,
    _engine,
    _load,
    _outputs,
    _run,
    _show_warnings,
    cost_footer,
    preflight_or_stop,
)
from byoc.cli.fleet import ClustersOpt, NotifyOpt, QuietOpt, ShardOpt, is_fleet, plan_fleet
from byoc.cli.options import (
    AdoptOpt,
    AllowMajor,
    AutoApprove,
    DeleteUnmanaged,
    LockTimeout,
    NoBackup,
    NoColor,
    ParOpt,
    ReplaceOpt,
    SetOpt,
    SkipVersionCheck,
    SpecArg,
    SpecsArg,
    TargetOpt,
    UpdateAmi,
)
from byoc.cli.timing import phase
from byoc.cli.ui import console, print_plan_text
from byoc.model import DEFAULT_PARALLELISM

PrettyOpt = Annotated[bool, typer.Option("--pretty", help="With --json (and -o): indent the plan JSON "
                                         "instead of one line.")]


def validate(spec: SpecArg, set_: SetOpt = None, no_color: NoColor = False) -> None:
    """Check a spec: schema, CIDR arithmetic, AZs, names, versions. All problems at once.

    Example: byoc validate specs/prod.yaml --set compute.instance_count=5
    """
    s = _load(spec, set_)
    _show_warnings(s, no_color)
    console(no_color=no_color).print(
        f"{spec}: valid (cluster {s.cluster_name}, {len(s.availability_zones)} AZs in {s.region})"
        + (f", {len(s.warnings)} warning(s)" if s.warnings else "")
    )


def graph(spec: SpecArg, set_: SetOpt = None) -> None:
    """Print the resource dependency graph as Graphviz DOT (pipe into `dot -Tsvg`).

    Example: byoc graph specs/prod.yaml | dot -Tsvg > graph.svg
    """
    from byoc import blueprint
    from byoc.graph import to_dot

    s = _load(spec, set_)
    typer.echo(to_dot(blueprint.desired_graph(s)), nl=False)


def plan(
    specs: SpecsArg,
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Save the plan to this file "
                                             "for `byoc apply PLANFILE`.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON on one line "
                                          "(the layout of `terraform show -json`, the AWS provider's "
                                          "attribute shapes).")] = False,
    pretty: PrettyOpt = False,
    detailed_exitcode: Annotated[bool, typer.Option(
        "--detailed-exitcode", help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
    ] = False,
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan the destruction of the cluster.")] = False,
    include_data: Annotated[bool, typer.Option(
        "--include-data", help="Allow deleting or replacing the S3 bucket and the data volumes "
        "(with --destroy, -replace, --delete-unmanaged, or a spec change that replaces them).")] = False,
    target: TargetOpt = None,
    replace: ReplaceOpt = None,
    delete_unmanaged: DeleteUnmanaged = False,
    update_ami: UpdateAmi = False,
    no_backup: NoBackup = False,
    allow_major: AllowMajor = False,
    adopt: AdoptOpt = False,
    parallelism: ParOpt = DEFAULT_PARALLELISM,
    no_color: NoColor = False,
    lock_timeout: Annotated[str, typer.Option(
        "--lock-timeout", metavar="DURATION",
        help="Accepted for Terraform's sake: byoc plan reads the state without locking it.")] = "0s",
    quiet: QuietOpt = False, clusters: ClustersOpt = 8, shard: ShardOpt = None, notify: NotifyOpt = None,
) -> None:
    """Show what apply would change: spec vs state vs what exists in AWS.

    The state is STATE.PATH/<cluster>.json; a relative state.path (and the default, state/) is
    relative to the working directory, as in Terraform. The plan's first line shows it.
    Several specs: a fleet, as `byoc drift` runs it (one line per cluster; exit 1 if any failed,
    else 2 if any has changes).

    Example: byoc plan specs/prod.yaml -o prod.plan && byoc apply prod.plan
    """
    if is_fleet(specs, shard, notify):
        plan_fleet(specs, set_, out, destroy, target, replace, parallelism=parallelism, clusters=clusters,
                   shard=shard, notify=notify, as_json=as_json, quiet=quiet, no_color=no_color)
    spec = specs[0]
    from byoc.planner import PlanOptions
    from byoc.render import render_plan, render_plan_json
    from byoc.resources import shaper

    _duration(lock_timeout)
    s = _load(spec, set_)
    _show_warnings(s, no_color)
    engine = _engine(s, parallelism, adopt)
    with phase("aws"):
        p = engine.plan(PlanOptions(
            destroy=destroy, allow_data_loss=include_data, targets=tuple(target or ()),
            replace=tuple(replace or ()), delete_unmanaged=delete_unmanaged, no_backup=no_backup,
            allow_major=allow_major), update_ami=update_ami)
    with phase("render"):
        if out is not None:
            _write_plan(out, render_plan_json(p, shaper(), pretty=pretty))
        if as_json:
            typer.echo(render_plan_json(p, shaper(), pretty=pretty), nl=False)
        else:
            con = console(no_color=no_color)
            print_plan_text(con, render_plan(p))
            if p.has_changes:
                cost_footer(con, p)
            if out is not None:
                con.print(f"\nSaved the plan to {out}. To perform exactly these actions, run:\n"
                          f"    byoc apply {out}")
    if detailed_exitcode and p.has_changes:
        raise typer.Exit(2)


def _write_plan(path: Path, text: str) -> None:
    from byoc.errors import ByocError

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise ByocError(f"{path}: cannot write the plan file: {exc.strerror}") from exc


def apply(
    target: Annotated[Path, typer.Argument(help="A spec (YAML) or a plan file saved by `byoc plan -o`.",
                                           show_default=False, metavar="SPEC|PLANFILE")],
    set_: SetOpt = None,
    auto_approve: AutoApprove = False,
    update_ami: UpdateAmi = False,
    skip_preflight: Annotated[bool, typer.Option(
        "--skip-preflight", help="Do not run `byoc preflight`'s checks before applying.")] = False,
    targets: TargetOpt = None,
    replaces: ReplaceOpt = None,
    delete_unmanaged: DeleteUnmanaged = False,
    include_data: Annotated[bool, typer.Option(
        "--include-data", help="Allow replacing (-replace, or a spec change that replaces them) or "
        "deleting (--delete-unmanaged) the S3 bucket and the data volumes.")] = False,
    no_backup: NoBackup = False,
    allow_major: AllowMajor = False,
    skip_version_check: SkipVersionCheck = False,
    adopt: AdoptOpt = False,
    parallelism: ParOpt = DEFAULT_PARALLELISM,
    no_color: NoColor = False,
    lock_timeout: LockTimeout = "0s",
) -> None:
    """Make AWS match the spec: plan, show, confirm, then create/update/delete.

    With a saved plan file, applies exactly that plan, and refuses it if the state or the spec
    changed since it was made. The state is STATE.PATH/<cluster>.json; a relative state.path (and
    the default, state/) is relative to the working directory, as in Terraform.

    Examples: byoc apply specs/prod.yaml · byoc apply --auto-approve specs/dev.yaml · byoc apply prod.plan
    """
    from byoc.operations.upgrading import upgrade_steps
    from byoc.render import render_plan

    wait = _duration(lock_timeout)
    saved = _maybe_plan_file(target)
    if saved is not None:
        if set_ or targets or replaces or delete_unmanaged or include_data or adopt or allow_major:
            from byoc.errors import ByocError

            raise ByocError("--set, -target, -replace, --delete-unmanaged, --include-data, --allow-major "
                            "and --adopt cannot be used with a saved plan; they were fixed when the plan "
                            "was made")
        if no_backup and saved.upgrade is not None:
            import dataclasses

            saved = dataclasses.replace(saved, upgrade=dataclasses.replace(saved.upgrade, backup=False))
        s = _load(Path(saved.spec_source), list(saved.spec_overrides))
        engine = _engine(s, parallelism)
        engine.upgrade_steps = upgrade_steps(engine, skip_version_check=skip_version_check)
        with engine.backend.lock("apply", timeout=wait):
            engine.check_fresh(saved)
            _run(engine, saved, no_color, recheck=True)
        return
    s = _load(target, set_)
    _show_warnings(s, no_color)
    engine = _engine(s, parallelism, adopt)
    engine.upgrade_steps = upgrade_steps(engine, skip_version_check=skip_version_check)
    with engine.backend.lock("apply", timeout=wait):
        from byoc.planner import PlanOptions

        p = engine.plan(PlanOptions(allow_data_loss=include_data, targets=tuple(targets or ()),
                                    replace=tuple(replaces or ()), delete_unmanaged=delete_unmanaged,
                                    no_backup=no_backup, allow_major=allow_major),
                        update_ami=update_ami)
        con = console(no_color=no_color)
        print_plan_text(con, render_plan(p))
        if not p.has_changes:
            engine.apply(p)  # records what discovery adopted (a crashed run's work); no AWS calls
            _outputs(con, engine)
            return
        cost_footer(con, p)
        if not skip_preflight:
            preflight_or_stop(engine, s, p, no_color)
        _confirm("Do you want to perform these actions?", auto_approve, "apply")
        _run(engine, p, no_color)


def destroy(
    spec: SpecArg,
    set_: SetOpt = None,
    auto_approve: AutoApprove = False,
    include_data: Annotated[bool, typer.Option(
        "--include-data",
        help="Also delete what holds data: the S3 bucket (every object version first), the data "
        "volumes and a KMS key byoc created. Without it they are kept.")] = False,
    adopt: AdoptOpt = False,
    targets: Annotated[list[str] | None, typer.Option(
        "-target", "--target", metavar="ADDRESS",
        help="Destroy only this resource and what depends on it, e.g. -target "
        "'aws_instance.node[\"1\"]' (kind.name selects every key; repeatable).")] = None,
    parallelism: ParOpt = DEFAULT_PARALLELISM,
    no_color: NoColor = False,
    lock_timeout: LockTimeout = "0s",
) -> None:
    """Delete everything byoc made for this cluster, in reverse dependency order.

    The S3 bucket and the nodes' data volumes are kept unless --include-data is given. With
    -target, only the targeted resources and what depends on them are destroyed. The state
    is STATE.PATH/<cluster>.json; a relative state.path (and the default, state/) is relative to
    the working directory, as in Terraform.

    Examples: byoc destroy specs/dev.yaml --auto-approve · byoc destroy specs/dev.yaml --include-data
    """
    from byoc.planner import PlanOptions
    from byoc.render import render_plan

    wait = _duration(lock_timeout)
    s = _load(spec, set_)
    engine = _engine(s, parallelism, adopt)
    with engine.backend.lock("destroy", timeout=wait):
        p = engine.plan(PlanOptions(destroy=True, allow_data_loss=include_data,
                                    targets=tuple(targets or ())))
        con = console(no_color=no_color)
        print_plan_text(con, render_plan(p))
        if not p.has_changes:
            return
        cost_footer(con, p)
        what = "all resources, INCLUDING ITS DATA," if include_data else "all resources"
        if targets:
            what = f"the {p.counts()['destroy']} targeted resource(s)" + (
                ", INCLUDING DATA," if include_data else "")
        _confirm(f"Do you really want to destroy {what} of cluster {s.cluster_name}?\n"
                 "  There is no undo.", auto_approve, "destroy")
        _run(engine, p, no_color)


def _maybe_plan_file(path: Path) -> Any:
    """A saved plan when ``path`` is one (JSON with byoc's plan marker), else None (a spec). A file
    named otherwise than .yaml/.yml that is neither JSON nor a YAML mapping is refused."""
    from byoc.engine import read_plan_file

    if path.suffix in {".yaml", ".yml"} or not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if text.lstrip()[:1] == "{":
        return read_plan_file(path)
    if not _yaml_mapping(text):
        from byoc.errors import PlanError

        raise PlanError(f"{path} is neither a spec (.yaml) nor a plan file saved by `byoc plan -o`; "
                        "give a spec such as specs/prod.yaml, or a plan saved with byoc plan SPEC -o FILE")
    return None


def _yaml_mapping(text: str) -> bool:
    """True when ``text`` is a YAML document holding a mapping (what a spec is)."""
    from byoc.spec.yamlpos import MAX_BYTES, YamlError, parse_yaml

    if len(text) > MAX_BYTES or "\x00" in text:
        return False
    try:
        parsed = parse_yaml(text)
    except (YamlError, ValueError):
        return False
    return parsed is not None and isinstance(parsed.value, dict)


def output(
    spec: SpecArg,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outputs as JSON.")] = False,
    name: Annotated[str | None, typer.Argument(help="Print only this output.", metavar="NAME")] = None,
    raw: Annotated[bool, typer.Option(
        "--raw", help="Print NAME's value alone, without quotes (strings, numbers, booleans), "
        "for scripts: VPC=$(byoc output SPEC vpc_id -raw)")] = False,
) -> None:
    """Show the cluster's outputs (VPC, subnets, security groups …) from the state.

    Examples: byoc output specs/prod.yaml --json · byoc output specs/prod.yaml vpc_id -raw
    """
    from byoc.engine import backend_for
    from byoc.errors import ByocError

    if raw and (name is None or as_json):
        raise ByocError("--raw prints one output's value: give its NAME, and not --json "
                        "(e.g. byoc output SPEC vpc_id -raw)")
    s = _load(spec, set_)
    state = backend_for(s).read()
    outputs = dict(state.outputs) if state else {}
    if name is not None:
        if name not in outputs:
            raise ByocError(f"no output named {name!r}; known: {', '.join(sorted(outputs)) or 'none'}")
        outputs = {name: outputs[name]}
    if raw:
        value = outputs[str(name)]
        if isinstance(value, dict | list) or value is None:
            raise ByocError(f"output {name!r} is a {type(value).__name__ if value is not None else 'null'}, "
                            "which has no raw form: use --json for it")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        typer.echo(text, nl=False)
        return
    if as_json:
        typer.echo(json.dumps(outputs, indent=2))
    elif not outputs:
        typer.echo("No outputs: the cluster has not been applied yet.")
    else:
        for k, v in outputs.items():
            typer.echo(f"{k} = {json.dumps(v, ensure_ascii=False)}")


def show(
    target: Annotated[Path, typer.Argument(help="A plan file, or a spec to show its state.",
                                           show_default=False, metavar="PLANFILE|SPEC")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output (a plan: one line, "
                                          "as `terraform show -json`).")] = False,
    pretty: PrettyOpt = False,
    no_color: NoColor = False,
) -> None:
    """Show a saved plan, or the state of the cluster a spec describes.

    Examples: byoc show prod.plan --json · byoc show specs/prod.yaml
    """
    from byoc.engine import backend_for
    from byoc.render import render_plan, render_plan_json
    from byoc.resources import shaper

    saved = _maybe_plan_file(target)
    if saved is not None:
        if as_json:
            typer.echo(render_plan_json(saved, shaper(), pretty=pretty), nl=False)
        else:
            print_plan_text(console(no_color=no_color), render_plan(saved))
        return
    s = _load(target, None)
    state = backend_for(s).read()
    if as_json:
        typer.echo(json.dumps(state.to_dict() if state else None, indent=2))
        return
    if state is None or not state.resources:
        typer.echo(f"No state for cluster {s.cluster_name}: nothing has been applied.")
        return
    typer.echo(f"# cluster {state.cluster} (serial {state.serial}, lineage {state.lineage})")
    for address, r in sorted(state.resources.items()):
        typer.echo(f"{address}  {r.id}")


def force_unlock(spec: SpecArg, set_: SetOpt = None) -> None:
    """Remove the state lock of a cluster whose holder is gone.

    Only needed when a lock outlives its process (a remote backend); a local lock is released
    by the OS when its process exits, even on SIGKILL.

    Example: byoc force-unlock specs/prod.yaml
    """
    from byoc.engine import backend_for

    s = _load(spec, set_)
    holder = backend_for(s).force_unlock()
    if holder is None:
        typer.echo(f"The state of cluster {s.cluster_name} was not locked.")
    else:
        typer.echo(f"Removed the lock held by {holder.describe()}.")
