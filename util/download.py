"""Resumable, verified downloads and safe archive extraction.

* :func:`download` fetches a URL into ``DEST.part`` (resuming a previous ``.part`` with an
  HTTP ``Range`` request), verifies the checksum and only then renames it to ``DEST``, so
  ``DEST`` is either absent or complete and verified.
* :func:`gdrive_download` does the same for a Google Drive file id through ``gdown``.
* :func:`safe_extract` extracts zip and tar archives after checking *every* member: a
  member that would land outside the target folder (absolute path, ``..``), a link that
  points outside it, or a device file refuses the whole archive before anything is written.

Every failure is a one-line :class:`~util.errors.UserError` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import stat
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import progressbar

from util import write_gate
from util.errors import UserError

USER_AGENT = "qdmn-download/1.0"
TIMEOUT_S = 60
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError, TimeoutError)


# ----------------------------------------------------------------------------- checksums


def _hash_file(path: str | os.PathLike, algorithm: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def md5sum(path: str | os.PathLike) -> str:
    """Hex MD5 digest of a file (read in 1 MiB blocks)."""
    return _hash_file(path, "md5")


def sha256sum(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file (read in 1 MiB blocks)."""
    return _hash_file(path, "sha256")


def _expected(md5: str | None, sha256: str | None) -> list[tuple[str, str]]:
    """The (algorithm, lower-case hex digest) pairs to check."""
    return [(name, value.strip().lower()) for name, value in (("md5", md5), ("sha256", sha256)) if value]


def _first_mismatch(path: Path, checks: list[tuple[str, str]]) -> tuple[str, str, str] | None:
    """``(algorithm, expected, actual)`` of the first failing check, or None when all pass."""
    for algorithm, want in checks:
        got = _hash_file(path, algorithm)
        if got != want:
            return algorithm, want, got
    return None


def _verify_and_commit(part: Path, dest: Path, checks: list[tuple[str, str]], source: str) -> Path:
    """Check ``part``; on success rename it atomically to ``dest``, on failure delete it."""
    bad = _first_mismatch(part, checks)
    if bad:
        algorithm, want, got = bad
        part.unlink(missing_ok=True)
        raise UserError(
            f"{dest}: {algorithm} mismatch (expected {want}, got {got}); the corrupt download was deleted: "
            f"run the command again to download {source} afresh, and if the file on the server has changed, "
            "update the expected checksum"
        )
    return write_gate.commit(part, dest, "destination")


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _one_line(text: object) -> str:
    return " ".join(str(text).split()) or type(text).__name__


def _already_there(dest: Path, checks: list[tuple[str, str]]) -> bool:
    """True when ``dest`` exists and can be kept (it matches the checksums, or none is known)."""
    if not dest.is_file():
        return False
    if not checks or _first_mismatch(dest, checks) is None:
        print(f"{dest}: already present{' and verified' if checks else ''}, not downloaded again", file=sys.stderr)
        return True
    print(f"{dest}: exists but its checksum is wrong; downloading it again", file=sys.stderr)
    return False


# ----------------------------------------------------------------------------- HTTP(S)


def _open(url: str, offset: int):
    """Open ``url``; from byte ``offset`` on when it is positive. Returns the response."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)


def _content_range_start(response) -> int | None:
    """First byte of a ``Content-Range: bytes A-B/T`` answer, or None when absent or malformed."""
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _total_from_416(error: urllib.error.HTTPError) -> int | None:
    """Total size from the ``Content-Range: bytes */T`` of a 416 answer."""
    match = re.match(r"bytes\s+\*/(\d+)", error.headers.get("Content-Range", "") if error.headers else "")
    return int(match.group(1)) if match else None


def _progress_bar(label: str, total: int | None, initial: int, enabled: bool):
    if not enabled:
        return progressbar.NullBar()
    if total:
        widgets = [f"{label} ", progressbar.Percentage(), " ", progressbar.Bar(), " ", progressbar.DataSize(), " ",
                   progressbar.FileTransferSpeed(), " ", progressbar.ETA()]
        return progressbar.ProgressBar(max_value=total, initial_value=initial, widgets=widgets, fd=sys.stderr)
    widgets = [f"{label} ", progressbar.DataSize(), " ", progressbar.FileTransferSpeed(), " ", progressbar.AnimatedMarker()]
    return progressbar.ProgressBar(max_value=progressbar.UnknownLength, initial_value=initial, widgets=widgets, fd=sys.stderr)


def _stream(response, part: Path, mode: str, offset: int, total: int | None, chunk: int, label: str, progress: bool) -> int:
    """Append (``mode='ab'``) or write (``'wb'``) the response body to ``part``; returns the final size."""
    done = offset
    with open(part, mode) as f, _progress_bar(label, total, offset, progress) as bar:
        while True:
            block = response.read(chunk)
            if not block:
                break
            f.write(block)
            done += len(block)
            bar.update(min(done, total) if total else done)
    return done


def _start(url: str, part: Path, offset: int):
    """Open the download; returns ``(response, write mode, offset)`` (offset 0 when it restarts).

    A server that ignores ``Range`` answers 200 with the whole file: the ``.part`` is then
    rewritten from byte 0. A 416 (the ``.part`` already holds the whole file, or more) is
    answered with ``response=None`` when the sizes agree, else by a fresh download.
    """
    try:
        response = _open(url, offset)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            if _total_from_416(e) == offset:
                return None, "ab", offset
            return _open(url, 0), "wb", 0
        raise
    if not offset:
        return response, "wb", 0
    if response.status == 206 and _content_range_start(response) == offset:
        return response, "ab", offset
    print(f"{part}: the server did not resume the download; starting again from byte 0", file=sys.stderr)
    if response.status == 206:  # a range we did not ask for: ask for the whole file
        response.close()
        response = _open(url, 0)
    return response, "wb", 0


def _expected_total(response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def download(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    sha256: str | None = None,
    chunk: int = 1 << 20,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming and verifying.

    An existing ``dest.part`` is resumed with ``Range: bytes=N-``. The checksum(s) are
    checked before the ``.part`` is renamed (atomically) to ``dest``; a mismatch deletes
    the ``.part``. An existing ``dest`` that matches the checksums (or any existing
    ``dest`` when no checksum is given) is kept and nothing is downloaded.
    """
    dest = Path(dest)
    if not url.lower().startswith(("http://", "https://")):
        raise UserError(f"{url}: only http:// and https:// URLs can be downloaded")
    checks = _expected(md5, sha256)
    if _already_there(dest, checks):
        return dest
    write_gate.check_target(dest, "destination")  # a file of the user's with another checksum is not replaced
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    offset = part.stat().st_size if part.is_file() else 0
    try:
        response, mode, offset = _start(url, part, offset)
        if response is not None:
            with response:
                total = _expected_total(response, offset)
                size = _stream(response, part, mode, offset, total, chunk, dest.name, progress)
            if total is not None and size < total:
                raise UserError(
                    f"{url}: the connection closed after {size} of {total} bytes; "
                    f"{part} was kept: run the command again to resume"
                )
    except urllib.error.HTTPError as e:
        raise UserError(f"{url}: download failed: HTTP {e.code} {_one_line(e.reason)}; check the URL or try again later") from None
    except _NETWORK_ERRORS as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        kept = f"; {part} was kept: run the command again to resume" if part.is_file() and part.stat().st_size else ""
        raise UserError(f"{url}: download failed: {_one_line(reason)}{kept}") from None
    return _verify_and_commit(part, dest, checks, url)


# ----------------------------------------------------------------------------- Google Drive


def gdrive_download(
    file_id: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Download a Google Drive file by id with ``gdown`` into ``dest.part``, verify, rename.

    ``gdown`` resumes its own partial file; the ``.part`` only appears once gdown has the
    whole file, so an existing ``.part`` is verified rather than fetched again.
    """
    dest = Path(dest)
    checks = _expected(md5, sha256)
    if _already_there(dest, checks):
        return dest
    write_gate.check_target(dest, "destination")
    try:
        import gdown
    except ImportError:
        raise UserError("gdown is not installed: pip install gdown (needed for Google Drive downloads)") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    url = f"https://drive.google.com/uc?id={file_id}"
    try:
        result = gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True)
    except Exception as e:  # gdown raises many types (FileURLRetrievalError, requests errors, ...)
        raise UserError(f"{url}: Google Drive download failed: {_one_line(e)}; try again later, or download it by hand to {dest}") from None
    if result is None or not part.is_file():
        raise UserError(f"{url}: Google Drive download failed (quota exceeded or file not shared?); download it by hand to {dest}")
    return _verify_and_commit(part, dest, checks, url)


# ----------------------------------------------------------------------------- extraction


def _is_within(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check_name(archive: Path, root: str, name: str) -> str:
    """Where member ``name`` would be written; refuses absolute paths, ``..`` and escapes."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise UserError(f"{archive}: refused: member {name!r} has an absolute path; the archive is unsafe, nothing was extracted")
    if ".." in PurePosixPath(posix).parts:
        raise UserError(f"{archive}: refused: member {name!r} contains '..'; the archive is unsafe, nothing was extracted")
    dest = os.path.realpath(os.path.join(root, *PurePosixPath(posix).parts))
    if not _is_within(root, dest):
        raise UserError(f"{archive}: refused: member {name!r} would be written outside {root}; nothing was extracted")
    return dest


def _check_link(archive: Path, root: str, name: str, link: str, hard: bool) -> None:
    """Refuse a link whose target (relative to the link's folder, or to the root for hard links) escapes."""
    posix = link.replace("\\", "/")
    base = root if hard else os.path.dirname(os.path.join(root, *PurePosixPath(name.replace("\\", "/")).parts))
    target = os.path.normpath(os.path.join(base, posix))
    if posix.startswith("/") or not _is_within(root, target):
        kind = "hard link" if hard else "symlink"
        raise UserError(f"{archive}: refused: {kind} {name!r} points outside the target ({link!r}); nothing was extracted")


def _refuse_special(archive: Path, name: str, what: str) -> None:
    raise UserError(f"{archive}: refused: member {name!r} is a {what}; the archive is unsafe, nothing was extracted")


def _check_zip(archive: Path, root: str, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = zf.infolist()
    for info in members:
        _check_name(archive, root, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            _check_link(archive, root, info.filename, zf.read(info).decode("utf-8", "replace"), hard=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            _refuse_special(archive, info.filename, "device file")
    return members


def _check_tar(archive: Path, root: str, tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tf.getmembers()
    for info in members:
        _check_name(archive, root, info.name)
        if info.issym():
            _check_link(archive, root, info.name, info.linkname, hard=False)
        elif info.islnk():
            _check_link(archive, root, info.name, info.linkname, hard=True)
        elif info.isdev():
            _refuse_special(archive, info.name, "device file")
        elif not (info.isfile() or info.isdir()):
            _refuse_special(archive, info.name, f"special member (type {info.type!r})")
    return members


def _archive_kind(archive: Path) -> str:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise UserError(f"{archive}: not a zip or tar archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2 are supported)")


def _paths(target: Path, names: Iterable[str]) -> list[Path]:
    return [target.joinpath(*PurePosixPath(n.replace("\\", "/")).parts) for n in names]


def _extract_zip(archive: Path, target: Path) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        members = _check_zip(archive, os.path.realpath(target), zf)
        target.mkdir(parents=True, exist_ok=True)
        zf.extractall(target, members=members)
    return _paths(target, (m.filename for m in members))


def _extract_tar(archive: Path, target: Path) -> list[Path]:
    with tarfile.open(archive) as tf:
        members = _check_tar(archive, os.path.realpath(target), tf)
        target.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):
            tf.extractall(target, members=members, filter="data")
        else:  # Python without extraction filters: our own checks above are the protection
            tf.extractall(target, members=members)
    return _paths(target, (m.name for m in members))


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> list[Path]:
    """Extract a .zip / .tar / .tar.gz / .tgz / .tar.bz2 into ``target``; returns the member paths.

    All members are validated before anything is written: a member outside ``target``
    (absolute path, ``..``), a symlink or hard link pointing outside it, or a device file
    refuses the whole archive with a UserError. Tar files additionally use the
    ``filter='data'`` extraction filter where Python provides it.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise UserError(f"{archive}: archive not found")
    kind = _archive_kind(archive)
    try:
        return _extract_zip(archive, target) if kind == "zip" else _extract_tar(archive, target)
    except getattr(tarfile, "FilterError", ()) as e:  # our checks should have caught it first
        raise UserError(f"{archive}: refused by the tar 'data' filter ({_one_line(e)}); the archive is unsafe") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise UserError(f"{archive}: corrupt or truncated archive ({_one_line(e)}); delete it and download it again") from None
