"""Privacy scan of the book: no clinical-cohort patient's face is shown individually, no clinical-data path appears.

The rule (DESIGN.md, "The book"): chapters show clinical cohorts as population averages only, and outputs never
name where clinical photos live. ``scan_book(profile)`` checks the rendered HTML and the executed notebooks:

- **Faces** (``scan_images``): every embedded image (files under the HTML, ``data:`` URIs in any text file,
  ``image/png``/``image/jpeg`` outputs and attachments of notebooks) is searched for any clinical photo, shown
  whole at any size from ``MIN_SIDE`` pixels up (thumbnails in a grid, a resized copy, a crop of a figure).
- **Paths** (``scan_text``): every text file is searched for the clinical cohorts' folders (absolute and
  relative to the artifacts folder) and for the file names of their photos.

How a face is found, fast on 2 cores (the smoke book's clinical index has 500 photos):

1. *Find*: every square window of the image at sizes ``MIN_SIDE``·1.12^k, one window per ``1/FIND`` of its side,
   is shrunk to ``FIND``×``FIND`` grey pixels (slightly blurred, zero mean, unit norm) and compared with every
   clinical photo shrunk the same way (through a PCA of the index, ``FIND_DIMS`` components). Local maxima at or
   above ``FIND_MIN`` are kept, then one window per place (non-maximum suppression).
2. *Rank*: from each kept window (largest first; parts of a face already ranked are skipped) a local search in
   colour ``RANK``×``RANK`` descriptors finds the frame of the photo (±1/4 of the side, ±20% in size) and, if it
   is face-like (``FRAME_MIN``), ranks the clinical photos there (±1/8 and ±10%, then ±1/32 and ±3%).
3. *Verify*: the ``TOP`` best-ranked photos (at or above ``RANK_MIN``) are aligned to the window exactly
   (template matching over ±10% in size, then two rounds of ECC, an affine map) and compared pixel by pixel at
   the lower of the two resolutions. ``similarity`` = the normalised cross-correlation of the fine detail (each
   image minus its Gaussian blur of 1 pixel: texture, noise, small features, which one photo has and another
   person's does not) × (1 − the root-mean-square colour difference relative to the photo's contrast). At or
   above ``THRESHOLD`` it is a finding.

Why not the dlib detector of ``fahr.data.align`` for step 1: on the 64-pixel photos of the smoke cohorts its HOG
detector finds 88 faces in 100 even upsampled 4 times with no score cut-off, and a figure shows them smaller
still; sliding windows cover every place and size, so a shown photo is never missed for want of a detection.
Why fine detail and colour: FAHR-Synth people look alike at low resolution (the two closest clinical photos of
different people correlate at 0.99 as 16×16 grey images), and at 50-60 pixels the fine detail of two people of
the same build can still correlate at 0.91, while their colours (hair, skin, background) differ.

Measured on the smoke cohorts (32 face grids of 28 photos, 54-194 px each, 3 of them clinical, PNG as
matplotlib resamples and writes them; the means of 16, 32 and 64 clinical photos):

- the same photo: found 96 times in 96, similarity 0.80-0.99, median 0.90 (``SAME_PHOTO_MIN``);
- another clinical person's or an age-cohort face, at any verified place: at most 0.60 (``OTHER_MAX``);
- a population mean against each of its members: at most 0.35 (``MEAN_MAX``).

``THRESHOLD`` = 0.7 sits between. Time: 1.4 s of one core per such grid; 10 s for the whole smoke book (20
images, its text, and building the index). tests/test_privacy.py keeps these claims true.

The scan is the second line of the book's privacy. The first is by construction: every face image a chapter
shows goes through one writer (``fahr.report.figures.faces``), which refuses an image made from fewer than
``privacy.min_people`` clinical patients whatever it looks like; ``writer_bypasses`` reports chapter code that
draws pixels past it, and ``scan_book`` (so ``fahr publish``) counts those as findings. What the scan finds of a
clinical photo made over as a figure could make it (``recall``: flipped, grey, a colour map, a heat-map overlay,
rotated, cropped, brightened, blurred, recompressed, at 64 to 200 px) is measured on each build's own photos in
the Reproducibility chapter; it is weak against changes of colour, crops and rotation, which is why the first
line does not rely on it. Mirrored copies of the photos and the photos prepare left out are indexed; every
binary file (whatever its suffix) and every ``data:`` URI (any case, base64 or percent-encoded, nested in SVG)
is searched.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import re
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fahr.core import paths
from fahr.core.runtime import single_threaded
from fahr.data import align
from fahr.data.real import prepare
from fahr.data.synth import cohorts as synth

CLINICAL_COHORTS = ("clinical-a", "clinical-b")
FIND, FIND_DIMS, FIND_MIN = 12, 32, 0.8  # step 1: descriptor side (pixels), PCA components, similarity to keep
FIND_BLUR = 0.7  # step 1: Gaussian blur (pixels of the descriptor): a wider peak, so a coarse grid of windows hits
RANK, RANK_DIMS, RANK_MIN = 16, 64, 0.85  # step 2: the same (in colour), and the similarity to be verified
FRAME_MIN = 0.8  # step 2: the similarity of a frame (a face-like window) that is worth ranking
FINE = 64  # step 3: side of the stored photo that a window is verified against (pixels)
TOP = 5  # photos verified per window
MIN_SIDE = 48  # smallest face searched for (pixels)
SCALE_STEP = 1.12  # between window sizes
MIN_STD = 6.0  # grey levels: flatter windows (blank figure background) are skipped
THRESHOLD = 0.7  # similarity of a finding
SAME_PHOTO_MIN, OTHER_MAX, MEAN_MAX = 0.80, 0.60, 0.35  # measured on the smoke cohorts (module docstring)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
# a data URI of any image type, in any letter case, its payload base64 or percent-encoded (an SVG's may hold
# further data URIs: searched again, ``NESTED`` levels deep)
DATA_URI = re.compile(rb"data:image/([\w.+-]+)((?:;[\w=.+-]+)*?)(;base64)?,([^\"'<>()\s]+(?:\s+[A-Za-z0-9+/=%]+)*)",
                      re.IGNORECASE)  # fmt: skip
NESTED = 3
NOTEBOOK_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")


@dataclass(frozen=True)
class Finding:
    """One breach: a clinical face in an image, a clinical-data path in a text file, or chapter code that draws
    pixels past the face writer.

    ``kind``: "face", "path" or "bypass"; ``where``: the file (and the image, line or cell in it); ``what``: the
    clinical ``image_id`` (face), the text found (path) or the call (bypass); ``similarity`` and ``box`` (x, y,
    width, height in pixels of the image): faces only."""

    kind: str
    where: str
    what: str
    similarity: float | None = None
    box: tuple[int, int, int, int] | None = None

    def __str__(self) -> str:
        if self.kind == "face":
            return f"{self.where}: clinical photo {self.what} shown (similarity {self.similarity:.3f}, box {self.box})"
        if self.kind == "bypass":
            return f"{self.where}: draws pixels with {self.what} past the face writer (fahr/report/figures/faces.py)"
        return f"{self.where}: clinical-data path {self.what!r}"


@dataclass(frozen=True)
class ClinicalIndex:
    """Every clinical photo, compactly: ``templates`` [N, FINE, FINE, 3] uint8 (the central square of each photo),
    its ``FIND``-pixel grey and ``RANK``-pixel colour descriptors as coordinates in their PCA ``*_basis``."""

    image_ids: np.ndarray  # [N] str
    templates: np.ndarray  # [N, FINE, FINE, 3] uint8
    find_basis: np.ndarray  # [FIND², FIND_DIMS] float32
    find: np.ndarray  # [N, FIND_DIMS] float32
    rank_basis: np.ndarray  # [RANK² × 3, RANK_DIMS] float32
    rank: np.ndarray  # [N, RANK_DIMS] float32

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True)
class Match:
    """A clinical photo found in an image: its id, the similarity and the box (x, y, width, height) in pixels."""

    image_id: str
    similarity: float
    box: tuple[int, int, int, int]


# ------------------------------------------------------------------------------------------ descriptors


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows made zero-mean and unit-norm (flat rows stay near zero)."""
    x = x - x.mean(axis=-1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)


def _square(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(h, w)
    return rgb[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]


def _shrink(gray: np.ndarray, side: int, blur: float = 0.0) -> np.ndarray:
    small = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)
    return (cv2.GaussianBlur(small, (0, 0), blur) if blur else small).ravel()


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` by torch: numpy's BLAS threads and torch's OpenMP threads slow each other down many times over
    when both are used in turn, so every product here goes through torch."""
    import torch

    return (
        torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        @ torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))
    ).numpy()


def _pca(descriptors: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(basis [D, dims], coordinates [N, dims]) of unit-norm descriptors: a window's dot product with a photo is
    computed in this basis (exact for the part of the photo the basis holds)."""
    import torch

    _, _, vt = torch.linalg.svd(
        torch.from_numpy(np.ascontiguousarray(descriptors, dtype=np.float32)), full_matrices=False
    )
    basis = np.ascontiguousarray(vt[:dims].T.numpy())
    return basis, _matmul(descriptors, basis)


def index_images(images: Iterable[np.ndarray], image_ids: Sequence[str]) -> ClinicalIndex:
    """The index of some photos (RGB uint8 [H, W, 3] each) under their ids."""
    with single_threaded():
        return _index_images(images, image_ids)


def _index_images(images: Iterable[np.ndarray], image_ids: Sequence[str]) -> ClinicalIndex:
    squares = [cv2.resize(_square(np.asarray(im)), (FINE, FINE), interpolation=cv2.INTER_AREA) for im in images]
    if len(squares) != len(image_ids) or not squares:
        raise ValueError(f"need one id per photo and at least one photo, got {len(squares)} and {len(image_ids)}")
    templates = np.stack(squares).astype(np.uint8)
    grays = [_gray(t) for t in templates]
    find_basis, find = _pca(_unit(np.stack([_shrink(g, FIND, FIND_BLUR) for g in grays])), FIND_DIMS)
    rank_basis, rank = _pca(_unit(np.stack([_shrink(t.astype(np.float32), RANK) for t in templates])), RANK_DIMS)
    return ClinicalIndex(np.asarray(image_ids, dtype=str), templates, find_basis, find, rank_basis, rank)


def clinical_tables(profile: str, cohorts: Sequence[str] = CLINICAL_COHORTS) -> list[tuple[Path, pd.DataFrame]]:
    """(folder, manifest) of every clinical cohort the profile has built: FAHR-Synth's and the prepared real ones
    (the aligned crops of real patients; both when both exist)."""
    out = []
    for name in cohorts:
        if (synth.cohort_dir(profile, name) / "manifest.parquet").is_file():
            out.append((synth.cohort_dir(profile, name), synth.load(profile, name)[0]))
        if (prepare.cohort_dir(profile, name) / "manifest.parquet").is_file():
            out.append((prepare.cohort_dir(profile, name), prepare.load(profile, name)))
    if not out:
        raise FileNotFoundError(f"no clinical cohort of profile {profile!r} is built (FAHR-Synth or real)")
    return out


def left_out_photos(profile: str, cohorts: Sequence[str] = CLINICAL_COHORTS) -> list[Path]:
    """The clinical photos that ``fahr prepare`` left out (no face found, several faces, …: still patients' photos,
    listed in each real cohort's ``excluded.csv``) that can be read as images."""
    out = []
    for name in cohorts:
        listed = prepare.cohort_dir(profile, name) / "excluded.csv"
        if listed.is_file():
            for file in pd.read_csv(listed)["file"].dropna():
                if align.is_regular(file) and align.file_sha256(file) is not None:
                    out.append(Path(file))
    return out


def clinical_faces(profile: str, cohorts: Sequence[str] = CLINICAL_COHORTS) -> ClinicalIndex:
    """The index of every photo of the profile's clinical cohorts (``clinical-a`` and ``clinical-b``, FAHR-Synth's
    and the prepared real ones, with the photos prepare left out), each also mirrored (a figure may flip a face)."""

    tables = [table for _, table in clinical_tables(profile, cohorts)]
    photos = [(i, align.read_image(p)) for table in tables for i, p in zip(table["image_id"], table["path"],
                                                                          strict=True)]  # fmt: skip
    for file in left_out_photos(profile, cohorts):
        try:
            photos.append((f"left out by prepare: {file.name}", align.read_image(file)))
        except Exception:  # noqa: S112 - not decodable: nothing a figure could show
            continue
    photos += [(f"{i} (mirrored)", np.ascontiguousarray(im[:, ::-1])) for i, im in photos]
    return index_images((im for _, im in photos), [i for i, _ in photos])


# ------------------------------------------------------------------------------------------ finding faces


def _find(gray: np.ndarray, index: ClinicalIndex, chunk: int = 8192) -> np.ndarray:
    """Step 1: windows [M, 4] (similarity, x, y, side) whose best similarity to a clinical photo is at least
    FIND_MIN and the highest of their 3×3 neighbours of the same size."""
    import torch

    h, w = gray.shape
    basis, coords = torch.from_numpy(index.find_basis), torch.from_numpy(index.find)
    found = []
    side = float(MIN_SIDE)
    while side <= min(h, w):
        scale = FIND / side
        small = cv2.resize(gray, (max(FIND, round(w * scale)), max(FIND, round(h * scale))),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        if FIND_BLUR:
            small = cv2.GaussianBlur(small, (0, 0), FIND_BLUR)
        view = np.lib.stride_tricks.sliding_window_view(small, (FIND, FIND))
        flat = view.reshape(-1, FIND * FIND)
        keep = np.flatnonzero(flat.std(axis=1) > MIN_STD)
        best = np.full(len(flat), -1.0, dtype=np.float32)
        for start in range(0, len(keep), chunk):
            rows = keep[start : start + chunk]
            best[rows] = ((torch.from_numpy(_unit(flat[rows])) @ basis) @ coords.T).max(dim=1).values.numpy()
        best = best.reshape(view.shape[:2])
        peaks = (best >= FIND_MIN) & (best >= cv2.dilate(best, np.ones((3, 3), np.uint8)))  # local maxima only
        ys, xs = np.nonzero(peaks)
        found.append(np.stack([best[ys, xs], xs / scale, ys / scale, np.full(len(xs), side)], axis=1))
        side *= SCALE_STEP
    return np.concatenate(found) if found else np.zeros((0, 4))


def _suppress(windows: np.ndarray, limit: float, smaller: bool) -> np.ndarray:
    """Greedy non-maximum suppression of windows [M, 4] (score, x, y, side): the indices of those kept, best first.
    A window is dropped when it overlaps a better one by more than ``limit`` of their union (``smaller=False``)
    or of the smaller of the two (``smaller=True``)."""
    kept: list[int] = []
    for i in np.argsort(-windows[:, 0], kind="stable"):
        _, x, y, s = windows[i]
        if kept:
            k = windows[kept]
            ix = np.clip(np.minimum(x + s, k[:, 1] + k[:, 3]) - np.maximum(x, k[:, 1]), 0, None)
            iy = np.clip(np.minimum(y + s, k[:, 2] + k[:, 3]) - np.maximum(y, k[:, 2]), 0, None)
            inter = ix * iy
            base = np.minimum(s * s, k[:, 3] ** 2) if smaller else s * s + k[:, 3] ** 2 - inter
            if (inter / base > limit).any():
                continue
        kept.append(int(i))
    return np.asarray(kept, dtype=int)


def _local(image: np.ndarray, x: float, y: float, side: float, index: ClinicalIndex, span: float, zoom: float,
           steps: int = 5) -> tuple[np.ndarray, list[tuple[float, float, float]]]:  # fmt: skip
    """Similarities [windows, photos] (RANK descriptors) of the windows around (x, y, side): offsets up to
    ``span`` of the side and sizes up to ``zoom`` either way, ``steps`` of each."""
    h, w = image.shape[:2]
    margin = (span + zoom) * side
    x0, y0 = max(0, int(x - margin)), max(0, int(y - margin))
    x1, y1 = min(w, int(np.ceil(x + side + margin))), min(h, int(np.ceil(y + side + margin)))
    crop = image[y0:y1, x0:x1]
    descriptors, windows = [], []
    for f in np.linspace(1 - zoom, 1 + zoom, steps):
        s = side * f
        k = RANK / s
        small = cv2.resize(crop, (max(1, round((x1 - x0) * k)), max(1, round((y1 - y0) * k))),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        for dy in np.linspace(-span, span, steps) * side:
            for dx in np.linspace(-span, span, steps) * side:
                wx, wy = x + dx + (side - s) / 2, y + dy + (side - s) / 2
                centre = ((wx - x0 + s / 2) * k - 0.5, (wy - y0 + s / 2) * k - 0.5)
                descriptors.append(cv2.getRectSubPix(small, (RANK, RANK), centre).ravel())
                windows.append((wx, wy, s))
    return _matmul(_matmul(_unit(np.stack(descriptors)), index.rank_basis), index.rank.T), windows


def _frame(image: np.ndarray, x: float, y: float, side: float, index: ClinicalIndex) -> tuple[float, ...]:
    """Step 2a: (similarity, x, y, side) of the window near this one (±1/4 of the side, ±20% in size) that is most
    like any clinical photo: where the frame of a shown photo is, roughly."""
    sims, windows = _local(image, x, y, side, index, 1 / 4, 0.2)
    best = sims.max(axis=1)
    return (float(best.max()), *windows[int(best.argmax())])


def _rank(image: np.ndarray, x: float, y: float, side: float, index: ClinicalIndex, shortlist: int = 10) -> list[tuple]:
    """Step 2b: [(similarity, photo, x, y, side)] of the TOP photos around a frame, each at its best window: a
    local search (±1/8, ±10%) shortlists photos, a fine one around each shortlisted photo's best window
    (±1/32, ±3%) ranks them."""
    sims, windows = _local(image, x, y, side, index, 1 / 8, 0.1)
    where = sims.argmax(axis=0)
    best = sims[where, np.arange(sims.shape[1])]
    starts = {int(where[t]) for t in np.argsort(-best)[:shortlist]}
    fine, fine_windows = zip(*(_local(image, *windows[s], index, 1 / 32, 0.03) for s in sorted(starts)), strict=True)
    sims, windows = np.concatenate(fine), [w for ws in fine_windows for w in ws]
    where = sims.argmax(axis=0)
    best = sims[where, np.arange(sims.shape[1])]
    return [(float(best[t]), int(t), *windows[int(where[t])]) for t in np.argsort(-best)[:TOP]]


def _inside(x: float, y: float, side: float, others: np.ndarray) -> np.ndarray:
    """How much of a square window lies inside each of ``others`` [M, 3+] (x, y, side, …), 0 to 1."""
    if not len(others):
        return np.zeros(0)
    ix = np.clip(np.minimum(x + side, others[:, 0] + others[:, 2]) - np.maximum(x, others[:, 0]), 0, None)
    iy = np.clip(np.minimum(y + side, others[:, 1] + others[:, 2]) - np.maximum(y, others[:, 1]), 0, None)
    return ix * iy / (side * side)


def _iou(x: float, y: float, side: float, others: np.ndarray) -> np.ndarray:
    """Intersection over union of a square window with each of ``others`` [M, 3+] (x, y, side, …)."""
    if not len(others):
        return np.zeros(0)
    ix = np.clip(np.minimum(x + side, others[:, 0] + others[:, 2]) - np.maximum(x, others[:, 0]), 0, None)
    iy = np.clip(np.minimum(y + side, others[:, 1] + others[:, 2]) - np.maximum(y, others[:, 1]), 0, None)
    return ix * iy / (side * side + others[:, 2] ** 2 - ix * iy)


def _bandpass(x: np.ndarray) -> np.ndarray:
    return x - cv2.GaussianBlur(x, (0, 0), 1.0)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12))


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2×3 affine map ``outer ∘ inner``."""
    return (np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]]))[:2]


def similarity(rgb: np.ndarray, x: float, y: float, side: float, template: np.ndarray) -> float:
    """Step 3: how surely the square window (x, y, side) of an RGB image shows this photo (``template``,
    FINE×FINE RGB): once the two are aligned exactly, the normalised cross-correlation of their fine detail times
    (1 − their root-mean-square colour difference relative to the photo's contrast). 1 for the same pixels."""
    h, w = rgb.shape[:2]
    margin = 0.15 * side
    x0, y0 = max(0, int(x - margin)), max(0, int(y - margin))
    x1, y1 = min(w, int(np.ceil(x + side + margin))), min(h, int(np.ceil(y + side + margin)))
    sx, sy = max(1, round((x1 - x0) * FINE / side)), max(1, round((y1 - y0) * FINE / side))
    kx, ky = sx / (x1 - x0), sy / (y1 - y0)
    crop = rgb[y0:y1, x0:x1].astype(np.float32)
    region = cv2.resize(crop, (sx, sy), interpolation=cv2.INTER_AREA if kx < 1 else cv2.INTER_LINEAR)
    template = template.astype(np.float32)
    tg, rg = _gray(template), _gray(region)
    best, warp = -2.0, None
    for f in np.linspace(0.9, 1.1, 11):  # template matching of size and place first; ECC then only refines
        scaled = cv2.resize(rg, (round(sx / f), round(sy / f)), interpolation=cv2.INTER_AREA)
        if scaled.shape[0] < FINE or scaled.shape[1] < FINE:
            continue
        _, top, _, (lx, ly) = cv2.minMaxLoc(cv2.matchTemplate(scaled, tg, cv2.TM_CCOEFF_NORMED))
        if top > best:
            fx, fy = sx / round(sx / f), sy / round(sy / f)
            best, warp = top, np.float32([[fx, 0, fx * lx + 0.5 * fx - 0.5], [0, fy, fy * ly + 0.5 * fy - 0.5]])
    if warp is None:
        return -1.0
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
    try:  # template pixels -> region pixels, first on smoothed images, then sharp
        _, warp = cv2.findTransformECC(tg, rg, warp, cv2.MOTION_AFFINE, criteria, None, 5)
        _, warp = cv2.findTransformECC(tg, rg, warp, cv2.MOTION_AFFINE, criteria, None, 1)
    except cv2.error:  # no convergence: keep the template-matching alignment
        pass
    to_crop = np.float64([[1 / kx, 0, 0.5 / kx - 0.5], [0, 1 / ky, 0.5 / ky - 0.5]])
    template_to_crop = _compose(to_crop, warp.astype(np.float64))
    n = int(max(24, min(FINE, round(side))))  # compare at the lower of the two resolutions
    fine = int(max(2 * n, round(side)))  # sample the crop this finely, then average down to n (no aliasing)
    grid_to_template = np.float64(
        [[FINE / fine, 0, 0.5 * FINE / fine - 0.5], [0, FINE / fine, 0.5 * FINE / fine - 0.5]]
    )
    sampled = cv2.warpAffine(crop, _compose(template_to_crop, grid_to_template), (fine, fine),
                             flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    shown = cv2.resize(sampled, (n, n), interpolation=cv2.INTER_AREA)
    photo = cv2.resize(template, (n, n), interpolation=cv2.INTER_AREA) if n != FINE else template
    colour_error = float(np.sqrt(((shown - photo) ** 2).mean()) / (photo.std() + 1e-6))
    return _ncc(_bandpass(shown), _bandpass(photo)) * max(0.0, 1.0 - colour_error)


def find_faces(rgb: np.ndarray, index: ClinicalIndex, threshold: float = THRESHOLD) -> list[Match]:
    """Every clinical photo shown in an RGB image [H, W, 3], with its similarity and box (best first)."""
    with single_threaded():
        return _find_faces(np.asarray(rgb), index, threshold)


def _find_faces(rgb: np.ndarray, index: ClinicalIndex, threshold: float) -> list[Match]:
    colour = rgb.astype(np.float32)
    found = _find(_gray(rgb), index)
    windows = found[_suppress(found, 0.5, smaller=False)]
    frames = np.zeros((0, 4))  # (x, y, side, similarity) of the places already ranked
    scores: dict[tuple[int, int, int, int], float] = {}
    rows = []  # (similarity, x, y, side, photo) of every verified window
    for score, x, y, side in windows[np.argsort(-windows[:, 3], kind="stable")]:  # largest first
        # a window overlapping or inside a place already ranked, and less like a photo, is that place (a photo
        # holds no second photo)
        better = frames[:, 3] >= score
        if (better & ((_iou(x, y, side, frames) > 0.5) | (_inside(x, y, side, frames) > 0.6))).any():
            continue
        frame_similarity, x, y, side = _frame(colour, x, y, side, index)
        if (
            frame_similarity < FRAME_MIN
            or ((frames[:, 3] >= frame_similarity) & (_iou(x, y, side, frames) > 0.7)).any()
        ):
            continue
        frames = np.vstack([frames, [x, y, side, frame_similarity]])
        ranked = _rank(colour, x, y, side, index)
        for rank_similarity, photo, px, py, ps in ranked:
            key = (photo, round(px), round(py), round(ps))
            if rank_similarity >= RANK_MIN and key not in scores:
                scores[key] = similarity(rgb, px, py, ps, index.templates[photo])
                rows.append((scores[key], px, py, ps, photo))
    if not rows:
        return []
    table = np.array(rows)
    matches = [
        Match(str(index.image_ids[int(photo)]), float(score), (round(x), round(y), round(side), round(side)))
        for score, x, y, side, photo in table[_suppress(table[:, :4], 0.5, smaller=True)]
        if score >= threshold
    ]
    return sorted(matches, key=lambda m: -m.similarity)


# ------------------------------------------------------------------------------------------ the book's images


def decode(data: bytes) -> np.ndarray | None:
    """An image's bytes as RGB uint8 [H, W, 3] on white (transparent parts), or None if it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            rgba = img.convert("RGBA")
    except Exception:  # not an image Pillow reads (SVG, broken file): nothing to scan
        return None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))


def _b64(text: bytes | str) -> bytes | None:
    if isinstance(text, str):
        text = text.encode()
    try:
        return base64.b64decode(re.sub(rb"\s|\\n", b"", text), validate=False)
    except (binascii.Error, ValueError):
        return None


def _is_text(path: Path) -> bool:
    with path.open("rb") as f:
        return b"\0" not in f.read(8192)


def _notebook_images(path: Path, nb: object) -> Iterator[tuple[str, bytes]]:
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    for c, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        for name, attachment in (cell.get("attachments") or {}).items():
            for mime in NOTEBOOK_IMAGES:
                if mime in attachment and (data := _b64("".join(attachment[mime]))):
                    yield f"{path} cell {c} attachment {name}", data
        for o, output in enumerate(cell.get("outputs", [])):
            for mime in NOTEBOOK_IMAGES:
                value = (output.get("data") or {}).get(mime)
                if value and (data := _b64("".join(value) if isinstance(value, list) else value)):
                    yield f"{path} cell {c} output {o} ({mime})", data


def _data_uris(text: bytes, where: str, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every image in ``data:`` URIs of ``text``: base64 or percent-encoded, any letter case; an
    SVG's own data URIs too."""
    for k, uri in enumerate(DATA_URI.finditer(text)):
        payload = urllib.parse.unquote_to_bytes(uri.group(4))
        data = _b64(payload) if uri.group(3) else payload
        if not data:
            continue
        yield f"{where} embedded image {k}", data
        if depth < NESTED and b"data:" in data[:1_000_000].lower():  # an SVG that wraps an image
            yield from _data_uris(data, f"{where} embedded image {k}", depth + 1)


def book_images(*folders: Path) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every image in the folders: every binary file (whatever its suffix: ``decode`` knows an
    image by its content, and skips what is not one), ``data:`` URIs in text files (HTML, SVG, JS, CSS, notebooks'
    HTML outputs; base64 or percent-encoded, any case, nested in SVG) and the image outputs and attachments of
    notebooks."""
    for folder in folders:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            if path.suffix.lower() in IMAGE_SUFFIXES or not _is_text(path):
                yield str(path), path.read_bytes()
                continue
            raw = path.read_bytes()
            yield from _data_uris(raw, str(path))
            if path.suffix == ".ipynb":
                try:
                    notebook = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # not a notebook after all; its data URIs were searched above
                yield from _notebook_images(path, notebook)


def scan_images(images: Iterable[tuple[str, bytes | np.ndarray]], index: ClinicalIndex,
                threshold: float = THRESHOLD) -> list[Finding]:  # fmt: skip
    """A finding for every clinical photo shown in the images, given as (where, PNG/JPEG bytes or RGB array).
    Identical images are searched once and reported at each place they appear."""
    cache: dict[str, list[Match]] = {}
    findings = []
    for where, image in images:
        key = hashlib.sha1(image if isinstance(image, bytes) else np.ascontiguousarray(image).tobytes()).hexdigest()
        if key not in cache:
            rgb = decode(image) if isinstance(image, bytes) else np.asarray(image)
            cache[key] = [] if rgb is None else find_faces(rgb, index, threshold)
        findings += [Finding("face", where, m.image_id, m.similarity, m.box) for m in cache[key]]
    return findings


# ------------------------------------------------------------------------------------------ how well it finds

TRANSFORMS = ("as is, 64 px", "as is, 128 px", "as is, 200 px", "flipped", "grey", "colour map", "heat-map overlay",
              "rotated 4°", "cropped to 90 %", "brightened ×1.3", "blurred 1 px", "JPEG quality 60")  # fmt: skip


def transformed(photo: np.ndarray, how: str) -> np.ndarray:
    """What a figure function could plausibly make of a photo (RGB uint8), for ``recall``."""
    side = {"as is, 64 px": 64, "as is, 200 px": 200}.get(how, 128)
    im = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA if side < photo.shape[0] else cv2.INTER_CUBIC)
    grey = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)
    if how == "flipped":
        im = im[:, ::-1]
    elif how == "grey":
        im = np.repeat(grey[..., None], 3, axis=2)
    elif how == "colour map":
        im = (plt_colormap("viridis")(grey / 255.0)[..., :3] * 255).astype(np.uint8)
    elif how == "heat-map overlay":
        heat = plt_colormap("inferno")(cv2.GaussianBlur(grey, (0, 0), 12) / 255.0)[..., :3] * 255
        im = (0.4 * np.repeat(grey[..., None], 3, axis=2) + 0.6 * heat).astype(np.uint8)
    elif how == "rotated 4°":
        matrix = cv2.getRotationMatrix2D((side / 2, side / 2), 4, 1.0)
        im = cv2.warpAffine(im, matrix, (side, side), borderMode=cv2.BORDER_REPLICATE)
    elif how == "cropped to 90 %":
        cut = round(side * 0.05)
        im = im[cut:-cut, cut:-cut]
    elif how == "brightened ×1.3":
        im = np.clip(im.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)
    elif how == "blurred 1 px":
        im = cv2.GaussianBlur(im, (0, 0), 1.0)
    elif how == "JPEG quality 60":
        ok, encoded = cv2.imencode(".jpg", im[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
        im = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(im)


def plt_colormap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def _on_page(im: np.ndarray) -> bytes:
    """``im`` alone on a white figure with a margin, as PNG bytes (a lone face in a figure)."""
    from PIL import Image

    page = np.full((im.shape[0] + 40, im.shape[1] + 40, 3), 255, np.uint8)
    page[20 : 20 + im.shape[0], 20 : 20 + im.shape[1]] = im
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format="PNG")
    return buffer.getvalue()


def recall(index: ClinicalIndex, clinical: Sequence[tuple[str, np.ndarray]], others: Sequence[np.ndarray],
           transforms: Sequence[str] = TRANSFORMS) -> pd.DataFrame:  # fmt: skip
    """How well the scan finds a clinical photo made over by each of ``transforms`` (each shown alone in a figure):
    per transformation, the share of the ``clinical`` photos (id, RGB) found as themselves, and the share of
    ``others`` (non-clinical faces, made over alike) on which it finds any clinical photo (false positives)."""
    rows = []
    for how in transforms:
        found = 0
        for image_id, photo in clinical:
            hits = scan_images([(how, _on_page(transformed(photo, how)))], index)
            found += any(h.what in (image_id, f"{image_id} (mirrored)") for h in hits)
        false = sum(bool(scan_images([(how, _on_page(transformed(p, how)))], index)) for p in others)
        rows.append({"transformation": how, "clinical photos": len(clinical), "found": found,
                     "recall": found / max(len(clinical), 1), "other faces": len(others), "flagged": false,
                     "false-positive rate": false / max(len(others), 1)})  # fmt: skip
    return pd.DataFrame(rows).set_index("transformation")


def measured_recall(profile: str, photos: int = 10, seed: int = 0) -> pd.DataFrame:
    """``recall`` on the profile's FAHR-Synth cohorts: ``photos`` clinical photos drawn by ``seed`` and as many
    age-cohort faces as the other faces."""
    index = clinical_faces(profile)
    tables = [t for _, t in clinical_tables(profile)]
    table = pd.concat(tables, ignore_index=True)
    rng = np.random.default_rng(seed)
    chosen = table.iloc[rng.choice(len(table), size=min(photos, len(table)), replace=False)]
    clinical = [(i, align.read_image(p)) for i, p in zip(chosen["image_id"], chosen["path"], strict=True)]
    others = []
    for folder, load in ((synth.cohort_dir(profile, "age"), lambda: synth.load(profile, "age")[0]),
                         (prepare.cohort_dir(profile, "age"), lambda: prepare.load(profile, "age"))):  # fmt: skip
        if (folder / "manifest.parquet").is_file():
            age = load()
            drawn = rng.choice(len(age), size=min(photos, len(age)), replace=False)
            others = [align.read_image(p) for p in age["path"].iloc[drawn]]
            break
    return recall(index, clinical, others)


def recall_sentence(table: pd.DataFrame, target: float = 0.99) -> str:
    """A Markdown sentence from ``recall``: what the scan finds, what it misses, what it flags wrongly."""
    weak = [f"{how} ({r:.0%})" for how, r in table["recall"].items() if r < target]
    flagged, others = int(table["flagged"].sum()), int(table["other faces"].sum())
    return (
        f"On {int(table['clinical photos'].iloc[0])} clinical photos of this build the scan finds "
        f"{table['recall'].min():.0%}–{table['recall'].max():.0%} of them, by transformation; "
        + (f"below {target:.0%}: {', '.join(weak)}. " if weak else f"every transformation at least {target:.0%}. ")
        + f"It flagged {flagged} of {others} other faces shown the same ways (false positives). The scan is the "
        "second line: what keeps a patient out of the book is the first, the face writer, which refuses any image "
        "made from too few patients however it looks."
    )


# ------------------------------------------------------------------------------------------ paths in text


def clinical_paths(profile: str, cohorts: Sequence[str] = CLINICAL_COHORTS) -> tuple[set[str], set[str]]:
    """(folders, file names) that betray clinical data: each cohort's folder (absolute, and relative to the
    artifacts folder and to the profile's folder), the folders its photos are in, and the photos' file names."""

    folders, names = set(), set()
    for folder, table in clinical_tables(profile, cohorts):
        folders |= {str(folder), str(folder.resolve()), str(folder.relative_to(paths.artifacts_root())),
                    str(folder.relative_to(paths.profile_dir(profile)))}  # fmt: skip
        photos = [Path(p) for p in table["path"]]
        folders |= {str(p.parent) for p in photos}
        names |= {p.name for p in photos}
    return folders, names


_STOP = frozenset(" \t\r\n\"'<>()[]{},;=|`")


def _token(text: str, start: int, end: int) -> str:
    """The whole path-like word around ``text[start:end]`` (up to spaces, quotes, brackets), as it was written."""
    while start > 0 and text[start - 1] not in _STOP:
        start -= 1
    while end < len(text) and text[end] not in _STOP:
        end += 1
    return re.sub(r"(\\[nrt])+$", "", text[start:end]).rstrip(".:")


def scan_text(folder: Path, profile: str, cohorts: Sequence[str] = CLINICAL_COHORTS) -> list[Finding]:
    """A finding for each text file under ``folder`` and each clinical folder or photo file name in it: ``what``
    is the whole path as written (one finding per file and path, at the line where it first appears)."""
    folders, names = clinical_paths(profile, cohorts)
    suffixes = "|".join(re.escape(s.lstrip(".")) for s in {Path(n).suffix for n in names if Path(n).suffix})
    file_name = re.compile(rf"[\w.\-]+\.(?:{suffixes})\b", re.IGNORECASE) if suffixes else None
    findings = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES):
        if not _is_text(path):
            continue
        text = path.read_text(errors="replace")
        spans = [(m.start(), m.end()) for m in file_name.finditer(text) if m.group(0) in names] if file_name else []
        for needle in folders:
            at = text.find(needle)
            while at >= 0:
                spans.append((at, at + len(needle)))
                at = text.find(needle, at + len(needle))
        first: dict[str, int] = {}
        for start, end in sorted(spans):
            first.setdefault(_token(text, start, end), start)
        for token, at in first.items():
            findings.append(Finding("path", f"{path}:{text.count(chr(10), 0, at) + 1}", token))
    return findings


# ------------------------------------------------------------------------------------------ the book


# what puts pixels on a figure or into an image file: only fahr/report/figures/faces.py may (the first line)
PIXEL_WRITERS = frozenset({"imshow", "figimage", "matshow", "imsave", "OffsetImage", "AnnotationBbox", "BboxImage"})


def pixel_writers(code: str) -> list[tuple[int, str]]:
    """(line, name) of every call in ``code`` that draws pixels past the face writer (IPython magics ignored)."""
    import ast

    plain = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())
    try:
        tree = ast.parse(plain)
    except SyntaxError as err:
        return [(err.lineno or 0, "code that cannot be read")]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in PIXEL_WRITERS or (name == "Image" and "display" in ast.unparse(func)):
                found.append((node.lineno, name))
    return sorted(found)


def writer_bypasses(folder: Path) -> list[Finding]:
    """A finding for every chapter notebook's code under ``folder`` that draws pixels past the face writer: the
    first line of privacy holds only while every face goes through ``fahr.report.figures.faces``."""
    findings = []
    for path in sorted(Path(folder).rglob("*.ipynb")):
        try:
            cells = json.loads(path.read_text()).get("cells", [])
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            continue
        for i, cell in enumerate(cells):
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                for line, name in pixel_writers("".join(cell.get("source", ""))):
                    findings.append(Finding("bypass", f"{path} cell {i} line {line}", name))
    return findings


def book_folders(profile: str) -> list[Path]:
    """What the book shows: the rendered HTML and the executed chapter notebooks."""

    return [paths.html_dir(profile), paths.book_dir(profile) / "chapters"]


def scan_book(profile: str, threshold: float = THRESHOLD) -> list[Finding]:
    """Every finding in the profile's book: chapter code that draws pixels past the face writer, clinical faces in
    its images, clinical paths in its text."""
    folders = [f for f in book_folders(profile) if f.is_dir()]
    if not folders:
        raise FileNotFoundError(
            f"no book to scan for profile {profile!r}: build it first (fahr book --profile {profile})"
        )
    index = clinical_faces(profile)
    findings = [f for folder in folders for f in writer_bypasses(folder)]
    findings += scan_images((item for folder in folders for item in book_images(folder)), index, threshold)
    for folder in folders:
        findings += scan_text(folder, profile)
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fahr.privacy", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", help="the book of artifacts/<PROFILE> (smoke, demo, paper)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="similarity of a face finding")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        findings = scan_book(args.profile, args.threshold)
    except FileNotFoundError as err:  # no book, or its cohorts are not built
        print(f"[privacy] {err}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    seconds = time.perf_counter() - started
    verdict = f"{len(findings)} privacy findings" if findings else "no clinical face or path found"
    print(f"[privacy] {args.profile}: {verdict} ({seconds:.1f} s)", file=sys.stderr if findings else sys.stdout)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
