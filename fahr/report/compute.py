"""What training costs: the FLOPs per image of each stage, counted by torch's ``FlopCounterMode`` on the profile's
own models (on the meta device, so nothing is computed), and the GPU time a profile would take at a stated model
FLOP utilisation (MFU) on common GPUs.

Counted, not guessed: every matmul, convolution and attention product of one forward pass (inference) and of one
forward + backward pass (a training step; the optimizer's update is ignored). Element-wise work (norms, GELU,
softmax) is not counted, as in the MFU convention of the PaLM paper (Chowdhery et al. 2022, appendix B).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from torch.utils import flop_counter

from fahr.core.config import Config
from fahr.models.heads import FaceAgeModel, FaceSurvivalModel
from fahr.models.vit import build_encoder
from fahr.train import common, pretrain

# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s, without sparsity).
GPUS = {"A100": 312e12, "H100/H200": 989e12, "L40S": 362e12, "RTX 4090": 165e12}  # SXM for A100, H100, H200
MFU = 0.40  # the target of the GPU benchmark for MAE pretraining in bf16
# The paper's data (PAPER.md): WebFace42M for pretraining (">40 M" photos; its name's 42 M used here), FaceAge's
# 743,152 training photos, FaceSurvival's 34,389 photos of cancer patients.
PAPER_PHOTOS = {"pretrain": 42_000_000, "faceage": 743_152, "facesurvival": 34_389}

_ATEN = torch.ops.aten
_CPU_ATTENTION = {  # the CPU kernel of scaled_dot_product_attention, which FlopCounterMode has no formula for
    _ATEN._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *a, out_shape=None, **kw: (
        flop_counter.sdpa_flop_count(q, k, v)
    ),
    _ATEN._scaled_dot_product_flash_attention_for_cpu_backward: lambda g, q, k, v, *a, out_shape=None, **kw: (
        flop_counter.sdpa_backward_flop_count(g, q, k, v)
    ),
}


def counted_flops(make: Callable[[], torch.nn.Module], loss: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor],
                  size: int, train: bool, batch: int = 2) -> float:  # fmt: skip
    """FLOPs per image of one forward pass (``train=False``) or one forward + backward pass of ``loss``, counted on
    the meta device with a batch of ``batch`` photos of ``size`` pixels."""
    with torch.device("meta"):
        model = make()
        model.train(train)
        x = torch.empty(batch, 3, size, size)
        with flop_counter.FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION) as counter:
            value = loss(model, x)
            if train:
                value.backward()
    return counter.get_total_flops() / batch


def stage_flops(cfg: Config) -> pd.DataFrame:
    """Per stage of the profile: forward and training-step FLOPs per image (GFLOP), counted."""
    spec, size = common.vit_spec(cfg), cfg.synth.image_size
    stages = {
        "MAE pretraining": (lambda: pretrain.build_mae(cfg), lambda m, x: m(x)[0]),
        "FaceAge fine-tuning": (lambda: FaceAgeModel(build_encoder(spec), 40.0, 20.0), lambda m, x: m(x).sum()),
        "FaceSurvival fine-tuning": (lambda: FaceSurvivalModel(build_encoder(spec)), lambda m, x: m(x).sum()),
    }
    rows = []
    for stage, (make, loss) in stages.items():
        rows.append({"stage": stage, "forward GFLOP/image": counted_flops(make, loss, size, False) / 1e9,
                     "training step GFLOP/image": counted_flops(make, loss, size, True) / 1e9})  # fmt: skip
    return pd.DataFrame(rows).set_index("stage")


def images_seen(cfg: Config, photos: dict[str, int]) -> dict[str, int]:
    """Photos each stage trains on over its whole schedule, with ``photos`` training photos per stage."""
    f, s = cfg.faceage, cfg.facesurvival
    return {
        "MAE pretraining": cfg.pretrain.epochs * photos["pretrain"],
        "FaceAge fine-tuning": f.stage1.epochs * photos["faceage"] + f.stage2.epochs * f.balanced_samples,
        "FaceSurvival fine-tuning": s.epochs * photos["facesurvival"],
    }


def projection(cfg: Config, photos: dict[str, int] = PAPER_PHOTOS, mfu: float = MFU) -> pd.DataFrame:
    """What a profile's training would take per stage, in GPU-hours on each GPU of ``GPUS`` (one column each) at
    ``mfu``, from the counted training-step FLOPs, the profile's epochs and ``photos`` (default: the paper's data).
    The last row sums the stages (its GFLOP/image is the mean over every photo trained on)."""
    flops = stage_flops(cfg)
    seen = pd.Series(images_seen(cfg, photos), dtype=float)
    table = pd.DataFrame({"photos trained on (M)": seen / 1e6,
                          "training step GFLOP/image": flops["training step GFLOP/image"]})  # fmt: skip
    table["total PFLOP"] = seen * table["training step GFLOP/image"] / 1e6
    for gpu, peak in GPUS.items():
        table[gpu] = table["total PFLOP"] * 1e15 / (peak * mfu) / 3600
    total = table.sum()
    total["training step GFLOP/image"] = total["total PFLOP"] * 1e6 / seen.sum()
    table.loc["all stages"] = total
    return table


def projection_sentence(cfg: Config, table: pd.DataFrame, mfu: float = MFU) -> str:
    """One sentence: what the profile's schedule takes on the fastest and the slowest GPU of the table."""
    total = table.loc["all stages"]
    hours = {gpu: total[gpu] for gpu in GPUS}
    fast, slow = min(hours, key=hours.get), max(hours, key=hours.get)
    share = table.loc["MAE pretraining", "total PFLOP"] / total["total PFLOP"]
    return (f"At {mfu:.0%} MFU, the {cfg.profile} profile's schedule ({cfg.pretrain.epochs} MAE epochs over "
            f"{PAPER_PHOTOS['pretrain'] / 1e6:.0f} M photos, FaceAge and FaceSurvival as configured) takes "
            f"{hours[fast]:,.0f} GPU-hours on {fast} GPUs and {hours[slow]:,.0f} on {slow} GPUs; MAE pretraining is "
            f"{share:.1%} of it.")  # fmt: skip


def achieved(cfg: Config, peak_gflops: float) -> pd.DataFrame:
    """This build's own training speed beside its counted FLOPs: images/s of each stage that trained here (from its
    ``done.json``), the GFLOP/s that makes, and its share of ``peak_gflops`` (a measured matmul peak of this machine:
    the utilisation reached, the CPU counterpart of MFU). Stages imported or not yet run are left out."""
    flops = stage_flops(cfg)["training step GFLOP/image"]
    speeds = {
        "MAE pretraining": ("pretrain", "images_per_s"),
        "FaceAge fine-tuning": ("faceage", "stage1_images_per_s"),
        "FaceSurvival fine-tuning": ("facesurvival", "images_per_s"),
    }
    columns = ["stage", "images/s", "training step GFLOP/image", "GFLOP/s", "share of the matmul peak"]
    rows = []
    for stage, (name, key) in speeds.items():
        try:
            speed = common.read_done(cfg.profile, name).get(key)
        except FileNotFoundError:
            continue
        if speed:
            work = speed * flops[stage]
            rows.append(dict(zip(columns, [stage, speed, flops[stage], work, work / peak_gflops], strict=True)))
    return pd.DataFrame(rows, columns=columns).set_index("stage")
