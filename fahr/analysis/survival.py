"""The clinical analyses of the FaceSurvival and Subgroups chapters, on the two cancer cohorts (FAHR-Synth's or real).

Cohort A's test split is the development analysis set (FaceSurvival trained on A's training split and stopped on
its validation split); cohort B is the independent cohort. Quartile cut points and the SD that scales the risk
score are fixed on A's validation split and carried unchanged to A's test split and to B, as are the weights that
combine FaceAge and FaceSurvival: no evaluation set chooses its own cut points or score.

On FAHR-Synth every model has beside it what the cohort table knows (``fahr.analysis.cohort``): the planted
hazard ratios and an oracle that uses the latent truth in place of a model's prediction — the true biological age
for FaceAge, and the face-visible part of the planted hazard (frailty and biological-age gap) for FaceSurvival.
On real data the tables have no truth columns and every function leaves the oracle and planted values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fahr.analysis import cohort
from fahr.analysis.headline import Result
from fahr.core.config import Config
from fahr.stats import ALPHA, concordance, cox

# (label, cohort, split) of the two evaluation sets
COHORTS: tuple[tuple[str, str, str | None], ...] = (
    ("A (test split)", "clinical-a", "test"),
    ("B (independent)", "clinical-b", None),
)
FACE_MODELS = {"faceage": "age_pred", "faceage-stage1": "age_pred", "faceage-scratch": "age_pred",
               "facesurvival": "risk", "facesurvival-scratch": "risk"}  # fmt: skip

# the clinical prognostic factors every model is adjusted for
CLINICAL: tuple[cox.Covariate, ...] = (
    cox.Covariate("age", "age (per decade)", scale=10.0),
    cox.Covariate("sex", "sex", reference="F"),
    cox.Covariate("race", "race", reference="white"),
    cox.Covariate("cancer_type", "cancer", reference="other"),
    cox.Covariate("stage", "stage (per stage)"),
    cox.Covariate("ecog", "ECOG (per point)"),
)


def cohort_table(cfg: Config, name: str) -> cohort.CohortTable:
    """One row per patient of a clinical cohort: clinical columns, every face model's prediction, the FaceAge
    gaps (prediction − chronological age, years) and, on FAHR-Synth, the truth the oracles use."""
    models = {m: o for m, o in FACE_MODELS.items() if m != "faceage-stage1" or not cfg.faceage.weights}
    table = cohort.build(cfg, name, models)  # the published FaceAge (faceage.weights) has no stage-1 model
    frame = table.frame.copy()
    for model in ("faceage", "faceage-stage1", "faceage-scratch"):
        if model in frame.columns:
            frame[f"{model} gap"] = frame[model] - frame["age"]
    return cohort.CohortTable(name, frame, table.planted)


@dataclass(frozen=True)
class Scales:
    """What is fixed on the development cohort and carried to the others: the risk SDs and quartile cuts."""

    mean: dict[str, float]
    sd: dict[str, float]
    cuts: dict[str, np.ndarray]


SCORES = ("facesurvival", "facesurvival-scratch", "oracle_face")  # the oracle only where there is truth


def scales(development: pd.DataFrame) -> Scales:
    present = [s for s in SCORES if s in development.columns]
    return Scales(
        mean={s: float(development[s].mean()) for s in present},
        sd={s: float(development[s].std()) for s in present},
        cuts={s: cox.quartile_cuts(development[s]) for s in present},
    )


def scaled(frame: pd.DataFrame, sc: Scales) -> pd.DataFrame:
    """Add each risk score per development-cohort SD (``<score> sd``) and its quartile (``<score> q``)."""
    out = frame.copy()
    for s in sc.sd:
        out[f"{s} sd"] = (out[s] - sc.mean[s]) / sc.sd[s]
        out[f"{s} q"] = cox.quartiles(out[s], sc.cuts[s])
    return out


@dataclass
class Analysis:
    """Everything the FaceSurvival chapter shows, for the two evaluation cohorts."""

    cfg: Config
    frames: dict[str, pd.DataFrame]  # label → prepared analysis table
    validation: pd.DataFrame  # A's validation split (combination weights)
    scales: Scales
    planted: dict[str, float] | None  # planted hazard ratios (FAHR-Synth); None on real data

    @property
    def labels(self) -> list[str]:
        return list(self.frames)

    @property
    def has_truth(self) -> bool:
        return self.planted is not None


class TooFewDeaths(ValueError):
    """A clinical cohort with too few deaths to fit the chapter's Cox models; the book shows the message as the
    chapter's page instead of a traceback."""


def check_deaths(frames: dict[str, pd.DataFrame]) -> None:
    """Raise ``TooFewDeaths`` when a cohort has no more deaths than the largest adjusted model has parameters (the
    clinical factors and two scores): such a model cannot be estimated at all."""
    for label, frame in frames.items():
        needed = cox.design(frame, [*CLINICAL, score_covariate("faceage", "a"), score_covariate("age", "b")]).shape[1]
        deaths = int(frame["event"].sum())
        if deaths <= needed - 2:  # design holds time and event besides the parameters
            raise TooFewDeaths(
                f"{label}: {deaths} deaths among {len(frame)} patients, but the adjusted Cox models of this chapter "
                f"have up to {needed - 2} parameters (the clinical factors and two scores), so they cannot be "
                "estimated. A cohort needs more deaths than parameters, and about ten per parameter for stable "
                "estimates: add patients or follow-up, or run the chapter on a larger cohort."
            )


def load(cfg: Config) -> Analysis:
    """Predictions (and truth, where there is some) for A's validation and test splits and cohort B, with scales
    fixed on A's validation split; ``TooFewDeaths`` if a cohort cannot support the adjusted models."""
    a, b = cohort_table(cfg, "clinical-a"), cohort_table(cfg, "clinical-b")
    sc = scales(a.split("val"))  # chosen on validation data: the evaluation sets never set their own cut points
    frames = {COHORTS[0][0]: scaled(a.split("test"), sc), COHORTS[1][0]: scaled(b.frame, sc)}
    check_deaths(frames)
    return Analysis(cfg, frames, scaled(a.split("val"), sc), sc, a.planted)


def describe(an: Analysis) -> pd.DataFrame:
    """Patients, deaths, follow-up and the mix of the two evaluation cohorts."""
    rows = {}
    for label, f in an.frames.items():
        rows[label] = {
            "patients": len(f),
            "deaths": int(f["event"].sum()),
            "median follow-up (y)": round(float(f["time"].median()), 2),
            "age, mean": round(float(f["age"].mean()), 1),
            "male %": round(100 * (f["sex"] == "M").mean(), 1),
            "stage IV %": round(100 * (f["stage"] == 4).mean(), 1),
            "lung cancer %": round(100 * (f["cancer_type"] == "lung").mean(), 1),
        }
    # one object column per cohort, so that counts stay whole numbers beside the percentages
    return pd.DataFrame({label: pd.Series(row, dtype=object) for label, row in rows.items()})


def score_covariate(column: str, label: str, scale: float = 1.0) -> cox.Covariate:
    return cox.Covariate(column, label, scale=scale)


QUARTILE_TERMS = {f"risk quartile: Q{i}": f"Q{i} vs Q1" for i in (2, 3, 4)}


def quartile_covariate(score: str) -> cox.Covariate:
    return cox.Covariate(f"{score} q", "risk quartile", reference="Q1")


def adjusted_models(frame: pd.DataFrame, label: str) -> dict[str, cox.CoxResult]:
    """The multivariable Cox models of one cohort, each adjusted for the clinical factors (the oracles' only
    where the table carries truth)."""
    c = list(CLINICAL)
    specs = {
        "clinical only": c,
        "FaceSurvival per SD": [*c, score_covariate("facesurvival sd", "FaceSurvival (per SD)")],
        "FaceSurvival quartiles": [*c, quartile_covariate("facesurvival")],
        "FaceAge per decade": [*c, score_covariate("faceage", "FaceAge (per decade)", 10.0)],
        "FaceAge gap per decade": [*c, score_covariate("faceage gap", "FaceAge gap (per decade)", 10.0)],
        **(
            {"FaceAge stage 1 per decade": [*c, score_covariate("faceage-stage1", "FaceAge (per decade)", 10.0)]}
            if "faceage-stage1" in frame.columns
            else {}
        ),  # none when the published FaceAge is evaluated
        "FaceAge scratch per decade": [*c, score_covariate("faceage-scratch", "FaceAge (per decade)", 10.0)],
        "FaceSurvival scratch per SD": [*c, score_covariate("facesurvival-scratch sd", "FaceSurvival (per SD)")],
    }
    if cohort.has_truth(frame):
        specs |= {
            "oracle face risk per SD": [*c, score_covariate("oracle_face sd", "FaceSurvival (per SD)")],
            "oracle face risk quartiles": [*c, quartile_covariate("oracle_face")],
            "oracle biological age per decade": [*c, score_covariate("bio_age", "FaceAge (per decade)", 10.0)],
        }
    return {name: cox.fit(frame, spec, f"{label}: {name}") for name, spec in specs.items()}


def headline(an: Analysis, models: dict[str, dict[str, cox.CoxResult]]) -> pd.DataFrame:
    """The paper's headline hazard ratios per cohort: the model's and, on FAHR-Synth, the oracle's and (where one
    exists) the planted value beside it."""
    planted = an.planted or {}
    rows = []
    wanted = [
        ("FaceSurvival: top vs bottom quartile", "FaceSurvival quartiles", "oracle face risk quartiles",
         "risk quartile: Q4", None),
        ("FaceSurvival: per SD", "FaceSurvival per SD", "oracle face risk per SD", "FaceSurvival (per SD)", None),
        ("FaceAge: per decade", "FaceAge per decade", "oracle biological age per decade", "FaceAge (per decade)",
         planted.get("biological-age gap (per decade)")),
    ]  # fmt: skip
    for label, by in models.items():
        for name, model, oracle, term, truth in wanted:
            m = by[model].hr(term)
            rows.append(
                {
                    "cohort": label,
                    "quantity": name,
                    "aHR": m["hr"],
                    "lower": m["lower"],
                    "upper": m["upper"],
                    "95% CI": f"{m['lower']:.2f}–{m['upper']:.2f}",
                    "p": m["p"],
                    "patients": by[model].n,
                    "deaths": by[model].events,
                }
                | ({"oracle aHR": by[oracle].hr(term)["hr"], "planted HR": truth} if an.has_truth else {})
            )
    return pd.DataFrame(rows)


def clinical_terms(model: cox.CoxResult, planted: dict[str, float] | None = None) -> pd.DataFrame:
    """The terms of an adjusted model; with ``planted`` (FAHR-Synth), beside the hazard ratios planted for them."""
    t = model.table[["hr", "lower", "upper", "p"]].copy()
    if planted is not None:
        t.insert(0, "planted HR", [planted.get(term, np.nan) for term in t.index])
    return t


def ph_summary(models: dict[str, dict[str, cox.CoxResult]]) -> pd.DataFrame:
    """The proportional-hazards check of every model: the smallest per-term p and the terms below 0.05."""
    rows = []
    for label, by in models.items():
        for name, m in by.items():
            flagged = m.ph.index[m.ph["p"] < ALPHA].tolist()
            rows.append({"cohort": label, "model": name, "terms": len(m.terms), "smallest p": m.ph["p"].min(),
                         "terms with p < 0.05": ", ".join(flagged) or "none"})  # fmt: skip
    return pd.DataFrame(rows)


def combination_weights(an: Analysis) -> pd.Series:
    """Cox weights of FaceAge (per decade) and FaceSurvival (per SD) fitted together on A's validation split."""
    fit = cox.fit(
        an.validation,
        [score_covariate("faceage", "faceage", 10.0), score_covariate("facesurvival sd", "facesurvival")],
        "combination weights",
    )
    return fit.table["coef"]


ORACLE_SCORE = "oracle (planted hazard)"  # the full planted hazard, clinical factors included: any model's ceiling
FACE_ORACLE_SCORE = "oracle (face-visible)"  # what a face shows of it: FaceSurvival's ceiling


def scores(an: Analysis, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The prognostic scores compared by concordance (higher = higher risk); on FAHR-Synth also the oracle."""
    w = combination_weights(an)
    combined = w["faceage"] * frame["faceage"] / 10 + w["facesurvival"] * frame["facesurvival sd"]
    out = {"FaceAge": frame["faceage"].to_numpy(), "FaceSurvival": frame["facesurvival"].to_numpy(),
           "FaceAge + FaceSurvival": combined.to_numpy(),
           "FaceAge (scratch)": frame["faceage-scratch"].to_numpy()}  # fmt: skip
    if "linear_predictor" in frame.columns:
        out[FACE_ORACLE_SCORE] = frame["oracle_face"].to_numpy()
        out[ORACLE_SCORE] = frame["linear_predictor"].to_numpy()
    return out


def concordance_tables(an: Analysis, kind: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per cohort: each score's concordance with a bootstrap CI, and the paired differences of the combination."""
    per, diffs = [], []
    for label, frame in an.frames.items():
        boot = concordance.bootstrap(scores(an, frame), frame["time"].to_numpy(), frame["event"].to_numpy(),
                                     n_resamples=an.cfg.statistics.bootstrap, seed=an.cfg.seed, kind=kind)  # fmt: skip
        per.append(boot.table().assign(cohort=label))
        for other in ("FaceAge", "FaceSurvival"):
            diffs.append({"cohort": label, "comparison": f"FaceAge + FaceSurvival − {other}",
                          **boot.difference("FaceAge + FaceSurvival", other)})  # fmt: skip
        diffs.append({"cohort": label, "comparison": "FaceAge − FaceAge (scratch)",
                      **boot.difference("FaceAge", "FaceAge (scratch)")})  # fmt: skip
    return pd.concat(per), pd.DataFrame(diffs)


def auc_table(an: Analysis) -> pd.DataFrame:
    """Time-dependent AUC of each score at the configured horizons, per cohort."""
    rows = []
    for label, frame in an.frames.items():
        for name, score in scores(an, frame).items():
            t = concordance.time_auc(score, frame["time"].to_numpy(), frame["event"].to_numpy(),
                                     an.cfg.statistics.auc_years)  # fmt: skip
            rows.append(t.assign(cohort=label, score=name))
    return pd.concat(rows, ignore_index=True)


def nested_tests(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Likelihood-ratio tests of what each score adds, with and without the clinical factors."""
    c = list(CLINICAL)
    age = score_covariate("faceage", "FaceAge (per decade)", 10.0)
    surv = score_covariate("facesurvival sd", "FaceSurvival (per SD)")
    scratch = score_covariate("faceage-scratch", "FaceAge scratch (per decade)", 10.0)
    fits = {
        "both": [age, surv], "FaceAge": [age], "FaceSurvival": [surv],
        "clinical + both": [*c, age, surv], "clinical + FaceAge": [*c, age], "clinical + FaceSurvival": [*c, surv],
        "clinical": c, "clinical + scratch + FaceAge": [*c, scratch, age], "clinical + scratch": [*c, scratch],
    }  # fmt: skip
    m = {name: cox.fit(frame, spec, name) for name, spec in fits.items()}
    pairs = [("both", "FaceSurvival"), ("both", "FaceAge"), ("clinical + both", "clinical + FaceSurvival"),
             ("clinical + both", "clinical + FaceAge"), ("clinical + FaceSurvival", "clinical"),
             ("clinical + FaceAge", "clinical"), ("clinical + scratch + FaceAge", "clinical + scratch")]  # fmt: skip
    rows = []
    for full, reduced in pairs:
        t = cox.lrt(m[full], m[reduced])
        added = m[full].hr(t.added[0]) if len(t.added) == 1 else pd.Series(dtype=float)  # one score added
        rows.append({"cohort": label, "full model": full, "reduced model": reduced, "adds": ", ".join(t.added),
                     "LR statistic": t.statistic, "df": t.df, "p": t.p,
                     "aHR (added)": added.get("hr", np.nan), "lower": added.get("lower", np.nan),
                     "upper": added.get("upper", np.nan), "Wald p": added.get("p", np.nan),
                     "C (full)": m[full].concordance, "C (reduced)": m[reduced].concordance})  # fmt: skip
    return pd.DataFrame(rows)


COMPARED_FACEAGE = "faceage-scratch"  # the prior face-age model FaceAge is compared with head to head


def head_to_head(frame: pd.DataFrame, compared: str = COMPARED_FACEAGE, ties: str = "efron") -> dict[str, float]:
    """FaceAge against a prior face-age model in one adjusted Cox model holding both (and the clinical factors):
    the ratio of FaceAge's HR to the prior model's, exp(β_FaceAge − β_prior), each per SD of its part beyond
    chronological age (the residual of a regression on age, so that the comparison does not depend on either
    model's scale: a FaceAge shrunk toward the mean carries the same prognosis), with its Wald 95 % interval.
    Above 1: FaceAge carries more of the prognosis than the prior model on the same patients. Two identical
    models give exactly 1; a model that merely adds independent noise to the other does not pass."""
    f = frame.copy()
    f["faceage beyond age"], f["prior beyond age"] = beyond_age(f, "faceage"), beyond_age(f, compared)
    covariates = [*CLINICAL, score_covariate("faceage beyond age", "FaceAge (per SD)", _sd(f["faceage beyond age"])),
                  score_covariate("prior beyond age", "prior (per SD)", _sd(f["prior beyond age"]))]  # fmt: skip
    return cox.contrast(f, covariates, "FaceAge (per SD)", "prior (per SD)", ties=ties)


def _sd(values: pd.Series) -> float:
    sd = float(values.std())
    return sd if sd > 0 else 1.0


def beyond_age(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``column`` less its least-squares line on chronological age: what a face-age score says beyond the age."""
    age = frame["age"].to_numpy(float)
    design = np.column_stack([np.ones_like(age), age])
    y = frame[column].to_numpy(float)
    return y - design @ np.linalg.lstsq(design, y, rcond=None)[0]


def score_distinctness(frame: pd.DataFrame) -> dict[str, float]:
    """How much the two scores share beyond chronological age: the Pearson correlation of FaceAge and FaceSurvival
    after each is regressed on age (a partial correlation), with a Fisher-z 95 % interval. Near ±1: the two scores
    carry the same information (a FaceSurvival copied from FaceAge); near 0: distinct."""
    a, b = beyond_age(frame, "faceage"), beyond_age(frame, "facesurvival")
    if a.std() == 0 or b.std() == 0:
        return {"value": float("nan"), "lower": float("nan"), "upper": float("nan")}
    r = float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))
    if abs(r) > 1 - 1e-12:
        return {"value": r, "lower": r, "upper": r}
    z, se = np.arctanh(r), 1.0 / np.sqrt(max(len(a) - 4, 1))  # one variable partialled out
    return {"value": r, "lower": float(np.tanh(z - cox.Z95 * se)), "upper": float(np.tanh(z + cox.Z95 * se))}


def comparisons(an: Analysis) -> pd.DataFrame:
    """Per cohort: FaceAge head to head with the prior model (``head_to_head``) and the two scores' distinctness
    (``score_distinctness``), as the verdicts read them."""
    rows = []
    for label, frame in an.frames.items():
        rows.append({"cohort": label, "comparison": "FaceAge / prior model, aHR ratio per SD beyond age",
                     **head_to_head(frame)})  # fmt: skip
        rows.append({"cohort": label, "comparison": "FaceAge and FaceSurvival beyond age, partial r",
                     **score_distinctness(frame)})  # fmt: skip
    return pd.DataFrame(rows)


COMPARISON_KEYS = {"FaceAge / prior model, aHR ratio per SD beyond age": "headtohead.{c}.faceage_vs_prior",
                   "FaceAge and FaceSurvival beyond age, partial r": "distinct.{c}.scores"}  # fmt: skip


def km_groups(an: Analysis, score: str = "facesurvival") -> dict[str, pd.DataFrame]:
    """Per cohort: time, event and the development-cohort quartile of ``score``."""
    return {label: f[["time", "event", f"{score} q"]].rename(columns={f"{score} q": "quartile"})
            for label, f in an.frames.items()}  # fmt: skip


def all_adjusted(an: Analysis) -> dict[str, dict[str, cox.CoxResult]]:
    return {label: adjusted_models(f, label) for label, f in an.frames.items()}


def reading(head: pd.DataFrame, lrts: pd.DataFrame, conc: pd.DataFrame, diffs: pd.DataFrame) -> str:
    """A plain-language reading of the chapter's numbers, written from them."""
    out = []
    for label in head["cohort"].unique():
        h = head[head["cohort"] == label].set_index("quantity")
        q = h.loc["FaceSurvival: top vs bottom quartile"]
        d = h.loc["FaceAge: per decade"]
        both = lrts[(lrts["cohort"] == label) & (lrts["full model"] == "clinical + both")
                    & (lrts["reduced model"] == "clinical + FaceSurvival")].iloc[0]  # fmt: skip
        c = conc[conc["cohort"] == label].set_index("score")["C"]
        diff = diffs[(diffs["cohort"] == label) & (diffs["comparison"] == "FaceAge + FaceSurvival − FaceSurvival")]
        diff = diff.iloc[0]
        verdict = "significantly" if q["p"] < ALPHA else "not significantly"
        truth = "oracle aHR" in h.columns
        out.append(
            f"- **Cohort {label}**: patients in the top FaceSurvival quartile died at {q['aHR']:.2f} times the rate "
            f"of the bottom quartile after adjustment ({q['95% CI']}, {verdict} different from 1"
            + (f"; an oracle that sees the planted face signal reaches {q['oracle aHR']:.2f}" if truth else "")
            + f"). Each decade of FaceAge beyond chronological age carried an adjusted HR of {d['aHR']:.2f} "
            f"({d['95% CI']})"
            + (
                f", against the {d['planted HR']:.2f} planted and {d['oracle aHR']:.2f} for the true biological age"
                if truth
                else ""
            )
            + f". Adding FaceAge to FaceSurvival and the clinical factors gave a likelihood-ratio statistic of "
            f"{both['LR statistic']:.1f} on {both['df']} df (p = {both['p']:.2g}); Harrell's C of the combined score "
            f"was {c['FaceAge + FaceSurvival']:.3f} against {c['FaceSurvival']:.3f} for FaceSurvival alone "
            f"(difference {diff['difference']:+.3f}, 95 % CI {diff['lower']:+.3f} to {diff['upper']:+.3f})"
            + (
                f"; a face can show at most {c[FACE_ORACLE_SCORE]:.3f} (the face-visible oracle), and the full "
                f"planted hazard, clinical factors included, reaches {c[ORACLE_SCORE]:.3f}."
                if ORACLE_SCORE in c.index
                else "."
            )
        )
    return "\n".join(out)


def headline_results(head: pd.DataFrame, lrts: pd.DataFrame, harrell: pd.DataFrame, diffs: pd.DataFrame,
                     compared: pd.DataFrame | None = None) -> list:  # fmt: skip
    """The FaceSurvival chapter's numbers for the reproduction report (``Result`` each); the oracle and planted
    values only where the tables carry them (FAHR-Synth); with ``compared`` (``comparisons``), the head-to-head
    and distinctness numbers."""
    out = []
    for _, row in (compared if compared is not None else pd.DataFrame()).iterrows():
        c = row["cohort"][0]
        out.append(Result(COMPARISON_KEYS[row["comparison"]].format(c=c), f"cohort {c}: {row['comparison']}",
                          float(row["value"]), "", lower=float(row["lower"]), upper=float(row["upper"])))  # fmt: skip
    keys = {"FaceSurvival: top vs bottom quartile": "q4_vs_q1", "FaceSurvival: per SD": "per_sd",
            "FaceAge: per decade": "faceage_decade"}  # fmt: skip
    for _, row in head.iterrows():
        c = row["cohort"][0]
        result = Result(f"survival.{c}.{keys[row['quantity']]}", f"cohort {c}: {row['quantity']}, adjusted HR",
                        float(row["aHR"]), lower=float(row["lower"]), upper=float(row["upper"]), p=float(row["p"]),
                        oracle=_optional(row, "oracle aHR"), planted=_optional(row, "planted HR"))  # fmt: skip
        out.append(result)
    for _, row in lrts.iterrows():
        c = row["cohort"][0]
        name = {("clinical + both", "clinical + FaceSurvival"): "faceage_adds",
                ("clinical + both", "clinical + FaceAge"): "facesurvival_adds",
                ("clinical + scratch + FaceAge", "clinical + scratch"): "faceage_beyond_scratch"}.get(
            (row["full model"], row["reduced model"]))  # fmt: skip
        if name:
            out.append(Result(f"lrt.{c}.{name}", f"cohort {c}: LRT {row['full model']} vs {row['reduced model']}",
                              float(row["LR statistic"]), f"χ²({row['df']})", p=float(row["p"])))  # fmt: skip
            # the size of what the score adds: its adjusted HR in the larger model, with the Wald interval
            unit = "per decade" if "FaceAge" in row["adds"] else "per SD"
            out.append(Result(f"added.{c}.{name}", f"cohort {c}: aHR of {row['adds']} in {row['full model']}",
                              float(row["aHR (added)"]), unit, lower=float(row["lower"]), upper=float(row["upper"]),
                              p=float(row["Wald p"])))  # fmt: skip
    conc = harrell.reset_index()
    oracle = conc[conc["score"] == FACE_ORACLE_SCORE].set_index("cohort")["C"]
    for _, row in conc[~conc["score"].isin((ORACLE_SCORE, FACE_ORACLE_SCORE))].iterrows():
        c = row["cohort"][0]
        out.append(
            Result(f"c.{c}.{row['score']}", f"cohort {c}: Harrell's C, {row['score']}", float(row["C"]), "",
                   lower=float(row["lower"]), upper=float(row["upper"]), oracle=_optional(oracle, row["cohort"]))
        )  # fmt: skip
    for _, row in diffs.iterrows():
        c = row["cohort"][0]
        out.append(Result(f"cdiff.{c}.{row['comparison']}", f"cohort {c}: ΔC {row['comparison']}",
                          float(row["difference"]), "", lower=float(row["lower"]), upper=float(row["upper"]),
                          p=float(row["p"])))  # fmt: skip
    return out


def _optional(values: pd.Series, key: str) -> float | None:
    """``values[key]`` as a float, or None where it is absent or missing (no truth, no planted value)."""
    value = values.get(key)
    return None if value is None or pd.isna(value) else float(value)


def km_tables(groups: dict[str, pd.DataFrame], years: Sequence[float] = (1, 2, 5)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per cohort: the log-rank tests across quartiles and Q4 vs Q1, and Kaplan–Meier survival (%) at ``years``."""
    tests = pd.concat([cox.logrank(g, "quartile").assign(cohort=label) for label, g in groups.items()])
    survival = pd.concat(
        {label: cox.survival_at(cox.kaplan_meier(g, "quartile"), years) for label, g in groups.items()}
    )
    return tests.set_index(["cohort", "test"]), survival.rename_axis(["cohort", "quartile"])


def gap_identity(models: dict[str, dict[str, cox.CoxResult]]) -> pd.DataFrame:
    """FaceAge per decade and the FaceAge gap per decade, both adjusted for chronological age: the same HR."""
    return pd.DataFrame({
        label: {"FaceAge per decade": by["FaceAge per decade"].hr("FaceAge (per decade)")["hr"],
                "FaceAge gap per decade": by["FaceAge gap per decade"].hr("FaceAge gap (per decade)")["hr"]}
        for label, by in models.items()
    })  # fmt: skip


PROGNOSIS_MODELS = ("FaceAge per decade", "FaceAge stage 1 per decade", "FaceAge scratch per decade",
                    "oracle biological age per decade")  # fmt: skip


def prognosis_table(models: dict[str, dict[str, cox.CoxResult]]) -> pd.DataFrame:
    """FaceAge against the weaker face-age models and the oracle: adjusted HR per decade and the model's C."""
    rows = []
    for label, by in models.items():
        for name in (n for n in PROGNOSIS_MODELS if n in by):  # the oracle's only on FAHR-Synth
            r = by[name].hr("FaceAge (per decade)")
            rows.append({"cohort": label, "model": name.replace(" per decade", ""), "aHR per decade": r["hr"],
                         "95% CI": f"{r['lower']:.2f}–{r['upper']:.2f}", "p": r["p"],
                         "C (adjusted model)": by[name].concordance})  # fmt: skip
    return pd.DataFrame(rows)


def clinical_terms_table(models: dict[str, dict[str, cox.CoxResult]], planted: dict[str, float] | None) -> pd.DataFrame:
    """``clinical_terms`` of each cohort's FaceSurvival-per-SD model, side by side."""
    return pd.concat(
        {label: clinical_terms(by["FaceSurvival per SD"], planted) for label, by in models.items()}, axis=1
    )


def weights_sentence(weights: pd.Series) -> str:
    """The combination weights (``combination_weights``) in one Markdown sentence."""
    return (
        f"Combination weights (Cox, cohort A validation split): {weights['faceage']:.3f} per decade of FaceAge and "
        f"{weights['facesurvival']:.3f} per SD of FaceSurvival risk."
    )


def all_nested_tests(an: Analysis) -> pd.DataFrame:
    """``nested_tests`` of both evaluation cohorts, stacked."""
    return pd.concat([nested_tests(f, label) for label, f in an.frames.items()], ignore_index=True)


def side_by_side(tables: dict[str, pd.DataFrame], index: list[str]) -> pd.DataFrame:
    """Tables of the same rows (e.g. Harrell's and Uno's concordance) side by side, keyed by ``index``."""
    return pd.concat({name: t.reset_index().set_index(index) for name, t in tables.items()}, axis=1)


def auc_wide(auc: pd.DataFrame) -> pd.DataFrame:
    """``auc_table`` with one column per horizon (years)."""
    return auc.pivot_table(index=["cohort", "score"], columns="year", values="auc")


def data_note(an: Analysis) -> str:
    """What the chapter's numbers are about: FAHR-Synth (a planted effect recovered) or real patients."""
    if an.has_truth:
        return (
            "These are FAHR-Synth results: they show that the pipeline recovers a planted effect and how far a model "
            "trained at this scale falls short of the oracle, not how faces predict the survival of real patients. "
            "With `PROFILE=paper` and real cohorts the same cells compute the paper's numbers."
        )
    return (
        "These numbers come from the real clinical cohorts given to this build; the paper's own values stand "
        "beside them in the reproduction report."
    )
