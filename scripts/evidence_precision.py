"""The fast float32 path and bfloat16 against the straightforward float32 path, on real
model outputs: SynthVOS val with the demonstration model.

Three runs of ``eval_davis.py`` on the same data: ``--official_kernels`` (NCHW, dense
top-k readout: the official arithmetic), the default fast float32 path, and ``--amp``
(bfloat16 on CPU, float16 on CUDA). Reports the pixel agreement of each with the first
and each run's wall time.

    python -m scripts.evidence_precision --model saves/qdmn_lite_synth.pth --root data/SynthVOS --out docs/evidence
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from util import write_gate
from util.agreement import mask_agreement
from util.errors import exit_on_user_error, run_python

ROOT = Path(__file__).resolve().parents[1]

RUNS = (  # (name, output folder, flags)
    ("float32, official kernels", "fp32_official", ["--official_kernels"]),
    ("float32, fast path", "fp32_fast", []),
    ("mixed precision (--amp)", "amp_fast", ["--amp"]),
)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--root", default="data/SynthVOS")
    p.add_argument("--out", default="docs/evidence")
    p.add_argument("--work", default="outputs/evidence_precision")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = ["--device", args.device] if args.device else []
    results = []
    for name, folder_name, flags in RUNS:
        folder = work / folder_name
        start = time.perf_counter()
        run_python(["eval_davis.py", "--model", args.model, "--davis", str(Path(args.root) / "val" / "2017"), "--output", str(folder),
             "--overwrite", *flags, *device], ROOT)
        results.append({"run": name, "flags": flags, "wall_s": time.perf_counter() - start, "folder": str(folder)})
    reference = Path(results[0]["folder"])
    for r in results[1:]:
        agreement = mask_agreement(reference, Path(r["folder"]))
        r.update(agreement=agreement["agreement"], differing_pixels=agreement["differing_pixels"], pixels=agreement["pixels"])
    lines = ["| run | wall time (s) | pixels equal to the official-kernel float32 run |", "|---|---:|---:|"]
    for r in results:
        share = "reference" if "agreement" not in r else f"{100 * r['agreement']:.4f} % ({r['differing_pixels']} of {r['pixels']} differ)"
        lines.append(f"| {r['run']} | {r['wall_s']:.0f} | {share} |")
    table = "\n".join(lines) + "\n"
    write_gate.write_text(out / "precision.md", table, "--out")
    write_gate.write_json(out / "precision.json", {"model": args.model, "runs": results}, "--out")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
