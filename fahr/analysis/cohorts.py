"""The Cohorts chapter from the manifests alone: what each dataset of the profile's cohorts holds (photos, people,
age, sex, race, splits, deaths), the photos left out and why, and population pictures. The same functions describe
FAHR-Synth and real data; FAHR-Synth's planted design has its own tables (``fahr.data.synth.summary``).

Individual faces come from the public age datasets only; a clinical cohort is shown as the average of its photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from fahr.core.config import Config
from fahr.data import manifest, photo
from fahr.data.real import prepare
from fahr.train import common

if TYPE_CHECKING:
    from fahr.data.align import AlignResult

ORDER = ("pretrain", "age", "clinical-a", "clinical-b", "pairs")  # the cohorts in the order the book describes them
CLINICAL = ("clinical-a", "clinical-b")
REASONS = {"no_face": "no face found", "multiple_faces": "several faces", "unreadable": "unreadable file"}
ADAPTER_SKIP = "skipped by the dataset's adapter"


def manifests(cfg: Config) -> dict[str, pd.DataFrame]:
    """The manifest of every cohort this profile has (on real data, those whose datasets are present; prepared
    first if needed), by cohort name."""
    have = prepare.available(cfg)
    return {name: common.cohort(cfg, name) for name in ORDER if name in have}


def _percent(mask: pd.Series) -> str:
    return f"{100 * mask.mean():.0f}"


def datasets(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per dataset of every cohort: photos, people, age (years), sex, splits and deaths."""
    rows = []
    for cohort, table in tables.items():
        for dataset, t in table.groupby("dataset", sort=False):
            split = t["split"].value_counts()
            age = pd.to_numeric(t["age"], errors="coerce") if "age" in t else pd.Series(dtype=float)
            labelled = age.notna().any()
            rows.append({
                "cohort": cohort, "dataset": dataset, "photos": len(t), "people": t["subject_id"].nunique(),
                "age, mean (sd)": f"{age.mean():.0f} ({age.std():.0f})" if labelled else "—",
                "age range": f"{age.min():.0f}–{age.max():.0f}" if labelled else "—",
                "% <18 / >80": f"{_percent(age < 18)} / {_percent(age > 80)}" if labelled else "—",
                "% female": _percent(t["sex"] == "F") if "sex" in t and t["sex"].notna().any() else "—",
                "train / val / test": " / ".join(str(split.get(s, 0)) for s in manifest.SPLITS),
                "deaths": f"{100 * t['event'].mean():.0f} %" if "event" in t and t["event"].notna().any() else "",
            })  # fmt: skip
    return pd.DataFrame(rows).set_index(["cohort", "dataset"])


def races(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The share of photos (%) of each recorded race per dataset (datasets that record none are left out)."""
    frames = [t[["dataset", "race"]] for t in tables.values() if "race" in t and t["race"].notna().any()]
    if not frames:
        return pd.DataFrame()
    both = pd.concat(frames, ignore_index=True).dropna()
    return (pd.crosstab(both["dataset"], both["race"], normalize="index") * 100).round(0)


def reason(text: str) -> str:
    """The category of a reason in ``excluded.csv``: no face, several faces, unreadable, or an adapter's skip."""
    if text.startswith("alignment: "):
        return REASONS.get(text.removeprefix("alignment: "), text)
    return ADAPTER_SKIP


def _excluded(cfg: Config, names: Sequence[str]) -> pd.DataFrame:
    """The ``excluded.csv`` rows of the prepared real cohorts of ``names`` that this profile has, with the cohort
    and the reason's category (``reason``); no rows on FAHR-Synth, which leaves nothing out."""
    have = prepare.available(cfg) if cfg.data.source == "real" else set()
    files = {n: prepare.cohort_dir(cfg.profile, n) / "excluded.csv" for n in names if n in have}
    frames = [pd.read_csv(f).assign(cohort=n) for n, f in files.items() if f.is_file()]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["dataset", "file", "reason"])
    return rows.assign(why=rows["reason"].astype(str).map(reason))


def left_out(cfg: Config) -> pd.DataFrame:
    """Photos left out of each prepared real cohort, per dataset and reason (counts); empty on FAHR-Synth, which
    leaves nothing out."""
    rows = _excluded(cfg, ORDER)
    if rows.empty:
        return pd.DataFrame(columns=list(REASONS.values()) + [ADAPTER_SKIP])
    return pd.crosstab([rows["cohort"], rows["dataset"]], rows["why"])


def examples(cfg: Config, text: str) -> pd.DataFrame:
    """A few of the left-out files of one reason category (file name and the full reason), for the reader to
    check; never a clinical cohort's (their file names may carry identifiers)."""
    rows = _excluded(cfg, ("pretrain", "age"))
    rows = rows.loc[rows["why"] == text, ["dataset", "file", "reason"]]
    return rows.assign(file=[str(f).rsplit("/", 1)[-1] for f in rows["file"]]).head(5).reset_index(drop=True)


def prepare_present(cfg: Config) -> pd.DataFrame:
    """Prepare (if absent or stale) every real cohort whose datasets are present; what was done, per cohort, with
    each public cohort's folder (a clinical cohort's is not shown: the book names no clinical-data path)."""
    have = prepare.available(cfg)
    done = prepare.build(cfg, [c for c in ORDER if c in have], progress=False)
    clinical = done.index.str.startswith("clinical")
    return done.assign(folder=done["folder"].astype(str).where(~clinical, "(not shown: patients)"))


def ages(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Age (years) of every labelled photo with its dataset and cohort, for distribution plots."""
    frames = [t[["dataset", "age"]].assign(cohort=c) for c, t in tables.items() if "age" in t]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["dataset", "age", "cohort"])
    return out.assign(age=pd.to_numeric(out["age"], errors="coerce")).dropna(subset=["age"])


def example_crops(tables: dict[str, pd.DataFrame], ages_: Sequence[int] = (5, 20, 35, 50, 65, 80, 95),
                  rows: int = 2) -> tuple[list[photo.Face], list[str]]:  # fmt: skip
    """Aligned crops from the public age datasets (never a clinical cohort's): for each age, the photos nearest to
    it, one per row (alternating sexes where the data records sex)."""
    table = tables.get("age")
    if table is None or table.empty:
        return [], []
    images, labels = [], []
    for r in range(rows):
        group = table[table["sex"] == ("F", "M")[r % 2]] if "sex" in table else table
        group = group if len(group) else table
        for age in ages_:
            row = group.iloc[int(np.argmin(np.abs(group["age"].to_numpy(dtype=float) - age)))]
            images.append(photo.Face(photo.read_rgb(row["path"]), "age", 1))
            labels.append(f"{row['age']:.0f} y, {row.get('sex', '?')}, {row['dataset']}")
    return images, labels


def mean_face(table: pd.DataFrame, size: int) -> np.ndarray:
    """The pixel-wise average of every photo of a manifest at ``size`` pixels (a population average)."""
    total = np.zeros((size, size, 3))
    for path in table["path"]:
        with Image.open(path) as img:
            total += np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float64)
    return (total / max(len(table), 1)).round().astype(np.uint8)


def clinical_means(tables: dict[str, pd.DataFrame], size: int) -> tuple[list[photo.Face], list[str]]:
    """The mean face of each clinical cohort present (with the number of patients it averages) and its caption."""
    names = [n for n in CLINICAL if n in tables]
    means = [photo.Face(mean_face(tables[n], size), n, int(tables[n]["subject_id"].nunique())) for n in names]
    return means, [f"mean of all {len(tables[n])} {n} photos" for n in names]


def outcomes(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """One row per patient of each clinical cohort present (first photo): time (years), event and the clinical
    covariates, for Kaplan–Meier curves."""
    return {n: tables[n].drop_duplicates("subject_id") for n in CLINICAL if n in tables}


def alignment_reading(aligned: AlignResult) -> str:
    """A Markdown sentence on one photo's alignment: faces found, the flag and the mean landmark distance to
    the template after alignment (crop pixels)."""
    return (
        f"Faces found: **{aligned.n_faces}**, flag **{aligned.flag}**, mean landmark distance to the "
        f"template after alignment **{aligned.residual:.1f} px**."
    )
