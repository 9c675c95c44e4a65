from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.io import savemat

from fahr.data import manifest
from fahr.data.manifest import ManifestError
from fahr.data.real import adapters


def _jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (120, 90, 80)).save(path, "JPEG")
    return path


def _assert_valid_and_subject_exclusive(result: adapters.AdapterResult) -> None:
    manifest.validate(result.manifest, result.dataset, root=result.root)
    assert result.manifest.groupby("subject_id")["split"].nunique().max() == 1
    assert set(result.manifest["split"]) <= set(manifest.SPLITS)


def _skip_reason(result: adapters.AdapterResult, file: str) -> str:
    reasons = result.skipped.loc[result.skipped["file"] == file, "reason"]
    assert len(reasons) == 1, f"{file} not in skipped:\n{result.skipped}"
    return reasons.iloc[0]


# UTKFace


def test_utkface_reads_age_sex_race_from_file_names_both_variants(tmp_path: Path) -> None:
    _jpeg(tmp_path / "part1" / "25_0_0_20170116174525125.jpg.chip.jpg")
    _jpeg(tmp_path / "61_1_4_20170109150557335.jpg")
    _jpeg(tmp_path / "3_1_3_20161219140623097.jpg")
    result = adapters.utkface(tmp_path)
    rows = result.manifest.set_index("path")
    assert rows.loc["part1/25_0_0_20170116174525125.jpg.chip.jpg", ["age", "sex", "race"]].tolist() == [
        25,
        "M",
        "white",
    ]
    assert rows.loc["61_1_4_20170109150557335.jpg", ["age", "sex", "race"]].tolist() == [61, "F", "other"]
    assert rows.loc["3_1_3_20161219140623097.jpg", ["sex", "race"]].tolist() == ["F", "indian"]
    assert (result.manifest["subject_id"] == result.manifest["image_id"]).all()
    assert (result.manifest["dataset"] == "utkface").all()
    assert result.skipped.empty
    _assert_valid_and_subject_exclusive(result)


def test_utkface_malformed_names_are_skipped_with_the_reason(tmp_path: Path) -> None:
    _jpeg(tmp_path / "30_0_0_20170116174525125.jpg")
    bad = {
        "39_1_20170116174525125.jpg.chip.jpg": "fields",
        "xx_0_0_20170116174525125.jpg": "age 'xx' is not a whole number",
        "30_2_0_20170116174525125.jpg": "gender code '2'",
        "30_0_7_20170116174525125.jpg": "race code '7'",
        "130_0_0_20170116174525125.jpg": "outside 0–120",
    }
    for name in bad:
        _jpeg(tmp_path / name)
    result = adapters.utkface(tmp_path)
    assert result.manifest["path"].tolist() == ["30_0_0_20170116174525125.jpg"]
    assert len(result.skipped) == len(bad)
    for name, reason in bad.items():
        assert reason in _skip_reason(result, name)


def test_utkface_unreadable_image_is_set_aside_or_raises(tmp_path: Path) -> None:
    _jpeg(tmp_path / "30_0_0_20170116174525125.jpg")
    (tmp_path / "31_1_2_20170116174525125.jpg").write_bytes(b"not a jpeg")
    result = adapters.utkface(tmp_path)
    assert len(result.manifest) == 1
    assert "unreadable image" in _skip_reason(result, "31_1_2_20170116174525125.jpg")
    with pytest.raises(ManifestError, match="unreadable image"):
        adapters.utkface(tmp_path, on_invalid="raise")


def test_utkface_splits_are_reproducible_by_seed_and_follow_fractions(tmp_path: Path) -> None:
    for i in range(60):
        _jpeg(tmp_path / f"{20 + i % 40}_{i % 2}_{i % 5}_2017011617452{i:04d}.jpg")
    first = adapters.utkface(tmp_path, seed=3, check_images=False).manifest
    again = adapters.utkface(tmp_path, seed=3, check_images=False).manifest
    other = adapters.utkface(tmp_path, seed=4, check_images=False).manifest
    assert first["split"].tolist() == again["split"].tolist()
    assert first["split"].tolist() != other["split"].tolist()
    sizes = first["split"].value_counts()
    assert 42 <= sizes["train"] <= 54 and sizes["val"] >= 3 and sizes["test"] >= 3


# APPA-REAL


def _appa_fixture(root: Path, with_test: bool = True) -> None:
    splits = {"train": ["000000.jpg", "000001.jpg"], "valid": ["004113.jpg"], "test": ["005613.jpg"]}
    if not with_test:
        del splits["test"]
    for official, names in splits.items():
        ratings = pd.DataFrame(
            {
                "file_name": names,
                "num_ratings": 36,
                "apparent_age_avg": [5.0 + 10 * i for i in range(len(names))],
                "apparent_age_std": 3.2,
                "real_age": [4 + 10 * i for i in range(len(names))],
            }
        )
        ratings.to_csv(root / f"gt_avg_{official}.csv", index=False)
        categories = pd.DataFrame(
            {
                "file": names,
                "gender": ["female", "male"][: len(names)],
                "race": ["caucasian", "afroamerican"][: len(names)],
                "makeup": 0,
                "time": 1,
                "happiness": 2,
            }
        )
        categories.to_csv(root / f"allcategories_{official}.csv", index=False)
        for name in names:
            _jpeg(root / official / name)
    _jpeg(root / "train" / "000000.jpg_face.jpg")


def test_appa_real_keeps_official_splits_real_age_and_prefers_aligned_faces(tmp_path: Path) -> None:
    _appa_fixture(tmp_path)
    result = adapters.appa_real(tmp_path)
    rows = result.manifest.set_index("image_id")
    first = rows.loc["appa-real/train/000000.jpg"]
    assert first["path"] == "train/000000.jpg_face.jpg" and bool(first["aligned"])
    assert [first["age"], first["rated_age"], first["sex"], first["race"]] == [4, 5.0, "F", "white"]
    second = rows.loc["appa-real/train/000001.jpg"]
    assert second["path"] == "train/000001.jpg" and not second["aligned"]
    assert [second["age"], second["sex"], second["race"]] == [14, "M", "black"]
    assert rows.loc["appa-real/valid/004113.jpg", "split"] == "val"
    assert rows.loc["appa-real/test/005613.jpg", "split"] == "test"
    assert rows["split"].value_counts().to_dict() == {"train": 2, "val": 1, "test": 1}
    _assert_valid_and_subject_exclusive(result)


def test_appa_real_missing_split_csv_and_missing_image_are_listed_in_skipped(tmp_path: Path) -> None:
    _appa_fixture(tmp_path, with_test=False)
    (tmp_path / "valid" / "004113.jpg").unlink()
    result = adapters.appa_real(tmp_path)
    assert "split CSV not found" in _skip_reason(result, "gt_avg_test.csv")
    assert "missing image file" in _skip_reason(result, "valid/004113.jpg")
    assert sorted(result.manifest["split"]) == ["train", "train"]


# IMDB-WIKI


def _datenum(day: date) -> float:
    return float(day.toordinal() + 366)


def _cells(values: list[str]) -> np.ndarray:
    cells = np.empty((1, len(values)), dtype=object)
    for i, value in enumerate(values):
        cells[0, i] = value
    return cells


def _imdb_wiki_mat(path: Path, struct: str, rows: list[dict]) -> Path:
    """A .mat laid out as IMDB-WIKI's: one 1×1 struct whose fields are 1×N rows (text fields are cells)."""
    fields = {}
    for key in ("dob", "photo_taken", "gender", "face_score", "second_face_score", "celeb_id"):
        if key in rows[0]:
            fields[key] = np.array([[row[key] for row in rows]], dtype=float)
    fields["full_path"] = _cells([row["full_path"] for row in rows])
    fields["name"] = _cells([row["name"] for row in rows])
    fields["face_location"] = _cells(["" for _ in rows])
    savemat(path, {struct: fields})
    return path


def _imdb_row(full_path: str, born: date, taken: int, **extra) -> dict:
    row = {"full_path": full_path, "dob": _datenum(born), "photo_taken": taken, "gender": 1.0, "name": "Ann Lee"}
    return row | {"face_score": 3.5, "second_face_score": np.nan, "celeb_id": 7.0} | extra


def test_matlab_datenum_offset_matches_a_known_date() -> None:
    assert _datenum(date(1970, 1, 1)) == 719529  # MATLAB: datenum(1970, 1, 1)
    assert adapters._completed_years(719529.0, 2000) == 30


def test_imdb_wiki_age_is_completed_years_at_mid_year_and_subject_is_celeb_id(tmp_path: Path) -> None:
    rows = [
        _imdb_row("01/nm0000001_rm1_1980-3-15_2010.jpg", date(1980, 3, 15), 2010, gender=1.0, celeb_id=7.0),
        _imdb_row("01/nm0000001_rm2_1980-10-1_2010.jpg", date(1980, 10, 1), 2010, gender=0.0, celeb_id=7.0),
        _imdb_row("02/nm0000002_rm3_1950-7-1_2000.jpg", date(1950, 7, 1), 2000, gender=np.nan, celeb_id=9.0),
    ]
    for row in rows:
        _jpeg(tmp_path / "imdb_crop" / row["full_path"])
    mat = _imdb_wiki_mat(tmp_path / "imdb.mat", "imdb", rows)
    result = adapters.imdb_wiki(mat, tmp_path / "imdb_crop")
    got = result.manifest.set_index("path")
    assert got["age"].tolist() == [30, 29, 50]
    assert got["sex"].tolist()[:2] == ["M", "F"] and pd.isna(got["sex"].iloc[2])
    assert got["subject_id"].tolist() == ["imdb/7", "imdb/7", "imdb/9"]
    assert result.dataset == "imdb" and result.skipped.empty
    _assert_valid_and_subject_exclusive(result)


def test_imdb_wiki_skips_no_face_second_face_low_score_and_impossible_age(tmp_path: Path) -> None:
    born = date(1970, 1, 1)
    rows = [
        _imdb_row("01/ok.jpg", born, 2000),
        _imdb_row("01/noface.jpg", born, 2000, face_score=-np.inf),
        _imdb_row("01/two.jpg", born, 2000, second_face_score=2.1),
        _imdb_row("01/low.jpg", born, 2000, face_score=0.5),
        _imdb_row("01/old.jpg", date(1800, 1, 1), 2000),
        _imdb_row("01/unborn.jpg", born, 1960),
        _imdb_row("01/nodate.jpg", born, 2000, dob=1.0),
    ]
    for row in rows:
        _jpeg(tmp_path / "crop" / row["full_path"])
    result = adapters.imdb_wiki(_imdb_wiki_mat(tmp_path / "imdb.mat", "imdb", rows), tmp_path / "crop")
    assert result.manifest["path"].tolist() == ["01/ok.jpg"]
    assert "no face" in _skip_reason(result, "01/noface.jpg")
    assert "second face" in _skip_reason(result, "01/two.jpg")
    assert "below min_face_score" in _skip_reason(result, "01/low.jpg")
    assert "outside 0–120" in _skip_reason(result, "01/old.jpg")
    assert "outside 0–120" in _skip_reason(result, "01/unborn.jpg")
    assert "not a valid date" in _skip_reason(result, "01/nodate.jpg")
    relaxed = adapters.imdb_wiki(tmp_path / "imdb.mat", tmp_path / "crop", min_face_score=0.0)
    assert "01/low.jpg" in set(relaxed.manifest["path"])


def test_wiki_subject_is_the_name_and_a_nameless_photo_is_skipped(tmp_path: Path) -> None:
    rows = [_imdb_row(f"{i:02d}/p{i}.jpg", date(1960 + i, 2, 2), 2005, name=f"Person {i % 4}") for i in range(12)]
    rows.append(_imdb_row("99/anon.jpg", date(1960, 2, 2), 2005, name=""))
    for row in rows:
        row.pop("celeb_id")
        _jpeg(tmp_path / "wiki_crop" / row["full_path"])
    result = adapters.imdb_wiki(_imdb_wiki_mat(tmp_path / "wiki.mat", "wiki", rows), tmp_path / "wiki_crop")
    assert result.dataset == "wiki"
    assert sorted(result.manifest["subject_id"].unique()) == [f"wiki/Person {i}" for i in range(4)]
    assert "no name" in _skip_reason(result, "99/anon.jpg")
    _assert_valid_and_subject_exclusive(result)


def test_imdb_wiki_mat_without_the_struct_is_an_error(tmp_path: Path) -> None:
    savemat(tmp_path / "other.mat", {"faces": {"dob": np.array([[1.0]])}})
    (tmp_path / "crop").mkdir()
    with pytest.raises(ManifestError, match="no struct named 'imdb' or 'wiki'"):
        adapters.imdb_wiki(tmp_path / "other.mat", tmp_path / "crop")


# AgeDB


def test_agedb_reads_names_and_keeps_each_person_in_one_split(tmp_path: Path) -> None:
    people = ["MariaCallas", "AlbertEinstein", "GraceKelly", "CharlieChaplin", "FridaKahlo", "NelsonMandela"]
    for i in range(48):
        person = people[i % len(people)]
        _jpeg(tmp_path / f"{i}_{person}_{20 + i}_{'fm'[i % 2]}.jpg")
    _jpeg(tmp_path / "99_NoAge_x_f.jpg")
    _jpeg(tmp_path / "100_NoSex_35_q.jpg")
    _jpeg(tmp_path / "101_Short.jpg")
    result = adapters.agedb(tmp_path, seed=1)
    row = result.manifest.set_index("path").loc["0_MariaCallas_20_f.jpg"]
    assert [row["age"], row["sex"], row["subject_id"]] == [20, "F", "agedb/MariaCallas"]
    assert result.manifest["subject_id"].nunique() == len(people)
    assert "age 'x'" in _skip_reason(result, "99_NoAge_x_f.jpg")
    assert "sex code 'q'" in _skip_reason(result, "100_NoSex_35_q.jpg")
    assert "fields" in _skip_reason(result, "101_Short.jpg")
    _assert_valid_and_subject_exclusive(result)
    again = adapters.agedb(tmp_path, seed=1, check_images=False)
    assert again.manifest["split"].tolist() == result.manifest["split"].tolist()


# Clinical CSV

COLUMNS = {
    "image_id": "photo",
    "subject_id": "mrn",
    "path": "file",
    "age": "age_at_photo",
    "sex": "gender",
    "time": "followup_days",
    "event": "dead",
    "stage": "stage",
    "cancer_type": "site",
}


def _clinical_fixture(root: Path) -> Path:
    n = 24
    table = pd.DataFrame(
        {
            "photo": [f"P{i:03d}" for i in range(n)],
            "mrn": [f"MRN{i // 2:03d}" for i in range(n)],
            "file": [f"img/{i:03d}.jpg" for i in range(n)],
            "age_at_photo": [40 + i for i in range(n)],
            "gender": ["1", "2"] * (n // 2),
            "followup_days": [365.25 * (1 + i // 2 % 5) for i in range(n)],  # one outcome per patient (mrn)
            "dead": [["yes", "no", "no"][i // 2 % 3] for i in range(n)],
            "stage": [1 + i % 4 for i in range(n)],
            "site": "lung",
            "ecog_score": [i % 3 for i in range(n)],
        }
    )
    for file in table["file"]:
        _jpeg(root / file)
    table.to_csv(root / "cohort.csv", index=False)
    return root / "cohort.csv"


CODES = {"sex": {1: "M", 2: "F"}, "event": {"yes": 1, "no": 0}}


def test_clinical_csv_maps_columns_codes_and_days_to_years(tmp_path: Path) -> None:
    csv = _clinical_fixture(tmp_path)
    result = adapters.clinical_csv(
        csv, tmp_path, {**COLUMNS, "ecog": "ecog_score"}, "maastro", codes=CODES, time_unit="days"
    )
    first = result.manifest.set_index("image_id").loc["P000"]
    assert [first["subject_id"], first["path"], first["age"], first["sex"]] == ["MRN000", "img/000.jpg", 40, "M"]
    assert [first["time"], first["event"], first["stage"], first["ecog"], first["cancer_type"]] == [
        1.0,
        1,
        1,
        0,
        "lung",
    ]
    assert result.manifest["time"].tolist()[:6] == pytest.approx([1, 1, 2, 2, 3, 3])
    assert (result.manifest["dataset"] == "maastro").all() and result.skipped.empty
    _assert_valid_and_subject_exclusive(result)
    again = adapters.clinical_csv(csv, tmp_path, COLUMNS, "maastro", codes=CODES, time_unit="days", check_images=False)
    assert again.manifest["split"].tolist() == result.manifest["split"].tolist()


def test_clinical_csv_missing_mapped_column_names_the_csv_and_the_column(tmp_path: Path) -> None:
    csv = _clinical_fixture(tmp_path)
    with pytest.raises(ManifestError, match=r"cohort\.csv: column 'vital_status' \(mapped to 'event'\) not found"):
        adapters.clinical_csv(csv, tmp_path, {**COLUMNS, "event": "vital_status"}, "maastro", codes=CODES)
    with pytest.raises(ManifestError, match="must name the CSV column for 'subject_id'"):
        adapters.clinical_csv(csv, tmp_path, {"path": "file"}, "maastro")


@pytest.mark.parametrize(
    ("column", "row", "value", "manifest_column", "reason"),
    [
        ("followup_days", 2, -30, "time", "negative survival time"),
        ("dead", 4, "maybe", "event", "event not 0 or 1"),
        ("age_at_photo", 5, 150, "age", "age not a number in 0–120"),
        ("stage", 6, 7, "stage", "unknown stage code"),
        ("gender", 7, "9", "sex", "unknown sex code"),
        ("file", 8, "img/absent.jpg", "path", "missing image file"),
    ],
)
def test_clinical_csv_impossible_value_raises_naming_csv_row_and_column(
    tmp_path: Path, column: str, row: int, value, manifest_column: str, reason: str
) -> None:
    csv = _clinical_fixture(tmp_path)
    table = pd.read_csv(csv, dtype=str)
    table.loc[row, column] = value
    table.to_csv(csv, index=False)
    with pytest.raises(ManifestError) as raised:
        adapters.clinical_csv(csv, tmp_path, COLUMNS, "maastro", codes=CODES, time_unit="days")
    message = str(raised.value)
    assert f"cohort.csv, row {row + 1}, column {manifest_column!r}: {reason}" in message


def test_clinical_csv_exclude_sets_bad_rows_aside_with_row_and_column(tmp_path: Path) -> None:
    csv = _clinical_fixture(tmp_path)
    table = pd.read_csv(csv, dtype=str)
    table.loc[[2, 3], "followup_days"] = "-30"  # both photos of patient MRN001
    table.to_csv(csv, index=False)
    result = adapters.clinical_csv(csv, tmp_path, COLUMNS, "maastro", codes=CODES, on_invalid="exclude")
    assert len(result.manifest) == 22 and not {"P002", "P003"} & set(result.manifest["image_id"])
    assert _skip_reason(result, "img/002.jpg") == "row 3, column 'time': negative survival time"
    assert _skip_reason(result, "img/003.jpg") == "row 4, column 'time': negative survival time"


def test_clinical_csv_keeps_a_split_column_and_flags_a_patient_in_two_splits(tmp_path: Path) -> None:
    csv = _clinical_fixture(tmp_path)
    table = pd.read_csv(csv, dtype=str)
    table["cohort_split"] = ["Training", "Training", "Validation", "Validation", "TEST", "TEST"] * 4
    table.to_csv(csv, index=False)
    result = adapters.clinical_csv(csv, tmp_path, {**COLUMNS, "split": "cohort_split"}, "maastro", codes=CODES)
    assert result.manifest["split"].tolist()[:6] == ["train", "train", "val", "val", "test", "test"]
    table.loc[1, "cohort_split"] = "TEST"
    table.to_csv(csv, index=False)
    with pytest.raises(ManifestError, match=r"row 1, column 'subject_id': subject in more than one split"):
        adapters.clinical_csv(csv, tmp_path, {**COLUMNS, "split": "cohort_split"}, "maastro", codes=CODES)


# The result


def test_manifest_for_another_folder_writes_a_manifest_that_loads(tmp_path: Path) -> None:
    data = tmp_path / "UTKFace"
    _jpeg(data / "30_0_0_20170116174525125.jpg")
    (data / "31_1_2_20170116174525125.jpg").write_bytes(b"broken")
    result = adapters.utkface(data)
    out = tmp_path / "artifacts" / "manifests"
    out.mkdir(parents=True)
    result.manifest_for(out).to_csv(out / "utkface.csv", index=False)
    loaded = manifest.load(out / "utkface.csv")
    assert loaded.valid["path"].tolist() == ["../../UTKFace/30_0_0_20170116174525125.jpg"]
    summary = result.summary()
    assert "utkface: 1 photos of 1 subjects" in summary
    assert "skipped 1 files" in summary and "unreadable image" in summary
