"""Proton version moves (pure): when a plan that replaces nodes is an upgrade (the spec's
``cluster.proton_version`` or ``cluster.image`` differs from what the state records the nodes run),
which moves are refused without ``--allow-major`` (a change of major version: 1.x ↔ 3.x, or any
other), what the plan says about them, and whether the version a node's Proton reports is the one
the spec asks for.

Proton's ``version()`` is its build's VERSION_STRING (cmake/version.cmake: ``X.Y.Z``, optionally
followed by ``.tweak`` or ``.extra``); the spec's ``X.Y.Z`` must be its prefix, component-wise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from byoc.errors import PlanError

LATEST = "latest"
#: the state's facts that record what the nodes run (written by a full apply that succeeded)
VERSION_FACT, IMAGE_FACT = "proton_version", "proton_image"
#: the version an upgrade apply started rolling to (recorded before its first node, cleared when
#: every node runs it): while it is there, some nodes may run it and others the recorded one
ROLLING_FACT = "proton_version_rolling"

#: kinds of move
UPGRADE, DOWNGRADE, MAJOR, IMAGE, UNPINNED, UNRECORDED = (
    "upgrade", "downgrade", "major", "image", "unpinned", "unrecorded")

_VERSION = re.compile(r"v?([0-9]+)\.([0-9]+)\.([0-9]+)(?:-([0-9A-Za-z.]+))?")

#: what changes between Proton 1.x and 3.x (reference/proton-facts.md §2-§4), for the refusal
CHANGES_1_TO_3 = (
    "the data format: no in-place migration of 1.x data by 3.x is documented (and none back)",
    "the configuration: 3.x renamed the config keys (1.x http_port, tcp_port … became http.port, "
    "tcp.port … or node.http.port); byoc's users.d override follows 1.6",
    "the container: the 3.x entrypoint no longer chowns the data directory nor drops to uid 101, "
    "and has no initdb step",
    "the ports keep their numbers (8123, 8463, 3218, 7587, 9363) but are set under the new keys, "
    "and 3.x changed which health endpoints need authentication",
)


@dataclass(frozen=True)
class Upgrade:
    """A plan's move of the nodes from one Proton version (or image) to another."""

    move: str  # upgrade | downgrade | major | image | unpinned | unrecorded
    to_version: str
    to_image: str
    #: what the state records the nodes run (None: not recorded, applied by an earlier byoc)
    from_version: str | None = None
    from_image: str | None = None
    #: the existing nodes whose instance the plan replaces, in roll order
    nodes: tuple[str, ...] = ()
    #: a backup is taken before the first node goes out of service (off with --no-backup)
    backup: bool = True
    #: a move across major versions was allowed with --allow-major
    allow_major: bool = False
    #: an earlier upgrade to this version stopped halfway: some nodes run it
    rolling_from: str | None = None

    @property
    def label(self) -> str:
        """``1.6.16 → 1.6.17`` (with the images when they change)."""
        old = self.from_version or "unrecorded version"
        if self.rolling_from is not None:
            old = f"{old} (and {self.rolling_from} on the nodes a stopped roll replaced)"
        if self.from_image is not None and self.from_image != self.to_image:
            return f"{self.from_image}:{old} → {self.to_image}:{self.to_version}"
        return f"{old} → {self.to_version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "move": self.move,
            "from": {"proton_version": self.from_version, "image": self.from_image},
            "to": {"proton_version": self.to_version, "image": self.to_image},
            "nodes": list(self.nodes),
            "backup": self.backup,
            "allow_major": self.allow_major,
            "rolling_from": self.rolling_from,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Upgrade:
        old, new = d.get("from") or {}, d["to"]
        return cls(
            move=str(d["move"]), to_version=str(new["proton_version"]), to_image=str(new["image"]),
            from_version=_opt(old.get("proton_version")), from_image=_opt(old.get("image")),
            nodes=tuple(str(n) for n in d.get("nodes", ())), backup=bool(d.get("backup", True)),
            allow_major=bool(d.get("allow_major", False)), rolling_from=_opt(d.get("rolling_from")),
        )


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """``(X, Y, Z)`` of ``X.Y.Z`` (a leading v and a ``-suffix`` allowed), else None (``latest``)."""
    m = _VERSION.fullmatch((text or "").strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def version_matches(wanted: str, reported: str) -> bool:
    """Whether Proton's ``version()`` answer is the spec's version: the spec's ``X.Y.Z`` is the
    answer's prefix, component by component (1.6.1 matches 1.6.1 and 1.6.1.4, never 1.6.16).
    ``latest`` matches any answer."""
    reported = reported.strip().removeprefix("v")
    if not reported:
        return False
    if wanted == LATEST:
        return True
    core = parse_version(wanted)
    if core is None:
        return reported == wanted
    prefix = ".".join(map(str, core))
    return reported == prefix or reported.startswith((prefix + ".", prefix + "-"))


def recorded(facts: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(version, image) the state's facts say the nodes run."""
    return _opt(facts.get(VERSION_FACT)), _opt(facts.get(IMAGE_FACT))


def detect(
    facts: Mapping[str, Any],
    wanted: Mapping[str, str],
    replaced: Mapping[str, frozenset[str]],
    *,
    backup: bool = True,
    allow_major: bool = False,
) -> tuple[Upgrade | None, tuple[str, ...]]:
    """The upgrade a plan makes, and its notes. ``facts``: the state's; ``wanted``: the spec's
    ``{"version", "image"}``; ``replaced``: each existing node whose instance the plan replaces →
    the attributes forcing it. Raises PlanError for a move across major versions without
    ``allow_major``."""
    if not replaced:
        return None, ()
    old_version, old_image = recorded(facts)
    new_version, new_image = str(wanted["version"]), str(wanted["image"])
    nodes = tuple(replaced)
    if old_version is None:
        if not any("user_data" in attrs for attrs in replaced.values()):
            return None, ()
        up = Upgrade(UNRECORDED, new_version, new_image, None, None, nodes, backup, allow_major)
        return up, (
            f"upgrade to {new_version}? The state does not record which Proton version the nodes run "
            "(they were applied by an earlier byoc), so byoc cannot check this move: make sure it "
            f"does not cross the 1.x → 3.x boundary. {_backup_note(backup)}",
            *_check_note(new_version),
        )
    rolling = _opt(facts.get(ROLLING_FACT))
    rolling = rolling if rolling not in (None, old_version, new_version) else None  # else: same roll
    if old_version == new_version and rolling is None and (old_image in (None, new_image)):
        return None, ()
    move, notes = _move(old_version, new_version, allow_major)
    if rolling is not None:  # the nodes the stopped roll replaced move from there
        move, more = _move(rolling, new_version, allow_major)
        notes = (*notes, *more) if old_version != new_version else more
    elif old_version == new_version:
        move = IMAGE
    up = Upgrade(move, new_version, new_image, old_version, old_image, nodes, backup, allow_major, rolling)
    what = {DOWNGRADE: "downgrade", MAJOR: "major version move"}.get(move, "upgrade")
    return up, (f"{what} {up.label}: {_backup_note(backup)}", *notes, *_check_note(new_version))


def _move(old: str, new: str, allow_major: bool) -> tuple[str, tuple[str, ...]]:
    """The kind of move from ``old`` to ``new`` and its extra notes; PlanError when refused."""
    if old == new:
        return IMAGE, ()
    a, b = parse_version(old), parse_version(new)
    if a is None or b is None:  # latest on one side (or both): unpinned, not checked
        pinned = b if a is None else a
        if pinned is not None and pinned[0] < 3 and not allow_major:
            raise PlanError(_refusal(old, new, unpinned=True))
        return UNPINNED, (
            f"{LATEST!r} is an unpinned tag: byoc cannot check the move {old} → {new} (it is not "
            "upgrade-checked; each node gets whatever the tag points at when it boots, and nodes "
            "replaced at different times may differ). Pin an exact version such as 3.0.19.",
        )
    if a[0] != b[0]:
        if not allow_major:
            raise PlanError(_refusal(old, new))
        return MAJOR, (
            f"{old} → {new} crosses major versions (allowed with --allow-major): "
            + "; ".join(_changes(a[0], b[0])) + ".",
        )
    if b < a:
        return DOWNGRADE, (
            f"{new} is older than {old} (same major version, allowed): Proton may not read what "
            "the newer version wrote (streams, checkpoints, the native log); the backup is the way "
            "back.",
        )
    return UPGRADE, ()


def _changes(a: int, b: int) -> tuple[str, ...]:
    if {a, b} == {1, 3}:
        return CHANGES_1_TO_3
    return (f"what changes between Proton {a}.x and {b}.x is not known to byoc: read the release "
            "notes",)


def _refusal(old: str, new: str, unpinned: bool = False) -> str:
    if unpinned:
        why = (f"{LATEST!r} is unpinned and now points at the 3.x line (it has crossed the 1.x → 3.x "
               f"boundary), so {old} → {new} may be a move between 1.x and 3.x")
        majors = (1, 3)
    else:
        a, b = parse_version(old), parse_version(new)
        assert a is not None and b is not None
        majors = (a[0], b[0])
        why = f"{old} → {new} is a {'downgrade' if b < a else 'move'} across major versions " + (
            "(the 1.x → 3.x boundary; there is no Proton 2.x)" if set(majors) == {1, 3} else
            f"({a[0]}.x → {b[0]}.x)")
    changes = "".join(f"\n  - {c}" for c in _changes(*majors))
    return (
        f"cluster.proton_version: refused: {why}. What changes:{changes}\n"
        "Nothing was changed. Back up first (`byoc backup SPEC`), restore the backup into a copy of "
        "the cluster (another cluster name) and try the new version there. When it works, plan "
        "again with --allow-major (the plan still takes a backup before the first node is "
        "replaced). Or keep the version the nodes run: "
        f"proton_version: {old}."
    )


def _backup_note(backup: bool) -> str:
    if backup:
        return "a backup is taken before the first node is replaced (--no-backup to skip)"
    return ("no backup is taken first (--no-backup); `byoc backup SPEC` takes one, and the data "
            "volumes are kept either way")


def _check_note(version: str) -> tuple[str, ...]:
    wanted = "answers" if version == LATEST else f"reports {version}"
    return (
        f"after each node is replaced and healthy, apply asks its Proton for version() through SSM "
        f"and goes on only if it {wanted}; otherwise the roll stops there (--skip-version-check "
        "to skip the question).",
    )


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
