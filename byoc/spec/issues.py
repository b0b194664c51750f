"""Problems found in a spec, where each one is, and how it is written for a person.

An ``Issue`` names a field by its path; a ``Locator`` turns that path into ``file:line`` (or the
``--set`` override that caused it) and formats lines such as
``specs/prod.yaml:14 compute.instance_count: 0 is less than the minimum of 1``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Path = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Issue:
    """One problem (or, with ``warning``, one risky choice) in a spec.

    ``field`` is the path shown to the user; ``at`` is where to point when that differs (an
    unknown key is shown on its parent but located on its own line; a missing key is shown
    by its own name but located on its parent). ``line`` pins a file line and ``origin`` an
    override (``--set a.b=c``) when the problem is not about a field's value.
    """

    field: Path
    message: str
    at: Path | None = None
    line: int | None = None
    origin: str | None = None
    warning: bool = False

    @property
    def where(self) -> Path:
        return self.field if self.at is None else self.at

    @property
    def blocks(self) -> Path:
        """The most specific path this problem makes unusable for later checks."""
        return self.where if len(self.where) > len(self.field) else self.field


def dotted(path: Sequence[str | int]) -> str:
    """``aws.availability_zones[1]``; keys that are not plain names are quoted: ``tags["a.b"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


@dataclass(frozen=True)
class Override:
    """One applied ``--set`` override: the text as typed and the path it set."""

    raw: str
    path: Path

    @property
    def label(self) -> str:
        return f"--set {self.raw}"


def _is_prefix(short: Path, long: Path) -> bool:
    return long[: len(short)] == short


class Locator:
    """Finds where an issue is: a line of the source file, an override, or just the source."""

    def __init__(
        self,
        source: str,
        lines: Mapping[Path, int] | None = None,
        overrides: Sequence[Override] = (),
        *,
        root_line: int = 1,
    ) -> None:
        self.source = source
        self.lines = dict(lines or {})
        self.overrides = list(overrides)
        self.root_line = root_line
        #: Every override as typed, in order (bad ones too), for sorting.
        self.given: list[str] = [o.raw for o in self.overrides]

    def _override_for(self, path: Path) -> int | None:
        """Index of the override responsible for ``path``, if any (the last one wins)."""
        for index in reversed(range(len(self.overrides))):
            if _is_prefix(self.overrides[index].path, path):
                return index
        if path and path not in self.lines:
            # A mapping the file does not have was created by an override below it.
            for index in reversed(range(len(self.overrides))):
                if _is_prefix(path, self.overrides[index].path):
                    return index
        return None

    def _line_for(self, path: Path) -> int | None:
        if not self.lines:
            return None
        for size in range(len(path), 0, -1):
            line = self.lines.get(path[:size])
            if line is not None:
                return line
        return self.root_line

    def locate(self, issue: Issue) -> tuple[tuple[int, int], str]:
        """(sort key, label) of an issue: file lines first by line, then overrides in order."""
        if issue.origin is not None:
            given = self.given
            index = given.index(issue.origin) if issue.origin in given else len(given)
            return (1, index), f"--set {issue.origin}"
        if issue.line is not None:
            return (0, issue.line), f"{self.source}:{issue.line}"
        found = self._override_for(issue.where)
        if found is not None:
            override = self.overrides[found]
            order = self.given.index(override.raw) if override.raw in self.given else found
            return (1, order), override.label
        line = self._line_for(issue.where)
        if line is None:
            return (2, 0), self.source
        return (0, line), f"{self.source}:{line}"

    def format(self, issues: Iterable[Issue]) -> list[str]:
        """Each issue as one line, sorted by where it is, then by field."""
        rows = []
        for issue in issues:
            key, label = self.locate(issue)
            name = dotted(issue.field)
            text = f"{label} {name}: {issue.message}" if name else f"{label} {issue.message}"
            rows.append((key, name, text))
        rows.sort(key=lambda row: (row[0], row[1]))
        out: list[str] = []
        for _, _, text in rows:
            if text not in out:
                out.append(text)
        return out


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
