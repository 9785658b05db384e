"""What real footage brings: annotations checked before inference and fitted within 1 %, the pixel limit read from
headers (never decoded), a video file's frame rate and rotation, 16-bit and EXIF-rotated frames, the page's checks
on upload, and ``python scripts/NAME.py`` for every script.

Tiny clips (3 frames of 48x64) and a random ``lite`` checkpoint, in-process through ``main(argv)``; one subprocess
runs every script's ``--help`` the way ``python scripts/NAME.py`` and ``python -m scripts.NAME`` would.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

import eval_generic
from app_session import Limits, RunSettings, Sessions
from datasets.davis_test_dataset import davis2017_videos
from datasets.generic_test_dataset import generic_video
from datasets.static_dataset import read_static_mask
from datasets.synthetic import VideoSpec, render_video, write_davis2017, write_youtube
from datasets.video_source import VideoFileFrames, fit_tolerance, pad_or_crop, sizes_close
from datasets.yv_test_dataset import youtube_videos
from evaluation.generic import DEFAULT_FPS, overlay_fps
from model.checkpoint import safe_load
from tests.helpers import call
from util.errors import UserError
from util.image_io import header_size, load_mask, load_rgb, save_palette_png

ROOT = Path(__file__).resolve().parent.parent
H, W = 48, 64


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from scripts import make_random_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "lite.pth"
    make_random_checkpoint.main(["--out", str(path), "--config", "lite", "--seed", "3", "--qam_activation", "sigmoid"])
    return path


@pytest.fixture(scope="module")
def clip() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Three 48x64 RGB frames and their label maps (two objects)."""
    return render_video(np.random.default_rng(5), VideoSpec(3, H, W, 2))


def generic_args(video: Path, masks: Path, ckpt: Path, out: Path, *extra: str) -> list[str]:
    return ["--video", str(video), "--masks", str(masks), "--model", str(ckpt), "--output", str(out), "--device", "cpu",
            "--threads", "1", *extra]


def write_frames(folder: Path, frames: list[np.ndarray], ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}{ext}")
    return folder


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, idat: bytes, bit_depth: int = 8) -> bytes:
    """A greyscale PNG whose header says ``width`` x ``height``, with ``idat`` as its compressed data."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def flat_png(width: int, height: int) -> bytes:
    """A valid, all-black 1-bit PNG of ``width`` x ``height`` (a few KB however large it is)."""
    row = b"\0" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_bytes(width, height, data, bit_depth=1)


@pytest.fixture
def no_decoding(monkeypatch):
    """Any pixel decoding by Pillow fails the test: what is checked must be checked from headers."""

    def decoded(self, *args, **kwargs):
        raise AssertionError(f"decoded {getattr(self, 'filename', '')}")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)


# ----------------------------------------------------------------------------- the pixel limit, from headers
def test_pixel_limit_is_read_from_the_header_and_nothing_is_decoded(clip, tmp_path, capsys, monkeypatch):
    frames = write_frames(tmp_path / "frames", clip[0])
    (tmp_path / "masks").mkdir()
    save_palette_png(tmp_path / "masks" / "00000.png", clip[1][0])
    huge = frames / "00001.png"
    huge.write_bytes(png_bytes(12000, 12000, b"not even deflate"))  # the header says 12000x12000; the data is 16 bytes
    assert header_size(huge, max_pixels=10**9) == (12000, 12000)  # admitted: only the header is read
    with pytest.raises(UserError, match=r"12000x12000 is 144.0 megapixels, more than the limit of 40 megapixels per frame; "
                                        r"downscale it$"):
        load_rgb(huge)  # the training readers' default limit (no flag there)
    with pytest.raises(UserError, match="12000x12000"):
        read_static_mask(huge)  # the static training sets' masks too

    def decoded(self, *args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    out = tmp_path / "out"
    code, lines, _ = call(eval_generic.main, *generic_args(frames, tmp_path / "masks", tmp_path / "absent.pth", out), capsys=capsys)
    assert code == 2 and len(lines) == 1, lines
    for needle in (str(huge), "12000x12000", "144.0 megapixels", "40 megapixels", "--max_pixels"):
        assert needle in lines[0]
    assert not out.exists()  # refused before the model was even read: nothing computed, nothing written
    monkeypatch.undo()
    code, lines, _ = call(eval_generic.main, *generic_args(frames, tmp_path / "masks", tmp_path / "absent.pth", out,
                                                          "--max_pixels", str(12000 * 12000)), capsys=capsys)
    assert code == 2 and "absent.pth" in lines[0]  # with the limit raised, the same frames pass the header check


def test_pillow_bomb_limit_never_preempts_the_line(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(20000, 20000, b"x"))  # 400 megapixels: past Pillow's DecompressionBombError limit
    with pytest.raises(UserError, match="20000x20000 is 400.0 megapixels"):
        load_rgb(bomb)
    assert header_size(bomb, max_pixels=10**9) == (20000, 20000)  # a raised --max_pixels is ours to decide, not Pillow's
    warn = tmp_path / "warn.png"
    warn.write_bytes(png_bytes(12000, 12000, b"x"))  # 144 megapixels: past Pillow's DecompressionBombWarning limit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UserError, match="12000x12000"):
            load_mask(warn)
    assert not caught, [str(w.message) for w in caught]


def test_video_file_pixel_limit_is_read_from_its_header(clip, tmp_path, monkeypatch):
    import datasets.video_source as video_source

    mp4 = write_mp4(tmp_path / "clip.mp4", clip[0], 10)
    opened = video_source.open_capture

    class NoDecoding:
        def __init__(self, path):
            self.capture = opened(path)

        def read(self):
            raise AssertionError("decoded")

        def __getattr__(self, name):
            return getattr(self.capture, name)

    monkeypatch.setattr(video_source, "open_capture", NoDecoding)
    with pytest.raises(UserError, match=f"{mp4}: 64x48 is 0.0 megapixels, more than the limit of 0.001 megapixels per frame"):
        VideoFileFrames(mp4, max_pixels=1000)


def test_page_refuses_a_zip_of_huge_flat_frames_on_upload_in_seconds(tmp_path, no_decoding):
    archive = tmp_path / "huge.zip"
    frame = flat_png(12000, 12000)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for t in range(12):
            zf.writestr(f"frame{t}.png", frame)
    assert archive.stat().st_size < 100_000  # the upload: twelve 144-megapixel frames in a small zip
    session = Sessions(tmp_path / "sessions", Limits()).get("visitor")
    start = time.perf_counter()
    with pytest.raises(UserError) as refused:
        session.load_clip(archive)
    assert time.perf_counter() - start < 10
    message = str(refused.value)
    assert "\n" not in message
    for needle in ("frame0.png in the zip", "12000x12000", "144.0 megapixels", "40 megapixels", "app.py --max_pixels"):
        assert needle in message
    assert not (session.folder / "clip" / "frames").exists()  # nothing unpacked


def test_page_refuses_a_video_whose_header_is_too_large(clip, tmp_path, no_decoding):
    mp4 = write_mp4(tmp_path / "clip.mp4", clip[0], 10)
    session = Sessions(tmp_path / "sessions", Limits(max_pixels=1000)).get("visitor")
    with pytest.raises(UserError, match="the video has 64x48 frames .* this page's limit of 0.001 megapixels .*app.py --max_pixels"):
        session.load_clip(mp4)


# ----------------------------------------------------------------------------- annotations: checked first, fitted within 1 %
def test_the_1_percent_bound_on_both_sides():
    assert fit_tolerance(854) == 8 and fit_tolerance(480) == 4 and fit_tolerance(64) == 1  # at least 1 px
    assert sizes_close((480, 846), (480, 854)) and not sizes_close((480, 845), (480, 854))
    assert sizes_close((484, 862), (480, 854)) and not sizes_close((485, 854), (480, 854))
    assert sizes_close((47, 65), (48, 64)) and not sizes_close((46, 64), (48, 64)) and not sizes_close((48, 66), (48, 64))
    ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
    padded = pad_or_crop(ids, (4, 5))
    assert np.array_equal(padded[:3, :4], ids) and not padded[3].any() and not padded[:, 4].any()  # background, never interpolated
    assert np.array_equal(pad_or_crop(ids, (2, 3)), ids[:2, :3])


def test_generic_annotations_within_1_percent_are_padded_or_cropped_with_one_warning_each(clip, ckpt, tmp_path, capsys):
    frames = write_frames(tmp_path / "frames", clip[0], ".jpg")
    masks = tmp_path / "masks"
    masks.mkdir()
    narrow = clip[1][0][:, : W - 1]  # 63x48: one column short (Cutie's judo 00005.png is 853x480 for 854x480 frames)
    tall = np.concatenate([clip[1][2], np.full((1, W), 1, np.uint8)])  # 64x49: one row too many
    save_palette_png(masks / "00000.png", narrow)
    save_palette_png(masks / "00002.png", tall)
    out = tmp_path / "out"
    code, lines, _ = call(eval_generic.main, *generic_args(frames, masks, ckpt, out), capsys=capsys)
    assert code == 0, lines
    warned = [line for line in lines if line.startswith("warning:")]
    assert len(warned) == 2, lines  # one line per file, though each is read twice (checked first, then used)
    assert f"{masks / '00000.png'}: annotation is 63x48 but its frame is 64x48; padded with background at the right edge" in warned[0]
    assert f"{masks / '00002.png'}: annotation is 64x49 but its frame is 64x48; cropped at the bottom edge" in warned[1]
    first = load_mask(out / "frames" / "00000.png")
    assert first.shape == (H, W)
    assert np.array_equal(first[:, : W - 1], narrow) and not first[:, W - 1].any()  # the annotation, padded with background


@pytest.mark.parametrize("bad_size", [(H, W - 2), (H - 2, W), (10, 10)])
def test_larger_differences_are_refused_before_anything_is_computed(clip, tmp_path, capsys, bad_size):
    frames = write_frames(tmp_path / "frames", clip[0], ".jpg")
    masks = tmp_path / "masks"
    masks.mkdir()
    save_palette_png(masks / "00000.png", clip[1][0])
    save_palette_png(masks / "00002.png", np.ones(bad_size, np.uint8))  # a later annotation: still checked first
    out = tmp_path / "out"
    code, lines, _ = call(eval_generic.main, *generic_args(frames, masks, tmp_path / "absent.pth", out), capsys=capsys)
    assert code == 2 and len(lines) == 1, lines
    for needle in (str(masks / "00002.png"), f"{bad_size[1]}x{bad_size[0]}", "more than 1 % apart",
                   "pad or crop the annotation to 64x48", "never resize a label map with interpolation"):
        assert needle in lines[0]
    assert not out.exists()  # before the model was read


def test_davis_and_youtube_layouts_stay_strict(tmp_path):
    write_davis2017(tmp_path / "davis", seed=1, num_videos=1, num_frames=2, height=H, width=W, max_objects=1, splits=("val",))
    video = davis2017_videos(tmp_path / "davis" / "2017", "val")[0]
    first = video.annotation_files[0]
    save_palette_png(first, load_mask(first)[:, : W - 1])  # within 1 %: a generic video would pad it
    with pytest.raises(UserError, match=r"annotation is 63x48 but its frame is 64x48; pad or crop") as refused:
        video.read_annotation(0, (H, W))
    assert "1 %" not in str(refused.value)
    write_youtube(tmp_path / "yv", seed=2, num_videos=1, num_frames=2, height=H, width=W, max_objects=1)
    video = youtube_videos(tmp_path / "yv", sparse=True)[0]
    index, path = min(video.annotation_files.items())
    save_palette_png(path, np.concatenate([load_mask(path), np.zeros((1, W), np.uint8)]))
    with pytest.raises(UserError, match=r"annotation is 64x49 but its frame is 64x48; pad or crop"):
        video.read_annotation(index, (H, W))


# ----------------------------------------------------------------------------- video files: frame rate, rotation
def test_the_overlay_keeps_the_video_files_frame_rate_unless_fps_is_given(clip, ckpt, tmp_path, capsys):
    mp4 = write_mp4(tmp_path / "clip.mp4", clip[0], 30000 / 1001)
    masks = tmp_path / "masks"
    masks.mkdir()
    save_palette_png(masks / "00000.png", clip[1][0])
    for out, extra, expected in ((tmp_path / "a", (), 29.97), (tmp_path / "b", ("--fps", "10"), 10.0)):
        code, lines, _ = call(eval_generic.main, *generic_args(mp4, masks, ckpt, out, "--overlay", *extra), capsys=capsys)
        assert code == 0, lines
        capture = cv2.VideoCapture(str(out / "clip_overlay.mp4"))
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(expected, abs=0.01)
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
        capture.release()
    frames = write_frames(tmp_path / "frames", clip[0])
    assert overlay_fps(generic_video(frames, masks)) == DEFAULT_FPS  # a frame folder has no frame rate


def test_the_page_overlay_keeps_the_video_files_frame_rate(clip, ckpt, tmp_path):
    mp4 = write_mp4(tmp_path / "clip.mp4", clip[0], 30000 / 1001)
    save_palette_png(tmp_path / "mask.png", clip[1][0])
    session = Sessions(tmp_path / "sessions", Limits()).get("visitor")
    session.load_clip(mp4)
    session.set_mask_png(tmp_path / "mask.png")
    with session.exclusive():
        result = session.run(RunSettings(model=ckpt, threads=1, device="cpu"), lambda index, total, ids: None)
    capture = cv2.VideoCapture(str(result.overlay))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(29.97, abs=0.01)
    capture.release()


def rotate_mp4_90(path: Path) -> None:
    """Set the video track's display matrix (``tkhd``) to a 90-degree clockwise rotation, as phones record."""
    data = bytearray(path.read_bytes())
    tkhd = data.find(b"tkhd")
    assert tkhd > 0 and data[tkhd + 4] == 0  # version 0 box
    matrix = tkhd + 4 + 4 + 5 * 4 + 8 + 4 * 2  # after version/flags, 5 fields, 8 reserved bytes, layer..reserved
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


def test_rotation_metadata_is_applied_and_said(tmp_path, capsys):
    frames = [np.zeros((H, W, 3), np.uint8) for _ in range(3)]
    for frame in frames:
        frame[:10, :20] = 255  # a block at the top left of the stored frame
    mp4 = write_mp4(tmp_path / "phone.mp4", frames, 30)
    rotate_mp4_90(mp4)
    video = VideoFileFrames(mp4)
    assert len(video) == 3 and video.size(0) == (W, H)
    first = next(iter(video))
    assert first.shape == (W, H, 3)
    rows, cols = np.nonzero(first[..., 0] > 128)
    assert rows.max() < 25 and cols.min() > H - 15  # turned clockwise: the block is now at the top right
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and f"{mp4}: rotation metadata 90 degrees: frames turned upright, 48x64" in out


# ----------------------------------------------------------------------------- decoding: 16-bit, EXIF, unreadable modes
def exif_rotated(image: Image.Image) -> tuple[Image.Image, bytes]:
    """The image stored turned a quarter counter-clockwise, with EXIF Orientation 6 (turn it clockwise to view)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return image.transpose(Image.Transpose.ROTATE_90), exif.tobytes()


def run_masks(frames: Path, masks: Path, ckpt: Path, out: Path, capsys) -> list[np.ndarray]:
    code, lines, _ = call(eval_generic.main, *generic_args(frames, masks, ckpt, out), capsys=capsys)
    assert code == 0, lines
    return [load_mask(p) for p in sorted((out / frames.name).glob("*.png"))]


def test_16bit_and_exif_rotated_frames_give_the_masks_of_their_8bit_upright_copies(clip, ckpt, tmp_path, capsys):
    images, ids = clip
    masks = tmp_path / "masks"
    masks.mkdir()
    save_palette_png(masks / "00000.png", ids[0])
    reference = run_masks(write_frames(tmp_path / "rgb8", images), masks, ckpt, tmp_path / "o1", capsys)
    assert len(reference) == 3 and any(m.any() for m in reference)

    rgb16 = tmp_path / "rgb16"
    rgb16.mkdir()
    for t, image in enumerate(images):  # 16-bit colour PNGs (v * 257: the same picture)
        cv2.imwrite(str(rgb16 / f"{t:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    assert all(np.array_equal(a, b) for a, b in zip(run_masks(rgb16, masks, ckpt, tmp_path / "o2", capsys), reference))

    grey = [np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2) for image in images]
    grey_reference = run_masks(write_frames(tmp_path / "grey8", grey), masks, ckpt, tmp_path / "o3", capsys)
    grey16 = tmp_path / "grey16"
    grey16.mkdir()
    for t, image in enumerate(grey):  # 16-bit greyscale PNGs: Pillow's mode I;16, which used to read as pure white
        Image.fromarray(image[..., 0].astype(np.uint16) * 257).save(grey16 / f"{t:05d}.png")
    assert Image.open(grey16 / "00000.png").mode == "I;16"
    assert all(np.array_equal(a, b) for a, b in zip(run_masks(grey16, masks, ckpt, tmp_path / "o4", capsys), grey_reference))

    turned, turned_masks = tmp_path / "exif", tmp_path / "exif_masks"
    turned.mkdir()
    turned_masks.mkdir()
    for t, image in enumerate(images):  # frames and the mask alike stored sideways (64x48 as stored, 48x64 upright)
        stored, exif = exif_rotated(Image.fromarray(image))
        stored.save(turned / f"{t:05d}.png", exif=exif)
    mask = Image.open(masks / "00000.png")
    stored, exif = exif_rotated(mask)
    stored.save(turned_masks / "00000.png", exif=exif)
    assert Image.open(turned / "00000.png").size == (H, W)
    assert all(np.array_equal(a, b) for a, b in zip(run_masks(turned, turned_masks, ckpt, tmp_path / "o5", capsys), reference))


def test_exif_rotated_jpeg_frames_are_read_upright(clip, tmp_path):
    stored, exif = exif_rotated(Image.fromarray(clip[0][0]))
    stored.save(tmp_path / "f.jpg", exif=exif, quality=95)
    assert header_size(tmp_path / "f.jpg") == (H, W)
    assert load_rgb(tmp_path / "f.jpg").shape == (H, W, 3)


def test_a_mode_that_cannot_be_read_faithfully_is_refused_before_inference(clip, tmp_path, capsys):
    frames = write_frames(tmp_path / "frames", clip[0])
    Image.fromarray(np.ones((H, W), np.float32)).save(frames / "00001.png", format="TIFF")  # float frame, named .png
    masks = tmp_path / "masks"
    masks.mkdir()
    save_palette_png(masks / "00000.png", clip[1][0])
    code, lines, _ = call(eval_generic.main, *generic_args(frames, masks, tmp_path / "absent.pth", tmp_path / "out"), capsys=capsys)
    assert code == 2 and len(lines) == 1, lines
    assert f"{frames / '00001.png'}: image mode F" in lines[0] and "8-bit RGB" in lines[0]


# ----------------------------------------------------------------------------- the page: masks fitted as eval_generic.py fits them
def test_the_page_says_when_an_uploaded_mask_will_be_padded(clip, tmp_path):
    mp4 = write_mp4(tmp_path / "clip.mp4", clip[0], 10)
    session = Sessions(tmp_path / "sessions", Limits()).get("visitor")
    session.load_clip(mp4)
    save_palette_png(tmp_path / "narrow.png", clip[1][0][:, : W - 1])
    session.set_mask_png(tmp_path / "narrow.png")
    assert session.mask_note == ("the mask is 63x48 but the first frame is 64x48; "
                                 "it will be padded with background at the right edge to 64x48")
    save_palette_png(tmp_path / "ok.png", clip[1][0])
    session.set_mask_png(tmp_path / "ok.png")
    assert session.mask_note is None
    save_palette_png(tmp_path / "far.png", clip[1][0][:, : W - 2])
    with pytest.raises(UserError, match="more than 1 % apart; pad or crop the annotation to 64x48"):
        session.set_mask_png(tmp_path / "far.png")


# ----------------------------------------------------------------------------- scripts
HELP_EVERY_SCRIPT = r"""
import contextlib, io, json, runpy, sys
from pathlib import Path

root = Path.cwd().resolve()
project = {p.stem for p in root.iterdir() if (p / "__init__.py").is_file() or p.suffix == ".py"}
scripts = sorted(p for p in (root / "scripts").glob("*.py") if p.name != "__init__.py")
elsewhere = [p for p in sys.path if p and Path(p).resolve() != root]  # the interpreter's own paths, not the repository
results = {}
for script in scripts:
    for form in ("file", "module"):
        for name in [m for m in sys.modules if m.split(".")[0] in project | {s.stem for s in scripts}]:
            del sys.modules[name]  # each run imports the project afresh, as a new interpreter would
        out = io.StringIO()
        if form == "file":  # python scripts/NAME.py: sys.path[0] is scripts/
            sys.path[:] = [str(script.parent), *elsewhere]
            sys.argv = [str(script), "--help"]
            run = lambda: runpy.run_path(str(script), run_name="__main__")
        else:  # python -m scripts.NAME: sys.path[0] is the current folder
            sys.path[:] = [str(root), *elsewhere]
            sys.argv = [f"scripts.{script.stem}", "--help"]
            run = lambda: runpy.run_module(f"scripts.{script.stem}", run_name="__main__", alter_sys=True)
        try:
            with contextlib.redirect_stdout(out):
                run()
            code = "no exit"
        except SystemExit as e:
            code = e.code or 0
        except BaseException as e:
            code = f"{type(e).__name__}: {e}"
        results[f"{form} {script.name}"] = [code, "usage:" in out.getvalue()]
print(json.dumps(results))
"""


def test_every_script_runs_as_a_file_and_as_a_module():
    proc = subprocess.run([sys.executable, "-c", HELP_EVERY_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    scripts = sorted(p.name for p in (ROOT / "scripts").glob("*.py") if p.name != "__init__.py")
    assert sorted(results) == sorted(f"{form} {name}" for name in scripts for form in ("file", "module"))
    failed = {name: result for name, result in results.items() if result != [0, True]}
    assert not failed, failed


def test_the_missing_checkpoint_line_names_a_command_that_works(tmp_path):
    with pytest.raises(UserError, match=r"`python scripts/download_models.py`"):
        safe_load(tmp_path / "QDMN.pth")
    assert (ROOT / "scripts" / "download_models.py").is_file()  # run as a file by the test above


def test_the_8k_benchmark_measures_eval_generic_on_a_clip_it_generates(ckpt, tmp_path):
    from scripts import benchmark_8k

    report, table = tmp_path / "8k.json", tmp_path / "8k.md"
    benchmark_8k.main(["--width", "96", "--height", "64", "--frames", "2", "--model", str(ckpt), "--json", str(report),
                       "--markdown", str(table)])
    result = json.loads(report.read_text())["results"]
    assert (result["width"], result["height"], result["frames"], result["objects"]) == (96, 64, 2, 2)
    assert result["eval_stats"]["frames"] == 2 and result["peak_rss_mib"] >= result["eval_stats"]["peak_rss_mib"] > 50
    assert "| 2 | 96x64 |" in table.read_text()
