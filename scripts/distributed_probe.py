"""Start a process group the way ``train.py`` does, even for one rank, and exercise its collectives.

    torchrun --standalone --nproc_per_node 1 -m scripts.distributed_probe RESULT.json [--device auto]

``train.py`` starts no process group for a single process, so ``torchrun --nproc_per_node 1
train.py`` alone never reaches NCCL; one GPU cannot hold two NCCL ranks either. This probe
resolves the rank's device as ``train.py`` does (``cuda:LOCAL_RANK``), starts the group
through ``training.runtime.init_distributed`` (NCCL on CUDA, gloo on the CPU) and runs the
collectives training uses (all_reduce, all_gather_object, broadcast_object_list, barrier).
Rank 0 writes RESULT.json (docs/GPU_CHECK.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from training.hyper_para import parse_config
from training.runtime import DistEnv, init_distributed, resolve_env
from util.errors import exit_on_user_error
from util.write_gate import write_json


class AlwaysGrouped(DistEnv):
    """A rank that starts a process group even when it is alone."""

    @property
    def distributed(self) -> bool:
        return True


def probe(env: DistEnv) -> dict[str, Any]:
    start = time.perf_counter()
    init_distributed(AlwaysGrouped(**asdict(env)))
    started = time.perf_counter() - start
    try:
        value = torch.full((4,), float(env.rank + 1), device=env.device)
        dist.all_reduce(value)
        expected = env.world_size * (env.world_size + 1) / 2
        gathered: list[Any] = [None] * env.world_size
        dist.all_gather_object(gathered, {"rank": env.rank, "device": str(env.device)})
        box = [f"from rank {env.rank}"]
        dist.broadcast_object_list(box, src=0)
        dist.barrier()
        backend = dist.get_backend()
    finally:
        dist.destroy_process_group()
    result: dict[str, Any] = {
        "backend": str(backend),
        "world_size": env.world_size,
        "rank": env.rank,
        "device": str(env.device),
        "init_seconds": started,
        "all_reduce_ok": bool(torch.all(value.cpu() == expected)),
        "all_gather": gathered,
        "broadcast": box[0],
    }
    if env.device.type == "cuda":
        version = torch.cuda.nccl.version()  # a tuple; an int in old releases
        result["nccl_version"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
    return result


@exit_on_user_error
def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", type=Path, help="JSON file rank 0 writes")
    parser.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK when CUDA is available), cpu or cuda")
    args = parser.parse_args(argv)
    env = resolve_env(parse_config(["--device", args.device]))
    result = probe(env)
    if env.is_main:
        write_json(args.result, result, "RESULT.json")
    print(f"rank {env.rank}: {result['backend']} process group on {env.device}, all_reduce {'ok' if result['all_reduce_ok'] else 'WRONG'}")
    return 0 if result["all_reduce_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
