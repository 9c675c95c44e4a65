"""Benchmarks (``make bench``): throughput tables written to ``artifacts/<profile>/bench/``.

Speed targets live here, never in timed tests. Each benchmark returns rows of
(benchmark, setting, value, unit); the table is written as CSV and Markdown with provenance beside it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib.cbook
import numpy as np
import pandas as pd
import timm
import torch
from PIL import Image
from skimage import data

from fahr import predict
from fahr.core import paths, provenance
from fahr.core.config import Config
from fahr.data import align, loading, shards
from fahr.data.synth import cohorts, world
from fahr.explain.attribution import attribute
from fahr.explain.faithfulness import deletion_insertion
from fahr.models.heads import FaceAgeModel, FaceSurvivalModel, save_checkpoint
from fahr.models.vit import build_encoder
from fahr.report import compute
from fahr.stats import concordance, cox
from fahr.train import common, pretrain
from fahr.train.loop import Trainer, read_metrics

Row = dict[str, Any]


def timed(fn: Callable[[], Any], min_seconds: float = 2.0, warmup: int = 1) -> tuple[float, int]:
    """Call ``fn`` after ``warmup`` calls until ``min_seconds`` have passed; return (seconds per call, calls)."""
    for _ in range(warmup):
        fn()
    calls, started = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls, calls


def matmul_gflops(sizes: tuple[int, ...] = (256, 512, 1024), min_seconds: float = 1.0) -> pd.DataFrame:
    """fp32 matrix-multiply throughput of this machine (GFLOP/s) with torch's current thread count."""

    rows = []
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        seconds, _ = timed(lambda a=a, b=b: a @ b, min_seconds=min_seconds)
        rows.append({"size": n, "threads": torch.get_num_threads(), "gflops": 2 * n**3 / seconds / 1e9})
    return pd.DataFrame(rows)


def bench_matmul(cfg: Config, min_seconds: float) -> list[Row]:
    table = matmul_gflops(min_seconds=min_seconds)
    return [
        {"benchmark": "matmul fp32", "setting": f"{r.size}x{r.size}, {r.threads} threads", "value": r.gflops,
         "unit": "GFLOP/s"}
        for r in table.itertuples()
    ]  # fmt: skip


def bench_vit_reference(cfg: Config, min_seconds: float) -> list[Row]:
    """A plain timm ViT (no project code) at 112x112: supervised step and inference images/s."""

    device = provenance.resolve_device(cfg.device)
    rows: list[Row] = []
    shapes = {"ViT-Tiny/16": dict(embed_dim=192, depth=12, num_heads=3)}
    if device == "cuda":
        shapes["ViT-Base/16"] = dict(embed_dim=768, depth=12, num_heads=12)
    batch = 64
    for label, shape in shapes.items():
        model = timm.models.vision_transformer.VisionTransformer(img_size=112, patch_size=16, num_classes=1, **shape)
        model.to(device)
        x = torch.randn(batch, 3, 112, 112, device=device)
        y = torch.randn(batch, 1, device=device)
        optim = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(model=model, x=x, y=y, optim=optim) -> None:
            optim.zero_grad(set_to_none=True)
            torch.nn.functional.l1_loss(model(x), y).backward()
            optim.step()

        def infer(model=model, x=x) -> None:
            with torch.inference_mode():
                model(x)

        for mode, fn in (("train step", step), ("inference", infer)):
            seconds, _ = timed(fn, min_seconds=min_seconds)
            if device == "cuda":
                torch.cuda.synchronize()
            rows.append({"benchmark": f"timm reference {label} 112x112", "setting": f"{mode}, batch {batch}, "
                         f"fp32, {device}", "value": batch / seconds, "unit": "images/s"})  # fmt: skip
    return rows


def bench_synth_render(cfg: Config, min_seconds: float) -> list[Row]:
    """FAHR-Synth faces per second in one process (the target is at least 200 at 112x112)."""

    rng = np.random.default_rng(0)
    people = cohorts.sample_people(rng, world.PRETRAIN[0], 256)
    rows = pd.concat([people, cohorts.sample_captures(rng, world.PRETRAIN[1], people)], axis=1).to_dict("records")
    rows = [cohorts.plain_row(r) for r in rows]
    out = []
    for size in sorted({cfg.synth.image_size, 112}):
        state = {"i": 0}

        def one(size=size, state=state) -> None:
            cohorts._render_row((rows[state["i"] % len(rows)], size))
            state["i"] += 1

        seconds, _ = timed(one, min_seconds=min_seconds, warmup=3)
        out.append({"benchmark": "FAHR-Synth render", "setting": f"{size}x{size}, 1 process, JPEG encode included",
                    "value": 1 / seconds, "unit": "faces/s"})  # fmt: skip
    return out


def bench_align(cfg: Config, min_seconds: float) -> list[Row]:
    """Face detection and five-point alignment of a real 512x512 photo (dlib HOG + 68 landmarks, OpenCV warp)."""

    photo = data.astronaut()
    detector = align.default_detector()
    seconds, _ = timed(lambda: align.align_image(photo, detector=detector), min_seconds=min_seconds)
    return [{"benchmark": "detect + align", "setting": "512x512 photo -> 112x112 crop, 1 process", "value": 1 / seconds,
             "unit": "photos/s"}]  # fmt: skip


def bench_align_workers(cfg: Config, min_seconds: float) -> list[Row]:
    """``fahr prepare`` / ``fahr align``'s parallel alignment (``align_paths``) with one process and with every core,
    on 512-600 px photos written as JPEG, pool start included (the pool's server is started once before): the best
    of two runs each, and their ratio, the scaling (target: at least 1.8x on 2 cores)."""
    hopper = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    astronaut = Image.fromarray(data.astronaut())
    cores = align.default_workers()
    rows: list[Row] = []
    name = "align_paths (fahr prepare, align)"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        single = timed(lambda: align.align_file(_photo(folder, 0, hopper, astronaut)), min_seconds=0.5)[0]
        n = max(32 * cores, int(6 * min_seconds / single))  # long enough for the pool start not to count
        photos = [_photo(folder, i, hopper, astronaut) for i in range(n)]
        align.align_paths(photos[:cores], folder / "warm-up", root=folder, workers=cores, progress=False)  # server up
        rate = {}
        for workers in sorted({1, cores}):
            seconds = []
            for attempt in range(2):
                started = time.perf_counter()
                align.align_paths(photos, folder / f"out-{workers}-{attempt}", root=folder, workers=workers,
                                  progress=False)  # fmt: skip
                seconds.append(time.perf_counter() - started)
            rate[workers] = n / min(seconds)
            rows.append({"benchmark": name, "setting": f"{n} photos, {workers} process(es) of {cores} cores, best of 2",
                         "value": rate[workers], "unit": "photos/s"})  # fmt: skip
    rows.append({"benchmark": name, "setting": f"{cores} processes / 1", "value": rate[cores] / rate[1],
                 "unit": "speed-up"})  # fmt: skip
    return rows


def _photo(folder: Path, i: int, hopper: Image.Image, astronaut: Image.Image) -> Path:
    path = folder / f"p{i:05d}.jpg"
    if not path.exists():
        (astronaut if i % 2 else hopper).save(path, quality=92)
    return path


def bench_data_formats(cfg: Config, min_seconds: float) -> list[Row]:
    """The training reader alone, loose files (``FaceDataset``) vs shards (``TrainingStream``), on the profile's
    photo size with the fine-tuning augmentation and the profile's DataLoader workers: the images/s a training step
    must stay below for the loader never to be the bottleneck."""
    size, batch, workers = cfg.synth.image_size, 32, cfg.num_workers
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = []
        for i in range(512):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                folder / f"f{i}.jpg", quality=92
            )
            table.append({"image_id": f"f{i}", "path": str(folder / f"f{i}.jpg"), "age": 20.0 + i % 60})
        table = pd.DataFrame(table)
        shards.write_shards(table, Path("/"), folder / "shards", maxcount=64)
        transform = loading.transforms("finetune", size)
        dataset = loading.FaceDataset(table, Path("/"), size, transform=transform, label_columns=("age",))
        kept = loading.FaceDataset(table, Path("/"), size, transform=transform, label_columns=("age",),
                                   keep_decoded=True)  # fmt: skip
        readers = {
            "loose files": lambda: torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True,
                                                               num_workers=workers, collate_fn=loading.collate),
            "loose files, decoded photos kept (after the first epoch)": lambda: torch.utils.data.DataLoader(
                kept, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=loading.collate),
            "shards": lambda: shards.StreamBatches(lambda start: shards.TrainingStream(
                folder / "shards", batch, len(table) // batch, epoch=0, workers=workers, start=start, size=size,
                transform=transform, label_columns=("age",), shuffle_buffer=256), workers),
        }  # fmt: skip
        for name, make in readers.items():
            seconds, _ = timed(lambda make=make: sum(len(b["age"]) for b in make()), min_seconds=min_seconds)
            rows.append({"benchmark": f"training reader, {name}", "setting": f"{size}x{size} JPEG, finetune "
                         f"augmentation, {workers} workers", "value": len(table) // batch * batch / seconds,
                         "unit": "images/s"})  # fmt: skip
    return rows


def bench_flops(cfg: Config, min_seconds: float) -> list[Row]:
    """FLOPs per image of each stage of the profile, counted (``fahr.report.compute``), forward and training step."""
    table = compute.stage_flops(cfg)
    return [
        {"benchmark": f"{stage} FLOPs", "setting": f"{cfg.profile} model, {cfg.synth.image_size}px, {column}",
         "value": 1000 * value, "unit": "MFLOP/image"}
        for stage, row in table.iterrows() for column, value in row.items()
    ]  # fmt: skip


def _steps_for(seconds_per_step: float, min_seconds: float) -> int:
    return max(3, int(min_seconds / max(seconds_per_step, 1e-3)))


def loop_images_per_s(cfg: Config, model: torch.nn.Module, loss_of, images: torch.Tensor, ages: torch.Tensor,
                      steps: int, compile_model: bool = False) -> float:  # fmt: skip
    """Training images/s of the project's loop over ``steps`` steps of one batch, eager or under ``torch.compile``
    (then ``steps`` more steps first, whose log window holds the compile and is left out)."""
    spec = common.train_spec(cfg, 1, len(images), 1e-4, 0.0, 0.05, checkpoint_every=None, log_every=steps)
    spec = replace(spec, compile_model=compile_model)
    data = [{"image": images, "age": ages}] * (2 * steps if compile_model else steps)
    with tempfile.TemporaryDirectory() as out:
        result = Trainer(model, spec, out, lambda m, b: (loss_of(m, b["image"], b["age"]), {}),
                         lambda e, r, w: data, progress=False).fit()  # fmt: skip
        windows = read_metrics(out, "train")["images_per_s"]
    return float(windows.iloc[-1] if compile_model else result.images_per_s)


def bench_training(cfg: Config, min_seconds: float) -> list[Row]:
    """The profile's models through the project's loop vs a plain timm + AdamW loop on the same config."""

    device = provenance.resolve_device(cfg.device)
    size, batch = cfg.synth.image_size, cfg.faceage.stage1.batch_size
    images = torch.rand(batch, 3, size, size)
    ages = torch.rand(batch) * 90
    rows: list[Row] = []

    peaks: dict[str, float] = {}

    def plain(model: torch.nn.Module, loss_of, label: str = "") -> float:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        model.to(device).train()
        optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x, y = images.to(device), ages.to(device)

        def step() -> None:
            optim.zero_grad(set_to_none=True)
            loss_of(model, x, y).backward()
            optim.step()

        seconds, _ = timed(step, min_seconds=min_seconds)
        if device == "cuda":
            peaks[label] = torch.cuda.max_memory_allocated() / 2**30
        return batch / seconds

    # torch.compile on GPUs only: on a CPU inductor's compile of the profile's ViT costs minutes, and no CPU profile
    # turns it on; the rows are there to decide whether the paper profile should (compile_model)
    compiled = device == "cuda"
    speeds: dict[tuple[str, str], float] = {}  # (step, loop) → images/s, for the FLOP utilisation
    age_loss = lambda m, x, y: torch.nn.functional.l1_loss(m(x), y)  # noqa: E731
    mae_loss = lambda m, x, y: m(x)[0]  # noqa: E731
    for label, make, loss_of in (
        ("FaceAge fine-tuning step", lambda: FaceAgeModel(build_encoder(common.vit_spec(cfg)), 40.0, 20.0), age_loss),
        ("MAE pretraining step", lambda: pretrain.build_mae(cfg), mae_loss),
    ):
        reference = plain(make(), loss_of, label)
        steps = _steps_for(batch / reference, min_seconds)
        ours = speeds[label, "project loop"] = loop_images_per_s(cfg, make(), loss_of, images, ages, steps)
        precision = cfg.precision if device == "cuda" else "fp32"
        setting = f"{cfg.profile} model, {size}x{size}, batch {batch}, {device}, {precision}"
        rows.append({"benchmark": f"{label}, project loop", "setting": setting, "value": ours, "unit": "images/s"})
        rows.append({"benchmark": f"{label}, plain timm + AdamW loop", "setting": setting, "value": reference,
                     "unit": "images/s"})  # fmt: skip
        rows.append(
            {"benchmark": f"{label}, project / plain", "setting": setting, "value": ours / reference, "unit": "ratio"}
        )
        if compiled:
            fast = loop_images_per_s(cfg, make(), loss_of, images, ages, steps, compile_model=True)
            speeds[label, "project loop, torch.compile"] = fast
            rows.append({"benchmark": f"{label}, project loop, torch.compile", "setting": setting, "value": fast,
                         "unit": "images/s"})  # fmt: skip
            rows.append({"benchmark": f"{label}, torch.compile / eager", "setting": setting, "value": fast / ours,
                         "unit": "ratio"})  # fmt: skip
    model = FaceAgeModel(build_encoder(common.vit_spec(cfg)), 40.0, 20.0).to(device).eval()

    def infer() -> None:
        with torch.inference_mode():
            model(images.to(device))

    seconds, _ = timed(infer, min_seconds=min_seconds)
    rows.append({"benchmark": "FaceAge inference", "setting": f"{cfg.profile} model, batch {batch}, {device}",
                 "value": batch / seconds, "unit": "images/s"})  # fmt: skip
    if device == "cuda":
        flops = compute.stage_flops(cfg)["training step GFLOP/image"] * 1e9  # counted, forward + backward
        peak = 989e12  # dense bf16 FLOP/s of an H100 / H200 (SXM)
        for (label, loop), speed in speeds.items():
            stage = label.removesuffix(" step")
            rows.append({"benchmark": f"{stage} model FLOP utilisation (MFU)", "setting": f"{cfg.profile}, "
                         f"{cfg.precision}, {loop}", "value": 100 * speed * flops[stage] / peak,
                         "unit": "% of 989 TFLOP/s"})  # fmt: skip
        rows += [{"benchmark": f"{label} peak GPU memory", "setting": f"{cfg.profile} model, batch {batch}",
                  "value": gib, "unit": "GiB"} for label, gib in peaks.items()]  # fmt: skip
    return rows


def bench_predict_photos(cfg: Config, min_seconds: float) -> list[Row]:
    """`fahr predict` end to end on real photos: read, detect, align, FaceAge and FaceSurvival, in batches."""

    spec = common.vit_spec(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        hopper = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
        photos = []
        for i in range(8):
            (Image.fromarray(data.astronaut()) if i % 2 else hopper).save(folder / f"p{i}.jpg")
            photos.append(folder / f"p{i}.jpg")
        extra = {"spec": dict(spec.__dict__), "init_age": 40.0, "age_scale": 20.0}
        save_checkpoint(folder / "age.pt", FaceAgeModel(build_encoder(spec), 40.0, 20.0), extra)
        save_checkpoint(folder / "risk.pt", FaceSurvivalModel(build_encoder(spec)), {"spec": dict(spec.__dict__)})
        device = provenance.resolve_device(cfg.device)
        run = lambda: predict.photos(photos, folder / "age.pt", folder / "risk.pt", device, progress=False)  # noqa: E731
        seconds, _ = timed(run, min_seconds=min_seconds)
    return [{"benchmark": "fahr predict end to end", "setting": f"512-600 px photos, align + both models, {device}",
             "value": len(photos) / seconds, "unit": "photos/s"}]  # fmt: skip


def bench_bootstrap(cfg: Config, min_seconds: float) -> list[Row]:
    """Paired bootstrap of Harrell's C for two scores: 1,000 resamples on 10,000 patients (issue target: seconds)."""

    result = concordance.benchmark(n=10_000, resamples=1000, seed=cfg.seed)
    setting = f"Harrell's C, 2 scores, {result['resamples']} resamples × {result['patients']} patients"
    return [
        {"benchmark": "concordance bootstrap", "setting": setting, "value": result["seconds"], "unit": "s"},
        {"benchmark": "concordance bootstrap", "setting": setting, "value": result["resamples_per_second"],
         "unit": "resamples/s"},
    ]  # fmt: skip


def bench_cox(cfg: Config, min_seconds: float) -> list[Row]:
    """One adjusted Cox model of the power simulation (FaceAge and FaceSurvival beyond the clinical factors on a
    simulated cohort A test split) fitted by lifelines (``cox.fit``, as the chapters do) and by
    ``cox.coefficients`` (what the simulation uses): fits per second."""
    from fahr.analysis import survival
    from fahr.report import power

    n = power.sizes(cfg)["A"]
    rng = np.random.default_rng(cfg.seed)
    accuracy = power.Accuracy(power.error_sd(7.0), power.error_sd(7.5), 0.35)
    frame = power.with_models(rng, power.patients(rng, "clinical-a", n), accuracy)
    frame = survival.scaled(frame, survival.scales(frame))
    covariates = [*survival.CLINICAL, survival.score_covariate("faceage", "FaceAge (per decade)", 10.0),
                  survival.score_covariate("facesurvival sd", "FaceSurvival (per SD)")]  # fmt: skip
    fits = {"lifelines (cox.fit)": lambda: cox.fit(frame, covariates, check_ph=False),
            "cox.coefficients": lambda: cox.coefficients(frame, covariates)}  # fmt: skip
    setting = f"{n} patients, {len(cox.design(frame, covariates).columns) - 2} parameters"
    rows: list[Row] = []
    for name, fn in fits.items():
        seconds, _ = timed(fn, min_seconds=min_seconds)
        rows.append({"benchmark": f"Cox fit, {name}", "setting": setting, "value": 1 / seconds, "unit": "fits/s"})
    return rows


def bench_saliency(cfg: Config, min_seconds: float) -> list[Row]:
    """Throughput of each saliency map (images/s) with a randomly initialised model of the profile's ViT, for
    ``make bench``: min(cfg.saliency.photos, 16) random photos at the profile's image size."""
    torch.manual_seed(cfg.seed)
    model = FaceAgeModel(build_encoder(common.vit_spec(cfg)), init_age=50.0, age_scale=15.0).eval()
    size, n = cfg.synth.image_size, min(cfg.saliency.photos, 16)
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(cfg.seed))
    baseline = x.mean(0, keepdim=True)
    attribute(model, x[:2], baseline, cfg.saliency)  # warm-up
    maps, seconds, _ = attribute(model, x, baseline, cfg.saliency)
    started = time.perf_counter()
    deletion_insertion(model, x, baseline, maps)
    seconds["deletion and insertion"] = time.perf_counter() - started
    return [
        {"benchmark": "saliency", "setting": f"{method}, {n} photos {size}px", "value": n / s, "unit": "img/s"}
        for method, s in seconds.items()
    ]


BENCHMARKS: dict[str, Callable[[Config, float], list[Row]]] = {
    "training": bench_training,
    "predict-photos": bench_predict_photos,
    "matmul": bench_matmul,
    "vit-reference": bench_vit_reference,
    "synth-render": bench_synth_render,
    "align": bench_align,
    "align-workers": bench_align_workers,
    "data-formats": bench_data_formats,
    "flops": bench_flops,
    "bootstrap": bench_bootstrap,
    "cox": bench_cox,
    "saliency": bench_saliency,
}


def run(cfg: Config, only: str | None = None, min_seconds: float = 2.0) -> pd.DataFrame:
    """Run the benchmarks (those whose name contains ``only``) and write the table beside its provenance."""

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    started = provenance.now()
    chosen = {k: v for k, v in BENCHMARKS.items() if only is None or only in k}
    if not chosen:
        raise ValueError(f"no benchmark matches {only!r}; benchmarks: {', '.join(BENCHMARKS)}")
    rows = [row for bench in chosen.values() for row in bench(cfg, min_seconds)]
    table = pd.DataFrame(rows, columns=["benchmark", "setting", "value", "unit"])
    table["value"] = table["value"].round(2)
    out = paths.stage_dir(cfg.profile, "bench")
    with provenance.artifact(out / "bench.csv", cfg, "bench") as tmp:
        table.to_csv(tmp, index=False)
    provenance.write_text(out / "bench.md", table.to_markdown(index=False) + "\n")
    print(f"[bench] wrote {out / 'bench.csv'} and bench.md (started {started})")
    return table
