"""Faults: a training stage killed mid-run resumes and ends exactly as a run that was never stopped; corrupt photos,
truncated manifests and impossible clinical values are refused with the file, the row and the reason; and nothing
already produced is lost, half-written or overwritten by a run that fails.

The loop's own resume (mid-epoch, DataLoader workers, DDP) is tested in tests/test_train_loop.py; here it is the
whole stage behind the command line (``fahr pretrain``: prepare, fingerprint, resume, ``encoder.pt``,
``done.json``), killed with SIGKILL, against the same stage run without a stop, each in its own process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fahr import cli
from fahr.core import config, provenance
from fahr.core.runtime import load_checkpoint
from fahr.data import manifest
from fahr.data.manifest import ManifestError
from fahr.train import pretrain
from fahr.train.loop import TIMING_FIELDS

# A small pretraining: 96 photos (94 to train on), batches of 16, 2 epochs of 5 steps; a checkpoint per epoch.
SMALL = ("--set", "synth.pretrain_n=96", "--set", "pretrain.epochs=2", "--set", "pretrain.batch_size=16")
WEIGHT_TOLERANCE = 0.0  # the loop resumes bit for bit on the CPU (same threads, same order of operations)
# `python -m fahr.cli` in a fresh process, whose torch generator starts from a random seed: the stages seed it.
CLI = "import sys; from fahr.cli import main; sys.exit(main(sys.argv[1:]))"


def fahr(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI, *args]


def env(artifacts: Path) -> dict[str, str]:
    return {**os.environ, "FAHR_ARTIFACTS": str(artifacts)}


def run(artifacts: Path, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run(fahr(*args), capture_output=True, text=True, env=env(artifacts), timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def without_timing(log: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIMING_FIELDS} for line in log.read_text().splitlines()
    ]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def pretraining(tmp_path_factory) -> dict:
    """An uninterrupted small pretraining, and the same one killed (SIGKILL) as soon as its first checkpoint
    exists, then run again: what each left behind."""
    reference, killed = tmp_path_factory.mktemp("reference"), tmp_path_factory.mktemp("killed")
    run(reference, "synth", "--profile", "smoke", "--cohort", "pretrain", *SMALL)
    shutil.copytree(reference / "smoke" / "synth", killed / "smoke" / "synth")  # the same cohort, rendered once
    synth_before = files(killed / "smoke" / "synth")
    run(reference, "pretrain", "--profile", "smoke", *SMALL)

    out = killed / "smoke" / "models" / "pretrain"
    worker = subprocess.Popen(fahr("pretrain", "--profile", "smoke", *SMALL), env=env(killed),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (out / "last.pt").is_file():
            assert worker.poll() is None, f"the run ended before its first checkpoint:\n{worker.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.01)
    finally:
        worker.send_signal(signal.SIGKILL)  # also when an assertion failed: no training left running
        worker.wait(timeout=60)
    at_kill = {"returncode": worker.returncode, "files": files(out), "checkpoint": load_checkpoint(out / "last.pt")}
    rerun = run(killed, "pretrain", "--profile", "smoke", *SMALL)
    return {"reference": reference / "smoke" / "models" / "pretrain", "killed": out, "at_kill": at_kill,
            "rerun": rerun, "synth_before": synth_before, "synth_after": files(killed / "smoke" / "synth")}  # fmt: skip


@pytest.mark.slow
def test_the_kill_came_mid_run_after_the_first_checkpoint(pretraining) -> None:
    at_kill = pretraining["at_kill"]
    assert at_kill["returncode"] == -signal.SIGKILL
    assert at_kill["checkpoint"]["epoch"] == 1 and at_kill["checkpoint"]["step"] == 5  # of 2 epochs, 10 steps
    assert "done.json" not in at_kill["files"] and "encoder.pt" not in at_kill["files"]  # it had not finished


@pytest.mark.slow
def test_the_rerun_resumed_instead_of_starting_again(pretraining) -> None:
    """The log lines written before the checkpoint are kept byte for byte, timings included: a fresh start would
    have rewritten them with new timings."""
    before = pretraining["at_kill"]["files"]["metrics.jsonl"].decode().splitlines()
    kept = before[: pretraining["at_kill"]["checkpoint"]["log_lines"]]
    after = (pretraining["killed"] / "metrics.jsonl").read_text().splitlines()
    assert kept and after[: len(kept)] == kept and len(after) > len(kept)
    assert "[pretrain]" in pretraining["rerun"].stdout


@pytest.mark.slow
def test_the_resumed_stage_ends_with_the_weights_metrics_and_log_of_an_unkilled_run(pretraining) -> None:
    reference, killed = pretraining["reference"], pretraining["killed"]
    for name in ("encoder.pt", "best.pt", "last.pt"):
        a = torch.load(reference / name, map_location="cpu", weights_only=True)["model"]
        b = torch.load(killed / name, map_location="cpu", weights_only=True)["model"]
        assert max_difference(a, b) <= WEIGHT_TOLERANCE, name
    assert without_timing(killed / "metrics.jsonl") == without_timing(reference / "metrics.jsonl")
    done = {k: json.loads((d / "done.json").read_text()) for k, d in (("reference", reference), ("killed", killed))}
    assert done["killed"]["val_loss"] == done["reference"]["val_loss"] and done["killed"]["steps"] == 10
    assert not [p for p in killed.iterdir() if ".tmp" in p.name]  # no half-written file left behind


@pytest.mark.slow
def test_the_kill_and_the_rerun_left_the_cohort_they_read_untouched(pretraining) -> None:
    assert pretraining["synth_after"] == pretraining["synth_before"]


@pytest.mark.slow
def test_a_stage_gives_the_same_weights_whatever_the_global_random_state(pretraining, tmp_path, monkeypatch) -> None:
    """What a fresh process amounts to: torch seeds its global generator at random when Python starts."""
    cohort = pretraining["killed"].parents[1] / "synth"
    cfg = config.load("smoke", ["synth.pretrain_n=96", "pretrain.epochs=1", "pretrain.batch_size=48"])
    encoders = []
    for state in (1, 2):
        monkeypatch.setenv("FAHR_ARTIFACTS", str(tmp_path / str(state)))
        shutil.copytree(cohort, tmp_path / str(state) / "smoke" / "synth")
        torch.manual_seed(state)
        encoders.append(torch.load(pretrain.run(cfg, progress=False), weights_only=True)["model"])
    assert max_difference(*encoders) == 0.0


# ------------------------------------------------------------------------------------ bad inputs

COLUMNS = ["image_id", "path", "subject_id", "dataset", "split", "age", "sex", "time", "event", "stage", "ecog"]


@pytest.fixture
def cohort(tmp_path) -> Path:
    """A small clinical cohort on disk: eight photos and a valid manifest.csv beside them."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.jpg", quality=90)
        rows.append([f"img{i}", f"p{i}.jpg", f"pt{i // 2}", "clinic", ["train", "val", "test", "train"][i // 2],
                     50.0 + i, "FM"[i % 2], 1.0 + (i // 2) / 2, (i // 2) % 2, 1 + i % 4, i % 3])  # fmt: skip
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "manifest.csv", index=False)
    assert len(manifest.load(tmp_path / "manifest.csv").valid) == 8
    return tmp_path


def edit(folder: Path, row: int, column: str, value) -> Path:
    """The cohort's manifest with one value changed (``row`` counts data rows from 1), as bad.csv."""
    table = pd.read_csv(folder / "manifest.csv", dtype=str)
    table.loc[row - 1, column] = value
    table.to_csv(folder / "bad.csv", index=False)
    return folder / "bad.csv"


@pytest.mark.parametrize(
    "row, column, value, reason",
    [
        (3, "time", "-0.5", "negative survival time"),
        (4, "event", "2", "event not 0 or 1"),
        (5, "age", "250", "age not a number in 0–120 years"),
        (6, "stage", "7", "unknown stage code"),
        (7, "ecog", "9", "unknown ecog code"),
        (2, "image_id", "img0", "duplicate image_id"),
        (2, "split", "test", "subject in more than one split"),  # patient pt0 is in train (row 1) and test
        (8, "path", "absent.jpg", "missing image file"),
    ],
)
def test_an_impossible_value_is_an_error_naming_file_row_column_and_reason(cohort, row, column, value, reason) -> None:
    bad = edit(cohort, row, column, value)
    with pytest.raises(ManifestError) as raised:
        manifest.load(bad)
    where = "subject_id" if reason == "subject in more than one split" else column
    assert f"{bad}, row {row}, column '{where}': {reason}" in str(raised.value)


def test_a_corrupt_photo_is_an_error_naming_file_row_and_reason(cohort) -> None:
    (cohort / "p2.jpg").write_bytes(np.random.default_rng(1).bytes(2000))  # random bytes under a photo's name
    with pytest.raises(ManifestError) as raised:
        manifest.load(cohort / "manifest.csv")
    assert f"{cohort / 'manifest.csv'}, row 3, column 'path': unreadable image" in str(raised.value)


def test_a_truncated_jpeg_is_an_error_naming_file_row_and_reason(cohort) -> None:
    photo = cohort / "p5.jpg"
    photo.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    with pytest.raises(ManifestError, match=r"row 6, column 'path': unreadable image"):
        manifest.load(cohort / "manifest.csv")


def test_a_manifest_csv_cut_inside_a_value_is_an_error_naming_the_row(cohort) -> None:
    text = (cohort / "manifest.csv").read_text()
    (cohort / "cut.csv").write_text(text[: text.rindex(",") - 3])  # the last row ends after its time: no event
    with pytest.raises(ManifestError) as raised:
        manifest.load(cohort / "cut.csv")
    assert f"{cohort / 'cut.csv'}, row 8, column " in str(raised.value)


def test_a_manifest_csv_cut_at_a_comma_is_an_error_naming_the_row(cohort) -> None:
    text = (cohort / "manifest.csv").read_text()
    (cohort / "cut.csv").write_text(text[: text.rindex(",") + 1])  # the last row ends "...,1," : ecog is gone
    with pytest.raises(ManifestError, match=r"cut\.csv, row 8, column 'ecog': the file ends inside this row"):
        manifest.load(cohort / "cut.csv")


def test_a_truncated_parquet_manifest_is_an_error_naming_the_file(cohort) -> None:
    table = manifest.read(cohort / "manifest.csv")
    table.to_parquet(cohort / "manifest.parquet", index=False)
    data = (cohort / "manifest.parquet").read_bytes()
    (cohort / "manifest.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError, match=rf"{cohort / 'manifest.parquet'}: cannot be read as a manifest"):
        manifest.load(cohort / "manifest.parquet")


# ------------------------------------------------------------------------------- nothing lost or overwritten


def shard(*args: str) -> int:
    return cli.main(["shard", "--profile", "smoke", *args])


@pytest.fixture
def shards(cohort, tmp_path, monkeypatch) -> Path:
    """A shard set written from the valid manifest: what a failing run must leave as it was."""
    monkeypatch.setenv("FAHR_ARTIFACTS", str(tmp_path / "artifacts"))
    out = tmp_path / "shards"
    assert shard("--manifest", str(cohort / "manifest.csv"), "--out", str(out), "--maxcount", "4") == 0
    assert len(list(out.glob("*.tar"))) == 2
    return out


@pytest.mark.parametrize(
    "row, column, value", [(3, "time", "-1"), (4, "event", "2"), (5, "age", "250"), (2, "split", "test")]
)
def test_a_failing_shard_run_leaves_the_previous_shards_byte_identical(
    cohort, shards, row, column, value, capsys
) -> None:
    before = files(shards)
    bad = edit(cohort, row, column, value)
    assert shard("--manifest", str(bad), "--out", str(shards), "--maxcount", "4") == 2
    assert f"{bad}, row {row}, column" in capsys.readouterr().err
    assert files(shards) == before
    assert not [p for p in shards.parent.iterdir() if p.name.startswith(".shards")]  # no temporary folder left


def test_a_shard_run_over_a_corrupt_photo_fails_and_keeps_the_previous_shards(cohort, shards, capsys) -> None:
    before = files(shards)
    (cohort / "p2.jpg").write_bytes(b"\xff\xd8 not a photo")
    assert shard("--manifest", str(cohort / "manifest.csv"), "--out", str(shards), "--maxcount", "4") == 2
    assert "row 3, column 'path': unreadable image" in capsys.readouterr().err
    assert files(shards) == before


@pytest.mark.slow
def test_the_command_line_reports_a_bad_manifest_in_one_message_without_a_traceback(cohort, tmp_path) -> None:
    bad = edit(cohort, 4, "event", "2")
    out = subprocess.run(
        [sys.executable, "-m", "fahr.cli", "shard", "--profile", "smoke", "--manifest", str(bad), "--out",
         str(tmp_path / "s")], capture_output=True, text=True, env=env(tmp_path / "artifacts"),
    )  # fmt: skip
    assert f"{bad}, row 4, column 'event': event not 0 or 1" in out.stderr
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_a_manifest_write_that_fails_keeps_the_previous_manifest_and_its_provenance(cohort) -> None:
    cfg = config.load("smoke", {})
    target = cohort / "cohort.parquet"
    manifest.write(manifest.read(cohort / "manifest.csv"), target, cfg, "test")
    before = {p.name: p.read_bytes() for p in (target, provenance.provenance_path(target))}
    broken = manifest.read(cohort / "manifest.csv").assign(age=[1.0, "old", 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    with pytest.raises(Exception, match="age"):  # pyarrow cannot store a column of numbers and text
        manifest.write(broken, target, cfg, "test")
    assert {p.name: p.read_bytes() for p in (target, provenance.provenance_path(target))} == before
    assert sorted(p.name for p in cohort.glob("*cohort*")) == ["cohort.parquet", "cohort.parquet.provenance.json"]
