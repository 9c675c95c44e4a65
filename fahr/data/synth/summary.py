"""Tables and pictures of the built FAHR-Synth cohorts, for the Cohorts chapter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from fahr.data.photo import Face
from fahr.data.synth import cohorts, truth, world
from fahr.data.synth.render import render
from fahr.stats import concordance

CLINICAL = ("clinical-a", "clinical-b")


def _read(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def demographics(profile: str) -> pd.DataFrame:
    """One row per dataset of every cohort: photos, people, age (years), sex, splits and deaths."""
    rows = []
    for cohort in cohorts.COHORTS:
        _, truth, _ = cohorts.load(profile, cohort)
        for dataset, t in truth.groupby("dataset", sort=False):
            split = t["split"].value_counts()
            rows.append({
                "dataset": dataset, "photos": len(t), "people": t["subject_id"].nunique(),
                "age, mean (sd)": f"{t['age'].mean():.0f} ({t['age'].std():.0f})",
                "age range": f"{t['age'].min():.0f}–{t['age'].max():.0f}",
                "% <18 / >80": f"{100 * (t['age'] < 18).mean():.0f} / {100 * (t['age'] > 80).mean():.0f}",
                "% female": f"{100 * (t['sex'] == 0).mean():.0f}",
                "train / val / test": " / ".join(str(split.get(s, 0)) for s in ("train", "val", "test")),
                "deaths": f"{100 * t['event'].mean():.0f} %" if "event" in t else "",
            })  # fmt: skip
    return pd.DataFrame(rows).set_index("dataset")


def ages(profile: str, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Chronological age (years) of every photo with its dataset, for distribution plots; the cohorts named in
    ``exclude`` (e.g. the perturbation pairs) left out."""
    frames = []
    for cohort in (c for c in cohorts.COHORTS if c not in exclude):
        _, truth, _ = cohorts.load(profile, cohort)
        frames.append(truth[["dataset", "age", "bio_gap", "frailty"]].assign(cohort=cohort))
    return pd.concat(frames, ignore_index=True)


def example_faces(profile: str, ages_: tuple[int, ...] = (5, 20, 35, 50, 65, 80, 95)) -> tuple[list[Face], list[str]]:
    """From the public-style age datasets: for each age, one photo per sex and race group nearest to it."""
    table, truth, _ = cohorts.load(profile, "age")
    truth = truth.assign(path=table["path"].to_numpy())
    images, labels = [], []
    for sex, race in ((0, "white"), (1, "black"), (0, "asian"), (1, "indian")):
        group = truth[(truth["sex"] == sex) & (truth["race"] == race)]
        if group.empty:
            group = truth
        for age in ages_:
            row = group.iloc[int(np.argmin(np.abs(group["age"].to_numpy() - age)))]
            images.append(Face(_read(row["path"]), "age", 1))
            labels.append(f"{row['age']:.0f} y, {'M' if row['sex'] else 'F'}, {row['race']}")
    return images, labels


def perturbation_examples(profile: str, people: int = 2) -> tuple[list[Face], list[str], int]:
    """The reference photo and the strongest version of every condition, for the first ``people`` pairs."""
    table, truth, _ = cohorts.load(profile, "pairs")
    truth = truth.assign(path=table["path"].to_numpy())
    images, labels = [], []
    strongest = {c: s[-1] for c, s in world.PERTURBATIONS.items()}
    for pair in truth["pair_id"].unique()[:people]:
        rows = truth[truth["pair_id"] == pair]
        ref = rows[rows["condition"] == "reference"].iloc[0]
        images.append(Face(_read(ref["path"]), "pairs", 1))
        labels.append(f"reference ({ref['age']:.0f} y)")
        for condition, strength in strongest.items():
            row = rows[(rows["condition"] == condition) & (rows["strength"] == strength)].iloc[0]
            images.append(Face(_read(row["path"]), "pairs", 1))
            labels.append(f"{condition} {strength:g}")
    return images, labels, 1 + len(strongest)


def region_example(profile: str) -> tuple[Face, np.ndarray]:
    """A reference face of the pairs cohort and its named-region label map (rendered again, identical)."""
    _, truth, planted = cohorts.load(profile, "pairs")
    row = cohorts.plain_row(truth[truth["condition"] == "reference"].iloc[0].to_dict())
    out = render(*cohorts.face_of(row), size=int(planted["image_size"]), with_regions=True)
    return Face(out.image, "pairs", 1), out.regions


def clinical_truth(profile: str, names: Sequence[str] = CLINICAL) -> dict[str, pd.DataFrame]:
    """The planted-truth table (one row per patient: survival time in years, event, covariates) of each clinical
    cohort, by name."""
    tables = {}
    for name in names:
        _, truth, _ = cohorts.load(profile, name)
        tables[name] = truth
    return tables


def mean_faces(profile: str, names: Sequence[str] = CLINICAL) -> tuple[list[Face], list[str]]:
    """The ``mean_face`` of each cohort of ``names`` (with the number of people it averages) and its caption."""
    means = [Face(mean_face(profile, n), n, int(cohorts.load(profile, n)[0]["subject_id"].nunique())) for n in names]
    return means, [f"mean of all {name} photos" for name in names]


def mean_face(profile: str, cohort: str) -> np.ndarray:
    """The pixel-wise average of every photo of a cohort (a population average: no individual is shown)."""
    table, _, _ = cohorts.load(profile, cohort)
    total = None
    for path in table["path"]:
        img = _read(path).astype(np.float64)
        total = img if total is None else total + img
    return (total / len(table)).round().astype(np.uint8)


def planted_hazards() -> pd.DataFrame:
    """The proportional-hazards model the clinical cohorts' survival times were drawn from."""
    units = {"age_decade": "per 10 years of chronological age", "bio_gap_decade": "per 10 years of looking older",
             "frailty_sd": "per SD of latent frailty", "stage": "per stage (1–4)", "ecog": "per ECOG point",
             "male": "male vs female"}  # fmt: skip
    rows = [{"covariate": k, "unit": units[k], "log HR": v} for k, v in world.HAZARD.items() if k != "cancer"]
    rows += [
        {"covariate": f"cancer: {k}", "unit": "vs other cancers", "log HR": v}
        for k, v in world.HAZARD["cancer"].items()
    ]
    table = pd.DataFrame(rows).set_index("covariate")
    table["HR"] = np.exp(table["log HR"]).round(3)
    return table


def oracle_concordances(profile: str) -> pd.DataFrame:
    """Harrell's C of the two oracles per clinical cohort and split: the full planted hazard (the true linear
    predictor: what a model plus the clinical factors could reach) and the face-visible oracle
    (``truth.face_visible_oracle``: the visible frailty and the apparent age's gap, the ceiling of a face-only score
    such as FaceSurvival)."""
    rows = []
    for cohort in CLINICAL:
        _, t, _ = cohorts.load(profile, cohort)
        face = truth.face_visible_oracle(t["frailty"], t["age"], t["bio_gap"])
        for split, g in [*sorted(t.groupby("split"), key=lambda kv: ("train", "val", "test").index(kv[0])),
                         ("all", t)]:  # fmt: skip
            time, event = g["time"].to_numpy(), g["event"].to_numpy()
            full = concordance.harrell(g["linear_predictor"], time, event)
            visible = concordance.harrell(face[g.index], time, event)
            rows.append({"cohort": cohort, "split": split, "patients": len(g), "full planted hazard C": round(full, 3),
                         "face-visible oracle C": round(visible, 3)})  # fmt: skip
    return pd.DataFrame(rows).set_index(["cohort", "split"])


def clinical_design(profile: str) -> pd.DataFrame:
    """How the clinical cohorts were drawn, per cohort: patients per split (train, val, test) and the biological-age
    gap in years (mean and SD as planted, then as drawn), the choices that set the power of the clinical claims'
    tests (``world.CLINICAL_GAP_SD``, ``world.CLINICAL_A_SPLITS``)."""
    rows = []
    for c in world.CLINICAL:
        _, t, _ = cohorts.load(profile, c.name)
        counts = t["split"].value_counts()
        rows.append({"cohort": c.name, **{s: int(counts.get(s, 0)) for s in ("train", "val", "test")},
                     "gap mean": c.population.bio_gap_mean, "gap SD": c.population.bio_gap_sd,
                     "drawn mean": round(float(t["bio_gap"].mean()), 2),
                     "drawn SD": round(float(t["bio_gap"].std()), 2)})  # fmt: skip
    return pd.DataFrame(rows).set_index("cohort")


def cue_regions() -> pd.DataFrame:
    """Where each visible cue was painted: the truth the saliency chapter is checked against."""
    rows = [{"signal": s, "cue": cue, "regions": ", ".join(regions)}
            for s, cues_ in world.CUE_REGIONS.items() for cue, regions in cues_.items()]  # fmt: skip
    return pd.DataFrame(rows).set_index(["signal", "cue"])
