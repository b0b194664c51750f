"""byoc: deploy and run Timeplus Proton clusters in your own AWS account, Terraform-style.

``byoc.Cluster`` is the Python API (byoc/api.py); it is imported on first use so that
``import byoc`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from byoc.version import __version__

__all__ = ["Cluster", "__version__"]

if TYPE_CHECKING:
    from byoc.api import Cluster


def __getattr__(name: str) -> Any:
    if name == "Cluster":
        from byoc.api import Cluster

        return Cluster
    raise AttributeError(f"module 'byoc' has no attribute {name!r}")
