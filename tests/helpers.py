"""What several test modules share: running a command (in-process or as a real process), the one-line error check,
file trees, frames and masks on disk, and the tiny training setup. The fixtures built once per run are in conftest.py.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import progressbar.utils
import pytest
from PIL import Image

from util.output_safety import STATE_DIR, release_output_locks
from util.palette import davis_palette

ROOT = Path(__file__).resolve().parent.parent
DAVIS_FRAMES, DAVIS_HEIGHT, DAVIS_WIDTH = 4, 48, 64  # the shared DAVIS layout (conftest.py's ``davis``)


# ---------------------------------------------------------------------------- commands
@dataclass
class Ran:
    """What an in-process command gave, named as :class:`subprocess.CompletedProcess` names it."""

    returncode: int
    stdout: str
    stderr: str


Result = Union[Ran, subprocess.CompletedProcess]


def run(*args: str, check: bool = True, env: Optional[dict[str, str]] = None, cwd: Path = ROOT,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python *args`` as a real process (``scripts/x.py`` as ``-m scripts.x``); ``env`` adds to the environment."""
    if args and args[0].startswith("scripts/") and args[0].endswith(".py"):
        args = ("-m", args[0][: -len(".py")].replace("/", "."), *args[1:])
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def exit_code(stop: SystemExit) -> int:
    """The exit status the interpreter would give for ``stop`` (``sys.exit("message")`` is 1)."""
    if stop.code is None:
        return 0
    return stop.code if isinstance(stop.code, int) else 1


def call_main(entry: str, argv: list[str], cwd: Optional[Path] = None, env: Optional[dict[str, str]] = None,
              check: bool = False) -> Ran:
    """``entry.main(argv)`` in this process, as ``python entry.py *argv`` would run it: ``sys.argv`` set, stdout and
    stderr captured, the exit status from ``SystemExit`` (or the return value), the output folders' locks released
    afterwards (the process would have ended). ``cwd`` and ``env`` apply during the call only.

    ``entry`` is a module name (``eval_davis``, ``scripts.make_heldout``). Needs no fixture, so that fixtures of any
    scope can run commands too.
    """
    module = importlib.import_module(entry)
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        patch.setattr(sys, "argv", [f"{entry.replace('.', '/')}.py", *argv])
        patch.setattr("util.hardware._warned_amp_fallback", False)  # a warning once per process: once per command here
        # progressbar's redirect_stdout wraps, and afterwards restores, the stdout it saw when first imported (an
        # earlier test's captured stream): it is to wrap and restore this call's
        for name in ("stdout", "original_stdout"):
            patch.setattr(progressbar.utils.streams, name, sys.stdout)
        for name in ("stderr", "original_stderr"):
            patch.setattr(progressbar.utils.streams, name, sys.stderr)
        if cwd is not None:
            patch.chdir(cwd)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        try:
            returned = module.main(list(argv))
            code = returned if isinstance(returned, int) else 0
        except SystemExit as stop:
            code = exit_code(stop)
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
        finally:
            release_output_locks()
    result = Ran(code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"{entry} {argv} failed ({code}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_line_error(result: Result, *fragments: str, code: int = 2) -> str:
    """The command exited with ``code`` (2: a usage error) and said why in exactly one line holding every fragment."""
    lines = error_lines(result)
    assert result.returncode == code and len(lines) == 1, f"exit {result.returncode}: {result.stderr[-3000:]}"
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in lines[0]
    return lines[0]


def call(main, *argv: str, capsys) -> tuple[int, list[str], str]:
    """Run a script's ``main`` in-process with pytest's ``capsys`` (for refusals: they stop before the progress bar):
    (exit code, stderr lines, stdout)."""
    with progress_on_this_stdout():
        try:
            main(list(argv))
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def assert_refused(code: int, lines: list[str], *needles: str) -> None:
    """Exit code 2 and one line holding every needle (the output of :func:`call`)."""
    assert code == 2 and len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines[0]


@contextlib.contextmanager
def progress_on_this_stdout() -> Iterator[None]:
    """Progress bars on the current (captured) stdout and stderr: progressbar writes to the streams it found first,
    which may be an earlier test's, closed since."""
    import progressbar

    streams = progressbar.streams
    saved = streams.original_stdout, streams.stdout, streams.original_stderr, streams.stderr
    streams.original_stdout = streams.stdout = sys.stdout
    streams.original_stderr = streams.stderr = sys.stderr
    try:
        yield
    finally:
        streams.original_stdout, streams.stdout, streams.original_stderr, streams.stderr = saved


# ---------------------------------------------------------------------------- files
def tree(folder: Path, bookkeeping: bool = True) -> dict[str, bytes]:
    """Every file's bytes by relative path; without ``bookkeeping``, not the run's records in ``.qdmn/`` (they name the
    command and the processes)."""
    files = (p.relative_to(folder) for p in sorted(folder.rglob("*")) if p.is_file())
    return {str(p): (folder / p).read_bytes() for p in files if bookkeeping or p.parts[0] != STATE_DIR}


def file_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image)


def save_frames(folder: Path, frames, ext: str = ".jpg", step: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t * step:05d}{ext}", quality=95)


def save_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(mask)
    img.putpalette(davis_palette())
    img.save(path)


# ---------------------------------------------------------------------------- training (train.py on tiny data)
TRAIN = str(ROOT / "train.py")
COMMON = ["--model_config", "lite", "--size", "64", "-b", "2", "--num_workers", "0", "--debug"]
AMP = ["--amp", "--force_amp"]  # bfloat16 autocast on the CPU, whatever its instruction set
TIMEOUT = 300


def train_env(tmp: Path, threads: int = 1) -> dict[str, str]:
    """The environment of a train.py process: one thread, no ImageNet weights (reproducible random initialisation)."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), TORCH_HOME=str(tmp / "torch_home"), PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    return env


def train_here(cwd: Path, *args: str, code: Optional[int] = 0) -> Ran:
    """``train.main(args)`` in this process, in ``cwd`` (saves/ there), without ImageNet weights; exits with ``code``
    (None: any). TensorBoard's folder is given as an absolute path: a run stopped by an error leaves its writer's
    thread to flush after the working folder is back."""
    import train

    cwd.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "LOG_ROOT", str(cwd.resolve() / train.LOG_ROOT))
        result = call_main("train", list(args), cwd=cwd, env={"TORCH_HOME": str(cwd / "torch_home")})
    assert code is None or result.returncode == code, f"rc {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def train_error(*args: str) -> str:
    """``train.main(args)`` in-process stops with exit code 2 and one line ``error: ...``; returns that line."""
    line = assert_one_line_error(call_main("train", list(args)))
    assert line.startswith("error: "), line
    return line


def saved(cwd: Path, pattern: str) -> Path:
    files = sorted(cwd.glob(f"saves/*/{pattern}"))
    assert files, f"no saves/*/{pattern} in {cwd}"
    return files[-1]


def signal_run(cwd: Path, args: list[str], marker: str, sig: signal.Signals, delay: float = 0.0) -> tuple[int, str]:
    """Start train.py, wait until its output shows ``marker``, send ``sig`` ``delay`` seconds later; return its exit
    status and output."""
    cwd.mkdir(parents=True, exist_ok=True)
    log = cwd / "signalled.txt"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, TRAIN, *args], cwd=cwd, env=train_env(cwd), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + TIMEOUT
            while marker not in log.read_text() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(delay)
            proc.send_signal(sig)
            returncode = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
    return returncode, log.read_text()
