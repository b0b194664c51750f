"""IAM policy documents in byoc's normal form (sorted lists, one shape), as the IAM and S3 kinds
normalise what AWS returns, so documents compare equal whatever JSON form AWS answers in."""

from __future__ import annotations

from typing import Any

VERSION = "2012-10-17"


def statement(
    effect: str,
    actions: list[str],
    resources: list[Any] | None = None,
    *,
    sid: str | None = None,
    principal: Any = None,
    condition: dict[str, dict[str, list[Any]]] | None = None,
) -> dict[str, Any]:
    """One statement. ``resources`` may hold references; a list with references must have one
    element (AWS's order of a resolved list would not be known here)."""
    s: dict[str, Any] = {}
    if sid:
        s["Sid"] = sid
    s["Effect"] = effect
    if principal is not None:
        s["Principal"] = principal if principal == "*" else {k: sorted(v) for k, v in principal.items()}
    s["Action"] = sorted(actions)
    if resources is not None:
        s["Resource"] = sorted(resources) if all(isinstance(r, str) for r in resources) else resources
    if condition:
        s["Condition"] = {op: {k: sorted(v) for k, v in kv.items()} for op, kv in condition.items()}
    return s


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": list(statements)}
