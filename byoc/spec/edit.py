"""Line-precise edits of a spec file: one scalar value replaced where it is written, every other
byte (comments, order, quoting, blank lines) kept. Used by ``byoc scale`` to keep the spec file
the source of truth.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from byoc.errors import ByocError
from byoc.spec.yamlpos import YamlError, parse_yaml


class SpecEditError(ByocError):
    """The value cannot be changed in the file in place; the message says why."""


def _child(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    found = [v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key]
    return found[-1] if len(found) == 1 else None


def set_scalar(path: str | Path, field: Sequence[str], value: int | str) -> int:
    """Write ``value`` in place of the plain scalar at ``field`` (e.g. compute.instance_count) in
    the YAML file at ``path``; returns the 1-based line edited. Raises SpecEditError when the
    value is not written on its own as a plain scalar (absent, an alias, quoted across lines …)
    or the file cannot be read or written."""
    where = f"{path}: {'.'.join(field)}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecEditError(f"{path}: cannot read the spec: {exc}") from exc
    try:
        node: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise SpecEditError(f"{path}: cannot read the spec as YAML: {exc}") from exc
    for key in field:
        node = _child(node, key)
    if node is None:
        raise SpecEditError(f"{where} is not written in the file (a default, or set through an "
                            "anchor or merge key)")
    start, end = node.start_mark, node.end_mark
    if not isinstance(node, ScalarNode) or node.style not in (None, "") or start.line != end.line:
        raise SpecEditError(f"{where} is not a plain value on its own line")
    if node.value == str(value):
        return int(start.line) + 1  # already says so
    new = text[: start.index] + str(value) + text[end.index:]
    _check(text, new, field, value, where)
    _write(Path(path), new)
    return int(start.line) + 1


def _check(old: str, new: str, field: Sequence[str], value: int | str, where: str) -> None:
    """The edited text must parse to the old document with only ``field`` changed (a value shared
    through an anchor would change elsewhere too)."""
    try:
        before, after = parse_yaml(old), parse_yaml(new)
    except YamlError as exc:
        raise SpecEditError(f"{where}: the edited file would not parse ({exc.message})") from exc
    expected = copy.deepcopy(before.value if before is not None else None)
    target = expected
    for key in field[:-1]:
        target = target.get(key) if isinstance(target, dict) else None
    if not isinstance(target, dict) or after is None:
        raise SpecEditError(f"{where}: the edit would not read back as {value!r}")
    target[field[-1]] = value
    if after.value != expected:
        raise SpecEditError(f"{where} is shared with another field (an anchor): the edit would "
                            "change more than this value")


def _write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permissions."""
    if not os.access(path, os.W_OK):
        raise SpecEditError(f"{path}: the spec file is not writable")
    try:
        mode = path.stat().st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise SpecEditError(f"{path}: cannot write the spec file: {exc.strerror or exc}") from exc
