"""Load a spec: read the YAML file (or take a dict), apply ``--set`` overrides, fill defaults,
validate against the schema, then run the semantic checks.

Every problem is collected and raised at once in one SpecError whose issues are lines such as
``specs/prod.yaml:14 compute.instance_count: 0 is less than the minimum of 1``, sorted by line.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from byoc.errors import SpecError
from byoc.spec import overrides as _overrides
from byoc.spec.checks import run_checks
from byoc.spec.issues import Issue, Locator, plural
from byoc.spec.issues import Path as FieldPath
from byoc.spec.schema import fill_defaults, schema_issues, show
from byoc.spec.yamlpos import MAX_BYTES, MAX_DEPTH, YamlError, parse_yaml

SECTIONS = "cluster, aws and storage"


@dataclass(frozen=True)
class Spec:
    """A validated spec.

    ``data`` has every schema default filled in (``proton_version`` without a leading v);
    ``digest`` is the sha256 of its canonical JSON, overrides included; ``warnings`` are
    formatted like errors (``file:line field: message``); ``overrides`` are the ``--set``
    strings as given, so that the same spec can be loaded again (a saved plan does).
    """

    source: str
    data: dict[str, Any]
    digest: str
    warnings: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()

    def __hash__(self) -> int:
        return hash((self.source, self.digest))

    @property
    def cluster_name(self) -> str:
        return str(self.data["cluster"]["name"])

    @property
    def region(self) -> str:
        return str(self.data["aws"]["region"])

    @property
    def availability_zones(self) -> list[str]:
        return [str(zone) for zone in self.data["aws"]["availability_zones"]]

    @property
    def instance_count(self) -> int:
        return int(self.data["compute"]["instance_count"])


def digest_of(data: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``data`` (sorted keys, no spaces)."""
    text = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _read_text(source: str) -> str:
    path = Path(source)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{source}: is a directory, not a spec file") from None
    except PermissionError:
        raise SpecError(f"{source}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise SpecError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    except ValueError:  # a NUL byte in the path
        raise SpecError(f"{source!r}: is not a usable file name") from None
    if len(raw) > MAX_BYTES:
        raise SpecError(
            f"{source}: is larger than {MAX_BYTES // (1 << 20)} MiB; a spec is a "
            "small YAML file, is this the right one?"
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(f"{source}: is UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start]
        raise SpecError(
            f"{source}: 1 problem",
            [
                f"{source}:{line} not UTF-8 text: byte 0x{byte:02x} at column {column}; "
                "save the file as UTF-8"
            ],
        ) from None


def _top_level_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"a single value ({show(value)})"


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> Spec:
    """Read, validate and complete the spec file at ``path``.

    Raises SpecError: for a file that cannot be used at all (missing, a directory, unreadable,
    too large, empty) the message alone says why; otherwise the message counts the problems
    and ``issues`` lists every one, located at ``file:line`` or at the ``--set`` that caused it.
    """
    source = str(path)
    text = _read_text(source)
    try:
        parsed = parse_yaml(text)
    except YamlError as exc:
        where = f"{source}:{exc.line}" if exc.line else source
        raise SpecError(f"{source}: 1 problem", [f"{where} {exc.message}"]) from None
    if parsed is None:
        raise SpecError(f"{source}: is empty; a spec needs at least the {SECTIONS} sections")
    if not isinstance(parsed.value, dict):
        raise SpecError(
            f"{source}: 1 problem",
            [
                f"{source}:{parsed.root_line} the top level must be a mapping of sections "
                f"({SECTIONS} at least), not {_top_level_kind(parsed.value)}"
            ],
        )
    locator = Locator(source, parsed.lines, root_line=parsed.root_line)
    return _finish(source, parsed.value, parsed.issues, overrides, locator)


def load_spec_dict(
    data: Mapping[str, Any], overrides: Sequence[str] = (), source: str = "<dict>"
) -> Spec:
    """Validate and complete a spec given as plain values (as if read from YAML)."""
    if not isinstance(data, Mapping):
        raise SpecError(
            f"{source}: 1 problem",
            [
                f"{source} the top level must be a mapping of sections ({SECTIONS} at least), "
                f"not {_top_level_kind(data)}"
            ],
        )
    issues: list[Issue] = []
    plain = _plain(data, (), issues, 0)
    return _finish(source, plain, issues, overrides, Locator(source))


def _plain(value: Any, path: FieldPath, issues: list[Issue], depth: int) -> Any:
    """A deep copy of ``value`` restricted to what YAML could have produced."""
    if depth > MAX_DEPTH:
        issues.append(Issue(path, f"nesting deeper than {MAX_DEPTH} levels"))
        return None
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            issues.append(Issue(path, f"{value} is not a finite number"))
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                issues.append(Issue(path, f"key {key!r} is not a string"))
                continue
            out[key] = _plain(item, (*path, key), issues, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, (*path, i), issues, depth + 1) for i, item in enumerate(value)]
    issues.append(Issue(path, f"a {type(value).__name__} is not a spec value"))
    return None


def _finish(
    source: str,
    data: dict[str, Any],
    early: list[Issue],
    overrides: Sequence[str],
    locator: Locator,
) -> Spec:
    data = copy.deepcopy(data)
    applied, override_issues = _overrides.apply(data, overrides)
    locator.overrides = applied
    locator.given = list(overrides)
    fill_defaults(data)
    # A value already reported while reading (a bad tag, a duplicate key) is not reported again.
    known = [issue.blocks for issue in early]
    checked = [
        issue
        for issue in schema_issues(data)
        if not any(issue.blocks[: len(path)] == path for path in known)
    ]
    issues = [*early, *override_issues, *checked]
    issues += run_checks(data, [issue.blocks for issue in issues if issue.blocks])
    errors = locator.format(i for i in issues if not i.warning)
    if errors:
        raise SpecError(f"{source}: {plural(len(errors), 'problem')}", errors)
    warnings = locator.format(i for i in issues if i.warning)
    return Spec(source, data, digest_of(data), tuple(warnings), tuple(overrides))
