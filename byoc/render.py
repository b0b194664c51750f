"""Rendering plans and apply results as text, the way Terraform users read them. Pure strings.

Lines start with the action symbol (``+``, ``~``, ``-/+``, ``-``) so the CLI can colour them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from byoc.drift import MISSING, MODIFIED
from byoc.model import UNKNOWN, parse_address
from byoc.plan import CREATE, DELETE, NOOP, REPLACE, UPDATE, Change, Plan
from byoc.planjson import Shaper

SYMBOL = {CREATE: "+", UPDATE: "~", REPLACE: "-/+", DELETE: "-"}
VERB = {
    CREATE: "will be created",
    UPDATE: "will be updated in-place",
    REPLACE: "must be replaced",
    DELETE: "will be destroyed",
}
LEGEND = {
    CREATE: "  + create",
    UPDATE: "  ~ update in-place",
    REPLACE: "-/+ destroy and then create replacement",
    DELETE: "  - destroy",
}


def fmt(value: Any) -> str:
    """A value as Terraform shows it."""
    if value is UNKNOWN:
        return "(known after apply)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # "—" as itself, not "\u2014"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=lambda v: fmt(v))


def render_plan(plan: Plan) -> str:
    """The whole plan: where its state lives, legend, one block per change, notes, and the
    summary line."""
    out: list[str] = [f"State: {plan.state_location}", ""] if plan.state_location else []
    out += render_drift_note(plan)
    actionable = plan.actionable
    if plan.targets:
        out.append("Warning: resource targeting is in effect (-target): this plan touches only "
                   f"{len(plan.targets)} resource(s), so it may be incomplete.")
        out.append("")
    if not actionable and not plan.forget and not plan.adopt:
        out.append("No changes. Your infrastructure matches the configuration.")
        out.append("")
        out.append("byoc found no differences between the spec, the state and what exists in AWS.")
    else:
        used = [a for a in (CREATE, UPDATE, REPLACE, DELETE) if any(c.action == a for c in actionable)]
        out.append("byoc compared the spec, the state and what exists in AWS.")
        if used:  # a legend only for the symbols this plan shows
            out.append("Resource actions are indicated with the following symbols:")
            out.extend(LEGEND[a] for a in used)
        out.append("")
        out.append("byoc will perform the following actions:")
        for c in sorted(actionable, key=lambda c: c.address):
            out.append("")
            out.extend(render_change(c))
        for address in plan.forget:
            out.append("")
            out.append(f"  # {address} no longer exists in AWS and will be removed from the state")
        for address in plan.adopt:
            aws_id = next((c.prior_id for c in plan.changes if c.address == address), None)
            out.append("")
            out.append(f"  # {address} ({aws_id}) exists in AWS with byoc's tags but "
                       "not in the state: adopting it")
        out.append("")
        out.append(f"Plan: {summary_line(plan)}.")
    if plan.unmanaged:
        out.append("")
        out.append("Unmanaged: these resources are tagged for this cluster but in no state or spec")
        out.append("(left by an interrupted run, or made by hand); byoc leaves them alone:")
        out.extend(f"  ? {a}" for a in plan.unmanaged)
    if plan.refused:
        out.append("")
        out.append("Refused (protected, data-bearing resources):")
        out.extend(f"  ! {r}" for r in plan.refused)
    for note in plan.notes:
        out.append("")
        out.append(f"Note: {note}")
    return "\n".join(out) + "\n"


def render_drift_note(plan: Plan) -> list[str]:
    """Terraform's "Objects have changed outside of Terraform" section (modified and missing)."""
    drifted = [r for r in (plan.drift.resources if plan.drift else ()) if r.status in (MODIFIED, MISSING)]
    if not drifted:
        return []
    out = ["Note: Objects have changed outside of byoc", "",
           "byoc detected the following changes made outside of byoc since the last \"byoc apply\":"]
    for r in drifted:
        out.append("")
        if r.status == MISSING:
            out.append(f"  # {r.address} ({r.aws_id}) has been deleted")
            continue
        kind, name, _ = parse_address(r.address)
        out.append(f"  # {r.address} ({r.aws_id}) has changed")
        out.append(f'  ~ resource "{kind}" "{name}" {{')
        for a in r.attributes:
            out.extend(_changed_attr(a.name, a.expected, a.actual, False))
        out.append("    }")
    out.extend(["", "Unless you have made equivalent changes to your spec, the actions below undo them.",
                "", "─" * 77, ""])
    return out


def render_change(c: Change) -> list[str]:
    kind, name, _ = parse_address(c.address)
    sym = SYMBOL[c.action]
    header = f'{sym:>3} resource "{kind}" "{name}" {{'
    why = f" ({c.reason})" if c.action != CREATE and c.reason else ""
    lines = [f"  # {c.address} {VERB[c.action]}{why}"]
    lines.append(header)
    if c.action == CREATE:
        body = dict(c.after or {})
        body.setdefault("id", UNKNOWN)
        lines.extend(_attrs("+", body))
    elif c.action == DELETE:
        body = dict(c.before or {})
        body["id"] = c.prior_id
        lines.extend(_attrs("-", body))
    else:
        changed = {a.name: a for a in c.attributes}
        lines.append(f"        id = {fmt(c.prior_id)}")
        for attr_name in sorted(changed):
            a = changed[attr_name]
            lines.extend(_changed_attr(attr_name, a.before, a.after, a.forces_replacement))
        unchanged = len([k for k in (c.after or {}) if k not in changed])
        if unchanged:
            lines.append(f"        # ({unchanged} unchanged attributes hidden)")
    lines.append("    }")
    return lines


def _attrs(sym: str, body: Mapping[str, Any], indent: int = 6) -> list[str]:
    """Attribute lines of a whole resource (created or destroyed), nested like Terraform."""
    width = max((len(k) for k in body), default=0)
    out: list[str] = []
    for k in sorted(body):
        out.extend(_value_lines(sym, f"{k:<{width}} = ", body[k], indent))
    return out


def _value_lines(sym: str, lead: str, v: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(v, Mapping) and v:
        width = max(len(fmt(str(k))) for k in v)
        lines = [f"{pad}{sym} {lead}{{"]
        for k in sorted(v):
            lines.extend(_value_lines(sym, f"{fmt(str(k)):<{width}} = ", v[k], indent + 4))
        lines.append(f"{pad}  }}")
        return lines
    if isinstance(v, list) and v:
        lines = [f"{pad}{sym} {lead}["]
        for item in v:
            if isinstance(item, Mapping) and item:
                width = max(len(k) for k in item)
                lines.append(f"{pad}    {sym} {{")
                for k in sorted(item):
                    lines.extend(_value_lines(sym, f"{k:<{width}} = ", item[k], indent + 8))
                lines.append(f"{pad}      }},")
            else:
                lines.append(f"{pad}    {sym} {fmt(item)},")
        lines.append(f"{pad}  ]")
        return lines
    return [f"{pad}{sym} {lead}{fmt(v)}"]


def _inline(value: Any) -> str:
    """A compact one-line form of a rule or route, for the lines of a changed list."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_inline(value[k])}" for k in sorted(value)) + " }"
    return fmt(value)


def _changed_attr(name: str, before: Any, after: Any, forces: bool) -> list[str]:
    suffix = " # forces replacement" if forces else ""
    pad = " " * 6
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out = [f"{pad}~ {name} = {{{suffix}"]
        for k in sorted(set(before) | set(after)):
            if k not in after:
                out.append(f"{pad}    - {fmt(str(k))} = {fmt(before[k])}")
            elif k not in before:
                out.append(f"{pad}    + {fmt(str(k))} = {fmt(after[k])}")
            elif before[k] != after[k]:
                out.append(f"{pad}    ~ {fmt(str(k))} = {fmt(before[k])} -> {fmt(after[k])}")
        out.append(f"{pad}  }}")
        return out
    if isinstance(before, list) and isinstance(after, list):
        b_keys = [_inline(x) for x in before]
        a_keys = [_inline(x) for x in after]
        out = [f"{pad}~ {name} = [{suffix}"]
        out.extend(f"{pad}    - {x}," for x in b_keys if x not in a_keys)
        out.extend(f"{pad}    + {x}," for x in a_keys if x not in b_keys)
        out.append(f"{pad}  ]")
        return out
    return [f"{pad}~ {name} = {fmt(before)} -> {fmt(after)}{suffix}"]


def render_plan_json(plan: Plan, shaper: Shaper | None = None, *, pretty: bool = False) -> str:
    """The plan JSON on one line, as ``terraform show -json`` prints it (indented with ``pretty``);
    ``shaper`` puts values in the AWS provider's shapes (``byoc.resources.shaper()``)."""
    if pretty:
        return json.dumps(plan.to_dict(shaper), indent=2) + "\n"
    return json.dumps(plan.to_dict(shaper), separators=(",", ":")) + "\n"


def summary_line(plan: Plan) -> str:
    """The counts, laid out as Terraform 1.5+ does with its imports: "1 to adopt, 2 to add, 0 to
    change, 1 to destroy" (the adopt count — resources tagged for the cluster that the state
    records on apply — only when there is one; a replacement counts as one add and one destroy)."""
    c = plan.counts()
    imports = f"{len(plan.adopt)} to adopt, " if plan.adopt else ""
    return f"{imports}{c['add']} to add, {c['change']} to change, {c['destroy']} to destroy"


def noop_count(plan: Plan) -> int:
    return sum(1 for c in plan.changes if c.action == NOOP)
