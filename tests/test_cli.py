from __future__ import annotations

import json
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fahr.cli", *args], capture_output=True, text=True)


def test_help_lists_every_stage_of_the_pipeline() -> None:
    out = run("--help")
    assert out.returncode == 0
    for stage in ("synth", "align", "shard", "pretrain", "finetune-age", "finetune-survival", "predict", "evaluate"):
        assert stage in out.stdout


def test_config_prints_the_resolved_values_and_hash() -> None:
    out = run("config", "--profile", "smoke", "--set", "seed=11")
    assert out.returncode == 0, out.stderr
    values = json.loads(out.stdout)
    assert values["seed"] == 11 and values["profile"] == "smoke" and len(values["config_hash"]) == 12


def test_bad_override_exits_2_with_the_reason() -> None:
    out = run("config", "--profile", "smoke", "--set", "seed=abc")
    assert out.returncode == 2
    assert "seed" in out.stderr and "'abc'" in out.stderr
    out = run("pretrain", "--profile", "smoke", "--set", "nope=1")
    assert out.returncode == 2 and "unknown key 'nope'" in out.stderr


def test_align_stage_aligns_a_folder_and_flags_bad_photos(tmp_path) -> None:
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()).save(photos / "astronaut.jpg")
    Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).save(photos / "hopper.png")
    Image.fromarray(data.coffee()).save(photos / "coffee.jpg")
    (photos / "broken.jpg").write_bytes(b"not a photo")
    out = run("align", str(photos), str(tmp_path / "aligned"), "--profile", "smoke")
    assert out.returncode == 0, out.stderr[-2000:]
    import pandas as pd

    table = pd.read_csv(tmp_path / "aligned" / "align.csv").set_index(
        pd.Index(["astronaut", "broken", "coffee", "hopper"])
    )
    assert table["flag"].to_dict() == {"astronaut": "ok", "broken": "unreadable", "coffee": "no_face", "hopper": "ok"}
    with Image.open(tmp_path / "aligned" / "hopper.jpg") as crop:
        assert crop.size == (112, 112)
    assert (tmp_path / "aligned" / "align.csv.provenance.json").is_file()


def test_shard_stage_packs_a_manifest_into_tar_shards(tmp_path) -> None:
    import pandas as pd
    from PIL import Image

    for i in range(5):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / f"f{i}.png")
    rows = [{"image_id": f"f{i}", "path": f"f{i}.png", "subject_id": f"s{i}", "dataset": "t", "split": "train"}
            for i in range(5)]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    out = run("shard", "--profile", "smoke", "--manifest", str(tmp_path / "manifest.csv"), "--maxcount", "2")
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "shards").glob("*.tar")) == [f"faces-00000{i}.tar" for i in range(3)]


def test_a_relative_artifacts_folder_is_made_absolute_for_every_child(monkeypatch, tmp_path, capsys) -> None:
    """``FAHR_ARTIFACTS=artifacts/real-data fahr book`` from the repository: the chapter kernels run in
    ``notebooks/``, so a relative folder would put their artifacts in ``notebooks/artifacts/...``; the command
    line makes it absolute before any child starts."""
    import os

    from fahr import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAHR_ARTIFACTS", "artifacts/real-data")
    assert cli.main(["config", "--profile", "smoke"]) == 0
    assert os.environ["FAHR_ARTIFACTS"] == str(tmp_path / "artifacts" / "real-data")
