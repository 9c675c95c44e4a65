"""Where a profile with ``data.source: real`` expects the real datasets, and the check that names the missing
ones before anything runs.

The adapters (``fahr.data.adapters``) turn each of these folders into a manifest. The built-in profiles run
on FAHR-Synth (``data.source: synth``) and need none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fahr import paths
from fahr.config import Config


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
    Expected("clinical-a", "clinical-a", "photos.csv", "development cancer cohort: photos.csv (one row per photo: "
             "path, patient id, age, sex, race, time, event, cancer type, stage, ECOG; read by "
             "fahr.data.adapters.clinical_csv) and the photos it names", "FaceSurvival training and validation",
             "your institution (never commit patient data)"),
    Expected("clinical-b", "clinical-b", "photos.csv", "independent cancer cohort, laid out as clinical-a",
             "independent clinical validation", "your institution (never commit patient data)"),
)  # fmt: skip


class MissingData(RuntimeError):
    """Real datasets a profile needs are not where it looks for them."""


def root(cfg: Config) -> Path:
    """``data.root``, relative to the repository unless absolute."""
    base = Path(cfg.data.root).expanduser()
    return base if base.is_absolute() else paths.REPO / base


def missing(cfg: Config) -> list[tuple[Expected, Path]]:
    """The expected datasets that are absent (no file matches their marker), with the folder searched."""
    out = []
    for e in EXPECTED:
        folder = root(cfg) / e.folder
        if not folder.is_dir() or next(folder.glob(e.marker), None) is None:
            out.append((e, folder))
    return out


def check(cfg: Config) -> None:
    """Raise ``MissingData`` naming every absent dataset and where it should go (nothing for FAHR-Synth)."""
    if cfg.data.source != "real":
        return
    absent = missing(cfg)
    if absent:
        lines = [f"profile {cfg.profile!r} runs on real data (data.source=real), and {len(absent)} of "
                 f"{len(EXPECTED)} datasets are missing under data.root = {root(cfg)}:"]  # fmt: skip
        for e, folder in absent:
            lines.append(f"  - {e.name}: put {e.what} in {folder}/ (looked for {e.marker}); used for {e.used_for}; "
                         f"from {e.source}")  # fmt: skip
        lines.append(
            'Put them there or point data.root elsewhere (e.g. make book PROFILE=paper SET="data.root=/mnt/faces"); '
            "or run the same profile on the built-in cohort with data.source=synth. Nothing was run."
        )
        raise MissingData("\n".join(lines))
    raise MissingData(
        f"all {len(EXPECTED)} real datasets are present under {root(cfg)}, but the stages and chapters read "
        "FAHR-Synth only so far: the adapters (fahr.data.adapters) and `fahr align` turn these folders into "
        "manifests, and routing those manifests through training and the book is the open step. Nothing was run."
    )
