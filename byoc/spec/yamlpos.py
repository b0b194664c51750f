"""YAML text to plain values, remembering the line of every mapping key and sequence item.

The text is composed with PyYAML's safe loader and the values are built here, so duplicate keys,
unknown tags, non-finite numbers, deep nesting and alias bombs are reported instead of obeyed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from byoc.spec.issues import Issue, Path

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_VALUES = 20_000

_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_T}{name}" for name in ("null", "bool", "int", "float", "str")}
_RAW_TAGS = {f"{_T}timestamp", f"{_T}value"}  # kept as written: no spec field is a date
_MERGE = f"{_T}merge"


class YamlError(Exception):
    """The text cannot be read as one YAML document; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Parsed:
    """Plain values (dict, list, str, int, float, bool, None), key lines and non-fatal problems."""

    value: Any
    lines: dict[Path, int] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    root_line: int = 1


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml_error(exc: yaml.YAMLError, text: str) -> YamlError:
    if isinstance(exc, yaml.reader.ReaderError):
        position = max(exc.position, 0)
        at_line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1])
        return YamlError(
            f"invalid YAML at column {column}: character U+{char:04X} is not allowed in YAML",
            at_line,
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        column = f" at column {int(mark.column) + 1}" if mark is not None else ""
        problem = exc.problem or "cannot be parsed"
        if exc.context == "expected a single document in the stream":
            return YamlError(
                "invalid YAML: a spec is one YAML document, but a second one starts here ('---')",
                line,
            )
        if exc.context:
            where = ""
            context_line = exc.context_mark.line if exc.context_mark is not None else None
            if context_line is not None and context_line != getattr(mark, "line", None):
                where = f" on line {int(context_line) + 1}"
            problem = f"{problem} ({exc.context}{where})"
        return YamlError(f"invalid YAML{column}: {problem}", line)
    return YamlError(f"invalid YAML: {exc}")


class _Builder:
    def __init__(self) -> None:
        self.lines: dict[Path, int] = {}
        self.issues: list[Issue] = []
        self.count = 0
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise YamlError(
                f"the document expands to more than {MAX_VALUES} values "
                "(are YAML aliases such as *name multiplying it?)",
                _line(node),
            )
        if depth > MAX_DEPTH:
            raise YamlError(f"nesting deeper than {MAX_DEPTH} levels", _line(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != f"{_T}seq":
                self._bad_tag(node, path)
            out = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = _line(item)
                out.append(self.build(item, (*path, index), depth + 1))
            return out
        if isinstance(node, MappingNode):
            if node.tag != f"{_T}map":
                self._bad_tag(node, path)
            return self._mapping(node, path, depth)
        raise YamlError(f"unsupported YAML node {type(node).__name__}", _line(node))

    def _bad_tag(self, node: Node, path: Path) -> None:
        tag = str(node.tag)
        shown = "!!" + tag.removeprefix(_T) if tag.startswith(_T) else tag
        text = f"YAML tag {shown} is not supported here"
        self.issues.append(Issue(path, text, line=_line(node)))

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag in _RAW_TAGS:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self._bad_tag(node, path)
            return node.value
        value = self.constructor.construct_object(node)
        if isinstance(value, float) and not math.isfinite(value):
            text = f"{node.value} is not a finite number"
            self.issues.append(Issue(path, text, line=_line(node)))
            return node.value
        return value

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self.issues.append(
                    Issue(
                        path,
                        "a mapping key must be a plain name, not a list or mapping",
                        line=_line(key_node),
                    )
                )
                continue
            key = str(key_node.value)
            line = _line(key_node)
            if key in seen:
                self.issues.append(
                    Issue((*path, key), f"duplicate key; also set on line {seen[key]}", line=line)
                )
            seen[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key), depth + 1)
        for merge in merges:
            self._merge(out, merge, path, depth)
        return out

    def _merge(self, out: dict[str, Any], node: Node, path: Path, depth: int) -> None:
        """YAML merge keys (``<<: *defaults``): keys already present win, earlier merges win."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.issues.append(
                    Issue(path, "'<<' (merge) takes a mapping or a list of them", line=_line(node))
                )
                continue
            scratch = _Builder()
            scratch.count = self.count
            merged = scratch._mapping(source, path, depth + 1)
            self.count = scratch.count
            self.issues.extend(scratch.issues)
            for key, value in merged.items():
                if key not in out:
                    out[key] = value
                    for sub, line in scratch.lines.items():
                        if sub[: len(path) + 1] == (*path, key):
                            self.lines[sub] = line


def _compose(text: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    except RecursionError:
        raise YamlError(f"nesting deeper than {MAX_DEPTH} levels") from None


def parse_yaml(text: str) -> Parsed | None:
    """The document's values and lines; None when it holds no document (empty or comments)."""
    node = _compose(text)
    if node is None:
        return None
    builder = _Builder()
    try:
        value = builder.build(node, (), 0)
    except RecursionError:
        raise YamlError(f"nesting deeper than {MAX_DEPTH} levels") from None
    return Parsed(value, builder.lines, builder.issues, _line(node))


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML scalar or flow value (``3``, ``true``, ``[a, b]``); empty is null."""
    node = _compose(text)
    if node is None:
        return None
    builder = _Builder()
    value = builder.build(node, (), 0)
    if builder.issues:
        raise YamlError(builder.issues[0].message)
    return value
