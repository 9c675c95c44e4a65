"""FAHR-Synth written in the real datasets' own on-disk formats (``fahr synth --export DIR``).

The real-data path (``fahr.data.real.adapters``, face detection and alignment, ``fahr prepare``) can then be run
offline on faces whose truth is known. Every photo is re-rendered from its truth row at ``FACE_PIXELS`` and pasted
at a seeded random place into a larger frame of its own background colour, so that detection and alignment do
real work. Each dataset folder is laid out as the published dataset is (``prepare.EXPECTED``) and carries only the
labels that dataset carries: none of the planted truth is written. ``export-key.csv`` maps every file back to its
FAHR-Synth image id, and its provenance record names the folder of the cohorts exported, to compare results on the
exported tree with results on the cohorts themselves (``fahr.analysis.crosspath``).
"""

from __future__ import annotations

import io
import multiprocessing as mp
import shlex
import textwrap
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image
from scipy.io import savemat
from tqdm import tqdm

from fahr.core import provenance
from fahr.core.config import Config
from fahr.data.real import adapters, prepare
from fahr.data.synth import cohorts as synth
from fahr.data.synth.render import render

# A face photo of 160 px in a 256 px frame: dlib's HOG detector (fahr.data.align) finds the face in about 90 % of
# FAHR-Synth's photos, at 128 px and 224 px alike (the misses are strong roll and pose, not size).
FACE_PIXELS = 160
FRAME_PIXELS = 256  # the frame's side: 1.6 times the face photo's, a multiple of 8
FILL_GRAIN = 0.012  # sd of the grain on the frame around the face photo (0–1 scale)
JPEG_QUALITY = 95
KEY = "export-key.csv"
KEY_COLUMNS = ("dataset", "path", "image_id", "cohort")
README = "README.txt"
AGE_FOLDERS = {"synth-utk": "utkface", "synth-appa": "appa-real", "synth-imdb": "imdb-wiki", "synth-agedb": "agedb"}
FOLDERS = {
    "webface": "pretrain: <subject>/<photo>.jpg, unlabelled (WebFace42M-like: any folder layout)",
    "utkface": "age (synth-utk): [age]_[gender]_[race]_[date&time].jpg",
    "appa-real": "age (synth-appa): gt_avg_{train,valid,test}.csv, allcategories_*.csv, train/ valid/ test/; "
    "apparent_age_avg and _std are simulated raters around the real age, not read from the face",
    "imdb-wiki": "age (synth-imdb): imdb.mat (dob as MATLAB datenum, photo_taken, full_path, gender, celeb_id, "
    "face_score, ...) beside the photo folders",
    "agedb": "age (synth-agedb): id_name_age_sex.jpg",
    "clinical-a": "clinical-a: photos.csv (path, subject_id, age, sex, race, time in years, event, cancer_type, "
    "stage, ecog, split) and photos/",
    "clinical-b": "clinical-b: laid out as clinical-a",
    "pairs": "pairs: pairs.csv (person, condition, strength, path, age, sex, race; the reference photos are "
    "condition 'reference', strength 0) and photos/: an optional before/after set, no real dataset's format",
}


@dataclass
class Dataset:
    """One folder of the export: the truth rows it holds, their files and its metadata files."""

    folder: str
    rows: pd.DataFrame  # the cohort's truth rows (their index is the truth table's)
    paths: list[str]  # each row's photo, relative to the folder
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # CSV files, by name relative to the folder
    mats: dict[str, dict] = field(default_factory=dict)  # MATLAB files: name -> {struct name: {field: array}}

    def key(self, cohort: str) -> pd.DataFrame:
        return pd.DataFrame(
            {"dataset": self.folder, "path": self.paths, "image_id": self.rows["image_id"].to_numpy(), "cohort": cohort}
        )


# ------------------------------------------------------------------------------------------ photos


def frame(face: np.ndarray, x: int, y: int, seed: int, side: int = FRAME_PIXELS) -> np.ndarray:
    """``face`` (RGB uint8) pasted with its top-left corner at (x, y) into a ``side``-pixel square of its own
    background colour (the median of its top row and side columns) with a little seeded grain."""
    ring = np.concatenate([face[0], face[:, 0], face[:, -1]]).astype(np.float32) / 255.0
    grey = bool((face == face[..., :1]).all())  # a grey-scale photo gets grey grain
    grain = np.random.default_rng(seed).standard_normal((side, side, 1 if grey else 3), dtype=np.float32)
    out = np.clip(np.median(ring, axis=0) + FILL_GRAIN * grain, 0.0, 1.0) * 255.0 + 0.5
    out = np.broadcast_to(out, (side, side, 3)).astype(np.uint8)
    out[y : y + face.shape[0], x : x + face.shape[1]] = face
    return out


def _photo(job: tuple[dict, int, int, int]) -> bytes:
    row, x, y, seed = job
    face = render(*synth.face_of(row), size=FACE_PIXELS).image
    buf = io.BytesIO()
    Image.fromarray(frame(face, x, y, seed)).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _mapped(func: Callable, jobs: list, workers: int) -> Iterator:
    """``func`` over ``jobs`` in order, in ``workers`` forked processes (as ``cohorts.render_table``)."""
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(func, jobs, chunksize=16)
    else:
        yield from map(func, jobs)


def _placements(truth: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Where each face photo goes in its frame (x, y: top-left corner, pixels) and the seed of its grain."""
    n, free = len(truth), FRAME_PIXELS - FACE_PIXELS
    return pd.DataFrame(
        {"x": rng.integers(0, free + 1, n), "y": rng.integers(0, free + 1, n), "seed": rng.integers(0, 2**31 - 1, n)},
        index=truth.index,
    )


def _write_photos(tmp: Path, truth: pd.DataFrame, placed: pd.DataFrame, datasets: list[Dataset], workers: int,
                  desc: str, progress: bool) -> None:  # fmt: skip
    files = pd.Series(None, index=truth.index, dtype=object)
    for ds in datasets:
        files.loc[ds.rows.index] = [f"{ds.folder}/{p}" for p in ds.paths]
    if files.isna().any():
        raise AssertionError(f"{desc}: {int(files.isna().sum())} photos were given no file")
    for folder in {Path(f).parent for f in files}:
        (tmp / folder).mkdir(parents=True, exist_ok=True)
    jobs = [(synth.plain_row(row), int(p.x), int(p.y), int(p.seed))
            for row, p in zip(truth.to_dict("records"), placed.itertuples(), strict=True)]  # fmt: skip
    photos = tqdm(_mapped(_photo, jobs, workers), total=len(jobs), desc=desc, mininterval=2.0, disable=not progress)
    for rel, encoded in zip(files, photos, strict=True):
        (tmp / rel).write_bytes(encoded)


# ------------------------------------------------------------------------------------------ layouts


def _sexes(rows: pd.DataFrame) -> np.ndarray:
    """FAHR-Synth's sex (1 male) as the manifest's letters."""
    return np.where(rows["sex"] == 1, "M", "F")


def _years(rows: pd.DataFrame) -> np.ndarray:
    """The age label in whole years (FAHR-Synth's labels are whole already)."""
    return rows["label_age"].round().astype(int).to_numpy()


def _names(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """A running number (from 1) and a name for each person, in order of first appearance."""
    number = pd.Series(np.arange(1, rows["subject_id"].nunique() + 1), index=pd.unique(rows["subject_id"]))
    ids = rows["subject_id"].map(number)
    return ids, ids.map(lambda k: f"Person{k:05d}")


def webface(truth: pd.DataFrame, placed: pd.DataFrame, rng: np.random.Generator) -> list[Dataset]:
    """The pretraining corpus as a loose folder: one folder per person."""
    paths = [f"{s}/{i}.jpg" for s, i in zip(truth["subject_id"], truth["image_id"], strict=True)]
    return [Dataset("webface", truth, paths)]


def age(truth: pd.DataFrame, placed: pd.DataFrame, rng: np.random.Generator) -> list[Dataset]:
    """The four public-style age datasets, each in its own format."""
    unknown = set(truth["dataset"]) - set(AGE_FOLDERS)
    if unknown:
        raise ValueError(f"age cohort: no export format for the datasets {sorted(unknown)}")
    layouts = {"synth-utk": utkface, "synth-appa": appa_real, "synth-imdb": imdb_wiki, "synth-agedb": agedb}
    return [layouts[name](truth[truth["dataset"] == name], placed, rng) for name in AGE_FOLDERS]


def utkface(rows: pd.DataFrame, placed: pd.DataFrame, rng: np.random.Generator) -> Dataset:
    """``[age]_[gender]_[race]_[date&time].jpg``: gender 0 male, 1 female; a 17-digit time stamp, unique."""
    genders = {sex: code for code, sex in adapters.UTKFACE_SEXES.items()}
    races = {race: code for code, race in adapters.UTKFACE_RACES.items()}
    seconds = rng.choice(2 * 365 * 86_400, len(rows), replace=False)  # distinct seconds of 2016-2017
    millis = rng.integers(0, 1000, len(rows))
    stamps = [f"{datetime(2016, 1, 1) + timedelta(seconds=int(s)):%Y%m%d%H%M%S}{m:03d}"
              for s, m in zip(seconds, millis, strict=True)]  # fmt: skip
    paths = [f"{a}_{genders[s]}_{races[r]}_{t}.jpg"
             for a, s, r, t in zip(_years(rows), _sexes(rows), rows["race"], stamps, strict=True)]  # fmt: skip
    return Dataset("utkface", rows, paths)


def appa_real(rows: pd.DataFrame, placed: pd.DataFrame, rng: np.random.Generator) -> Dataset:
    """APPA-REAL: the synth split kept (val as valid); real age in whole years; sex and race in allcategories."""
    official = rows["split"].map({split: name for name, split in adapters.APPA_SPLITS.items()}).to_numpy()
    names = [f"{k:06d}.jpg" for k in range(len(rows))]
    real = _years(rows)
    ratings = rng.integers(30, 46, len(rows))
    spread = 2.0 + 0.08 * real  # raters, simulated around the real age: more spread on older faces
    gt = pd.DataFrame({
        "file_name": names, "num_ratings": ratings,
        "apparent_age_avg": np.clip(real + rng.standard_normal(len(rows)) * spread / np.sqrt(ratings), 0, None),
        "apparent_age_std": spread * rng.uniform(0.8, 1.2, len(rows)), "real_age": real,
    })  # fmt: skip
    genders = {sex: word for word, sex in adapters.APPA_SEXES.items()}
    races = {race: word for word, race in adapters.APPA_RACES.items()}  # APPA has no indian or other: left blank
    categories = pd.DataFrame({"file": names, "gender": [genders[s] for s in _sexes(rows)],
                               "race": rows["race"].map(races).to_numpy()})  # fmt: skip
    tables = {}
    for name in adapters.APPA_SPLITS:  # all three splits' CSVs, even an empty one
        tables[f"gt_avg_{name}.csv"] = gt[official == name]
        tables[f"allcategories_{name}.csv"] = categories[official == name]
    return Dataset("appa-real", rows, [f"{o}/{n}" for o, n in zip(official, names, strict=True)], tables)


def imdb_wiki(rows: pd.DataFrame, placed: pd.DataFrame, rng: np.random.Generator) -> Dataset:
    """IMDB-WIKI's ``imdb.mat``: one date of birth a person, and each photo's year chosen so that the completed
    years on 1 July of that year (how the adapter reads age) are the photo's age label."""
    celeb, _ = _names(rows)
    people = pd.unique(rows["subject_id"])
    oldest = rows.groupby("subject_id")["label_age"].max().loc[people].to_numpy()
    born_year = 2015 - oldest.astype(int) - rng.integers(0, 15, len(people))  # every photo taken by 2016
    day = rng.integers(0, 365, len(people))
    born = {s: date(int(y), 1, 1) + timedelta(days=int(d)) for s, y, d in zip(people, born_year, day, strict=True)}
    dob = [born[s] for s in rows["subject_id"]]
    taken = [b.year + a + ((b.month, b.day) > (7, 1)) for b, a in zip(dob, _years(rows), strict=True)]
    paths = [f"{c % 100:02d}/nm{c:07d}_rm{k:09d}_{b.year}-{b.month}-{b.day}_{t}.jpg"
             for k, (c, b, t) in enumerate(zip(celeb, dob, taken, strict=True))]  # fmt: skip
    box = placed.loc[rows.index, ["x", "y"]].to_numpy(dtype=float)  # the face photo's square in its frame
    corners = [np.array([[x, y, x + FACE_PIXELS, y + FACE_PIXELS]]) for x, y in box]  # [x1 y1 x2 y2]
    struct = {
        "dob": np.array([[b.toordinal() + adapters.MATLAB_DATENUM_OFFSET for b in dob]], dtype=float),
        "photo_taken": np.array([taken], dtype=float),
        "full_path": _cell(paths),
        "gender": np.array([(rows["sex"] == 1).astype(float).to_numpy()]),
        "name": _cell([f"Person {c}" for c in celeb]),
        "face_location": _cell(corners),
        "face_score": np.array([rng.uniform(1.5, 5.0, len(rows))]),
        "second_face_score": np.full((1, len(rows)), np.nan),
        "celeb_id": np.array([celeb.to_numpy()], dtype=float),
    }
    return Dataset("imdb-wiki", rows, paths, mats={"imdb.mat": {"imdb": struct}})


def _cell(values: list) -> np.ndarray:
    """A 1×n MATLAB cell array."""
    out = np.empty((1, len(values)), dtype=object)
    for i, value in enumerate(values):
        out[0, i] = value
    return out


def agedb(rows: pd.DataFrame, placed: pd.DataFrame, rng: np.random.Generator) -> Dataset:
    """``id_name_age_sex.jpg``: a running id, one name a person, age in whole years, sex m or f."""
    _, names = _names(rows)
    paths = [f"{k}_{n}_{a}_{s.lower()}.jpg"
             for k, (n, a, s) in enumerate(zip(names, _years(rows), _sexes(rows), strict=True))]  # fmt: skip
    return Dataset("agedb", rows, paths)


def clinical(folder: str) -> Callable[[pd.DataFrame, pd.DataFrame, np.random.Generator], list[Dataset]]:
    """A hospital cohort: ``photos.csv`` with the manifest's column names (time in years), the synth split kept."""

    def layout(truth: pd.DataFrame, placed: pd.DataFrame, rng: np.random.Generator) -> list[Dataset]:
        paths = [f"photos/{i}.jpg" for i in truth["image_id"]]
        table = pd.DataFrame({
            "path": paths, "subject_id": truth["subject_id"].to_numpy(), "age": _years(truth), "sex": _sexes(truth),
            "race": truth["race"].to_numpy(), "time": truth["time"].to_numpy(), "event": truth["event"].to_numpy(),
            "cancer_type": truth["cancer_type"].to_numpy(), "stage": truth["stage"].to_numpy(),
            "ecog": truth["ecog"].to_numpy(), "split": truth["split"].to_numpy(),
        })  # fmt: skip
        return [Dataset(folder, truth, paths, {"photos.csv": table})]

    return layout


def pairs(truth: pd.DataFrame, placed: pd.DataFrame, rng: np.random.Generator) -> list[Dataset]:
    """The robustness pairs as a before/after set: one row a photo, the reference photos at strength 0."""
    paths = [f"photos/{i}.jpg" for i in truth["image_id"]]
    table = pd.DataFrame({
        "person": truth["pair_id"].to_numpy(), "condition": truth["condition"].to_numpy(),
        "strength": truth["strength"].to_numpy(), "path": paths, "age": _years(truth), "sex": _sexes(truth),
        "race": truth["race"].to_numpy(),
    })  # fmt: skip
    return [Dataset("pairs", truth, paths, {"pairs.csv": table})]


LAYOUTS: dict[str, Callable[[pd.DataFrame, pd.DataFrame, np.random.Generator], list[Dataset]]] = {
    "pretrain": webface,
    "age": age,
    "clinical-a": clinical("clinical-a"),
    "clinical-b": clinical("clinical-b"),
    "pairs": pairs,
}


# ------------------------------------------------------------------------------------------ the export


def _write_metadata(folder: Path, ds: Dataset) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in ds.tables.items():
        table.to_csv(folder / name, index=False)
    for name, structs in ds.mats.items():
        savemat(folder / name, structs)


def _check_target(target: Path, force: bool) -> None:
    """Refuse a target that is a file, or a folder with anything in it unless ``force`` and it is an export."""
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder: choose another folder to export to")
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise FileExistsError(f"{target} exists and is not empty: export to a new or empty folder, or pass "
                                  "--force (force=True) to replace a previous export there")  # fmt: skip
        if not (target / KEY).is_file():
            raise FileExistsError(f"{target} is not a previous export (it has no {KEY}): --force replaces only an "
                                  "export; remove the folder yourself if it is to go")  # fmt: skip


def _yaml_text(text: str) -> str:
    """``text`` as a YAML value that reads back as that string (how ``--set`` parses values)."""
    try:
        if yaml.safe_load(text) == text:
            return text
    except yaml.YAMLError:
        pass
    return "'" + text.replace("'", "''") + "'"


def prepare_command(profile: str, target: Path, cohorts: Iterable[str]) -> str | None:
    """The ``fahr prepare`` command that reads an export (None when it holds no cohort ``fahr prepare`` builds)."""
    real = [c for c in cohorts if c in prepare.COHORT_DATASETS]
    if not real:
        return None
    sets = ["data.source=real", f"data.root={_yaml_text(str(target))}", "data.prealigned=[]"]
    words = ["fahr", "prepare", "--profile", profile, *[w for s in sets for w in ("--set", s)]]
    if set(real) != set(prepare.COHORT_DATASETS):
        words += [w for c in real for w in ("--cohort", c)]
    return shlex.join(words)


def readme(cfg: Config, target: Path, cohorts: Iterable[str], folders: Iterable[str]) -> str:
    """What the exported tree is and how to use it."""
    cohorts = tuple(cohorts)
    intro = (
        f"Written by `fahr synth --profile {cfg.profile} --export` (seed {cfg.seed}) from the FAHR-Synth cohorts "
        f"{', '.join(cohorts)}. Each photo is a FAHR-Synth face re-rendered at {FACE_PIXELS}x{FACE_PIXELS} px and "
        f"pasted at a random place into a {FRAME_PIXELS}x{FRAME_PIXELS} frame of its background colour, so that face "
        "detection and alignment have work to do. Each folder is laid out as the real dataset is published and holds "
        "the labels that dataset carries and nothing else of what FAHR-Synth knows about the faces."
    )
    entries = {f"{name}/": FOLDERS[name] for name in folders} | {
        KEY: "dataset, path (relative to the dataset folder), image_id (FAHR-Synth's), cohort of every photo: to "
        "compare results on this tree with results on the FAHR-Synth cohorts"
    }
    lines = ["FAHR-Synth in the real datasets' formats", "", textwrap.fill(intro, 100), ""]
    for name, what in entries.items():
        lines.append(textwrap.fill(what, 100, initial_indent=f"  {name:<16}", subsequent_indent=" " * 18))
    command = prepare_command(cfg.profile, target, cohorts)
    if command:
        why = "data.prealigned=[]: these photos are not aligned crops, so webface's are detected and aligned too"
        lines += ["", textwrap.fill(f"Prepare the real cohorts from it ({why}):", 100), "", f"  {command}"]
    return "\n".join(lines) + "\n"


def _rng(seed: int, cohort: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(b"export"), zlib.crc32(cohort.encode())]))


def export(
    cfg: Config, target: Path, cohorts: Iterable[str] = synth.COHORTS, force: bool = False, progress: bool = True
) -> pd.DataFrame:
    """Write the profile's FAHR-Synth ``cohorts`` (built first if missing or stale) into ``target`` in the real
    datasets' formats, atomically; a table of what was written: dataset, photos, persons, folder.

    ``target`` must be new or empty; ``force`` replaces a previous export there (and nothing else)."""
    target, cohorts = Path(target).expanduser().resolve(), tuple(cohorts)
    _check_target(target, force)
    started = provenance.now()
    synth.build(cfg, cohorts, progress=progress)
    written: list[tuple[str, Dataset]] = []
    with provenance.atomic_path(target) as tmp:
        tmp.mkdir()
        for cohort in cohorts:
            _, truth, _ = synth.load(cfg.profile, cohort)
            rng = _rng(cfg.seed, cohort)
            placed = _placements(truth, rng)
            datasets = LAYOUTS[cohort](truth, placed, rng)
            for ds in datasets:
                _write_metadata(tmp / ds.folder, ds)
            _write_photos(tmp, truth, placed, datasets, cfg.synth.workers, f"export {cohort}", progress)
            written += [(cohort, ds) for ds in datasets]
        pd.concat([ds.key(cohort) for cohort, ds in written], ignore_index=True).to_csv(tmp / KEY, index=False)
        source = synth.cohort_dir(cfg.profile, cohorts[0]).parent.resolve()  # for `fahr crosspath`
        provenance.write_json(provenance.provenance_path(tmp / KEY),
                              provenance.record(cfg, "export", started, synth=str(source)))  # fmt: skip
        (tmp / README).write_text(readme(cfg, target, cohorts, [ds.folder for _, ds in written]))
    return pd.DataFrame([_summary(ds, target) for _, ds in written])


def _summary(ds: Dataset, target: Path) -> dict:
    return {"dataset": ds.folder, "photos": len(ds.rows), "persons": ds.rows["subject_id"].nunique(),
            "folder": target / ds.folder}  # fmt: skip
