"""A local web page to try QDMN on your own clip: ``python app.py``, then open http://127.0.0.1:7860.

Upload a video file or a zip of frames, paint the objects on the first frame (one colour
per object) or upload an annotation PNG, choose the model and the memory settings, and
press Run: the page shows the propagation frame by frame, then the overlay video, a few
frames side by side, the memory's quality scores and admissions, and a zip of the
palette PNG masks. The run is ``eval_generic.py``'s (same loading, propagation and
writing code). Each browser session works in its own temporary folder, removed when
the session ends; everything is removed when the server stops.

Needs ``pip install -r requirements-app.txt`` (Gradio).
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from app_session import Limits, RunResult, RunSettings, Session, Sessions, brush_colours, reply
from evaluation.arguments import positive_float, positive_int
from model.memory_policy import DAVIS_MEMORY
from model.network import DEFAULT_TOP_K
from util.errors import UserError, exit_on_user_error
from util.image_io import DEFAULT_MAX_PIXELS
from util.palette import davis_palette
from util.write_gate import writing

gr: Any = None  # gradio, imported by main() once its temporary folder is chosen (optional: requirements-app.txt)

DEFAULT_MODEL = "saves/qdmn_lite_synth.pth"
SAVES = Path("saves")
PROGRESS_INTERVAL_S = 0.25  # at most this often a progress update goes to the page
# Gradio's own copies outside the session folders (the image editor's images, uploads in flight), files and folders
# alike, are removed once this old, checked this often. Gradio names a cached file by its content's hash, so a new
# upload of the same image moves into an existing path: the age leaves the sweeper far behind any request.
SWEEP_AGE_S, SWEEP_EVERY_S = 600.0, 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=7860, help="port to serve on (0: the first free one from 7860)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes the page to your network")
    p.add_argument("--model", default=DEFAULT_MODEL, help="the model selected by default (any .pth in saves/ can be chosen)")
    p.add_argument("--max_upload_mb", type=positive_float, default=200.0,
                   help="largest upload in MiB (video, zip or mask)")
    p.add_argument("--max_frames", type=positive_int, default=300, help="longest video, in frames")
    p.add_argument("--max_pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                   help="largest frame, in pixels (width x height), checked from each upload's headers")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for the network (default: all this process may use)")
    p.add_argument("--device", default=None, help="cuda, cpu... (default: cuda when available)")
    return p.parse_args(argv)


def list_models(default: Path) -> dict[str, Path]:
    """Model choices by display name: every .pth in saves/, and the --model file."""
    models = {p.name: p for p in sorted(SAVES.glob("*.pth")) if p.is_file()}
    if default.resolve() not in {p.resolve() for p in models.values()}:
        models[str(default)] = default
    return models


def save_preview(folder: Path, index: int, ids: np.ndarray) -> str:
    """A label map in the DAVIS palette colours, for the progress preview, saved in the session's folder."""
    path = folder / f"{index:05d}.png"
    with writing(path, "") as tmp:
        Image.fromarray(np.frombuffer(davis_palette(), np.uint8).reshape(-1, 3)[ids]).save(tmp)
    return str(path)


def painted_layers(value: Any) -> list[np.ndarray]:
    if not isinstance(value, dict):
        return []
    return [layer for layer in value.get("layers") or [] if isinstance(layer, np.ndarray)]


def remove_upload(path: Optional[str], cache: Path, sessions_root: Path) -> None:
    """Remove Gradio's cached copy of an upload once the session has its own (only inside Gradio's cache, never a session's)."""
    if not path:
        return
    file = Path(path).resolve()
    if file.is_file() and file.is_relative_to(cache.resolve()) and not file.is_relative_to(sessions_root.resolve()):
        # Gradio's cache is shared by every session and its sweeper: the file may be gone already. Its folder is left
        # to the sweeper: another upload of the same content may have just made it and be about to move its file in.
        file.unlink(missing_ok=True)


def without_scratch_file(component: Any) -> Any:
    """A gr.File(type="filepath") that hands over the uploaded file's path without creating an empty temporary file
    beside Gradio's cache each time (Gradio 6's File.preprocess does; it would outlive the session)."""
    from gradio.data_classes import FileData
    from gradio.utils import NamedString

    def path_only(f: FileData) -> NamedString:
        return NamedString(f.path)

    if hasattr(component, "_process_single_file"):
        component._process_single_file = path_only
    return component


def error_line(error: Exception, session: Session) -> str:
    """The page's one line for a failure: a UserError's own line; anything else is named as a failure of the app,
    with its traceback in the server's log."""
    if isinstance(error, UserError):
        return f"**Error:** {reply(error, session.folder)}"
    traceback.print_exc()
    return f"**Error:** the app failed ({type(error).__name__}: {reply(UserError(str(error)), session.folder)}); see the server's log"


def sweep_cache(cache: Path, sessions_root: Path, age_s: float = SWEEP_AGE_S) -> list[Path]:
    """Remove files of Gradio's cache outside the session folders not written for ``age_s`` seconds, and empty folders
    not changed for as long; returns the files removed."""
    removed: list[Path] = []
    oldest = time.time() - age_s
    for folder, _dirs, files in os.walk(cache, topdown=False):
        here = Path(folder)
        if here == sessions_root or sessions_root in here.parents:
            continue
        for name in files:
            path = here / name
            try:
                if path.lstat().st_mtime < oldest:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue
        # Gradio makes an upload's folder, then moves the file in: a folder goes by its own age (a file moved in or
        # out changes it), never because this sweep emptied it
        if here != cache and folder_is_older(here, oldest):
            remove_if_empty(here)
    return removed


def remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (an upload landed meanwhile) or already gone
        pass


def folder_is_older(folder: Path, oldest: float) -> bool:
    try:
        return folder.lstat().st_mtime < oldest
    except FileNotFoundError:
        return False


def start_sweeper(cache: Path, sessions_root: Path) -> threading.Event:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(SWEEP_EVERY_S):
            try:
                sweep_cache(cache, sessions_root)
            except OSError:  # a folder removed by a request meanwhile: the next sweep sees the cache as it is then
                traceback.print_exc()

    threading.Thread(target=loop, daemon=True, name="cache-sweeper").start()
    return stop


def forget_editor_uploads(editor: Any, cache: Path, sessions_root: Path) -> Any:
    """A gr.ImageEditor whose uploaded images (the browser sends the background, layers and composite as files) are
    removed from Gradio's cache once decoded: what a session painted does not outlive the call."""
    decode = editor.preprocess

    def preprocess_and_forget(payload: Any) -> Any:
        try:
            return decode(payload)
        except (OSError, ValueError) as e:  # a file of the upload missing or unreadable (PIL's errors are OSErrors)
            traceback.print_exc()
            return UnreadablePainting(f"{type(e).__name__}: {e}")
        finally:
            for image in [getattr(payload, "background", None), getattr(payload, "composite", None),
                          *(getattr(payload, "layers", None) or [])]:
                remove_upload(getattr(image, "path", None), cache, sessions_root)

    editor.preprocess = preprocess_and_forget
    return editor


@dataclasses.dataclass
class UnreadablePainting:
    """What the image editor's upload decodes to when one of its files cannot be read: on_paint says so in one line."""

    reason: str


class App:
    """The page's callbacks; one :class:`Session` per browser session."""

    def __init__(self, args: argparse.Namespace, root: Path):
        self.args = args
        self.cache = root
        self.sessions = Sessions(root / "sessions", Limits(args.max_upload_mb, args.max_frames, args.max_pixels))
        self.models = list_models(Path(args.model))

    def session(self, request: gr.Request) -> Session:
        return self.sessions.get(request.session_hash)

    # ------------------------------------------------------------------ events
    def on_clip(self, upload: Optional[str], request: gr.Request) -> tuple:
        session = self.session(request)
        try:
            if not upload:
                return gr.update(), "Upload a video file or a zip of frames.", None
            clip = session.load_clip(Path(upload))
        except Exception as e:
            return gr.update(value=None), error_line(e, session), None
        finally:
            remove_upload(upload, self.cache, self.sessions.root)
        h, w = clip.first_frame.shape[:2]
        shown = str(clip.first_frame_png)  # a file in the session's folder, served from there
        editor = {"background": shown, "layers": [], "composite": shown}
        return editor, f"Loaded a clip of {clip.frames} frames ({w}x{h}). Paint the objects on the first frame, or upload its mask.", None

    def on_mask(self, upload: Optional[str], request: gr.Request) -> tuple:
        session = self.session(request)
        try:
            if not upload:
                return "Upload an annotation PNG.", None
            session.set_mask_png(Path(upload))
        except Exception as e:
            return error_line(e, session), None
        finally:
            remove_upload(upload, self.cache, self.sessions.root)
        note = f" Note: {session.mask_note}." if session.mask_note else ""
        return f"Mask loaded from the uploaded PNG.{note} Press Run.", None

    def on_paint(self, editor: Any, request: gr.Request) -> str:
        session = self.session(request)
        if isinstance(editor, UnreadablePainting):
            return error_line(UserError(f"the painting could not be read from its upload ({editor.reason}); "
                                        "press **Use the painted mask** again"), session)
        try:
            with session.exclusive():
                session.set_mask_painted(painted_layers(editor))
        except Exception as e:
            return error_line(e, session)
        return "Mask taken from the painting. Press Run."

    def settings(self, model: str, amp: bool, mem_freq: float, threshold: float, capacity: float, top_k: float,
                 compile: bool = False) -> RunSettings:
        if model not in self.models:  # a name from the page, never a path
            raise UserError(f"{model}: not one of the models in saves/; choose one from the list")
        numbers = {"memory gap": mem_freq, "top-k": top_k}
        for what, value in numbers.items():
            if value is None or value < 1:
                raise UserError(f"{what} must be at least 1")
        if capacity is None or capacity < 0 or threshold is None:
            raise UserError("capacity must be 0 or more, and the threshold a number")
        return RunSettings(self.models[model], bool(amp), bool(compile), int(mem_freq), float(threshold), int(capacity), int(top_k),
                           self.args.threads, self.args.device)

    def on_run(self, model: str, amp: bool, mem_freq: float, threshold: float, capacity: float,
               top_k: float, compile: bool, request: gr.Request):
        """A generator: progress while the run goes on, then the outputs (or one error line)."""
        session = self.session(request)
        nothing = (None, None, None, None, None)
        try:
            settings = self.settings(model, amp, mem_freq, threshold, capacity, top_k, compile)
            if not session.lock.acquire(blocking=False):
                raise UserError("a run is already going on in this page; wait for it to finish")
        except UserError as e:
            yield (f"**Error:** {reply(e, session.folder)}", *nothing)
            return
        events: queue.Queue = queue.Queue()
        previews = session.folder / "progress"
        try:
            session.discard("progress")
            previews.mkdir()
            threading.Thread(target=self.work, args=(session, settings, events), daemon=True).start()
        except Exception as e:
            session.lock.release()
            yield (error_line(e, session), *nothing)
            return
        yield from self.progress(events, previews, nothing)

    def work(self, session: Session, settings: RunSettings, events: queue.Queue) -> None:
        """The run, in a thread (the session's lock is held and released here); reports go to ``events``."""
        try:
            result = session.run(settings, lambda index, total, ids: events.put(("frame", index, total, ids)))
            events.put(("done", result))
        except Exception as e:
            events.put(("error", error_line(e, session)))
        finally:
            session.lock.release()

    def progress(self, events: queue.Queue, previews: Path, nothing: tuple):
        last = 0.0
        while True:
            event = events.get()
            if event[0] == "frame":
                _, index, total, ids = event
                if time.monotonic() - last >= PROGRESS_INTERVAL_S or index == total - 1:
                    last = time.monotonic()
                    yield (f"Propagating: frame {index + 1} / {total}", save_preview(previews, index, ids), None, None, None, None)
            elif event[0] == "error":
                yield (event[1], *nothing)
                return
            else:
                yield self.outputs(event[1])
                return

    @staticmethod
    def outputs(result: RunResult) -> tuple:
        side = str(result.side_by_side)
        status = f"Done: {result.frames} masks written. Download them below."
        return status, gr.update(), str(result.overlay), side, str(result.plot), str(result.masks_zip)

    def on_unload(self, request: gr.Request) -> None:
        self.sessions.close(request.session_hash)

    # ------------------------------------------------------------------ page
    def page(self):
        default_model = Path(self.args.model).name if Path(self.args.model).name in self.models else self.args.model
        with gr.Blocks(title="QDMN: segment your clip", analytics_enabled=False) as demo:
            gr.Markdown("## QDMN: video object segmentation on your clip\n"
                        "1. Upload a video file or a zip of frames. 2. Paint each object on the first frame in its own colour "
                        "and press **Use the painted mask**, or upload an annotation PNG. 3. Press **Run**.")
            with gr.Row():
                clip = without_scratch_file(gr.File(label="Video file or zip of frames", elem_id="clip_upload", type="filepath"))
                mask = without_scratch_file(gr.File(label="Annotation PNG of the first frame (optional)", elem_id="mask_upload",
                                                    type="filepath"))
            editor = gr.ImageEditor(label="First frame: paint one colour per object", elem_id="editor", type="numpy", height=480,
                                    sources=(), transforms=(), image_mode="RGBA",
                                    brush=gr.Brush(colors=brush_colours(), color_mode="fixed"))
            forget_editor_uploads(editor, self.cache, self.sessions.root)
            paint = gr.Button("Use the painted mask", elem_id="use_painting")
            with gr.Row():
                model = gr.Dropdown(list(self.models), value=default_model, label="Model (saves/)", elem_id="model")
                amp = gr.Checkbox(False, label="--amp (mixed precision)", elem_id="amp")
                compile = gr.Checkbox(False, label="--compile (torch.compile: the first run compiles)", elem_id="compile")
            with gr.Accordion("Memory settings", open=False):
                with gr.Row():
                    mem_freq = gr.Number(DAVIS_MEMORY.mem_freq, label="--mem_freq (minimum gap between admitted frames)", precision=0)
                    threshold = gr.Number(DAVIS_MEMORY.threshold, label="--threshold (quality needed for admission)")
                    capacity = gr.Number(DAVIS_MEMORY.capacity, label="--capacity (admitted frames kept)", precision=0)
                    top_k = gr.Number(DEFAULT_TOP_K, label="--top_k", precision=0)
            run = gr.Button("Run", variant="primary", elem_id="run_button")
            status = gr.Markdown("Upload a video file or a zip of frames.", elem_id="status")
            with gr.Row():
                preview = gr.Image(label="Mask of the frame being segmented", elem_id="preview", interactive=False)
                video = gr.Video(label="Overlay", elem_id="overlay_video", interactive=False, loop=True)
            with gr.Row():
                gallery = gr.Image(label="A few frames: frame | overlay", elem_id="side_by_side", interactive=False)
                plot = gr.Image(label="Memory: QAM quality per frame and admissions", elem_id="memory_plot", interactive=False)
            masks_zip = gr.File(label="Masks (palette PNGs, zip)", elem_id="masks_zip", interactive=False)

            # progress is shown on the status line only: an output in an event's loading state is one the page reloads,
            # and the image editor, reloaded, re-uploads its images (and may lose a stroke in progress)
            clip.upload(self.on_clip, [clip], [editor, status, clip], show_progress_on=[status])
            mask.upload(self.on_mask, [mask], [status, mask], show_progress_on=[status])
            # the editor is sent only here: it uploads its images each time
            paint.click(self.on_paint, [editor], [status], show_progress_on=[status])
            run.click(self.on_run, [model, amp, mem_freq, threshold, capacity, top_k, compile],
                      [status, preview, video, gallery, plot, masks_zip], concurrency_limit=1)
            demo.unload(self.on_unload)
        return demo


def make_root() -> Path:
    """The app's temporary root (Gradio's cache and the sessions), removed when the process exits."""
    root = Path(tempfile.mkdtemp(prefix="qdmn-app-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # atexit runs on SIGTERM too
    return root


def import_gradio(root: Path) -> None:
    """Import gradio with its cache in ``root`` and no calls home; one line when it is not installed."""
    global gr
    os.environ["GRADIO_TEMP_DIR"] = str(root)  # uploads land in the app's root, nothing in the system's temp folder
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise UserError("gradio is not installed; run `pip install -r requirements-app.txt`") from None
    gr = gradio


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not Path(args.model).is_file():
        raise UserError(f"{args.model}: model not found; pass --model with a .pth file")
    root = make_root()
    import_gradio(root)
    app = App(args, root)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    demo = app.page()
    demo.queue(default_concurrency_limit=1)
    sweeper = start_sweeper(root, app.sessions.root)
    try:
        demo.launch(server_name=args.host, server_port=args.port or None, max_file_size=int(args.max_upload_mb * 2**20),
                    theme=theme, ssr_mode=False, share=False, show_error=False, footer_links=[])
    finally:
        sweeper.set()
        app.sessions.close_all()


if __name__ == "__main__":
    main(sys.argv[1:])
