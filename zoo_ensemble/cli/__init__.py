"""The ``zoo`` command line. Errors a user can fix print one line and exit non-zero."""

from __future__ import annotations

import os
import signal
import sys
import time

import typer

from ..errors import ZooError
from .app import app
from .console import err_console, quiet_rank, safe, setup_logging

# typer 0.29 bundles its own click; older releases use the installed one. Either way its
# exceptions derive from the click that ``typer.BadParameter`` derives from.
_CLICK_EXCEPTION = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_ABORT = typer.Abort


def _error(message: str) -> None:
    """One ``error:`` line on stderr, untrusted text escaped so that it prints as written."""
    err_console.quiet = False  # a quiet torchrun rank still says its own error
    err_console.print(f"[bold red]error:[/] {safe(message)}", highlight=False, soft_wrap=True, markup=True)


def _register() -> None:
    from . import compose, data, demo, evaluate, experiment, importing, predict, train, zoo  # noqa: F401  (each module adds its commands to `app`)


def _launch() -> tuple[int, int]:
    """This process's rank and the number of processes under torchrun ((0, 1) otherwise), read
    without loading torch; ``distributed.launched()`` names a bad value when a command needs it."""
    try:
        size = int(os.environ.get("WORLD_SIZE") or 1)
        return (int(os.environ.get("RANK") or 0) if size > 1 else 0), size
    except ValueError:
        return 0, 1


def _lost_peer(exc: BaseException, processes: int) -> bool:
    """A collective that failed because another process of the run went away."""
    if processes <= 1:
        return False
    if type(exc).__name__ in ("DistBackendError", "DistNetworkError", "DistError"):
        return True
    # gloo reports a vanished peer as a plain RuntimeError from its transport
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _PEER_LOST)


_PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "gloo/transport", "NCCL communicator was aborted")


class _StoppedByLauncher(BaseException):  # not swallowed by an `except Exception` on the way
    """torchrun ended this process (SIGTERM) because another one of the run ended."""


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise _StoppedByLauncher()


def _leave() -> None:
    if "torch.distributed" in sys.modules:
        from ..distributed import leave

        leave()


#: How long another process waits, after an error every process meets, before it exits.
_GRACE_S = 5.0


def _let_rank_zero_say_it() -> None:
    """Every process met this error and rank 0 says it. Had this process exited at once,
    torchrun could stop rank 0 before it printed (it would then say "stopped by torchrun", and
    the error itself would be lost), so it waits a moment; torchrun ends it quietly when rank 0
    has exited."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    time.sleep(_GRACE_S)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Under torchrun only rank 0 prints; an error every process
    meets is said once, by rank 0, and the other processes exit without repeating it."""
    rank, processes = _launch()
    setup_logging(verbose=bool(os.environ.get("ZOO_DEBUG")))
    if rank:
        quiet_rank()
    if processes > 1:  # torchrun stops the others with SIGTERM when one process ends badly
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    _register()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="zoo", standalone_mode=False)
    except ZooError as exc:
        if os.environ.get("ZOO_DEBUG"):
            raise
        if type(exc).__name__ == "OtherProcessFailed":
            sys.exit(0)
        if rank == 0 or type(exc).__name__ == "RankError":  # that one is this process's own
            _error(f"rank {rank}: {exc}" if rank else str(exc))
        elif processes > 1:
            _let_rank_zero_say_it()
        sys.exit(exc.exit_code)
    except (_ABORT, KeyboardInterrupt):
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)
    except _CLICK_EXCEPTION as exc:  # usage errors: unknown option or command, missing argument
        hint = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) is not None else ""
        if rank == 0:
            _error(" ".join(exc.format_message().split()) + hint)
        elif processes > 1:
            _let_rank_zero_say_it()
        sys.exit(2)
    except OSError as exc:  # a file or disk problem no write site turned into a ZooError: still one line
        if os.environ.get("ZOO_DEBUG"):
            raise
        _error(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else f"{type(exc).__name__}: {exc}")
        sys.exit(2)
    except _StoppedByLauncher:
        _error(f"rank {rank}: stopped by torchrun, another process of the run ended; the checkpoint of the last finished epoch is kept: run the same command with --resume")
        sys.exit(2)
    except Exception as exc:
        if not _lost_peer(exc, processes) or os.environ.get("ZOO_DEBUG"):
            raise
        _error(f"rank {rank}: another process of the run stopped (its connection closed); the checkpoint of the last finished epoch is kept: run the same command with --resume")
        sys.exit(2)
    finally:
        _leave()
    if isinstance(rv, int) and rv != 0:
        sys.exit(rv)
