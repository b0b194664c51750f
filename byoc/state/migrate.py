"""Copy a cluster's state from one backend to another without losing a serial."""

from __future__ import annotations

from byoc.errors import StateError
from byoc.state.base import Backend
from byoc.state.model import State


def migrate_state(src: Backend, dst: Backend) -> tuple[State, bool]:
    """Copy the state of ``src`` to ``dst``, both locked; returns (state, copied).

    The copy keeps lineage and serial. Refused when ``dst`` holds state of another lineage or a
    higher serial; nothing to do (copied False) when it already holds the same serial.
    """
    with src.lock("state migrate"), dst.lock("state migrate"):
        state = src.read()
        if state is None:
            raise StateError(f"{src.describe()}: there is no state to migrate")
        there = dst.read()
        if there is not None:
            if there.lineage != state.lineage:
                raise StateError(
                    f"{dst.describe()}: already holds state of another lineage ({there.lineage}, serial "
                    f"{there.serial}); nothing was copied. Move it away first if it is not needed."
                )
            if there.serial > state.serial:
                raise StateError(
                    f"{dst.describe()}: already holds a newer state (serial {there.serial} > "
                    f"{state.serial}); nothing was copied. Migrate in the other direction instead?"
                )
            if there.serial == state.serial:
                return state, False
        dst.write(state)
        if dst.read() != state:
            raise StateError(f"{dst.describe()}: the copy does not read back equal; the source is "
                             "kept as it was")
        return state, True
