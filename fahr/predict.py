"""Predictions: every fine-tuned model on every cohort it is evaluated on, and on raw photographs.

``table(cfg, model, cohort)`` gives one row per photo (image_id, age_pred or risk, model, checkpoint hash),
cached under ``artifacts/<profile>/predictions/<model>/<cohort>.parquet`` and remade only when the
checkpoint or the cohort changes. ``photos(...)`` is ``fahr predict``: raw photos in, aligned, a CSV out; its
FaceAge checkpoint may be the authors' published file, imported on the fly (``fahr.models.importer``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from fahr.core import cache, paths, provenance
from fahr.core.config import Config
from fahr.data import align
from fahr.models import importer
from fahr.stats import conformal
from fahr.train import common, faceage, facesurvival


@dataclass(frozen=True)
class Model:
    """A trained model the book evaluates: how to train it, load it, and what its output is called."""

    train: Callable[[Config], Path]
    load: Callable[[Path], torch.nn.Module]
    output: str  # "age_pred" (years) or "risk" (log hazard)


MODELS: dict[str, Model] = {
    "faceage": Model(lambda cfg: faceage.run(cfg, progress=False), faceage.load, "age_pred"),
    "faceage-stage1": Model(
        lambda cfg: faceage.run(cfg, progress=False).with_name("faceage-stage1.pt"), faceage.load, "age_pred"
    ),
    "faceage-scratch": Model(lambda cfg: faceage.run(cfg, pretrained=False, progress=False), faceage.load, "age_pred"),
    "facesurvival": Model(lambda cfg: facesurvival.run(cfg, progress=False), facesurvival.load, "risk"),
    "facesurvival-scratch": Model(
        lambda cfg: facesurvival.run(cfg, pretrained=False, progress=False), facesurvival.load, "risk"
    ),
}


def path(profile: str, model: str, cohort: str) -> Path:
    return paths.stage_dir(profile, "predictions") / model / f"{cohort}.parquet"


def table(cfg: Config, model: str, cohort: str) -> pd.DataFrame:
    """Predictions of ``model`` (a key of MODELS) for every photo of a cohort — FAHR-Synth's, or with
    ``data.source: real`` the prepared real cohort of that name — training the model first if needed."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; models: {', '.join(MODELS)}")
    spec = MODELS[model]
    checkpoint = spec.train(cfg)
    digest = cache.file_digest(checkpoint)
    key = cache.digest(digest, common.cohort_fingerprint(cfg, cohort), cache.code_fingerprint(["fahr.predict"]))
    out = path(cfg.profile, model, cohort)
    record = provenance.read(out)
    if record is not None and record.get("fingerprint") == key:
        return pd.read_parquet(out)
    photos = common.cohort(cfg, cohort)
    values = common.predict(spec.load(checkpoint), photos, cfg)
    result = pd.DataFrame(
        {"image_id": values.index, spec.output: values.to_numpy(), "model": model, "checkpoint": digest}
    )
    with provenance.artifact(out, cfg, "predict", fingerprint=key, model=model, cohort=cohort) as tmp:
        result.to_parquet(tmp, index=False)
    return result


INTERVAL_ALPHA = 0.1  # ages come with 90 % intervals


def intervals_path(checkpoint: Path) -> Path:
    """Where a FaceAge checkpoint's interval calibration is kept: beside it."""
    return Path(checkpoint).with_name(f"{Path(checkpoint).stem}.intervals.json")


def calibrate(cfg: Config, model: str = "faceage", alpha: float = INTERVAL_ALPHA) -> conformal.Calibration:
    """Split-conformal intervals for ``model``'s ages (``fahr.stats.conformal``), fitted on its predictions for the
    age datasets' validation photos (never trained on; the test photos stay for checking the coverage) and kept
    beside its checkpoint, where ``fahr predict`` finds them. Refitted whenever the checkpoint changes."""
    checkpoint = MODELS[model].train(cfg)
    target, digest = intervals_path(checkpoint), cache.file_digest(checkpoint)
    record = provenance.read(target)
    if record is not None and record.get("checkpoint") == digest and record.get("alpha") == alpha:
        return conformal.Calibration.from_dict(json.loads(target.read_text()))
    predicted = table(cfg, model, "age").set_index("image_id")[MODELS[model].output]
    val = common.cohort(cfg, "age", "val").set_index("image_id")
    calibration = conformal.fit(predicted.loc[val.index].to_numpy(), val["age"].to_numpy(), alpha)
    with provenance.artifact(target, cfg, "calibrate-intervals", checkpoint=digest, alpha=alpha,
                             photos=len(val)) as tmp:  # fmt: skip
        tmp.write_text(json.dumps(calibration.to_dict(), indent=1) + "\n")
    return calibration


def _calibration_of(checkpoint: Path) -> conformal.Calibration | None:
    """The interval calibration kept beside a checkpoint, if it was made for exactly this file."""
    target = intervals_path(checkpoint)
    record = provenance.read(target)
    if record is None or record.get("checkpoint") != cache.file_digest(checkpoint):
        return None
    return conformal.Calibration.from_dict(json.loads(target.read_text()))


@torch.no_grad()
def photos(
    sources: Sequence[Path],
    faceage_checkpoint: Path,
    facesurvival_checkpoint: Path | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    progress: bool = True,
    normalisation: str = "imagenet",
    workers: int | None = None,
    journal: Path | None = None,
) -> pd.DataFrame:
    """Raw photographs → one row each: path, flag (``fahr.data.align.FLAGS``), n_faces, age_pred with its 90 %
    interval (age_lower, age_upper: from the calibration kept beside the checkpoint by ``calibrate``; empty for a
    model without one, such as a published file), risk. Faces are detected and aligned to the model's input size
    by ``workers`` processes (default: every core); a bad photo never stops the batch.

    ``faceage_checkpoint`` is a project checkpoint or a published FaceAge file (``fahr_faceage.pth``), imported once
    with ``normalisation`` and cached by its SHA-256 under ``artifacts/imported/``. With ``journal``, every finished
    photo is appended there (JSON lines, keyed by the models' hashes), and a run killed mid-way resumes from it
    without predicting a photo twice; remove the journal once its table is saved."""
    faceage_checkpoint = importer.cached_import(faceage_checkpoint, "faceage", paths.imported_dir(),
                                                normalisation=normalisation)  # fmt: skip
    models = {"age_pred": faceage.load(faceage_checkpoint)}
    checkpoints = [faceage_checkpoint]
    if facesurvival_checkpoint is not None:
        models["risk"] = facesurvival.load(facesurvival_checkpoint)
        checkpoints.append(facesurvival_checkpoint)
    size = models["age_pred"].encoder.patch_embed.img_size[0]
    for m in models.values():
        m.to(device).eval()
    key = cache.digest(*[cache.file_digest(c) for c in checkpoints], size)
    sources = [Path(s) for s in sources]
    done = _journal_rows(journal, key)
    todo = [s for s in dict.fromkeys(sources) if str(s) not in done]
    rows, crops = [], []

    def flush() -> None:
        if crops:
            x = torch.from_numpy(np.stack([c for _, c in crops])).permute(0, 3, 1, 2).float().div(255).to(device)
            outputs = {name: m(x).float().cpu().numpy() for name, m in models.items()}
            for j, (i, _) in enumerate(crops):
                rows[i].update({name: float(v[j]) for name, v in outputs.items()})
            crops.clear()
        for row in rows:
            done[row["path"]] = row
            log({**row, "key": key})
        rows.clear()

    total = len(set(sources))
    bar = tqdm(total=total, initial=total - len(todo), desc="predict", unit="photo", disable=not progress,
               dynamic_ncols=True)  # fmt: skip
    with provenance.journal_writer(journal) as log, bar:
        for source, result in zip(todo, align.align_each(todo, size, workers), strict=True):
            rows.append({"path": str(source), "flag": result.flag, "n_faces": result.n_faces})
            if result.crop is not None:
                crops.append((len(rows) - 1, result.crop))
            if len(crops) >= batch_size:
                flush()
            bar.update()
        flush()
    columns = ["path", "flag", "n_faces", *models]
    out = pd.DataFrame([done[str(s)] for s in sources]).reindex(columns=columns)
    calibration = _calibration_of(faceage_checkpoint)
    lower, upper = (conformal.interval(out["age_pred"].to_numpy(dtype=float), calibration) if calibration
                    else (np.full(len(out), np.nan), np.full(len(out), np.nan)))  # fmt: skip
    out.insert(out.columns.get_loc("age_pred") + 1, "age_lower", lower)
    out.insert(out.columns.get_loc("age_pred") + 2, "age_upper", upper)
    out.attrs["interval"] = None if calibration is None else 1 - calibration.alpha
    return out


def _journal_rows(journal: Path | None, key: str) -> dict[str, dict]:
    """The photos a killed run with the same models already predicted."""
    if journal is None:
        return {}
    return {r["path"]: r for r in provenance.read_journal(journal) if r.pop("key", None) == key}
