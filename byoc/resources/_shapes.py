"""Small helpers the kinds' ``provider_values`` share: byoc's props in the Terraform AWS provider's
shapes (a nested block as a list of one object, a JSON document as text), with UNKNOWN kept whole."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from byoc.model import UNKNOWN, contains_unknown


def json_text(value: Any) -> Any:
    """A JSON document as Terraform's ``jsonencode`` writes it (compact, keys sorted); UNKNOWN
    while any part is unknown; text and null unchanged."""
    if value is None or isinstance(value, str):
        return value
    if contains_unknown(value):
        return UNKNOWN
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def block(value: Any) -> Any:
    """A nested block of at most one item (``max_items = 1``): an object as a list of it, null as
    an empty list, UNKNOWN unchanged."""
    if value is UNKNOWN:
        return UNKNOWN
    if value is None:
        return []
    return [dict(value)] if isinstance(value, Mapping) else value


def rename(values: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """``values`` with the props in ``names`` renamed, every other prop passed through unchanged."""
    return {names.get(k, k): v for k, v in values.items()}
