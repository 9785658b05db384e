"""Tests of util/download.py and the download / resize scripts, against a local HTTP server.

The server (127.0.0.1, port 0) answers ``Range`` requests with 206 partial content, so
that resuming is really exercised; ``/norange/...`` ignores ``Range`` (answers 200) and
``/flaky/...`` breaks off the first transfer of each file halfway.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import os
import re
import stat
import subprocess
import sys
import tarfile
import threading
import uuid
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from util.download import download, md5sum, safe_extract, sha256sum
from util.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    """Import ``scripts/<name>.py`` under a private module name."""
    spec = importlib.util.spec_from_file_location(f"_test_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- test server


class RangeHandler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus ``Range: bytes=A-[B]`` (206) and two misbehaving prefixes."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        self.server.log.append((self.path, rng))
        if self.path.startswith("/flaky/") and self.path not in self.server.broken:
            self.server.broken.add(self.path)
            return self._send_truncated()
        if rng is None or self.path.startswith("/norange/"):
            return super().do_GET()
        return self._send_range(rng)

    def _file(self) -> bytes | None:
        path = Path(self.translate_path(self.path))
        return path.read_bytes() if path.is_file() else None

    def _send_range(self, rng: str) -> None:
        data = self._file()
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        if data is None or match is None:
            return self.send_error(404 if data is None else 400)
        start = int(match[1])
        end = min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start : end + 1]
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # recorded before the body goes out: the client may finish and the test read `sent` before this thread runs on
        self.server.sent.append((self.path, len(body)))
        self.wfile.write(body)

    def _send_truncated(self) -> None:
        data = self._file()
        if data is None:
            return self.send_error(404)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


DAVIS_FILES = {
    "DAVIS/JPEGImages/480p/bear/00000.jpg": b"jpeg-bytes-0",
    "DAVIS/JPEGImages/480p/bear/00001.jpg": b"jpeg-bytes-1",
    "DAVIS/Annotations/480p/bear/00000.png": b"png-bytes",
    "DAVIS/ImageSets/2017/val.txt": b"bear\n",
}
YOUTUBE_FILES = {"valid/JPEGImages/v1/00000.jpg": b"yt-jpeg", "valid/meta.json": b"{}"}


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def tar_member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, link, len(data) if kind == tarfile.REGTYPE else 0, 0o644
    return info, data


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


ABS_EVIL = f"/tmp/qdmn_test_evil_{uuid.uuid4().hex}.txt"


def build_site(www: Path) -> None:
    """The files the server offers: good archives, malicious archives, a binary blob, checkpoints."""
    rng = np.random.default_rng(0)
    write(www / "blob.bin", rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    for prefix in ("norange", "flaky"):
        write(www / prefix / "blob.bin", (www / "blob.bin").read_bytes())
    make_zip(www / "davis" / "DAVIS-2017-trainval-480p.zip", DAVIS_FILES)
    make_tar(www / "davis.tar.gz", [tar_member(n, d) for n, d in DAVIS_FILES.items()], "w:gz")
    make_zip(www / "yt_valid.zip", YOUTUBE_FILES)
    make_frame(www / "yt" / "train/JPEGImages/v1/00000.jpg", 96, 54)
    make_mask(www / "yt" / "train/Annotations/v1/00000.png", 96, 54)
    make_zip(www / "yt_train.zip", {p.relative_to(www / "yt").as_posix(): p.read_bytes()
                                    for p in sorted((www / "yt").rglob("*")) if p.is_file()})

    ok = ("DAVIS/ok.txt", b"fine")
    make_zip(www / "evil" / "dotdot.zip", dict([ok, ("../evil.txt", b"owned")]))
    make_zip(www / "evil" / "absolute.zip", dict([ok, (ABS_EVIL, b"owned")]))
    make_tar(www / "evil" / "dotdot.tar", [tar_member(*ok), tar_member("../evil.txt", b"owned")])
    make_tar(www / "evil" / "absolute.tar", [tar_member(*ok), tar_member(ABS_EVIL, b"owned")])
    make_tar(www / "evil" / "symlink.tar", [tar_member(*ok), tar_member("DAVIS/etc", kind=tarfile.SYMTYPE, link="/etc")])
    make_tar(www / "evil" / "symlink_rel.tar",
             [tar_member(*ok), tar_member("DAVIS/up", kind=tarfile.SYMTYPE, link="../../..")])
    make_tar(www / "evil" / "hardlink.tar", [tar_member(*ok), tar_member("DAVIS/h", kind=tarfile.LNKTYPE, link="../outside.txt")])
    make_tar(www / "evil" / "device.tar", [tar_member(*ok), tar_member("DAVIS/null", kind=tarfile.CHRTYPE)])
    with zipfile.ZipFile(www / "evil" / "symlink.zip", "w") as zf:
        zf.writestr(zipfile.ZipInfo(ok[0]), ok[1])
        link = zipfile.ZipInfo("DAVIS/passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")

    import torch

    torch.save({"mask_rgb_encoder.conv1.weight": torch.zeros(2, 5, 3, 3)}, www / "QDMN_fake.pth")
    torch.save({"something.else": torch.zeros(1)}, www / "wrong.pth")
    write(www / "garbage.pth", b"not a checkpoint at all")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    build_site(www)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(www)))
    server.log, server.sent, server.broken = [], [], set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ----------------------------------------------------------------------------- download()


def test_download_verifies_and_renames(site, tmp_path):
    www, base, _ = site
    data = (www / "blob.bin").read_bytes()
    dest = download(f"{base}/blob.bin", tmp_path / "sub" / "blob.bin", md5=md5_bytes(data),
                    sha256=hashlib.sha256(data).hexdigest(), chunk=1 << 16, progress=True)
    assert dest == tmp_path / "sub" / "blob.bin"
    assert dest.read_bytes() == data
    assert not (tmp_path / "sub" / "blob.bin.part").exists()
    assert md5sum(dest) == md5_bytes(data) and sha256sum(dest) == hashlib.sha256(data).hexdigest()


def test_download_resumes_with_range(site, tmp_path):
    www, base, server = site
    data = (www / "blob.bin").read_bytes()
    half = len(data) // 2
    write(tmp_path / "blob.bin.part", data[:half])
    before = len(server.log)
    download(f"{base}/blob.bin", tmp_path / "blob.bin", md5=md5_bytes(data), progress=False)
    assert ("/blob.bin", f"bytes={half}-") in server.log[before:]
    assert ("/blob.bin", len(data) - half) in server.sent  # only the second half went over the wire
    assert md5sum(tmp_path / "blob.bin") == md5_bytes(data)
    assert not (tmp_path / "blob.bin.part").exists()


def test_download_restarts_when_server_ignores_range(site, tmp_path):
    www, base, server = site
    data = (www / "blob.bin").read_bytes()
    write(tmp_path / "blob.bin.part", b"\0" * 1000)  # wrong bytes: appending to them would corrupt the file
    before = len(server.log)
    download(f"{base}/norange/blob.bin", tmp_path / "blob.bin", md5=md5_bytes(data), progress=False)
    assert ("/norange/blob.bin", "bytes=1000-") in server.log[before:]
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_download_part_already_complete(site, tmp_path):
    """A .part holding the whole file (killed before the rename) gets a 416 and is just verified."""
    www, base, _ = site
    data = (www / "blob.bin").read_bytes()
    write(tmp_path / "blob.bin.part", data)
    download(f"{base}/blob.bin", tmp_path / "blob.bin", md5=md5_bytes(data), progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_interrupted_download_is_kept_and_resumed(site, tmp_path):
    www, base, server = site
    data = (www / "blob.bin").read_bytes()
    url = f"{base}/flaky/blob.bin"
    with pytest.raises(UserError, match="run the command again to resume"):
        download(url, tmp_path / "blob.bin", md5=md5_bytes(data), progress=False)
    part = tmp_path / "blob.bin.part"
    assert 0 < part.stat().st_size < len(data) and not (tmp_path / "blob.bin").exists()
    download(url, tmp_path / "blob.bin", md5=md5_bytes(data), progress=False)
    assert ("/flaky/blob.bin", f"bytes={len(data) // 2}-") in server.log
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_checksum_mismatch_deletes_part(site, tmp_path):
    _, base, _ = site
    wrong = "0" * 32
    with pytest.raises(UserError) as err:
        download(f"{base}/blob.bin", tmp_path / "blob.bin", md5=wrong, progress=False)
    message = str(err.value)
    assert "blob.bin" in message and wrong in message and "md5 mismatch" in message and "\n" not in message
    assert not (tmp_path / "blob.bin").exists() and not (tmp_path / "blob.bin.part").exists()


def test_existing_verified_file_is_not_downloaded(site, tmp_path):
    www, base, server = site
    data = (www / "blob.bin").read_bytes()
    write(tmp_path / "blob.bin", data)
    before = len(server.log)
    download(f"{base}/blob.bin", tmp_path / "blob.bin", md5=md5_bytes(data), progress=False)
    assert len(server.log) == before


def test_network_errors_name_the_url(site, tmp_path):
    _, base, _ = site
    with pytest.raises(UserError, match=r"/missing\.zip: download failed: HTTP 404"):
        download(f"{base}/missing.zip", tmp_path / "missing.zip", progress=False)
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match=rf"http://127\.0\.0\.1:{port}/x\.zip: download failed"):
        download(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", progress=False)
    assert not (tmp_path / "missing.zip").exists() and not (tmp_path / "x.zip").exists()


def test_gdrive_download_verifies_and_renames(tmp_path, monkeypatch):
    """gdown is replaced by a fake that writes the file (no network)."""
    from util.download import gdrive_download

    calls = []

    def fake_download(id, output, quiet, resume):
        calls.append((id, output, resume))
        if id == "broken":
            raise RuntimeError("Too many users have viewed or downloaded this file recently.\nTry later.")
        Path(output).write_bytes(b"drive bytes")
        return output

    monkeypatch.setitem(sys.modules, "gdown", type(sys)("gdown"))
    monkeypatch.setattr(sys.modules["gdown"], "download", fake_download, raising=False)
    dest = gdrive_download("abc", tmp_path / "f.zip", md5=md5_bytes(b"drive bytes"), progress=False)
    assert dest.read_bytes() == b"drive bytes" and calls == [("abc", str(tmp_path / "f.zip.part"), True)]
    with pytest.raises(UserError, match="md5 mismatch"):
        gdrive_download("abc", tmp_path / "g.zip", md5="0" * 32, progress=False)
    assert not (tmp_path / "g.zip").exists() and not (tmp_path / "g.zip.part").exists()
    with pytest.raises(UserError, match=r"id=broken: Google Drive download failed: Too many users .* Try later"):
        gdrive_download("broken", tmp_path / "h.zip", progress=False)


# ----------------------------------------------------------------------------- safe_extract()


@pytest.mark.parametrize("name", ["davis/DAVIS-2017-trainval-480p.zip", "davis.tar.gz"])
def test_safe_extract_good_archives(site, tmp_path, name):
    www, _, _ = site
    paths = safe_extract(www / name, tmp_path / "out")
    for member, data in DAVIS_FILES.items():
        assert (tmp_path / "out" / member).read_bytes() == data
    assert {p for p in paths if p.is_file()} == {tmp_path / "out" / m for m in DAVIS_FILES}


@pytest.mark.parametrize(
    "name, reason",
    [
        ("dotdot.zip", "contains '..'"),
        ("absolute.zip", "absolute path"),
        ("symlink.zip", "symlink"),
        ("dotdot.tar", "contains '..'"),
        ("absolute.tar", "absolute path"),
        ("symlink.tar", "symlink"),
        ("symlink_rel.tar", "symlink"),
        ("hardlink.tar", "hard link"),
        ("device.tar", "device file"),
    ],
)
def test_safe_extract_refuses_malicious_archives(site, tmp_path, name, reason):
    www, _, _ = site
    box = tmp_path / "box"
    target = box / "target"
    with pytest.raises(UserError, match="refused") as err:
        safe_extract(www / "evil" / name, target)
    assert reason in str(err.value) and name in str(err.value)
    assert not target.exists()  # nothing at all, not even the harmless first member
    assert not box.exists() or list(box.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists() and not os.path.exists(ABS_EVIL)


def test_safe_extract_rejects_non_archives(tmp_path):
    write(tmp_path / "x.bin", b"plain bytes")
    with pytest.raises(UserError, match="not a zip or tar archive"):
        safe_extract(tmp_path / "x.bin", tmp_path / "out")
    write(tmp_path / "broken.zip", b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="corrupt or truncated"):
        safe_extract(tmp_path / "broken.zip", tmp_path / "out")


# ----------------------------------------------------------------------------- download_datasets.py


def local_table(dd, base: str, www: Path) -> tuple:
    davis_zip = www / "davis" / "DAVIS-2017-trainval-480p.zip"
    return (
        dd.Archive("davis2017_trainval", f"{base}/davis/DAVIS-2017-trainval-480p.zip", md5sum(davis_zip),
                   "DAVIS/2017/trainval", inner="DAVIS", group="davis2017"),
        dd.Archive("davis2016", f"{base}/davis.tar.gz", None, "DAVIS/2016", inner="DAVIS",
                   sha256=sha256sum(www / "davis.tar.gz")),
        dd.Archive("yt_valid", f"{base}/yt_valid.zip", None, "YouTube", group="youtube"),
        dd.Archive("youtube2019_train", f"{base}/yt_train.zip", None, "YouTube", group="youtube"),
        dd.Archive("bl30k_a", None, None, "BL30K", group="bl30k", filename="BL30K_a.tar", manual="get it by hand"),
    )


def test_download_datasets_layout(site, tmp_path, capsys):
    www, base, server = site
    dd = load_script("download_datasets")
    table = local_table(dd, base, www)
    out = tmp_path / "data"
    dd.main(["--out", str(out), "--quiet"], table=table)
    for member, data in DAVIS_FILES.items():
        rel = member.removeprefix("DAVIS/")
        assert (out / "DAVIS/2017/trainval" / rel).read_bytes() == data
        assert (out / "DAVIS/2016" / rel).read_bytes() == data
    assert (out / "YouTube/valid/JPEGImages/v1/00000.jpg").read_bytes() == b"yt-jpeg"
    with Image.open(out / "YouTube/train_480p/JPEGImages/v1/00000.jpg") as im:  # resized after extraction
        assert im.size == (853, 480)
    check_mask(out / "YouTube/train_480p/Annotations/v1/00000.png", (853, 480))
    assert not (out / "BL30K").exists()  # BL30K only with --bl30k
    assert not [p for p in out.rglob(".staging-*")]
    printed = capsys.readouterr().out
    assert "yt_valid.zip: md5 " in printed and "checksum verified" in printed

    before = len(server.log)  # a second run downloads and extracts nothing
    dd.main(["--out", str(out), "--quiet"], table=table)
    assert len(server.log) == before
    assert "already extracted" in capsys.readouterr().out


def test_download_datasets_only_base_url_and_errors(site, tmp_path, capsys):
    www, base, _ = site
    dd = load_script("download_datasets")
    table = (dd.Archive("davis2016", "https://example.invalid/davis.tar.gz", None, "DAVIS/2016", inner="DAVIS"),
             dd.Archive("other", "https://example.invalid/yt_valid.zip", "0" * 32, "YouTube"),
             dd.Archive("bl30k_a", None, None, "BL30K", group="bl30k", filename="BL30K_a.tar"))
    out = tmp_path / "data"
    dd.main(["--out", str(out), "--only", "davis2016", "--base_url", base, "--quiet"], table=table)
    assert (out / "DAVIS/2016/ImageSets/2017/val.txt").is_file() and not (out / "YouTube").exists()

    dd.main(["--out", str(out), "--only", "davis2016", "--base_url", base, "--no_extract", "--quiet"], table=table)
    capsys.readouterr()
    for argv in (["--only", "nope"], ["--only", "bl30k"], ["--only", "other", "--base_url", base]):
        with pytest.raises(SystemExit) as exc:
            dd.main(["--out", str(out), "--quiet", *argv], table=table)
        assert exc.value.code == 2
        assert capsys.readouterr().err.startswith("error: ")
    assert not (out / "downloads" / "yt_valid.zip").exists()  # the mismatching download was deleted


# ----------------------------------------------------------------------------- download_models.py


def run_models(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.download_models", "--quiet", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_download_models_subprocess(site, tmp_path):
    www, base, _ = site
    out = tmp_path / "saves" / "QDMN.pth"
    good = run_models("--url", f"{base}/QDMN_fake.pth", "--md5", md5sum(www / "QDMN_fake.pth"), "--out", str(out))
    assert good.returncode == 0, good.stderr
    assert md5sum(out) == md5sum(www / "QDMN_fake.pth") and "md5 verified" in good.stdout

    bad_out = tmp_path / "wrong.pth"
    bad = run_models("--url", f"{base}/wrong.pth", "--md5", md5sum(www / "wrong.pth"), "--out", str(bad_out))
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.startswith("error: ") and "mask_rgb_encoder.conv1.weight" in bad.stderr
    assert not bad_out.exists() and not bad_out.with_name("wrong.pth.part").exists()


def test_download_models_in_process(site, tmp_path, capsys):
    www, base, _ = site
    dm = load_script("download_models")
    out = tmp_path / "unverified.pth"
    dm.main(["--quiet", "--url", f"{base}/QDMN_fake.pth", "--out", str(out)])
    captured = capsys.readouterr()
    assert md5sum(out) in captured.out and "could not be verified" in captured.err

    for name, md5 in (("garbage.pth", md5sum(www / "garbage.pth")), ("QDMN_fake.pth", "f" * 32)):
        bad_out = tmp_path / f"bad_{name}"
        with pytest.raises(SystemExit) as exc:
            dm.main(["--quiet", "--url", f"{base}/{name}", "--md5", md5, "--out", str(bad_out)])
        assert exc.value.code == 2 and capsys.readouterr().err.startswith("error: ")
        assert not bad_out.exists() and not bad_out.with_name(bad_out.name + ".part").exists()

    mine = tmp_path / "mine.pth"  # a file that was already there is reported, never deleted
    write(mine, b"my own notes")
    with pytest.raises(SystemExit):
        dm.main(["--quiet", "--url", f"{base}/QDMN_fake.pth", "--out", str(mine)])
    assert mine.read_bytes() == b"my own notes" and "already there" in capsys.readouterr().err


# ----------------------------------------------------------------------------- resize scripts


PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [7] * (256 * 3 - 12)


def make_frame(path: Path, width: int, height: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_mask(path: Path, width: int, height: int, ids=(0, 1, 3)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((height, width), np.uint8)
    for i, obj in enumerate(ids):
        mask[:, i * width // len(ids) :] = obj
    im = Image.fromarray(mask, mode="P")
    im.putpalette(PALETTE)
    im.save(path)


def check_mask(path: Path, size: tuple[int, int], ids=(0, 1, 3)) -> None:
    with Image.open(path) as im:
        assert im.mode == "P" and im.size == size
        assert im.getpalette()[:12] == PALETTE[:12]
        assert set(np.unique(np.asarray(im)).tolist()) <= set(ids)


def test_resize_youtube(tmp_path, capsys):
    ry = load_script("resize_youtube")
    src, dst = tmp_path / "train", tmp_path / "train_480p"
    for v, (w, h) in {"v1": (64, 48), "v2": (30, 50)}.items():
        for i in range(2):
            make_frame(src / "JPEGImages" / v / f"{i:05d}.jpg", w, h, seed=i)
        make_mask(src / "Annotations" / v / "00000.png", w, h)
    ry.main([str(src), str(dst), "--size", "24", "--processes", "2"])
    with Image.open(dst / "JPEGImages/v1/00001.jpg") as im:
        assert im.size == (32, 24)
    with Image.open(dst / "JPEGImages/v2/00000.jpg") as im:
        assert im.size == (24, 40)
    check_mask(dst / "Annotations/v1/00000.png", (32, 24))
    check_mask(dst / "Annotations/v2/00000.png", (24, 40))
    assert not list(dst.rglob(".*"))  # no temporary files left

    stamp = (dst / "JPEGImages/v1/00000.jpg").stat().st_mtime_ns
    (dst / "JPEGImages/v2/00001.jpg").unlink()  # an unfinished video is redone, a finished one skipped
    capsys.readouterr()
    ry.main([str(src), str(dst), "--size", "24", "--processes", "1"])
    assert "JPEGImages: 2 videos, 1 already done" in capsys.readouterr().out
    assert (dst / "JPEGImages/v2/00001.jpg").is_file()
    assert (dst / "JPEGImages/v1/00000.jpg").stat().st_mtime_ns == stamp

    with pytest.raises(SystemExit) as exc:
        ry.main([str(tmp_path / "nowhere"), str(dst)])
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("error: ")


def test_resize_length(tmp_path, capsys):
    rl = load_script("resize_length")
    src, dst = tmp_path / "in", tmp_path / "out"
    make_frame(src / "a" / "x.jpg", 60, 90)
    make_mask(src / "a" / "b" / "m.png", 90, 60)
    make_frame(src / "small.png", 20, 16)
    rl.main(["--in", str(src), "--out", str(dst), "--size", "30", "--shrink_only", "--processes", "1"])
    with Image.open(dst / "a" / "x.jpg") as im:
        assert im.size == (30, 45)
    check_mask(dst / "a" / "b" / "m.png", (45, 30))
    assert (dst / "small.png").read_bytes() == (src / "small.png").read_bytes()  # shrink_only: kept as is

    rl.main(["--in", str(src), "--out", str(tmp_path / "out2"), "--size", "30", "--processes", "2"])
    with Image.open(tmp_path / "out2" / "small.png") as im:
        assert im.size == (37, 30)  # like the official script, smaller images are enlarged by default

    for argv in (["--in", str(tmp_path / "nowhere"), "--out", str(dst)], ["--in", str(src), "--out", str(src / "sub")]):
        with pytest.raises(SystemExit) as exc:
            rl.main(argv)
        assert exc.value.code == 2 and capsys.readouterr().err.startswith("error: ")



def _square(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative job {x}")
    return x * x


def test_worker_pools_end_even_when_the_parent_catches_sigterm(monkeypatch):
    """util.pool: closed and joined after every result; terminated only when a job fails, and then the workers die
    of SIGTERM even though the parent (train.py's stop flag, a test runner) catches it: they start with the default
    action. Run in a thread, so that a hang fails the test instead of stopping the suite."""
    import multiprocessing.pool
    import signal
    import threading

    from util import pool

    terminated, outcome = [], {}
    real = multiprocessing.pool.Pool.terminate
    monkeypatch.setattr(multiprocessing.pool.Pool, "terminate", lambda self: (terminated.append(True), real(self)))

    def work() -> None:
        outcome["squares"] = sorted(pool.imap_unordered(_square, range(20), 2)), pool.map_ordered(_square, list(range(10)), 2)
        outcome["clean"] = not terminated
        for run in (lambda: list(pool.imap_unordered(_square, [1, 2, -3, 4], 2)), lambda: pool.map_ordered(_square, [1, -1], 2)):
            try:
                run()
            except ValueError as e:
                outcome.setdefault("errors", []).append(str(e))

    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        thread.join(120)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not thread.is_alive(), "a worker pool did not end"
    assert outcome["squares"] == ([x * x for x in range(20)], [x * x for x in range(10)]) and outcome["clean"]
    assert outcome["errors"] == ["negative job -3", "negative job -1"] and len(terminated) == 2
