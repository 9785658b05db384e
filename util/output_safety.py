"""Output safety shared by every entry point: never write over the user's files.

* an output location that is, contains, or lies inside an input is refused;
* output names are plain folder names (no paths);
* a video folder is complete only when this project recorded it so
  (``<output>/.qdmn/<video>.json``: frames, command); a folder without a record is the
  user's and is never replaced or deleted;
* one lock per output folder: a second run on it stops, naming the holder; the ranks or
  shards of one distributed evaluation share it, and each holds a lock per video while
  it writes that video (``<output>/.qdmn/locks/<video>``);
* archives carry a comment naming the folder they were written from, and an archive
  written for another folder (or by something else) is never replaced.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Optional

from util.arg_types import is_plain_name
from util.atomic import write_text_atomic
from util.errors import UserError

STATE_DIR = ".qdmn"  # in an output folder: <video>.json records (frames, command, complete) and the lock
PARTIAL_MARKER = ".qdmn-partial"  # in a .<video>.partial folder this project created
LOCK_NAME = f"{STATE_DIR}/lock"
VIDEO_LOCKS = f"{STATE_DIR}/locks"  # one lock file per video, held while a process writes it
FILES_RECORD = f"{STATE_DIR}/.files.json"  # other files this project wrote in the output (overlays, CSVs); hidden: no video name
ZIP_COMMENT_PREFIX = b"qdmn output: "

_held: dict[Path, IO[str]] = {}  # output folder -> open lock file, held until the process exits


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output_location(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], flag: str = "--output") -> None:
    """Refuse an ``output`` that is, contains, or lies inside any of ``inputs``."""
    out = _resolved(output)
    for given in inputs:
        inp = _resolved(given)
        if _inside(out, inp) or _inside(inp, out):
            relation = "is" if out == inp else ("lies inside" if _inside(out, inp) else "contains")
            raise UserError(f"{flag} {output} {relation} the input {given}; choose an output folder apart from the inputs")


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


def is_complete(output: Path, name: str) -> bool:
    """Whether ``output/name`` was published whole by this project (its record says so)."""
    info = _state(output, name)
    return (output / name).is_dir() and info is not None and info.get("complete") is True


def check_replaceable(output: Path, name: str) -> None:
    """``output/name`` may be replaced only if this project wrote it."""
    folder = output / name
    if folder.exists() and _state(output, name) is None:
        raise UserError(
            f"{folder}: exists but was not written by this project (no {STATE_DIR}/{name}.json); "
            "it is left alone: move it or choose another --output"
        )


def _write_record(output: Path, name: str, frames: int, complete: bool) -> None:
    info = {"frames": frames, "complete": complete, "command": [Path(sys.argv[0]).name, *sys.argv[1:]]}
    record = _record(output, name)
    try:
        record.parent.mkdir(exist_ok=True)
        write_text_atomic(record, json.dumps(info) + "\n")
    except OSError as e:
        raise UserError(f"{record}: cannot write ({e.strerror or e}); free disk space or fix --output's permissions") from None


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


def _claimed(output: Path) -> list[str]:
    try:
        names = json.loads((output / FILES_RECORD).read_text())
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def check_files(output: Path, names: Iterable[str]) -> None:
    """Files written beside the video folders (overlays, CSVs) may replace only files this project wrote there."""
    claimed = set(_claimed(output))
    for name in names:
        if (output / name).exists() and name not in claimed:
            raise UserError(
                f"{output / name}: exists but was not written by this project; it is left alone: move it or choose another --output"
            )


def claim_files(output: Path, names: Iterable[str]) -> None:
    """:func:`check_files`, then record ``names`` as this project's (before they are written)."""
    names = list(names)
    check_files(output, names)
    claimed = _claimed(output)
    record = output / FILES_RECORD
    try:
        record.parent.mkdir(exist_ok=True)
        record.write_text(json.dumps(sorted({*claimed, *names})) + "\n")
    except OSError as e:
        raise UserError(f"{record}: cannot write ({e.strerror or e}); free disk space or fix --output's permissions") from None


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
    return ZIP_COMMENT_PREFIX + str(_resolved(output)).encode("utf-8", "surrogateescape")


def check_archive_replaceable(zip_path: Path, output: Path) -> None:
    """An existing ``zip_path`` may be replaced only if it was written from ``output`` by this project."""
    if not zip_path.exists():
        return
    comment: Optional[bytes] = None
    try:
        with zipfile.ZipFile(zip_path) as archive:
            comment = archive.comment
    except (OSError, zipfile.BadZipFile):
        pass
    if comment != zip_comment(output):
        raise UserError(
            f"{zip_path}: exists and was not written from {output} by this project; it is left alone: move it or choose another --output"
        )


def release_output_locks() -> None:
    """Let go of every output folder's lock this process holds (:func:`lock_output` keeps them until the process
    exits): for a caller that runs several commands in one process, such as the tests."""
    while _held:
        _, handle = _held.popitem()
        handle.close()
