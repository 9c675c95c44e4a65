"""Data loading: the folder dataset, transforms, the two samplers and WebDataset shards, on ~40 tiny photos."""

from __future__ import annotations

import logging
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import webdataset as wds
from PIL import Image
from scipy import stats
from torch.utils.data import DataLoader

from fahr.data.loading import (
    STAGES,
    AgeBalancedSampler,
    EventBatchSampler,
    FaceDataset,
    collate,
    read_image,
    transforms,
)
from fahr.data.shards import ShardDataset, StreamBatches, TrainingStream, shard_loader, write_shards

SIZE = 16
N = 40


@pytest.fixture
def faces(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """40 random PNG photos (the last two 24×20, to be resized) and their manifest with ages and survival."""
    rng = np.random.default_rng(0)
    root = tmp_path / "cohort"
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(N):
        height, width = (24, 20) if i >= N - 2 else (SIZE, SIZE)
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"face{i:03d}.png")
        rows.append(
            {
                "image_id": f"face{i:03d}",
                "path": f"images/face{i:03d}.png",
                "subject_id": f"s{i:03d}",
                "dataset": "tiny",
                "split": "train",
                "age": 20.0 + 1.5 * i,
                "sex": "F" if i % 2 else "M",
                "time": 0.25 * (i + 1),
                "event": int(i % 4 == 0),
            }
        )
    return pd.DataFrame(rows), root


def pixels_of(root: Path, rel: str) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(root / rel).convert("RGB"))).permute(2, 0, 1).float() / 255


def test_face_dataset_returns_float_images_in_unit_range_and_typed_labels(faces):
    df, root = faces
    dataset = FaceDataset(df, root, size=SIZE, label_columns=("age", "time", "event", "sex"))
    item = dataset[4]
    assert len(dataset) == N
    assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert type(item["image"]) is torch.Tensor
    torch.testing.assert_close(item["image"], pixels_of(root, df.path[4]), atol=1e-6, rtol=0)
    assert item["image_id"] == "face004"
    assert item["age"].dtype == torch.float32 and item["age"].item() == pytest.approx(26.0)
    assert item["time"].dtype == torch.float32 and item["time"].item() == pytest.approx(1.25)
    assert item["event"].dtype == torch.bool and item["event"].item() is True
    assert item["sex"] == "M"
    resized = dataset[N - 1]["image"]
    assert resized.shape == (3, SIZE, SIZE) and resized.min() >= 0.0 and resized.max() <= 1.0
    batch = collate([dataset[0], dataset[1]])
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["event"].dtype == torch.bool
    assert batch["image_id"] == ["face000", "face001"]
    df.assign(split=["train"] * 30 + ["test"] * 10).to_csv(root / "manifest.csv", index=False)
    test_split = FaceDataset.from_manifest(root / "manifest.csv", split="test", size=SIZE, label_columns=("age",))
    assert len(test_split) == 10 and test_split[0]["image_id"] == "face030"


def test_face_dataset_refuses_unknown_label_columns_and_missing_events(faces):
    df, root = faces
    with pytest.raises(ValueError, match="stage"):
        FaceDataset(df, root, label_columns=("stage",))
    with pytest.raises(ValueError, match=r"'event' is missing in manifest rows \[3\]"):
        FaceDataset(df.assign(event=[1, 0, None] + [0] * (N - 3)), root, label_columns=("event",))


def test_corrupt_and_missing_photos_are_logged_once_counted_and_skipped(faces, caplog):
    df, root = faces
    (root / df.path[3]).write_bytes(b"this is not a png")
    (root / df.path[7]).unlink()
    dataset = FaceDataset(df, root, size=SIZE, label_columns=("age",))
    loader = DataLoader(dataset, batch_size=8, collate_fn=collate)
    with caplog.at_level(logging.WARNING, logger="fahr.data.loading"):
        for _ in range(2):  # two epochs: still one log line and one failure per file
            seen = [i for batch in loader for i in batch["image_id"]]
            assert seen == [i for i in df.image_id if i not in ("face003", "face007")]
    assert [(f[0], Path(f[1]).name) for f in dataset.failures] == [
        ("face003", "face003.png"),
        ("face007", "face007.png"),
    ]
    assert "unreadable image" in dataset.failures[0][2] and dataset.failures[1][2] == "missing image file"
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2 and "face003.png" in logged[0] and "missing image file" in logged[1]
    assert collate([None, None]) is None


def test_decoded_photos_are_kept_between_epochs_and_augmented_anew_within_the_budget(faces, monkeypatch):
    df, root = faces
    originals = {rel: (root / rel).read_bytes() for rel in df.path}

    def second_epoch(dataset: FaceDataset) -> tuple[torch.Tensor, torch.Tensor]:
        for rel, data in originals.items():
            (root / rel).write_bytes(data)
        out = []
        for epoch in range(2):
            torch.manual_seed(epoch)
            out.append(torch.cat([b["image"] for b in DataLoader(dataset, batch_size=8, collate_fn=collate)]))
            if epoch == 0:  # the photos turn black on disk after the first epoch: only a kept copy shows the old
                for rel in df.path:
                    Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(root / rel)
        return out[0], out[1]

    first, second = second_epoch(
        FaceDataset(df, root, size=SIZE, transform=transforms("finetune", SIZE), keep_decoded=True)
    )
    assert second.abs().sum() > 0 and not torch.equal(first, second)  # the old pixels, newly augmented
    first, second = second_epoch(FaceDataset(df, root, size=SIZE, transform=transforms("finetune", SIZE)))
    assert first.abs().sum() > 0 and second.abs().sum() == 0  # not asked to keep them (evaluation): read anew
    monkeypatch.setattr(FaceDataset, "DECODED_CACHE_BYTES", N * 3 * SIZE * SIZE - 1)  # one byte short: read anew
    first, second = second_epoch(
        FaceDataset(df, root, size=SIZE, transform=transforms("finetune", SIZE), keep_decoded=True)
    )
    assert first.abs().sum() > 0 and second.abs().sum() == 0  # the black photos now on disk


def test_kept_photos_give_the_same_batches_as_reading_them_each_time(faces, monkeypatch):
    df, root = faces
    runs = []
    for budget in (0, 1 << 20):
        monkeypatch.setattr(FaceDataset, "DECODED_CACHE_BYTES", budget)
        dataset = FaceDataset(df, root, size=SIZE, transform=transforms("finetune", SIZE), keep_decoded=True)
        torch.manual_seed(0)
        runs.append(torch.cat([b["image"] for _ in range(3) for b in DataLoader(dataset, 8, collate_fn=collate)]))
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("stage", STAGES)
def test_every_transform_stage_gives_the_requested_size_in_unit_range(faces, stage):
    df, root = faces
    image = read_image(root / df.path[0], SIZE)
    out = transforms(stage, (12, 10))(image)
    assert out.shape == (3, 12, 10) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_eval_transform_is_deterministic_and_training_ones_are_random(faces):
    df, root = faces
    image = read_image(root / df.path[0], SIZE)
    torch.manual_seed(0)
    assert torch.equal(transforms("eval", SIZE)(image), transforms("eval", SIZE)(image))
    pretrain = transforms("pretrain", SIZE)
    assert not torch.equal(pretrain(image), pretrain(image))
    with pytest.raises(ValueError, match="pretrain, finetune, eval"):
        transforms("train", SIZE)


def imbalanced_ages() -> np.ndarray:
    """1000 ages, 10-year bins 20–70 holding 700, 200, 60, 30 and 10 people."""
    rng = np.random.default_rng(1)
    return np.concatenate(
        [rng.uniform(lo, lo + 10, n) for lo, n in ((20, 700), (30, 200), (40, 60), (50, 30), (60, 10))]
    )


def test_age_balanced_sampler_makes_every_age_bin_equally_frequent():
    ages = imbalanced_ages()
    sampler = AgeBalancedSampler(ages, bin_width=10, num_samples=5000, seed=3)
    drawn = list(sampler)
    counts = np.bincount((ages[drawn] // 10).astype(int))[2:7]
    assert len(drawn) == 5000 and len(sampler) == 5000
    assert stats.chisquare(counts).pvalue > 0.01  # uniform over the 5 bins (the natural shares are 70 % … 1 %)
    assert np.all(np.abs(counts / 1000 - 1) < 0.1)
    per_bin = AgeBalancedSampler(ages, bin_width=10, per_bin=50, seed=3)
    drawn = np.array(list(per_bin))
    assert np.bincount((ages[drawn] // 10).astype(int))[2:7].tolist() == [50] * 5
    assert len(set(drawn[ages[drawn] < 30])) == 50  # a large bin gives distinct photos, capped at the target
    assert set(drawn[ages[drawn] >= 60]) == set(np.flatnonzero(ages >= 60))  # a small bin is cycled through
    assert per_bin.bin_lower.tolist() == [20, 30, 40, 50, 60] and per_bin.bin_sizes.tolist() == [700, 200, 60, 30, 10]


def test_age_balanced_sampler_is_reproducible_by_seed_and_differs_between_epochs():
    ages = imbalanced_ages()
    first, again = AgeBalancedSampler(ages, 5, seed=7), AgeBalancedSampler(ages, 5, seed=7)
    epoch0 = list(first)
    assert epoch0 == list(again)
    first.set_epoch(1)
    again.set_epoch(1)
    assert list(first) != epoch0 and list(first) == list(again)
    assert list(AgeBalancedSampler(ages, 5, seed=8)) != epoch0
    with pytest.raises(ValueError, match="missing"):
        AgeBalancedSampler([30.0, float("nan")])


@pytest.mark.parametrize("per_bin", [None, 7])
def test_age_balanced_sampler_gives_ddp_ranks_disjoint_slices_of_one_draw(per_bin):
    ages = imbalanced_ages()
    num_samples = None if per_bin else 1000
    ranks = [AgeBalancedSampler(ages, 10, num_samples, per_bin, seed=5, rank=r, world_size=3) for r in range(3)]
    for sampler in ranks:
        sampler.set_epoch(2)
    draws = [list(sampler) for sampler in ranks]
    whole = ranks[0].global_draw()
    assert [len(d) for d in draws] == [len(ranks[0])] * 3 == [-(-ranks[0].total // 3)] * 3
    for r, draw in enumerate(draws):
        assert draw == whole[r::3].tolist()  # position r, r+3, …: disjoint slices of the same global draw
    with pytest.raises(ValueError, match="rank"):
        AgeBalancedSampler(ages, rank=3, world_size=3)


def check_batches(batches: list[list[int]], events: np.ndarray, batch_size: int, min_events: int) -> Counter:
    for batch in batches:
        assert len(batch) == batch_size and len(set(batch)) == batch_size
        assert events[batch].sum() >= min_events
    return Counter(i for batch in batches for i in batch)


def test_event_batch_sampler_puts_events_in_every_batch_and_uses_every_photo_once():
    events = (np.arange(40) % 7 == 0).astype(int)  # 6 events among 40
    sampler = EventBatchSampler(events, batch_size=8, min_events=1, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5
    assert check_batches(batches, events, 8, 1) == Counter(range(40))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    assert list(EventBatchSampler(events, 8, 1, seed=0)) == batches


def test_event_batch_sampler_pads_or_drops_the_ragged_end():
    events = (np.arange(43) % 5 == 0).astype(int)  # 9 events among 43
    padded = EventBatchSampler(events, batch_size=8, min_events=1, seed=1)
    uses = check_batches(list(padded), events, 8, 1)
    assert len(padded) == 6 and set(uses) == set(range(43)) and sum(uses.values()) == 48
    dropped = EventBatchSampler(events, batch_size=8, min_events=1, drop_last=True, seed=1)
    uses = check_batches(list(dropped), events, 8, 1)
    assert len(dropped) == 5 and len(uses) == 40 and max(uses.values()) == 1


def test_event_batch_sampler_splits_batches_over_ddp_ranks():
    events = (np.arange(40) % 4 == 0).astype(int)
    ranks = [EventBatchSampler(events, 4, min_events=1, seed=2, rank=r, world_size=2) for r in range(2)]
    batches = [list(sampler) for sampler in ranks]
    assert len(batches[0]) == len(batches[1]) == len(ranks[0]) == 5
    assert check_batches(batches[0] + batches[1], events, 4, 1) == Counter(range(40))


def test_event_batch_sampler_refuses_too_few_events():
    events = np.zeros(40, dtype=int)
    events[:4] = 1
    with pytest.raises(ValueError, match="only 4 events among 40 samples, but 5 batches"):
        EventBatchSampler(events, batch_size=8, min_events=1)
    with pytest.raises(ValueError, match="need 10"):
        EventBatchSampler(events, batch_size=20, min_events=5)
    assert len(EventBatchSampler(events, batch_size=10, min_events=1)) == 4


def test_shards_round_trip_to_the_same_ids_labels_and_pixels_as_the_folder(faces, tmp_path):
    df, root = faces
    columns = ("age", "time", "event", "sex")
    shard_set = write_shards(df, root, tmp_path / "shards", maxcount=16, prefix="tiny")
    assert [p.name for p in shard_set.paths] == ["tiny-000000.tar", "tiny-000001.tar", "tiny-000002.tar"]
    assert shard_set.index.groupby("shard").size().tolist() == [16, 16, 8] and shard_set.skipped.empty
    assert (tmp_path / "shards" / "tiny.index.csv").is_file()
    with tarfile.open(shard_set.paths[0]) as tar:
        assert tar.getnames()[:2] == ["face000.json", "face000.png"]
        assert tar.extractfile("face000.png").read() == (root / df.path[0]).read_bytes()  # the bytes as they are
    from_shards = {item["image_id"]: item for item in ShardDataset(tmp_path / "shards", SIZE, label_columns=columns)}
    folder = FaceDataset(df, root, SIZE, label_columns=columns)
    assert sorted(from_shards) == sorted(df.image_id)
    for expected in folder:
        got = from_shards[expected["image_id"]]
        assert torch.equal(got["image"], expected["image"])
        for column in columns:
            assert got[column] == expected[column] if column == "sex" else torch.equal(got[column], expected[column])


def test_write_shards_reports_missing_photos_and_refuses_bad_keys_leaving_old_shards(faces, tmp_path):
    df, root = faces
    (root / df.path[5]).unlink()
    shard_set = write_shards(df, root, tmp_path / "shards", maxcount=100)
    assert shard_set.skipped.image_id.tolist() == ["face005"] and len(shard_set.index) == N - 1
    with pytest.raises(ValueError, match="must be unique"):
        write_shards(df.assign(image_id="same"), root, tmp_path / "shards")
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["faces-000000.tar", "faces.index.csv"]


def test_image_ids_with_dots_and_slashes_as_real_datasets_have_them_round_trip_through_shards(faces, tmp_path):
    df, root = faces
    real = df.assign(image_id="utkface/" + df.image_id + ".jpg")  # dots and slashes: WebDataset cannot key on them
    shards = write_shards(real, root, tmp_path / "shards", maxcount=10).paths
    with tarfile.open(shards[0]) as tar:
        assert all("/" not in name and name.count(".") == 1 for name in tar.getnames())
    assert sorted(item["image_id"] for item in ShardDataset(shards, SIZE)) == sorted(real.image_id)
    streamed = stream_batches(shards, 2, 0, keep=set(real.image_id[:10]))
    assert {i for b in streamed for i in b["image_id"]} == set(real.image_id[:10])


def test_shard_loader_reads_every_photo_once_with_workers_and_splits_ranks(faces, tmp_path, monkeypatch):
    df, root = faces
    shards = write_shards(df, root, tmp_path / "shards", maxcount=10).paths
    loader = shard_loader(shards, batch_size=6, size=SIZE, label_columns=("age",), shuffle_buffer=8, num_workers=2)
    seen = [i for batch in loader for i in batch["image_id"]]
    assert sorted(seen) == sorted(df.image_id) and seen != sorted(seen)
    per_rank = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        per_rank.append({item["image_id"] for item in ShardDataset(shards, SIZE)})
    assert per_rank[0].isdisjoint(per_rank[1]) and per_rank[0] | per_rank[1] == set(df.image_id)


def test_shard_shuffle_is_seeded_and_changes_with_the_epoch(faces, tmp_path):
    df, root = faces
    shards = write_shards(df, root, tmp_path / "shards", maxcount=10).paths

    def order(seed: int, epoch: int) -> list[str]:
        dataset = ShardDataset(shards, SIZE, shuffle_buffer=10, seed=seed)
        dataset.set_epoch(epoch)
        return [item["image_id"] for item in dataset]

    assert order(0, 0) == order(0, 0) and sorted(order(0, 0)) == sorted(df.image_id)
    assert order(0, 1) != order(0, 0) and order(1, 0) != order(0, 0)


def skip_warnings(caught: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in caught if "skipped an unreadable shard or sample" in str(w.message)]


def test_corrupt_shard_members_are_skipped_with_a_warning(faces, tmp_path):
    df, root = faces
    good = (root / df.path[0]).read_bytes()
    broken = tmp_path / "broken-000000.tar"
    with wds.TarWriter(str(broken)) as sink:
        sink.write({"__key__": "a", "png": good, "json": '{"age": 30.0}'})
        sink.write({"__key__": "b", "png": b"\x89PNG broken", "json": '{"age": 31.0}'})
        sink.write({"__key__": "c", "json": '{"age": 32.0}'})  # no image member at all
        sink.write({"__key__": "d", "png": good, "json": '{"age": 33.0}'})
    with pytest.warns(UserWarning, match="skipped an unreadable shard or sample") as caught:
        ids = [item["image_id"] for item in ShardDataset(broken, SIZE, label_columns=("age",))]
    assert ids == ["a", "d"]
    messages = skip_warnings(caught)
    assert len(messages) == 2 and "sample 'b'" in messages[0] and "no image member" in messages[1]


@pytest.mark.parametrize("cut", [0, 100, 700, 5000])
def test_a_truncated_shard_gives_the_samples_before_the_cut_and_a_warning(faces, tmp_path, cut):
    df, root = faces
    whole = write_shards(df, root, tmp_path / "shards", maxcount=N).paths[0]
    truncated = tmp_path / "truncated-000000.tar"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2 + cut])  # at a header, in a member, …
    with pytest.warns(UserWarning, match="skipped an unreadable shard or sample") as caught:
        ids = [item["image_id"] for item in ShardDataset([truncated, whole], SIZE)]
    assert any("truncated shard" in message for message in skip_warnings(caught))
    before_cut = ids[: ids.index("face000", 1)]  # the whole shard follows the truncated one
    assert 0 < len(before_cut) < N and before_cut == df.image_id[: len(before_cut)].tolist()
    assert ids[len(before_cut) :] == df.image_id.tolist()


def stream_batches(shards, steps: int, workers: int, batch_size: int = 5, **kw) -> StreamBatches:
    """A rank's epoch as training reads it: ``TrainingStream`` batches through a DataLoader (``kw``: its options)."""
    kw = {"epoch": 0, **kw}
    return StreamBatches(lambda start: TrainingStream(shards, batch_size, steps, workers=workers, start=start,
                                                      size=SIZE, **kw), workers)  # fmt: skip


def test_training_stream_gives_every_rank_its_steps_and_each_photo_once_per_pass(faces, tmp_path):
    df, root = faces
    shards = write_shards(df, root, tmp_path / "shards", maxcount=10).paths  # 4 shards of 10 photos
    seen = []
    for rank in range(2):
        batches = stream_batches(shards, steps=4, workers=2, rank=rank, world_size=2, label_columns=("age",))
        got = list(batches)
        assert len(batches) == len(got) == 4 and all(b["image"].shape == (5, 3, SIZE, SIZE) for b in got)
        seen += [i for b in got for i in b["image_id"]]
    assert sorted(seen) == sorted(df.image_id)  # 2 ranks × 2 workers, one shard each: one pass, no photo twice
    longer = [i for b in stream_batches(shards, steps=12, workers=0) for i in b["image_id"]]
    assert len(longer) == 60 and set(longer) == set(df.image_id)  # one stream cycles over its shards as needed


def test_training_stream_resumes_mid_epoch_with_the_same_batches_and_augmentation(faces, tmp_path):
    df, root = faces
    shards = write_shards(df, root, tmp_path / "shards", maxcount=10).paths
    kw = {"transform": transforms("finetune", SIZE), "shuffle_buffer": 7, "seed": 3, "label_columns": ("age",)}
    batches = stream_batches(shards, steps=7, workers=2, epoch=1, **kw)
    whole = list(batches)
    for done in (1, 4):
        tail = list(batches.iter_from(done))
        assert len(tail) == 7 - done
        for got, expected in zip(tail, whole[done:], strict=True):
            assert got["image_id"] == expected["image_id"] and torch.equal(got["image"], expected["image"])
    other_epoch = list(stream_batches(shards, steps=7, workers=2, epoch=2, **kw))
    assert [b["image_id"] for b in other_epoch] != [b["image_id"] for b in whole]
    in_process = stream_batches(shards, steps=7, workers=0, epoch=1, **kw)  # no workers: one stream
    iterator = iter(in_process)  # the DataLoader draws its base seed here
    state = torch.get_rng_state()
    first = list(iterator)
    assert torch.equal(torch.get_rng_state(), state)  # augmentation draws leave the training's generator alone
    assert [b["image_id"] for b in list(in_process.iter_from(3))] == [b["image_id"] for b in first[3:]]
    assert torch.equal(list(in_process.iter_from(3))[0]["image"], first[3]["image"])


def test_training_stream_weights_repeat_photos_and_batches_hold_their_events(faces, tmp_path):
    df, root = faces
    shards = write_shards(df, root, tmp_path / "shards", maxcount=10).paths
    only_events = stream_batches(shards, steps=4, workers=0, weight=lambda row: 2.0 * row["event"])
    ids = Counter(i for b in only_events for i in b["image_id"])
    events = set(df.image_id[df.event == 1])
    assert set(ids) == events and set(ids.values()) == {2}  # weight 2: twice each, weight 0: never
    with_events = list(stream_batches(shards, 8, 2, batch_size=8, min_events=2, shuffle_buffer=5,
                                      label_columns=("event",)))  # fmt: skip
    assert len(with_events) == 8 and all(int(b["event"].sum()) >= 2 for b in with_events)


def test_training_stream_refuses_fewer_shards_than_ranks_times_workers(faces, tmp_path):
    df, root = faces
    shards = write_shards(df, root, tmp_path / "shards", maxcount=20).paths
    with pytest.raises(ValueError, match=r"2 shards cannot feed 2 rank\(s\) × 2 DataLoader worker\(s\)"):
        TrainingStream(shards, 5, 4, epoch=0, rank=0, world_size=2, workers=2)


def test_age_bin_weights_make_the_stream_age_balanced_as_the_sampler_is(faces, tmp_path):
    from fahr.train.faceage import BinWeights

    df, root = faces
    weight = BinWeights(df.age.to_numpy(), bin_width=30.0)  # bins of 7, 20 and 13 photos
    per_bin = df.groupby(df.age // 30).age.apply(lambda ages: sum(weight({"age": a}) for a in ages))
    assert np.allclose(per_bin, N / 3) and np.isclose(sum(weight({"age": a}) for a in df.age), N)
    shards = write_shards(df, root, tmp_path / "shards", maxcount=10).paths
    streamed = [b for b in stream_batches(shards, 60, 2, weight=weight, shuffle_buffer=10, label_columns=("age",))]
    shares = pd.Series(torch.cat([b["age"] for b in streamed]).numpy() // 30).value_counts(normalize=True)
    plain = (df.age // 30).value_counts(normalize=True)
    print("age-bin shares, plain", plain.round(2).to_dict(), "balanced stream", shares.round(2).to_dict())
    assert (shares - 1 / 3).abs().max() < 0.06 and (plain - 1 / 3).abs().max() > 0.15


def test_a_data_efficiency_run_draws_stage_two_in_proportion_to_the_people_it_keeps():
    from fahr.core import config
    from fahr.train import faceage

    demo, smoke = config.load("demo"), config.load("smoke")
    assert faceage.balanced_samples(demo) == demo.faceage.balanced_samples == 2000
    assert [faceage.balanced_samples(demo, share) for share in (0.1, 0.3)] == [200, 600]
    assert faceage.balanced_samples(smoke, 0.1) == smoke.faceage.stage2.batch_size  # never less than one batch
