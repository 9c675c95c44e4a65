"""Real-data adapters: public age datasets and clinical CSVs turned into the project's manifest.

Each adapter reads one dataset in the layout it is published in and returns an ``AdapterResult``: the
manifest (validated by ``manifest.validate``, images checked), the files that could not be used with the
reason for each (never dropped silently), and a ``summary()``. Paths in the manifest are relative to the
dataset folder the adapter was given (``AdapterResult.root``); ``AdapterResult.manifest_for(folder)`` rewrites
them for a manifest written somewhere else. Splits are subject-exclusive: a dataset's official split is kept,
otherwise ``manifest.split_subjects`` draws one, seeded and stratified by age decade (and event for clinical
cohorts). Image and subject ids carry the dataset name (``utkface/…``) so manifests can be concatenated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from fahr.data import manifest
from fahr.data.manifest import ManifestError

OnInvalid = Literal["raise", "exclude"]
DEFAULT_FRACTIONS: Mapping[str, float] = MappingProxyType({"train": 0.8, "val": 0.1, "test": 0.1})
SKIPPED_COLUMNS = ("file", "reason")
DAYS_PER_YEAR = 365.25
YEARS_PER_UNIT = MappingProxyType({"years": 1.0, "months": 1 / 12, "days": 1 / DAYS_PER_YEAR})
MATLAB_DATENUM_OFFSET = 366  # MATLAB datenum 1 is 0000-01-01; Python's date ordinal 1 is 0001-01-01

UTKFACE_SEXES = MappingProxyType({0: "M", 1: "F"})
UTKFACE_RACES = MappingProxyType({0: "white", 1: "black", 2: "asian", 3: "indian", 4: "other"})
APPA_SEXES = MappingProxyType({"male": "M", "female": "F"})
APPA_RACES = MappingProxyType({"caucasian": "white", "afroamerican": "black", "asian": "asian"})
APPA_SPLITS = MappingProxyType({"train": "train", "valid": "val", "test": "test"})
AGEDB_SEXES = MappingProxyType({"f": "F", "m": "M"})
IMDB_WIKI_SEXES = MappingProxyType({1: "M", 0: "F"})
# How clinical codes are read when the caller gives no mapping for the column (matched case-insensitively).
CLINICAL_DEFAULT_CODES = MappingProxyType(
    {
        "sex": {"f": "F", "female": "F", "m": "M", "male": "M"},
        "race": {race: race for race in manifest.RACES},
        "split": {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val"}
        | {"test": "test", "testing": "test"},
    }
)
INTEGER_COLUMNS = ("event", "stage", "ecog")


class _Skip(ValueError):
    """A photo that cannot enter the manifest; the message is the reason."""


@dataclass
class AdapterResult:
    """What an adapter made: the manifest (paths relative to ``root``) and the files it could not use, with why."""

    dataset: str
    root: Path
    manifest: pd.DataFrame
    skipped: pd.DataFrame

    def summary(self, limit: int = 10) -> str:
        """A readable report: photos, subjects, split sizes, age range (years), then the skipped files."""
        df = self.manifest
        lines = [f"{self.dataset}: {len(df)} photos of {df['subject_id'].nunique()} subjects (paths under {self.root})"]
        sizes = df["split"].value_counts()
        lines.append("  splits: " + ", ".join(f"{s} {int(sizes.get(s, 0))}" for s in manifest.SPLITS))
        age = pd.to_numeric(df["age"], errors="coerce").dropna() if "age" in df else pd.Series(dtype=float)
        if len(age):
            lines.append(f"  age {age.min():g}–{age.max():g} years (median {age.median():g})")
        lines.append(f"  skipped {len(self.skipped)} files")
        lines += [f"    {row.file}: {row.reason}" for row in self.skipped.head(limit).itertuples()]
        if len(self.skipped) > limit:
            lines.append(f"    … and {len(self.skipped) - limit} more")
        return "\n".join(lines)

    def manifest_for(self, folder: Path) -> pd.DataFrame:
        """The manifest with its relative paths rewritten relative to ``folder`` (where it will be written)."""
        folder, root = Path(folder).resolve(), self.root.resolve()
        paths = [p if Path(p).is_absolute() else os.path.relpath(root / p, folder) for p in self.manifest["path"]]
        return self.manifest.assign(path=paths)


def utkface(
    folder: Path,
    seed: int = 0,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    on_invalid: OnInvalid = "exclude",
    check_images: bool = True,
) -> AdapterResult:
    """UTKFace from its file names ``[age]_[gender]_[race]_[date&time].jpg`` (or ``.jpg.chip.jpg``); age in years.

    Gender 0 is male and 1 female; race 0–4 is white, black, asian, indian, other. UTKFace has no identity
    labels, so each photo is its own subject (a person photographed twice may sit in two splits). Every
    ``.jpg`` under ``folder`` (subfolders included) is read; paths are relative to ``folder``.
    """
    folder = _existing_folder(folder)
    records, skipped = _parse_files(folder, _jpegs(folder), _utkface_fields)
    table = _table(records)
    table["split"] = _seeded_splits(table, fractions, seed)
    return _finish("utkface", folder, folder, table, skipped, on_invalid, check_images)


def photo_folder(
    folder: Path,
    dataset: str,
    seed: int = 0,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    on_invalid: OnInvalid = "exclude",
    check_images: bool = True,
) -> AdapterResult:
    """An unlabelled corpus (WebFace42M, or any folder of face photos): every ``.jpg``/``.png`` under ``folder``.

    The subject is the photo's folder (WebFace42M keeps one identity per folder), or the photo itself when it
    lies directly in ``folder``; splits are drawn per subject by seed. No labels; paths relative to ``folder``.
    """
    folder = _existing_folder(folder)
    # every entry named as a photo, special files too: validation gives a FIFO or a folder its row and reason
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))

    def fields(relative: str) -> dict:
        parent = Path(relative).parent
        subject = relative if parent == Path(".") else parent.as_posix()
        return {"image_id": f"{dataset}/{relative}", "path": relative, "subject_id": f"{dataset}/{subject}"}

    records, skipped = _parse_files(folder, photos, fields)
    table = _table(records)
    table["split"] = _seeded_splits(table, fractions, seed)
    return _finish(dataset, folder, folder, table, skipped, on_invalid, check_images)


def _utkface_fields(relative: str) -> dict:
    stem = _strip_suffix(Path(relative).name, (".jpg.chip.jpg", ".jpg"))
    fields = stem.split("_")
    if len(fields) != 4 or not all(fields):
        raise _Skip(f"name is not age_gender_race_datetime.jpg ({len(fields)} fields)")
    age = _whole_number(fields[0], "age")
    sex = _code(fields[1], "gender", UTKFACE_SEXES)
    race = _code(fields[2], "race", UTKFACE_RACES)
    image_id = f"utkface/{relative}"
    return {"image_id": image_id, "path": relative, "subject_id": image_id, "age": _age(age), "sex": sex, "race": race}


def appa_real(
    folder: Path, on_invalid: OnInvalid = "exclude", check_images: bool = True, prefer_aligned: bool = True
) -> AdapterResult:
    """APPA-REAL from ``gt_avg_{train,valid,test}.csv`` (+ ``allcategories_*.csv``); ``age`` is real age in years.

    The official split is kept (valid → val). ``rated_age`` (the mean apparent-age rating, years; named apart from
    FAHR-Synth's planted ``apparent_age``) is an extra column, and
    ``aligned`` says whether the dataset's aligned crop ``<file_name>_face.jpg`` was used (preferred when it
    exists and ``prefer_aligned``). APPA-REAL has no identity labels, so each photo is its own subject. A
    split CSV that is absent is listed in ``skipped``. Paths are relative to ``folder``.
    """
    folder = _existing_folder(folder)
    records: list[dict] = []
    skipped: list[dict] = []
    for official, split in APPA_SPLITS.items():
        ratings_csv = folder / f"gt_avg_{official}.csv"
        if not ratings_csv.is_file():
            skipped.append({"file": ratings_csv.name, "reason": "split CSV not found: its photos are not included"})
            continue
        ratings = _read_csv(ratings_csv, ("file_name", "apparent_age_avg", "real_age"))
        categories = _appa_categories(folder / f"allcategories_{official}.csv")
        for row in ratings.itertuples(index=False):
            try:
                records.append(_appa_record(folder, official, split, row, categories, prefer_aligned))
            except _Skip as why:
                skipped.append({"file": f"{official}/{row.file_name}", "reason": str(why)})
    return _finish("appa-real", folder, folder, _table(records), skipped, on_invalid, check_images)


def _appa_categories(csv_file: Path) -> pd.DataFrame:
    if not csv_file.is_file():
        return pd.DataFrame(columns=["sex", "race"])
    categories = _read_csv(csv_file, ("file", "gender", "race")).set_index("file")
    return pd.DataFrame(
        {
            "sex": categories["gender"].map(lambda g: _recoded(g, APPA_SEXES)),
            "race": categories["race"].map(lambda r: _recoded(r, APPA_RACES)),
        }
    )


def _appa_record(folder: Path, official: str, split: str, row, categories: pd.DataFrame, prefer_aligned: bool) -> dict:
    name = str(row.file_name)
    real_age = pd.to_numeric(row.real_age, errors="coerce")
    if pd.isna(real_age):
        raise _Skip(f"real_age {row.real_age!r} is not a number")
    aligned = f"{official}/{name}_face.jpg"
    use_aligned = prefer_aligned and (folder / aligned).is_file()
    image_id = f"appa-real/{official}/{name}"
    record = {
        "image_id": image_id,
        "path": aligned if use_aligned else f"{official}/{name}",
        "subject_id": image_id,
        "split": split,
        "age": _age(real_age),
        "rated_age": float(pd.to_numeric(row.apparent_age_avg, errors="coerce")),
        "aligned": use_aligned,
    }
    if name in categories.index:
        record |= categories.loc[name].to_dict()
    return record


def imdb_wiki(
    mat_file: Path,
    images_root: Path,
    min_face_score: float = 1.0,
    seed: int = 0,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    on_invalid: OnInvalid = "exclude",
    check_images: bool = True,
) -> AdapterResult:
    """IMDB-WIKI from its ``.mat`` metadata (struct ``imdb`` or ``wiki``); age in whole years at mid-year.

    The photo is taken as shot on 1 July of ``photo_taken``; age is the completed years from the date of
    birth (``dob``, a MATLAB datenum) to that day. Photos with no face, a second face, a face score below
    ``min_face_score`` or an age outside 0–120 years are skipped with the reason. Subject is ``celeb_id``
    (imdb) or ``name`` (wiki); paths are ``full_path``, relative to ``images_root`` (e.g. ``imdb_crop``).
    """
    from scipy.io import loadmat

    mat_file = Path(mat_file)
    if not mat_file.is_file():
        raise ManifestError(f"{mat_file}: IMDB-WIKI metadata file not found")
    images_root = _existing_folder(images_root)
    mat = loadmat(mat_file)
    dataset = next((key for key in ("imdb", "wiki") if key in mat), None)
    if dataset is None:
        raise ManifestError(f"{mat_file}: no struct named 'imdb' or 'wiki' (found {sorted(mat)})")
    meta = _mat_columns(mat_file, mat[dataset][0, 0], dataset)
    records: list[dict] = []
    skipped: list[dict] = []
    for row in meta.itertuples(index=False):
        try:
            records.append(_imdb_wiki_record(dataset, row, min_face_score))
        except _Skip as why:
            skipped.append({"file": row.full_path, "reason": str(why)})
    table = _table(records)
    table["split"] = _seeded_splits(table, fractions, seed)
    return _finish(dataset, images_root, mat_file, table, skipped, on_invalid, check_images)


def _mat_columns(mat_file: Path, struct: np.ndarray, dataset: str) -> pd.DataFrame:
    needed = ["dob", "photo_taken", "full_path", "gender", "face_score", "second_face_score", "name"]
    needed += ["celeb_id"] if dataset == "imdb" else []
    missing = [f for f in needed if f not in (struct.dtype.names or ())]
    if missing:
        raise ManifestError(f"{mat_file}: struct {dataset!r} lacks the field(s) {missing}")
    text = ("full_path", "name")
    return pd.DataFrame(
        {f: [_mat_text(x) for x in struct[f].ravel()] if f in text else struct[f].ravel().astype(float) for f in needed}
    )


def _mat_text(cell: Any) -> str:
    values = np.asarray(cell).ravel()
    return str(values[0]).strip() if values.size else ""


def _imdb_wiki_record(dataset: str, row, min_face_score: float) -> dict:
    if not row.full_path:
        raise _Skip("no full_path")
    if not np.isfinite(row.face_score):
        raise _Skip("no face found (face_score -inf)")
    if not np.isnan(row.second_face_score):
        raise _Skip(f"a second face in the photo (second_face_score {row.second_face_score:g})")
    if row.face_score < min_face_score:
        raise _Skip(f"face_score {row.face_score:g} below min_face_score {min_face_score:g}")
    age = _age(_completed_years(row.dob, row.photo_taken))
    if dataset == "imdb":
        if np.isnan(row.celeb_id):
            raise _Skip("no celeb_id: subject unknown")
        subject = str(int(row.celeb_id))
    elif not row.name:
        raise _Skip("no name: subject unknown")
    else:
        subject = row.name
    sex = IMDB_WIKI_SEXES.get(row.gender)  # NaN (unknown) has no code
    path = row.full_path
    return {"image_id": f"{dataset}/{path}", "path": path, "subject_id": f"{dataset}/{subject}", "age": age, "sex": sex}


def _completed_years(dob_datenum: float, photo_year: float) -> int:
    """Whole years from birth (MATLAB datenum) to 1 July of the year the photo was taken."""
    if not (np.isfinite(dob_datenum) and np.isfinite(photo_year)):
        raise _Skip("date of birth or photo year missing")
    ordinal = int(np.floor(dob_datenum)) - MATLAB_DATENUM_OFFSET
    if ordinal < 1 or ordinal > date.max.toordinal():
        raise _Skip(f"date of birth (datenum {dob_datenum:g}) is not a valid date")
    born = date.fromordinal(ordinal)
    return int(photo_year) - born.year - (1 if (born.month, born.day) > (7, 1) else 0)


def agedb(
    folder: Path,
    seed: int = 0,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    on_invalid: OnInvalid = "exclude",
    check_images: bool = True,
) -> AdapterResult:
    """AgeDB from its file names ``id_name_age_sex.jpg`` (e.g. ``0_MariaCallas_35_f.jpg``); age in years.

    Subject is the name, so all photos of a person share a split. Every ``.jpg`` under ``folder`` is read;
    paths are relative to ``folder``.
    """
    folder = _existing_folder(folder)
    records, skipped = _parse_files(folder, _jpegs(folder), _agedb_fields)
    table = _table(records)
    table["split"] = _seeded_splits(table, fractions, seed)
    return _finish("agedb", folder, folder, table, skipped, on_invalid, check_images)


def _agedb_fields(relative: str) -> dict:
    fields = _strip_suffix(Path(relative).name, (".jpg",)).split("_")
    if len(fields) < 4 or not all(fields):
        raise _Skip(f"name is not id_name_age_sex.jpg ({len(fields)} fields)")
    name = "_".join(fields[1:-2])
    age = _whole_number(fields[-2], "age")
    sex = _code(fields[-1].lower(), "sex", AGEDB_SEXES)
    record = {"image_id": f"agedb/{relative}", "path": relative, "subject_id": f"agedb/{name}"}
    return record | {"age": _age(age), "sex": sex}


def clinical_csv(
    csv_file: Path,
    images_root: Path,
    columns: Mapping[str, str],
    dataset: str,
    codes: Mapping[str, Mapping[Any, Any]] | None = None,
    time_unit: Literal["years", "months", "days"] = "years",
    seed: int = 0,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    on_invalid: OnInvalid = "raise",
    check_images: bool = True,
) -> AdapterResult:
    """A hospital CSV, one row per photo, read through ``columns`` (manifest column → CSV column); time in years.

    ``columns`` must name ``path`` and ``subject_id``; ``image_id`` defaults to the path; ``split`` is kept
    when mapped, otherwise drawn by seed, stratified by age decade and event. Any other key becomes a column
    of that name. ``codes`` recodes values per manifest column (e.g. ``{"sex": {1: "M", 2: "F"}}``,
    ``{"event": {"dead": 1, "alive": 0}}``); without it sex, race and split words are read case-insensitively.
    ``time`` is converted from ``time_unit`` to years. Values a code does not cover are kept as written, so
    validation names them: with ``on_invalid="raise"`` the first impossible value is a ManifestError naming
    the CSV, the data row (1-based) and the column; with ``"exclude"`` such rows go to ``skipped`` with the
    same detail. Paths are as in the CSV: relative to ``images_root``, or absolute. Ids are kept unprefixed
    so results can be joined back to the hospital's records.
    """
    csv_file = Path(csv_file)
    images_root = _existing_folder(images_root)
    for needed in ("path", "subject_id"):
        if needed not in columns:
            raise ManifestError(f"{csv_file}: the column mapping must name the CSV column for {needed!r}")
    if "dataset" in columns:
        raise ManifestError(f"{csv_file}: 'dataset' is given as the dataset argument, not mapped from a column")
    raw = _read_csv(csv_file, (), as_text=True)
    for key, column in columns.items():
        if column not in raw.columns:
            raise ManifestError(
                f"{csv_file}: column {column!r} (mapped to {key!r}) not found; the CSV has {list(raw.columns)}"
            )
    if time_unit not in YEARS_PER_UNIT:
        raise ValueError(f"time_unit must be one of {list(YEARS_PER_UNIT)}, got {time_unit!r}")
    years = YEARS_PER_UNIT[time_unit]
    table = pd.DataFrame({key: _clinical_column(key, raw[col], codes or {}, years) for key, col in columns.items()})
    table["path"] = table["path"].fillna("")
    if "image_id" not in table:
        table["image_id"] = table["path"]
    table["dataset"] = dataset
    if "split" not in table:
        table["split"] = _seeded_splits(table, fractions, seed)
    return _finish(dataset, images_root, csv_file, table, [], on_invalid, check_images, csv_rows=True)


PAIRED_COLUMNS = MappingProxyType({"path": "path", "subject_id": "person", "pair_id": "person",
                                   "condition": "condition", "strength": "strength"})  # fmt: skip


def paired_csv(csv_file: Path, images_root: Path, check_images: bool = True) -> AdapterResult:
    """Photographed pairs (``pairs.csv``: person, condition, strength, path; optional age, sex, race): the same
    people before and after makeup or surgery, all in the test split. A row with an impossible value is a
    ManifestError naming the CSV, the row and the column, as for a clinical CSV."""
    header = _read_csv(Path(csv_file), (), as_text=True).columns
    missing = [c for c in ("person", "condition", "strength", "path") if c not in header]
    if missing:
        raise ManifestError(f"{csv_file}: missing column(s) {missing}; a paired set has person, condition, strength "
                            f"and path (and optionally age, sex, race); the CSV has {list(header)}")  # fmt: skip
    columns = dict(PAIRED_COLUMNS) | {c: c for c in ("age", "sex", "race") if c in header}
    result = clinical_csv(csv_file, images_root, columns, dataset="pairs", check_images=check_images)
    result.manifest["split"] = "test"
    return result


def _clinical_column(
    key: str, raw: pd.Series, codes: Mapping[str, Mapping[Any, Any]], years_per_unit: float
) -> pd.Series:
    text = raw.str.strip()
    if key in codes:
        table = {str(k).strip(): v for k, v in codes[key].items()}
        text = text.map(lambda v: table.get(v, v) if isinstance(v, str) else v)
    elif key in CLINICAL_DEFAULT_CODES:
        table = CLINICAL_DEFAULT_CODES[key]
        text = text.map(lambda v: table.get(v.lower(), v) if isinstance(v, str) else v)
    if key in ("image_id", "path", "subject_id", "split", "sex", "race", "cancer_type"):
        return text
    if key in INTEGER_COLUMNS:
        return _numbers(text, integer=True)
    if key in ("age", "time"):
        return _numbers(text, years_per_unit if key == "time" else 1.0)
    number = pd.to_numeric(text, errors="coerce")
    return number if number.notna().sum() == text.notna().sum() else text


def _numbers(values: pd.Series, scale: float = 1.0, integer: bool = False) -> pd.Series:
    """Numbers (times ``scale``) where the value is one; anything else kept as written so validation names it."""
    number = pd.to_numeric(values, errors="coerce") * scale
    if integer:
        number = number.where(number.isna() | (number % 1 == 0))
    if number.notna().sum() == values.notna().sum():
        return number.astype("Int64") if integer else number
    return number.astype(object).where(number.notna(), values)


def _finish(
    dataset: str,
    root: Path,
    source: Path,
    table: pd.DataFrame,
    skipped: list[dict],
    on_invalid: OnInvalid,
    check_images: bool,
    csv_rows: bool = False,
) -> AdapterResult:
    """Validate the table (images against ``root``) and set aside, with reasons, the rows validation excludes."""
    table = _ordered(table if "dataset" in table else table.assign(dataset=dataset))
    checked = manifest.validate(table, source, root=root if check_images else None, on_invalid=on_invalid,
                                contained=True)  # fmt: skip
    problems = checked.problems
    for row in checked.excluded.index + 1:
        found = problems[problems["row"] == row]
        where = f"row {row}, " if csv_rows else ""
        reasons = "; ".join(f"{where}column {p.column!r}: {p.reason}" for p in found.itertuples())
        skipped.append({"file": str(checked.excluded.at[row - 1, "path"]), "reason": reasons})
    return AdapterResult(
        dataset=dataset,
        root=root,
        manifest=checked.valid.reset_index(drop=True),
        skipped=pd.DataFrame(skipped, columns=list(SKIPPED_COLUMNS)),
    )


def _seeded_splits(table: pd.DataFrame, fractions: Mapping[str, float], seed: int) -> pd.Series:
    """Each row's split, drawn per subject by ``manifest.split_subjects`` and stratified by age decade (and event)."""
    if table.empty:
        return pd.Series(index=table.index, dtype=object)
    by_subject = table.groupby("subject_id")
    strata = pd.DataFrame(index=by_subject.size().index)
    if "age" in table:
        youngest = pd.to_numeric(table["age"], errors="coerce").groupby(table["subject_id"]).min()
        strata["age_decade"] = youngest.floordiv(10).map(lambda d: "unknown" if pd.isna(d) else f"{int(d) * 10}s")
    if "event" in table:
        event = pd.to_numeric(table["event"], errors="coerce").groupby(table["subject_id"]).max()
        strata["event"] = event.map(lambda e: "unknown" if pd.isna(e) else str(e))
    stratify = list(strata.columns) or None
    assigned = manifest.split_subjects(strata, fractions, seed, stratify=stratify)
    return table["subject_id"].map(assigned)


def _parse_files(folder: Path, files: Iterable[Path], parse: Callable[[str], dict]) -> tuple[list[dict], list[dict]]:
    records: list[dict] = []
    skipped: list[dict] = []
    for file in files:
        relative = file.relative_to(folder).as_posix()
        try:
            records.append(parse(relative))
        except _Skip as why:
            skipped.append({"file": relative, "reason": str(why)})
    return records, skipped


def _table(records: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame.from_records(records)
    for column in ("image_id", "path", "subject_id", "split"):
        if column not in table:
            table[column] = pd.Series(dtype=object)
    return _ordered(table)


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in (*manifest.REQUIRED, "age", "sex", "race", *manifest.CLINICAL) if c in table]
    return table[first + [c for c in table.columns if c not in first]]


def _existing_folder(folder: Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: dataset folder not found")
    return folder


def _jpegs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.lower().endswith(".jpg"))  # special files too: flagged


def _read_csv(csv_file: Path, needed: Iterable[str], as_text: bool = False) -> pd.DataFrame:
    if not csv_file.is_file():
        raise ManifestError(f"{csv_file}: CSV file not found")
    try:
        table = pd.read_csv(csv_file, dtype=str if as_text else None)
    except Exception as err:
        raise ManifestError(f"{csv_file}: cannot be read as CSV ({type(err).__name__}: {err})") from err
    for column in needed:
        if column not in table.columns:
            raise ManifestError(f"{csv_file}: column {column!r} not found (the CSV has {list(table.columns)})")
    return table


def _strip_suffix(name: str, suffixes: Iterable[str]) -> str:
    for suffix in suffixes:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _whole_number(text: str, what: str) -> int:
    if not re.fullmatch(r"\d+", text, flags=re.ASCII):
        raise _Skip(f"{what} {text!r} is not a whole number")
    return int(text)


def _code(text: str, what: str, codes: Mapping) -> str:
    key = int(text) if text.isascii() and text.isdigit() else text
    if key not in codes:
        raise _Skip(f"{what} code {text!r} not one of {list(codes)}")
    return codes[key]


def _age(years: float) -> float:
    low, high = manifest.AGE_RANGE
    if not low <= years <= high:
        raise _Skip(f"age {years:g} years outside {low:g}–{high:g}")
    return float(years)


def _recoded(value: Any, codes: Mapping[str, str]) -> Any:
    """The code for ``value`` (case-insensitive); an unknown value is kept as written so validation names it."""
    return codes.get(value.strip().lower(), value) if isinstance(value, str) else None
