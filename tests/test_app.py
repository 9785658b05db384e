"""The web page (app.py): session logic without a browser, then the real page in headless Chromium.

The browser tests start ``python app.py`` on a free loopback port in a subprocess (its own
temporary and working folders, one thread), drive it with Playwright pointed at the
system's Chromium, refuse every request that is not to 127.0.0.1, and stop the server at
the end. They skip, saying why, when Gradio, Playwright or Chromium is missing
(``pip install -r requirements-app.txt``; Debian: ``apt-get install chromium``). One browser test (a run that matches
eval_generic.py) is in the default selection; the others are slow.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

import numpy as np
import pytest

from app_session import Limits, RunSettings, Session, Sessions, brush_colours, extract_frames, labels_from_layers
from tests.helpers import call_main
from util.errors import UserError
from util.image_io import save_palette_png

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "saves" / "qdmn_lite_synth.pth"
CLIP_FRAMES = 12  # the first frames of the bundled sample: a run takes seconds
UPLOAD_LIMIT_MB = 1.0
SERVER_START_S = 120
RUN_TIMEOUT_S = 240


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    """The bundled demo sample (demo.py's ensure_sample), its first frames zipped, and its first-frame mask."""
    from demo import ensure_sample

    root = tmp_path_factory.mktemp("sample")
    frames, masks, _ = ensure_sample(root / "demo_sample")
    clip = root / "clip_frames"
    clip.mkdir()
    for path in sorted(frames.glob("*.jpg"))[:CLIP_FRAMES]:
        shutil.copyfile(path, clip / path.name)
    archive = root / "clip.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(clip.iterdir()):
            zf.write(path, f"my clip/{path.name}")
    return {"frames": clip, "masks": masks, "mask": masks / "00000.png", "zip": archive, "root": root}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> Optional[str]:
    for name in (os.environ.get("QDMN_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def browser_skip_reason() -> Optional[str]:
    try:
        import gradio  # noqa: F401
    except ImportError:
        return "gradio is not installed (pip install -r requirements-app.txt)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-app.txt)"
    if chromium_path() is None:
        return "no Chromium executable (Debian: apt-get install chromium; or set QDMN_CHROMIUM)"
    return None


class Server:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cwd, self.tmp = workdir / "cwd", workdir / "tmp"
        self.cwd.mkdir()
        self.tmp.mkdir()
        (self.cwd / "saves").mkdir()
        shutil.copyfile(MODEL, self.cwd / "saves" / MODEL.name)
        self.log = workdir / "server.log"
        env = {**os.environ, "TMPDIR": str(self.tmp), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), "--threads", "1",
               "--max_upload_mb", str(UPLOAD_LIMIT_MB), "--max_frames", "40"]
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"app.py exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"app.py did not answer within {SERVER_START_S} s: {self.log.read_text()[-2000:]}")

    def app_root(self) -> Path:
        roots = list(self.tmp.glob("qdmn-app-*"))
        assert len(roots) == 1, roots
        return roots[0]

    def sessions(self) -> list[Path]:
        folder = self.app_root() / "sessions"
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    srv = Server(tmp_path_factory.mktemp("app"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
    assert srv.proc.returncode == 0, srv.log.read_text()[-2000:]
    assert list(srv.tmp.iterdir()) == [], "the app's temporary root is removed when the server stops"
    assert sorted(p.name for p in srv.cwd.iterdir()) == ["saves"], "nothing is written in the working folder"


@pytest.fixture(scope="module")
def browser(server: Server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"], timeout=60_000)
        yield chromium
        chromium.close()


class Page:
    """One visitor: a fresh browser context (its own Gradio session) on the app's page."""

    def __init__(self, browser, server: Server):
        self.server = server
        self.outside: list[str] = []
        self.requested: list[str] = []
        self.last_transfer = time.monotonic()  # of the latest file request (an upload or a file fetched)
        self.context = browser.new_context(viewport={"width": 1280, "height": 1800}, accept_downloads=True)
        self.context.route("**/*", self.only_loopback)
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.page.goto(server.url)
        self.page.wait_for_selector("#run_button")

    def only_loopback(self, route) -> None:
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", None):
            self.requested.append(route.request.url)
            if "/upload" in route.request.url or "/file=" in route.request.url:
                self.last_transfer = time.monotonic()
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def upload(self, elem_id: str, path: Path) -> None:
        self.page.set_input_files(f"#{elem_id} input[type=file]", str(path))

    def status(self) -> str:
        return self.page.inner_text("#status")

    def wait_status(self, *words: str, timeout_s: float = 60) -> str:
        """Poll the status line until it holds one of ``words`` (bounded); returns it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.status()
            if any(w in text for w in words):
                return text
            time.sleep(0.2)
        raise AssertionError(f"status never showed {words}: {self.status()!r}\n{self.server_log()}")

    def wait_editor_loaded(self) -> None:
        """Wait (bounded) until the image editor has fetched the first frame and no file has moved for a second: it
        loads its image after the status line has changed, and a stroke painted while it (re)loads may be lost."""
        self.wait_fetched("first_frame.png")
        self.wait_transfers_done()

    def wait_transfers_done(self, quiet_s: float = 1.0, timeout_s: float = 30) -> None:
        """Wait (bounded) until no file has been uploaded or fetched on the page's own thread for ``quiet_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() - self.last_transfer < quiet_s and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)  # lets Playwright run the route handler that records requests

    def fetched(self) -> list[str]:
        """Every URL this page has fetched: the routed requests, and those of its workers (the image editor decodes its
        images in a web worker, whose requests are not routed)."""
        from playwright.sync_api import Error as PlaywrightError

        script = "performance.getEntriesByType('resource').map(e => e.name)"
        urls = list(self.requested)
        for worker in self.page.workers:
            try:
                urls += worker.evaluate(script)
            except PlaywrightError:  # the worker ended between the listing and the question (seen once in CI)
                continue
        return urls

    def wait_fetched(self, part: str, timeout_s: float = 30) -> str:
        """Wait (bounded) until this page has fetched a URL holding ``part``; returns every URL fetched, joined."""
        deadline = time.monotonic() + timeout_s
        while True:
            urls = self.fetched()  # asks every worker: once a round
            if any(part in url for url in urls) or time.monotonic() >= deadline:
                return " ".join(urls)
            self.page.wait_for_timeout(200)

    def server_log(self) -> str:
        """What explains a failed step: Gradio's error toasts on the page and the end of the server's log."""
        toasts = [t.inner_text() for t in self.page.locator(".toast-body").all()]
        return f"toasts on the page: {toasts}; the server's log ends: {self.server.log.read_text()[-3000:]}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(browser, server: Server) -> Iterator[Page]:
    page = Page(browser, server)
    yield page
    page.close()
    assert page.outside == [], "the page requests nothing but 127.0.0.1"


# ---------------------------------------------------------------------------- without a browser
def make_session(tmp_path: Path, limits: Limits = Limits()) -> Session:
    return Sessions(tmp_path / "sessions", limits).get("visitor")


def test_zip_member_names_are_never_paths(tmp_path: Path) -> None:
    archive = tmp_path / "up.zip"
    png = tmp_path / "f.png"
    save_palette_png(png, np.zeros((4, 6), np.uint8))
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("../../escape10.png", "/abs/frame2.png", "dir/frame1.png", "__MACOSX/._frame1.png", "notes.txt"):
            zf.writestr(zipfile.ZipInfo(name), png.read_bytes())  # names kept as they are
    count = extract_frames(archive, tmp_path / "out", Limits())
    assert count == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "out", "up.zip"]


def test_limits_and_bad_uploads_are_one_line(tmp_path: Path) -> None:
    session = make_session(tmp_path, Limits(max_upload_mb=0.001, max_frames=2))
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 2000)
    with pytest.raises(UserError, match="more than this page's limit of 0.001 MB"):
        session.load_clip(big)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(UserError, match="neither a video file"):
        session.load_clip(text)
    png = tmp_path / "f.png"
    save_palette_png(png, np.zeros((4, 6), np.uint8))
    archive = tmp_path / "three.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("1.png", "2.png", "3.png"):
            zf.write(png, name)
    with pytest.raises(UserError, match="3 frames, more than this page's limit of 2"):
        Sessions(tmp_path / "s2", Limits(max_frames=2)).get("v").load_clip(archive)


def test_empty_mask_and_wrong_size_are_refused(tmp_path: Path, sample: dict[str, Path]) -> None:
    session = make_session(tmp_path)
    session.load_clip(sample["zip"])
    empty = tmp_path / "empty.png"
    save_palette_png(empty, np.zeros((240, 432), np.uint8))
    with pytest.raises(UserError, match="holds no object"):
        session.set_mask_png(empty)
    with pytest.raises(UserError, match="holds no object"):
        session.set_mask_painted([])
    small = tmp_path / "small.png"
    save_palette_png(small, np.ones((10, 10), np.uint8))
    with pytest.raises(UserError, match="the mask is 10x10 but the first frame is 432x240"):
        session.set_mask_png(small)


def test_painted_colours_become_objects() -> None:
    colours = [[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in brush_colours()]
    layer = np.zeros((6, 8, 4), np.uint8)
    layer[1, 1] = [*colours[0], 255]
    layer[2, 2] = [*colours[2], 200]
    layer[3, 3] = [min(255, colours[1][0] + 9), colours[1][1], colours[1][2], 255]  # anti-aliased edge: nearest colour
    layer[4, 4] = [*colours[0], 40]  # nearly transparent: not painted
    ids = labels_from_layers([layer], (6, 8))
    assert ids[1, 1] == 1 and ids[2, 2] == 3 and ids[3, 3] == 2 and ids[4, 4] == 0
    assert int((ids > 0).sum()) == 3


def test_sweep_removes_old_cache_files_but_never_a_session(tmp_path: Path) -> None:
    from app import sweep_cache

    cache, sessions = tmp_path / "cache", tmp_path / "cache" / "sessions"
    old, new, mine = cache / "abc" / "background.png", cache / "def" / "composite.png", sessions / "s1" / "clip.zip"
    staging = cache / "tmpab12cd34"  # an upload Gradio never moved into its cache (UPLOAD_STAGING)
    for path in (old, new, mine, staging):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for path in (old, mine, staging):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    fresh_folder, old_folder = cache / "ghi", cache / "jkl"  # Gradio makes an upload's folder, then moves the file in
    fresh_folder.mkdir()
    old_folder.mkdir()
    os.utime(old_folder, (time.time() - 3600, time.time() - 3600))
    assert sorted(sweep_cache(cache, sessions, age_s=60)) == [old, staging]
    assert not old.exists() and not staging.exists() and new.is_file() and mine.is_file()
    # a folder goes by its own age: one just emptied may be where another upload of the same content is moving in
    assert old.parent.is_dir() and fresh_folder.is_dir() and not old_folder.exists()


def test_removing_an_upload_tolerates_the_sweeper_and_other_requests(tmp_path: Path) -> None:
    """The cache is shared: a file already removed, or a folder another upload has just filled, is no failure."""
    from app import remove_upload

    cache, sessions = tmp_path / "cache", tmp_path / "cache" / "sessions"
    upload, neighbour = cache / "abc" / "layer_0.png", cache / "abc" / "layer_1.png"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"x")
    neighbour.write_bytes(b"y")
    remove_upload(str(upload), cache, sessions)
    assert not upload.exists() and neighbour.is_file(), "the folder another upload shares is kept"
    remove_upload(str(upload), cache, sessions)  # already gone: nothing to do
    remove_upload(str(neighbour), cache, sessions)
    # the folder is the sweeper's: Gradio may have just made it again for an upload of the same content
    assert upload.parent.is_dir() and not any(upload.parent.iterdir())


def test_an_unreadable_painting_is_one_line(tmp_path: Path) -> None:
    """An editor upload whose file vanished (or cannot be decoded) becomes the page's one line, not Gradio's bare Error."""
    from types import SimpleNamespace

    from app import App, UnreadablePainting, forget_editor_uploads

    cache, sessions = tmp_path / "cache", tmp_path / "cache" / "sessions"
    layer = cache / "abc" / "layer_0.png"
    layer.parent.mkdir(parents=True)
    layer.write_bytes(b"not a png")

    def decode(payload: Any) -> Any:
        raise FileNotFoundError(2, "No such file or directory", str(payload.background.path))

    editor = forget_editor_uploads(SimpleNamespace(preprocess=decode), cache, sessions)
    gone = SimpleNamespace(path=str(cache / "def" / "background.png"))
    decoded = editor.preprocess(SimpleNamespace(background=gone, composite=None, layers=[SimpleNamespace(path=str(layer))]))
    assert isinstance(decoded, UnreadablePainting) and "background.png" in decoded.reason
    assert not layer.exists(), "the files that were uploaded are still forgotten"
    app = App.__new__(App)
    app.session = lambda request: SimpleNamespace(folder=tmp_path / "session")
    line = app.on_paint(decoded, request=None)
    assert line.startswith("**Error:** the painting could not be read") and "press **Use the painted mask** again" in line


def test_without_gradio_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import import_gradio

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    monkeypatch.setenv("GRADIO_TEMP_DIR", "unchanged")
    with pytest.raises(UserError, match=r"gradio is not installed; run `pip install -r requirements-app.txt`"):
        import_gradio(tmp_path)


def test_video_file_upload(tmp_path: Path) -> None:
    """A video file is copied under a fixed name and read by eval_generic.py's VideoFileFrames (frames 00000...)."""
    import cv2

    clip = tmp_path / "my holiday.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for t in range(6):
        writer.write(np.full((48, 64, 3), 40 * t, np.uint8))
    writer.release()
    session = make_session(tmp_path)
    loaded = session.load_clip(clip)
    assert loaded.frames == 6 and loaded.first_stem == "00000" and loaded.video == session.folder / "clip" / "video.mp4"
    assert loaded.first_frame.shape == (48, 64, 3)


def test_one_run_at_a_time_and_sessions_apart(tmp_path: Path, sample: dict[str, Path]) -> None:
    sessions = Sessions(tmp_path / "sessions", Limits())
    first, second = sessions.get("a"), sessions.get("b")
    assert first.folder != second.folder and first.folder.parent == second.folder.parent
    first.load_clip(sample["zip"])
    assert second.clip is None and not any(second.folder.iterdir())
    with first.exclusive():
        with pytest.raises(UserError, match="a run is already going on"):
            first.load_clip(sample["zip"])
    sessions.close("a")
    assert not first.folder.exists() and second.folder.exists()


def test_session_run_is_eval_generic(tmp_path: Path, sample: dict[str, Path]) -> None:
    """The session's masks equal eval_generic.py's, byte for byte; the hook sees every frame and the memory's decisions."""
    session = make_session(tmp_path)
    session.load_clip(sample["zip"])
    session.set_mask_png(sample["mask"])
    seen: list[int] = []
    with session.exclusive():
        result = session.run(RunSettings(MODEL, threads=1, device="cpu"), lambda t, n, ids: seen.append(t))
    assert seen == list(range(CLIP_FRAMES))
    reference = run_eval_generic(sample, tmp_path / "reference")
    assert_same_masks(read_zip(result.masks_zip), reference)
    assert result.overlay.stat().st_size > 0 and result.plot.stat().st_size > 0 and result.side_by_side.stat().st_size > 0


def run_eval_generic(sample: dict[str, Path], output: Path) -> dict[str, bytes]:
    """eval_generic.py's masks for the sample clip (its ``main`` in-process)."""
    call_main("eval_generic", ["--model", str(MODEL), "--video", str(sample["frames"]), "--masks", str(sample["masks"]),
                               "--output", str(output), "--name", "clip", "--threads", "1", "--device", "cpu"], check=True)
    return {p.name: p.read_bytes() for p in sorted((output / "clip").glob("*.png"))}


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in sorted(zf.namelist())}


def assert_same_masks(got: dict[str, bytes], want: dict[str, bytes]) -> None:
    assert sorted(got) == sorted(want) == [f"{t:05d}.png" for t in range(CLIP_FRAMES)]
    different = [name for name in want if got[name] != want[name]]
    assert different == [], f"masks differ from eval_generic.py's: {different}"


# ---------------------------------------------------------------------------- in the browser
def test_browser_run_matches_eval_generic(visitor: Page, server: Server, sample: dict[str, Path], tmp_path: Path) -> None:
    """Upload the sample's frames (zip) and mask, run, see the overlay play, and download masks equal to eval_generic.py's."""
    page = visitor.page
    visitor.upload("clip_upload", sample["zip"])
    assert f"Loaded a clip of {CLIP_FRAMES} frames (432x240)" in visitor.wait_status("Loaded", "Error")
    visitor.upload("mask_upload", sample["mask"])
    visitor.wait_status("Mask loaded", "Error")
    page.click("#run_button")
    progress = visitor.wait_status("Propagating", "Done", "Error", timeout_s=RUN_TIMEOUT_S)
    final = visitor.wait_status("Done", "Error", timeout_s=RUN_TIMEOUT_S)
    assert final.startswith(f"Done: {CLIP_FRAMES} masks written"), final
    assert "Propagating: frame" in progress or "Done" in progress

    page.wait_for_selector("#overlay_video video")
    # The clip lasts half a second and the player may loop it: play it once from the start, without
    # looping, and ask the browser whether it reached the end.
    played = page.evaluate("""async () => {
        const v = document.querySelector('#overlay_video video');
        v.muted = true;
        v.loop = false;
        v.pause();
        v.currentTime = 0;
        const ended = new Promise(r => v.addEventListener('ended', () => r(true), {once: true}));
        await v.play();
        const reached = await Promise.race([ended, new Promise(r => setTimeout(() => r(false), 10000))]);
        const last = v.played.length ? v.played.end(v.played.length - 1) : 0;
        return {ready: v.readyState, ended: reached, duration: v.duration, played_to: last,
                width: v.videoWidth, error: v.error && v.error.code};
    }""")
    assert played["error"] is None and played["width"] == 432 and played["ready"] >= 2, played
    assert played["duration"] > 0 and played["ended"], f"the overlay video does not play to its end: {played}"
    assert played["played_to"] >= 0.9 * played["duration"], f"the overlay video does not play: {played}"
    assert page.locator("#side_by_side img").count() == 1
    assert page.locator("#memory_plot img").count() == 1

    with page.expect_download(timeout=60_000) as download:
        page.locator("#masks_zip a").first.click()
    archive = tmp_path / "masks.zip"
    download.value.save_as(archive)
    assert_same_masks(read_zip(archive), run_eval_generic(sample, tmp_path / "reference"))

    screenshot = os.environ.get("QDMN_APP_SCREENSHOT")
    if screenshot:  # docs/images/app_after_run.png is made this way
        page.screenshot(path=screenshot, full_page=True)

    [session] = server.sessions()
    visitor.close()
    deadline = time.monotonic() + 30
    while session.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not session.exists(), "the session's folder is removed when its page is closed"


@pytest.mark.slow
def test_browser_painted_mask_runs(visitor: Page, server: Server, sample: dict[str, Path]) -> None:
    """A stroke painted on the first frame (the first brush colour) becomes object 1 of the first-frame mask, and runs."""
    from util.image_io import load_mask

    page = visitor.page
    visitor.upload("clip_upload", sample["zip"])
    visitor.wait_status("Loaded", "Error")
    visitor.wait_editor_loaded()
    page.click("#editor button[aria-label=Brush]")
    box = page.locator("#editor canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 30, y)
    page.mouse.down()
    for step in range(12):
        page.mouse.move(x - 30 + 5 * step, y + 2 * step)
    page.mouse.up()
    visitor.wait_transfers_done()
    page.click("#use_painting")
    assert "Mask taken from the painting" in visitor.wait_status("Mask taken", "Error"), visitor.server_log()
    [mask] = [p for folder in server.sessions() for p in folder.glob("masks/*.png")]
    ids = load_mask(mask)
    assert mask.name == "00000.png" and ids.shape == (240, 432)
    assert set(np.unique(ids).tolist()) == {0, 1} and int((ids == 1).sum()) > 100
    page.click("#run_button")
    assert visitor.wait_status("Done", "Error", timeout_s=RUN_TIMEOUT_S).startswith(f"Done: {CLIP_FRAMES} masks written")


EDITOR_COPIES = {"background.png", "composite.png"}  # Gradio's image editor re-uploads these; app.py sweeps them
# Gradio's upload route streams each upload into a tmpXXXXXXXX file at the root of its cache and moves it into the
# cache when complete; it removes the file on a malformed request but not when the browser drops the request
# (gradio/route_utils.py, GradioMultiPartParser.parse), which a loaded machine showed once. app.py sweeps those too.
UPLOAD_STAGING = re.compile(r"tmp[a-z0-9_]{8}")


def lasting_outside_files(server: Server, settle_s: float = 20) -> list[str]:
    """:func:`outside_session_files` once Gradio's in-flight uploads have landed: its upload handler streams each
    upload (the image editor re-uploads its layers on its own schedule) into a ``tmpXXXXXXXX`` file in the app's
    root and moves it into its cache when complete, so such a file may be seen for a moment."""
    deadline = time.monotonic() + settle_s
    files = outside_session_files(server)
    while files and time.monotonic() < deadline:
        time.sleep(0.25)
        files = outside_session_files(server)
    return files


def outside_session_files(server: Server) -> list[str]:
    """Files under the app's root outside every session folder, but for the image editor's own copies of the first frame
    and Gradio's upload staging files."""
    root = server.app_root()
    sessions = root / "sessions"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and sessions not in p.parents and not (p.name in EDITOR_COPIES or p.name.startswith("layer"))
                  and not (p.parent == root and UPLOAD_STAGING.fullmatch(p.name)))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["oversized", "not_a_video", "undecodable", "empty_mask", "nothing_painted", "no_mask"])
def test_browser_bad_input_is_one_message(visitor: Page, server: Server, sample: dict[str, Path], tmp_path: Path, case: str) -> None:
    """Each bad input shows one message on the page; nothing is written outside the session's folder."""
    expected = {
        "oversized": "exceed the maximum allowed size of 1.0 Mb",  # Gradio refuses it before sending it
        "not_a_video": "neither a video file",
        "undecodable": "cannot decode this video file",
        "empty_mask": "holds no object",
        "nothing_painted": "holds no object",
        "no_mask": "no first-frame mask yet",
    }[case]
    if case == "oversized":
        big = tmp_path / "big.mp4"
        big.write_bytes(os.urandom(int(1.5 * UPLOAD_LIMIT_MB * 2**20)))
        visitor.upload("clip_upload", big)
    elif case == "not_a_video":
        text = tmp_path / "notes.txt"
        text.write_text("not a video")
        visitor.upload("clip_upload", text)
    elif case == "undecodable":
        junk = tmp_path / "junk.mp4"
        junk.write_bytes(b"\0" * 5000)
        visitor.upload("clip_upload", junk)
    else:
        visitor.upload("clip_upload", sample["zip"])
        visitor.wait_status("Loaded", "Error")
        visitor.wait_editor_loaded()
        if case == "empty_mask":
            empty = tmp_path / "empty.png"
            save_palette_png(empty, np.zeros((240, 432), np.uint8))
            visitor.upload("mask_upload", empty)
        elif case == "nothing_painted":
            visitor.page.click("#use_painting")
        else:
            visitor.page.click("#run_button")
    message = page_message(visitor, expected)
    if case != "oversized":
        assert message.startswith("Error:") and visitor.status().count("\n") == 0, visitor.status()
    assert lasting_outside_files(server) == []
    assert not list(server.cwd.glob("outputs*")) and sorted(p.name for p in server.cwd.iterdir()) == ["saves"]


def page_message(visitor: Page, expected: str, timeout_s: float = 60) -> str:
    """The line of the page holding ``expected``: the status line, or Gradio's notice when it refused the upload itself."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = visitor.page.evaluate("() => document.body.innerText")
        lines = [line.strip() for line in text.splitlines() if expected in line]
        if lines:
            return lines[0]
        time.sleep(0.2)
    raise AssertionError(f"no message with {expected!r} on the page: {text[-1500:]}")


@pytest.mark.slow
def test_browser_two_visitors_do_not_share_files(browser, server: Server, sample: dict[str, Path]) -> None:
    """Two pages get two session folders; neither page refers to the other's folder; closing one removes only its own."""
    before = set(server.sessions())
    first, second = Page(browser, server), Page(browser, server)
    try:
        first.upload("clip_upload", sample["zip"])
        first.wait_status("Loaded")
        assert "Upload a video" in second.status()
        second.upload("clip_upload", sample["zip"])
        second.wait_status("Loaded")
        folders = sorted(set(server.sessions()) - before)
        assert len(folders) == 2 and all((f / "clip" / "frames").is_dir() for f in folders)
        fetched = [first.wait_fetched("first_frame.png"), second.wait_fetched("first_frame.png")]  # each page's first frame
        owners = [[i for i, f in enumerate(folders) if f.name in urls] for urls in fetched]
        assert owners[0] != owners[1] and all(len(o) == 1 for o in owners), owners
        first.close()
        deadline = time.monotonic() + 30
        while len(set(server.sessions()) - before) > 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [f.exists() for f in folders].count(True) == 1
    finally:
        first.close()
        second.close()
