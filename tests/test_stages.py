"""The training stages on the smoke profile: MAE and FaceAge learn, FaceAge beats the mean, FaceSurvival trains,
finished runs are reused, predictions cover every photo, and `fahr predict` handles real and bad photos."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from fahr import predict
from fahr.core import config
from fahr.data import align
from fahr.train import common, faceage, facesurvival, pretrain
from fahr.train.loop import read_metrics


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke profile trained once into an empty artifacts folder."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAHR_ARTIFACTS", str(artifacts))
        cfg = config.load("smoke")
        paths = {"encoder": pretrain.run(cfg, progress=False), "faceage": faceage.run(cfg, progress=False),
                 "facesurvival": facesurvival.run(cfg, progress=False)}  # fmt: skip
        yield cfg, artifacts, paths


pytestmark = pytest.mark.slow  # every test here reads the smoke profile trained by the fixture above


def test_mae_pretraining_loss_falls(smoke) -> None:
    cfg, _, _ = smoke
    log = read_metrics(common.model_dir(cfg.profile, pretrain.NAME))
    train = log[log["event"] == "train"]["loss"].to_numpy()
    assert train[-1] < 0.95 * train[0], train


def test_faceage_learns_and_beats_the_mean_age_baseline(smoke) -> None:
    cfg, _, paths = smoke
    log = read_metrics(common.model_dir(cfg.profile, "faceage") / "stage1")
    train = log[log["event"] == "train"]["loss"].to_numpy()
    assert train[-1] < 0.8 * train[0], train  # L1 loss in years falls
    val = common.cohort(cfg, "age", "val")
    train_ages = common.cohort(cfg, "age", "train")["age"]
    model = faceage.load(paths["faceage"])
    mae = float(np.abs(common.predict(model, val, cfg).to_numpy() - val["age"].to_numpy()).mean())
    baseline = float(np.abs(val["age"] - train_ages.mean()).mean())
    assert mae < 0.75 * baseline, (mae, baseline)


def test_training_from_shards_gives_models_as_good_as_training_from_the_photo_files(smoke, tmp_path) -> None:
    """``data.format: shards``: every stage streams WebDataset shards it writes from the cohort. Tolerances against
    the loose-photo run (the order of the photos differs, nothing else): MAE validation loss within 5 %, FaceAge's
    validation MAE within 1.5 years and below 0.75 × the mean-age baseline, FaceSurvival's C within 0.1."""
    cfg, _, _ = smoke
    files = {name: common.read_done(cfg.profile, name) for name in ("pretrain", "faceage", "facesurvival")}
    val = common.cohort(cfg, "age", "val")
    baseline = float(np.abs(val["age"] - common.cohort(cfg, "age", "train")["age"].mean()).mean())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAHR_ARTIFACTS", str(tmp_path))
        streamed = config.load("smoke", ["data.format=shards"])
        for stage in (pretrain, faceage, facesurvival):
            stage.run(streamed, progress=False)
        shards = {name: common.read_done(cfg.profile, name) for name in files}
        model = faceage.load(faceage.checkpoint_path(cfg.profile))
        mae = float(np.abs(common.predict(model, val, cfg).to_numpy() - val["age"].to_numpy()).mean())
        written = {p.parent.name for p in (tmp_path / cfg.profile / "shards").glob("*/*.tar")}
        stage1 = read_metrics(common.model_dir(cfg.profile, "faceage") / "stage1", "train")
    print(f"files vs shards: MAE val loss {files['pretrain']['val_loss']:.4f} vs {shards['pretrain']['val_loss']:.4f}, "
          f"FaceAge val MAE {files['faceage']['stage2_val_mae']:.2f} vs {shards['faceage']['stage2_val_mae']:.2f} "
          f"(mean baseline {baseline:.2f}), C {files['facesurvival']['val_c_index']:.3f} vs "
          f"{shards['facesurvival']['val_c_index']:.3f}")  # fmt: skip
    assert written == {"pretrain-train", "age-train", "clinical-a-train"}
    files_stage1 = read_metrics(common.model_dir(cfg.profile, "faceage") / "stage1", "train")
    assert not np.allclose(stage1["loss"].to_numpy(), files_stage1["loss"].to_numpy())  # another stream of photos
    assert abs(shards["pretrain"]["val_loss"] / files["pretrain"]["val_loss"] - 1) < 0.05
    assert abs(shards["faceage"]["stage2_val_mae"] - files["faceage"]["stage2_val_mae"]) < 1.5
    assert mae < 0.75 * baseline, (mae, baseline)
    assert abs(shards["facesurvival"]["val_c_index"] - files["facesurvival"]["val_c_index"]) < 0.1


def test_checkpoints_load_with_weights_only_and_keep_their_recipe(smoke) -> None:
    _, _, paths = smoke
    for path in paths.values():
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert "model" in state
    extra = torch.load(paths["faceage"], weights_only=True)["extra"]
    assert extra["stage"] == 2 and extra["pretrained"] is True and extra["age_scale"] > 0
    assert 0.0 <= torch.load(paths["facesurvival"], weights_only=True)["extra"]["val_c_index"] <= 1.0


def test_a_finished_stage_is_reused_not_retrained(smoke) -> None:
    cfg, _, paths = smoke
    log = common.model_dir(cfg.profile, "faceage") / "stage1" / "metrics.jsonl"
    before = log.stat().st_mtime_ns
    assert faceage.run(cfg, progress=False) == paths["faceage"]
    assert log.stat().st_mtime_ns == before


def test_a_changed_recipe_starts_afresh_instead_of_resuming_a_stale_run(smoke) -> None:
    cfg, _, _ = smoke
    changed = config.load("smoke", ["facesurvival.epochs=1"])
    out = common.model_dir(changed.profile, facesurvival.name(True))
    facesurvival.run(changed, progress=False)
    epochs = read_metrics(out / "train").query("event == 'eval'")["epoch"].tolist()
    assert epochs == [1]
    facesurvival.run(cfg, progress=False)  # back to the profile's recipe for the other tests


def test_predictions_cover_every_photo_once_with_the_checkpoint_hash(smoke) -> None:
    cfg, _, _ = smoke
    table = predict.table(cfg, "faceage", "age")
    photos = common.cohort(cfg, "age")
    assert sorted(table["image_id"]) == sorted(photos["image_id"])
    assert table["age_pred"].between(-20, 140).all() and table["checkpoint"].nunique() == 1
    risk = predict.table(cfg, "facesurvival", "clinical-b")
    assert len(risk) == len(common.cohort(cfg, "clinical-b")) and np.isfinite(risk["risk"]).all()
    with pytest.raises(ValueError, match="unknown model"):
        predict.table(cfg, "faceold", "age")


def test_fahr_predict_runs_on_real_photos_and_never_stops_on_a_bad_one(smoke, tmp_path) -> None:
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    _, artifacts, paths = smoke
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()).save(photos / "astronaut.jpg")
    Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).save(photos / "hopper.jpg")
    Image.fromarray(data.coffee()).save(photos / "coffee.jpg")
    (photos / "truncated.jpg").write_bytes((photos / "astronaut.jpg").read_bytes()[:500])
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "fahr.cli", "predict", str(photos), "--faceage", str(paths["faceage"]),
           "--facesurvival", str(paths["facesurvival"]), "-o", str(out), "--profile", "smoke"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "FAHR_ARTIFACTS": str(artifacts)})
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out).set_index(pd.Index(["astronaut", "coffee", "hopper", "truncated"]))
    assert table["flag"].to_dict() == {
        "astronaut": "ok",
        "coffee": "no_face",
        "hopper": "ok",
        "truncated": "unreadable",
    }
    assert table.loc[["astronaut", "hopper"], ["age_pred", "risk"]].notna().all().all()
    assert table.loc[["coffee", "truncated"], ["age_pred", "risk"]].isna().all().all()
    assert "2 of 4 photos aligned; left out: 1 no face, 1 unreadable" in done.stdout
    assert not list(tmp_path.glob(".out.csv*"))  # the journal is removed once the table is saved

    # a run killed mid-way: its journal holds two finished photos and a line cut short; the rerun predicts only the rest
    journal = tmp_path / "journal.jsonl"
    first = predict.photos(sorted(photos.glob("*"))[:2], paths["faceage"], paths["facesurvival"], progress=False,
                           workers=1, journal=journal)  # fmt: skip
    with journal.open("a") as f:
        f.write('{"path": "cut sho')
    aligned = []
    real_align_each = align.align_each

    def counting(todo, *args, **kwargs):
        aligned.extend(todo)
        return real_align_each(todo, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(align, "align_each", counting)
        resumed = predict.photos(sorted(photos.glob("*")), paths["faceage"], paths["facesurvival"], progress=False,
                                 workers=2, journal=journal)  # fmt: skip
    assert [p.name for p in aligned] == ["hopper.jpg", "truncated.jpg"]  # astronaut and coffee were journaled
    pd.testing.assert_frame_equal(resumed.iloc[:2], first)
    assert resumed["flag"].tolist() == ["ok", "no_face", "ok", "unreadable"]
    assert np.allclose(resumed["age_pred"].dropna(), table.loc[["astronaut", "hopper"], "age_pred"], atol=1e-4)
