"""Terraform's flag spellings, read before click parses the command line.

Terraform users type ``-auto-approve``, ``-out=prod.plan``, ``-target=ADDR``: a single dash and a
long name. Click would read ``-out=x`` as ``-o`` with the value ``ut=x``. ``rewrite`` turns each
``-name`` / ``-name=value`` into ``--name`` when the command has that option, accepts the flags
byoc honours without an option (``-input``, ``-refresh=true``), moves ``-v`` given after the
command to the front, and refuses the rest with a message naming byoc's spelling.
"""

from __future__ import annotations

import re
from typing import Any

from byoc.errors import ByocError

_SINGLE = re.compile(r"-([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(=.*)?", re.DOTALL)
_VERBOSE = re.compile(r"-v+|--verbose")

#: Terraform flags byoc has no option for, and what to do instead
REFUSED = {
    "var": "byoc spells it --set KEY.PATH=VALUE (a spec value, e.g. --set compute.instance_count=5)",
    "var-file": "byoc has no variable files: put the values in the spec, or pass --set KEY.PATH=VALUE",
    "state": "byoc keeps the state where the spec's `state` section says (state.path, or the S3 "
             "backend)",
    "state-out": "byoc keeps the state where the spec's `state` section says (state.path, or the S3 "
                 "backend)",
    "backup": "byoc always keeps the previous state as <state>.backup beside the state file",
    "lock": "byoc always locks the state while it changes it; a stale lock is removed with "
            "`byoc force-unlock SPEC`",
    "chdir": "run byoc from that directory instead (cd DIR && byoc …); a relative state.path is "
             "relative to the working directory",
    "refresh-only": "byoc spells it `byoc refresh SPEC` (records what AWS has now in the state)",
}
#: Terraform's flags, to tell a user which byoc command lacks one (rather than "unknown option")
TERRAFORM = frozenset({
    "auto-approve", "out", "detailed-exitcode", "json", "no-color", "parallelism", "target", "replace",
    "lock-timeout", "raw", "destroy", "compact-warnings", "upgrade", "check", "recursive",
})


def rewrite(
    argv: list[str], root: Any, no_input: list[bool], no_color: list[bool] | None = None
) -> list[str]:
    """``argv`` in byoc's spellings; ``root`` is the click group of the application. Sets
    ``no_input[0]`` when ``-input=false`` was given (the flag itself is dropped), and
    ``no_color[0]`` for a ``-no-color`` given to a command without ``--no-color`` (dropped too:
    Terraform takes it everywhere)."""
    out: list[str] = []
    verbose: list[str] = []
    cmd, path, start = root, ["byoc"], 0  # start: where root options end (the command's index)
    skip = False
    for i, tok in enumerate(argv):
        if tok == "--":
            out.extend(argv[i:])
            break
        if skip:  # the value of the previous option
            skip = False
            out.append(tok)
            continue
        if not tok.startswith("-") or tok == "-":
            sub = getattr(cmd, "commands", {}).get(tok)
            if sub is not None:
                start = len(out) if cmd is root else start
                cmd, path = sub, [*path, tok]
            out.append(tok)
            continue
        if _VERBOSE.fullmatch(tok) and cmd is not root:
            verbose.append(tok)  # a root option: moved before the command
            continue
        m = _SINGLE.fullmatch(tok)
        if m is None or tok.startswith("--") or len(m.group(1)) < 2:
            out.append(tok)
            skip = _takes_value(cmd, tok.split("=", 1)[0]) and "=" not in tok
            continue
        name, value = m.group(1), m.group(2) or ""
        if _VERBOSE.fullmatch(tok):  # -vv before the command
            out.append(tok)
            continue
        if name == "input":
            if value not in ("", "=true", "=false"):
                raise ByocError(f"-input{value}: give -input=true or -input=false")
            no_input[0] = no_input[0] or value == "=false"
            continue
        if name == "refresh":
            if value in ("", "=true"):
                continue  # byoc always reads what exists in AWS
            raise ByocError(
                f"byoc has no -refresh{value}: byoc always reads what exists in AWS before it plans "
                "(it finds the cluster's resources by their tags, one batched call per kind), so a "
                "plan never acts on a stale picture. Leave the flag out."
            )
        where = " ".join(path)
        if name in REFUSED:
            raise ByocError(f"byoc has no -{name}: {REFUSED[name]}")
        opts = _options(cmd)
        if name == "help" or f"--{name}" in opts:
            out.append(f"--{name}{value}")
            skip = not value and _takes_value(cmd, f"--{name}")
            continue
        if name == "no-color" and not value and no_color is not None:
            no_color[0] = True
            continue
        if f"-{name}" in opts:  # byoc spells this one with a single dash too (-target, -replace)
            out.append(tok)
            skip = not value and _takes_value(cmd, f"-{name}")
            continue
        if name in TERRAFORM:
            raise ByocError(f"`{where}` has no --{name} (Terraform's -{name}); see `{where} --help`")
        raise ByocError(
            f"`{where}` has no option -{name}: byoc spells long options with two dashes (--{name}) and "
            f"accepts Terraform's single-dash spellings of the ones it has; see `{where} --help`"
        )
    return out[:start] + verbose + out[start:] if verbose else out


def _options(cmd: Any) -> set[str]:
    names: set[str] = set()
    for p in getattr(cmd, "params", ()):
        names.update(getattr(p, "opts", ()))
        names.update(getattr(p, "secondary_opts", ()))
    return names


def _takes_value(cmd: Any, opt: str) -> bool:
    for p in getattr(cmd, "params", ()):
        if opt in getattr(p, "opts", ()) or opt in getattr(p, "secondary_opts", ()):
            return not (getattr(p, "is_flag", False) or getattr(p, "count", False))
    return False
