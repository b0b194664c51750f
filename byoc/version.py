"""byoc's version, in a module of its own at the ground so that any layer (the plan writes it into
its JSON) can read it without importing the package ``byoc``, whose ``Cluster`` is the API on top.
"""

from __future__ import annotations

__version__ = "0.1.0"
