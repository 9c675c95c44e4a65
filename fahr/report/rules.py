"""The rules of the reproduction report in one place: every threshold a verdict uses, with the reason for it.

``fahr.report.claims`` reads its thresholds from ``SPEC`` and nowhere else, the report prints ``spec_hash()`` so
that two reports can be known to judge by the same rules, and ``fahr verdicts`` (``fahr.report.verdicts``) applies
the same rules to any model's predictions. A rule is only worth its name when a lesser model fails it: the
adversaries of ``fahr.report.verdicts.ADVERSARIES`` (constant, shrunk, chronological-age, tied, worse, permuted,
identical, shuffled) are run through every rule in the report and in the tests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from fahr.stats import ALPHA


@dataclass(frozen=True)
class Rule:
    """One threshold: its value, what it bounds and why it is set where it is."""

    value: float
    what: str
    why: str
    synthetic: bool = False  # judged on FAHR-Synth only (it needs the planted truth): not shown on real data


SPEC: dict[str, Rule] = {
    "alpha": Rule(
        ALPHA, "significance level of every test; intervals are 95 %", "the paper's convention (P < 0.05, 95 % CI)"
    ),
    "faceage_mae_gain": Rule(
        0.25,
        "years: the smallest paired MAE gain of FaceAge over a compared model that counts",
        "a quarter of a year is below any clinical use of an age estimate; an interval wholly "
        "above −0.25 y excludes a gain that matters",
    ),
    "min_calibration_slope": Rule(
        0.8,
        "lower 95 % bound of the slope of FaceAge on labelled age (test photos)",
        "a model shrunk toward the mean moves less under any change of the face and so "
        "passes every shift and rank test; a slope bound fails it (m + 0.5·(f − m) halves "
        "the slope) while a model that reads age keeps a slope near 1",
    ),
    "min_icc": Rule(
        0.9,
        "FaceAge ICC(2,1) between the reference photo and each pose or lighting level",
        "absolute agreement above 0.9 is 'excellent' in Koo & Li's (2016) guideline",
    ),
    "min_rank_stability": Rule(
        0.8,
        "FaceSurvival Spearman between the reference photo and each level",
        "a rank correlation above 0.8 is 'very strong'; a risk score's scale is arbitrary, so "
        "its ranks are what must hold",
    ),
    "max_surgery_shift": Rule(
        1.0,
        "years: the largest |FaceAge change| under makeup, facelift or blepharoplasty",
        "the true age never changed; a year is four times the smallest MAE gain that counts",
    ),
    "min_share_hr_above_one": Rule(
        0.75,
        "share of subgroups whose FaceSurvival aHR per SD is above 1",
        "three in four: a score that generalises points the same way in most subgroups "
        "even where a subgroup is too small for its own interval",
    ),
    "max_shared_ranking": Rule(
        0.7,
        "upper 95 % bound of a Spearman between two profiles that still counts as "
        "distinct (saliency regions; FaceAge gap against FaceSurvival per patient)",
        "0.7 is where a correlation is called 'strong': two scores or maps that agree more "
        "than that carry mostly the same information",
    ),
    "min_cue_excess": Rule(
        0.05,
        "share of a model's saliency in its planted-cue regions above those regions' area share (FAHR-Synth)",
        "a map shuffled across the face puts saliency in proportion to area; five points more is "
        "the least that says the map follows the cues (the planted age and frailty cues overlap, "
        "so distinct profiles alone cannot show it)",
        synthetic=True,
    ),
    "foundation_share": Rule(
        0.1,
        "share of the labelled training people at which the foundation claim is judged (age probes on frozen "
        "features, test photos, paired against random and hand-made features)",
        "the thesis is about small labelled datasets; with all labels a randomly initialised network can catch up, "
        "and the pretrained–scratch gap at 100 % moved 0.56 → 0.52 → 0.00 y across seeds and CPUs",
    ),
    "quartile_hr": Rule(
        1.5,
        "the smallest adjusted HR, top vs bottom FaceSurvival quartile, that counts",
        "half the paper's 3.22 and below any quartile contrast used clinically",
    ),
    "faceage_hr_decade": Rule(
        1.05,
        "the smallest adjusted HR per decade of FaceAge beyond a score that counts",
        "a third of the predecessor's 1.151 per decade (Bontempi et al. 2025)",
    ),
    "head_to_head_ratio": Rule(
        1.05,
        "the smallest ratio of FaceAge's adjusted HR to the prior model's, each per SD "
        "of its part beyond age, both in one model, that counts",
        "the same 5 % as an added FaceAge must show per decade: a smaller edge over the prior "
        "model would not change a prognosis; per SD, so that rescaling a model changes nothing",
    ),
    "facesurvival_hr_sd": Rule(
        1.1,
        "the smallest adjusted HR per SD of FaceSurvival beyond FaceAge that counts",
        "10 % per SD is the smallest effect a risk score is reported for",
    ),
}


def threshold(name: str) -> float:
    return SPEC[name].value


def spec_hash() -> str:
    """The first 12 hex digits of the SHA-256 of the spec (names, values, texts): the report prints it."""
    text = json.dumps({k: asdict(v) for k, v in sorted(SPEC.items())}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def table(synthetic: bool = True):
    """The spec as a table (rule, value, what, why) for the report; on real data (``synthetic=False``) without the
    rules that need FAHR-Synth's planted truth, which real data does not have."""
    import pandas as pd

    rows = [
        {"rule": k, "value": v.value, "what": v.what, "why": v.why}
        for k, v in SPEC.items()
        if synthetic or not v.synthetic
    ]
    return pd.DataFrame(rows).set_index("rule")
