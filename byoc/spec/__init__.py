"""The cluster spec: a YAML file validated by ``schemas/spec.schema.json`` and semantic checks.

``load_spec`` reads a file, ``load_spec_dict`` takes plain values; both apply ``--set``
overrides, fill defaults and report every problem at once in one SpecError.
"""

from __future__ import annotations

from byoc.spec.load import Spec, load_spec, load_spec_dict
from byoc.spec.overrides import apply_overrides

__all__ = ["Spec", "apply_overrides", "load_spec", "load_spec_dict"]
