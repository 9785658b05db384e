"""What the web page (``app.py``) does for one visitor, without the page itself.

Each browser session gets a private folder (a random name under the app's temporary
root) holding its upload, its first-frame mask and its runs; the folder is removed when
the session ends. Uploaded files are copied under fixed names (a client's file name is
never used as a path), limits (upload size, frames, pixels per frame from every frame's
header) are checked on upload, before anything is decoded (``app_upload.py``), and a
session runs one propagation at a time. The run is ``eval_generic.py``'s: the same argument
parser, :func:`generic_video`, :func:`evaluation.runner.evaluate` and overlay writer.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from PIL import Image

import eval_generic
from app_upload import (
    ZIP_MAGIC,
    Limits,
    check_frame_count,
    check_mask_upload,
    check_objects,
    check_upload_size,
    check_video_header,
    extract_frames,
)
from datasets.generic_test_dataset import VIDEO_EXTENSIONS, generic_video
from datasets.video_source import (
    LABEL_MAP_ADVICE,
    ImageFolderFrames,
    VideoFileFrames,
    VideoSource,
    check_sequence_folder,
    fit_words,
    sizes_close,
)
from evaluation.generic import overlay_fps, overlay_items
from evaluation.masks import PALETTE_PNG
from evaluation.runner import evaluate
from model.memory_policy import DAVIS_MEMORY
from model.network import DEFAULT_TOP_K
from util.errors import UserError
from util.image_io import DEFAULT_MAX_PIXELS, load_mask, save_palette_png
from util.overlay import blend, write_overlay
from util.palette import davis_palette
from util.write_gate import writing

CLIP_NAME = "clip"  # the video's name in outputs (never the uploaded file's name)
MAX_OBJECTS = 8  # brush colours on the page: DAVIS palette entries 1..8
SIDE_BY_SIDE_FRAMES = 4


@dataclass(frozen=True)
class RunSettings:
    model: Path
    amp: bool = False
    compile: bool = False  # --compile (docs/COMPILE.md): the first run compiles, later ones start from the cache
    mem_freq: int = DAVIS_MEMORY.mem_freq  # eval_generic.py's defaults
    threshold: float = DAVIS_MEMORY.threshold
    capacity: int = DAVIS_MEMORY.capacity
    top_k: int = DEFAULT_TOP_K
    threads: Optional[int] = None
    device: Optional[str] = None
    fps: Optional[float] = None  # the overlay's frame rate (None: the video file's, 24 for frames)


@dataclass
class RunResult:
    folder: Path
    masks: Path  # folder of palette PNGs, one per frame from the first annotated one
    overlay: Path  # VP8 webm
    side_by_side: Path  # a few frames, each as frame | overlay
    plot: Path
    masks_zip: Path
    frames: int


@dataclass
class Clip:
    video: Path  # frame folder or video file inside the session folder
    frames: int
    first_stem: str
    first_frame: np.ndarray
    first_frame_png: Path  # shown on the page for painting


def brush_colours() -> list[str]:
    """Hex colours of objects 1..MAX_OBJECTS: the DAVIS palette the masks are written with."""
    pal = np.frombuffer(davis_palette(), np.uint8).reshape(-1, 3)
    return ["#" + "".join(f"{int(v):02x}" for v in pal[k]) for k in range(1, MAX_OBJECTS + 1)]


def first_frame(video: VideoSource) -> np.ndarray:
    for rgb in video.frames:
        return rgb
    raise UserError("the video has no frames; upload another clip")


def labels_from_layers(layers: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Painted RGBA layers -> label map: each painted pixel gets the object whose brush colour is nearest."""
    colours = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in brush_colours()], np.float32)
    ids = np.zeros(shape, np.uint8)
    for layer in layers:
        if layer is None or layer.ndim != 3 or layer.shape[2] != 4:
            continue
        if layer.shape[:2] != shape:
            raise UserError(f"the painted layer is {layer.shape[1]}x{layer.shape[0]}, not the first frame's "
                            f"{shape[1]}x{shape[0]}; paint without resizing the canvas")
        painted = layer[..., 3] >= 128
        if painted.any():
            distance = ((layer[painted][:, None, :3].astype(np.float32) - colours[None]) ** 2).sum(-1)
            ids[painted] = distance.argmin(1).astype(np.uint8) + 1
    return ids


def reply(error: UserError, folder: Path) -> str:
    """The one-line message for the page: the session folder's location is not shown."""
    return str(error).replace(f"{folder}/", "").replace(str(folder), "the session folder")


@dataclass
class Session:
    folder: Path
    limits: Limits
    clip: Optional[Clip] = None
    mask_note: Optional[str] = None  # the uploaded mask will be padded or cropped to the frame's size
    runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the session while its files change or a run reads them; a second request meanwhile is refused."""
        if not self.lock.acquire(blocking=False):
            raise UserError("a run is already going on in this page; wait for it to finish")
        try:
            yield
        finally:
            self.lock.release()

    # ------------------------------------------------------------------ input
    def load_clip(self, upload: Path) -> Clip:
        """Copy an uploaded video file or zip of frames into the session folder, under fixed names, and open it."""
        with self.exclusive():
            return self._load_clip(upload)

    def _load_clip(self, upload: Path) -> Clip:
        self.clip = None
        check_upload_size(upload, self.limits, "upload")
        with open(upload, "rb") as f:
            head = f.read(4)
        self.discard("clip")
        target = self.folder / "clip"
        target.mkdir()
        if head == ZIP_MAGIC:
            extract_frames(upload, target / "frames", self.limits)
            path = target / "frames"
        else:
            suffix = upload.suffix.lower()
            if suffix not in VIDEO_EXTENSIONS:
                kinds = ", ".join(VIDEO_EXTENSIONS)
                raise UserError(f"the upload is neither a video file ({kinds}) nor a zip of frames; upload one of those")
            path = target / f"video{suffix}"
            with writing(path, "") as tmp:
                shutil.copyfile(upload, tmp)
            check_video_header(path, self.limits)
        video = self.frames_only(path)
        check_frame_count(len(video), self.limits)
        rgb = first_frame(video)
        shown = target / "first_frame.png"
        with writing(shown, "") as tmp:
            Image.fromarray(rgb).save(tmp)
        self.clip = Clip(path, len(video), video.frames.stem(0), rgb, shown)
        return self.clip

    def frames_only(self, path: Path) -> VideoSource:
        """The clip's frames without annotations, read as ``generic_video`` reads them (to count them, show the first);
        every frame's header checked against the pixel limit first."""
        if path.is_dir():
            frames = ImageFolderFrames(check_sequence_folder(path, "frame folder"), self.limits.max_pixels)
            frames.check_headers()
        else:
            frames = VideoFileFrames(path, self.limits.max_pixels)
        return VideoSource(name=CLIP_NAME, frames=frames, annotation_files={}, max_pixels=self.limits.max_pixels)

    def set_mask_png(self, upload: Path) -> Path:
        """An uploaded annotation PNG becomes the first frame's mask (its bytes unchanged, its palette kept).
        ``mask_note`` then says whether the run will pad or crop it to the frame's size."""
        with self.exclusive():
            return self._set_mask_png(upload)

    def _set_mask_png(self, upload: Path) -> Path:
        self.mask_note = None
        clip = self.require_clip()
        check_mask_upload(upload, self.limits)
        path = self.fresh_masks() / f"{clip.first_stem}.png"
        with writing(path, "") as tmp:
            shutil.copyfile(upload, tmp)
        ids = load_mask(path, self.limits.max_pixels)
        self.mask_note = self.check_mask_shape(ids)
        check_objects(ids)
        return path

    def set_mask_painted(self, layers: list[np.ndarray]) -> Path:
        """Painted layers (one colour per object) become the first frame's palette PNG (call inside :meth:`exclusive`)."""
        clip = self.require_clip()
        ids = labels_from_layers(layers, clip.first_frame.shape[:2])
        check_objects(ids)
        path = self.fresh_masks() / f"{clip.first_stem}.png"
        with writing(path, "") as tmp:
            save_palette_png(tmp, ids)
        return path

    def check_mask_shape(self, ids: np.ndarray) -> Optional[str]:
        """None when the mask has the first frame's size; a note when the run will pad or crop it (within 1 %, as
        ``eval_generic.py``); refused otherwise."""
        h, w = self.require_clip().first_frame.shape[:2]
        if ids.shape == (h, w):
            return None
        if not sizes_close(ids.shape, (h, w)):
            raise UserError(f"the mask is {ids.shape[1]}x{ids.shape[0]} but the first frame is {w}x{h}, more than 1 % apart; "
                            + LABEL_MAP_ADVICE.format(w, h))
        return f"the mask is {ids.shape[1]}x{ids.shape[0]} but the first frame is {w}x{h}; it will be {fit_words(ids.shape, (h, w))}"

    def fresh_masks(self) -> Path:
        self.discard("masks")
        path = self.folder / "masks"
        path.mkdir()
        return path

    def require_clip(self) -> Clip:
        if self.clip is None:
            raise UserError("no clip yet; upload a video file or a zip of frames first")
        return self.clip

    def discard(self, name: str) -> None:
        """Remove a sub-folder this session wrote (fixed names only)."""
        path = self.folder / name
        if path.parent == self.folder and path.is_dir():
            shutil.rmtree(path)

    # ------------------------------------------------------------------ run
    def run(self, settings: RunSettings, on_frame: Callable[[int, int, np.ndarray], None]) -> RunResult:
        """eval_generic.py on the session's clip and mask, then the page's outputs (call inside :meth:`exclusive`)."""
        clip = self.require_clip()
        masks = self.folder / "masks"
        if not (masks / f"{clip.first_stem}.png").is_file():
            raise UserError("no first-frame mask yet; paint the objects on the first frame or upload an annotation PNG")
        self.runs += 1
        output = self.folder / f"run{self.runs}"
        args = eval_generic.parse_args(eval_args(clip.video, masks, output, settings, self.limits.max_pixels))
        video = generic_video(Path(args.video), Path(args.masks), args.size, CLIP_NAME, args.max_pixels)
        decisions: list = []

        def hook(source: VideoSource, index: int, ids: np.ndarray, core) -> None:
            decisions[:] = core.decisions
            on_frame(index, len(source), ids)

        contextvars.copy_context().run(evaluate, eval_generic.run_config(args), [video], on_frame=hook)  # its inputs end with it
        return self.outputs(video, output, decisions, settings)

    def outputs(self, video: VideoSource, output: Path, decisions: list, settings: RunSettings) -> RunResult:
        masks = output / video.name
        picks = set(np.linspace(video.first_annotated, len(video) - 1, SIDE_BY_SIDE_FRAMES).round().astype(int).tolist())
        chosen: list[tuple[int, np.ndarray, np.ndarray]] = []
        overlay, gif = output / f"{video.name}_overlay.webm", output / f"{video.name}_preview.gif"
        fps = overlay_fps(video, settings.fps)
        write_overlay(keep_frames(overlay_items(video, masks), picks, chosen), len(video), overlay, gif, fps=fps)
        pairs = save_side_by_side(output / "side_by_side.png", chosen)
        plot = save_memory_plot(output / "memory.png", decisions, video.first_annotated, settings.threshold)
        archive = zip_masks(masks, output / f"{video.name}_masks.zip")
        return RunResult(output, masks, overlay, pairs, plot, archive, len(PALETTE_PNG.files(masks)))


def eval_args(video: Path, masks: Path, output: Path, settings: RunSettings, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[str]:
    """eval_generic.py's command line for this run."""
    argv = ["--video", str(video), "--masks", str(masks), "--output", str(output), "--model", str(settings.model),
            "--name", CLIP_NAME, "--mem_freq", str(settings.mem_freq), "--threshold", repr(float(settings.threshold)),
            "--capacity", str(settings.capacity), "--top_k", str(settings.top_k), "--max_pixels", str(max_pixels)]
    if settings.amp:
        argv.append("--amp")
    if settings.compile:
        argv.append("--compile")
    if settings.threads is not None:
        argv += ["--threads", str(settings.threads)]
    if settings.device is not None:
        argv += ["--device", settings.device]
    return argv


def keep_frames(items: Iterator, picks: set[int], chosen: list) -> Iterator:
    """Pass overlay items through, keeping (index, frame, labels) of the picked frames."""
    for index, item in enumerate(items):
        if index in picks:
            chosen.append((index, item[0], item[1]))
        yield item


def save_side_by_side(path: Path, chosen: list[tuple[int, np.ndarray, np.ndarray]]) -> Path:
    """One image: a row per chosen frame, the frame | its overlay, captioned with its index."""
    rows = []
    for index, rgb, ids in chosen:
        frame = rgb.copy()
        cv2.putText(frame, f"frame {index}", (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        gap = np.full((rgb.shape[0], 4, 3), 255, np.uint8)
        rows += [np.concatenate([frame, gap, blend(rgb, ids)], axis=1), np.full((4, 2 * rgb.shape[1] + 4, 3), 255, np.uint8)]
    with writing(path, "") as tmp:
        Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(tmp)
    return path


def save_memory_plot(path: Path, decisions: list, annotated: int, threshold: float) -> Path:
    """Normalised QAM quality of each judged frame, admitted frames marked, the admission threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [f for f, _ in decisions]
    quality = [d.quality for _, d in decisions]
    admitted = [(f, d.quality) for f, d in decisions if d.admitted]
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=100)
    ax.plot(frames, quality, "-", color="0.4", lw=1, label="quality (mean QAM score / annotated frame's)")
    if admitted:
        ax.plot(*zip(*admitted), "o", color="tab:green", ms=5, label="admitted to memory")
    ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.axvline(annotated, color="tab:blue", lw=1, label="annotated frame")
    ax.set_xlabel("frame")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with writing(path, "") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path


def zip_masks(masks: Path, archive: Path) -> Path:
    with writing(archive, "") as tmp, zipfile.ZipFile(tmp, "x", zipfile.ZIP_DEFLATED) as zf:
        for png in PALETTE_PNG.files(masks):
            zf.write(png, png.name)
    return archive


class Sessions:
    """The sessions of one app process, each in a private folder under ``root``; closed ones are removed."""

    def __init__(self, root: Path, limits: Limits):
        self.root = root
        self.limits = limits
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Session:
        with self._lock:
            if key not in self._sessions:
                folder = self.root / secrets.token_hex(16)  # not derived from anything the client sends
                folder.mkdir(parents=True)
                self._sessions[key] = Session(folder, self.limits)
            return self._sessions[key]

    def close(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is not None:
            shutil.rmtree(session.folder, ignore_errors=True)

    def close_all(self) -> None:
        for key in list(self._sessions):
            self.close(key)

    def __len__(self) -> int:
        return len(self._sessions)
