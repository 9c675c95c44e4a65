"""The reproduction report: each claim of the paper, its number, this build's numbers, and a verdict written
by code from them.

On FAHR-Synth a claim is *reproduced* when the build shows the effect the paper claims, measured against the
truth FAHR-Synth planted (a model beats its baselines, a hazard ratio's interval excludes 1, an interaction
test does not reject a common effect that was planted, …). The paper's own numbers (5.1 years, aHR 3.22) are
properties of real faces and real patients: on FAHR-Synth their verdict says so instead of comparing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

Table = pd.DataFrame  # ``fahr.results.table``: one row per recorded number, indexed by key


def v(t: Table, key: str) -> float:
    return float(t.loc[key, "value"])


def field(t: Table, key: str, name: str) -> float:
    return float(t.loc[key, name])


def ci(t: Table, key: str, digits: int = 2) -> str:
    return f"{v(t, key):.{digits}f} ({field(t, key, 'lower'):.{digits}f}–{field(t, key, 'upper'):.{digits}f})"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and how this build tests it."""

    name: str
    claim: str  # the paper's words, shortened
    paper: str  # the paper's number(s)
    keys: tuple[str, ...]  # the recorded numbers the test needs
    evidence: Callable[[Table], str]  # this build's numbers, in words
    test: Callable[[Table], bool]  # does the build show it?
    absolute: bool = False  # the paper's number itself needs the real data


def _both(t: Table, fn: Callable[[str], bool]) -> bool:
    return fn("A") and fn("B")


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "FaceAge accuracy",
        "FaceAge has the lowest age error among the models compared",
        "MAE 5.1 y (APPA-REAL)",
        ("faceage.mae", "faceage.mae.scratch", "faceage.mae.mean_baseline"),
        lambda t: (
            f"MAE {v(t, 'faceage.mae'):.2f} y; from scratch {v(t, 'faceage.mae.scratch'):.2f}; mean-age baseline "
            f"{v(t, 'faceage.mae.mean_baseline'):.2f}; oracle floor {field(t, 'faceage.mae', 'oracle'):.2f}"
        ),
        lambda t: v(t, "faceage.mae") < min(v(t, "faceage.mae.scratch"), v(t, "faceage.mae.mean_baseline")),
        absolute=True,
    ),
    Claim(
        "Across the lifespan",
        "Two-stage, age-balanced fine-tuning keeps FaceAge accurate across the whole lifespan",
        "—",
        ("lifespan.faceage.mean_decade_mae", "lifespan.faceage-stage1.mean_decade_mae",
         "lifespan.faceage.worst_decade_mae", "lifespan.faceage-stage1.worst_decade_mae"),
        lambda t: (
            f"mean of decade MAEs {v(t, 'lifespan.faceage.mean_decade_mae'):.2f} y (stage 1 alone "
            f"{v(t, 'lifespan.faceage-stage1.mean_decade_mae'):.2f}); worst decade "
            f"{v(t, 'lifespan.faceage.worst_decade_mae'):.1f} y "
            f"(stage 1 {v(t, 'lifespan.faceage-stage1.worst_decade_mae'):.1f})"
        ),
        lambda t: v(t, "lifespan.faceage.mean_decade_mae") < v(t, "lifespan.faceage-stage1.mean_decade_mae")
        and v(t, "lifespan.faceage.worst_decade_mae") < v(t, "lifespan.faceage-stage1.worst_decade_mae"),
    ),
    Claim(
        "Foundation model",
        "Pretraining makes the biomarkers learnable from modest labelled data",
        "—",
        ("efficiency.faceage.100%.pretrained", "efficiency.faceage.100%.scratch"),
        lambda t: "; ".join(
            f"{share}: MAE {v(t, f'efficiency.faceage.{share}.pretrained'):.2f} vs "
            f"{v(t, f'efficiency.faceage.{share}.scratch'):.2f} y, "
            f"C {v(t, f'efficiency.facesurvival.{share}.pretrained'):.3f}"
            f" vs {v(t, f'efficiency.facesurvival.{share}.scratch'):.3f}"
            for share in _shares(t)
        )
        + " (pretrained vs scratch, validation)",
        lambda t: all(
            v(t, f"efficiency.faceage.{s}.pretrained") < v(t, f"efficiency.faceage.{s}.scratch")
            and v(t, f"efficiency.facesurvival.{s}.pretrained") > v(t, f"efficiency.facesurvival.{s}.scratch")
            for s in _shares(t)
        ),
    ),
    Claim(
        "FaceSurvival quartiles",
        "The highest FaceSurvival quartile has over three times the mortality of the lowest, adjusted",
        "aHR 3.22, P < 0.001",
        ("survival.A.q4_vs_q1",),
        lambda t: (
            f"aHR {ci(t, 'survival.A.q4_vs_q1')}, p = {field(t, 'survival.A.q4_vs_q1', 'p'):.2g}; oracle "
            f"{field(t, 'survival.A.q4_vs_q1', 'oracle'):.2f}"
        ),
        lambda t: field(t, "survival.A.q4_vs_q1", "lower") > 1,
        absolute=True,
    ),
    Claim(
        "Independent cohort",
        "FaceSurvival's prognostic value holds in the independent cohort",
        "validated",
        ("survival.B.q4_vs_q1",),
        lambda t: (
            f"cohort B aHR {ci(t, 'survival.B.q4_vs_q1')}, p = {field(t, 'survival.B.q4_vs_q1', 'p'):.2g}; oracle "
            f"{field(t, 'survival.B.q4_vs_q1', 'oracle'):.2f}"
        ),
        lambda t: field(t, "survival.B.q4_vs_q1", "lower") > 1,
    ),
    Claim(
        "FaceAge prognosis",
        "FaceAge predicts survival better than a prior face-age model",
        "HR per decade 1.151 (predecessor)",
        ("survival.A.faceage_decade", "survival.B.faceage_decade", "lrt.A.faceage_beyond_scratch",
         "lrt.B.faceage_beyond_scratch"),
        lambda t: "; ".join(
            f"{c}: aHR per decade {ci(t, f'survival.{c}.faceage_decade')} (planted "
            f"{field(t, f'survival.{c}.faceage_decade', 'planted'):.2f}), beyond the scratch model χ² = "
            f"{v(t, f'lrt.{c}.faceage_beyond_scratch'):.1f}, p = {field(t, f'lrt.{c}.faceage_beyond_scratch', 'p'):.2g}"
            for c in "AB"
        ),
        lambda t: _both(t, lambda c: field(t, f"lrt.{c}.faceage_beyond_scratch", "p") < 0.05),
    ),
    Claim(
        "Combination",
        "Combining FaceAge and FaceSurvival improves prognostic accuracy",
        "improved (LRT, concordance)",
        ("lrt.A.faceage_adds", "lrt.B.faceage_adds", "cdiff.A.FaceAge + FaceSurvival − FaceSurvival",
         "cdiff.B.FaceAge + FaceSurvival − FaceSurvival"),
        lambda t: "; ".join(
            f"{c}: FaceAge adds χ² = {v(t, f'lrt.{c}.faceage_adds'):.1f} "
            f"(p = {field(t, f'lrt.{c}.faceage_adds', 'p'):.2g}), "
            f"ΔC {v(t, f'cdiff.{c}.FaceAge + FaceSurvival − FaceSurvival'):+.3f}"
            for c in "AB"
        ),
        lambda t: _both(t, lambda c: field(t, f"lrt.{c}.faceage_adds", "p") < 0.05),
    ),
    Claim(
        "Complementary",
        "The two scores carry distinct, complementary information",
        "—",
        ("lrt.A.faceage_adds", "lrt.A.facesurvival_adds", "lrt.B.faceage_adds", "lrt.B.facesurvival_adds"),
        lambda t: "; ".join(
            f"{c}: FaceSurvival adds to FaceAge p = {field(t, f'lrt.{c}.facesurvival_adds', 'p'):.2g}, FaceAge to "
            f"FaceSurvival p = {field(t, f'lrt.{c}.faceage_adds', 'p'):.2g}"
            for c in "AB"
        ),
        lambda t: _both(
            t,
            lambda c: field(t, f"lrt.{c}.faceage_adds", "p") < 0.05
            and field(t, f"lrt.{c}.facesurvival_adds", "p") < 0.05,
        ),
    ),
    Claim(
        "Subgroups",
        "Both models generalise across age, sex, race and cancer subgroups",
        "generalisable",
        ("subgroups.interaction_min_p", "subgroups.hr_above_one", "subgroups.interactions_rejected"),
        lambda t: (
            f"{v(t, 'subgroups.interactions_rejected'):.0f} {t.loc['subgroups.interactions_rejected', 'unit']} "
            f"interaction tests reject at p < 0.05 (smallest p {v(t, 'subgroups.interaction_min_p'):.2g}); aHR > 1 "
            f"in {v(t, 'subgroups.hr_above_one'):.0f} {t.loc['subgroups.hr_above_one', 'unit']} subgroups"
        ),
        lambda t: v(t, "subgroups.interaction_min_p") > 0.05 / _count(t.loc["subgroups.interactions_rejected", "unit"])
        and v(t, "subgroups.hr_above_one") >= 0.75 * _count(t.loc["subgroups.hr_above_one", "unit"]),
    ),
    Claim(
        "Pose and lighting",
        "Both models hold up when pose and lighting change but the face does not",
        "robust",
        ("robustness.age.min_icc", "robustness.age.max_shift", "robustness.risk.min_spearman",
         "robustness.risk.max_shift"),
        lambda t: (
            f"FaceAge: largest mean shift {v(t, 'robustness.age.max_shift'):.2f} y, lowest ICC(2,1) "
            f"{v(t, 'robustness.age.min_icc'):.3f}; FaceSurvival: largest shift "
            f"{v(t, 'robustness.risk.max_shift'):.2f} SD, lowest rank stability "
            f"{v(t, 'robustness.risk.min_spearman'):.2f} (criteria: ICC ≥ 0.9, Spearman ≥ 0.8)"
        ),
        lambda t: v(t, "robustness.age.min_icc") >= 0.9 and v(t, "robustness.risk.min_spearman") >= 0.8,
    ),
    Claim(
        "Makeup and surgery",
        "FaceAge holds up under makeup and cosmetic surgery",
        "robust",
        ("surgery.makeup.age_change", "surgery.facelift.age_change", "surgery.blepharoplasty.age_change"),
        lambda t: "; ".join(
            f"{c}: {v(t, f'surgery.{c}.age_change'):+.2f} y (planted cue change "
            f"{field(t, f'surgery.{c}.age_change', 'planted'):+.1f} y equivalent)"
            for c in ("makeup", "facelift", "blepharoplasty")
        )
        + " (criterion: |change| ≤ 1 year; the true age never changed)",
        lambda t: all(abs(v(t, f"surgery.{c}.age_change")) <= 1.0 for c in ("makeup", "facelift", "blepharoplasty")),
    ),
    Claim(
        "Distinct regions",
        "Saliency maps show that the two models rely on distinct facial regions",
        "distinct",
        ("saliency.distinct.spearman",),
        lambda t: (
            f"regional profiles correlate with Spearman {ci(t, 'saliency.distinct.spearman')}, permutation p = "
            f"{field(t, 'saliency.distinct.spearman', 'p'):.3g}"
        ),
        lambda t: field(t, "saliency.distinct.spearman", "p") < 0.05,
    ),
)  # fmt: skip


def _shares(t: Table) -> list[str]:
    return [k.split(".")[2] for k in t.index if k.startswith("efficiency.faceage.") and k.endswith(".pretrained")]


def _count(unit: str) -> int:
    """The n of a unit written "of n"."""
    return int(str(unit).split()[-1])


VERDICTS = ("reproduced on FAHR-Synth", "not reproduced on FAHR-Synth", "not run")


def verdicts(t: Table, claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """One row per claim: the paper's number, this build's numbers and the verdict, all from ``t``."""
    rows = []
    for c in claims:
        missing = [k for k in c.keys if k not in t.index]
        if missing:
            missing_text = f"not computed ({', '.join(missing)} missing)"
            rows.append({"claim": c.name, "paper says": c.claim, "paper": c.paper, "this build": missing_text,
                         "verdict": "not run"})  # fmt: skip
            continue
        verdict = VERDICTS[0] if c.test(t) else VERDICTS[1]
        if c.absolute:
            verdict += "; the paper's value needs the real data"
        rows.append({"claim": c.name, "paper says": c.claim, "paper": c.paper, "this build": c.evidence(t),
                     "verdict": verdict})  # fmt: skip
    return pd.DataFrame(rows)


def tally(table: pd.DataFrame) -> str:
    """A sentence counting the verdicts."""
    reproduced = table["verdict"].str.startswith(VERDICTS[0]).sum()
    failed = table["verdict"].str.startswith(VERDICTS[1]).sum()
    missing = (table["verdict"] == "not run").sum()
    return (
        f"Of {len(table)} claims, **{reproduced}** are reproduced on FAHR-Synth, **{failed}** are not, and "
        f"{missing} were not run in this build."
    )


def save_summary(fig, profile: str) -> Path:
    """Write the report's summary figure to ``artifacts/<profile>/report/summary.png`` (atomically); `make
    readme-figure` copies the demo's into ``docs/`` for the README."""
    from fahr import paths, provenance

    out = paths.stage_dir(profile, "report") / "summary.png"
    with provenance.atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return out
