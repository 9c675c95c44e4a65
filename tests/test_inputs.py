"""Patients' data under every input (issue 26): a change of ``data.root`` or a photo replaced in place never lets
another photo's crop through, and each bad input of the table ``CASES`` ends its command with exit code 2 (or a
flagged row where a photo is only left out) and one line naming the file, row and reason, without a traceback and
without a hang. A new kind of bad input gets a row in ``CASES``, not a patch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skimage import data

from fahr.core import provenance
from fahr.data import align
from fahr.models.heads import FaceAgeModel, save_checkpoint
from fahr.models.vit import ViTSpec, build_encoder

pytestmark = pytest.mark.slow  # runs `python -m fahr.cli` in subprocesses (prepare aligns with dlib)

PATIENTS = 12


def faces(variant: int) -> list[np.ndarray]:
    """Twelve photos with one face each; ``variant`` 0 and 1 give different pictures under the same names."""
    base = data.astronaut()
    out = []
    for i in range(PATIENTS):
        photo = base[:, ::-1] if (i + variant) % 2 else base
        gain = 0.8 + 0.03 * i + 0.15 * variant
        out.append(np.clip(photo[:, 8 * i : 8 * i + 440].astype(float) * gain, 0, 255).astype(np.uint8))
    return out


def clinical_root(folder: Path, variant: int) -> Path:
    """A data root with one clinical cohort (clinical-a): photos.csv and the twelve photos it names."""
    records = []
    for i, photo in enumerate(faces(variant)):
        (folder / "clinical-a" / "photos").mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo).save(folder / "clinical-a" / "photos" / f"{i}.jpg", quality=92)
        records.append({"path": f"photos/{i}.jpg", "subject_id": f"p{i}", "age": 50.0 + i, "sex": "MF"[i % 2],
                        "race": "white", "cancer_type": "lung", "stage": 1 + i % 4, "ecog": i % 3,
                        "time": 0.5 + i / 4, "event": int(i % 3 != 0)})  # fmt: skip
    pd.DataFrame(records).to_csv(folder / "clinical-a" / "photos.csv", index=False)
    return folder


def fahr(artifacts: Path, *args: str, root: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    sets = ["--set", "data.source=real", "--set", f"data.root={root}"] if root is not None else []
    env = {**os.environ, "FAHR_ARTIFACTS": str(artifacts)}
    return subprocess.run([sys.executable, "-m", "fahr.cli", *args, "--profile", "smoke", *sets],
                          capture_output=True, text=True, env=env, timeout=timeout)  # fmt: skip


def crops(artifacts: Path) -> dict[str, str]:
    """The prepared clinical-a cohort: each photo's crop, by image id, as the SHA-256 of the crop's bytes."""
    folder = artifacts / "smoke" / "real" / "clinical-a"
    table = pd.read_parquet(folder / "manifest.parquet")
    return {
        i: hashlib.sha256((folder / p).read_bytes()).hexdigest()
        for i, p in zip(table["image_id"], table["path"], strict=True)
    }


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> tuple[Path, Path]:
    return clinical_root(tmp_path_factory.mktemp("root1"), 0), clinical_root(tmp_path_factory.mktemp("root2"), 1)


def test_a_change_of_data_root_never_reuses_another_roots_crops(roots, tmp_path) -> None:
    """The issue's three runs: root 1, root 2 (same file names, other patients), root 1 again. Each run's crops are
    its own root's, and the manifest names each photo's source by its SHA-256."""
    root1, root2 = roots
    artifacts = tmp_path / "artifacts"
    seen = []
    for root in (root1, root2, root1):
        out = fahr(artifacts, "prepare", "--cohort", "clinical-a", root=root)
        assert out.returncode == 0, out.stderr[-3000:]
        seen.append(crops(artifacts))
        table = pd.read_parquet(artifacts / "smoke" / "real" / "clinical-a" / "manifest.parquet")
        for image_id, sha in zip(table["image_id"], table["source_sha256"], strict=True):
            assert sha == hashlib.sha256((root / "clinical-a" / image_id).read_bytes()).hexdigest(), image_id
    assert len(seen[0]) == PATIENTS and not set(seen[0].values()) & set(seen[1].values())
    assert seen[2] == seen[0]  # root 1's crops again, every one of them


def test_a_photo_replaced_in_place_is_aligned_again(roots, tmp_path) -> None:
    """Another picture written over a photo, its modification time set back: the next prepare uses the new one."""
    root = clinical_root(tmp_path / "root", 0)
    artifacts = tmp_path / "artifacts"
    assert fahr(artifacts, "prepare", "--cohort", "clinical-a", root=root).returncode == 0
    before = crops(artifacts)
    photo = root / "clinical-a" / "photos" / "3.jpg"
    st = photo.stat()
    shutil.copyfile(roots[1] / "clinical-a" / "photos" / "3.jpg", photo)
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns))
    out = fahr(artifacts, "prepare", "--cohort", "clinical-a", root=root)
    assert out.returncode == 0, out.stderr[-3000:]
    after = crops(artifacts)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"photos/3.jpg"}


def test_a_crop_written_over_by_another_run_is_not_trusted_by_the_journal(tmp_path) -> None:
    """The journal trusts a crop only while its bytes are the ones it recorded."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, face in enumerate(faces(0)[:2]):
        Image.fromarray(face).save(photos / f"{i}.jpg")
    dst = tmp_path / "aligned"
    first = align.align_paths(sorted(photos.glob("*.jpg")), dst, root=photos, progress=False, workers=1)
    crop = Path(first["aligned_path"][0])
    kept = crop.read_bytes()
    crop.write_bytes(Path(first["aligned_path"][1]).read_bytes())  # another photo's crop under its name
    again = align.align_paths(sorted(photos.glob("*.jpg")), dst, root=photos, progress=False, workers=1)
    assert crop.read_bytes() == kept and list(again["flag"]) == ["ok", "ok"]


def test_a_writer_killed_mid_write_leaves_nothing_after_the_next_write(tmp_path) -> None:
    """``atomic_path`` names its temporary with the writer's process id: the next write of the same target removes
    what a dead writer left, and keeps what a live one is writing."""
    target = tmp_path / "cohort"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".cohort.{int(dead.stdout)}.x1y2.tmp"  # what a killed atomic_path left
    orphan.mkdir()
    busy = tmp_path / f".cohort.{os.getppid()}.a3b4.tmp"  # a live process's
    busy.mkdir()
    with provenance.atomic_path(target) as tmp:
        tmp.mkdir()
    assert target.is_dir() and not orphan.exists() and busy.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cohort", busy.name])


# ---------------------------------------------------------------------------------------------------------------
# The table: each bad input, the command it is given to, and what must come out.


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path, Path], list[str]]  # (data root copy, scratch folder) -> the command's arguments
    code: int  # the exit code
    says: tuple[str, ...]  # text the one-line message (or the output table) must hold
    needs_root: bool = True  # the command runs with data.source=real, data.root=<the copy>


def _csv(root: Path) -> Path:
    return root / "clinical-a" / "photos.csv"


def _edit_csv(root: Path, row: int, **values: object) -> None:
    table = pd.read_csv(_csv(root))
    for column, value in values.items():
        table.loc[row, column] = value
    table.to_csv(_csv(root), index=False)


def without_column(column: str) -> Callable[[Path, Path], list[str]]:
    def make(root: Path, scratch: Path) -> list[str]:
        pd.read_csv(_csv(root)).drop(columns=[column]).to_csv(_csv(root), index=False)
        return ["prepare", "--cohort", "clinical-a"]

    return make


def photo_path(path: Callable[[Path, Path], str]) -> Callable[[Path, Path], list[str]]:
    """Row 3 of photos.csv pointed at ``path(root, scratch)``."""

    def make(root: Path, scratch: Path) -> list[str]:
        _edit_csv(root, 2, path=path(root, scratch))
        return ["prepare", "--cohort", "clinical-a"]

    return make


def _outside(root: Path, scratch: Path) -> Path:
    photo = scratch / "elsewhere.jpg"
    shutil.copyfile(root / "clinical-a" / "photos" / "0.jpg", photo)
    return photo


def _link_out(root: Path, scratch: Path) -> str:
    (root / "clinical-a" / "photos" / "link.jpg").symlink_to(_outside(root, scratch))
    return "photos/link.jpg"


def _fifo(folder: Path, name: str = "pipe.jpg") -> Path:
    os.mkfifo(folder / name)
    return folder / name


def _fifo_in_photos(root: Path, scratch: Path) -> str:
    _fifo(root / "clinical-a" / "photos")
    return "photos/pipe.jpg"


def thin_photo(root: Path, scratch: Path) -> list[str]:
    Image.fromarray(np.full((1, 4000, 3), 120, np.uint8)).save(root / "clinical-a" / "photos" / "2.jpg")
    return ["prepare", "--cohort", "clinical-a"]


def checkpoint(folder: Path) -> Path:
    """A FaceAge project checkpoint of a tiny ViT at 112 px (random weights: only the plumbing is tested)."""
    spec = ViTSpec(img_size=112, patch_size=16, embed_dim=32, depth=1, num_heads=2)
    torch.manual_seed(0)
    extra = {"spec": dict(spec.__dict__), "init_age": 40.0, "age_scale": 10.0}
    return save_checkpoint(folder / "faceage.pt", FaceAgeModel(build_encoder(spec), 40.0, 10.0), extra)


def predict(photos: Callable[[Path, Path], list[str]], model: Callable[[Path], Path] = checkpoint):
    def make(root: Path, scratch: Path) -> list[str]:
        return ["predict", *photos(root, scratch), "--faceage", str(model(scratch)), "-o", str(scratch / "ages.csv")]

    return make


def _one_face(root: Path, scratch: Path) -> str:
    return str(root / "clinical-a" / "photos" / "0.jpg")


def _folder_with_specials(root: Path, scratch: Path) -> list[str]:
    folder = scratch / "photos"
    folder.mkdir()
    shutil.copyfile(_one_face(root, scratch), folder / "face.jpg")
    _fifo(folder)
    (folder / "album.jpg").mkdir()  # a folder named as a photo
    Image.fromarray(np.full((4000, 1, 3), 90, np.uint8)).save(folder / "thin.png")
    return [str(folder)]


def _truncated(scratch: Path) -> Path:
    whole = checkpoint(scratch).read_bytes()
    (scratch / "cut.pt").write_bytes(whole[: len(whole) // 2])
    return scratch / "cut.pt"


def _empty(scratch: Path) -> Path:
    (scratch / "empty.pt").write_bytes(b"")
    return scratch / "empty.pt"


def _config(*sets: str) -> Callable[[Path, Path], list[str]]:
    return lambda root, scratch: ["finetune-age", *[a for s in sets for a in ("--set", s)]]


CASES = (
    Case("clinical CSV without event", without_column("event"), 2, ("photos.csv", "required column(s) event missing")),
    Case("clinical CSV without time", without_column("time"), 2, ("photos.csv", "required column(s) time missing")),
    Case("photo outside the root by ../", photo_path(lambda r, s: os.path.relpath(_outside(r, s), r / "clinical-a")),
         2, ("photos.csv", "row 3", "outside the dataset folder")),
    Case("photo outside the root by absolute path", photo_path(lambda r, s: str(_outside(r, s))), 2,
         ("row 3", "outside the dataset folder", "refused, not read")),
    Case("photo outside the root by symlink", photo_path(_link_out), 2, ("row 3", "outside the dataset folder")),
    Case("a FIFO named as a photo", photo_path(_fifo_in_photos), 2, ("row 3", "not a regular file")),
    Case("a 1×4000 photo", thin_photo, 0, ("too_small",)),
    Case("batch_size=-1", _config("faceage.stage1.batch_size=-1"), 2,
         ("faceage.stage1.batch_size", "greater than or equal to 1", "-1")),
    Case("epochs=0", _config("pretrain.epochs=0"), 2, ("pretrain.epochs", "greater than or equal to 1")),
    Case("num_heads not dividing the width", _config("model.num_heads=5"), 2, ("not divisible by num_heads",)),
    Case("predict --faceage missing.pth", predict(lambda r, s: [_one_face(r, s)], lambda s: s / "missing.pth"), 2,
         ("missing.pth", "no such checkpoint file"), needs_root=False),
    Case("predict --faceage an empty file", predict(lambda r, s: [_one_face(r, s)], _empty), 2,
         ("empty.pt", "empty"), needs_root=False),
    Case("predict --faceage a truncated checkpoint", predict(lambda r, s: [_one_face(r, s)], _truncated), 2,
         ("cut.pt", "not a readable checkpoint"), needs_root=False),
    Case("predict a FIFO", predict(lambda r, s: [str(_fifo(s))]), 0, ("not_a_file",), needs_root=False),
    Case("predict a folder with a FIFO, a folder and a thin photo", predict(_folder_with_specials), 0,
         ("pipe.jpg,not_a_file", "album.jpg,not_a_file", "thin.png,too_small", "face.jpg,ok"), needs_root=False),
)  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_input_gets_its_exit_code_and_a_message_naming_it(case, roots, tmp_path) -> None:
    root = tmp_path / "root"
    shutil.copytree(roots[0], root, symlinks=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    artifacts = tmp_path / "artifacts"
    out = fahr(artifacts, *case.make(root, scratch), root=root if case.needs_root else None, timeout=240)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert out.returncode == case.code, out.stdout[-2000:] + out.stderr[-3000:]
    if case.code == 2:
        message = out.stderr.strip()
        assert message.startswith("fahr "), message
        shown = message
    elif (scratch / "ages.csv").is_file():
        shown = (scratch / "ages.csv").read_text()
    else:
        shown = out.stdout + (artifacts / "smoke" / "real" / "clinical-a" / "excluded.csv").read_text()
    for text in case.says:
        assert text in shown, f"{case.name}: {text!r} not in {shown[-3000:]!r}"
    if case.code == 2 and artifacts.exists():  # nothing half-written: no cohort, no temporary file or folder
        assert not list(artifacts.rglob("manifest.parquet")) and not list(artifacts.rglob("*.tmp*"))
