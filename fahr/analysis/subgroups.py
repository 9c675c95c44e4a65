"""Subgroups: FaceAge error by age group, sex, race and dataset; FaceSurvival hazard ratios within each sex,
race, cancer type and age group, with interaction tests (a nested likelihood-ratio test of risk × subgroup).

FAHR-Synth planted the same hazard ratios in every subgroup, but a face does not show them equally in every
subgroup: the renderer clips the cues (a frailty below zero leaves no mark, an apparent age past the cue model's
range saturates), so even the face-visible oracle, the ceiling of a face-only score, may honestly interact with a
subgroup. Where the table carries truth, the same interaction tests therefore run on the face-visible oracle on
the same patients, and a learned score's interaction counts against it only where the oracle shows none
(``beyond_oracle``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines.exceptions import ConvergenceError

from fahr.analysis import faceage, survival
from fahr.analysis.cohort import has_truth
from fahr.analysis.headline import Result
from fahr.core.config import Config
from fahr.stats import ALPHA, cox

AGE_GROUPS_PHOTOS = (0, 20, 40, 60, 80)  # FaceAge test photos: 0–19, 20–39, …, 80+
AGE_GROUPS_PATIENTS = (0, 60, 70)  # cancer patients: <60, 60–69, 70+
EVENTS_PER_PARAMETER = 5  # a subgroup with fewer deaths per model parameter gets no hazard ratio (Vittinghoff 2007)


def age_group(ages: pd.Series, edges: tuple[int, ...]) -> pd.Series:
    """Labels such as "20–39" and "80+" for the bins starting at ``edges``."""
    labels = [f"{a}–{b - 1}" for a, b in zip(edges[:-1], edges[1:], strict=True)] + [f"{edges[-1]}+"]
    if edges[0] == 0 and edges[1] >= 50:
        labels[0] = f"<{edges[1]}"
    index = np.searchsorted(np.asarray(edges[1:]), ages.to_numpy(), side="right")
    return pd.Series(pd.Categorical(np.asarray(labels, dtype=object)[index], categories=labels, ordered=True),
                     index=ages.index)  # fmt: skip


def faceage_table(cfg: Config) -> pd.DataFrame:
    """The FaceAge test photos with prediction, labelled age, sex, race, dataset, age group and error (years)."""
    frame = faceage.test_table(cfg, models=("faceage",), baselines=False)
    frame["age group"] = age_group(frame["age"], AGE_GROUPS_PHOTOS)
    frame["error"] = frame["faceage"] - frame["age"]
    return frame


def faceage_mae(frame: pd.DataFrame, resamples: int, seed: int) -> pd.DataFrame:
    """FaceAge MAE with a bootstrap 95 % CI and mean signed error, per level of each subgroup variable."""
    rows = []
    for variable in ("age group", "sex", "race", "dataset"):
        for level, g in frame.groupby(variable, observed=True):
            lo, hi = faceage.bootstrap_mae(g["error"].to_numpy(), resamples, seed)
            rows.append({"variable": variable, "level": str(level), "photos": len(g), "MAE": g["error"].abs().mean(),
                         "lower": lo, "upper": hi, "signed error": g["error"].mean()})  # fmt: skip
    return pd.DataFrame(rows)


def _fit_or_none(frame: pd.DataFrame, covariates: list[cox.Covariate], name: str) -> cox.CoxResult | None:
    parameters = cox.design(frame, covariates).shape[1] - 2
    if frame["event"].sum() < EVENTS_PER_PARAMETER * parameters:
        return None
    try:
        return cox.fit(frame, covariates, name)
    except ConvergenceError:
        return cox.fit(frame, covariates, name, penalizer=0.01)


SURVIVAL_VARIABLES = {"sex": "sex", "race": "race", "cancer type": "cancer_type", "age group": "age group"}


def survival_hr(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FaceSurvival (per SD) and the oracle's adjusted hazard ratio within each subgroup of one cohort, and the
    interaction tests: clinical + risk + subgroup + risk × subgroup against the same without the interaction."""
    frame = frame.assign(**{"age group": age_group(frame["age"], AGE_GROUPS_PATIENTS).astype(str)})
    base = list(survival.CLINICAL)
    risk = survival.score_covariate("facesurvival sd", "FaceSurvival (per SD)")
    oracle = survival.score_covariate("oracle_face sd", "FaceSurvival (per SD)") if has_truth(frame) else None
    rows, tests = [], []
    for variable, column in SURVIVAL_VARIABLES.items():
        for level, g in frame.groupby(column):
            m = _fit_or_none(g, [*base, risk], f"{label} {level}")
            o = _fit_or_none(g, [*base, oracle], "oracle") if oracle is not None else None
            row = {"cohort": label, "variable": variable, "level": str(level), "patients": len(g),
                   "deaths": int(g["event"].sum())}  # fmt: skip
            if m is not None:
                r = m.hr("FaceSurvival (per SD)")
                row.update(HR=r["hr"], lower=r["lower"], upper=r["upper"], p=r["p"])
            if o is not None:
                row["oracle HR"] = o.hr("FaceSurvival (per SD)")["hr"]
            rows.append(row)
        test = {"cohort": label, "variable": variable, **interaction(frame, column, base, risk)}
        if oracle is not None:  # the same test on the face-visible oracle, same patients
            o = interaction(frame, column, base, oracle)
            test.update({"oracle LR statistic": o["LR statistic"], "oracle p": o["p"]})
        tests.append(test)
    return pd.DataFrame(rows), pd.DataFrame(tests)


def beyond_oracle(tests: pd.DataFrame) -> pd.Series:
    """Per interaction test, whether the learned score's interaction is one the face does not explain: it rejects
    a common effect at the Bonferroni level over all the tests (``ALPHA`` / their number) while the face-visible
    oracle's test on the same patients does not reject at ``ALPHA``. Without truth (no oracle), every rejection at
    the Bonferroni level counts."""
    rejects = tests["p"] < ALPHA / max(len(tests), 1)
    if "oracle p" not in tests.columns:
        return rejects
    return rejects & ~(tests["oracle p"] < ALPHA)


def interaction(frame: pd.DataFrame, column: str, base: list[cox.Covariate], risk: cox.Covariate) -> dict:
    """Likelihood-ratio test of risk × subgroup (one product term per non-reference level)."""
    levels = sorted(frame[column].astype(str).unique())
    reference = levels[0]
    products = {}
    for level in levels[1:]:
        products[f"risk × {level}"] = frame[risk.column] * (frame[column].astype(str) == level)
    wide = frame.assign(**products)
    # the subgroup's main effect, unless the clinical factors already hold it (sex, race, cancer type)
    group = [] if column in {c.column for c in base} else [cox.Covariate(column, "subgroup", reference=reference)]
    reduced = cox.fit(wide, [*base, risk, *group], "without interaction")
    full = cox.fit(wide, [*base, risk, *group, *(cox.Covariate(p, p) for p in products)], "with interaction")
    t = cox.lrt(full, reduced)
    return {"LR statistic": t.statistic, "df": t.df, "p": t.p}


def survival_tables(an: survival.Analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``survival_hr`` of every evaluation cohort, stacked: the subgroup hazard ratios and the interaction tests."""
    fits = [survival_hr(frame, label) for label, frame in an.frames.items()]
    return pd.concat([f[0] for f in fits], ignore_index=True), pd.concat([f[1] for f in fits], ignore_index=True)


def reading(mae: pd.DataFrame, hrs: pd.DataFrame, tests: pd.DataFrame, truth: bool) -> str:
    """A plain-language reading of the subgroup numbers, written from them (``truth``: on FAHR-Synth, where one
    common effect was planted)."""
    out = []
    for variable, g in mae.groupby("variable", sort=False):
        best, worst = g.loc[g["MAE"].idxmin()], g.loc[g["MAE"].idxmax()]
        out.append(f"FaceAge by {variable}: MAE from {best['MAE']:.1f} y ({best['level']}) to "
                   f"{worst['MAE']:.1f} y ({worst['level']}).")  # fmt: skip
    rejected = tests[tests["p"] < ALPHA]
    oracle = ""
    if "oracle p" in tests.columns:
        beyond, own = tests[beyond_oracle(tests)], int((tests["oracle p"] < ALPHA).sum())
        oracle = (
            f" The face-visible oracle's own tests on the same patients rejected {own} of {len(tests)} (the face "
            f"shows the planted effects unequally). Of FaceSurvival's {len(tests)} tests, {len(beyond)} rejected at "
            f"the Bonferroni level (p < {ALPHA / len(tests):.2g}) where the oracle's did not"
            + (f" ({', '.join(beyond['cohort'].str[0] + ': ' + beyond['variable'])})" if len(beyond) else "")
            + "."
        )
    expected = (
        " FAHR-Synth planted one common effect in every subgroup, so at the 5 % level about one test in twenty "
        "is expected to reject by chance."
        if truth
        else " At the 5 % level about one test in twenty rejects by chance even where the effect is common."
    )
    out.append(
        f"FaceSurvival's adjusted hazard ratio per SD stayed above 1 in {int((hrs['HR'] > 1).sum())} of "
        f"{int(hrs['HR'].notna().sum())} subgroups with enough deaths to estimate it; "
        f"{len(rejected)} of {len(tests)} interaction tests rejected a common effect at p < {ALPHA}"
        + (f" ({', '.join(rejected['cohort'].str[0] + ': ' + rejected['variable'])})" if len(rejected) else "")
        + "."
        + expected
        + oracle
    )
    return " ".join(out)


def headline_results(mae: pd.DataFrame, hrs: pd.DataFrame, tests: pd.DataFrame, truth: bool) -> list[Result]:
    """The Subgroups chapter's numbers for the reproduction report (``Result`` each); ``truth``: FAHR-Synth, where
    no interaction was planted."""
    estimated = hrs.dropna(subset=["HR"])
    out = [
        Result("subgroups.interactions_rejected", f"interaction tests rejecting a common effect at p < {ALPHA}",
               float((tests["p"] < ALPHA).sum()), f"of {len(tests)}", planted=0.0 if truth else None),
        Result("subgroups.interaction_min_p", "smallest interaction-test p", float(tests["p"].min()), ""),
        Result("subgroups.hr_above_one", "subgroups with FaceSurvival aHR per SD > 1",
               float((estimated["HR"] > 1).sum()), f"of {len(estimated)}"),
    ]  # fmt: skip
    if "oracle p" in tests.columns:
        out.append(Result("subgroups.interactions_beyond_oracle",
                          "interactions of FaceSurvival the face-visible oracle does not show (Bonferroni)",
                          float(beyond_oracle(tests).sum()), f"of {len(tests)}", planted=0.0))  # fmt: skip
    for variable, g in mae.groupby("variable", sort=False):
        out.append(Result(f"subgroups.faceage_mae_range.{variable}", f"FaceAge MAE, worst − best {variable}",
                          float(g["MAE"].max() - g["MAE"].min()), "years"))  # fmt: skip
    return out
