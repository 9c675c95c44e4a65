"""The clinical analyses of the FaceSurvival and Subgroups chapters, on FAHR-Synth's two cancer cohorts.

Cohort A's test split is the development analysis set (FaceSurvival trained on A's training split and stopped on
its validation split); cohort B is the independent cohort. Quartile cut points and the SD that scales the risk
score are fixed on A's test split and carried unchanged to B; the weights that combine FaceAge and
FaceSurvival are fitted on A's validation split, so neither evaluation set chooses its own score.

Beside every model stands what FAHR-Synth knows: the planted log-hazard ratios (``world.HAZARD``) and an
oracle that uses the latent truth in place of a model's prediction — the true biological age for FaceAge, and
the face-visible part of the planted hazard (frailty and biological-age gap) for FaceSurvival.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fahr import predict
from fahr.analysis.headline import Result
from fahr.core.config import Config
from fahr.data.synth import cohorts, world
from fahr.stats import concordance, cox

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


def planted_hr() -> dict[str, float]:
    """Hazard ratio FAHR-Synth planted for each clinical term (and for biological age beyond chronological)."""
    h = world.HAZARD
    out = {"age (per decade)": h["age_decade"], "sex: M": h["male"], "stage (per stage)": h["stage"],
           "ECOG (per point)": h["ecog"], "biological-age gap (per decade)": h["bio_gap_decade"],
           "frailty (per SD)": h["frailty_sd"]}  # fmt: skip
    out.update({f"cancer: {k}": v - h["cancer"]["other"] for k, v in h["cancer"].items() if k != "other"})
    return {k: float(np.exp(v)) for k, v in out.items()}


def cohort_table(cfg: Config, cohort: str) -> pd.DataFrame:
    """One row per patient of a clinical cohort: clinical columns, every face model's prediction and the latent
    truth the oracle uses (``bio_age``, ``oracle_face``: the face-visible planted log-hazard)."""
    photos, truth, _ = cohorts.load(cfg.profile, cohort)
    frame = photos.drop(columns=["path"]).merge(
        truth[["image_id", "bio_gap", "frailty", "linear_predictor"]], on="image_id", validate="one_to_one"
    )
    for model, output in FACE_MODELS.items():
        values = predict.table(cfg, model, cohort).set_index("image_id")[output]
        frame[model] = frame["image_id"].map(values)
    h = world.HAZARD
    frame["bio_age"] = frame["age"] + frame["bio_gap"]
    frame["oracle_face"] = h["frailty_sd"] * frame["frailty"] + h["bio_gap_decade"] * frame["bio_gap"] / 10
    for model in ("faceage", "faceage-stage1", "faceage-scratch"):
        frame[f"{model} gap"] = frame[model] - frame["age"]
    return frame.set_index("image_id")


@dataclass(frozen=True)
class Scales:
    """What is fixed on the development cohort and carried to the others: the risk SDs and quartile cuts."""

    mean: dict[str, float]
    sd: dict[str, float]
    cuts: dict[str, np.ndarray]


SCORES = ("facesurvival", "facesurvival-scratch", "oracle_face")


def scales(development: pd.DataFrame) -> Scales:
    return Scales(
        mean={s: float(development[s].mean()) for s in SCORES},
        sd={s: float(development[s].std()) for s in SCORES},
        cuts={s: cox.quartile_cuts(development[s]) for s in SCORES},
    )


def scaled(frame: pd.DataFrame, sc: Scales) -> pd.DataFrame:
    """Add each risk score per development-cohort SD (``<score> sd``) and its quartile (``<score> q``)."""
    out = frame.copy()
    for s in SCORES:
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
    planted: dict

    @property
    def labels(self) -> list[str]:
        return list(self.frames)


def load(cfg: Config) -> Analysis:
    """Predictions and truth for A's validation and test splits and cohort B, with A-fixed scales."""
    a = cohort_table(cfg, "clinical-a")
    b = cohort_table(cfg, "clinical-b")
    sc = scales(a[a["split"] == "test"])
    frames = {COHORTS[0][0]: scaled(a[a["split"] == "test"], sc), COHORTS[1][0]: scaled(b, sc)}
    planted = {c: cohorts.load(cfg.profile, c)[2] for c in ("clinical-a", "clinical-b")}
    return Analysis(cfg, frames, scaled(a[a["split"] == "val"], sc), sc, planted)


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
    """The multivariable Cox models of one cohort, each adjusted for the clinical factors."""
    c = list(CLINICAL)
    specs = {
        "clinical only": c,
        "FaceSurvival per SD": [*c, score_covariate("facesurvival sd", "FaceSurvival (per SD)")],
        "FaceSurvival quartiles": [*c, quartile_covariate("facesurvival")],
        "FaceAge per decade": [*c, score_covariate("faceage", "FaceAge (per decade)", 10.0)],
        "FaceAge gap per decade": [*c, score_covariate("faceage gap", "FaceAge gap (per decade)", 10.0)],
        "FaceAge stage 1 per decade": [*c, score_covariate("faceage-stage1", "FaceAge (per decade)", 10.0)],
        "FaceAge scratch per decade": [*c, score_covariate("faceage-scratch", "FaceAge (per decade)", 10.0)],
        "FaceSurvival scratch per SD": [*c, score_covariate("facesurvival-scratch sd", "FaceSurvival (per SD)")],
        "oracle face risk per SD": [*c, score_covariate("oracle_face sd", "FaceSurvival (per SD)")],
        "oracle face risk quartiles": [*c, quartile_covariate("oracle_face")],
        "oracle biological age per decade": [*c, score_covariate("bio_age", "FaceAge (per decade)", 10.0)],
    }
    return {name: cox.fit(frame, spec, f"{label}: {name}") for name, spec in specs.items()}


def headline(an: Analysis, models: dict[str, dict[str, cox.CoxResult]]) -> pd.DataFrame:
    """The paper's headline hazard ratios per cohort: model, oracle and (where one exists) the planted value."""
    planted = planted_hr()
    rows = []
    wanted = [
        ("FaceSurvival: top vs bottom quartile", "FaceSurvival quartiles", "oracle face risk quartiles",
         "risk quartile: Q4", None),
        ("FaceSurvival: per SD", "FaceSurvival per SD", "oracle face risk per SD", "FaceSurvival (per SD)", None),
        ("FaceAge: per decade", "FaceAge per decade", "oracle biological age per decade", "FaceAge (per decade)",
         planted["biological-age gap (per decade)"]),
    ]  # fmt: skip
    for label, by in models.items():
        for name, model, oracle, term, truth in wanted:
            m, o = by[model].hr(term), by[oracle].hr(term)
            rows.append(
                {
                    "cohort": label,
                    "quantity": name,
                    "aHR": m["hr"],
                    "lower": m["lower"],
                    "upper": m["upper"],
                    "95% CI": f"{m['lower']:.2f}–{m['upper']:.2f}",
                    "p": m["p"],
                    "oracle aHR": o["hr"],
                    "planted HR": truth,
                    "patients": by[model].n,
                    "deaths": by[model].events,
                }
            )
    return pd.DataFrame(rows)


def clinical_terms(model: cox.CoxResult) -> pd.DataFrame:
    """The clinical terms of an adjusted model beside the hazard ratios FAHR-Synth planted for them."""
    planted = planted_hr()
    t = model.table[["hr", "lower", "upper", "p"]].copy()
    t.insert(0, "planted HR", [planted.get(term, np.nan) for term in t.index])
    return t


def ph_summary(models: dict[str, dict[str, cox.CoxResult]]) -> pd.DataFrame:
    """The proportional-hazards check of every model: the smallest per-term p and the terms below 0.05."""
    rows = []
    for label, by in models.items():
        for name, m in by.items():
            flagged = m.ph.index[m.ph["p"] < 0.05].tolist()
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


def scores(an: Analysis, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The prognostic scores compared by concordance (higher = higher risk)."""
    w = combination_weights(an)
    combined = w["faceage"] * frame["faceage"] / 10 + w["facesurvival"] * frame["facesurvival sd"]
    return {"FaceAge": frame["faceage"].to_numpy(), "FaceSurvival": frame["facesurvival"].to_numpy(),
            "FaceAge + FaceSurvival": combined.to_numpy(), "FaceAge (scratch)": frame["faceage-scratch"].to_numpy(),
            "oracle (planted hazard)": frame["linear_predictor"].to_numpy()}  # fmt: skip


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
        rows.append({"cohort": label, "full model": full, "reduced model": reduced, "adds": ", ".join(t.added),
                     "LR statistic": t.statistic, "df": t.df, "p": t.p,
                     "C (full)": m[full].concordance, "C (reduced)": m[reduced].concordance})  # fmt: skip
    return pd.DataFrame(rows)


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
        verdict = "significantly" if q["p"] < 0.05 else "not significantly"
        out.append(
            f"- **Cohort {label}**: patients in the top FaceSurvival quartile died at {q['aHR']:.2f} times the rate "
            f"of the bottom quartile after adjustment ({q['95% CI']}, {verdict} different from 1; an oracle that "
            f"sees the planted face signal reaches {q['oracle aHR']:.2f}). Each decade of FaceAge beyond "
            f"chronological age carried an adjusted HR of {d['aHR']:.2f} ({d['95% CI']}), against the "
            f"{d['planted HR']:.2f} planted and {d['oracle aHR']:.2f} for the true biological age. Adding FaceAge "
            f"to FaceSurvival and the clinical factors gave a likelihood-ratio statistic of {both['LR statistic']:.1f} "
            f"on {both['df']} df (p = {both['p']:.2g}); Harrell's C of the combined score was "
            f"{c['FaceAge + FaceSurvival']:.3f} against {c['FaceSurvival']:.3f} for FaceSurvival alone "
            f"(difference {diff['difference']:+.3f}, 95 % CI {diff['lower']:+.3f} to {diff['upper']:+.3f}), and the "
            f"oracle's {c['oracle (planted hazard)']:.3f} is the ceiling."
        )
    return "\n".join(out)


def headline_results(head: pd.DataFrame, lrts: pd.DataFrame, harrell: pd.DataFrame, diffs: pd.DataFrame) -> list:
    """The FaceSurvival chapter's numbers for the reproduction report (``Result`` each)."""
    planted = planted_hr()
    out = []
    keys = {"FaceSurvival: top vs bottom quartile": ("q4_vs_q1", None),
            "FaceSurvival: per SD": ("per_sd", None),
            "FaceAge: per decade": ("faceage_decade",
                                    planted["biological-age gap (per decade)"])}  # fmt: skip
    for _, row in head.iterrows():
        c = row["cohort"][0]
        key, truth = keys[row["quantity"]]
        result = Result(f"survival.{c}.{key}", f"cohort {c}: {row['quantity']}, adjusted HR", float(row["aHR"]),
                        lower=float(row["lower"]), upper=float(row["upper"]), p=float(row["p"]),
                        oracle=float(row["oracle aHR"]), planted=truth)  # fmt: skip
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
    conc = harrell.reset_index()
    oracle = conc[conc["score"] == "oracle (planted hazard)"].set_index("cohort")["C"]
    for _, row in conc[conc["score"] != "oracle (planted hazard)"].iterrows():
        c = row["cohort"][0]
        out.append(
            Result(f"c.{c}.{row['score']}", f"cohort {c}: Harrell's C, {row['score']}", float(row["C"]), "",
                   lower=float(row["lower"]), upper=float(row["upper"]), oracle=float(oracle[row["cohort"]]))
        )  # fmt: skip
    for _, row in diffs.iterrows():
        c = row["cohort"][0]
        out.append(Result(f"cdiff.{c}.{row['comparison']}", f"cohort {c}: ΔC {row['comparison']}",
                          float(row["difference"]), "", lower=float(row["lower"]), upper=float(row["upper"]),
                          p=float(row["p"])))  # fmt: skip
    return out


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
        for name in PROGNOSIS_MODELS:
            r = by[name].hr("FaceAge (per decade)")
            rows.append({"cohort": label, "model": name.replace(" per decade", ""), "aHR per decade": r["hr"],
                         "95% CI": f"{r['lower']:.2f}–{r['upper']:.2f}", "p": r["p"],
                         "C (adjusted model)": by[name].concordance})  # fmt: skip
    return pd.DataFrame(rows)
