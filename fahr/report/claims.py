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
from fahr.report import book, rules
from fahr.report.paper import PAPER
from fahr.stats import ALPHA

Table = pd.DataFrame  # ``fahr.report.results.table``: one row per recorded number, indexed by key

# Every threshold a verdict uses, from the one spec (``fahr.report.rules``: each with the reason it is set there)
MIN_ICC = rules.threshold("min_icc")  # FaceAge ICC(2,1) under pose and lighting
MIN_RANK_STABILITY = rules.threshold("min_rank_stability")  # FaceSurvival Spearman under pose and lighting
MAX_SURGERY_SHIFT = rules.threshold("max_surgery_shift")  # years: FaceAge change under makeup and surgery
MIN_SHARE_HR_ABOVE_ONE = rules.threshold("min_share_hr_above_one")  # of the subgroups with an estimated aHR
MAX_SHARED_RANKING = rules.threshold("max_shared_ranking")  # distinct: the upper 95 % bound of a correlation
MIN_CALIBRATION_SLOPE = rules.threshold("min_calibration_slope")  # FaceAge on labelled age: not shrunk
MIN_CUE_EXCESS = rules.threshold("min_cue_excess")  # saliency share in the planted-cue regions beyond their area
FOUNDATION_SHARE = f"{100 * rules.threshold('foundation_share'):g}%"  # label share judged (foundation)

# The smallest effect that would count, per claim tested on an interval: an interval wholly below it is "not
# reproduced" (the effect, if any, is too small to matter); one that holds it and does not show the effect is
# "inconclusive".
SMALLEST = {
    name: rules.threshold(name)
    for name in ("quartile_hr", "faceage_hr_decade", "facesurvival_hr_sd", "faceage_mae_gain", "head_to_head_ratio")
}


def value(t: Table, key: str) -> float:
    return float(t.loc[key, "value"])


def column(t: Table, key: str, name: str) -> float:
    """``t[key, name]`` as a float (NaN where the table has no such column: a number recorded without interval)."""
    return float(t.loc[key, name]) if name in t.columns else float("nan")


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
    with its interval and Wald p."""
    return f"{what} {value_with_ci(t, f'added.{c}.{name}')} (p = {column(t, f'added.{c}.{name}', 'p'):.2g})"


def _adds_both_ways(t: Table) -> bool:
    """The combined model beats each score alone: FaceAge adds to FaceSurvival and FaceSurvival adds to FaceAge
    (both beyond the clinical factors), in both cohorts. A constant, permuted or copied score fails one direction."""
    return _shown_in_both("added.{c}.faceage_adds")(t) and _shown_in_both("added.{c}.facesurvival_adds")(t)


def _adds_refuted(t: Table) -> bool:
    return _excluded_in_either("added.{c}.faceage_adds", SMALLEST["faceage_hr_decade"])(t) or _excluded_in_either(
        "added.{c}.facesurvival_adds", SMALLEST["facesurvival_hr_sd"]
    )(t)


def _distinct_scores(t: Table) -> bool:
    """The two scores' partial correlation beyond age (``distinct.{c}.scores``) lies within ±``MAX_SHARED_RANKING``
    in both cohorts: they do not carry the same information."""
    return _both(t, lambda c: column(t, f"distinct.{c}.scores", "upper") < MAX_SHARED_RANKING
                 and column(t, f"distinct.{c}.scores", "lower") > -MAX_SHARED_RANKING)  # fmt: skip


def _shared_scores(t: Table) -> bool:
    """The partial correlation's interval lies wholly beyond ±``MAX_SHARED_RANKING`` in either cohort (or is 1)."""
    return any(column(t, f"distinct.{c}.scores", "lower") >= MAX_SHARED_RANKING
               or column(t, f"distinct.{c}.scores", "upper") <= -MAX_SHARED_RANKING for c in "AB")  # fmt: skip


def _calibrated(t: Table) -> bool:
    """FaceAge follows age rather than shrinking toward the mean: its calibration slope's lower bound is at least
    ``MIN_CALIBRATION_SLOPE`` (a shrunk model moves less under any change of the face, and would pass otherwise)."""
    return column(t, "faceage.calibration_slope", "lower") >= MIN_CALIBRATION_SLOPE


def _slope_text(t: Table) -> str:
    return f"; FaceAge's slope on labelled age {value_with_ci(t, 'faceage.calibration_slope')}"


CUES = (("faceage", "age"), ("facesurvival", "frailty"))  # each model's own planted cues (FAHR-Synth)


def _cue_keys(t: Table) -> list[tuple[str, str]]:
    keys = [(f"saliency.{m}.{s}_cue_share", f"saliency.{m}.{s}_cue_area") for m, s in CUES]
    return [k for k in keys if k[0] in t.index and k[1] in t.index]


def _follows_cues(t: Table) -> bool:
    """On FAHR-Synth, each model puts at least ``MIN_CUE_EXCESS`` more of its saliency in its own planted cues'
    regions than their share of the area (a shuffled map does not); on real data there are no planted cues."""
    return all(value(t, share) - value(t, area) >= MIN_CUE_EXCESS for share, area in _cue_keys(t))


def _cue_text(t: Table) -> str:
    parts = [f"{share.split('.')[1]} {value(t, share):.2f} of its saliency in {share.split('.')[2].split('_')[0]}-cue "
             f"regions covering {value(t, area):.2f} of the area" for share, area in _cue_keys(t)]  # fmt: skip
    return ("; " + ", ".join(parts)) if parts else ""


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
        ("faceage.mae", "faceage.mae.mean_baseline", "faceage.mae.handmade_baseline", "faceage.calibration_slope"),
        lambda t: (
            f"MAE {value(t, 'faceage.mae'):.2f} y"
            + beside(t, "faceage.mae.scratch", "value", "from scratch")
            + f"; hand-made image statistics {value(t, 'faceage.mae.handmade_baseline'):.2f}; mean-age baseline "
            f"{value(t, 'faceage.mae.mean_baseline'):.2f}"
            + beside(t, "faceage.mae", "oracle", "oracle floor")
            + beside(t, "faceage.mae.appa-real", "value", "APPA-REAL test")
            + _paired_text(t)
            + _slope_text(t)
            + f" (criteria: every paired interval below 0 and the slope's lower bound ≥ {MIN_CALIBRATION_SLOPE:g}: "
            "shrinking a noisy model toward the mean lowers its MAE without reading age any better)"
        ),
        lambda t: _faceage_lowest(t) and _calibrated(t),
        absolute=True,
        refute=lambda t: (
            _faceage_not_lowest(t) or column(t, "faceage.calibration_slope", "upper") < MIN_CALIBRATION_SLOPE
        ),
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
            "faceage.calibration_slope",
        ),
        lambda t: (
            f"mean of decade MAEs {value(t, 'lifespan.faceage.mean_decade_mae'):.2f} y (stage 1 alone "
            f"{value(t, 'lifespan.faceage-stage1.mean_decade_mae'):.2f}); worst decade "
            f"{value(t, 'lifespan.faceage.worst_decade_mae'):.1f} y "
            f"(stage 1 {value(t, 'lifespan.faceage-stage1.worst_decade_mae'):.1f})"
            + _slope_text(t)
            + f" (criteria: both below stage 1's and the slope's lower bound ≥ {MIN_CALIBRATION_SLOPE:g}: a FaceAge "
            "pulled toward the mean errs least in the middle decades and most at the ends of the lifespan)"
        ),
        lambda t: (
            value(t, "lifespan.faceage.mean_decade_mae") < value(t, "lifespan.faceage-stage1.mean_decade_mae")
            and value(t, "lifespan.faceage.worst_decade_mae") < value(t, "lifespan.faceage-stage1.worst_decade_mae")
            and _calibrated(t)
        ),
    ),
    Claim(
        "Foundation model",
        "Pretraining makes the biomarkers learnable from modest labelled data",
        "—",
        (f"foundation.faceage.{FOUNDATION_SHARE}.vs_random", f"foundation.faceage.{FOUNDATION_SHARE}.vs_handmade"),
        lambda t: (
            f"age probes learned from {FOUNDATION_SHARE} of the labelled people, test MAE, pretrained features minus "
            f"random {value_with_ci(t, f'foundation.faceage.{FOUNDATION_SHARE}.vs_random')} y, minus hand-made "
            f"{value_with_ci(t, f'foundation.faceage.{FOUNDATION_SHARE}.vs_handmade')} y"
            + _foundation_full_text(t)
            + _efficiency_text(t)
            + f" (criteria at {FOUNDATION_SHARE}: both paired test intervals below 0; the gap with all labels is "
            "shown, not judged)"
        ),
        lambda t: all(column(t, k, "upper") < 0 for k in _foundation_keys(t)),
        refute=lambda t: any(column(t, k, "lower") > -SMALLEST["faceage_mae_gain"] for k in _foundation_keys(t)),
        smallest=f"a probe MAE {SMALLEST['faceage_mae_gain']:g} y below random and hand-made features",
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
            "headtohead.A.faceage_vs_prior",
            "headtohead.B.faceage_vs_prior",
        ),
        lambda t: "; ".join(
            f"{c}: aHR per decade {value_with_ci(t, f'survival.{c}.faceage_decade')}"
            f"{beside(t, f'survival.{c}.faceage_decade', 'planted', 'planted')}; head to head with the prior "
            f"(from-scratch) model in one adjusted model, ratio of HRs per SD beyond age "
            f"{value_with_ci(t, f'headtohead.{c}.faceage_vs_prior')}"
            for c in "AB"
        ),
        _shown_in_both("headtohead.{c}.faceage_vs_prior"),
        refute=_excluded_in_either("headtohead.{c}.faceage_vs_prior", SMALLEST["head_to_head_ratio"]),
        smallest=f"FaceAge's HR per SD {SMALLEST['head_to_head_ratio']:g}× the prior model's, both in one model",
    ),
    Claim(
        "Combination",
        "Combining FaceAge and FaceSurvival improves prognostic accuracy",
        "improved (LRT, concordance)",
        ("added.A.faceage_adds", "added.B.faceage_adds", "added.A.facesurvival_adds", "added.B.facesurvival_adds"),
        lambda t: (
            "; ".join(
                f"{c}: {_added(t, c, 'faceage_adds', FACEAGE_ADDS)}, "
                f"{_added(t, c, 'facesurvival_adds', FACESURVIVAL_ADDS)}"
                for c in "AB"
            )
            + " (the combination must beat each score alone: a FaceAge blind to the face, or a constant FaceSurvival, "
            "fails one direction)"
        ),
        _adds_both_ways,
        refute=_adds_refuted,
        smallest=(
            f"aHR {SMALLEST['faceage_hr_decade']:g} per decade of FaceAge, {SMALLEST['facesurvival_hr_sd']:g} "
            "per SD of FaceSurvival, each beyond the other"
        ),  # fmt: skip
    ),
    Claim(
        "Complementary",
        "The two scores carry distinct, complementary information",
        "—",
        (
            "added.A.faceage_adds",
            "added.B.faceage_adds",
            "added.A.facesurvival_adds",
            "added.B.facesurvival_adds",
            "distinct.A.scores",
            "distinct.B.scores",
        ),  # fmt: skip
        lambda t: (
            "; ".join(
                f"{c}: FaceAge and FaceSurvival beyond age, partial r {value_with_ci(t, f'distinct.{c}.scores')}"
                for c in "AB"
            )  # fmt: skip
            + f" (criteria: each score adds to the other, as in the Combination claim, and the partial r's interval "
            f"within ±{MAX_SHARED_RANKING:g}: two scores that agree more carry mostly the same information)"
        ),
        lambda t: _adds_both_ways(t) and _distinct_scores(t),
        refute=lambda t: _adds_refuted(t) or _shared_scores(t),
        smallest=f"each score adding to the other, with a partial r within ±{MAX_SHARED_RANKING:g}",
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
            "faceage.calibration_slope",
        ),
        lambda t: (
            f"FaceAge: largest mean shift {_robust(t, 'robustness.age.max_shift'):.2f} y, lowest ICC(2,1) "
            f"{_robust(t, 'robustness.age.min_icc'):.3f}; FaceSurvival: largest shift "
            f"{_robust(t, 'robustness.risk.max_shift'):.2f} SD, lowest rank stability "
            f"{_robust(t, 'robustness.risk.min_spearman'):.2f} "
            f"{_slope_text(t)} (criteria: ICC ≥ {MIN_ICC}, Spearman ≥ {MIN_RANK_STABILITY}, and FaceAge's slope's "
            f"lower bound ≥ {MIN_CALIBRATION_SLOPE:g}: a FaceAge shrunk toward the mean agrees with itself at any "
            f"shrink){_training_range_text(t)}"
        ),
        lambda t: (
            _calibrated(t)
            and _robust(t, "robustness.age.min_icc") >= MIN_ICC
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
            "faceage.calibration_slope",
        ),  # fmt: skip
        lambda t: (
            f"FaceAge MAE {value(t, 'faceage.mae'):.2f} y "
            f"(mean-age baseline {value(t, 'faceage.mae.mean_baseline'):.2f}); "
            + "; ".join(
                f"{c}: {value(t, f'surgery.{c}.age_change'):+.2f} y"
                + beside(t, f"surgery.{c}.age_change", "planted", "planted cue change (y equivalent)", "+.1f")
                for c in ("makeup", "facelift", "blepharoplasty")
            )
            + _slope_text(t)
            + f" (criteria: FaceAge beats the mean-age baseline and its slope's lower bound is ≥ "
            f"{MIN_CALIBRATION_SLOPE:g}, so that neither a model blind to the face nor one shrunk toward the mean "
            f"passes, and |change| ≤ {MAX_SURGERY_SHIFT:g} year; the true age never changed)"
        ),
        lambda t: (
            # a constant model moves by 0 under any change of the face, a shrunk one by less: both fail here
            value(t, "faceage.mae") < value(t, "faceage.mae.mean_baseline")
            and _calibrated(t)
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
            f"{column(t, 'saliency.distinct.spearman', 'p'):.3g}{_cue_text(t)} (criteria: p < {ALPHA} and the "
            f"Spearman's upper bound below {MAX_SHARED_RANKING}: a difference too small to matter does not count"
            + (
                f"; also each map {MIN_CUE_EXCESS:g} above area in its own cues' regions, since the planted age and "
                "frailty cues overlap and two maps can differ by noise alone"
                if _cue_keys(t)
                else ""
            )
            + ")"
        ),
        lambda t: (
            column(t, "saliency.distinct.spearman", "p") < ALPHA
            and column(t, "saliency.distinct.spearman", "upper") < MAX_SHARED_RANKING
            and _follows_cues(t)
        ),
        refute=lambda t: column(t, "saliency.distinct.spearman", "lower") >= MAX_SHARED_RANKING or not _follows_cues(t),
        smallest=f"a Spearman below {MAX_SHARED_RANKING:g}",
    ),
)


def _foundation_keys(t: Table) -> list[str]:
    return [f"foundation.faceage.{FOUNDATION_SHARE}.{k}" for k in ("vs_random", "vs_handmade")]


def _foundation_full_text(t: Table) -> str:
    key = "foundation.faceage.100%.vs_random"
    return f"; with all labels, minus random {value_with_ci(t, key)} y" if key in t.index else ""


def _efficiency_text(t: Table) -> str:
    """The fine-tuning arms' validation MAEs (pretrained vs scratch) where recorded: shown, not judged."""
    parts = [
        f"{share} {value(t, f'efficiency.faceage.{share}.pretrained'):.2f} vs "
        f"{value(t, f'efficiency.faceage.{share}.scratch'):.2f}"
        for share in _shares(t)
    ]
    return f"; fine-tuned pretrained vs scratch, validation MAE, {', '.join(parts)} y" if parts else ""


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
