"""The paper's own numbers, by the key of the recorded number they stand beside: the only place they are typed.

Kept apart from the verdicts (``fahr.report.claims``) so that a chapter, which records its numbers with the paper's
beside them, does not depend on how the report judges them: a change to a verdict re-executes the report alone.
"""

from __future__ import annotations

PAPER: dict[str, float] = {
    "faceage.mae": 5.1,  # FAHR-FaceAge, MAE on APPA-REAL (years)
    "faceage.mae.appa-real": 5.1,  # the same, beside this build's APPA-REAL test split on real data
    "survival.A.q4_vs_q1": 3.22,  # FAHR-FaceSurvival, top vs bottom quartile, adjusted HR (development cohort)
    "survival.A.faceage_decade": 1.151,  # the predecessor FaceAge's HR per decade, pan-cancer (Bontempi et al. 2025)
}
