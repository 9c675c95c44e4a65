"""The cohort table: one row per photo of a cohort, joining its manifest (photo, demographic and clinical
columns), every requested model's prediction and — on FAHR-Synth only — its planted truth and oracles.

Every chapter's analysis starts from this table, so the same code runs on FAHR-Synth and on real data: with
truth, the planted values and oracles stand beside each number; without it (``data.source: real``), the table
simply has no truth columns and ``planted`` is None. No analysis reaches for truth any other way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from fahr import predict
from fahr.core.config import Config
from fahr.data.synth import truth
from fahr.train import common

TRUTH_COLUMNS = truth.COLUMNS


@dataclass(frozen=True)
class CohortTable:
    """A cohort's photos (indexed by image_id) with predictions, and FAHR-Synth's truth when there is some."""

    name: str
    frame: pd.DataFrame
    planted: dict[str, float] | None = None  # planted hazard ratios by term; None on real data

    @property
    def has_truth(self) -> bool:
        return self.planted is not None

    def split(self, name: str) -> pd.DataFrame:
        """The rows of one split (train, val, test)."""
        return self.frame[self.frame["split"] == name]


def has_truth(frame: pd.DataFrame) -> bool:
    """Whether an analysis table carries FAHR-Synth's truth (any truth column)."""
    return any(c in frame.columns for c in TRUTH_COLUMNS)


def model_outputs(cfg: Config, models: Iterable[str], cohort: str, index: pd.Index) -> pd.DataFrame:
    """Each model's prediction (FaceAge in years, FaceSurvival as log hazard) for the photos of ``index``."""
    columns = {}
    for model in models:
        output = predict.MODELS[model].output
        columns[model] = index.map(predict.table(cfg, model, cohort).set_index("image_id")[output])
    return pd.DataFrame(columns, index=index)


def build(cfg: Config, cohort: str, models: Iterable[str] = ()) -> CohortTable:
    """The cohort table of ``cohort`` (a FAHR-Synth cohort, or with ``data.source: real`` the prepared real
    cohort of that name) with the predictions of ``models`` (keys of ``fahr.predict.MODELS``; trained and
    predicted if needed)."""
    photos = common.cohort(cfg, cohort).drop(columns=["path"]).set_index("image_id")
    frame = photos.join(model_outputs(cfg, models, cohort, photos.index))
    if cfg.data.source == "real":
        return CohortTable(cohort, frame)
    known = truth.photo_truth(cfg.profile, cohort)
    frame = frame.join(known, validate="one_to_one")
    return CohortTable(cohort, frame, truth.planted_hazard_ratios())


def without_truth(table: pd.DataFrame) -> pd.DataFrame:
    """The same table as real data would give it: every truth column dropped."""
    return table.drop(columns=[c for c in table.columns if c in TRUTH_COLUMNS])
