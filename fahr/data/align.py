"""Face detection and five-point similarity alignment to 112×112 crops (the ArcFace/InsightFace convention).

Every photo goes through the same three steps: find the face (dlib's HOG frontal face detector), place five
landmarks on it (both eye centres, the nose tip, both mouth corners, from dlib's 68-point shape predictor), and
warp the photo with the similarity transform (rotation, uniform scale, translation) that best maps those five
points onto a fixed template. Crops made this way put every face's eyes, nose and mouth on the same pixels,
which is what the MAE encoder and the FaceAge and FaceSurvival heads expect.

Why this detector. It must install from a package registry and run offline, on CPU, with the pinned torch:

- dlib's HOG detector needs no weights at all, and the 68-point predictor ships inside the
  ``face_recognition_models`` package, so nothing is downloaded at run time. Detection, landmarks and warp
  take about 30 ms for a 512×600 photo on one CPU core.
- dlib's own 5-point model (same package) gives two corners of each eye and the base of the nose: it has no
  mouth corners, so it cannot feed the standard five-point template.
- OpenCV's Haar cascades give boxes but no landmarks, so they cannot align.
- MTCNN (``facenet-pytorch``) gives the five points directly, but pins an old torch (2.2) that the project's
  pinned torch excludes; the ``mtcnn`` package needs TensorFlow; InsightFace's RetinaFace fetches its weights
  from the internet on first use.
- dlib's CNN (MMOD) detector also ships in ``face_recognition_models`` and copes better with profile faces,
  but takes about 2 s for a 512×512 photo on CPU (some 80 times slower); the datasets here (FAHR-Synth,
  UTKFace, APPA-REAL, clinical portraits) are near-frontal, where the HOG detector is reliable.

HOG finds faces of about 80 px and more; smaller photos are enlarged for the detector (``min_side``) and very
large ones shrunk (``max_side``), while the landmarks are always placed on the photo itself. Detections scoring
under ``min_score`` are dropped (on scikit-image's astronaut photo the mission patch scores 0.03-0.15; the faces
in the tests, aligned crops included, score 0.9-1.5).

Borders: where the crop reaches outside the photo, edge pixels are replicated (``cv2.BORDER_REPLICATE``)
rather than filled with black, so a face near the photo's edge or a tilted head does not bring a sharp
artificial corner that a model could learn as a cue of framing or pose.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import multiprocessing
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from skimage.transform import SimilarityTransform
from tqdm import tqdm

from fahr.core.provenance import atomic_path, journal_writer, read_journal
from fahr.data.photo import read_rgb

TEMPLATE_SIZE = 112
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],  # left eye centre (the eye on the left of the image)
        [73.5318, 51.5014],  # right eye centre
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # left mouth corner
        [70.7299, 92.2041],  # right mouth corner
    ]
)  # [5, 2] (x, y) in pixels of a 112×112 crop, as published with ArcFace / InsightFace
# ok: one face, aligned; multiple_faces: the largest aligned; no_face; unreadable: missing or not an image;
# not_a_file: a folder, FIFO, socket or device (never opened: reading a FIFO would wait for ever); too_small: a
# side under MIN_PHOTO_SIDE pixels (a 1×4000 strip has no face to find, and would break the detector's resize)
FLAGS = ("ok", "no_face", "multiple_faces", "unreadable", "not_a_file", "too_small")
MIN_PHOTO_SIDE = 16
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# Indices into dlib's 68-point (iBUG 300-W) layout.
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP = 30
_MOUTH_LEFT, _MOUTH_RIGHT = 48, 54


def template(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The five template points for a ``size``×``size`` crop (the 112 template scaled), [5, 2] in pixels."""
    return TEMPLATE_112 * (size / TEMPLATE_SIZE)


def models_dir() -> Path:
    """The folder of dlib model files shipped by ``face_recognition_models`` (found without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("face_recognition_models is not installed; it is a dependency (make setup)")
    return Path(spec.submodule_search_locations[0]) / "models"


@functools.cache
def _hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def _shape_predictor():
    import dlib

    path = models_dir() / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall face_recognition_models")
    return dlib.shape_predictor(str(path))


@dataclass(frozen=True)
class Face:
    """One detected face: its box (left, top, right, bottom), five landmarks [5, 2] and dlib's 68 points [68, 2]
    (iBUG 300-W order, None when not kept), in source pixels."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray
    points: np.ndarray | None = None

    @property
    def area(self) -> int:
        """Box area in square pixels."""
        left, top, right, bottom = self.box
        return (right - left) * (bottom - top)


class FaceDetector:
    """dlib HOG face detector plus 68-point landmarks reduced to the five alignment points.

    The dlib models load on the first ``detect`` call and are shared by every instance.
    """

    def __init__(self, min_score: float = 0.3, min_side: int = 320, max_side: int = 1280) -> None:
        self.min_score = min_score
        self.min_side = min_side
        self.max_side = max_side

    def _upsample_times(self, shape: tuple[int, ...]) -> int:
        """How many times dlib doubles the photo so that its shorter side reaches ``min_side`` (at most 3)."""
        times, short = 0, min(shape[:2])
        while short * 2**times < self.min_side and times < 3:
            times += 1
        return times

    def _boxes(self, image: np.ndarray) -> list[tuple[object, float]]:
        """dlib rectangles (in ``image`` pixels) and scores of the faces HOG finds."""
        import dlib

        h, w = image.shape[:2]
        shrink = min(1.0, self.max_side / max(h, w))
        if shrink < 1.0:  # detect on a smaller copy, then map the boxes back
            small = cv2.resize(image, (round(w * shrink), round(h * shrink)), interpolation=cv2.INTER_AREA)
            rects, scores, _ = _hog_detector().run(small, 0, 0.0)
            rects = [
                dlib.rectangle(
                    round(r.left() / shrink),
                    round(r.top() / shrink),
                    round(r.right() / shrink),
                    round(r.bottom() / shrink),
                )
                for r in rects
            ]
        else:
            rects, scores, _ = _hog_detector().run(image, self._upsample_times(image.shape), 0.0)
        return [(r, s) for r, s in zip(rects, scores, strict=True) if s >= self.min_score]

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 image [H, W, 3], largest box first."""
        image = _as_rgb(image)
        faces = []
        for rect, score in self._boxes(image):
            shape = _shape_predictor()(image, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)  # [68, 2]
            five = np.stack(
                [
                    points[_LEFT_EYE].mean(axis=0),
                    points[_RIGHT_EYE].mean(axis=0),
                    points[_NOSE_TIP],
                    points[_MOUTH_LEFT],
                    points[_MOUTH_RIGHT],
                ]
            )  # [5, 2]
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            faces.append(Face(box=box, score=float(score), landmarks=five, points=points))
        return sorted(faces, key=lambda f: f.area, reverse=True)


@functools.cache
def default_detector() -> FaceDetector:
    """The shared detector with default settings."""
    return FaceDetector()


# Where HOG puts the face box on a 112×112 crop aligned to the template: the median box (left, top, right, bottom)
# it found on 49 of 60 FAHR-Synth crops (SD 3-6 px per side). Used when it finds no face on a crop.
CROP_BOX_112 = (13, 31, 91, 100)
# A face found on a crop is the aligned one when its five points lie, on average, within this share of the
# template's eye distance of the template's points (FAHR-Synth crops: 4 px at 112, 0.12 of the eye distance).
CROP_MATCH = 0.3


def crop_landmarks(crops: Sequence[np.ndarray], detector: FaceDetector | None = None) -> np.ndarray:
    """dlib's 68 points ``[N, 68, 2]`` (x, y pixels of each crop) on aligned crops (RGB uint8 ``[H, W, 3]``): from
    the face HOG finds where alignment put it (its five points nearest the template, within ``CROP_MATCH``), or,
    where it finds none there, from the box where alignment puts every face (``CROP_BOX_112`` scaled). For the
    makeup of ``fahr.data.perturb`` and the facial regions of
    ``fahr.explain.regions`` on real photos, which carry no per-pixel region map."""
    return located_landmarks(crops, detector)[0]


def located_landmarks(
    crops: Sequence[np.ndarray], detector: FaceDetector | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``crop_landmarks`` and, per crop, whether HOG found the face (True) or its points were placed in the
    alignment box (False), for a chapter to say how many faces its regions followed."""
    import dlib

    detector = detector or default_detector()
    out, found = [], []
    for crop in crops:
        image = _as_rgb(np.asarray(crop))
        target = template(image.shape[0])
        faces = detector.detect(image)
        distance = [float(np.linalg.norm(f.landmarks - target, axis=1).mean()) for f in faces]
        found.append(bool(faces) and min(distance) <= CROP_MATCH * float(np.linalg.norm(target[1] - target[0])))
        if found[-1]:
            out.append(faces[int(np.argmin(distance))].points)  # the face alignment put on the template
            continue
        scale = image.shape[0] / TEMPLATE_SIZE
        rect = dlib.rectangle(*(round(v * scale) for v in CROP_BOX_112))
        out.append(np.array([(p.x, p.y) for p in _shape_predictor()(image, rect).parts()], dtype=np.float64))
    return (np.stack(out) if out else np.zeros((0, 68, 2))), np.array(found, dtype=bool)


def file_landmarks(paths: Sequence[str | os.PathLike], size: int) -> tuple[np.ndarray, np.ndarray]:
    """``located_landmarks`` of aligned crop files: the points in pixels of the crops resized to ``size``×``size``
    (the size the models read), and whether HOG found each face."""
    crops = [read_image(p) for p in paths]
    points, found = located_landmarks(crops)
    scale = np.array([[size / c.shape[1], size / c.shape[0]] for c in crops]).reshape(-1, 1, 2)
    return points * scale, found


def landmarks_sentence(found: np.ndarray, what: str) -> str:
    """How many of the crops' landmarks were found on the face (``located_landmarks``), for a chapter's text."""
    placed = int((~np.asarray(found, dtype=bool)).sum())
    text = f"dlib's HOG detector found the face on {len(found) - placed} of {len(found)} {what}"
    if not placed:
        return text + "."
    return text + (f"; on the other {placed} the 68 points were placed in the box where alignment puts every face, "
                   "so their regions follow an average face there.")  # fmt: skip


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 [H, W, 3] view of a grey, RGB or RGBA uint8 image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}; convert with skimage.util.img_as_ubyte")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an image of shape [H, W], [H, W, 3] or [H, W, 4], got {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


def estimate_similarity(src_points: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama, by scikit-image) mapping ``src_points`` onto ``dst_points``.

    Both are [N, 2] (x, y) pixels; returns the 2×3 matrix that ``cv2.warpAffine`` takes.
    """
    src = np.asarray(src_points, dtype=np.float64)
    dst = np.asarray(dst_points, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"expected two [N, 2] point arrays with N >= 2, got {src.shape} and {dst.shape}")
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(tform)
    else:  # pragma: no cover - older scikit-image
        tform = SimilarityTransform()
        ok = tform.estimate(src, dst)
    if not ok:
        raise ValueError(f"no similarity transform fits these points (degenerate?): {src.tolist()}")
    return tform.params[:2].copy()  # [2, 3]


def transform_points(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine matrix to [N, 2] points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ transform[:, :2].T + transform[:, 2]


def warp(image: np.ndarray, transform: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The ``size``×``size`` crop of ``image`` under a 2×3 ``transform`` (bilinear, edge pixels replicated).

    Strong reductions are first halved with a Gaussian pyramid (``cv2.pyrDown``) so the crop does not alias.
    """
    transform = np.array(transform, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    while scale < 0.5 and min(image.shape[:2]) >= 2 * size:
        image = cv2.pyrDown(image)  # pixel (x, y) of the half image sits at (2x, 2y) of the full one
        transform[:, :2] *= 2.0
        scale *= 2.0
    return cv2.warpAffine(image, transform, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class AlignResult:
    """What alignment made of one photo.

    ``crop``: uint8 [size, size, 3] or None; ``landmarks``: the five points [5, 2] in the source photo (None if no
    face); ``flag``: one of ``FLAGS``; ``residual``: mean distance, in crop pixels, between the warped landmarks
    and the template (NaN without a face); ``transform``: the 2×3 source-to-crop matrix.
    """

    crop: np.ndarray | None
    landmarks: np.ndarray | None
    n_faces: int
    flag: str
    residual: float
    transform: np.ndarray | None = None


def align_image(image: np.ndarray, size: int = TEMPLATE_SIZE, detector: FaceDetector | None = None) -> AlignResult:
    """Detect the face in an RGB uint8 photo and align it to the five-point template; the largest if several."""
    image = _as_rgb(image)
    faces = (detector or default_detector()).detect(image)
    if not faces:
        return AlignResult(crop=None, landmarks=None, n_faces=0, flag="no_face", residual=float("nan"))
    target = template(size)
    landmarks = faces[0].landmarks
    transform = estimate_similarity(landmarks, target)
    residual = float(np.linalg.norm(transform_points(landmarks, transform) - target, axis=1).mean())
    return AlignResult(
        crop=warp(image, transform, size),
        landmarks=landmarks,
        n_faces=len(faces),
        flag="ok" if len(faces) == 1 else "multiple_faces",
        residual=residual,
        transform=transform,
    )


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A photo as RGB uint8 [H, W, 3] as a viewer shows it (``fahr.data.photo.read_rgb``); raises if missing or
    corrupt."""
    return read_rgb(path)


def is_regular(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file (after symlinks): never opens it, so a FIFO cannot block the caller."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def read_source(path: str | os.PathLike) -> tuple[bytes | None, str | None]:
    """A photo's bytes, or None and the flag that says why not (``not_a_file``: a folder, FIFO or device, never
    opened; ``unreadable``: missing or refused)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None, "unreadable"
    if not stat.S_ISREG(mode):
        return None, "not_a_file"
    try:
        return Path(path).read_bytes(), None
    except OSError:
        return None, "unreadable"


def _failed(flag: str) -> AlignResult:
    return AlignResult(crop=None, landmarks=None, n_faces=0, flag=flag, residual=float("nan"))


def align_bytes(data: bytes, size: int = TEMPLATE_SIZE, detector: FaceDetector | None = None) -> AlignResult:
    """``align_image`` on a photo's bytes: flag ``unreadable`` if they do not decode, ``too_small`` if a side is
    under ``MIN_PHOTO_SIDE`` pixels."""
    try:
        image = read_rgb(data)
    except Exception:  # any failure to decode is a bad photo, not a bug: Pillow raises many kinds
        return _failed("unreadable")
    if min(image.shape[:2]) < MIN_PHOTO_SIDE:
        return _failed("too_small")
    return align_image(image, size=size, detector=detector)


def align_file(path: str | os.PathLike, size: int = TEMPLATE_SIZE, detector: FaceDetector | None = None) -> AlignResult:
    """``align_bytes`` on a file; a missing, special (``not_a_file``) or undecodable file is a flag, not an error."""
    data, flag = read_source(path)
    return _failed(flag) if data is None else align_bytes(data, size=size, detector=detector)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> str | None:
    """The SHA-256 of a regular file's bytes (None if it is not one, or unreadable)."""
    data, _ = read_source(path)
    return None if data is None else sha256(data)


def _jpeg(crop: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _write_bytes(data: bytes, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


JOURNAL = "align.journal.jsonl"
# Fresh worker processes: a fork of a process whose OpenCV or torch threads hold a lock can hang in the child.
POOL_CONTEXT = multiprocessing.get_context("forkserver")
POOL_CONTEXT.set_forkserver_preload(["fahr.data.align_server"])  # models loaded once, the workers fork from it


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for alignment; one that dies (killed, out of memory) fails the run with BrokenProcessPool
    instead of being replaced for ever."""
    return ProcessPoolExecutor(workers, mp_context=POOL_CONTEXT, initializer=_start_worker, initargs=(os.getpid(),))


def _chunk(jobs: int, workers: int) -> int:
    return max(1, min(16, jobs // (8 * workers)))


COLUMNS = ["path", "aligned_path", "flag", "n_faces", "residual", "source_sha256"]


def default_workers() -> int:
    """Every core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _stamp(path: Path) -> list[int] | None:
    """A photo's identity on disk without reading it: size, modification and change times, inode (None if it cannot
    be stat'ed). Rewriting a photo in place changes its times; renaming another file onto it changes its inode."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read_journal(dst: Path, size: int, quality: int) -> dict[str, dict]:
    """The photos a previous (maybe killed) run already aligned into ``dst`` at these settings and whose result is
    still theirs: the same photo on disk (``_stamp``), and the crop that run wrote, unchanged (its bytes hash as
    recorded). A crop written over since from another photo of the same name (another ``data.root``), a crop gone,
    or a photo replaced in place, is aligned again. A line cut short by a kill is ignored."""
    done: dict[str, dict] = {}
    for record in read_journal(dst / JOURNAL):
        if record.get("settings") != [size, quality] or record.get("stamp") != _stamp(Path(record["path"])):
            continue
        if "crop_sha256" not in record:
            continue  # a journal of an older fahr, which did not record what it wrote
        if record["aligned_path"] is not None and file_sha256(record["aligned_path"]) != record["crop_sha256"]:
            continue  # the crop is gone, or another photo's crop was written over it
        done[record["path"]] = {k: record[k] for k in COLUMNS}
    return done


def _align_job(job: tuple[Path, Path, int, int, FaceDetector | None]) -> dict:
    """Align one photo and write its crop (atomically); its row of ``align_paths``' table and the crop's hash."""
    path, target, size, quality, detector = job
    data, flag = read_source(path)
    result = _failed(flag) if data is None else align_bytes(data, size=size, detector=detector)
    aligned = crop_sha256 = None
    if result.crop is not None:
        encoded = _jpeg(result.crop, quality)
        _write_bytes(encoded, target)
        aligned, crop_sha256 = str(target), sha256(encoded)
    return {"path": str(path), "aligned_path": aligned, "flag": result.flag, "n_faces": result.n_faces,
            "residual": result.residual, "source_sha256": None if data is None else sha256(data),
            "crop_sha256": crop_sha256}  # fmt: skip


def _align_for_each(job: tuple[Path, int]) -> AlignResult:
    return align_file(job[0], size=job[1])


def align_each(paths: Sequence[Path], size: int = TEMPLATE_SIZE, workers: int | None = None) -> Iterator[AlignResult]:
    """The alignment of each photo, in order, computed by ``workers`` processes (default: every core)."""
    workers = max(1, min(workers or default_workers(), len(paths)))
    jobs = [(Path(p), size) for p in paths]
    if workers == 1:
        yield from map(_align_for_each, jobs)
        return
    with _pool(workers) as pool:
        yield from pool.map(_align_for_each, jobs, chunksize=_chunk(len(jobs), workers))


def _start_worker(run: int) -> None:
    """A pool worker: one photo at a time on one core (no nested OpenCV threads), ending when the run's process
    ``run`` is gone: a killed run leaves no worker writing crops behind it."""
    cv2.setNumThreads(1)
    threading.Thread(target=_end_with, args=(run,), daemon=True).start()


def _end_with(run: int) -> None:
    while True:
        time.sleep(0.2)
        try:
            os.kill(run, 0)
        except ProcessLookupError:
            os._exit(1)


def align_paths(
    paths: Iterable[str | os.PathLike],
    dst: str | os.PathLike,
    root: str | os.PathLike | None = None,
    size: int = TEMPLATE_SIZE,
    quality: int = 95,
    detector: FaceDetector | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> pd.DataFrame:
    """Align photos into ``dst`` as JPEG, keeping their names relative to ``root`` (default: their common folder).

    ``workers`` processes (default: every core; a given ``detector`` runs in this process only) align in
    parallel, with a progress bar showing the rate and the time left. Every finished photo is appended to
    ``dst/align.journal.jsonl``, and crops are written atomically, so a run killed mid-way resumes where it
    stopped: photos already aligned (same settings, the photo's bytes and the crop's bytes hashing as recorded) are
    not redone. Never stops on a bad photo. Returns one row per input, in input order: ``path, aligned_path`` (None
    where no crop was written), ``flag, n_faces, residual`` (crop pixels), ``source_sha256`` (the photo's bytes).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        return pd.DataFrame(columns=COLUMNS)
    base = Path(root) if root is not None else Path(os.path.commonpath([p.parent for p in paths]))
    targets: dict[Path, Path] = {}  # photo -> crop
    sources: dict[Path, Path] = {}  # crop -> photo
    for path in paths:
        try:
            rel = path.relative_to(base)
        except ValueError:
            raise ValueError(f"{path} is not inside the root folder {base}; pass root=") from None
        target = Path(dst) / rel.with_suffix(".jpg")
        if target in sources:
            raise ValueError(f"{path} and {sources[target]} would both be written to {target}; rename one of them")
        targets[path], sources[target] = target, path
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for litter in dst.rglob(".*.tmp.jpg"):  # a crop being written when a run was killed
        litter.unlink()
    rows = _read_journal(dst, size, quality)
    todo = [path for path in dict.fromkeys(paths) if str(path) not in rows]
    workers = 1 if detector is not None else max(1, min(workers or default_workers(), len(todo)))
    jobs = [(path, targets[path], size, quality, detector) for path in todo]
    bar = tqdm(total=len(paths), initial=len(paths) - len(todo), desc="align", unit="photo", disable=not progress,
               dynamic_ncols=True)  # fmt: skip
    with contextlib.ExitStack() as stack, journal_writer(dst / JOURNAL) as journal:
        if workers > 1:
            pool = stack.enter_context(_pool(workers))
            results = pool.map(_align_job, jobs, chunksize=_chunk(len(jobs), workers))
        else:
            results = map(_align_job, jobs)
        for row in results:
            journal({**row, "stamp": _stamp(Path(row["path"])), "settings": [size, quality]})
            rows[row["path"]] = {k: row[k] for k in COLUMNS}
            bar.update()
    bar.close()
    return pd.DataFrame([rows[str(path)] for path in paths], columns=COLUMNS)


def counts_line(table: pd.DataFrame) -> str:
    """One line of what alignment did: photos aligned, and those left out by reason."""
    flags = table["flag"].value_counts()
    left = ", ".join(f"{n} {flag.replace('_', ' ')}" for flag, n in sorted(flags.items()) if flag != "ok")
    return f"{int(flags.get('ok', 0))} of {len(table)} photos aligned" + (f"; left out: {left}" if left else "")


def align_folder(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    size: int = TEMPLATE_SIZE,
    quality: int = 95,
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
    detector: FaceDetector | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> pd.DataFrame:
    """Align every photo under ``src`` (recursively, by extension; not those under ``dst``) into ``dst``, same names;
    an entry named as a photo that is not a regular file (a folder, a FIFO) gets its row, flagged ``not_a_file``."""
    src = Path(src)
    if not src.is_dir():
        raise NotADirectoryError(f"{src} is not a folder of photos")
    out = Path(dst).resolve()
    paths = sorted(
        p
        for p in src.rglob("*")
        if p.suffix.lower() in extensions and not p.resolve().is_relative_to(out)  # special files too: flagged
    )
    return align_paths(
        paths, dst, root=src, size=size, quality=quality, detector=detector, progress=progress, workers=workers
    )
