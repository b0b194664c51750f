"""The one exception tree of byoc; every message is meant for a person.

    ByocError                      anything byoc reports instead of a traceback
    ├── SpecError                  the spec file or a --set override is wrong (carries a list of issues)
    ├── StateError                 the state file is unreadable, corrupt, newer, or locked
    │   ├── LockError              another run holds the state lock
    │   └── AdoptError             no state, but the cluster is deployed (its state is elsewhere)
    ├── PlanError                  a saved plan is stale or malformed; a graph has a cycle
    ├── ApplyError                 an apply/destroy/restore of the Python API did not complete (.result)
    └── CloudError                 an AWS call failed (address, AWS id, AWS error code)
"""

from __future__ import annotations

from typing import Any


class ByocError(Exception):
    """Base of every error byoc reports to a user; str() is the whole message."""

    exit_code = 1


class SpecError(ByocError):
    """The spec is invalid; ``issues`` holds every problem found, not just the first."""

    def __init__(self, message: str, issues: list[str] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []

    def __str__(self) -> str:
        if not self.issues:
            return super().__str__()
        return "\n".join([super().__str__(), *(f"  {i}" for i in self.issues)])


class StateError(ByocError):
    """The state file cannot be used as it is."""


class LockError(StateError):
    """Another run holds the lock on this cluster's state."""


class AdoptError(StateError):
    """No state exists, yet AWS has the cluster: its state is elsewhere (another directory or
    machine). Taking it over into a new state needs ``--adopt`` (``Engine.adopt``)."""


class PlanError(ByocError):
    """A plan cannot be made or applied (stale plan file, dependency cycle, bad plan file)."""


class ApplyError(ByocError):
    """An apply, destroy or restore did not complete; ``result`` (an ApplyResult) says what was
    done and what failed. Raised by the Python API (the CLI reports the same and exits 1)."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


class CloudError(ByocError):
    """An AWS call failed. ``code`` is AWS's error code when there is one."""

    def __init__(
        self,
        message: str,
        *,
        address: str | None = None,
        aws_id: str | None = None,
        code: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.address = address
        self.aws_id = aws_id
        self.code = code
        self.retryable = retryable

    @property
    def message(self) -> str:
        """The message alone: without the address, the AWS id and the code that ``str()`` adds."""
        return super().__str__()

    def __str__(self) -> str:
        where = ""
        if self.address:
            where = f"{self.address}"
            if self.aws_id:
                where += f" ({self.aws_id})"
            where += ": "
        code = f" [{self.code}]" if self.code else ""
        return f"{where}{super().__str__()}{code}"
