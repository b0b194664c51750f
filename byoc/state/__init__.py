"""State documents and the stores that keep them (local file now; S3 for teams)."""

from byoc.state.local import LocalBackend, LockInfo
from byoc.state.model import STATE_VERSION, ResourceState, State

__all__ = ["STATE_VERSION", "LocalBackend", "LockInfo", "ResourceState", "State"]
