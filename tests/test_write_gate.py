"""The write gate (util/write_gate.py): every file the project writes goes through it, and its rule holds.

* the source scan: any call that writes, renames or deletes a file outside the gate
  fails the test unless the allowlist below names it, with the reason;
* the rule: no input is written, a file of the user's is never replaced (a record shows
  what this project wrote), the target is whole or as it was, an OS error is one line;
* the issue's cases, through each entry point's ``main(argv)`` in-process.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import assert_refused, call, tree
from tests.write_calls import ROOT, write_calls
from util import write_gate
from util.errors import UserError

# (file, function, kind) -> why this write may bypass the gate. Kinds: see tests/write_calls.py.
ALLOWED: dict[tuple[str, str, str], str] = {
    # -- the output folder's own half of the gate: folders it made, its state, its locks
    ("util/output_safety.py", "fresh_partial", "shutil.rmtree"): "removes a .<video>.partial only when it holds the project's marker",
    ("util/output_safety.py", "fresh_partial", "Path.write_bytes"): "the marker inside a staging folder it just made",
    ("util/output_safety.py", "fresh_partial", "Path.rename"): "renames its fresh staging folder to .<video>.partial",
    ("util/output_safety.py", "publish", "Path.unlink"): "the marker of the project's own .partial folder",
    ("util/output_safety.py", "publish", "Path.rmdir"): "an empty folder it just made under a fresh name",
    ("util/output_safety.py", "publish", "Path.rename"): "swaps the finished .partial with a video folder recorded as the project's",
    ("util/output_safety.py", "publish", "shutil.rmtree"): "the replaced video folder, recorded as the project's, set aside first",
    ("util/output_safety.py", "lock_output", "open-a+"): "the lock file inside <output>/.qdmn/",
    ("util/output_safety.py", "video_lock", "open-a+"): "a video's lock file inside <output>/.qdmn/locks/",
    ("util/output_safety.py", "waiting_lock", "open-a+"): "a lock file the project names (.qdmn/, .demo_sample.lock)",
    # -- masks: thousands per video, written into a .<video>.partial folder made fresh for them
    ("util/image_io.py", "save_palette_png", "save"): "masks into a fresh .partial folder; other callers wrap it in writing()",
    ("util/image_io.py", "save_gray_png", "save"): "binary masks into a fresh .partial folder",
    # -- training
    ("train.py", "train_from.save", "save"): "QDMNTrainer.save writes through model.checkpoint.atomic_save (the gate)",
    ("train.py", "remove_if_empty", "Path.rmdir"): "the run's own save folder, only when empty (rmdir)",
    # -- the demo sample: rendered into a fresh mkdtemp folder, renamed whole into place
    ("demo.py", "_generate_sample", "save"): "frames into the fresh staging folder",
    ("demo.py", "_generate_sample", "shutil.rmtree"): "the staging folder, or an unfinished sample holding only frames/masks/gt",
    ("demo.py", "_generate_sample", "Path.rename"): "the finished staging folder to the sample's name",
    # -- the page: everything lives under the app's own temporary root
    ("app.py", "remove_upload", "Path.unlink"): "Gradio's cached copy of an upload, inside the app's temporary root",
    ("app.py", "sweep_cache", "Path.unlink"): "stale files of Gradio's cache, inside the app's temporary root",
    ("app.py", "remove_if_empty", "Path.rmdir"): "empty folders of Gradio's cache",
    ("app_upload.py", "extract_frames", "open-xb"): "frames into a folder it just made; 'x' never replaces a file",
    ("app_session.py", "Session.discard", "shutil.rmtree"): "a sub-folder of the session's own folder (fixed names)",
    ("app_session.py", "Sessions.close", "shutil.rmtree"): "a closed session's own folder (a random name under the app's root)",
    # -- downloads: the resumable .part beside the destination; the destination itself is committed through the gate
    ("util/download.py", "_stream", "open-?"): "appends to (or restarts) the download's own DEST.part",
    ("util/download.py", "_verify_and_commit", "Path.unlink"): "a .part that failed its checksum",
    ("util/download.py", "_extract_zip", "extractall"): "into the target after every member was checked",
    ("util/download.py", "_extract_tar", "extractall"): "into the target after every member was checked",
    ("scripts/download_datasets.py", "_extract_renaming", "shutil.rmtree"): "its own .staging-<name> folder",
    ("scripts/download_datasets.py", "_extract_renaming", "Path.rename"): "a folder of its staging area to a target that does not exist",
    # -- dataset generators: thousands of files into a set's folder, which make_* refuse to write over
    #    (an existing set is removed only when it carries the generator's manifest)
    ("datasets/synthetic/files.py", "_write_bytes", "Path.write_bytes"): "dataset generator",
    ("datasets/synthetic/files.py", "_write_palette_png", "save"): "dataset generator",
    ("datasets/synthetic/files.py", "_write_binary_png", "save"): "dataset generator",
    ("datasets/synthetic/files.py", "_write_list", "Path.write_text"): "dataset generator",
    ("datasets/synthetic/synthvos.py", "_finish_set", "Path.write_text"): "dataset generator (the set's manifest)",
    ("datasets/synthetic/writers.py", "write_youtube_meta", "Path.write_text"): "dataset generator",
    ("datasets/heldout/write.py", "_jpeg", "save"): "dataset generator (encodes into memory)",
    ("datasets/heldout/write.py", "_png", "save"): "dataset generator (encodes into memory)",
    ("datasets/heldout/write.py", "_put", "Path.write_bytes"): "dataset generator",
    ("datasets/heldout/write.py", "write_heldout", "Path.write_text"): "dataset generator (lists, meta, manifest)",
    ("scripts/make_heldout.py", "main", "shutil.rmtree"): "--overwrite: only a set that carries the generator's manifest",
    ("scripts/make_synthvos.py", "_prepare", "shutil.rmtree"): "--overwrite: only sets that carry the generator's manifest",
    ("datasets/resize.py", "resize_image", "save"): "resized copy of a dataset, under a temporary name",
    ("datasets/resize.py", "resize_image", "os.replace"): "its temporary file to the resized copy's name",
    ("datasets/resize.py", "_resize_mask", "save"): "resized copy of a dataset, under a temporary name",
    ("datasets/resize.py", "_resize_photo", "cv2.imwrite"): "resized copy of a dataset, under a temporary name",
    ("datasets/resize.py", "resize_file", "shutil.copyfile"): "resized copy of a dataset, under a temporary name",
    ("datasets/resize.py", "resize_file", "os.replace"): "its temporary file to the resized copy's name",
    ("scripts/benchmark.py", "write_video", "cv2.imwrite"): "a generated video in the benchmark's temporary folder",
    ("scripts/benchmark.py", "write_video", "Path.write_text"): "that video's val.txt, in the benchmark's temporary folder",
    ("scripts/benchmark.py", "run_official", "Path.write_text"): "the official run's shim and commit, in the temporary folder",
    ("scripts/benchmark.py", "run_official", "torch.save"): "the official run's random weights, in the temporary folder",
    ("scripts/benchmark_8k.py", "write_clip", "cv2.imwrite"): "the generated 8K clip, in a tempfile.TemporaryDirectory",
    ("scripts/evidence_synthvos.py", "copy_first_davis", "shutil.copyfile"): "a baseline's masks in the script's work folder",
    # -- the comparison with the official code: its work folder (a temporary folder unless --work_dir)
    ("evaluation/official.py", "copy_official", "open-wb"): "the official code's archive in the comparison's work folder",
    ("evaluation/official.py", "extract_python_files", "extractall"): (
        "the .py regular files of the official code's tar (its 'data' filter where Python has it) into the comparison's "
        "<work>/official_copy, a fixed sub-folder compare() removes and makes anew"
    ),
    ("evaluation/official.py", "copy_official", "Path.unlink"): "that archive, once extracted",
    ("evaluation/official.py", "copy_official", "shutil.copy2"): "the official code into the comparison's work folder",
    ("evaluation/official.py", "patch_official", "Path.write_text"): "patches that copy of the official code",
    ("scripts/compare_official.py", "run", "open-w"): "a run's log in the work folder",
    ("scripts/compare_official.py", "compare", "shutil.rmtree"): "the work folder's fixed sub-folders of an earlier comparison",
    ("scripts/compare_official.py", "compare", "Path.write_text"): "the official run's sitecustomize shim in the work folder",
    # -- the prepared GPU run
    ("scripts/gpu_check.py", "main", "shutil.rmtree"): "the run's own tempfile.mkdtemp folder (data, checkpoints, logs); never --work",
}


def test_every_write_call_goes_through_the_gate_or_is_allowlisted_with_a_reason():
    found = write_calls()
    outside = sorted({f"{c.file}:{c.line} {c.function} {c.kind}" for c in found if c.key not in ALLOWED})
    assert not outside, "write calls outside the gate (route them through it, or allowlist with a reason):\n" + "\n".join(outside)
    stale = sorted(set(ALLOWED) - {c.key for c in found})
    assert not stale, f"allowlist entries that match no call any more (remove them): {stale}"
    assert all(reason.strip() for reason in ALLOWED.values())


def test_the_scan_finds_each_kind_of_write(tmp_path):
    from tests.write_calls import write_calls as scan

    source = tmp_path / "sample.py"
    source.write_text(
        "import json, os, shutil, zipfile, cv2, torch\n"
        "from util.write_gate import writing\n"
        "def f(p, q, img, fig, obj):\n"
        "    open(p, 'w'); open(p, mode='ab'); open(p)\n"
        "    p.write_text('x'); p.write_bytes(b''); torch.save(obj, p); img.save(p)\n"
        "    zipfile.ZipFile(p, 'x'); zipfile.ZipFile(p)\n"
        "    json.dump(obj, q); shutil.move(p, q); shutil.copyfile(p, q); shutil.rmtree(p)\n"
        "    os.replace(p, q); os.rename(p, q); p.rename(q); p.replace(q); p.unlink(); 'a'.replace('a', 'b')\n"
        "    cv2.imwrite(p, img); cv2.VideoWriter(p, 0, 1, (1, 1)); fig.savefig(p)\n"
        "    with writing(p) as tmp, open(tmp, 'xb') as handle:\n"
        "        torch.save(obj, handle); fig.savefig(tmp); img.save(tmp)\n"
    )
    kinds = [c.kind for c in scan([source])]
    assert kinds == ["open-w", "open-ab", "Path.write_text", "Path.write_bytes", "torch.save", "save", "zipfile-x", "json.dump",
                     "shutil.move", "shutil.copyfile", "shutil.rmtree", "os.replace", "os.rename", "Path.rename", "Path.replace",
                     "Path.unlink", "cv2.imwrite", "cv2.VideoWriter", "savefig"]


# ----------------------------------------------------------------------------- the rule
def test_a_new_file_is_written_whole_and_recorded_then_replaced(tmp_path):
    target = tmp_path / "out.json"
    write_gate.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert write_gate.written_by_project(target)
    write_gate.write_json(target, {"a": 2})  # this project's: replaced
    assert json.loads(target.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == [write_gate.RECORD_NAME, "out.json"]


@pytest.mark.parametrize("change", ["user_file", "edited", "edited_same_size"])
def test_a_file_of_the_users_is_never_replaced(tmp_path, change):
    target = tmp_path / "settings.json"
    if change == "user_file":
        target.write_text('{"mine": true}')
    else:
        write_gate.write_text(target, '{"theirs": 1}')
        target.write_text('{"mine": 2}' if change == "edited" else '{"mine":  1}')
        os.utime(target, ns=(1, 1))  # another time than recorded: the content decides
    before = target.read_bytes()
    with pytest.raises(UserError) as exc:
        write_gate.write_json(target, {"x": 1}, "--stats_json")
    message = str(exc.value)
    assert str(target) in message and "left alone" in message and "--stats_json" in message and "\n" not in message
    assert ("changed since" in message) == (change != "user_file")
    assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_inputs_and_paths_through_them_are_refused(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "meta.json").write_text("{}")
    link = tmp_path / "link"
    link.symlink_to(data)
    write_gate.protect_inputs([data])
    try:
        for target, relation in ((data / "meta.json", "lies inside"), (link / "new.json", "lies inside"), (data, "is")):
            with pytest.raises(UserError, match=relation):
                write_gate.write_text(target, "x", "--json")
        with pytest.raises(UserError, match="contains"):
            write_gate.make_folder(tmp_path, "--output")
    finally:
        write_gate._INPUTS.set(())
    assert tree(data) == {"meta.json": b"{}"}


def test_a_folder_a_symlink_and_a_symlink_loop_are_refused(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "real.txt").write_text("mine")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for target, needle in ((tmp_path / "folder", "is a folder"), (tmp_path / "alias.txt", "symbolic link"),
                           (tmp_path / "loop" / "x.json", "symbolic-link loop")):
        with pytest.raises(UserError, match=needle):
            write_gate.write_text(target, "x", "--json")
    assert (tmp_path / "real.txt").read_text() == "mine"


@pytest.mark.parametrize("code, advice", [(errno.ENOSPC, "free disk space"), (errno.EROFS, "read-only"), (errno.EACCES, "permissions"),
                                          (errno.ELOOP, "loop")])
def test_an_os_error_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch, code, advice):
    target = tmp_path / "report.md"
    write_gate.write_text(target, "before")

    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(write_gate.os, "replace", failing)
    with pytest.raises(UserError) as exc:
        write_gate.write_text(target, "after", "--markdown")
    message = str(exc.value)
    assert str(target) in message and os.strerror(code) in message and advice in message and "previous file is intact" in message
    assert "\n" not in message and target.read_text() == "before"
    assert sorted(p.name for p in tmp_path.iterdir()) == [write_gate.RECORD_NAME, "report.md"]


def test_torch_saves_failed_write_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    from model.checkpoint import atomic_save, safe_load

    target = tmp_path / "w.pth"
    atomic_save({"w": torch.ones(2)}, target)

    def full(obj, f, *args, **kwargs):
        f.write(b"PK partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError) as exc:
        atomic_save({"w": torch.zeros(2)}, target, "TARGET")
    assert "disk is probably full" in str(exc.value) and "free disk space" in str(exc.value) and "\n" not in str(exc.value)
    monkeypatch.undo()
    assert torch.equal(safe_load(target)["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [write_gate.RECORD_NAME, "w.pth"]


def test_remove_deletes_only_what_this_project_wrote(tmp_path):
    ours, theirs = tmp_path / "ours.bin", tmp_path / "theirs.bin"
    write_gate.write_bytes(ours, b"1")
    theirs.write_bytes(b"2")
    write_gate.remove(ours)
    with pytest.raises(UserError, match="not written by this project"):
        write_gate.remove(theirs)
    assert not ours.exists() and theirs.read_bytes() == b"2"
    assert "ours.bin" not in json.loads((tmp_path / write_gate.RECORD_NAME).read_text())["files"]


def test_the_repositorys_report_folders_are_the_projects_own():
    assert write_gate.is_owned_folder(ROOT / "docs" / "evidence") and write_gate.is_owned_folder(ROOT / "benchmarks")
    assert not write_gate.is_owned_folder(ROOT / "docs")


# ----------------------------------------------------------------------------- the cases, through the entry points
@pytest.fixture(scope="module")
def jf_folders(tmp_path_factory):
    """A ground-truth folder (3 sequences of 3 frames) and a prediction folder holding the same masks."""
    from datasets.synthetic import write_davis2017

    root = tmp_path_factory.mktemp("jf")
    write_davis2017(root / "DAVIS", seed=3, num_videos=3, num_frames=3, height=32, width=48, splits=("val",))
    gt = root / "DAVIS/2017/trainval/Annotations/480p"
    return gt


def jf_main(*argv: str, capsys) -> tuple[int, list[str], str]:
    """``scripts.evaluate_jf.main``, which returns its exit code."""
    from scripts import evaluate_jf

    code = evaluate_jf.main(list(argv))
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def test_evaluate_jf_never_replaces_the_users_csv_nor_writes_into_the_ground_truth(jf_folders, tmp_path, capsys):
    gt = jf_folders
    pred = tmp_path / "P"
    shutil.copytree(gt, pred)
    (pred / "global_results.csv").write_text("the user's own scores")
    gt_before, pred_before = tree(gt), tree(pred)
    code, lines, _ = jf_main(str(gt), str(pred), "--processes", "1", capsys=capsys)
    assert_refused(code, lines, str(pred / "global_results.csv"), "not written by this project", "--csv_dir")
    for argv, needle in (([str(gt), str(gt)], "lies inside the input"),
                         ([str(gt), str(pred), "--csv_dir", str(gt / "sub")], "lies inside the input"),
                         ([str(gt), str(pred), "--csv_dir", str(tmp_path / "c"), "--json", str(gt / "jf.json")], "lies inside the input")):
        code, lines, _ = jf_main(*argv, "--processes", "1", capsys=capsys)
        assert_refused(code, lines, needle)
    assert tree(gt) == gt_before and tree(pred) == pred_before
    # the project's own CSVs are replaced on the next run
    for _ in range(2):
        code, _, _ = jf_main(str(gt), str(pred), "--csv_dir", str(tmp_path / "csv"), "--processes", "1", capsys=capsys)
        assert code == 0
    assert (tmp_path / "csv" / "global_results.csv").read_text().startswith("J&F-Mean")


def test_export_weights_never_turns_a_users_file_into_a_zip(tmp_path, capsys):
    from scripts import export_weights
    from scripts.make_random_checkpoint import main as make_checkpoint

    src = tmp_path / "src.pth"
    make_checkpoint(["--config", "lite", "--out", str(src)])
    important = tmp_path / "important.txt"
    important.write_text("my notes")
    before = src.read_bytes()
    code, lines, _ = call(export_weights.main, str(src), str(important), capsys=capsys)
    assert_refused(code, lines, str(important), "not written by this project", "TARGET")
    code, lines, _ = call(export_weights.main, str(src), str(src), capsys=capsys)
    assert_refused(code, lines, "is the input")
    assert important.read_text() == "my notes" and src.read_bytes() == before
    out = tmp_path / "out.pth"
    for _ in range(2):  # its own export is replaced
        code, _, _ = call(export_weights.main, str(src), str(out), capsys=capsys)
        assert code == 0


def test_export_weights_on_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, capsys, monkeypatch):
    from scripts import export_weights
    from scripts.make_random_checkpoint import main as make_checkpoint

    src, out = tmp_path / "src.pth", tmp_path / "out.pth"
    make_checkpoint(["--config", "lite", "--out", str(src)])
    assert call(export_weights.main, str(src), str(out), capsys=capsys)[0] == 0
    before = out.read_bytes()
    real = torch.save

    def full(obj, f, *args, **kwargs):
        real({"partial": 1}, f)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/3: file write failed")

    monkeypatch.setattr(torch, "save", full)
    code, lines, _ = call(export_weights.main, str(src), str(out), "--half", capsys=capsys)
    assert_refused(code, lines, str(out), "disk is probably full", "previous file is intact")
    assert out.read_bytes() == before and not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("flag", ["source", "--load_model", "--load_network", "--model"])
def test_a_folder_as_the_checkpoint_names_the_commands_own_flag(tmp_path, capsys, flag):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    if flag == "source":
        from scripts import export_weights

        code, lines, _ = call(export_weights.main, str(folder), str(tmp_path / "o.pth"), capsys=capsys)
        assert_refused(code, lines, str(folder), "is a folder", "SOURCE")
    elif flag == "--model":
        import eval_generic

        frames, masks = generic_clip(tmp_path)
        code, lines, _ = call(eval_generic.main, "--video", str(frames), "--masks", str(masks), "--model", str(folder),
                              "--output", str(tmp_path / "o"), "--device", "cpu", capsys=capsys)
        assert_refused(code, lines, str(folder), "is a folder", "--model")
    else:
        import train

        code, lines, _ = call(train.main, "--stage", "0", flag, str(folder), "--device", "cpu", capsys=capsys)
        assert_refused(code, lines, str(folder), "is a folder", flag)
        assert "--model " not in lines[0]


def test_a_damaged_zip_checkpoint_is_called_damaged_not_unsafe(tmp_path):
    import io
    import zipfile

    from model.checkpoint import safe_load

    good = io.BytesIO()
    torch.save({"w": torch.arange(10.0)}, good)
    damaged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good.getvalue())) as src, zipfile.ZipFile(damaged, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info, data[:10] + b"\x00garbage" + data[18:] if info.filename.endswith("data.pkl") else data)
    path = tmp_path / "damaged.pth"
    path.write_bytes(damaged.getvalue())
    with pytest.raises(UserError) as exc:
        safe_load(path)
    assert "damaged" in str(exc.value) and "run code" not in str(exc.value) and "\n" not in str(exc.value)


def generic_clip(root: Path) -> tuple[Path, Path]:
    """Frames and annotations of one generated 3-frame video."""
    from datasets.synthetic import write_davis2017

    write_davis2017(root / "D", seed=1, num_videos=1, num_frames=3, height=32, width=48, splits=("val",))
    name = next((root / "D/2017/trainval/JPEGImages/480p").iterdir()).name
    return root / "D/2017/trainval/JPEGImages/480p" / name, root / "D/2017/trainval/Annotations/480p" / name


def test_a_symlink_loop_as_model_or_output_is_one_line(tmp_path, capsys):
    import eval_generic

    frames, masks = generic_clip(tmp_path)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    from scripts.make_random_checkpoint import main as make_checkpoint

    ckpt = tmp_path / "lite.pth"
    make_checkpoint(["--config", "lite", "--out", str(ckpt)])
    for model, output, needle in ((loop, tmp_path / "o", "symbolic-link loop"), (ckpt, loop / "out", "symbolic-link loop")):
        code, lines, _ = call(eval_generic.main, "--video", str(frames), "--masks", str(masks), "--model", str(model),
                              "--output", str(output), "--device", "cpu", capsys=capsys)
        assert_refused(code, lines, needle)


def test_threads_above_the_cpus_warn_in_one_line(capsys):
    from util.hardware import available_cpus, set_threads

    before = torch.get_num_threads()
    try:
        set_threads(available_cpus() + 62)
    finally:
        torch.set_num_threads(before)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("warning: --threads") and f"{available_cpus()} CPU(s)" in err[0]
    set_threads(1)
    torch.set_num_threads(before)
    assert capsys.readouterr().err == ""


def test_stats_json_never_replaces_the_datasets_meta_nor_a_users_json(tmp_path, capsys):
    import eval_youtube
    from datasets.synthetic import write_youtube
    from scripts.make_random_checkpoint import main as make_checkpoint

    write_youtube(tmp_path / "yv", seed=1, split="valid", num_videos=1, num_frames=3, height=32, width=48)
    ckpt = tmp_path / "lite.pth"
    make_checkpoint(["--config", "lite", "--out", str(ckpt)])
    meta = tmp_path / "yv/valid/meta.json"
    settings = tmp_path / "settings.json"
    settings.write_text('{"my": "settings"}')
    before = tree(tmp_path / "yv")
    for target, needle in ((meta, "not written by this project"), (settings, "not written by this project"),
                           (ckpt, "is the input"), (tmp_path / "yv/valid", "contains the input"), (tmp_path, "contains the input")):
        code, lines, _ = call(eval_youtube.main, "--yv", str(tmp_path / "yv"), "--model", str(ckpt), "--output", str(tmp_path / "o"),
                              "--device", "cpu", "--stats_json", str(target), capsys=capsys)
        assert_refused(code, lines, str(target), needle)
    assert tree(tmp_path / "yv") == before and settings.read_text() == '{"my": "settings"}'
    assert not (tmp_path / "o").exists()  # refused before any work


def test_the_server_zip_holds_no_path_of_this_machine_and_a_foreign_archive_is_still_refused(tmp_path, capsys):
    import zipfile

    import eval_davis
    from scripts.make_random_checkpoint import main as make_checkpoint
    from tests.test_completion import call as run_main

    frames, _ = generic_clip(tmp_path)
    ckpt = tmp_path / "lite.pth"
    make_checkpoint(["--config", "lite", "--out", str(ckpt)])
    argv = ["--davis", str(tmp_path / "D/2017"), "--model", str(ckpt), "--output", str(tmp_path / "run"), "--zip", "--device", "cpu"]
    assert run_main(eval_davis.main, *argv, capsys=capsys)[0] == 0
    archive = tmp_path / "run.zip"
    data = archive.read_bytes()
    assert zipfile.ZipFile(archive).comment == b"qdmn submission archive"
    for private in (str(tmp_path), str(Path.home()), os.getcwd()):
        assert private.encode() not in data
    assert run_main(eval_davis.main, *argv, capsys=capsys)[0] == 0  # its own archive is replaced
    assert archive.read_bytes() == data  # the same masks, the same bytes
    for foreign in (b"someone's archive", data[:-1] + b"!"):  # another file, or this project's archive changed since
        archive.write_bytes(foreign)
        code, lines, _ = run_main(eval_davis.main, *argv, capsys=capsys)
        assert_refused(code, lines, str(archive), "left alone")
        assert archive.read_bytes() == foreign
