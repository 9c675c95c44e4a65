from __future__ import annotations

import json

import pytest

from fahr.core import config, provenance


def test_atomic_path_replaces_a_file_only_on_success(tmp_path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), provenance.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    with provenance.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".csv"
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_atomic_path_replaces_a_folder_whole(tmp_path) -> None:
    target = tmp_path / "html"
    target.mkdir()
    (target / "old.html").write_text("old")
    with pytest.raises(ValueError), provenance.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.html").write_text("half")
        raise ValueError
    assert [p.name for p in target.iterdir()] == ["old.html"]
    with provenance.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.html").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["html"]


def test_atomic_path_refuses_when_nothing_was_written(tmp_path) -> None:
    with pytest.raises(FileNotFoundError), provenance.atomic_path(tmp_path / "x.json"):
        pass


def test_artifact_writes_a_complete_provenance_record_beside_it(tmp_path) -> None:
    cfg = config.load("smoke", ["seed=5"])
    target = tmp_path / "out.txt"
    with provenance.artifact(target, cfg, "test-stage", rows=3) as tmp:
        assert provenance.read(target) is None
        tmp.write_text("data")
    record = json.loads(provenance.provenance_path(target).read_text())
    assert provenance.read(target) == record
    assert record["stage"] == "test-stage" and record["rows"] == 3
    assert record["config_hash"] == cfg.hash and record["config"]["seed"] == 5 and record["seed"] == 5
    assert record["device"] == "cpu"
    assert set(record["git"]) == {"commit", "dirty"}
    assert record["packages"]["torch"] == "2.14.1"
    assert record["hardware"]["cpu_cores_usable"] >= 1
    assert record["started"] <= record["ended"]


def test_a_failed_rewrite_keeps_the_old_artifact_and_its_record(tmp_path) -> None:
    cfg = config.load("smoke")
    target = tmp_path / "out.txt"
    with provenance.artifact(target, cfg, "stage") as tmp:
        tmp.write_text("first")
    first = provenance.read(target)
    with pytest.raises(KeyboardInterrupt), provenance.artifact(target, cfg, "stage") as tmp:
        tmp.write_text("second, half")
        raise KeyboardInterrupt
    assert target.read_text() == "first"
    assert provenance.read(target) == first


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert provenance.resolve_device("auto") == "cpu"
    with pytest.raises(RuntimeError, match="device=cuda"):
        provenance.resolve_device("cuda")
