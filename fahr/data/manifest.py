"""The manifest: one row per photo, validated loudly, split by subject.

Columns (DESIGN.md, "Data contracts"): ``image_id, path, subject_id, dataset, split`` always; where known
``age`` (years), ``sex``, ``race``; clinical ``time`` (years from photo to death or censoring), ``event``
(1 = death), ``cancer_type``, ``stage``, ``ecog``; for rendered or perturbed photos ``condition``,
``strength`` and ``pair_id``. ``path`` is relative to the manifest's folder unless absolute.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fahr.core import provenance
from fahr.core.config import Config

REQUIRED = ("image_id", "path", "subject_id", "dataset", "split")
SPLITS = ("train", "val", "test")
SEXES = ("F", "M")
RACES = ("white", "black", "asian", "indian", "other")
CLINICAL = ("time", "event", "cancer_type", "stage", "ecog")
AGE_RANGE = (0.0, 120.0)
STAGES = (1, 2, 3, 4)
ECOG = (0, 1, 2, 3, 4)


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, the rows, the columns and the reasons."""


@dataclass
class Validation:
    """The outcome of validating a manifest: the usable rows, the excluded ones, and every problem found."""

    source: str
    valid: pd.DataFrame
    excluded: pd.DataFrame
    problems: pd.DataFrame = field(repr=False)

    @property
    def counts(self) -> pd.Series:
        """How many problems of each reason were found."""
        return self.problems["reason"].value_counts() if len(self.problems) else pd.Series(dtype=int)

    def summary(self, limit: int = 20) -> str:
        """A readable report: counts per reason, then the first ``limit`` problems with file, row and column."""
        if self.problems.empty:
            return f"{self.source}: {len(self.valid)} rows, no problems"
        lines = [f"{self.source}: {len(self.problems)} problems in {self.problems['row'].nunique()} rows"]
        lines += [f"  {count} × {reason}" for reason, count in self.counts.items()]
        for p in self.problems.head(limit).itertuples():
            lines.append(f"  {self.source}, row {p.row}, column {p.column!r}: {p.reason} (value {p.value!r})")
        if len(self.problems) > limit:
            lines.append(f"  … and {len(self.problems) - limit} more")
        return "\n".join(lines)


def _problems_in_column(df: pd.DataFrame, column: str, bad: pd.Series, reason: str) -> list[dict]:
    return [{"row": int(i) + 1, "column": column, "value": df.at[i, column], "reason": reason} for i in df.index[bad]]


def _check_images(df: pd.DataFrame, root: Path, contained: bool = False) -> list[dict]:
    """Missing, special (a folder, FIFO or device: never opened) and undecodable image files; with ``contained``,
    also files outside ``root`` once symlinks and ``..`` are resolved, refused before they are read."""
    import stat

    from PIL import Image

    found = []
    base = root.resolve()
    for i, rel in zip(df.index, df["path"], strict=True):
        path = resolve_path(rel, root)

        def problem(reason: str) -> None:
            found.append({"row": int(i) + 1, "column": "path", "value": rel, "reason": reason})  # noqa: B023

        if contained and not path.resolve().is_relative_to(base):
            problem(f"outside the dataset folder {base} (it resolves to {path.resolve()}): refused, not read; "
                    "put the photos inside the folder (a link to the whole folder is fine)")  # fmt: skip
            continue
        try:
            mode = path.stat().st_mode
        except OSError:
            problem("missing image file")
            continue
        if not stat.S_ISREG(mode):
            problem("not a regular file (a folder, FIFO or device): not opened")
            continue
        try:
            with Image.open(path) as img:
                img.load()  # decodes the pixels: verify() alone passes a JPEG cut in half
        except Exception as err:  # PIL raises many types for broken files
            problem(f"unreadable image ({type(err).__name__})")
    return found


def find_problems(df: pd.DataFrame, root: Path | None = None, contained: bool = False) -> pd.DataFrame:
    """Every problem of a manifest as a table (row is 1-based, as a person counts data rows)."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        return pd.DataFrame(
            [{"row": 0, "column": c, "value": None, "reason": "required column missing"} for c in missing]
        )
    df = df.reset_index(drop=True)
    found: list[dict] = []
    for column in REQUIRED:
        empty = df[column].isna() | (df[column].astype(str).str.strip() == "")
        found += _problems_in_column(df, column, empty, "missing value")
    found += _problems_in_column(df, "image_id", df["image_id"].duplicated(keep="first"), "duplicate image_id")
    found += _problems_in_column(df, "split", ~df["split"].isin(SPLITS), f"split not one of {', '.join(SPLITS)}")
    subject_splits = df.groupby("subject_id")["split"].nunique()
    leaking = df["subject_id"].isin(subject_splits.index[subject_splits > 1])
    found += _problems_in_column(df, "subject_id", leaking, "subject in more than one split")
    if "age" in df:
        age = pd.to_numeric(df["age"], errors="coerce")
        bad = df["age"].notna() & ~age.between(*AGE_RANGE)
        found += _problems_in_column(df, "age", bad, f"age not a number in {AGE_RANGE[0]:g}–{AGE_RANGE[1]:g} years")
    for column, allowed in (("sex", SEXES), ("race", RACES), ("stage", STAGES), ("ecog", ECOG)):
        if column in df:
            bad = df[column].notna() & ~df[column].isin(allowed)
            found += _problems_in_column(df, column, bad, f"unknown {column} code (allowed: {allowed})")
    if "event" in df:
        found += _problems_in_column(df, "event", ~df["event"].isin((0, 1)), "event not 0 or 1")
    if "time" in df:
        time = pd.to_numeric(df["time"], errors="coerce")
        found += _problems_in_column(df, "time", time.isna(), "survival time missing or not a number")
        found += _problems_in_column(df, "time", time < 0, "negative survival time")
    for column in ("time", "event"):  # one patient, one outcome: photos of a patient must agree on it
        if column in df:
            disagree = df.groupby("subject_id")[column].transform("nunique") > 1
            found += _problems_in_column(df, column, disagree, f"the patient's photos disagree on {column}")
    if root is not None:
        found += _check_images(df, root, contained)
    table = pd.DataFrame(found, columns=["row", "column", "value", "reason"])
    return table.sort_values(["row", "column"], kind="stable").reset_index(drop=True)


def validate(
    df: pd.DataFrame,
    source: str | Path,
    root: Path | None = None,
    on_invalid: Literal["raise", "exclude"] = "raise",
    contained: bool = False,
) -> Validation:
    """Check a manifest; with ``on_invalid="raise"`` any problem is a ManifestError naming file, row, column
    and reason; with ``"exclude"`` the bad rows are set aside (never dropped silently: see ``excluded``).
    ``root`` (the folder paths are relative to) turns on the image checks: missing, special or unreadable files;
    ``contained`` (a dataset read from its own folder) also refuses, unread, any image outside ``root``."""
    problems = find_problems(df, root, contained)
    missing_columns = problems["row"].eq(0).any()
    df = df.reset_index(drop=True)
    bad_rows = problems.loc[problems["row"] > 0, "row"].unique() - 1
    result = Validation(str(source), df.drop(index=bad_rows), df.loc[sorted(bad_rows)], problems)
    if len(problems) and (on_invalid == "raise" or missing_columns):
        raise ManifestError(result.summary())
    if len(result.excluded):
        reasons = problems.groupby("row")["reason"].agg("; ".join)
        result.excluded = result.excluded.assign(exclusion_reason=reasons.loc[result.excluded.index + 1].to_numpy())
    return result


def resolve_path(path: str | Path, root: Path) -> Path:
    """A manifest path made absolute against the manifest's folder."""
    path = Path(path)
    return path if path.is_absolute() else root / path


def read(path: Path) -> pd.DataFrame:
    """Read a manifest (``.parquet`` or ``.csv``); the ids are read as text."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    if path.suffix not in (".parquet", ".csv"):
        raise ManifestError(f"{path}: a manifest is a .parquet or .csv file")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        table = pd.read_csv(path, dtype={c: str for c in ("image_id", "subject_id", "pair_id")})
    except Exception as err:
        raise ManifestError(f"{path}: cannot be read as a manifest ({type(err).__name__}: {err})") from err
    cut = _cut_column(path, list(table.columns))
    if cut is not None:  # a row cut just after a comma would otherwise read as empty trailing fields
        raise ManifestError(
            f"{path}, row {len(table)}, column {cut!r}: the file ends inside this row (no final line break), as a "
            "file cut short in a copy does; if the row is complete, end the file with a line break"
        )
    return table


def _cut_column(path: Path, columns: list[str]) -> str | None:
    """The column in which a CSV file ends, if its last line has no line break; None for a complete file."""
    with path.open("rb") as f:
        f.seek(max(0, f.seek(0, 2) - 65536))  # the last line is in the file's tail
        tail = f.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return None
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    fields = next(csv.reader([last]), [""])
    return columns[min(len(fields), len(columns)) - 1]


def load(path: Path, check_images: bool = True, on_invalid: Literal["raise", "exclude"] = "raise") -> Validation:
    """Read and validate a manifest file; image paths are checked against the manifest's folder."""
    path = Path(path)
    return validate(read(path), path, root=path.parent if check_images else None, on_invalid=on_invalid)


def write(df: pd.DataFrame, path: Path, cfg: Config, stage: str, **extra) -> Path:
    """Write a manifest atomically (Parquet or CSV by suffix) with its provenance record beside it."""
    path = Path(path)
    with provenance.artifact(path, cfg, stage, rows=len(df), **extra) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def split_subjects(
    subjects: pd.DataFrame,
    fractions: Mapping[str, float],
    seed: int,
    stratify: str | Iterable[str] | None = None,
) -> pd.Series:
    """Assign each subject (one row each, indexed by subject_id) to a split, stratified and seeded.

    Within every stratum the subjects are shuffled and cut by ``fractions`` (which must sum to 1), so each
    split gets its share of every stratum; a subject is in exactly one split by construction.
    """
    total = sum(fractions.values())
    if not np.isclose(total, 1.0):
        raise ValueError(f"split fractions must sum to 1, got {dict(fractions)} (sum {total:g})")
    if subjects.index.has_duplicates:
        raise ValueError("split_subjects needs one row per subject (index = subject_id)")
    rng = np.random.default_rng(seed)
    names = list(fractions)
    bounds = np.cumsum([fractions[n] for n in names])
    keys = [] if stratify is None else [stratify] if isinstance(stratify, str) else list(stratify)
    groups = [g for _, g in subjects.groupby(keys)] if keys else [subjects]
    assigned = pd.Series(index=subjects.index, dtype=object)
    for group in groups:
        order = rng.permutation(len(group))
        position = (np.arange(len(group)) + rng.random()) / len(group)  # random offset: no bias to one split
        which = np.searchsorted(bounds, position, side="right").clip(max=len(names) - 1)
        assigned.loc[group.index[order]] = np.asarray(names, dtype=object)[which]
    return assigned
