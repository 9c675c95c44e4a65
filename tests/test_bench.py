"""`make bench`'s rows for paper scale: the alignment worker scaling, the training readers, the counted FLOPs and the
two Cox fits run and give positive numbers in their units (their values are the benchmark's to report, not a
test's)."""

from __future__ import annotations

from fahr import bench
from fahr.core import config


def test_worker_scaling_reader_and_flop_rows() -> None:
    cfg = config.load("smoke")
    scaling = bench.bench_align_workers(cfg, min_seconds=0.0)
    assert [r["unit"] for r in scaling][-1] == "speed-up" and all(r["value"] > 0 for r in scaling)
    readers = bench.bench_data_formats(cfg, min_seconds=0.0)
    assert [r["benchmark"] for r in readers] == [
        "training reader, loose files",
        "training reader, loose files, decoded photos kept (after the first epoch)",
        "training reader, shards",
    ]
    assert all(r["unit"] == "images/s" and r["value"] > 0 for r in readers)
    flops = bench.bench_flops(cfg, min_seconds=0.0)
    assert len(flops) == 6 and all(r["unit"] == "MFLOP/image" and r["value"] > 0 for r in flops)
    cox_fits = bench.bench_cox(cfg, min_seconds=0.0)
    assert [r["benchmark"] for r in cox_fits] == ["Cox fit, lifelines (cox.fit)", "Cox fit, cox.coefficients"]
    assert all(r["unit"] == "fits/s" and r["value"] > 0 for r in cox_fits)
