"""moto's server for the benchmark, without the costs of its own that AWS does not have.

On every request moto's server lists its own package directory (to tell a service name from a
host), runs ``inspect.getmembers`` over the response class (to see whether the action exists)
and logs the request line — none of which changes while it runs, and together about a third of
its CPU per call. And its heap (every AMI and instance type, reloaded at each reset) makes the
garbage collector's full passes stop the server for 50 to 250 ms, several times a run, stalling
whatever calls are in flight. On a small machine all of it is taken from the run measured, while
AWS's servers cost byoc nothing. So here those are computed once, and the full collection runs
when the benchmark resets the server (between measurements) instead of in the middle of one.
What moto emulates, and how, is unchanged.
Usage: ``python -m bench.fastmoto -H 127.0.0.1 -p PORT`` (moto.server's options).
"""

from __future__ import annotations

import functools
import gc
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
    from moto.moto_api._internal.models import MotoAPIBackend

    reset = MotoAPIBackend.reset

    def reset_then_collect(self: MotoAPIBackend) -> None:
        gc.unfreeze()
        reset(self)
        gc.collect()
        gc.freeze()  # what is left (the server, the fresh backends) is not scanned until the next reset

    MotoAPIBackend.reset = reset_then_collect  # type: ignore[method-assign]
    gc.set_threshold(700, 10, 1_000_000)  # no full passes of its own: at each reset instead
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
