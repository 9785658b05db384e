"""Output safety of the evaluation scripts' output folders, on top of the write gate (``util/write_gate``).

* an output location that is, contains, or lies inside an input is refused, and the
  inputs are declared to the gate (no file of the run may be written over them);
* output names are plain folder names (no paths);
* a video folder is complete only when this project recorded it so
  (``<output>/.qdmn/<video>.json``: frames, command, and the fingerprint of the input it
  was made from) and, when the run states the fingerprint it expects
  (:func:`expect_fingerprints`), the recorded one is the same; a folder without a
  record is the user's and is never replaced or deleted;
* one lock per output folder: a second run on it stops, naming the holder; the ranks or
  shards of one distributed evaluation share it, and each holds a lock per video while
  it writes that video (``<output>/.qdmn/locks/<video>``);
* files beside the video folders (overlays, CSVs) and the submission archive go through
  the gate: an existing one is replaced only when the gate's record shows this project
  wrote it. The archive's comment names this project and nothing of the user's machine.
"""

from __future__ import annotations

import contextvars
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Optional

from util import write_gate
from util.arg_types import is_plain_name
from util.errors import UserError

STATE_DIR = ".qdmn"  # in an output folder: <video>.json records (frames, command, complete) and the lock
PARTIAL_MARKER = ".qdmn-partial"  # in a .<video>.partial folder this project created
LOCK_NAME = f"{STATE_DIR}/lock"
VIDEO_LOCKS = f"{STATE_DIR}/locks"  # one lock file per video, held while a process writes it
ZIP_COMMENT = b"qdmn submission archive"  # no path: the archive travels to a public server

_held: dict[Path, IO[str]] = {}  # output folder -> open lock file, held until the process exits
# resolved output folder -> video name -> the input fingerprint this run expects there (evaluation/fingerprint.py)
_EXPECTED: contextvars.ContextVar[Optional[dict[Path, dict[str, Any]]]] = contextvars.ContextVar("qdmn_expected", default=None)


def _resolved(path: str | os.PathLike, flag: str = "--output") -> Path:
    return write_gate.resolved(path, flag)


def check_output_location(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], flag: str = "--output") -> None:
    """Declare ``inputs`` the run's inputs (``write_gate.protect_inputs``) and refuse an ``output`` that is,
    contains, or lies inside any of them."""
    inputs = [p for p in inputs if p is not None]
    write_gate.check_not_input(output, flag, inputs)
    write_gate.protect_inputs(inputs)


def check_plain_name(name: str, what: str = "--name") -> str:
    """``name`` if it is a plain folder name (no separator, not '.', '..' or hidden)."""
    if not is_plain_name(name):
        raise UserError(f"{what} {name!r}: must be a plain folder name (no '/', not '.' or '..', not starting with '.')")
    return name


def _record(output: Path, name: str) -> Path:
    return output / STATE_DIR / f"{name}.json"


def _state(output: Path, name: str) -> Optional[dict]:
    """What this project recorded about ``output/name`` (None: nothing, so the folder is not ours)."""
    try:
        info = json.loads(_record(output, name).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def recorded(output: Path, name: str) -> Optional[dict]:
    """The completion record of ``output/name`` (None: none, so the folder is not this project's)."""
    return _state(output, name)


def expect_fingerprints(output: str | os.PathLike, fingerprints: Mapping[str, Any]) -> None:
    """State the input fingerprint of each video this run writes into ``output``: a video is complete only when its
    record carries the same one, and :func:`publish` records it."""
    _EXPECTED.set({**(_EXPECTED.get() or {}), _resolved(output): dict(fingerprints)})


def expected_fingerprint(output: Path, name: str) -> Optional[Any]:
    return (_EXPECTED.get() or {}).get(_resolved(output), {}).get(name)


def is_complete(output: Path, name: str) -> bool:
    """Whether ``output/name`` was published whole by this project (its record says so) from this run's input
    (the recorded fingerprint is the expected one; a record without one never matches an expectation)."""
    info = _state(output, name)
    if not (output / name).is_dir() or info is None or info.get("complete") is not True:
        return False
    expected = expected_fingerprint(output, name)
    return expected is None or info.get("inputs") == expected


def check_complete(output: Path, names: Iterable[str]) -> None:
    """Before reading the masks (zip, J&F, overlay): each of ``names`` is complete for this run's input."""
    stale = [name for name in names if not is_complete(output, name)]
    if stale:
        raise UserError(f"{output / stale[0]}: not complete for this input ({len(stale)} video(s)); "
                        "rerun the same command to redo them, or use a new --output")


def check_replaceable(output: Path, name: str) -> None:
    """``output/name`` may be replaced only if this project wrote it."""
    folder = output / name
    if folder.exists() and _state(output, name) is None:
        raise UserError(
            f"{folder}: exists but was not written by this project (no {STATE_DIR}/{name}.json); "
            "it is left alone: move it or choose another --output"
        )


def _write_record(output: Path, name: str, frames: int, complete: bool) -> None:
    info: dict[str, Any] = {"frames": frames, "complete": complete, "command": [Path(sys.argv[0]).name, *sys.argv[1:]]}
    fingerprint = expected_fingerprint(output, name)
    if fingerprint is not None:
        info["inputs"] = fingerprint
    write_gate.write_state(_record(output, name), json.dumps(info) + "\n")


def check_video_outputs(output: Path, names: Iterable[str]) -> None:
    """Before any work: every existing ``<name>`` and ``.<name>.partial`` in ``output`` must be this project's."""
    for name in names:
        check_replaceable(output, name)
        partial = output / f".{name}.partial"
        if partial.exists() and not (partial / PARTIAL_MARKER).is_file():
            raise UserError(f"{partial}: exists but was not created by this project; it is left alone: move it or choose another --output")


def fresh_partial(output: Path, name: str) -> Path:
    """An empty ``.<name>.partial`` folder; a leftover one is removed only if this project created it.

    The folder appears with its marker already inside (made under a unique name, then
    renamed), so another process checking the output never sees it unmarked.
    """
    partial = output / f".{name}.partial"
    if partial.exists():
        if not (partial / PARTIAL_MARKER).is_file():
            raise UserError(f"{partial}: exists but was not created by this project; it is left alone: move it or choose another --output")
        shutil.rmtree(partial)
    try:
        staging = output / f".{name}.new.{os.getpid()}.{secrets.token_hex(4)}"  # mkdir, not mkdtemp: the umask's permissions
        staging.mkdir()
        (staging / PARTIAL_MARKER).write_bytes(b"")
        staging.rename(partial)
    except OSError as e:
        raise UserError(f"{partial}: cannot create ({e.strerror or e}); free disk space or fix --output's permissions") from None
    return partial


def publish(output: Path, name: str, partial: Path, frames: int) -> None:
    """Replace ``output/name`` (only one this project wrote) by the complete ``partial`` folder, then record it complete.

    The record says "not complete" while folders move, so a crash in between leaves a
    folder that is known to be ours and is redone by the next run.
    """
    final = output / name
    check_replaceable(output, name)
    _write_record(output, name, frames, complete=False)
    try:
        (partial / PARTIAL_MARKER).unlink(missing_ok=True)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old.", dir=output))  # a fresh unique name: nothing existing is touched
            old.rmdir()  # renaming onto an empty folder is POSIX only
            final.rename(old)
            partial.rename(final)
            shutil.rmtree(old)
        else:
            partial.rename(final)
    except OSError as e:
        raise UserError(f"{final}: cannot publish ({e.strerror or e}); fix --output's permissions and rerun") from None
    _write_record(output, name, frames, complete=True)


def check_files(output: Path, names: Iterable[str], flag: str = "--output") -> None:
    """Files written beside the video folders (overlays, CSVs) may replace only files this project wrote there
    (the gate's rule, checked before any work)."""
    for name in names:
        write_gate.check_target(output / name, flag)


claim_files = check_files  # the gate records each file when it writes it


def lock_output(output: Path, shared: bool = False) -> None:
    """Hold ``output``'s lock until the process exits; another run holding it is a UserError naming it.

    ``shared``: the ranks or shards of one distributed evaluation hold it together (a
    plain run on the same folder is still refused); they keep out of each other's
    videos with :func:`video_lock`.
    """
    key = _resolved(output)
    if key in _held:
        return
    (key / STATE_DIR).mkdir(exist_ok=True)
    handle = open(key / LOCK_NAME, "a+")  # noqa: SIM115 - kept open: the lock lives as long as the process
    if not _try_lock(handle, shared):
        handle.seek(0)
        holder = "; ".join(handle.read().strip().splitlines()[-3:]) or "unknown process"  # shared holders append lines
        handle.close()
        raise UserError(f"{output}: another run ({holder}) is writing into this folder; wait for it to finish or choose another --output")
    if not shared:  # shared holders add a line each
        handle.seek(0)
        handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    _held[key] = handle


@contextmanager
def video_lock(output: Path, name: str, holder: str) -> Iterator[Optional[str]]:
    """Hold ``output/name``'s lock while the body runs; yields None, or the other holder when another process has it."""
    folder = output / VIDEO_LOCKS
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / name, "a+")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UserError(f"{folder / name}: cannot write ({e.strerror or e}); fix --output's permissions") from None
    try:
        if not _try_lock(handle, shared=False):
            handle.seek(0)
            yield handle.read().strip() or "unknown process"
            return
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder}\n")
        handle.flush()
        yield None
    finally:
        handle.close()  # releases the lock


def _try_lock(handle: IO[str], shared: bool = False) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte instead (no shared locks: a shared holder does without)
        import msvcrt

        if shared:
            return True
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@contextmanager
def waiting_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if needed), waiting for another holder to let go."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e}); fix --output's permissions") from None
    try:
        try:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except ImportError:  # Windows: one process at a time is not enforced there
            pass
        yield
    finally:
        handle.close()


def archive_path(output: Path) -> Path:
    """``<output>.zip`` next to the output folder, with its full name (``run.v1`` -> ``run.v1.zip``)."""
    folder = _resolved(output)
    if not folder.name:
        raise UserError(f"--output {output}: no folder name to name the archive after; choose another --output")
    return folder.with_name(f"{folder.name}.zip")


def zip_comment(output: Path) -> bytes:
    """The archive's comment: it names this project, nothing of the user's machine (and the same masks give the
    same bytes). That the archive is this project's is known from the write gate's record of its folder."""
    return ZIP_COMMENT


def check_archive_replaceable(zip_path: Path, output: Path) -> None:
    """An existing ``zip_path`` may be replaced only if this project wrote it (the write gate's record of its
    folder) and it is unchanged since."""
    if not zip_path.exists() and not zip_path.is_symlink():
        return
    if zip_path.is_symlink() or not write_gate.written_by_project(zip_path):
        raise UserError(
            f"{zip_path}: exists and was not written from {output} by this project; it is left alone: move it or choose another --output"
        )


def release_output_locks() -> None:
    """Let go of every output folder's lock this process holds (:func:`lock_output` keeps them until the process
    exits): for a caller that runs several commands in one process, such as the tests."""
    while _held:
        _, handle = _held.popitem()
        handle.close()
