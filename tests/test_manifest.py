"""Manifest validation names the file, row, column and reason of every problem; splits are by subject."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fahr.data import manifest


@pytest.fixture
def photos(tmp_path):
    for i in range(4):
        Image.new("RGB", (8, 8), (60 * i, 10, 10)).save(tmp_path / f"p{i}.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return tmp_path


def good() -> pd.DataFrame:
    return pd.DataFrame({
        "image_id": [f"i{k}" for k in range(4)], "path": [f"p{k}.jpg" for k in range(4)],
        "subject_id": [f"s{k}" for k in range(4)], "dataset": "d", "split": ["train", "train", "val", "test"],
        "age": [30.0, 41.0, 52.0, 63.0], "sex": ["F", "M", "F", "M"], "race": ["white", "black", "asian", "other"],
        "time": [1.0, 2.5, 0.2, 4.0], "event": [1, 0, 1, 0],
    })  # fmt: skip


def test_a_good_manifest_passes_with_its_images_checked(photos) -> None:
    result = manifest.validate(good(), "m.csv", root=photos)
    assert len(result.valid) == 4 and result.problems.empty and result.excluded.empty


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("age", 130.0, "age not a number in 0–120 years"),
        ("age", -1.0, "age not a number in 0–120 years"),
        ("event", 2, "event not 0 or 1"),
        ("time", -0.5, "negative survival time"),
        ("time", np.nan, "survival time missing or not a number"),
        ("sex", "X", "unknown sex code"),
        ("race", "martian", "unknown race code"),
        ("split", "holdout", "split not one of train, val, test"),
        ("path", "nowhere.jpg", "missing image file"),
        ("path", "broken.jpg", "unreadable image"),
        ("image_id", "i0", "duplicate image_id"),
        ("subject_id", "s0", "subject in more than one split"),
        ("dataset", "", "missing value"),
    ],
)
def test_each_kind_of_bad_value_is_an_error_naming_file_row_column_and_reason(photos, column, value, reason) -> None:
    df = good()
    df.loc[2, column] = value  # data row 3, as a person counts
    with pytest.raises(manifest.ManifestError) as err:
        manifest.validate(df, "cohort.csv", root=photos)
    assert f"cohort.csv, row 3, column '{column}': {reason}" in str(err.value)


def test_a_missing_required_column_is_fatal_even_when_excluding() -> None:
    with pytest.raises(manifest.ManifestError, match="column 'split'.*required column missing"):
        manifest.validate(good().drop(columns="split"), "m.csv", on_invalid="exclude")


def test_excluding_sets_bad_rows_aside_with_their_reasons_never_silently(photos) -> None:
    df = good()
    df.loc[1, "age"], df.loc[3, "event"] = 500.0, 7
    result = manifest.validate(df, "m.csv", root=photos, on_invalid="exclude")
    assert list(result.valid["image_id"]) == ["i0", "i2"]
    assert list(result.excluded["image_id"]) == ["i1", "i3"]
    assert "age not a number" in result.excluded["exclusion_reason"].iloc[0]
    assert result.counts.to_dict() == {"age not a number in 0–120 years": 1, "event not 0 or 1": 1}
    assert "2 problems in 2 rows" in result.summary()


def test_manifest_files_round_trip_and_bad_files_are_named(tmp_path, photos) -> None:
    good().to_csv(photos / "m.csv", index=False)
    assert len(manifest.load(photos / "m.csv").valid) == 4
    with pytest.raises(manifest.ManifestError, match="manifest not found"):
        manifest.read(tmp_path / "absent.parquet")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(manifest.ManifestError, match=r"\.parquet or \.csv"):
        manifest.read(tmp_path / "m.txt")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(manifest.ManifestError, match="bad.parquet: cannot be read"):
        manifest.read(tmp_path / "bad.parquet")


def test_a_truncated_csv_manifest_is_reported_by_row(photos) -> None:
    text = good().to_csv(index=False)
    (photos / "cut.csv").write_text(text[: text.rindex(",4.0,") + 3])  # cut inside the last row's time: "…,4."
    with pytest.raises(manifest.ManifestError, match=r"cut.csv, row 4, column 'time': the file ends inside"):
        manifest.load(photos / "cut.csv")


def test_split_subjects_is_seeded_stratified_and_by_subject() -> None:
    rng = np.random.default_rng(0)
    subjects = pd.DataFrame({"decade": rng.integers(0, 5, 2000)}, index=[f"s{i}" for i in range(2000)])
    fractions = {"train": 0.7, "val": 0.1, "test": 0.2}
    a = manifest.split_subjects(subjects, fractions, seed=1, stratify="decade")
    assert a.equals(manifest.split_subjects(subjects, fractions, seed=1, stratify="decade"))
    assert not a.equals(manifest.split_subjects(subjects, fractions, seed=2, stratify="decade"))
    shares = pd.crosstab(subjects["decade"], a, normalize="index")
    assert (shares["train"].sub(0.7).abs() < 0.03).all() and (shares["test"].sub(0.2).abs() < 0.03).all()
    with pytest.raises(ValueError, match="sum to 1"):
        manifest.split_subjects(subjects, {"train": 0.5, "test": 0.2}, seed=0)
