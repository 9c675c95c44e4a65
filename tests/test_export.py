"""``fahr synth --export``: FAHR-Synth written in the real datasets' own formats. Every adapter reads its folder
with nothing skipped and the synth labels intact, ``fahr prepare`` finds every dataset, detection and alignment
find the faces in their larger frames, no planted truth is written anywhere, and the command line refuses to
write over a folder that is not a previous export."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.io import loadmat

from fahr import cli
from fahr.core import config
from fahr.data import align
from fahr.data.real import adapters, prepare
from fahr.data.synth import cohorts, export
from fahr.data.synth.render import render

# The smoke profile at a quarter of its size, rendered in this process: the whole export takes seconds.
SMALL = {"synth.workers": 1, "synth.pretrain_n": 40, "synth.age_n": 40, "synth.clinical_a_n": 60,
         "synth.clinical_b_n": 30, "synth.pairs_n": 2}  # fmt: skip
REAL = ("webface", "utkface", "appa-real", "imdb-wiki", "agedb", "clinical-a", "clinical-b")
# words that would name planted truth (the README says what is left out without naming it)
PLANTED = ("bio_gap", "frailty", "linear_predictor", "oracle", "hazard", "planted", "latent", "texture_seed",
           "noise_seed")  # fmt: skip


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The small smoke cohorts, built into a private artifacts folder and exported once."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    target = tmp_path_factory.mktemp("export") / "tree"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAHR_ARTIFACTS", str(artifacts))
        cfg = config.load("smoke", SMALL)
        summary = export.export(cfg, target, progress=False)
        truth = pd.concat([cohorts.load(cfg.profile, c)[1] for c in cohorts.COHORTS]).drop(columns="path")
        real = config.load("smoke", SMALL | {"data.source": "real", "data.root": str(target), "data.prealigned": []})
        yield {"cfg": cfg, "real": real, "target": target, "summary": summary, "truth": truth.set_index("image_id"),
               "key": pd.read_csv(target / export.KEY)}  # fmt: skip


def test_every_photo_of_every_cohort_is_written_once_and_keyed(exported) -> None:
    target, key, truth, summary = exported["target"], exported["key"], exported["truth"], exported["summary"]
    assert list(key.columns) == list(export.KEY_COLUMNS)
    assert sorted(key["image_id"]) == sorted(truth.index) and not key.duplicated(["dataset", "path"]).any()
    assert all((target / d / p).is_file() for d, p in zip(key["dataset"], key["path"], strict=True))
    assert list(summary["dataset"]) == [*REAL, "pairs"]
    counts = key.groupby("dataset").size()
    assert summary.set_index("dataset")["photos"].to_dict() == counts.to_dict()
    persons = key.join(truth["subject_id"], on="image_id").groupby("dataset")["subject_id"].nunique()
    assert summary.set_index("dataset")["persons"].to_dict() == persons.to_dict()
    assert (summary["folder"] == [target / d for d in summary["dataset"]]).all()
    assert not list(target.parent.glob(".tree*"))  # written atomically: no temporary folder left


def _adapted(exported, name: str) -> pd.DataFrame:
    """The adapter's manifest of one exported folder (columns prefixed ``real_``), joined to the synth truth."""
    results = prepare.adapt(exported["real"], name)
    for result in results:
        assert result.skipped.empty, result.summary()
    table = pd.concat([r.manifest for r in results], ignore_index=True)
    ours = exported["key"][exported["key"]["dataset"] == name].drop(columns="dataset")
    table = table.rename(columns=lambda c: c if c == "path" else f"real_{c}")
    merged = table.merge(ours, on="path", how="outer", validate="one_to_one", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    return merged.join(exported["truth"], on="image_id")


def _same_people(merged: pd.DataFrame) -> None:
    """The adapter's subjects are the synth persons, one for one."""
    assert merged.groupby("subject_id")["real_subject_id"].nunique().max() == 1
    assert merged.groupby("real_subject_id")["subject_id"].nunique().max() == 1


@pytest.mark.parametrize("name", REAL)
def test_each_adapter_reads_its_folder_with_nothing_skipped_and_the_synth_labels(exported, name: str) -> None:
    merged = _adapted(exported, name)
    assert len(merged) == (exported["key"]["dataset"] == name).sum() > 0
    if name != "webface":
        assert (merged["real_age"] == merged["label_age"]).all()
        assert (merged["real_sex"] == np.where(merged["sex"] == 1, "M", "F")).all()
    if name in ("utkface", "clinical-a", "clinical-b"):
        assert (merged["real_race"] == merged["race"]).all()
    if name == "appa-real":  # APPA-REAL knows three races: the others are left blank
        known = merged["race"].isin(adapters.APPA_RACES.values())
        assert (merged.loc[known, "real_race"] == merged.loc[known, "race"]).all()
        assert merged.loc[~known, "real_race"].isna().all()
    if name in ("appa-real", "clinical-a", "clinical-b"):  # the synth split kept
        assert (merged["real_split"] == merged["split"]).all()
    if name in ("webface", "imdb-wiki", "agedb", "clinical-a", "clinical-b"):  # datasets that know identities
        _same_people(merged)
    if name.startswith("clinical"):
        np.testing.assert_allclose(merged["real_time"], merged["time"], rtol=1e-12)
        for column in ("event", "stage", "ecog", "cancer_type"):
            assert (merged[f"real_{column}"].astype(object) == merged[column].astype(object)).all(), column


def test_fahr_prepare_finds_every_dataset_and_the_readme_command_reads_the_tree(exported) -> None:
    assert prepare.missing(exported["real"]) == []
    command = (exported["target"] / export.README).read_text().split("\n  fahr prepare ", 1)[1].splitlines()[0]
    words = shlex.split(command)
    sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    cfg = config.load(words[words.index("--profile") + 1], sets)
    assert (cfg.data.source, Path(cfg.data.root), cfg.data.prealigned) == ("real", exported["target"], [])
    assert "--cohort" not in words  # every cohort was exported


def test_no_planted_truth_is_written_anywhere(exported) -> None:
    target, truth, key = exported["target"], exported["truth"], exported["key"]
    files = [p for p in target.rglob("*") if p.is_file()]
    # .json: the export key's provenance record alone (which FAHR-Synth folder it came from, for fahr crosspath)
    assert {p.suffix for p in files} == {".jpg", ".csv", ".mat", ".txt", ".json"}
    assert [p.name for p in files if p.suffix == ".json"] == [f"{export.KEY}.provenance.json"]
    for path in files:
        if path.suffix != ".jpg":
            text = path.read_bytes().lower()
            assert not [w for w in PLANTED if w.encode() in text], path
    fields = loadmat(target / "imdb-wiki" / "imdb.mat")["imdb"].dtype.names
    assert set(fields) == {"dob", "photo_taken", "full_path", "gender", "name", "face_location", "face_score",
                           "second_face_score", "celeb_id"}  # fmt: skip
    hidden = truth[["bio_gap", "frailty"]].assign(shown=truth["age"] + truth["bio_gap"])
    for csv in target.rglob("*.csv"):
        if csv.name == export.KEY:
            continue
        table = pd.read_csv(csv)
        path = "file_name" if "file_name" in table else "file" if "file" in table else "path"
        folder = csv.parent.relative_to(target).parts[0]
        prefix = f"{csv.stem.split('_')[-1]}/" if folder == "appa-real" else ""
        ids = key[key["dataset"] == folder].set_index("path")["image_id"].loc[prefix + table[path]]
        latent = hidden.loc[ids].to_numpy()
        for column in table.select_dtypes("number"):
            values = table[column].to_numpy(dtype=float)[:, None]
            assert not np.isclose(values, latent, atol=1e-6).all(axis=0).any(), (csv, column)


def test_photos_are_frames_around_the_face_and_alignment_finds_most_faces(exported) -> None:
    target, key, truth = exported["target"], exported["key"], exported["truth"]
    sample = key.sample(20, random_state=0)
    results = []
    for row in sample.itertuples():
        with Image.open(target / row.dataset / row.path) as img:
            assert img.size == (export.FRAME_PIXELS, export.FRAME_PIXELS) and img.format == "JPEG"
        results.append(align.align_file(target / row.dataset / row.path))
    assert export.FRAME_PIXELS > export.FACE_PIXELS
    found = [r.flag for r in results].count("ok")
    assert found >= 14, [r.flag for r in results]  # ≥ 70 % (about 90 % over the whole export)
    # where IMDB-WIKI says the face photo is, the detector's eyes, nose and mouth lie on the rendered ones
    mat = loadmat(target / "imdb-wiki" / "imdb.mat")["imdb"][0, 0]
    ids = key[key["dataset"] == "imdb-wiki"].set_index("path")["image_id"]
    errors = []
    for cell, corner in list(zip(mat["full_path"].ravel(), mat["face_location"].ravel(), strict=True))[:10]:
        path = str(cell[0])
        face = cohorts.face_of(cohorts.plain_row(truth.loc[ids[path]].to_dict()))
        drawn = render(*face, size=export.FACE_PIXELS).landmarks + np.ravel(corner)[:2]  # in the frame's pixels
        found = align.align_file(target / "imdb-wiki" / path).landmarks
        if found is not None:
            errors.append(np.linalg.norm(found - drawn, axis=1).mean())
    assert len(errors) >= 7 and np.median(errors) < 0.06 * export.FACE_PIXELS, errors


def test_imdb_ages_are_completed_years_on_1_july_and_one_birthday_a_person(exported) -> None:
    merged = _adapted(exported, "imdb-wiki")
    assert (merged["real_age"] == merged["label_age"]).all()
    mat = loadmat(exported["target"] / "imdb-wiki" / "imdb.mat")["imdb"][0, 0]
    people = pd.DataFrame({"id": mat["celeb_id"].ravel(), "dob": mat["dob"].ravel()})
    assert people.groupby("id")["dob"].nunique().max() == 1
    assert (mat["face_score"].ravel() >= 1.0).all() and np.isnan(mat["second_face_score"]).all()


def test_pairs_keep_every_condition_beside_the_reference(exported) -> None:
    table = pd.read_csv(exported["target"] / "pairs" / "pairs.csv")
    assert list(table.columns[:4]) == ["person", "condition", "strength", "path"]
    reference = table[table["condition"] == "reference"]
    assert (reference["strength"] == 0).all() and reference["person"].is_unique
    ids = exported["key"].set_index(["dataset", "path"]).loc[[("pairs", p) for p in table["path"]], "image_id"]
    truth = exported["truth"].loc[ids]
    assert (table["person"].to_numpy() == truth["pair_id"].to_numpy()).all()
    assert (table["condition"].to_numpy() == truth["condition"].to_numpy()).all()
    assert (table["age"].to_numpy() == truth["label_age"].to_numpy()).all()


def test_fahr_prepare_builds_a_cohort_from_the_export(exported) -> None:
    built = prepare.build(exported["real"], ["clinical-b"], progress=False)
    prepared = prepare.load(exported["real"].profile, "clinical-b")
    left_out = pd.read_csv(built.loc["clinical-b", "folder"] / "excluded.csv")
    assert len(prepared) + len(left_out) == exported["real"].synth.clinical_b_n
    assert len(prepared) >= 0.7 * exported["real"].synth.clinical_b_n
    assert set(left_out["reason"]) <= {"alignment: no_face"}


def test_export_refuses_a_folder_that_is_not_empty_unless_forced_onto_an_export(exported, tmp_path) -> None:
    cfg = exported["cfg"]
    (tmp_path / "mine.txt").write_text("keep me")
    for force in (False, True):  # --force replaces only a previous export
        with pytest.raises(FileExistsError, match="not empty" if not force else "not a previous export"):
            export.export(cfg, tmp_path, cohorts=("pairs",), force=force, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me" and len(list(tmp_path.iterdir())) == 1


def test_the_command_line_exports_refuses_to_overwrite_and_replaces_when_forced(exported, tmp_path, capsys) -> None:
    target = tmp_path / "tree"
    argv = ["synth", "--profile", "smoke", *[w for k, v in SMALL.items() for w in ("--set", f"{k}={v}")],
            "--cohort", "clinical-b", "--export", str(target)]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "clinical-b" in out and "fahr prepare --profile smoke" in out and "--cohort clinical-b" in out
    assert sorted(p.name for p in target.iterdir()) == [export.README, "clinical-b", export.KEY,
                                                        f"{export.KEY}.provenance.json"]  # fmt: skip
    assert cli.main(argv) == 2 and "is not empty" in capsys.readouterr().err
    assert cli.main([*argv, "--force"]) == 0
    csv = pd.read_csv(target / "clinical-b" / "photos.csv")
    assert len(csv) == SMALL["synth.clinical_b_n"] and set(csv["split"]) == {"test"}
