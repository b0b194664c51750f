"""The options and arguments that several commands share (`SPEC`, `--set`, `--parallelism`, …), as
typer ``Annotated`` types; a command module imports the ones it takes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SpecArg = Annotated[Path, typer.Argument(help="The cluster spec (YAML), e.g. specs/prod.yaml.",
                                         show_default=False, metavar="SPEC")]
SpecsArg = Annotated[list[Path], typer.Argument(
    help="The cluster spec (YAML), e.g. specs/prod.yaml; several for a fleet, checked side by side.",
    show_default=False, metavar="SPEC...")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY.PATH=VALUE",
                 help="Override a spec value, e.g. --set compute.instance_count=5 (repeatable)."),
]
ParOpt = Annotated[int, typer.Option("--parallelism", min=1, max=64,
                                     help="How many AWS calls run at once (what waits on AWS holds none).")]
NoColor = Annotated[bool, typer.Option("--no-color", help="No colours (NO_COLOR is honoured too).")]
AutoApprove = Annotated[bool, typer.Option("--auto-approve", help="Skip the confirmation question.")]
TargetOpt = Annotated[list[str] | None, typer.Option(
    "-target", "--target", metavar="ADDRESS",
    help='Only this resource and what it depends on, e.g. -target \'aws_instance.node["0"]\' '
    "(kind.name selects every key; repeatable).")]
ReplaceOpt = Annotated[list[str] | None, typer.Option(
    "-replace", "--replace", metavar="ADDRESS",
    help="Replace this resource even though nothing forces it (repeatable; data-bearing ones "
    "need --include-data).")]
DeleteUnmanaged = Annotated[bool, typer.Option(
    "--delete-unmanaged", help="Delete resources tagged for the cluster that no state or spec knows "
    "(data-bearing ones only with --include-data).")]
AdoptOpt = Annotated[bool, typer.Option(
    "--adopt", help="Take over a cluster that is deployed in AWS but has no state here (its state "
    "is elsewhere, or a first apply was killed before it saved any): its resources are recorded "
    "in a new state. Without it byoc refuses, so that one cluster never gets two states.")]
LockTimeout = Annotated[str, typer.Option(
    "--lock-timeout", metavar="DURATION",
    help="Wait this long for a state lock another run holds (e.g. 30s, 5m, 1m30s) before giving up; "
    "by default a held lock is refused at once.")]
UpdateAmi = Annotated[bool, typer.Option(
    "--update-ami", help="Use today's Amazon Linux 2023 AMI instead of the pinned one "
    "(replaces running nodes; their data volumes are kept).")]
# an upgrade (byoc/upgrade.py): `byoc plan` and `byoc apply`
NoBackup = Annotated[bool, typer.Option(
    "--no-backup", help="An upgrade (nodes replaced for a new cluster.proton_version or cluster.image) "
    "takes no backup before the first node is replaced. A saved plan remembers it.")]
AllowMajor = Annotated[bool, typer.Option(
    "--allow-major", help="Allow moving the nodes across major Proton versions (1.x <-> 3.x): the data "
    "format, the config keys and the users file change. Back up and try it on a copy first.")]
SkipVersionCheck = Annotated[bool, typer.Option(
    "--skip-version-check", help="In an upgrade, do not ask each replaced node's Proton for version() "
    "through SSM before the next node goes (the skip is reported).")]
