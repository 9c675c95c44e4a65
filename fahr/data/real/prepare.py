"""The real datasets: where a profile with ``data.source: real`` expects them, the check that names the
missing ones before anything runs, and the real cohorts the training stages read in place of FAHR-Synth's.

A real cohort (``pretrain``, ``age``, ``clinical-a``, ``clinical-b``: the names of the FAHR-Synth cohorts it
stands in for) is built by ``fahr prepare``: each of its datasets goes through its adapter
(``fahr.data.real.adapters``), every photo is detected and five-point aligned to 112x112 (``fahr.data.align``)
unless the dataset is listed in ``data.prealigned``, and one manifest is written under
``artifacts/<profile>/real/<cohort>/`` with the aligned crops beside it and ``excluded.csv``: every photo left
out, with its dataset and the reason (an adapter's skip, no face found, an unreadable file). Scanning a
dataset of millions of files is left to ``fahr prepare``; a training stage uses the prepared cohort as it is
(and prepares it first if it is absent or was prepared under another seed or setting).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fahr.core import cache, paths, provenance
from fahr.core.config import Config
from fahr.data import align, manifest
from fahr.data.real import adapters


@dataclass(frozen=True)
class Expected:
    """One real dataset: its folder under ``data.root``, a file pattern proving it is there, and what it is."""

    name: str
    folder: str
    marker: str  # glob (recursive) that must match at least one file
    what: str
    used_for: str
    source: str


EXPECTED: tuple[Expected, ...] = (
    Expected("webface", "webface", "**/*.jpg", "unlabelled face photographs (WebFace42M, or any large face corpus; "
             "any folder layout)", "MAE pretraining", "https://www.face-benchmark.org"),
    Expected("utkface", "utkface", "*.jpg", "UTKFace photos named [age]_[gender]_[race]_[date&time].jpg",
             "FaceAge fine-tuning and test", "https://susanqq.github.io/UTKFace/"),
    Expected("appa-real", "appa-real", "gt_avg_train.csv", "APPA-REAL: gt_avg_{train,valid,test}.csv beside its "
             "train/, valid/ and test/ folders", "FaceAge (the paper's 5.1-year test set)",
             "https://chalearnlap.cvc.uab.cat/dataset/26/description/"),
    Expected("imdb-wiki", "imdb-wiki", "*.mat", "IMDB-WIKI faces with imdb.mat or wiki.mat beside the photo folders",
             "FaceAge fine-tuning", "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/"),
    Expected("agedb", "agedb", "*.jpg", "AgeDB photos named id_name_age_sex.jpg", "FaceAge test",
             "https://ibug.doc.ic.ac.uk/resources/agedb/"),
    Expected("clinical-a", "clinical-a", "photos.csv", "development cancer cohort: photos.csv (one row per photo, "
             "columns named as the manifest's: path, subject_id, age, sex, race, time in years, event, cancer_type, "
             "stage, ecog; read by fahr.data.real.adapters.clinical_csv) and the photos it names",
             "FaceSurvival training and validation", "your institution (never commit patient data)"),
    Expected("clinical-b", "clinical-b", "photos.csv", "independent cancer cohort, laid out as clinical-a",
             "independent clinical validation", "your institution (never commit patient data)"),
    Expected("pairs", "pairs", "pairs.csv", "photographed pairs of the same people: pairs.csv (one row per photo, "
             "columns person, condition — reference for the unchanged photo, then e.g. makeup, facelift, "
             "blepharoplasty —, strength — 0 for the reference —, path relative to the CSV; optional age, sex, race) "
             "and the photos it names", "Robustness: makeup and cosmetic surgery (optional)",
             "your own before/after photographs, or a published paired set"),
)  # fmt: skip
OPTIONAL = frozenset({"pairs"})  # datasets no training stage needs; only the chapter that reads them


class RealDataError(RuntimeError):
    """A profile on real data cannot run as asked; the message says why and what to do."""


class MissingData(RealDataError):
    """Real datasets a profile needs are not where it looks for them."""


def root(cfg: Config) -> Path:
    """``data.root``, relative to the repository unless absolute."""
    base = Path(cfg.data.root).expanduser()
    return base if base.is_absolute() else paths.REPO / base


def missing(cfg: Config, names: Iterable[str] | None = None) -> list[tuple[Expected, Path]]:
    """The expected datasets (all, or those ``names``) that are absent (no file matches their marker)."""
    wanted = set(names) if names is not None else {e.name for e in EXPECTED}
    out = []
    for e in EXPECTED:
        folder = root(cfg) / e.folder
        if e.name in wanted and (not folder.is_dir() or next(folder.glob(e.marker), None) is None):
            out.append((e, folder))
    return out


def check(cfg: Config, names: Iterable[str] | None = None) -> None:
    """Raise ``MissingData`` naming every absent dataset (of ``names``, default all) and where it should go;
    nothing to check for FAHR-Synth."""
    if cfg.data.source != "real":
        return
    absent = missing(cfg, names)
    if absent:
        lines = [f"profile {cfg.profile!r} runs on real data (data.source=real), and {len(absent)} of the "
                 f"datasets it needs are missing under data.root = {root(cfg)}:"]  # fmt: skip
        for e, folder in absent:
            lines.append(f"  - {e.name}: put {e.what} in {folder}/ (looked for {e.marker}); used for {e.used_for}; "
                         f"from {e.source}")  # fmt: skip
        lines.append(
            'Put them there or point data.root elsewhere (e.g. make book PROFILE=paper SET="data.root=/mnt/faces"); '
            "or run the same profile on the built-in cohort with data.source=synth. Nothing was run."
        )
        raise MissingData("\n".join(lines))


def check_any(cfg: Config) -> None:
    """The book on real data: at least one dataset present (a chapter whose datasets are missing renders a page
    that says which to put where; with none at all there is nothing to build, and ``MissingData`` says so)."""
    if cfg.data.source == "real" and {e.name for e, _ in missing(cfg)} >= {e.name for e in EXPECTED} - OPTIONAL:
        check(cfg)


# ------------------------------------------------------------------------------------------ real cohorts

# The datasets that make each cohort, and the cohorts each training stage reads.
COHORT_DATASETS: dict[str, tuple[str, ...]] = {
    "pretrain": ("webface",),
    "age": ("utkface", "appa-real", "imdb-wiki", "agedb"),
    "clinical-a": ("clinical-a",),
    "clinical-b": ("clinical-b",),
    "pairs": ("pairs",),
}
STAGE_COHORTS: dict[str, tuple[str, ...]] = {
    "pretrain": ("pretrain",),
    "finetune-age": ("pretrain", "age"),
    "finetune-survival": ("pretrain", "clinical-a"),
}
PRETRAIN_FRACTIONS = {"train": 0.95, "val": 0.05}  # unlabelled: no test split


ANY_OF = frozenset({"age"})  # cohorts built from whichever of their datasets are present (at least one)


def datasets_of(cohorts: Iterable[str]) -> list[str]:
    """The datasets the given cohorts are built from."""
    return [name for c in cohorts for name in COHORT_DATASETS[c]]


def present(cfg: Config, cohort: str) -> tuple[str, ...]:
    """The datasets of ``cohort`` that are present under ``data.root``."""
    absent = {e.name for e, _ in missing(cfg, COHORT_DATASETS[cohort])}
    return tuple(name for name in COHORT_DATASETS[cohort] if name not in absent)


def cohort_missing(cfg: Config, cohort: str) -> list[tuple[Expected, Path]]:
    """What keeps a real cohort from being built: all its absent datasets, or for a cohort built from any of its
    datasets (``ANY_OF``: the age datasets) all of them when none is present; empty when it can be built."""
    absent = missing(cfg, COHORT_DATASETS[cohort])
    if cohort in ANY_OF and len(absent) < len(COHORT_DATASETS[cohort]):
        return []
    return absent


def available(cfg: Config) -> set[str]:
    """The cohorts this profile can read: every one on FAHR-Synth; on real data those whose datasets are present."""
    if cfg.data.source != "real":
        return set(COHORT_DATASETS)
    return {c for c in COHORT_DATASETS if not cohort_missing(cfg, c)}


def check_cohorts(cfg: Config, cohorts: Iterable[str]) -> None:
    """Raise ``MissingData`` naming every dataset that keeps one of ``cohorts`` from being built (nothing to check
    for FAHR-Synth)."""
    if cfg.data.source != "real":
        return
    absent = {e.name for c in cohorts for e, _ in cohort_missing(cfg, c)}
    if absent:
        check(cfg, absent)


def cohort_dir(profile: str, cohort: str) -> Path:
    return paths.stage_dir(profile, "real") / cohort


def settings(cfg: Config, cohort: str) -> str:
    """What a prepared cohort depends on besides its files: folders, seed (splits), prealignment, code."""
    names = present(cfg, cohort)
    return cache.digest(cohort, str(root(cfg)), names, cfg.seed, [n in cfg.data.prealigned for n in names],
                        cache.code_fingerprint(["fahr.data.real.prepare"]))  # fmt: skip


def files_digest(cfg: Config, cohort: str) -> str:
    """A digest of every file (relative path, size, modification time) of the cohort's dataset folders."""
    listing = []
    for name in present(cfg, cohort):
        folder = root(cfg) / name
        for base, _, files in os.walk(folder):
            for f in files:
                try:
                    stat = os.stat(os.path.join(base, f))
                    seen = (stat.st_size, stat.st_mtime_ns)
                except OSError:  # a broken link: validation names it
                    seen = (-1, -1)
                listing.append((name, os.path.relpath(os.path.join(base, f), folder), *seen))
    return cache.digest(sorted(listing))


def is_current(cfg: Config, cohort: str, files: str | None = None) -> bool:
    """Whether the cohort is prepared under these settings (and, given a ``files_digest``, from those files)."""
    record = provenance.read(cohort_dir(cfg.profile, cohort) / "manifest.parquet")
    if record is None or record.get("settings") != settings(cfg, cohort):
        return False
    return files is None or record.get("files") == files


def fingerprint(cfg: Config, cohort: str) -> str:
    """What a stage that reads the prepared cohort depends on: its manifest's bytes (prepare it first)."""
    return cache.file_digest(cohort_dir(cfg.profile, cohort) / "manifest.parquet")


# the columns a clinical photos.csv must have: the photo, the patient, the outcome (time in years, event 0/1) and
# the prognostic factors every Cox model adjusts for (fahr.analysis.survival.CLINICAL)
CLINICAL_COLUMNS = ("path", "subject_id", "age", "sex", "race", "cancer_type", "stage", "ecog", "time", "event")


def adapt(cfg: Config, name: str) -> list:
    """The adapter results (``AdapterResult``) of one real dataset, from its folder under ``data.root``."""

    folder = root(cfg) / name
    if name == "webface":
        return [adapters.photo_folder(folder, "webface", seed=cfg.seed, fractions=PRETRAIN_FRACTIONS)]
    if name == "utkface":
        return [adapters.utkface(folder, seed=cfg.seed)]
    if name == "appa-real":
        return [adapters.appa_real(folder)]
    if name == "imdb-wiki":
        return [adapters.imdb_wiki(mat, mat.parent, seed=cfg.seed) for mat in sorted(folder.glob("*.mat"))]
    if name == "agedb":
        return [adapters.agedb(folder, seed=cfg.seed)]
    if name == "pairs":
        return [adapters.paired_csv(folder / "pairs.csv", folder)]
    csv_file = folder / "photos.csv"  # clinical: the CSV's columns are named as the manifest's (time in years)
    try:
        header = pd.read_csv(csv_file, nrows=0).columns
    except Exception as err:
        raise manifest.ManifestError(f"{csv_file}: cannot be read as CSV ({type(err).__name__}: {err})") from err
    missing = [c for c in CLINICAL_COLUMNS if c not in header]
    if missing:
        raise manifest.ManifestError(
            f"{csv_file}: required column(s) {', '.join(missing)} missing (a clinical cohort needs "
            f"{', '.join(CLINICAL_COLUMNS)}: the outcome for FaceSurvival, the factors every Cox model is adjusted "
            f"for); the CSV has {', '.join(header)}. Nothing was prepared."
        )
    result = adapters.clinical_csv(csv_file, folder, {c: c for c in header}, dataset=name, seed=cfg.seed)
    if name == "clinical-b":  # the independent cohort is all test
        result.manifest["split"] = "test"
    return [result]


def _skipped(result) -> list[dict]:
    """What an adapter could not use, as rows of ``excluded.csv``."""
    return [{"dataset": result.dataset, "file": str(result.root / file), "reason": reason}
            for file, reason in zip(result.skipped["file"], result.skipped["reason"], strict=True)]  # fmt: skip


def aligned_dir(profile: str, dataset: str) -> Path:
    """Where a real dataset's aligned crops live (``artifacts/<profile>/aligned/<dataset>``), with the journal that
    lets a killed ``fahr prepare`` resume without aligning a photo twice."""
    return paths.stage_dir(profile, "aligned") / dataset


def _aligned(result, crops: Path, prealigned: bool, progress: bool, workers: int | None = None):
    """A dataset's manifest pointing at its aligned crops (or its own photos when ``prealigned``), and the photos
    left out because no face was found or the file could not be read."""

    table = result.manifest.copy()
    sources = [manifest.resolve_path(p, result.root).resolve() for p in table["path"]]
    if prealigned:
        return table.assign(path=[str(p) for p in sources], align_flag="prealigned"), []
    done = align.align_paths(sources, crops, root=result.root.resolve(), progress=progress, workers=workers)
    usable = done["aligned_path"].notna().to_numpy()
    left_out = [{"dataset": result.dataset, "file": str(p), "reason": f"alignment: {flag}"}
                for p, flag in zip(done.loc[~usable, "path"], done.loc[~usable, "flag"], strict=True)]  # fmt: skip
    # the source's SHA-256 beside its crop: the manifest (whose bytes every later stage's cache key holds) changes
    # whenever a photo does, even under the same name in another data.root
    table = table.assign(path=done["aligned_path"].to_numpy(), align_flag=done["flag"].to_numpy(),
                         source_sha256=done["source_sha256"].to_numpy())  # fmt: skip
    return table[usable].reset_index(drop=True), left_out


OTHER_CLINICAL = {"clinical-a": "clinical-b", "clinical-b": "clinical-a"}


def check_patients_disjoint(cfg: Config, cohort: str) -> None:
    """An independent cohort shares no patient with the development cohort: a ManifestError names the rows of
    ``cohort``'s ``photos.csv`` whose ``subject_id`` is also in the other clinical cohort's."""
    other = OTHER_CLINICAL.get(cohort)
    mine, theirs = root(cfg) / cohort / "photos.csv", root(cfg) / str(other) / "photos.csv"
    if other is None or not mine.is_file() or not theirs.is_file():
        return
    try:
        ids = pd.read_csv(mine, usecols=["subject_id"], dtype=str)["subject_id"]
        shared = set(ids) & set(pd.read_csv(theirs, usecols=["subject_id"], dtype=str)["subject_id"])
    except (ValueError, OSError, pd.errors.ParserError):
        return  # a CSV without the column, or unreadable: the adapter names that problem with its row
    if shared:
        rows = [i + 1 for i, v in enumerate(ids) if v in shared]
        raise manifest.ManifestError(
            f"{mine}: rows {', '.join(map(str, rows[:10]))}{' …' if len(rows) > 10 else ''}, column 'subject_id': "
            f"{len(shared)} patient(s) also in {other} ({theirs}), e.g. {sorted(shared)[:5]}; the independent "
            "cohort must not share patients with the development cohort. Nothing was prepared."
        )


def build_cohort(
    cfg: Config, cohort: str, progress: bool = True, files: str | None = None, workers: int | None = None
) -> Path:
    """Adapt, align (``workers`` processes, default every core) and write one real cohort into its folder,
    atomically (a failed run leaves the old one); ``files`` is its ``files_digest`` when the caller has already
    scanned the folders. Crops go to ``aligned_dir``, which a killed run resumes from."""
    check_cohorts(cfg, (cohort,))
    check_patients_disjoint(cfg, cohort)
    target = cohort_dir(cfg.profile, cohort)
    started = provenance.now()
    files = files or files_digest(cfg, cohort)
    with provenance.atomic_path(target) as tmp:
        tmp.mkdir()
        tables, left_out = [], []
        for name in present(cfg, cohort):
            for result in adapt(cfg, name):
                left_out += _skipped(result)
                crops = aligned_dir(cfg.profile, result.dataset)
                table, unaligned = _aligned(result, crops, name in cfg.data.prealigned, progress, workers)
                tables.append(table)
                left_out += unaligned
        table = pd.concat(tables, ignore_index=True)
        if table.empty:
            raise manifest.ManifestError(f"real cohort {cohort!r}: no usable photo in {list(present(cfg, cohort))} "
                                         f"under {root(cfg)} ({len(left_out)} left out)")  # fmt: skip
        inside = paths.profile_dir(cfg.profile)  # crops: relative to the cohort folder, so artifacts/ can move
        table["path"] = [os.path.relpath(p, target) if Path(p).is_relative_to(inside) else p for p in table["path"]]
        manifest.validate(table, f"real cohort {cohort!r}")  # the contract holds for the merged table too
        table.to_parquet(tmp / "manifest.parquet", index=False)
        pd.DataFrame(left_out, columns=["dataset", "file", "reason"]).to_csv(tmp / "excluded.csv", index=False)
        provenance.write_json(
            provenance.provenance_path(tmp / "manifest.parquet"),
            provenance.record(cfg, "prepare", started, cohort=cohort, rows=len(table), excluded=len(left_out),
                              settings=settings(cfg, cohort), files=files),
        )  # fmt: skip
    return target


def build(
    cfg: Config, cohorts: Iterable[str], rescan: bool = False, progress: bool = True, workers: int | None = None
) -> pd.DataFrame:
    """Prepare every cohort that is absent or stale (``rescan``: also when its files changed); a table of what
    was done: cohort, action, photos, photos left out, folder."""
    rows = []
    for cohort in cohorts:
        files = files_digest(cfg, cohort) if rescan else None  # scanned once, for the check and the record
        stale = not is_current(cfg, cohort, files)
        if stale:
            if progress:
                print(f"[prepare] building real cohort {cohort!r} from {', '.join(COHORT_DATASETS[cohort])}",
                      flush=True)  # fmt: skip
            build_cohort(cfg, cohort, progress, files, workers)
        record = provenance.read(cohort_dir(cfg.profile, cohort) / "manifest.parquet")
        rows.append({"cohort": cohort, "action": "prepared" if stale else "up to date", "photos": record["rows"],
                     "left out": record["excluded"], "folder": cohort_dir(cfg.profile, cohort)})  # fmt: skip
    return pd.DataFrame(rows).set_index("cohort")


def load(profile: str, cohort: str) -> pd.DataFrame:
    """The manifest of a prepared real cohort, its paths made absolute."""
    folder = cohort_dir(profile, cohort)
    if provenance.read(folder / "manifest.parquet") is None:
        raise FileNotFoundError(f"real cohort {cohort!r} of profile {profile!r} is not prepared: run "
                                f"`fahr prepare --profile {profile}`")  # fmt: skip
    table = pd.read_parquet(folder / "manifest.parquet")
    table["path"] = [str(folder / p) for p in table["path"]]  # an absolute path stays as it is
    return table
