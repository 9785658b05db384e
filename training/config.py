"""The training run's settings, declared once: each field of :class:`TrainConfig` carries its flag (name, default,
type, help), ``training/hyper_para.py`` builds ``train.py``'s parser from them, and ``train.py`` passes the frozen
config (stage defaults applied), never the argument namespace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from model.config import PRESETS, QAM_ACTIVATIONS
from model.model import MEMORY_FORMATS
from util.arg_types import non_negative_int, plain_name, positive_float, positive_int

DEFAULT_SEED = 14159265
DEFAULT_SAVE_EVERY = 50000


@dataclass(frozen=True)
class Flag:
    """How a field is given on the command line: argparse's ``add_argument`` options, in its group of the help."""

    help: str
    group: Optional[str] = None  # None: the parser's own options
    names: tuple[str, ...] = ()  # default: --<field name>
    hidden: bool = False  # accepted, not shown in --help
    options: dict[str, Any] = field(default_factory=dict)  # default, type (a util.arg_types validator), choices, action, nargs


def flag(help: str, group: Optional[str] = None, names: tuple[str, ...] = (), hidden: bool = False, **options: Any) -> Any:
    """A :class:`TrainConfig` field given by a flag."""
    return field(metadata={"flag": Flag(help, group, names, hidden, options)})


def switch(help: str, group: Optional[str] = None) -> Any:
    """A flag that is off unless given."""
    return flag(help, group, action="store_true")


def typed(check: Callable[[str], Any], default: Any, help: str, group: str, **options: Any) -> Any:
    return flag(help, group, type=check, default=default, **options)


DATA, TRAINING, MODEL, LOADING, LOGGING = "data", "training", "model", "loading", "logging and saving"


@dataclass(frozen=True)
class TrainConfig:
    """Every flag of ``train.py``, in the order of its help; ``single_object`` follows from ``--stage``."""

    benchmark: bool = switch("enable cudnn.benchmark")
    deterministic: bool = switch("use deterministic algorithms only")
    static_root: str = flag("static image sets (fss, DUTS-TR, DUTS-TE, ecssd, BIG_small, HRSOD_small)", DATA, default="data/static")
    bl_root: str = flag("BL30K root with JPEGImages/ and Annotations/", DATA, default="data/BL30K")
    yv_root: str = flag("YouTube-VOS root (uses train_480p/, else train/)", DATA, default="data/YouTube")
    davis_root: str = flag("DAVIS root (uses 2017/trainval/)", DATA, default="data/DAVIS")
    no_subset: bool = switch("stage 2: train on every video found, not only the official subset lists", DATA)
    size: int = typed(int, 384, "training crop size in pixels (a multiple of 16)", DATA)
    crop_width: Optional[int] = typed(int, None, "stages 1/2: crop width, a multiple of 16 (default: square crops of --size)", DATA)
    num_workers: Optional[int] = typed(non_negative_int, None, "data-loader processes per rank (default: from the device and CPUs)", DATA)
    threads: Optional[int] = typed(positive_int, None, "intra-op CPU threads per rank (default: from the device and CPUs)", DATA)
    stage: int = typed(int, 0, "0 static images, 1 BL30K, 2 DAVIS + YouTube-VOS", TRAINING, choices=(0, 1, 2))
    batch_size: int = flag("batch size per GPU (default per stage: 14 / 8 / 8)", TRAINING, ("-b", "--batch_size"),
                           type=positive_int, default=None)
    iterations: int = flag("iterations (default per stage: 160000 / 250000 / 150000)", TRAINING, ("-i", "--iterations"),
                           type=positive_int, default=None)
    steps: tuple[int, ...] = typed(positive_int, None, "LR decay iterations (default per stage: 250000 / 450000 / 70000)", TRAINING,
                                   nargs="*")
    lr: float = typed(positive_float, 2e-5, "initial learning rate", TRAINING)
    gamma: float = typed(positive_float, 0.1, "LR := LR * gamma at every decay step", TRAINING)
    seed: int = typed(non_negative_int, DEFAULT_SEED, "seed of the data order, augmentation and initialisation", TRAINING)
    amp: bool = switch("mixed precision: float16 on CUDA, bfloat16 on a CPU with native bfloat16", TRAINING)
    force_amp: bool = switch("with --amp: bfloat16 even on a CPU without native bfloat16 (slow)", TRAINING)
    memory_format: str = flag("tensor layout: channels_last, contiguous (NCHW) or auto (channels_last with --amp)", TRAINING,
                              choices=MEMORY_FORMATS, default="auto")
    train_bn: bool = switch("batch norm learns its statistics instead of keeping them frozen", TRAINING)
    compile: bool = switch("torch.compile the training step (compiled once, cached on disk)", TRAINING)
    device: str = flag("auto (cuda:LOCAL_RANK when CUDA is available, else cpu), cpu, cuda or cuda:N", TRAINING, default="auto")
    model_config: Optional[str] = flag("architecture (default: that of the loaded weights, else official)", MODEL,
                                       choices=sorted(PRESETS), default=None)
    qam_activation: Optional[str] = flag("QAM output activation (default: that of the loaded weights, else sigmoid)", MODEL,
                                         choices=QAM_ACTIVATIONS, default=None)
    imagenet_weights: Optional[str] = flag("torchvision ResNet weights file (default: the torch hub cache; never downloads)", MODEL,
                                           default=None)
    mirror_init: bool = switch("from scratch: start the memory side as a copy of the query side", MODEL)
    load_network: Optional[str] = flag("start from these network weights only (a stage-0 network loads into stages 1/2)", LOADING)
    load_model: Optional[str] = flag("resume exactly from a training checkpoint <id>_checkpoint.pth", LOADING)
    id: str = typed(plain_name, "NULL", "experiment id; NULL disables TensorBoard logging and saving", LOGGING)
    debug: bool = switch("log every iteration", LOGGING)
    save_every: int = typed(positive_int, DEFAULT_SAVE_EVERY, "write weights and a checkpoint every N iterations (and at the end)",
                            LOGGING)
    stop_at: Optional[int] = typed(positive_int, None, "save and exit after this iteration, keeping the schedule of -i", LOGGING)
    # set by torch.distributed.launch: --local-rank (PyTorch >= 2.0) or --local_rank (older)
    local_rank: Optional[int] = flag("the launcher's local rank", names=("--local_rank", "--local-rank"), hidden=True, type=int,
                                     default=None)
    single_object: bool  # stage 0; not a flag

    def hyperparameters(self) -> dict[str, Any]:
        """The flags as plain values (``steps`` a list), as checkpoints and logs record them."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
