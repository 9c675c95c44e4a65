"""Face detection and five-point alignment, on real photographs that installed packages ship.

Photos: scikit-image's ``astronaut`` (Eileen Collins, 512×512) and matplotlib's sample ``grace_hopper.jpg``
(512×600). Tolerances, in pixels of the 112×112 crop:

- ``EYE_TOLERANCE`` (3.5 px): eyes re-detected on the crop vs the template. What remains is mostly face shape,
  not alignment error: a least-squares fit of five points cannot put every face on the template exactly (the
  astronaut's wide smile pulls her mouth corners 6-7 px from it, which moves the eyes by ~3 px).
- ``REPEAT_TOLERANCE`` (2 px): eyes re-detected on the crop vs the source eyes carried through the transform,
  i.e. the warp put the pixels where the matrix says, up to the landmark model's own jitter.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import dlib
import numpy as np
import pandas as pd
import pytest
import skimage.data
from conftest import kill_when
from matplotlib import cbook
from PIL import Image

from fahr.data import align

EYE_TOLERANCE = 3.5
REPEAT_TOLERANCE = 2.0
EYES = slice(0, 2)


def _grace_hopper() -> np.ndarray:
    path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return align.read_image(path)


PHOTOS = {"astronaut": skimage.data.astronaut, "grace_hopper": _grace_hopper}


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: load() for name, load in PHOTOS.items()}


@pytest.fixture(scope="module")
def aligned(photos: dict[str, np.ndarray]) -> dict[str, align.AlignResult]:
    return {name: align.align_image(image) for name, image in photos.items()}


def _write_jpeg(image: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=95, **kwargs)
    return path


def test_template_is_the_published_arcface_points_and_scales_with_the_crop() -> None:
    published = [(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041)]
    np.testing.assert_array_equal(align.template(), np.array(published))
    np.testing.assert_allclose(align.template(64), np.array(published) * 64 / 112)


def test_estimate_similarity_recovers_a_known_rotation_scale_and_shift() -> None:
    angle, scale, shift = np.deg2rad(20), 0.7, np.array([5.0, -3.0])
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = align.template()
    dst = src @ linear.T + shift
    expected = np.hstack([linear, shift[:, None]])
    np.testing.assert_allclose(align.estimate_similarity(src, dst), expected, atol=1e-9)


@pytest.mark.parametrize("scale", [1.3, 0.8, 0.2])
def test_warp_puts_a_source_pixel_where_the_transform_sends_it(scale: float) -> None:
    yy, xx = np.mgrid[0:1000, 0:1000]
    spot = np.array([612.0, 377.0])
    blob = 255 * np.exp(-((xx - spot[0]) ** 2 + (yy - spot[1]) ** 2) / (2 * 12.0**2))
    image = np.repeat(blob.astype(np.uint8)[:, :, None], 3, axis=2)
    angle = np.deg2rad(15)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transform = np.hstack([linear, (56 - linear @ spot)[:, None] + np.array([[3.0], [-4.0]])])
    crop = align.warp(image, transform, size=112).astype(np.float64)[:, :, 0]  # 0.2 goes through the pyramid
    weights = crop / crop.sum()
    ys, xs = np.mgrid[0:112, 0:112]
    centroid = np.array([(xs * weights).sum(), (ys * weights).sum()])
    np.testing.assert_allclose(centroid, align.transform_points(spot[None], transform)[0], atol=0.15)


@pytest.mark.parametrize("name", PHOTOS)
def test_exactly_one_face_is_found_and_aligned_in_each_photo(name: str, aligned) -> None:
    result = aligned[name]
    assert (result.flag, result.n_faces) == ("ok", 1)
    assert result.crop.shape == (112, 112, 3) and result.crop.dtype == np.uint8
    assert result.landmarks.shape == (5, 2)
    assert 0 < result.residual < 6


@pytest.mark.parametrize("name", PHOTOS)
def test_eyes_redetected_on_the_crop_land_on_the_template(name: str, aligned) -> None:
    result = aligned[name]
    faces = align.default_detector().detect(result.crop)
    assert len(faces) == 1, "the aligned crop itself must still look like one face to the detector"
    redetected = faces[0].landmarks
    eye_error = np.linalg.norm(redetected[EYES] - align.template()[EYES], axis=1)
    assert eye_error.max() < EYE_TOLERANCE, f"{name}: eye error {eye_error.round(2)} px"
    carried = align.transform_points(result.landmarks, result.transform)
    repeat_error = np.linalg.norm(redetected[EYES] - carried[EYES], axis=1)
    assert repeat_error.max() < REPEAT_TOLERANCE, f"{name}: re-detected vs carried eyes {repeat_error.round(2)} px"


@pytest.mark.parametrize(
    "image",
    [skimage.data.coffee(), np.full((300, 400, 3), 128, np.uint8)],
    ids=["coffee", "flat_grey"],
)
def test_a_photo_without_a_face_is_flagged_no_face(image: np.ndarray) -> None:
    result = align.align_image(image)
    assert (result.flag, result.n_faces, result.crop, result.landmarks) == ("no_face", 0, None, None)
    assert np.isnan(result.residual)


def test_two_faces_side_by_side_are_flagged_and_the_largest_is_aligned(photos, aligned) -> None:
    astronaut, grace = photos["astronaut"], photos["grace_hopper"]  # her face box is ~2.5× wider
    left = np.pad(astronaut, ((0, grace.shape[0] - astronaut.shape[0]), (0, 0), (0, 0)), mode="edge")
    image = np.concatenate([left, grace], axis=1)
    result = align.align_image(image)
    assert (result.flag, result.n_faces) == ("multiple_faces", 2)
    assert len(align.FaceDetector(min_score=0.0).detect(image)) == 3, "HOG alone also takes her mission patch"
    assert (result.landmarks[:, 0] > left.shape[1]).all(), "the largest face (Grace Hopper, right half) is aligned"
    crop = result.crop.astype(np.float64)
    assert np.abs(crop - aligned["grace_hopper"].crop).mean() < 0.5 * np.abs(crop - aligned["astronaut"].crop).mean()


def test_small_photos_are_enlarged_for_the_detector(photos) -> None:
    small = np.asarray(Image.fromarray(photos["grace_hopper"]).resize((128, 150), Image.Resampling.LANCZOS))
    assert len(dlib.get_frontal_face_detector()(small, 0)) == 0, "HOG alone misses a face this small"
    assert align.align_image(small).flag == "ok"


def test_large_photos_are_shrunk_for_the_detector_and_still_align(photos) -> None:
    grace = photos["grace_hopper"]
    large = np.asarray(Image.fromarray(grace).resize((2048, 2400), Image.Resampling.BICUBIC))  # 4×, over max_side
    result = align.align_image(large)
    assert (result.flag, result.n_faces) == ("ok", 1)
    redetected = align.default_detector().detect(result.crop)[0].landmarks
    assert np.linalg.norm(redetected[EYES] - align.template()[EYES], axis=1).max() < EYE_TOLERANCE


def test_grey_and_rgba_photos_are_accepted_and_float_images_refused(photos) -> None:
    grace = photos["grace_hopper"]
    assert align.align_image(grace.mean(axis=2).astype(np.uint8)).flag == "ok"
    assert align.align_image(np.dstack([grace, np.full(grace.shape[:2], 255, np.uint8)])).flag == "ok"
    with pytest.raises(ValueError, match="uint8"):
        align.align_image(grace / 255.0)


def test_output_size_parameter_gives_smaller_crops_on_the_scaled_template(photos, aligned) -> None:
    result = align.align_image(photos["grace_hopper"], size=64)
    assert result.crop.shape == (64, 64, 3)
    full = aligned["grace_hopper"]
    np.testing.assert_allclose(result.transform, full.transform * 64 / 112, atol=1e-9)
    np.testing.assert_allclose(result.residual, full.residual * 64 / 112, rtol=1e-9)
    faces = align.default_detector().detect(result.crop)  # enlarged 8× for HOG
    eye_error = np.linalg.norm(faces[0].landmarks[EYES] - align.template(64)[EYES], axis=1)
    assert eye_error.max() < EYE_TOLERANCE * 64 / 112, f"eye error {eye_error.round(2)} px of 64"


def test_exif_rotated_photo_is_read_upright(tmp_path: Path, photos) -> None:
    sideways = np.ascontiguousarray(np.rot90(photos["grace_hopper"]))  # stored rotated, tagged "rotate 90° CW"
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _write_jpeg(sideways, tmp_path / "phone.jpg", exif=exif)
    assert align.read_image(path).shape == photos["grace_hopper"].shape
    assert align.align_file(path).flag == "ok"


def _grey(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float64) @ [0.299, 0.587, 0.114]).round()


def test_a_16_bit_greyscale_portrait_is_read_at_its_brightness_and_aligned(tmp_path: Path, photos) -> None:
    """A scanner's or medical camera's 16-bit grey PNG: Pillow's own RGB conversion clips it to white."""
    grey = _grey(photos["grace_hopper"])
    path = tmp_path / "portrait16.png"
    Image.fromarray((grey * 257).astype(np.uint16)).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")  # really more than 8 bits
    rgb = align.read_image(path)
    assert rgb.shape == (*grey.shape, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb[..., 0].astype(float) - grey).max() <= 1.0
    assert align.align_file(path).flag == "ok"


def test_an_exif_rotated_8_bit_greyscale_photo_is_read_upright_and_aligned(tmp_path: Path, photos) -> None:
    grey = _grey(photos["grace_hopper"]).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated 90° clockwise: "rotate 270° CW" to view
    path = tmp_path / "grey.jpg"
    Image.fromarray(np.ascontiguousarray(np.rot90(grey, k=-1))).save(path, format="JPEG", quality=95, exif=exif)
    assert align.read_image(path).shape == (*grey.shape, 3)
    assert align.align_file(path).flag == "ok"


def test_a_floating_point_photo_is_stretched_to_8_bits(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.linspace(-1.0, 3.0, 64 * 32, dtype=np.float32).reshape(32, 64)).save(path)
    rgb = align.read_image(path)
    assert rgb.min() == 0 and rgb.max() == 255 and rgb.shape == (32, 64, 3)


def test_folder_run_flags_bad_files_and_carries_on(tmp_path: Path, photos) -> None:
    src, dst = tmp_path / "photos", tmp_path / "aligned"
    Image.fromarray(photos["astronaut"]).save(_dir(src) / "astronaut.png")
    good = _write_jpeg(photos["grace_hopper"], src / "people" / "grace.jpg")
    (src / "corrupt.jpg").write_bytes(good.read_bytes()[:2000])  # a truncated download
    (src / "garbage.png").write_bytes(b"not an image at all" * 50)
    _write_jpeg(skimage.data.coffee(), src / "coffee.jpg")
    (src / "notes.txt").write_text("ignored: not a photo extension")

    table = align.align_folder(src, dst, quality=90, progress=False).set_index("path")
    flags = {Path(p).relative_to(src).as_posix(): f for p, f in table["flag"].items()}
    assert flags == {
        "astronaut.png": "ok",
        "coffee.jpg": "no_face",
        "corrupt.jpg": "unreadable",
        "garbage.png": "unreadable",
        "people/grace.jpg": "ok",
    }
    assert list(table.columns) == ["aligned_path", "flag", "n_faces", "residual", "source_sha256"]
    assert table.loc[str(good), "source_sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    written = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert written == ["align.journal.jsonl", "astronaut.jpg", "people/grace.jpg"], "crops, same names, a journal"
    for path in table["aligned_path"].dropna():
        with Image.open(path) as img:
            assert (img.format, img.size, img.mode) == ("JPEG", (112, 112), "RGB")
    assert table["aligned_path"].isna().sum() == 3


def test_missing_file_is_flagged_unreadable_and_the_run_carries_on(tmp_path: Path, photos) -> None:
    good = _write_jpeg(photos["grace_hopper"], tmp_path / "in" / "grace.jpg")
    missing = tmp_path / "in" / "gone.jpg"
    assert align.align_file(missing).flag == "unreadable"
    table = align.align_paths([missing, good], tmp_path / "out", size=64, progress=False)
    assert table["flag"].tolist() == ["unreadable", "ok"]
    assert table["aligned_path"].tolist() == [None, str(tmp_path / "out" / "grace.jpg")]
    with Image.open(tmp_path / "out" / "grace.jpg") as img:
        assert img.size == (64, 64)


def test_two_photos_that_would_write_the_same_crop_are_refused_before_any_work(tmp_path: Path, photos) -> None:
    first = _write_jpeg(photos["grace_hopper"], tmp_path / "in" / "face.jpg")
    second = tmp_path / "in" / "face.png"
    Image.fromarray(photos["astronaut"]).save(second)
    with pytest.raises(ValueError, match="would both be written"):
        align.align_paths([first, second], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


KILL_JOB = """
import sys
from pathlib import Path
from fahr.data import align
align.align_paths(sorted(Path(sys.argv[1]).glob("*")), Path(sys.argv[2]), progress=False, workers=2)
"""


def test_two_workers_align_like_one_and_a_killed_run_resumes_without_redoing_a_photo(tmp_path: Path, photos) -> None:
    src = _dir(tmp_path / "photos")
    for i in range(60):
        if i % 10 == 9:
            _write_jpeg(skimage.data.coffee(), src / f"p{i:02d}.jpg")  # no face: journaled too
        else:
            _write_jpeg(photos["astronaut" if i % 2 else "grace_hopper"], src / f"p{i:02d}.jpg")
    sources = sorted(src.glob("*"))
    one = align.align_paths(sources, tmp_path / "one", progress=False, workers=1)

    killed = tmp_path / "killed"
    job = subprocess.Popen([sys.executable, "-c", KILL_JOB, str(src), str(killed)], stderr=subprocess.PIPE, text=True)
    journal = killed / align.JOURNAL
    kill_when(job, lambda: journal.is_file() and journal.read_text().count("\n") >= 5, "5 photos aligned", 0.005)
    time.sleep(1.0)  # the pool's workers notice that the run is gone (they look every 0.2 s) and end
    settled = {p: p.stat().st_mtime_ns for p in killed.glob("*.jpg")}
    time.sleep(0.5)
    assert settled == {p: p.stat().st_mtime_ns for p in killed.glob("*.jpg")}  # no worker left writing crops
    records = [json.loads(line) for line in journal.read_text().splitlines() if line.endswith("}")]
    crops = {r["aligned_path"]: Path(r["aligned_path"]).stat().st_mtime_ns for r in records if r["aligned_path"]}
    assert 5 <= len(records) < 60 and crops  # killed mid-way

    resumed = align.align_paths(sources, killed, progress=False, workers=2)
    assert all(Path(crop).stat().st_mtime_ns == mtime for crop, mtime in crops.items())  # not redone
    assert len(journal.read_text().splitlines()) == 60  # each photo journaled once: none aligned twice
    pd.testing.assert_series_equal(resumed["flag"], one["flag"])
    assert np.allclose(resumed["residual"].astype(float), one["residual"].astype(float), equal_nan=True)
    assert (resumed["flag"] == "ok").sum() == 54 and not list(killed.glob(".*"))  # no half-written crop left
    for a, b in zip(resumed["aligned_path"].dropna(), one["aligned_path"].dropna(), strict=True):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
