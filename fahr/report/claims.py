"""The reproduction report: each claim of the paper, its number, this build's numbers, and a verdict written
by code from them.

A verdict has three values. A claim is *reproduced* when its interval shows the effect in the claimed direction
(a hazard ratio's interval above 1, a concordance gain's above 0, …), *not reproduced* when its interval excludes
the smallest effect that would count (``SMALLEST``: the effect is surely too small to matter, or absent), and
*inconclusive* otherwise: the build is too small to tell. Beside each verdict, on FAHR-Synth, the power of its test
at this build's size (``fahr.report.power``): the share of simulated builds, drawn from the planted model with
models as accurate as this build's, in which the test shows the effect. A claim judged on point estimates (no
interval is recorded for it) has two values. The paper's own numbers (5.1 years, aHR 3.22) are properties of real
faces and real patients: on FAHR-Synth their verdict says so instead of comparing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fahr.core import paths, provenance
from fahr.report import book
from fahr.report.paper import PAPER
from fahr.stats import ALPHA

Table = pd.DataFrame  # ``fahr.report.results.table``: one row per recorded number, indexed by key

# Every threshold a verdict uses (and ALPHA, the significance level of every test, from fahr.stats)
MIN_ICC = 0.9  # FaceAge ICC(2,1) under pose and lighting
MIN_RANK_STABILITY = 0.8  # FaceSurvival Spearman under pose and lighting
MAX_SURGERY_SHIFT = 1.0  # years: FaceAge change under makeup and surgery
MIN_SHARE_HR_ABOVE_ONE = 0.75  # of the subgroups with an estimated FaceSurvival aHR
MAX_SHARED_RANKING = 0.7  # distinct regions: the upper 95 % bound of the two profiles' Spearman stays below "strong"

# The smallest effect that would count, per claim tested on an interval: an interval wholly below it is "not
# reproduced" (the effect, if any, is too small to matter); one that holds it and does not show the effect is
# "inconclusive".
SMALLEST = {
    "quartile_hr": 1.5,  # FaceSurvival's adjusted HR, top vs bottom quartile (the paper reports 3.22)
    "faceage_hr_decade": 1.05,  # FaceAge's adjusted HR per decade beyond a model (the predecessor's was 1.151)
    "facesurvival_hr_sd": 1.1,  # FaceSurvival's adjusted HR per SD beyond FaceAge
    "faceage_mae_gain": 0.25,  # years: how much lower FaceAge's test MAE must be than each model compared
}


def value(t: Table, key: str) -> float:
    return float(t.loc[key, "value"])


def column(t: Table, key: str, name: str) -> float:
    return float(t.loc[key, name])


def beside(t: Table, key: str, name: str, text: str, fmt: str = ".2f") -> str:
    """``"; {text} {value}"`` for a column that is there (an oracle or planted value on FAHR-Synth), else nothing."""
    if key not in t.index or name not in t.columns or pd.isna(t.loc[key, name]):
        return ""
    return f"; {text} {float(t.loc[key, name]):{fmt}}"


def _robust(t: Table, key: str) -> float:
    """A pose-and-lighting number of the Robustness chapter (``robustness.age.min_icc``, …) as the claim judges
    it: over the levels inside the model's training range where the build knows that range (FAHR-Synth:
    ``….inside_training``), over every level otherwise."""
    base, _, name = key.rpartition(".")
    inside = f"{base}.inside_training.{name}"
    return value(t, inside if inside in t.index else key)


def _training_range_text(t: Table) -> str:
    """The evidence's last words: which levels the verdict reads (FAHR-Synth: inside each model's training range,
    the numbers over every level beside)."""
    inside = [k for k in ("robustness.age.inside_training.min_icc", "robustness.risk.inside_training.min_spearman")
              if k in t.index]  # fmt: skip
    if not inside:
        return ""
    return (
        f"; judged inside each model's training range (over every level: FaceAge ICC "
        f"{value(t, 'robustness.age.min_icc'):.3f}, FaceSurvival Spearman "
        f"{value(t, 'robustness.risk.min_spearman'):.2f})"
    )


def value_with_ci(t: Table, key: str, digits: int = 2) -> str:
    return f"{value(t, key):.{digits}f} ({column(t, key, 'lower'):.{digits}f}–{column(t, key, 'upper'):.{digits}f})"


def above(t: Table, key: str, bound: float) -> bool:
    """The interval of ``key`` lies wholly above ``bound``: the effect is there."""
    return column(t, key, "lower") > bound


def below(t: Table, key: str, bound: float) -> bool:
    """The interval of ``key`` lies wholly below ``bound``: the effect is smaller than that, if there at all."""
    return column(t, key, "upper") < bound


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and how this build tests it."""

    name: str
    claim: str  # the paper's words, shortened
    paper: str  # the paper's number(s)
    keys: tuple[str, ...]  # the recorded numbers the test needs
    evidence: Callable[[Table], str]  # this build's numbers, in words
    test: Callable[[Table], bool]  # does the build show it? (its interval shows the effect)
    absolute: bool = False  # the paper's number itself needs the real data
    refute: Callable[[Table], bool] | None = None  # does the interval exclude the smallest effect that counts?
    smallest: str = ""  # that smallest effect, in words (claims with an interval)

    def decide(self, t: Table) -> str:
        """``REPRODUCED``, ``NOT_REPRODUCED`` or ``INCONCLUSIVE``: the latter only for a claim tested on an interval
        (``refute``) whose interval neither shows the effect nor excludes the smallest one that would count."""
        if self.test(t):
            return REPRODUCED
        if self.refute is None or self.refute(t):
            return NOT_REPRODUCED
        return INCONCLUSIVE


REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


def _both(t: Table, fn: Callable[[str], bool]) -> bool:
    return fn("A") and fn("B")


def _shown_in_both(key: str) -> Callable[[Table], bool]:
    """The test "the interval of ``key`` (with ``{c}`` for the cohort) lies above 1 in both cohorts"."""
    return lambda t: _both(t, lambda c: above(t, key.format(c=c), 1.0))


def _excluded_in_either(key: str, smallest: float) -> Callable[[Table], bool]:
    """The refutation "the interval of ``key`` lies below ``smallest`` in either cohort" (the claim needs both)."""
    return lambda t: any(below(t, key.format(c=c), smallest) for c in "AB")


FACEAGE_ADDS = "FaceAge added to FaceSurvival and the clinical factors, aHR per decade"
FACESURVIVAL_ADDS = "FaceSurvival added to FaceAge and the clinical factors, aHR per SD"


def _added(t: Table, c: str, name: str, what: str) -> str:
    """``what`` (e.g. "FaceAge added to FaceSurvival …, aHR per decade"), the adjusted HR of ``added.{c}.{name}``
    with its interval, and the likelihood-ratio p of the same addition."""
    return f"{what} {value_with_ci(t, f'added.{c}.{name}')} (LRT p = {column(t, f'lrt.{c}.{name}', 'p'):.2g})"


COMPARED = ("scratch", "mean_baseline", "handmade_baseline")  # the models FaceAge must err less than


def _paired(t: Table) -> list[str]:
    """The paired MAE differences recorded (``faceage.mae_vs.<model>``): none in a build that predates them, no
    scratch twin when the published FaceAge is evaluated."""
    return [f"faceage.mae_vs.{m}" for m in COMPARED if f"faceage.mae_vs.{m}" in t.index]


def _faceage_lowest(t: Table) -> bool:
    """FaceAge errs less than every model compared: each paired difference's interval lies below 0 (on point
    estimates where no difference was recorded)."""
    if paired := _paired(t):
        return all(column(t, k, "upper") < 0 for k in paired)
    return value(t, "faceage.mae") < min(
        value(t, f"faceage.mae.{m}") for m in COMPARED if f"faceage.mae.{m}" in t.index
    )


def _faceage_not_lowest(t: Table) -> bool:
    """Some paired difference's interval excludes a gain of ``SMALLEST["faceage_mae_gain"]`` (always, when judged
    on point estimates)."""
    paired = _paired(t)
    return not paired or any(column(t, k, "lower") > -SMALLEST["faceage_mae_gain"] for k in paired)


def _paired_text(t: Table) -> str:
    if not (paired := _paired(t)):
        return ""
    names = {"scratch": "from scratch", "mean_baseline": "mean-age", "handmade_baseline": "hand-made"}
    parts = [f"{names[k.rsplit('.', 1)[1]]} {value_with_ci(t, k)}" for k in paired]
    return "; FaceAge minus each, photo by photo: " + ", ".join(parts) + " y"


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "FaceAge accuracy",
        "FaceAge has the lowest age error among the models compared",
        f"MAE {PAPER['faceage.mae']} y (APPA-REAL)",
        ("faceage.mae", "faceage.mae.mean_baseline", "faceage.mae.handmade_baseline"),  # + scratch when trained
        lambda t: (
            f"MAE {value(t, 'faceage.mae'):.2f} y"
            + beside(t, "faceage.mae.scratch", "value", "from scratch")
            + f"; hand-made image statistics {value(t, 'faceage.mae.handmade_baseline'):.2f}; mean-age baseline "
            f"{value(t, 'faceage.mae.mean_baseline'):.2f}"
            + beside(t, "faceage.mae", "oracle", "oracle floor")
            + beside(t, "faceage.mae.appa-real", "value", "APPA-REAL test")
            + _paired_text(t)
        ),
        _faceage_lowest,
        absolute=True,
        refute=_faceage_not_lowest,
        smallest=f"FaceAge's MAE {SMALLEST['faceage_mae_gain']:g} y below each model compared",
    ),
    Claim(
        "Across the lifespan",
        "Two-stage, age-balanced fine-tuning keeps FaceAge accurate across the whole lifespan",
        "—",
        (
            "lifespan.faceage.mean_decade_mae",
            "lifespan.faceage-stage1.mean_decade_mae",
            "lifespan.faceage.worst_decade_mae",
            "lifespan.faceage-stage1.worst_decade_mae",
        ),
        lambda t: (
            f"mean of decade MAEs {value(t, 'lifespan.faceage.mean_decade_mae'):.2f} y (stage 1 alone "
            f"{value(t, 'lifespan.faceage-stage1.mean_decade_mae'):.2f}); worst decade "
            f"{value(t, 'lifespan.faceage.worst_decade_mae'):.1f} y "
            f"(stage 1 {value(t, 'lifespan.faceage-stage1.worst_decade_mae'):.1f})"
        ),
        lambda t: (
            value(t, "lifespan.faceage.mean_decade_mae") < value(t, "lifespan.faceage-stage1.mean_decade_mae")
            and value(t, "lifespan.faceage.worst_decade_mae") < value(t, "lifespan.faceage-stage1.worst_decade_mae")
        ),
    ),
    Claim(
        "Foundation model",
        "Pretraining makes the biomarkers learnable from modest labelled data",
        "—",
        ("efficiency.faceage.100%.pretrained", "efficiency.faceage.100%.scratch"),
        lambda t: (
            "; ".join(
                f"{share}: MAE {value(t, f'efficiency.faceage.{share}.pretrained'):.2f} vs "
                f"{value(t, f'efficiency.faceage.{share}.scratch'):.2f} y"
                + (
                    f", C {value(t, f'efficiency.facesurvival.{share}.pretrained'):.3f}"
                    f" vs {value(t, f'efficiency.facesurvival.{share}.scratch'):.3f}"
                    if f"efficiency.facesurvival.{share}.pretrained" in t.index
                    else ""
                )
                for share in _shares(t)
            )
            + " (pretrained vs scratch, validation)"
        ),
        lambda t: all(
            value(t, f"efficiency.faceage.{s}.pretrained") < value(t, f"efficiency.faceage.{s}.scratch")
            and (
                f"efficiency.facesurvival.{s}.pretrained" not in t.index
                or value(t, f"efficiency.facesurvival.{s}.pretrained")
                > value(t, f"efficiency.facesurvival.{s}.scratch")
            )
            for s in _shares(t)
        ),
    ),
    Claim(
        "FaceSurvival quartiles",
        "The highest FaceSurvival quartile has over three times the mortality of the lowest, adjusted",
        f"aHR {PAPER['survival.A.q4_vs_q1']}, P < 0.001",
        ("survival.A.q4_vs_q1",),
        lambda t: (
            f"aHR {value_with_ci(t, 'survival.A.q4_vs_q1')}, p = {column(t, 'survival.A.q4_vs_q1', 'p'):.2g}"
            + beside(t, "survival.A.q4_vs_q1", "oracle", "oracle")
        ),
        lambda t: above(t, "survival.A.q4_vs_q1", 1.0),
        absolute=True,
        refute=lambda t: below(t, "survival.A.q4_vs_q1", SMALLEST["quartile_hr"]),
        smallest=f"aHR {SMALLEST['quartile_hr']:g}",
    ),
    Claim(
        "Independent cohort",
        "FaceSurvival's prognostic value holds in the independent cohort",
        "validated",
        ("survival.B.q4_vs_q1",),
        lambda t: (
            f"cohort B aHR {value_with_ci(t, 'survival.B.q4_vs_q1')}, "
            f"p = {column(t, 'survival.B.q4_vs_q1', 'p'):.2g}" + beside(t, "survival.B.q4_vs_q1", "oracle", "oracle")
        ),
        lambda t: above(t, "survival.B.q4_vs_q1", 1.0),
        refute=lambda t: below(t, "survival.B.q4_vs_q1", SMALLEST["quartile_hr"]),
        smallest=f"aHR {SMALLEST['quartile_hr']:g}",
    ),
    Claim(
        "FaceAge prognosis",
        "FaceAge predicts survival better than a prior face-age model",
        f"HR per decade {PAPER['survival.A.faceage_decade']} (predecessor)",
        (
            "survival.A.faceage_decade",
            "survival.B.faceage_decade",
            "added.A.faceage_beyond_scratch",
            "added.B.faceage_beyond_scratch",
            "lrt.A.faceage_beyond_scratch",
            "lrt.B.faceage_beyond_scratch",
        ),
        lambda t: "; ".join(
            f"{c}: aHR per decade {value_with_ci(t, f'survival.{c}.faceage_decade')}"
            f"{beside(t, f'survival.{c}.faceage_decade', 'planted', 'planted')}, "
            f"{_added(t, c, 'faceage_beyond_scratch', 'beyond the scratch model')}"
            for c in "AB"
        ),
        _shown_in_both("added.{c}.faceage_beyond_scratch"),
        refute=_excluded_in_either("added.{c}.faceage_beyond_scratch", SMALLEST["faceage_hr_decade"]),
        smallest=f"aHR {SMALLEST['faceage_hr_decade']:g} per decade beyond the scratch model",
    ),
    Claim(
        "Combination",
        "Combining FaceAge and FaceSurvival improves prognostic accuracy",
        "improved (LRT, concordance)",
        (
            "added.A.faceage_adds",
            "added.B.faceage_adds",
            "lrt.A.faceage_adds",
            "lrt.B.faceage_adds",
            "cdiff.A.FaceAge + FaceSurvival − FaceSurvival",
            "cdiff.B.FaceAge + FaceSurvival − FaceSurvival",
        ),
        lambda t: (
            "; ".join(
                f"{c}: {_added(t, c, 'faceage_adds', FACEAGE_ADDS)}"
                f"; unadjusted ΔC {value_with_ci(t, f'cdiff.{c}.FaceAge + FaceSurvival − FaceSurvival', 3)}"
                for c in "AB"
            )
            # the unadjusted ΔC is shown, not judged: chronological age alone raises it, so a FaceAge blind to the
            # face would pass a test on it
            + " (judged on the adjusted aHR: the ΔC rises with chronological age alone)"
        ),
        _shown_in_both("added.{c}.faceage_adds"),
        refute=_excluded_in_either("added.{c}.faceage_adds", SMALLEST["faceage_hr_decade"]),
        smallest=f"aHR {SMALLEST['faceage_hr_decade']:g} per decade beyond FaceSurvival",
    ),
    Claim(
        "Complementary",
        "The two scores carry distinct, complementary information",
        "—",
        (
            "added.A.facesurvival_adds",
            "added.B.facesurvival_adds",
            "lrt.A.facesurvival_adds",
            "lrt.B.facesurvival_adds",
        ),
        lambda t: (
            "; ".join(f"{c}: {_added(t, c, 'facesurvival_adds', FACESURVIVAL_ADDS)}" for c in "AB")
            + " (the other direction, FaceAge beyond FaceSurvival, is the Combination claim's test)"
        ),
        _shown_in_both("added.{c}.facesurvival_adds"),
        refute=_excluded_in_either("added.{c}.facesurvival_adds", SMALLEST["facesurvival_hr_sd"]),
        smallest=f"aHR {SMALLEST['facesurvival_hr_sd']:g} per SD beyond FaceAge",
    ),
    Claim(
        "Subgroups",
        "Both models generalise across age, sex, race and cancer subgroups",
        "generalisable",
        ("subgroups.interaction_min_p", "subgroups.hr_above_one", "subgroups.interactions_rejected"),
        lambda t: (
            f"{value(t, 'subgroups.interactions_rejected'):.0f} {t.loc['subgroups.interactions_rejected', 'unit']} "
            f"interaction tests reject at p < {ALPHA} "
            f"(smallest p {value(t, 'subgroups.interaction_min_p'):.2g}); aHR > 1 "
            f"in {value(t, 'subgroups.hr_above_one'):.0f} {t.loc['subgroups.hr_above_one', 'unit']} subgroups"
            + (
                f"; {value(t, BEYOND_ORACLE):.0f} {t.loc[BEYOND_ORACLE, 'unit']} interactions beyond the face-visible "
                "oracle's on the same patients (Bonferroni)"
                if BEYOND_ORACLE in t.index
                else ""
            )
        ),
        lambda t: (
            _no_interaction(t)
            and value(t, "subgroups.hr_above_one")
            >= MIN_SHARE_HR_ABOVE_ONE * _count(t.loc["subgroups.hr_above_one", "unit"])
        ),
    ),
    Claim(
        "Pose and lighting",
        "Both models hold up when pose and lighting change but the face does not",
        "robust",
        (
            "robustness.age.min_icc",
            "robustness.age.max_shift",
            "robustness.risk.min_spearman",
            "robustness.risk.max_shift",
        ),
        lambda t: (
            f"FaceAge: largest mean shift {_robust(t, 'robustness.age.max_shift'):.2f} y, lowest ICC(2,1) "
            f"{_robust(t, 'robustness.age.min_icc'):.3f}; FaceSurvival: largest shift "
            f"{_robust(t, 'robustness.risk.max_shift'):.2f} SD, lowest rank stability "
            f"{_robust(t, 'robustness.risk.min_spearman'):.2f} "
            f"(criteria: ICC ≥ {MIN_ICC}, Spearman ≥ {MIN_RANK_STABILITY}){_training_range_text(t)}"
        ),
        lambda t: (
            _robust(t, "robustness.age.min_icc") >= MIN_ICC
            and _robust(t, "robustness.risk.min_spearman") >= MIN_RANK_STABILITY
        ),
    ),
    Claim(
        "Makeup and surgery",
        "FaceAge holds up under makeup and cosmetic surgery",
        "robust",
        (
            "surgery.makeup.age_change",
            "surgery.facelift.age_change",
            "surgery.blepharoplasty.age_change",
            "faceage.mae",
            "faceage.mae.mean_baseline",
        ),  # fmt: skip
        lambda t: (
            f"FaceAge MAE {value(t, 'faceage.mae'):.2f} y "
            f"(mean-age baseline {value(t, 'faceage.mae.mean_baseline'):.2f}); "
            + "; ".join(
                f"{c}: {value(t, f'surgery.{c}.age_change'):+.2f} y"
                + beside(t, f"surgery.{c}.age_change", "planted", "planted cue change (y equivalent)", "+.1f")
                for c in ("makeup", "facelift", "blepharoplasty")
            )
            + f" (criteria: FaceAge beats the mean-age baseline, so that a model blind to the face cannot pass, and "
            f"|change| ≤ {MAX_SURGERY_SHIFT:g} year; the true age never changed)"
        ),
        lambda t: (
            # a constant model moves by 0 under any change of the face, and fails here
            value(t, "faceage.mae") < value(t, "faceage.mae.mean_baseline")
            and all(
                abs(value(t, f"surgery.{c}.age_change")) <= MAX_SURGERY_SHIFT
                for c in ("makeup", "facelift", "blepharoplasty")
            )
        ),
    ),
    Claim(
        "Distinct regions",
        "Saliency maps show that the two models rely on distinct facial regions",
        "distinct",
        ("saliency.distinct.spearman",),
        lambda t: (
            f"regional profiles correlate with Spearman {value_with_ci(t, 'saliency.distinct.spearman')}, "
            f"permutation p = "
            f"{column(t, 'saliency.distinct.spearman', 'p'):.3g} (criteria: p < {ALPHA} and the Spearman's upper "
            f"bound below {MAX_SHARED_RANKING}: a difference too small to matter does not count)"
        ),
        lambda t: (
            column(t, "saliency.distinct.spearman", "p") < ALPHA
            and column(t, "saliency.distinct.spearman", "upper") < MAX_SHARED_RANKING
        ),
        refute=lambda t: column(t, "saliency.distinct.spearman", "lower") >= MAX_SHARED_RANKING,
        smallest=f"a Spearman below {MAX_SHARED_RANKING:g}",
    ),
)


def _shares(t: Table) -> list[str]:
    return [k.split(".")[2] for k in t.index if k.startswith("efficiency.faceage.") and k.endswith(".pretrained")]


BEYOND_ORACLE = "subgroups.interactions_beyond_oracle"  # recorded on FAHR-Synth only


def _no_interaction(t: Table) -> bool:
    """No interaction of FaceSurvival with a subgroup at the Bonferroni level: on FAHR-Synth, none that the
    face-visible oracle does not show on the same patients (the face shows the planted effects unequally); on real
    data, none at all."""
    if BEYOND_ORACLE in t.index:
        return value(t, BEYOND_ORACLE) == 0
    return value(t, "subgroups.interaction_min_p") > ALPHA / _count(t.loc["subgroups.interactions_rejected", "unit"])


def _count(unit: str) -> int:
    """The n of a unit written "of n"."""
    return int(str(unit).split()[-1])


SYNTH = "FAHR-Synth"


def verdict_names(data: str = SYNTH) -> tuple[str, str, str, str]:
    """The verdicts of a build on ``data`` (FAHR-Synth, or real data): reproduced, not reproduced, not run and
    inconclusive."""
    return f"reproduced on {data}", f"not reproduced on {data}", "not run", f"inconclusive on {data}"


VERDICTS = verdict_names()


def undecided(data: str = SYNTH) -> str:
    """The verdict of a claim whose test gives different answers with different seeds (``fahr spread``)."""
    return f"undecided on {data}: the seeds disagree"


def _named(decision: str, data: str) -> str:
    names = verdict_names(data)
    return {REPRODUCED: names[0], NOT_REPRODUCED: names[1], INCONCLUSIVE: names[3]}[decision]


def _across_seeds(c: Claim, seeds: dict[int, Table]) -> list[str]:
    """The claim's decision on every seed's numbers that has them all."""
    return [c.decide(s) for s in seeds.values() if all(k in s.index for k in c.keys)]


def verdicts(
    t: Table,
    claims: tuple[Claim, ...] = CLAIMS,
    data: str = SYNTH,
    seeds: dict[int, Table] | None = None,
    power: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One row per claim: the paper's number, this build's numbers and the verdict, all from ``t``; ``data`` names
    what the build ran on (on FAHR-Synth, a claim about the paper's own number says that it needs real data).
    With ``seeds`` (each seed's table, ``fahr.report.spread.tables``), a claim is reproduced only when every seed
    shows the effect, and *undecided* when some do and others do not: seed noise, not the method, would decide it;
    when none shows it, it is not reproduced if every seed excludes the smallest effect that counts, else
    inconclusive. With ``power`` (claim name → share of simulated builds that reproduce it, ``fahr.report.power``),
    a ``power`` column; a claim tested on an interval also names the smallest effect that would count. Columns:
    claim, verdict, power (when given), paper says, paper, this build."""
    names = verdict_names(data)
    rows = []
    for c in claims:
        row = {"claim": c.name, "paper says": c.claim, "paper": c.paper}
        if power is not None:
            row["power"] = power.get(c.name, float("nan"))
        missing = [k for k in c.keys if k not in t.index]
        if missing:
            rows.append(row | {"this build": f"not computed ({', '.join(missing)} missing)", "verdict": names[2]})
            continue
        verdict, evidence = _named(c.decide(t), data), c.evidence(t)
        if c.smallest:
            evidence += f" (smallest effect that would count: {c.smallest})"
        outcomes = _across_seeds(c, seeds or {})
        if len(outcomes) >= 2:
            if REPRODUCED in outcomes and len(set(outcomes)) > 1:  # some seeds show the effect, others do not
                verdict = undecided(data)
            elif REPRODUCED not in outcomes:  # none shows it: not reproduced only if every seed excludes it
                verdict = _named(NOT_REPRODUCED if set(outcomes) == {NOT_REPRODUCED} else INCONCLUSIVE, data)
            alike = sum(o == REPRODUCED for o in outcomes)
            evidence += f" (the effect shows with {alike} of {len(outcomes)} seeds)"
        if c.absolute and data == SYNTH and verdict != undecided(data):
            verdict += "; the paper's value needs the real data"
        rows.append(row | {"this build": evidence, "verdict": verdict})
    order = ["claim", "verdict", "power", "paper says", "paper", "this build"]  # the verdict beside its claim
    return pd.DataFrame(rows)[[c for c in order if power is not None or c != "power"]]


def tally(table: pd.DataFrame, data: str = SYNTH) -> str:
    """A sentence counting the verdicts."""
    names = verdict_names(data)
    reproduced = table["verdict"].str.startswith(names[0]).sum()
    failed = table["verdict"].str.startswith(names[1]).sum()
    missing = (table["verdict"] == names[2]).sum()
    unclear = table["verdict"].str.startswith(names[3]).sum()
    split = (table["verdict"] == undecided(data)).sum()
    unclear_text = f", **{unclear}** are inconclusive at this build's size" if unclear else ""
    undecided_text = f", **{split}** are undecided because the seeds disagree" if split else ""
    return (
        f"Of {len(table)} claims, **{reproduced}** are reproduced on {data}, **{failed}** are not"
        f"{unclear_text}{undecided_text}, and {missing} were not run in this build."
    )


def not_run(cfg) -> str:
    """A Markdown list of the chapters this build on real data could not run, each with the datasets it lacks
    (empty on FAHR-Synth and when every chapter ran)."""
    lines = []
    for name in book.CHAPTERS:
        absent = book.missing_data(cfg, name)
        if absent:
            lines.append(f"- **{book.title(name)}**: needs {book.needs_text(absent)} "
                         f"(put them under `{absent[0][1].parent}/`)")  # fmt: skip
    return ("Chapters not run for want of data:\n\n" + "\n".join(lines)) if lines else ""


def source_chapters() -> list[str]:
    """The chapters whose recorded numbers the report reads: every chapter of the book but the report, in order."""
    return [name for name in book.CHAPTERS if name != "report"]


def data_sentence(content: dict, t: Table) -> str:
    """A Markdown sentence from ``results.collect``'s content and its table: the data the build ran on and how
    many numbers the chapters recorded."""
    return f"Data: **{content['data']}** · {len(t)} recorded numbers from {len(content['chapters'])} chapters."


def save_summary(fig, profile: str) -> Path:
    """Write the report's summary figure to ``artifacts/<profile>/report/summary.png`` (atomically); `make
    readme-figure` copies the demo's into ``docs/`` for the README."""
    out = paths.stage_dir(profile, "report") / "summary.png"
    with provenance.atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return out
