"""Compare this project's DAVIS masks with those of the official QDMN code, pixel by pixel.

Usage (from the repository root; the official code is a user's clone of yongliu20/QDMN)::

    python -m scripts.compare_official --official_repo ~/src/QDMN --model saves/QDMN.pth \\
        --davis data/DAVIS/2017 --split val [--use_km] [--no_top] [--fix_eviction]

The official code compared is commit ``--official_commit`` (default: HEAD of the
official repository, ``evaluation.official.OFFICIAL_HEAD``, the code users clone). When
``--official_repo`` is a git clone (or a bare git directory) that commit is extracted from
it with ``git archive``, whatever is checked out; a folder without git metadata is copied
as it is and its commit is reported as unknown.

``--official_repo`` may also be a tar written by ``git archive`` (as
``benchmarks/gpu_check_prepare.sh`` writes one to carry to a GPU machine); its recorded
commit must be ``--official_commit``.

Both implementations run on ``--device`` (default the CPU), one after the other, in subprocesses:

* the official ``eval_davis.py`` (``eval_davis_2016.py`` with ``--year 2016``) runs from a
  temporary copy of the clone's ``.py`` files (the clone itself is never modified). A
  small ``sitecustomize.py``, put first on ``PYTHONPATH``, makes it run without
  internet: the ImageNet download behind ``pretrained=True`` returns a fresh torchvision
  ResNet-50 state dict (the checkpoint overwrites every weight anyway). On the CPU it also
  makes it run without CUDA: ``.cuda()`` and ``torch.cuda.synchronize()`` become no-ops,
  tensors created with ``device='cuda'`` are created on the CPU and ``torch.load`` maps to
  the CPU; with ``--device cuda`` the official code runs on the GPU as written;
* the memory settings are made equal on both sides: the copy's source text is patched
  (admission threshold ``score > …``, ``self.memory_thr = …``, ``mem_freq=…``, the QAM
  activation of ``Score``) where a value is given, and otherwise the value found in the
  official source is passed to this project. ``--fix_eviction`` also patches the known
  eviction defect of the official code (it deletes memory slot ``pos`` where slot 0 is
  the annotated frame; this project deletes the intended frame, i.e. slot ``pos + 1``);
* the frame-quality rule: the official DAVIS core divides a propagated frame's mean
  score by the annotated frame's non-zero mean; at HEAD the mean is over all objects
  (the zero filter of propagated frames is commented out), in the first published version
  (docs/OFFICIAL_AGREEMENT.md) over the non-zero ones. The script reads which from the
  source and passes ``--quality_mean all`` or ``nonzero`` (and ``--quality_base
  annotated``) to this project. ``--zero_filter on/off``
  patches that line of the copy; ``--project_quality_mean`` runs this project with
  another rule. Both exist to show that the comparison tells the rules apart;
* this project's ``eval_davis.py`` / ``eval_davis_2016.py`` then runs with the same flags,
  ``--official_kernels``, the same device and the same number of CPU threads (``--threads``,
  default 1): a random network's probabilities are nearly flat, so a different reduction
  order alone flips a few pixels.

The official masks hold object *indices* (1..K in the order of the sorted first-frame
labels); they are mapped back to labels before the comparison. The script prints the
share of equal pixels overall and per sequence, and exits 0 when the agreement (overall,
or the worst sequence with ``--criterion min``) reaches ``--min_agreement``, 1 when it
does not, and 2 when a run fails. Each run's ``FPS:`` line is reported too (``--json``: ``fps``);
the official code times its network and mask upsampling, this project's its whole loop
(reading frames and writing masks included).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from evaluation.official import (
    OFFICIAL_HEAD,
    CompareError,
    OfficialSettings,
    SequenceResult,
    copy_official,
    git_dir,
    patch_official,
    sitecustomize,
)
from util import write_gate
from util.image_io import load_mask

ROOT = Path(__file__).resolve().parents[1]

ACTIVATIONS = ("relu", "sigmoid")
QUALITY_MEANS = ("all", "nonzero")
# ---------------------------------------------------------------------------- running
def first_annotation(davis: Path, year: int, split: str) -> Path:
    """The first sequence's first-frame annotation (palette fallback for the official run)."""
    if year == 2016:
        imset = davis / ".." / "2017" / "trainval" / "ImageSets" / "2016" / f"{split}.txt"
        root = davis
    else:
        folder = "trainval" if split == "val" else "test-dev"
        imset = davis / folder / "ImageSets" / "2017" / ("val.txt" if split == "val" else "test-dev.txt")
        root = davis / folder
    names = [line.strip() for line in imset.read_text().splitlines() if line.strip()] if imset.is_file() else []
    if not names:
        raise CompareError(f"{imset}: sequence list not found or empty; check --davis and --year")
    return root / "Annotations" / "480p" / names[0] / "00000.png"


def run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, label: str) -> None:
    print(f"[{label}] {' '.join(cmd)}", flush=True)
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise CompareError(f"{label} run failed (exit {proc.returncode}); log {log}:\n{tail}")


def thread_env(threads: int) -> dict[str, str]:
    """The environment with ``threads`` intra-op threads (the same float reduction order on both sides)."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def run_official(args: argparse.Namespace, copy: Path, shims: Path, output: Path, log: Path) -> None:
    env = thread_env(args.threads)
    env["PYTHONPATH"] = os.pathsep.join([str(shims), str(copy), *filter(None, [env.get("PYTHONPATH")])])
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    env["QDMN_COMPARE_PALETTE"] = str(first_annotation(args.davis, args.year, args.split))
    if args.year == 2016:
        cmd = [sys.executable, "eval_davis_2016.py"]
    else:
        cmd = [sys.executable, "eval_davis.py", "--split", args.split]
        if args.use_km:
            cmd.append("--use_km")
    cmd += ["--model", str(args.model), "--davis", str(args.davis), "--output", str(output)]
    if args.no_top:
        cmd.append("--no_top")
    run(cmd, copy, env, log, "official")


def run_project(args: argparse.Namespace, settings: OfficialSettings, output: Path, log: Path) -> None:
    script = "eval_davis_2016.py" if args.year == 2016 else "eval_davis.py"
    cmd = [sys.executable, str(ROOT / script), "--model", str(args.model), "--davis", str(args.davis), "--output", str(output)]
    if args.year != 2016:
        cmd += ["--split", args.split]
        if args.use_km:
            cmd.append("--use_km")
    if args.no_top:
        cmd.append("--no_top")
    cmd += [
        "--official_kernels",  # the official arithmetic: NCHW and the dense top-k readout
        "--device",
        args.device,
        "--threshold",
        repr(settings.threshold),
        "--capacity",
        str(settings.capacity),
        "--mem_freq",
        str(settings.mem_freq),
        "--qam_activation",
        settings.qam_activation,
        "--quality_mean",
        args.project_quality_mean or settings.quality_mean,
        "--quality_base",
        "annotated",
        "--threads",
        str(args.threads),
    ]
    run(cmd, ROOT, thread_env(args.threads), log, "project")


def reported_fps(log: Path) -> Optional[float]:
    """The last ``FPS:`` a run printed (both eval scripts end with one), or None."""
    found = re.findall(r"^FPS:\s*([0-9.eE+-]+)", log.read_text(errors="replace"), re.M) if log.is_file() else []
    try:
        return float(found[-1]) if found else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------- comparing
def official_labels(davis: Path, year: int, split: str, sequence: str) -> Optional[np.ndarray]:
    """Index -> label map of the official 2017 output (None for 2016: both are 0/255)."""
    if year == 2016:
        return None
    folder = "trainval" if split == "val" else "test-dev"
    first = load_mask(davis / folder / "Annotations" / "480p" / sequence / "00000.png")
    labels = [int(v) for v in np.unique(first) if v != 0]
    return np.asarray([0, *labels], dtype=np.int64)


def compare_outputs(official: Path, project: Path, args: argparse.Namespace) -> list[SequenceResult]:
    sequences = sorted(p.name for p in official.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not sequences:
        raise CompareError(f"{official}: the official run wrote no sequence")
    results = []
    for seq in sequences:
        lut = official_labels(args.davis, args.year, args.split, seq)
        frames = sorted(p.name for p in (official / seq).glob("*.png"))
        total = agree = 0
        first_bad = None
        for name in frames:
            ours_path = project / seq / name
            if not ours_path.is_file():
                raise CompareError(f"{ours_path}: missing from the project's output")
            theirs = load_mask(official / seq / name).astype(np.int64)
            if lut is not None:
                if theirs.max() >= len(lut):
                    raise CompareError(f"{official / seq / name}: object index {theirs.max()} beyond the {len(lut) - 1} labels")
                theirs = lut[theirs]
            ours = load_mask(ours_path).astype(np.int64)
            if ours.shape != theirs.shape:
                raise CompareError(f"{seq}/{name}: size {ours.shape} (project) vs {theirs.shape} (official)")
            same = int((ours == theirs).sum())
            total += ours.size
            agree += same
            if same != ours.size and first_bad is None:
                first_bad = name
        extra = sorted({p.name for p in (project / seq).glob("*.png")} - set(frames))
        if extra:
            raise CompareError(f"{project / seq}: frames the official run did not write: {extra[:3]}")
        results.append(SequenceResult(seq, len(frames), total, agree, first_bad))
    missing = sorted({p.name for p in project.iterdir() if p.is_dir() and not p.name.startswith(".")} - set(sequences))
    if missing:
        raise CompareError(f"sequences only the project wrote: {missing}")
    return results


def report(results: list[SequenceResult], settings: OfficialSettings, project_quality_mean: Optional[str] = None) -> tuple[float, float]:
    total = sum(r.pixels for r in results)
    agree = sum(r.agreeing for r in results)
    overall = agree / total if total else 1.0
    worst = min(r.agreement for r in results)
    print(f"official code: commit {settings.commit}")
    print(
        f"settings: threshold {settings.threshold}, capacity {settings.capacity}, mem_freq {settings.mem_freq}, "
        f"QAM {settings.qam_activation}, official eviction {'fixed' if settings.eviction_fixed else 'as released'}, "
        f"quality mean official {settings.quality_mean} / project {project_quality_mean or settings.quality_mean}"
    )
    for p in settings.patches:
        print(f"  official copy patched: {p}")
    width = max(len(r.name) for r in results)
    for r in results:
        where = f"  first difference at {r.first_differing_frame}" if r.first_differing_frame else ""
        print(f"  {r.name:<{width}}  {r.frames:4d} frames  agreement {100 * r.agreement:9.5f}%{where}")
    print(f"overall agreement {100 * overall:.5f}% ({agree}/{total} pixels), minimum per sequence {100 * worst:.5f}%")
    return overall, worst


# ---------------------------------------------------------------------------- main
def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--official_repo",
        type=Path,
        default=os.environ.get("QDMN_OFFICIAL_REPO"),
        help="a clone, bare git directory or git archive tar of yongliu20/QDMN (default: $QDMN_OFFICIAL_REPO)",
    )
    parser.add_argument(
        "--official_commit",
        default=OFFICIAL_HEAD,
        help=f"official commit to run when the repo has git metadata (default {OFFICIAL_HEAD}, HEAD)",
    )
    parser.add_argument("--model", required=True, type=Path, help="bare state dict in the official layout")
    parser.add_argument("--davis", required=True, type=Path, help="DAVIS/2017 root (DAVIS/2016 with --year 2016)")
    parser.add_argument("--split", default="val", choices=("val", "testdev"), help="2017 split (2016: val)")
    parser.add_argument("--year", type=int, default=2017, choices=(2016, 2017))
    parser.add_argument("--use_km", action="store_true", help="kernelised memory read (2017 only, as officially)")
    parser.add_argument("--no_top", action="store_true", help="full softmax instead of top-50")
    parser.add_argument("--threshold", type=float, default=None, help="admission threshold for both (default: the official's)")
    parser.add_argument("--capacity", type=int, default=None, help="memory_thr for both (default: the official's)")
    parser.add_argument("--mem_freq", type=int, default=None, help="admission gap for both (default: the official's)")
    parser.add_argument(
        "--qam_activation", choices=ACTIVATIONS, default=None, help="QAM activation after fc1/fc2 for both (default: the official source's)"
    )
    parser.add_argument(
        "--fix_eviction",
        action="store_true",
        help="patch the official eviction to delete the evicted frame, as this project does",
    )
    parser.add_argument(
        "--zero_filter",
        choices=("as_released", "on", "off"),
        default="as_released",
        help="enable the official DAVIS core's zero filter of propagated frames' scores",
    )
    parser.add_argument(
        "--project_quality_mean",
        choices=QUALITY_MEANS,
        default=None,
        help="run this project with this --quality_mean (default: the official copy's rule)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where both implementations run")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each run")
    parser.add_argument("--min_agreement", type=float, default=0.999, help="pass mark, a share in [0, 1]")
    parser.add_argument(
        "--criterion", choices=("overall", "min"), default="overall", help="judge the overall agreement or the worst sequence's"
    )
    parser.add_argument("--work_dir", type=Path, default=None, help="keep the copy, outputs and logs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.year == 2016 and args.use_km:
        parser.error("--use_km: the official eval_davis_2016.py has no kernelised read")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, not {args.threads}")
    if args.year == 2016 and args.split != "val":
        parser.error("--year 2016 has only the val split")
    if args.official_repo is None:
        parser.error("--official_repo (or $QDMN_OFFICIAL_REPO) is required: a clone of yongliu20/QDMN")
    args.official_repo = Path(args.official_repo)
    for name in ("official_repo", "model", "davis"):
        setattr(args, name, getattr(args, name).expanduser().resolve())
    is_code = args.official_repo.is_file() or git_dir(args.official_repo) is not None
    if not is_code and not (args.official_repo / "inference_core.py").is_file():
        parser.error(f"--official_repo {args.official_repo}: no inference_core.py; pass a clone of yongliu20/QDMN")
    if not args.model.is_file():
        parser.error(f"--model {args.model}: file not found")
    if not args.davis.is_dir():
        parser.error(f"--davis {args.davis}: folder not found")
    return args


def compare(args: argparse.Namespace, work: Path) -> tuple[float, float, list[SequenceResult], OfficialSettings, dict]:
    copy, shims = work / "official_copy", work / "shims"
    for d in (copy, shims, work / "out_official", work / "out_project"):
        if d.exists():
            shutil.rmtree(d)
    copy.parent.mkdir(parents=True, exist_ok=True)
    commit = copy_official(args.official_repo, copy, args.official_commit)
    settings = patch_official(copy, args.threshold, args.capacity, args.mem_freq, args.qam_activation, args.fix_eviction, args.zero_filter)
    settings.commit = commit
    shims.mkdir(parents=True)
    (shims / "sitecustomize.py").write_text(sitecustomize(args.device))
    run_official(args, copy, shims, work / "out_official", work / "official.log")
    run_project(args, settings, work / "out_project", work / "project.log")
    results = compare_outputs(work / "out_official", work / "out_project", args)
    overall, worst = report(results, settings, args.project_quality_mean)
    fps = {"official": reported_fps(work / "official.log"), "project": reported_fps(work / "project.log")}
    print(f"FPS on {args.device}: official {fps['official']}, project (--official_kernels) {fps['project']}")
    return overall, worst, results, settings, fps


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    temp = None
    if args.work_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="qdmn_compare_")
        work = Path(temp.name)
    else:
        work = args.work_dir.expanduser().resolve()
        work.mkdir(parents=True, exist_ok=True)
    try:
        overall, worst, results, settings, fps = compare(args, work)
    except CompareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if temp is not None:
            temp.cleanup()
    if args.json is not None:
        payload = {
            "overall": overall,
            "minimum": worst,
            "settings": asdict(settings),
            "device": args.device,
            "fps": fps,
            "sequences": [{**asdict(r), "agreement": r.agreement} for r in results],
        }
        write_gate.write_json(args.json, payload, "--json", indent=2)
    score = overall if args.criterion == "overall" else worst
    passed = score >= args.min_agreement
    print(
        f"{'PASS' if passed else 'FAIL'}: {args.criterion} agreement {100 * score:.5f}% "
        f"{'>=' if passed else '<'} {100 * args.min_agreement:.3f}%"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
