"""The Cohorts chapter's tables from manifests alone (``fahr.analysis.cohorts``): the same on FAHR-Synth and real
data."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from fahr.analysis import cohorts as overview
from fahr.data.align import AlignResult


def test_alignment_reading_reports_faces_flag_and_residual() -> None:
    aligned = AlignResult(crop=None, landmarks=None, n_faces=1, flag="ok", residual=1.26)
    assert overview.alignment_reading(aligned) == (
        "Faces found: **1**, flag **ok**, mean landmark distance to the template after alignment **1.3 px**."
    )
    none = replace(aligned, n_faces=0, flag="no_face", residual=float("nan"))
    assert overview.alignment_reading(none).startswith("Faces found: **0**, flag **no_face**")


def test_left_out_reasons_fall_into_the_four_categories() -> None:
    assert overview.reason("alignment: no_face") == "no face found"
    assert overview.reason("alignment: multiple_faces") == "several faces"
    assert overview.reason("alignment: unreadable") == "unreadable file"
    assert overview.reason("file name 12_x_0.jpg: age is not a number") == overview.ADAPTER_SKIP


def test_dataset_table_counts_photos_people_sex_and_deaths() -> None:
    table = pd.DataFrame({"dataset": ["a", "a", "a", "b"], "subject_id": ["1", "1", "2", "3"], "age": [10, 20, 90, 50],
                          "sex": ["F", "F", "M", "M"], "split": ["train", "train", "test", "val"],
                          "event": [1, 1, 0, 0]})  # fmt: skip
    out = overview.datasets({"clinical-a": table})
    a = out.loc[("clinical-a", "a")]
    assert (a["photos"], a["people"], a["% female"], a["train / val / test"]) == (3, 2, "67", "2 / 0 / 1")
    assert a["% <18 / >80"] == "33 / 33" and a["deaths"] == "67 %" and a["age range"] == "10–90"
    assert overview.datasets({"pretrain": table.drop(columns=["age", "event"])}).iloc[0]["age range"] == "—"


def test_the_prepared_cohorts_table_names_no_clinical_folder(monkeypatch) -> None:
    built = pd.DataFrame(
        {"action": ["prepared", "up to date", "prepared"], "photos": [10, 20, 30], "left out": [0, 1, 2],
         "folder": ["/data/art/real/age", "/data/art/real/clinical-a", "/data/art/real/clinical-b"]},
        index=pd.Index(["age", "clinical-a", "clinical-b"], name="cohort"),
    )  # fmt: skip
    monkeypatch.setattr(overview.prepare, "available", lambda cfg: {"age", "clinical-a", "clinical-b"})
    monkeypatch.setattr(overview.prepare, "build", lambda cfg, cohorts, progress: built.loc[list(cohorts)])
    shown = overview.prepare_present(None)
    assert shown.loc["age", "folder"] == "/data/art/real/age"  # a public dataset's folder stays
    assert not shown["folder"].str.contains("clinical").any() and shown["photos"].tolist() == [10, 20, 30]
