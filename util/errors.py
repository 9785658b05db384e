"""User-facing errors: one clear line naming the file and the fix, exit code 2."""

from __future__ import annotations

import contextvars
import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., object])


class UserError(Exception):
    """A problem with the user's input that a traceback would not help with."""


class RunIncomplete(Exception):
    """The run ended without every output complete (a process failed or was stopped): exit code 1, naming what is missing."""


def exit_on_user_error(main: F) -> F:
    """Run ``main``; a :class:`UserError` prints ``error: <message>`` and exits with code 2, :class:`RunIncomplete`
    with code 1, Ctrl-C exits 130.

    ``main`` runs in a context of its own: the inputs it declares (``util.write_gate.protect_inputs``)
    end with it, so a caller running several commands in one process (a test) starts each afresh.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return contextvars.copy_context().run(main, *args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except RunIncomplete as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            print("interrupted: complete outputs are kept, unfinished ones are not; rerun the same command to continue",
                  file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def run_python(cmd: list[str], cwd: str | Path) -> str:
    """Run ``python *cmd`` in ``cwd`` and return its output; a failure is a UserError naming its last line."""
    proc = subprocess.run([sys.executable, *cmd], cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0:
        raise UserError(f"{cmd[0]} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return proc.stdout
