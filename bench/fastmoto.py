"""moto's server for the benchmark, without three of its per-request costs.

On every request moto's server lists its own package directory (to tell a service name from a
host), runs ``inspect.getmembers`` over the response class (to see whether the action exists)
and logs the request line. None of it changes while the server runs; together it is about a
third of the server's CPU per call. On a small machine that CPU is taken from byoc, while AWS's
servers cost byoc nothing — so the benchmark computes these once. What moto emulates, and how,
is unchanged. Usage: ``python -m bench.fastmoto -H 127.0.0.1 -p PORT`` (moto.server's options).
"""

from __future__ import annotations

import functools
import logging
import sys


def main(argv: list[str] | None = None) -> None:
    import moto.backends
    import moto.core.responses
    import moto.core.utils
    import moto.server

    modules = frozenset(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment,return-value]
    names = functools.lru_cache(maxsize=None)(
        lambda cls: frozenset(moto.core.utils.method_names_from_class(cls)))
    moto.core.responses.method_names_from_class = names  # type: ignore[assignment]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
