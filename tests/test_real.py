"""Real data through the training stages: a small tree laid out as the seven real datasets are published
(made here from two public-domain portraits that ship with scikit-image and Matplotlib) is prepared by
``fahr prepare`` — adapters, face detection and alignment, one manifest per cohort, every photo left out
listed with its reason — and the three training stages train on it through the same command line as on
FAHR-Synth. The book still refuses real data, naming the open step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skimage.data
import torch
from matplotlib import cbook
from PIL import Image
from scipy.io import savemat

from fahr.core import config
from fahr.data import align
from fahr.data.manifest import ManifestError, find_problems
from fahr.data.real import prepare
from fahr.report import book

# Small batches for a tree of a few dozen photos; one short epoch per stage.
TINY = [
    "pretrain.epochs=1", "pretrain.batch_size=8", "faceage.stage1.epochs=1", "faceage.stage1.batch_size=4",
    "faceage.stage2.epochs=1", "faceage.stage2.batch_size=4", "faceage.balanced_samples=8",
    "facesurvival.epochs=1", "facesurvival.batch_size=8", "facesurvival.min_events=2", "synth.workers=1",
]  # fmt: skip

pytestmark = pytest.mark.slow  # every test here runs `python -m fahr.cli` (prepare, train) in a subprocess


def portraits() -> list[np.ndarray]:
    """Photos with one face each: two portraits, mirrored, shifted and lit differently (16 in all)."""
    base = [
        skimage.data.astronaut(),
        align.read_image(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))),
    ]
    out = []
    for image in base:
        for flip in (False, True):
            for dx, gain in ((0, 1.0), (24, 0.85), (48, 1.1), (12, 0.95)):
                photo = image[:, ::-1] if flip else image
                photo = np.clip(photo[:, dx : dx + 440].astype(float) * gain, 0, 255).astype(np.uint8)
                out.append(photo)
    return out


def save(image: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=92)
    return path.name


def datenum(day: date) -> float:
    return float(day.toordinal() + 366)  # MATLAB's day numbers


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """The seven datasets, each in its published layout, with a photo that has no face and a badly named file."""
    root = tmp_path_factory.mktemp("data")
    photos = portraits()
    rng = np.random.default_rng(0)
    for person in range(20):  # webface: identity folders of aligned 112x112 crops
        for k in range(2):
            crop = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
            save(crop, root / "webface" / f"id{person:03d}" / f"{k}.jpg")
    for i in range(12):  # utkface: age_gender_race_date.jpg
        save(photos[i], root / "utkface" / f"{20 + 5 * i}_{i % 2}_{i % 5}_2017010{i % 9}.jpg")
    save(photos[0], root / "utkface" / "not_a_utkface_name.jpg")  # an adapter skip, with its reason
    for split, names in {
        "train": ["000000.jpg", "000001.jpg"],
        "valid": ["004113.jpg"],
        "test": ["005613.jpg"],
    }.items():
        for k, name in enumerate(names):
            save(photos[3 + k], root / "appa-real" / split / name)
        pd.DataFrame({"file_name": names, "apparent_age_avg": 30.0, "real_age": [31, 45][: len(names)]}).to_csv(
            root / "appa-real" / f"gt_avg_{split}.csv", index=False
        )
    rows = []
    for i in range(6):  # imdb-wiki: photo folders beside wiki.mat
        rows.append(f"0{i}/{save(photos[6 + i], root / 'imdb-wiki' / f'0{i}' / f'{i}_1970.jpg')}")
    born = [datenum(date(1940 + 5 * i, 3, 1)) for i in range(6)]
    savemat(root / "imdb-wiki" / "wiki.mat", {"wiki": {
        "full_path": np.array([[np.array([p]) for p in rows]], dtype=object), "dob": np.array([born]),
        "photo_taken": np.array([[2000.0] * 6]), "gender": np.array([[1.0, 0.0] * 3]),
        "face_score": np.array([[3.0] * 6]), "second_face_score": np.array([[np.nan] * 6]),
        "name": np.array([[np.array([f"Person {i}"]) for i in range(6)]], dtype=object),
        "face_location": np.array([[np.array([""]) for _ in range(6)]], dtype=object),
    }})  # fmt: skip
    for i in range(10):  # agedb: id_name_age_sex.jpg, five people
        save(photos[i + 2], root / "agedb" / f"{i}_Person{i % 5}_{30 + 4 * i}_{'mf'[i % 2]}.jpg")
    for cohort, n in (("clinical-a", 40), ("clinical-b", 10)):
        records = []
        for i in range(n):
            path = save(photos[i % len(photos)], root / cohort / "photos" / f"{i}.jpg")
            records.append({"path": f"photos/{path}", "subject_id": f"{cohort[-1]}{i}", "age": 50.0 + i,
                            "sex": "MF"[i % 2], "race": "white", "time": 0.5 + (i * 7 % 11) / 3,
                            "event": int(i % 3 != 0), "cancer_type": ["lung", "breast"][i % 2],
                            "stage": 1 + i % 4, "ecog": i % 3})  # fmt: skip
        save(np.full((200, 200, 3), 128, np.uint8), root / cohort / "photos" / "blank.jpg")  # no face
        records.append(records[0] | {"path": "photos/blank.jpg", "subject_id": f"{cohort[-1]}-blank"})
        pd.DataFrame(records).to_csv(root / cohort / "photos.csv", index=False)
    return root


def fahr(artifacts: Path, data_root: Path, *args: str) -> subprocess.CompletedProcess:
    sets = [a for s in [*TINY, "data.source=real", f"data.root={data_root}"] for a in ("--set", s)]
    env = {**os.environ, "FAHR_ARTIFACTS": str(artifacts)}
    return subprocess.run([sys.executable, "-m", "fahr.cli", *args, "--profile", "smoke", *sets],
                          capture_output=True, text=True, env=env, timeout=900)  # fmt: skip


@pytest.fixture(scope="module")
def prepared(data_root, tmp_path_factory) -> dict:
    artifacts = tmp_path_factory.mktemp("artifacts")
    out = fahr(artifacts, data_root, "prepare")
    assert out.returncode == 0, out.stderr[-3000:]
    return {"artifacts": artifacts, "stdout": out.stdout, "folder": artifacts / "smoke" / "real"}


def test_prepare_writes_one_validated_manifest_per_cohort_with_aligned_crops(prepared) -> None:
    age = pd.read_parquet(prepared["folder"] / "age" / "manifest.parquet")
    assert sorted(age["dataset"].unique()) == ["agedb", "appa-real", "utkface", "wiki"]
    assert len(age) == 12 + 4 + 6 + 10 and set(age["align_flag"]) <= {"ok", "multiple_faces"}
    crop = Image.open(prepared["folder"] / "age" / age["path"].iloc[0])
    assert crop.size == (112, 112)  # aligned to the five-point template, under the cohort's folder
    assert age.groupby("subject_id")["split"].nunique().max() == 1
    assert age.loc[age["dataset"] == "appa-real", "split"].tolist() == ["train", "train", "val", "test"]
    wiki = age[age["dataset"] == "wiki"].sort_values("image_id")
    assert wiki["age"].tolist() == [60, 55, 50, 45, 40, 35]  # completed years on 1 July 2000
    pretrain = pd.read_parquet(prepared["folder"] / "pretrain" / "manifest.parquet")
    assert len(pretrain) == 40 and set(pretrain["align_flag"]) == {"prealigned"}  # data.prealigned: webface
    assert set(pretrain["split"]) == {"train", "val"} and pretrain["subject_id"].nunique() == 20
    b = pd.read_parquet(prepared["folder"] / "clinical-b" / "manifest.parquet")
    assert len(b) == 10 and set(b["split"]) == {"test"}  # the independent cohort is all test
    a = pd.read_parquet(prepared["folder"] / "clinical-a" / "manifest.parquet")
    assert len(a) == 40 and set(a["split"]) == {"train", "val", "test"} and a["time"].notna().all()


def test_every_photo_left_out_is_listed_with_its_dataset_and_reason(prepared) -> None:
    utk = pd.read_csv(prepared["folder"] / "age" / "excluded.csv")
    assert utk["file"].str.endswith("not_a_utkface_name.jpg").any() and (utk["dataset"] == "utkface").all()
    for cohort in ("clinical-a", "clinical-b"):
        left = pd.read_csv(prepared["folder"] / cohort / "excluded.csv")
        assert left["file"].str.endswith("blank.jpg").tolist() == [True] and left["reason"][0] == "alignment: no_face"
    assert "1 left out" in prepared["stdout"]


def test_prepare_again_is_up_to_date_and_a_new_photo_makes_it_prepare_again(prepared, data_root) -> None:
    again = fahr(prepared["artifacts"], data_root, "prepare", "--cohort", "pretrain")
    assert again.returncode == 0 and "pretrain: up to date" in again.stdout
    extra = data_root / "webface" / "id999" / "0.jpg"
    save(np.zeros((112, 112, 3), np.uint8), extra)
    try:
        again = fahr(prepared["artifacts"], data_root, "prepare", "--cohort", "pretrain")
        assert again.returncode == 0 and "pretrain: prepared, 41 photos" in again.stdout
    finally:
        extra.unlink()
        extra.parent.rmdir()
        assert fahr(prepared["artifacts"], data_root, "prepare", "--cohort", "pretrain").returncode == 0


def test_the_three_training_stages_train_on_the_prepared_real_cohorts(prepared, data_root) -> None:
    for stage in ("pretrain", "finetune-age", "finetune-survival"):
        out = fahr(prepared["artifacts"], data_root, stage)
        assert out.returncode == 0, f"{stage}: {out.stderr[-3000:]}"
    models = prepared["artifacts"] / "smoke" / "models"
    age = json.loads((models / "faceage" / "done.json").read_text())
    survival = json.loads((models / "facesurvival" / "done.json").read_text())
    assert np.isfinite(age["stage2_val_mae"]) and 0.0 <= survival["val_c_index"] <= 1.0
    assert age["config"]["data"]["source"] == "real"
    weights = torch.load(models / "faceage" / "faceage-stage2.pt", weights_only=True, map_location="cpu")
    assert any(k.startswith("encoder.blocks.") for k in weights.get("model", weights))


def test_a_stage_names_only_the_real_datasets_it_needs(data_root, tmp_path) -> None:
    partial = tmp_path / "data"
    partial.mkdir()
    for name in ("webface", "clinical-a"):
        os.symlink(data_root / name, partial / name)
    cfg = config.load("smoke", {"data.source": "real", "data.root": str(partial)})
    prepare.check(cfg, prepare.datasets_of(prepare.STAGE_COHORTS["finetune-survival"]))  # all it needs is there
    with pytest.raises(prepare.MissingData) as raised:
        prepare.check(cfg, prepare.datasets_of(prepare.STAGE_COHORTS["finetune-age"]))
    message = str(raised.value)
    assert all(f"- {n}: put" in message for n in ("utkface", "appa-real", "imdb-wiki", "agedb"))
    assert "clinical-b" not in message and "webface" not in message
    artifacts = tmp_path / "artifacts"
    assert fahr(artifacts, partial, "prepare", "--cohort", "pretrain").returncode == 0  # only webface needed
    out = fahr(artifacts, partial, "prepare", "--cohort", "age")
    assert out.returncode == 2 and "- utkface: put" in out.stderr and "- clinical-b" not in out.stderr


def test_a_chapter_without_its_datasets_is_a_page_naming_them(data_root, tmp_path) -> None:
    partial = tmp_path / "data"
    partial.mkdir()
    os.symlink(data_root / "utkface", partial / "utkface")
    cfg = config.load("smoke", {"data.source": "real", "data.root": str(partial)})
    absent = {name: [e.name for e, _ in book.missing_data(cfg, name)] for name in book.CHAPTERS}
    assert absent["cohorts"] == absent["report"] == absent["reproducibility"] == []
    assert absent["faceage"] == ["webface"]  # the age datasets: any one of them is enough
    assert absent["facesurvival"] == ["webface", "clinical-a", "clinical-b"]
    page = book.missing_page(cfg, "facesurvival", book.missing_data(cfg, "facesurvival"))
    text = page.cells[0].source
    assert text.startswith("# FaceSurvival") and f"`{partial / 'clinical-b'}/`" in text and "photos.csv" in text
    weights = config.load("smoke", {"data.source": "real", "data.root": str(partial), "pretrain.weights": "x.pth"})
    assert book.missing_data(weights, "faceage") == [] and book.missing_data(weights, "pretraining") != []
    assert prepare.available(cfg) == {"age"} and prepare.present(cfg, "age") == ("utkface",)


def test_the_book_with_no_real_dataset_at_all_names_them_and_runs_nothing(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    out = fahr(tmp_path / "artifacts", tmp_path / "empty", "book")
    assert out.returncode == 2 and "- utkface: put" in out.stderr and "Nothing was run" in out.stderr
    assert not (tmp_path / "artifacts").exists()


def test_a_patient_in_both_clinical_cohorts_is_refused_naming_the_rows(data_root, tmp_path) -> None:
    root = tmp_path / "data"
    for cohort in ("clinical-a", "clinical-b"):
        (root / cohort).mkdir(parents=True)
        shutil.copyfile(data_root / cohort / "photos.csv", root / cohort / "photos.csv")
    b = pd.read_csv(root / "clinical-b" / "photos.csv")
    b.loc[[2, 4], "subject_id"] = ["a7", "a9"]  # two development patients turn up in the independent cohort
    b.to_csv(root / "clinical-b" / "photos.csv", index=False)
    cfg = config.load("smoke", ["data.source=real", f"data.root={root}"])
    with pytest.raises(ManifestError, match=r"clinical-b/photos.csv: rows 3, 5, column 'subject_id': 2 patient"):
        prepare.check_patients_disjoint(cfg, "clinical-b")
    with pytest.raises(ManifestError, match=r"clinical-a/photos.csv: rows 8, 10, column 'subject_id'"):
        prepare.check_patients_disjoint(cfg, "clinical-a")
    b.loc[[2, 4], "subject_id"] = ["b-new-1", "b-new-2"]
    b.to_csv(root / "clinical-b" / "photos.csv", index=False)
    prepare.check_patients_disjoint(cfg, "clinical-b")  # disjoint again: nothing to say


def test_a_patient_whose_photos_disagree_on_the_outcome_is_refused() -> None:
    table = pd.DataFrame({"image_id": ["x1", "x2", "y1"], "path": ["1.jpg", "2.jpg", "3.jpg"],
                          "subject_id": ["x", "x", "y"], "dataset": "h", "split": "test",
                          "time": [2.0, 2.0, 1.0], "event": [1, 0, 1]})  # fmt: skip
    problems = find_problems(table)
    reason = "the patient's photos disagree on event"
    assert problems[["row", "column", "reason"]].values.tolist() == [[1, "event", reason], [2, "event", reason]]


def test_a_clinical_cohort_with_too_few_deaths_gets_a_page_that_says_so() -> None:
    from fahr.analysis import survival

    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame({"time": rng.uniform(0.1, 5, n), "event": [1] * 6 + [0] * (n - 6),
                          "age": rng.uniform(40, 80, n), "sex": rng.choice(["F", "M"], n),
                          "race": rng.choice(["white", "black", "asian"], n),
                          "cancer_type": rng.choice(["lung", "breast", "gastrointestinal"], n),
                          "stage": rng.integers(1, 5, n), "ecog": rng.integers(0, 3, n),
                          "faceage": rng.uniform(40, 80, n)})  # fmt: skip
    with pytest.raises(survival.TooFewDeaths, match=r"cohort X: 6 deaths among 40 patients.*cannot be estimated"):
        survival.check_deaths({"cohort X": frame})
    survival.check_deaths({"cohort X": frame.assign(event=1)})  # 40 deaths: enough to fit
    page = book.small_data_page("facesurvival", "cohort X: 6 deaths")
    assert page.cells[0].source.startswith("# FaceSurvival") and "could not be computed" in page.cells[0].source
    assert "TooFewDeaths" in book.DATA_TOO_SMALL


def test_a_paired_set_is_read_into_the_test_split_and_a_missing_column_is_named(tmp_path) -> None:
    from fahr.data.real import adapters

    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tmp_path / "a.jpg")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "b.jpg")
    pd.DataFrame({"person": ["p1", "p1"], "condition": ["reference", "facelift"], "strength": [0, 1.0],
                  "path": ["a.jpg", "b.jpg"], "age": [61, 61]}).to_csv(tmp_path / "pairs.csv", index=False)  # fmt: skip
    result = adapters.paired_csv(tmp_path / "pairs.csv", tmp_path)
    m = result.manifest
    assert list(m["condition"]) == ["reference", "facelift"] and list(m["strength"]) == [0.0, 1.0]
    assert set(m["split"]) == {"test"} and list(m["pair_id"]) == ["p1", "p1"] and result.skipped.empty
    pd.DataFrame({"person": ["p1"], "path": ["a.jpg"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ManifestError, match=r"bad.csv: missing column\(s\) \['condition', 'strength'\]"):
        adapters.paired_csv(tmp_path / "bad.csv", tmp_path)
