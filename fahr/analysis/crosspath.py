"""Does the real-data path see the same people as FAHR-Synth's own? A check on a tree written by ``fahr synth
--export``: every exported photo went through what a real dataset goes through (the dataset's own file format and
labels, face detection, five-point alignment, the prepared manifest), and ``export-key.csv`` says which FAHR-Synth
photo it was. The same trained models (the real-data build's) then read both versions of every test photo: the
prepared crop of the real path and the rendered crop of the FAHR-Synth path.

What is compared, with the tolerances in ``TOLERANCES`` (one place):

- that every photo the real path prepared is an exported one, and that it kept nearly all of FAHR-Synth's test
  patients (the face detector misses a few);
- the labels each path gives the same photo (age; a clinical patient's time and event);
- FaceAge's error on each path's crops, and how closely its per-photo outputs agree (Pearson r);
- FaceSurvival's per-photo agreement, and each clinical cohort's hazard ratio per SD of FaceSurvival on each
  path's crops.

Every check has a control: the same comparison with the real path's photos dealt to the wrong people (a seeded
permutation). The label and agreement checks' controls always fail them, so a real path that lost or mixed up
people fails the check, while one that aligns faces a little differently from the renderer passes it. The MAE
and hazard-ratio checks tell the two apart only when the models have learned something: where their control is
also within tolerance ("control within"), the check could not have failed at this build's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fahr import predict
from fahr.core import provenance
from fahr.core.config import Config
from fahr.data.real import prepare
from fahr.stats import cox
from fahr.train import common

KEY = "export-key.csv"  # fahr.data.synth.export.KEY, read here without importing the exporter
FOLDER_OF = {"imdb": "imdb-wiki", "wiki": "imdb-wiki"}  # a prepared row's dataset → its folder under data.root


@dataclass(frozen=True)
class Tolerance:
    """How far the real path's number may lie from the FAHR-Synth path's, and why."""

    limit: float
    kind: str  # "difference": |real − synth| ≤ limit; "at least": real ≥ limit (agreement); "shown": not judged
    why: str


TOLERANCES = {
    "age label": Tolerance(0.5, "difference", "both paths read the dataset's label in whole years (IMDB-WIKI's "
                           "recomputed from the date of birth and the year the photo was taken)"),
    "time label": Tolerance(1e-3, "difference", "photos.csv stores the time in years to 6 decimals"),
    "event label": Tolerance(0.0, "difference", "an event is 0 or 1 on both paths"),
    "photos matched": Tolerance(0.999, "at least", "every photo the real path prepared comes from the export"),
    "patients found": Tolerance(0.8, "at least", "FAHR-Synth's test patients the real path kept: HOG misses about "
                                "10 % of exported faces (strong roll and pose), no more"),
    "FaceAge MAE": Tolerance(0.0, "shown", "shown, not judged: the renderer frames a face differently from the "
                             "aligner (scale, position), so a model trained on one path's crops loses accuracy on the "
                             "other's; the agreement row judges whether it still reads the same people alike"),
    "FaceAge agreement": Tolerance(0.8, "at least", "the same model on two crops of one photo: Pearson r of its "
                                   "outputs; people dealt at random give about 0"),
    "FaceSurvival agreement": Tolerance(0.8, "at least", "as FaceAge's"),
    "FaceSurvival log HR per SD": Tolerance(0.3, "difference", "as FaceAge's MAE; the log hazard ratio's standard "
                                            "error at the smoke size is about 0.2"),
}  # fmt: skip


def key(cfg: Config) -> pd.DataFrame:
    """The export key of the tree under ``data.root``: dataset folder, path in it, FAHR-Synth image id, cohort."""
    path = prepare.root(cfg) / KEY
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the cross-path check needs a tree written by `fahr synth "
                                "--export` (its key maps each file back to its FAHR-Synth photo)")  # fmt: skip
    return pd.read_csv(path, dtype=str)


def synth_folder(cfg: Config) -> Path | None:
    """The folder of the FAHR-Synth cohorts the tree under ``data.root`` was exported from (its key's provenance
    record names it), or None: not an export, or the cohorts are gone."""
    record = provenance.read(prepare.root(cfg) / KEY) or {}
    folder = Path(record["synth"]) if record.get("synth") else None
    return folder if folder is not None and folder.is_dir() else None


def for_build(cfg: Config) -> pd.DataFrame | None:
    """``compare`` for the book's Reproducibility chapter: on real data from an exported tree whose FAHR-Synth
    cohorts are still there; None otherwise (FAHR-Synth itself, or real data)."""
    if cfg.data.source != "real":
        return None
    folder = synth_folder(cfg)
    return None if folder is None else compare(cfg, folder, seed=cfg.seed)


def sentence(table: pd.DataFrame | None) -> str:
    """A Markdown paragraph on ``for_build``'s table: how many checks are within tolerance, which are not, and
    which could not have failed at this build's size (their control is within tolerance too)."""
    if table is None:
        return (
            "This build's data are not a FAHR-Synth export whose cohorts are at hand, so there is nothing to "
            "compare them with: on real data this section stays empty."
        )
    if table.empty:
        return "The exported tree holds neither the age datasets nor clinical cohort A: there is nothing to compare."
    out, judged = failures(table), table[table["judged"]]
    text = f"**{len(judged) - len(out)} of {len(judged)} checks** are within tolerance" + (
        "." if not out else ". Out of tolerance: " + "; ".join(out) + "."
    )
    mae = table[table["quantity"] == "FaceAge MAE"]
    if len(mae):
        m = mae.iloc[0]
        text += (
            f" This build's FaceAge has an MAE of {m['real path']:.2f} years on the crops the real path prepared and "
            f"{m['FAHR-Synth path']:.2f} on FAHR-Synth's rendered crops of the same photos: the renderer frames a "
            "face differently from the aligner, and a model trained on one path's crops loses accuracy on the "
            "other's (shown, not judged; each path's own book gives its own model's error on its own crops)."
        )
    weak = sorted(set(judged.loc[judged["control within"], "quantity"]))
    if weak:
        text += (
            f" The {' and '.join(weak)} check{'s' if len(weak) > 1 else ''} could not have failed here: with the "
            "photos dealt to the wrong people the number is within tolerance too (the models learned too little at "
            "this size for these numbers to tell people apart); the agreement checks carry the comparison."
        )
    return text


def relative(row_image_id: str, dataset: str) -> str:
    """A prepared photo's path inside its dataset folder: its image id without the dataset prefix some adapters
    give it (``utkface/12_0_0_….jpg`` → ``12_0_0_….jpg``)."""
    head, _, rest = row_image_id.partition("/")
    return rest if rest and head == dataset else row_image_id


def matched(cfg: Config, synth_dir: Path, cohort: str, split: str = "test") -> tuple[pd.DataFrame, int]:
    """The photos of ``cohort``'s ``split`` on the real path, each beside its FAHR-Synth photo (joined by the export
    key): the real path's prepared rows (``path``, labels) and the FAHR-Synth cohort's manifest row (``synth_path``
    and the labels its book reads: ``synth_age``, ``synth_time``, ``synth_event``; empty where a prepared photo has
    no FAHR-Synth photo); and how many photos FAHR-Synth's own ``split`` holds. ``synth_dir`` is the folder of the
    FAHR-Synth cohorts that were exported (``artifacts/<profile>/synth``)."""
    real = common.cohort(cfg, cohort, split)
    k = key(cfg)
    k = k[k["cohort"] == cohort].rename(columns={"dataset": "_folder", "path": "_rel", "image_id": "synth_id"})
    if k.duplicated(["_folder", "_rel"]).any():
        raise ValueError(f"{prepare.root(cfg) / KEY}: a file of cohort {cohort!r} is listed twice")
    rel = [relative(i, d) for i, d in zip(real["image_id"], real["dataset"], strict=True)]
    real = real.assign(_folder=[FOLDER_OF.get(d, d) for d in real["dataset"]], _rel=rel)
    joined = real.merge(k[["_folder", "_rel", "synth_id"]], on=["_folder", "_rel"], how="left")
    folder = synth_dir / cohort
    if not (folder / "manifest.parquet").is_file():
        raise FileNotFoundError(f"{folder / 'manifest.parquet'} not found: the FAHR-Synth cohort that was exported")
    synth = pd.read_parquet(folder / "manifest.parquet")  # the labels the FAHR-Synth path reads, not the truth
    synth_split = int((synth["split"] == split).sum())
    synth["path"] = [str(folder / p) for p in synth["path"]]
    columns = {"image_id": "synth_id", "path": "synth_path", "age": "synth_age"}
    columns |= {c: f"synth_{c}" for c in ("time", "event") if c in synth}
    synth = synth[list(columns)].rename(columns=columns)
    out = joined.merge(synth, on="synth_id", how="left").drop(columns=["_rel", "_folder"])
    return out.reset_index(drop=True), synth_split


def outputs(cfg: Config, model: str, paths: list[str]) -> np.ndarray:
    """A model of the build (a key of ``fahr.predict.MODELS``) on the crops at ``paths``, in their order."""
    spec = predict.MODELS[model]
    values = common.predict(spec.load(spec.train(cfg)), pd.DataFrame({"image_id": paths, "path": paths}), cfg)
    return values.reindex(paths).to_numpy()


def log_hr_per_sd(risk: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Log hazard ratio per SD of ``risk`` (univariable Cox); NaN when ``risk`` does not vary."""
    if risk.std() == 0:
        return float("nan")
    frame = pd.DataFrame({"risk": (risk - risk.mean()) / risk.std(), "time": time, "event": event})
    result = cox.fit(frame, [cox.Covariate("risk", "risk")], check_ph=False)
    return float(result.hr("risk")["coef"])


COLUMNS = ["quantity", "photos", "FAHR-Synth path", "real path", "tolerance", "within", "control (people shuffled)",
           "control within", "judged", "why"]  # fmt: skip


def _row(quantity: str, where: str, synth: float, real: float, control: float) -> dict:
    t = TOLERANCES[quantity]
    if t.kind == "shown":
        within, control_within, shown = True, False, "not judged"
    elif t.kind == "at least":
        within, control_within = real >= t.limit, control >= t.limit
        shown = f"≥ {t.limit:g}"
    else:
        within, control_within = abs(real - synth) <= t.limit, abs(control - synth) <= t.limit
        shown = f"± {t.limit:g}"
    return {"quantity": quantity, "photos": where, "FAHR-Synth path": synth, "real path": real,
            "tolerance": shown, "within": bool(within), "control (people shuffled)": control,
            "control within": bool(control_within), "judged": t.kind != "shown", "why": t.why}  # fmt: skip


def _derangement(rng: np.random.Generator, n: int) -> np.ndarray:
    """An order of ``n`` people in which nobody keeps their own place (a random non-zero cyclic shift)."""
    return np.roll(np.arange(n), int(rng.integers(1, n))) if n > 1 else np.arange(n)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r, NaN (never within tolerance) when either side does not vary."""
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")


def compare(cfg: Config, synth_dir: Path, seed: int = 0) -> pd.DataFrame:
    """The cross-path table: one row per check (``TOLERANCES``), the FAHR-Synth path's number, the real path's,
    whether it is within tolerance, and the control's number (the real path's photos dealt to the wrong people),
    which must not be. Empty when the tree holds neither the age datasets nor clinical cohort A."""
    rng = np.random.default_rng(seed)
    rows = []
    have = prepare.available(cfg)
    cohorts = (["age"] if "age" in have else []) + (
        [c for c in ("clinical-a", "clinical-b") if c in have] if "clinical-a" in have else []  # FaceSurvival: A
    )
    for cohort in cohorts:
        table, synth_split = matched(cfg, synth_dir, cohort)
        kind = "age test photos" if cohort == "age" else f"{cohort} test patients"
        found = table["synth_id"].notna()
        rows.append(_row("photos matched", f"{len(table)} {kind}", 1.0, float(found.mean()), float("nan")))
        c = table[found].reset_index(drop=True)
        where = f"{len(c)} {kind}"
        if cohort != "age":
            rows.append(_row("patients found", f"{synth_split} FAHR-Synth {kind}", 1.0, len(c) / synth_split,
                             float("nan")))  # fmt: skip
        wrong = _derangement(rng, len(c))
        labels = ("age",) if cohort == "age" else ("time", "event")
        for label in labels:
            mine, theirs = c[label].to_numpy(float), c[f"synth_{label}"].to_numpy(float)
            rows.append(_row(f"{label} label", where, 0.0, float(np.abs(mine - theirs).max()),
                             float(np.abs(mine[wrong] - theirs).max())))  # fmt: skip
        model = "faceage" if cohort == "age" else "facesurvival"
        on_real = outputs(cfg, model, c["path"].tolist())
        on_synth = outputs(cfg, model, c["synth_path"].tolist())
        name = "FaceAge" if cohort == "age" else "FaceSurvival"
        if cohort == "age":
            truth = c["synth_age"].to_numpy(float)
            rows.append(
                _row(
                    "FaceAge MAE",
                    where,
                    float(np.abs(on_synth - truth).mean()),
                    float(np.abs(on_real - truth).mean()),
                    float(np.abs(on_real[wrong] - truth).mean()),
                )
            )
        rows.append(_row(f"{name} agreement", where, 1.0, _pearson(on_real, on_synth),
                         _pearson(on_real[wrong], on_synth)))  # fmt: skip
        if cohort != "age":
            time, event = c["synth_time"].to_numpy(float), c["synth_event"].to_numpy(float)
            rows.append(
                _row(
                    "FaceSurvival log HR per SD",
                    where,
                    log_hr_per_sd(on_synth, time, event),
                    log_hr_per_sd(on_real, time, event),
                    log_hr_per_sd(on_real[wrong], time, event),
                )
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def failures(table: pd.DataFrame) -> list[str]:
    """The checks out of tolerance, in words (none: the paths agree)."""
    return [f"{r['quantity']} on {r['photos']}: real path {r['real path']:.4g} against FAHR-Synth path "
            f"{r['FAHR-Synth path']:.4g} (tolerance {r['tolerance']})"
            for _, r in table.iterrows() if r["judged"] and not r["within"]]  # fmt: skip
