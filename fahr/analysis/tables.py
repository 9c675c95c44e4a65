"""``fahr evaluate``: the book's evaluation tables without the book — FaceAge error, the clinical survival
analyses and the subgroups — written as CSV files (atomically, with provenance) under
``artifacts/<profile>/evaluate/``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fahr.analysis import faceage, subgroups, survival
from fahr.core import paths, provenance
from fahr.core.config import Config
from fahr.data.real import prepare


def _write(table: pd.DataFrame, out: Path, cfg: Config) -> None:
    with provenance.artifact(out, cfg, "evaluate") as tmp:
        table.to_csv(tmp)


def run(cfg: Config) -> dict[str, Path]:
    """Compute every evaluation table of the profile (training and predicting first where needed); on real data
    those whose datasets are present (the FaceAge tables need the age datasets, the clinical ones both clinical
    cohorts, all of them the pretraining corpus). A ``MissingData`` error names what none of them could run
    without."""
    folder = paths.stage_dir(cfg.profile, "evaluate")
    tables: dict[str, pd.DataFrame] = {}
    have = prepare.available(cfg)
    if "pretrain" not in have or not have & {"age", "clinical-a"}:
        prepare.check_cohorts(cfg, ("pretrain", "age", "clinical-a", "clinical-b"))
    if "age" in have:
        test = faceage.test_table(cfg)
        models = ["faceage", "faceage-stage1", "faceage-scratch", "mean-age baseline", faceage.HANDMADE]
        tables["faceage_mae"] = faceage.mae_table(test, models)
        tables["faceage_decades"] = faceage.by_decade(test, models[:3])
        tables["subgroups_faceage_mae"] = subgroups.faceage_mae(
            subgroups.faceage_table(cfg), cfg.statistics.bootstrap, cfg.seed
        )
    if {"clinical-a", "clinical-b"} <= have:
        tables |= _clinical(cfg)
    written = {}
    for name, table in tables.items():
        written[name] = folder / f"{name}.csv"
        _write(table, written[name], cfg)
    return written


def _clinical(cfg: Config) -> dict[str, pd.DataFrame]:
    """The survival and subgroup tables of the two clinical cohorts."""
    tables: dict[str, pd.DataFrame] = {}
    an = survival.load(cfg)
    fits = survival.all_adjusted(an)
    tables["survival_headline"] = survival.headline(an, fits)
    tables["survival_lrt"] = pd.concat([survival.nested_tests(f, label) for label, f in an.frames.items()])
    harrell, diffs = survival.concordance_tables(an, "harrell")
    tables["survival_concordance"], tables["survival_concordance_differences"] = harrell, diffs
    tables["survival_time_auc"] = survival.auc_table(an)
    per_cohort = [subgroups.survival_hr(f, label) for label, f in an.frames.items()]
    tables["subgroups_survival_hr"] = pd.concat([p[0] for p in per_cohort])
    tables["subgroups_interactions"] = pd.concat([p[1] for p in per_cohort])
    return tables
