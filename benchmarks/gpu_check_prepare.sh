#!/usr/bin/env bash
# Prepare, on this machine, what benchmarks/gpu_check.sh needs on a GPU machine that reaches no package index:
#  .whl/      wheels of the packages missing there (progressbar2, gitpython, gdown and what they need), for
#             Python 3.12 on manylinux x86_64, pinned to the versions tested here;
#  .official/qdmn-official.tar   the official code's .py files at HEAD (git archive of
#             evaluation.official.OFFICIAL_HEAD), when QDMN_OFFICIAL_REPO names a clone or bare git
#             directory of yongliu20/QDMN.
# Both folders are ignored by git; name them in the device tool's carry list. docs/GPU_CHECK.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(progressbar2==4.6.0 python-utils==4.2.0 GitPython==3.2.1 gitdb==4.0.12 smmap==5.0.3 gdown==6.5.1
        beautifulsoup4==4.15.0 soupsieve==4.1.4 PySocks==1.7.1)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    PLATFORMS+=(--platform "$p")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
    -d .whl "${WHEELS[@]}"
ls -l .whl
if [ -n "${QDMN_OFFICIAL_REPO:-}" ]; then
    mkdir -p .official
    commit=$(python3 -c 'from evaluation.official import OFFICIAL_HEAD; print(OFFICIAL_HEAD)')
    git -C "$QDMN_OFFICIAL_REPO" archive --format=tar -o "$PWD/.official/qdmn-official.tar" "$commit" -- '*.py'
    echo "official code: .official/qdmn-official.tar (commit $(git get-tar-commit-id < .official/qdmn-official.tar))"
else
    echo "QDMN_OFFICIAL_REPO is not set: no official code to carry (the comparison with it will be skipped)"
fi
