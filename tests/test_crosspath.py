"""The cross-path check's pieces without a book: the export key joins prepared rows to FAHR-Synth photos, each
check is within or out of its stated tolerance, controls are judged like the checks, and a tree that was not
exported gets a clear error. (The whole check runs on the real-data smoke book in ``test_real_book.py``.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fahr.analysis import crosspath
from fahr.core.config import load


def test_relative_strips_only_the_dataset_prefix() -> None:
    assert crosspath.relative("utkface/12_0_0_2016.jpg", "utkface") == "12_0_0_2016.jpg"
    assert crosspath.relative("appa-real/train/000001.jpg", "appa-real") == "train/000001.jpg"
    assert crosspath.relative("photos/cla-000001.jpg", "clinical-a") == "photos/cla-000001.jpg"
    assert crosspath.relative("12_0_0_2016.jpg", "utkface") == "12_0_0_2016.jpg"


def test_rows_are_judged_against_their_tolerance_and_so_are_the_controls() -> None:
    close = crosspath._row("FaceSurvival log HR per SD", "10 photos", 0.4, 0.5, -0.1)
    assert close["within"] and not close["control within"] and close["tolerance"] == "± 0.3"
    far = crosspath._row("FaceSurvival log HR per SD", "10 photos", 0.4, 0.8, 0.3)
    assert not far["within"] and far["control within"]  # a control within tolerance: the check had no power
    shown = crosspath._row("FaceAge MAE", "10 photos", 12.5, 6.8, 20.0)  # another crop geometry: shown only
    assert not shown["judged"] and shown["tolerance"] == "not judged"
    agree = crosspath._row("FaceAge agreement", "10 photos", 1.0, 0.85, 0.05)
    assert agree["within"] and not agree["control within"] and agree["tolerance"] == "≥ 0.8"
    assert not crosspath._row("FaceAge agreement", "10 photos", 1.0, 0.79, 0.05)["within"]
    table = pd.DataFrame([close, far, agree, shown])
    (line,) = crosspath.failures(table)
    assert line.startswith("FaceSurvival log HR per SD on 10 photos: real path 0.8 against FAHR-Synth path 0.4")
    text = crosspath.sentence(table)
    assert text.startswith("**2 of 3 checks** are within tolerance") and "MAE of 6.80 years on the crops" in text
    assert set(crosspath.TOLERANCES) >= {
        "age label",
        "time label",
        "event label",
        "FaceAge MAE",
        "FaceAge agreement",
        "FaceSurvival agreement",
        "FaceSurvival log HR per SD",
    }


def test_a_tree_that_was_not_exported_is_refused_by_name(tmp_path: Path) -> None:
    cfg = load("smoke", ["data.source=real", f"data.root={tmp_path}"])
    with pytest.raises(FileNotFoundError, match=r"export-key\.csv not found: the cross-path check needs a tree"):
        crosspath.key(cfg)


def test_controls_deal_every_photo_to_someone_else_and_a_flat_model_is_never_within() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 97):
        order = crosspath._derangement(rng, n)
        assert sorted(order) == list(range(n)) and not (order == np.arange(n)).any()
    flat, varied = np.full(5, 40.0), np.arange(5.0)
    assert np.isnan(crosspath._pearson(flat, varied))
    assert not crosspath._row("FaceAge agreement", "5 photos", 1.0, crosspath._pearson(flat, varied), 0.0)["within"]
    assert np.isnan(crosspath.log_hr_per_sd(flat, np.arange(1.0, 6.0), np.ones(5)))
    assert "nothing to compare" in crosspath.sentence(pd.DataFrame(columns=crosspath.COLUMNS))


def test_matched_joins_prepared_photos_to_their_synth_photos_through_the_key(tmp_path: Path, monkeypatch) -> None:
    """A hand-made tree: three prepared test photos (one with its dataset prefix, one from IMDB, whose folder is
    imdb-wiki, one the key does not know) against FAHR-Synth's age cohort of four photos, three in the test split."""
    root, synth = tmp_path / "tree", tmp_path / "synth"
    root.mkdir()
    pd.DataFrame(
        {
            "dataset": ["utkface", "imdb-wiki", "utkface"],
            "path": ["30_1_0_x.jpg", "imdb_crop/01/nm1_1970.jpg", "40_0_0_y.jpg"],
            "image_id": ["age-0001", "age-0002", "age-0003"],
            "cohort": ["age", "age", "age"],
        }
    ).to_csv(root / crosspath.KEY, index=False)
    (synth / "age").mkdir(parents=True)
    pd.DataFrame(
        {
            "image_id": ["age-0001", "age-0002", "age-0003", "age-0004"],
            "path": ["images/1.png", "images/2.png", "images/3.png", "images/4.png"],
            "age": [30.0, 51.0, 40.0, 9.0],
            "split": ["test", "test", "train", "test"],
        }
    ).to_parquet(synth / "age" / "manifest.parquet")
    prepared = pd.DataFrame(
        {
            "image_id": ["utkface/30_1_0_x.jpg", "imdb_crop/01/nm1_1970.jpg", "unknown.jpg"],
            "dataset": ["utkface", "imdb", "utkface"],
            "path": ["/crops/a.png", "/crops/b.png", "/crops/c.png"],
            "age": [30.0, 51.0, 22.0],
        }
    )
    monkeypatch.setattr(crosspath.common, "cohort", lambda cfg, name, split=None: prepared.copy())
    cfg = load("smoke", ["data.source=real", f"data.root={root}"])
    out, synth_test = crosspath.matched(cfg, synth, "age")
    assert synth_test == 3
    assert out["synth_id"].tolist()[:2] == ["age-0001", "age-0002"] and pd.isna(out.loc[2, "synth_id"])
    assert out["synth_age"].tolist()[:2] == [30.0, 51.0] and pd.isna(out.loc[2, "synth_age"])
    assert out.loc[0, "synth_path"] == str(synth / "age" / "images/1.png")
    assert out["path"].tolist() == prepared["path"].tolist()  # the real path's own crops, in its order
    # a key that lists one file twice is refused, and so is a FAHR-Synth folder without the cohort's manifest
    doubled = pd.read_csv(root / crosspath.KEY)
    pd.concat([doubled, doubled.iloc[:1]]).to_csv(root / crosspath.KEY, index=False)
    with pytest.raises(ValueError, match="listed twice"):
        crosspath.matched(cfg, synth, "age")
    doubled.to_csv(root / crosspath.KEY, index=False)
    with pytest.raises(FileNotFoundError, match="the FAHR-Synth cohort that was exported"):
        crosspath.matched(cfg, tmp_path / "elsewhere", "age")
