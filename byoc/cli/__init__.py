"""The command-line interface: `byoc validate | plan | apply | destroy | graph | output | …`.

Exit codes follow Terraform: 0 success (or no changes), 1 error, 2 changes present (with
``--detailed-exitcode``). Every failure is a message, never a traceback.
"""

from __future__ import annotations

import signal
import sys
import traceback
from typing import Any


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], ...]:
    """(exit, usage error, abort) classes of click — newer typer releases vendor their own copy."""
    exits: list[type[BaseException]] = []
    usage: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = []
    import importlib

    for name in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        if name == "click.exceptions" and "typer._click" in sys.modules and "click" not in sys.modules:
            continue  # typer runs on its own copy; importing click as well cost every command ~10 ms
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for attr, bucket in (("Exit", exits), ("ClickException", usage), ("Abort", aborts)):
            cls = getattr(mod, attr, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                bucket.append(cls)
    return tuple(exits), tuple(usage), tuple(aborts)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `byoc` command (``argv``: in-process callers such as tests)."""
    from byoc.cli import timing

    timing.start()
    if argv is None:
        _short_lived_gc()
    from byoc.cli.app import app
    from byoc.cli.ui import console, error
    from byoc.errors import ByocError

    exits, usage, aborts = _click_exceptions()
    err = console(stderr=True)
    term = _sigterm_interrupts()
    try:
        import typer

        command = typer.main.get_command(app)  # built once: the spelling pass reads its options
        code = command(args=_terraform_spellings(sys.argv[1:] if argv is None else argv, command),
                       prog_name="byoc", standalone_mode=False)
    except exits as e:
        code = getattr(e, "exit_code", 1)
    except usage as e:
        e.show()  # type: ignore[attr-defined]
        code = 1
    except aborts:
        err.print("Aborted.")
        code = 1
    except ByocError as e:
        error(err, str(e))
        code = e.exit_code
    except KeyboardInterrupt:  # outside the executor (see byoc.cli.interrupt): nothing was in flight
        err.print("Interrupted.")
        code = 1
    except Exception:  # a bug: say so plainly, keep the details in a file
        import tempfile

        fd, path = tempfile.mkstemp(prefix="byoc-crash-", suffix=".log")
        with open(fd, "w") as f:
            traceback.print_exc(file=f)
        error(err, f"byoc hit an internal error; this is a bug. Details were written to {path}")
        code = 1
    finally:
        if term is not None:
            signal.signal(signal.SIGTERM, term)
    if code == INTERRUPTED:  # typer turns Ctrl-C outside the executor into a silent exit 130
        err.print("Interrupted.")
        code = 1
    timing.report()
    if argv is None:
        import gc

        gc.freeze()  # the exit's own collection would walk everything byoc loaded (~0.2 s) for nothing
    sys.exit(code if isinstance(code, int) else 0)


#: the exit code typer gives a KeyboardInterrupt (byoc exits 1, as Terraform does)
INTERRUPTED = 130


def _terraform_spellings(argv: list[str], command: Any) -> list[str]:
    """Terraform's single-dash flags in byoc's spelling (see byoc.cli.argv), for the click
    ``command`` that will parse them."""
    from byoc.cli import ui
    from byoc.cli.argv import rewrite

    no_input, no_color = [False], [False]
    out = rewrite(argv, command, no_input, no_color)
    ui.allow_input(not no_input[0])
    ui.allow_color(not no_color[0])
    return out


def _short_lived_gc() -> None:
    """The garbage collector tuned for one command's process: its full passes walk every object the
    imports and the SDK's service models made (hundreds of thousands, all alive until the exit),
    and with the default thresholds they ran often enough to cost a no-op plan about 0.1 s. Cycles
    are still collected, after every 20,000 net allocations instead of 700."""
    import gc

    gc.set_threshold(20_000, 20, 20)


def _sigterm_interrupts() -> Any:
    """SIGTERM (CI cancels, `docker stop`) interrupts like Ctrl-C, so that locks are released on the
    way out; returns the previous handler (None when not in the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, signal.default_int_handler)
