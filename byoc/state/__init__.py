"""State documents and the stores that keep them: a local file, or an S3 object for teams."""

from byoc.state.base import Backend, LockInfo
from byoc.state.local import LocalBackend
from byoc.state.model import STATE_VERSION, ResourceState, State

__all__ = ["STATE_VERSION", "Backend", "LocalBackend", "LockInfo", "ResourceState", "State"]
