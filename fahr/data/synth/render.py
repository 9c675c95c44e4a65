"""Draw a FAHR-Synth face with NumPy: soft-edged shapes, graded ageing and frailty cues, pose, light, camera.

``render`` returns the RGB image (uint8, H×W×3), the five alignment landmarks in pixels (eyes, nose tip,
mouth corners, in the order of the standard 112×112 template) and, on request, the named region label map.
Everything is a pure function of its arguments: the same parameters give the same pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from PIL import Image

from fahr.data.synth.face import (
    HAIR_COLOURS,
    IRIS_COLOURS,
    SKIN_TONE,
    AgeCues,
    Capture,
    FaceParams,
    Geometry,
    Modifiers,
    cues,
    geometry,
)

REGIONS = ("background", "skin", "forehead", "periorbital", "temples", "cheeks", "nose", "mouth", "chin", "hair")
LANDMARKS = ("eye_left", "eye_right", "nose_tip", "mouth_left", "mouth_right")
F32 = np.float32


@dataclass
class Rendered:
    landmarks: np.ndarray  # [5, 2] float (x, y) pixels, order LANDMARKS
    regions: np.ndarray | None  # [H, W] uint8 index into REGIONS, or None
    encoded: bytes  # the file as the camera wrote it (JPEG at the capture's quality, or PNG)
    suffix: str  # ".jpg" or ".png"

    @cached_property
    def image(self) -> np.ndarray:
        """[H, W, 3] uint8: the pixels of the written file (decoded on first use; writing needs no decode)."""
        with Image.open(io.BytesIO(self.encoded)) as img:
            return np.asarray(img.convert("RGB"))


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in image coordinates, -1…1 across the frame."""
    t = (np.arange(size, dtype=F32) + 0.5) / size * 2.0 - 1.0
    return np.meshgrid(t, t)  # [H, W] each


@lru_cache(maxsize=8)
def _vignette(size: int) -> np.ndarray:
    return (1.0 - 0.12 * (_grid(size)[1] + 1.0) / 2.0)[..., None]


def _soft(d: np.ndarray, edge: float) -> np.ndarray:
    """1 inside (d < 1), 0 outside, with an anti-aliased rim ``edge`` wide (in d units)."""
    return np.clip((1.0 - d) / edge + 0.5, 0.0, 1.0)


def _ellipse_d(x: np.ndarray, y: np.ndarray, c: tuple[float, float], r: tuple[float, float]) -> np.ndarray:
    return np.sqrt(((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2)


def _blend(img: np.ndarray, colour, alpha: np.ndarray) -> None:
    """In place: img = img·(1-α) + colour·α."""
    img += alpha[..., None] * (np.asarray(colour, dtype=F32) - img)


def _darken(img: np.ndarray, amount: np.ndarray) -> None:
    img *= (1.0 - np.clip(amount, 0.0, 0.9))[..., None]


class _Canvas:
    """The image being drawn, its face coordinates, and windows that keep small shapes cheap."""

    def __init__(self, size: int, c: Capture, background) -> None:
        self.size, self.capture = size, c
        self.x, self.y, self.px = _face_coords(size, c)
        self.img = np.empty((size, size, 3), dtype=F32)
        self.img[:] = np.asarray(background, dtype=F32)

    def window(self, centre: tuple[float, float], radius: float) -> tuple[slice, slice]:
        """Pixel rows and columns that cover a face-coordinate disc (whatever the roll)."""
        (cx, cy), r = _to_pixels(np.array([centre], dtype=float), self.size, self.capture)[0], radius / self.px + 2
        rows = slice(int(np.clip(cy - r, 0, self.size)), int(np.clip(np.ceil(cy + r) + 1, 0, self.size)))
        cols = slice(int(np.clip(cx - r, 0, self.size)), int(np.clip(np.ceil(cx + r) + 1, 0, self.size)))
        return rows, cols

    def at(self, centre: tuple[float, float], radius: float):
        """(window, x, y, image) of a window around ``centre``."""
        w = self.window(centre, radius)
        return w, self.x[w], self.y[w], self.img[w]


# a frontal face at scale 1 puts its eye centres on the row of the standard 112x112 five-point template,
# 86 % as far apart as the template's (so that the hairline and the chin stay in the frame)
FRAME_SCALE = 1.2
FRAME_SHIFT = (0.0, 0.052)


def _face_coords(size: int, c: Capture) -> tuple[np.ndarray, np.ndarray, float]:
    """Face coordinates of every pixel (roll, scale and shift undone); also the pixel size in face units."""
    gx, gy = _grid(size)
    s = 1.0 / (FRAME_SCALE * c.scale)
    x0, y0 = (gx - c.shift[0] - FRAME_SHIFT[0]) * s, (gy - c.shift[1] - FRAME_SHIFT[1]) * s
    t = np.radians(c.roll)
    ct, st = np.cos(t), np.sin(t)
    return (ct * x0 + st * y0).astype(F32), (-st * x0 + ct * y0).astype(F32), 2.0 * s / size


def _to_pixels(points: np.ndarray, size: int, c: Capture) -> np.ndarray:
    """Face coordinates → pixel coordinates (inverse of ``_face_coords``)."""
    t = np.radians(c.roll)
    ct, st = np.cos(t), np.sin(t)
    x, y = points[:, 0], points[:, 1]
    x0, y0 = ct * x - st * y, st * x + ct * y
    gx = x0 * FRAME_SCALE * c.scale + c.shift[0] + FRAME_SHIFT[0]
    gy = y0 * FRAME_SCALE * c.scale + c.shift[1] + FRAME_SHIFT[1]
    return np.stack([(gx + 1.0) / 2.0 * size - 0.5, (gy + 1.0) / 2.0 * size - 0.5], axis=1)


def landmarks(g: Geometry, size: int, c: Capture) -> np.ndarray:
    """The five alignment landmarks in pixels: eye centres, nose tip, mouth corners."""
    pts = np.array([g.eye_l, g.eye_r, g.nose_tip, g.mouth_l, g.mouth_r], dtype=float)
    return _to_pixels(pts, size, c)


def _skin_colour(p: FaceParams, k: AgeCues) -> np.ndarray:
    base = np.asarray(SKIN_TONE[p.race], dtype=F32) * (1.0 + 0.07 * p.tone)
    grey = np.full(3, base.mean() * 1.08 + 0.04, dtype=F32) * np.array([1.0, 0.98, 0.92], dtype=F32)
    return np.clip(base + 0.45 * k.pallor * (grey - base), 0.0, 1.0)


def _hair_colour(p: FaceParams, k: AgeCues) -> np.ndarray:
    base = HAIR_COLOURS[p.hair_colour % len(HAIR_COLOURS)].astype(F32)
    return base + k.greying * (np.array([0.78, 0.78, 0.76], dtype=F32) - base)


def _region_masks(x, y, g: Geometry, face: np.ndarray, hair: np.ndarray) -> np.ndarray:
    """Label map of named regions (index into REGIONS); later regions win where they overlap."""
    labels = np.zeros(x.shape, dtype=np.uint8)
    labels[face > 0.5] = REGIONS.index("skin")
    inside = face > 0.5
    fx, fy = x - g.face_c[0], y
    ew = g.eye_r_size[0]
    labels[inside & (fy < g.brow_y - 0.02)] = REGIONS.index("forehead")
    temple = inside & (np.abs(fx) > g.face_r[0] * 0.72) & (fy > g.brow_y - 0.12) & (fy < g.eye_l[1] + 0.08)
    labels[temple] = REGIONS.index("temples")
    cheek = (
        inside & (fy > g.eye_l[1] + 0.08) & (fy < g.mouth_c[1] + 0.02) & (np.abs(x - g.nose_tip[0]) > g.nose_w * 1.4)
    )
    labels[cheek] = REGIONS.index("cheeks")
    labels[inside & (fy > g.mouth_c[1] + g.lip_h * 1.6)] = REGIONS.index("chin")
    for eye in (g.eye_l, g.eye_r):
        peri = _ellipse_d(x, y, (eye[0], eye[1] + 0.01), (ew * 1.9, 0.105)) < 1.0
        labels[peri & inside] = REGIONS.index("periorbital")
    nose = (
        (
            np.abs(x - g.nose_tip[0] * (0.3 + 0.7 * (y - g.nose_top) / max(g.nose_tip[1] - g.nose_top, 1e-3)))
            < g.nose_w * 1.25
        )
        & (y > g.nose_top + 0.03)
        & (y < g.nose_tip[1] + 0.035)
    )
    labels[nose & inside] = REGIONS.index("nose")
    mouth = _ellipse_d(x, y, g.mouth_c, (g.mouth_w * 1.2, g.lip_h * 1.9)) < 1.0
    labels[mouth & inside] = REGIONS.index("mouth")
    labels[(hair > 0.5) & (labels <= 1)] = REGIONS.index("hair")
    return labels


def render(
    p: FaceParams, c: Capture = Capture(), m: Modifiers = Modifiers(), size: int = 112, with_regions: bool = False
) -> Rendered:
    """Render one face at ``size``×``size`` pixels."""
    k = cues(p, m)
    g = geometry(p, c, k)
    cv = _Canvas(size, c, c.background)
    x, y, img = cv.x, cv.y, cv.img
    rng = np.random.default_rng(p.texture_seed)
    skin = _skin_colour(p, k)
    img *= _vignette(size)  # a little shading keeps the background from being flat

    # neck and shoulders (the rows below the chin only)
    w = cv.window((g.face_c[0], 1.0 + g.chin_y / 2), 1.2 - g.chin_y / 2 + 0.3)
    rows = (slice(w[0].start, size), slice(0, size))
    xw, yw, iw = x[rows], y[rows], img[rows]
    neck = np.zeros_like(x)
    neck[rows] = _soft(np.abs(xw - g.face_c[0] * 0.5) / (g.jaw_r * 0.62), 0.08) * (yw > g.chin_y - 0.25)
    _blend(iw, skin * 0.82, neck[rows])
    shoulders = _soft(_ellipse_d(xw, yw, (0.0, 1.40), (1.05, 0.40)), 0.05)
    _blend(iw, (0.20, 0.24, 0.32) if p.sex else (0.45, 0.22, 0.28), shoulders)

    # hair behind the head (long hair falls to the shoulders); a receding crown shows skin
    head_c = (g.face_c[0] * 0.6, g.face_c[1] - 0.06)
    head_r = (g.face_r[0] * 1.13, g.face_r[1] * 1.04)
    hair_back = _soft(_ellipse_d(x, y, head_c, head_r), 0.03)
    if p.long_hair:
        fall = _soft(np.abs(x - head_c[0]) / (head_r[0] * 1.02), 0.05) * (y > head_c[1]) * (y < 1.0)
        hair_back = np.maximum(hair_back * (y < head_c[1] + 0.2), fall)
    else:
        hair_back = hair_back * (y < g.eye_l[1] - 0.02)
    crown = np.ones_like(x)
    if k.recession > 0.01:
        crown -= 0.85 * k.recession * _soft(_ellipse_d(x, y, (head_c[0], head_c[1] - 0.55), (0.40, 0.32)), 0.3)
    hair_col = _hair_colour(p, k)
    _blend(img, hair_col, hair_back * crown)

    # ears, then the face: the lower face narrows to the jaw
    for side in (-1.0, 1.0):
        ear = (g.face_c[0] + side * g.face_r[0] * 0.98 - 0.05 * g.yaw_s, g.eye_l[1] + 0.1)
        w, xw, yw, iw = cv.at(ear, 0.17)
        _blend(iw, skin * 0.9, _soft(_ellipse_d(xw, yw, ear, (0.07 * g.foreshorten[0] + 0.02, 0.15)), 0.15))
    below = np.clip((y - g.face_c[1]) / g.face_r[1], 0.0, 1.0)
    half_w = g.face_r[0] + (g.jaw_r - g.face_r[0]) * below**1.5
    face = _soft(np.sqrt(((x - g.face_c[0]) / half_w) ** 2 + ((y - g.face_c[1]) / g.face_r[1]) ** 2), 0.05)
    _blend(img, skin, face)

    # skin texture and age spots (foundation evens them out)
    if k.texture > 0.01:
        _darken(img, face * (0.05 * k.texture) * rng.standard_normal(x.shape, dtype=F32))
    spot_col = skin * np.array([0.72, 0.60, 0.50], dtype=F32)
    for _ in range(int(round(14 * k.spots))):
        centre, r = (rng.uniform(-0.5, 0.5), rng.uniform(-0.6, 0.4)), rng.uniform(0.012, 0.03)
        w, xw, yw, iw = cv.at(centre, r * 1.5)
        _blend(iw, spot_col, face[w] * 0.7 * _soft(_ellipse_d(xw, yw, centre, (r, r)), 0.3))

    # frailty and sagging: hollow temples, hollow cheeks, jowls
    for side in (-1.0, 1.0):
        shades = (
            ((g.face_c[0] + side * g.face_r[0] * 0.82, g.brow_y + 0.02), (0.11, 0.14), 0.35 * k.temporal_wasting),
            ((g.face_c[0] + side * g.face_r[0] * 0.6, g.nose_tip[1]), (0.10, 0.13), 0.20 * k.thinning),
            ((g.face_c[0] + side * g.jaw_r * 0.78, g.mouth_c[1] + 0.12), (0.09, 0.07), 0.22 * k.sagging),
        )
        for centre, radii, amount in shades:
            if amount > 0.005:
                w, xw, yw, iw = cv.at(centre, max(radii) * 1.5)
                _darken(iw, face[w] * amount * _soft(_ellipse_d(xw, yw, centre, radii), 0.9))

    # forehead lines
    if k.forehead_lines > 0.01:
        w, xw, yw, iw = cv.at((g.face_c[0], (g.brow_y + g.hairline_y) / 2), g.face_r[0])
        fy = yw + 0.015 * np.sin(xw * 7.0 + p.texture_seed % 7)
        lines = np.clip(np.cos((fy - g.brow_y) * 2 * np.pi / 0.065), 0.0, 1.0) ** 6
        band = (fy < g.brow_y - 0.05) * (fy > g.hairline_y + 0.06) * (np.abs(xw - g.face_c[0]) < g.face_r[0] * 0.7)
        _darken(iw, face[w] * band * lines * 0.24 * k.forehead_lines)

    # brows, greying with age
    grey = np.array([0.72, 0.72, 0.70], dtype=F32)
    brow_col = 0.5 * (np.array([0.13, 0.10, 0.08], dtype=F32) * (1 - k.greying) + grey * k.greying) + 0.5 * hair_col
    thick = (0.018 + 0.006 * p.brows + 0.008 * p.sex) * (1.0 - 0.3 * k.child)
    for eye in (g.eye_l, g.eye_r):
        w, xw, yw, iw = cv.at((eye[0], g.brow_y), 0.16)
        arch = g.brow_y + 0.03 * ((xw - eye[0]) / 0.14) ** 2
        brow = _soft(np.abs(yw - arch) / thick, 0.5) * _soft(np.abs(xw - eye[0]) / 0.13, 0.3)
        _blend(iw, brow_col, 0.85 * brow * face[w])

    # eyes: socket shadow (eye shadow), under-eye darkness and bags, the eye, the eyelid, crow's feet
    ew, eh = g.eye_r_size
    iris_col = IRIS_COLOURS[p.iris_colour % len(IRIS_COLOURS)]
    shadow_col = np.array([0.55, 0.35, 0.55], dtype=F32) * skin
    for side, eye in ((-1.0, g.eye_l), (1.0, g.eye_r)):
        w, xw, yw, iw = cv.at((eye[0], eye[1] + eh), 0.2)
        fw = face[w]
        _blend(
            iw,
            shadow_col,
            fw * (0.12 + 0.45 * m.eye_shadow) * _soft(_ellipse_d(xw, yw, eye, (ew * 1.45, eh * 2.4)), 0.9),
        )
        under = _soft(_ellipse_d(xw, yw, (eye[0], eye[1] + eh * 1.9), (ew * 1.2, eh * 1.0)), 0.9)
        _darken(iw, fw * under * (0.38 * k.under_eye_dark + 0.12 * k.eye_bags))
        if k.eye_bags > 0.01:
            bag = np.abs(_ellipse_d(xw, yw, (eye[0], eye[1] + eh * 1.3), (ew * 1.1, eh * 1.9)) - 1.0)
            _darken(iw, fw * _soft(bag / 0.09, 0.5) * 0.25 * k.eye_bags * (yw > eye[1] + eh))
        d_eye = _ellipse_d(xw, yw, eye, (ew, eh))
        opening = _soft(d_eye, 0.18)
        _blend(iw, (0.93, 0.92, 0.90), opening)
        _blend(iw, iris_col, _soft(_ellipse_d(xw, yw, eye, (eh * 1.05, eh * 1.05)), 0.2) * opening)
        _blend(iw, (0.04, 0.03, 0.03), _soft(_ellipse_d(xw, yw, eye, (eh * 0.45, eh * 0.45)), 0.3) * opening)
        lid = eye[1] - eh + 2 * eh * 0.45 * k.eyelid_droop * (1 - ((xw - eye[0]) / ew) ** 2)
        _blend(iw, skin * 0.92, opening * (yw < lid))
        _blend(iw, (0.12, 0.08, 0.07), _soft(np.abs(d_eye - 1.0) / 0.12, 0.5) * (yw < eye[1]) * fw)
        if k.crows_feet > 0.01:
            corner = (eye[0] + side * ew * 1.15, eye[1])
            w, xw, yw, iw = cv.at(corner, 0.09)
            rays = np.clip(np.cos(np.arctan2(yw - corner[1], (xw - corner[0]) * side) * 9.0), 0.0, 1.0) ** 8
            r = np.sqrt((xw - corner[0]) ** 2 + (yw - corner[1]) ** 2)
            window = (r > 0.015) * (r < 0.085) * ((xw - corner[0]) * side > 0)
            _darken(iw, face[w] * window * rays * 0.28 * k.crows_feet)

    # nose: side shading, nostrils, a highlight
    w, xw, yw, iw = cv.at(((g.nose_tip[0] + g.face_c[0]) / 2, (g.nose_top + g.nose_tip[1]) / 2), 0.2)
    fw = face[w]
    t = np.clip((yw - g.nose_top) / max(g.nose_tip[1] - g.nose_top, 1e-3), 0.0, 1.0)
    ridge_x = g.face_c[0] + (g.nose_tip[0] - g.face_c[0]) * t
    span = (yw > g.nose_top + 0.04) * (yw < g.nose_tip[1] + 0.02)
    for side in (-1.0, 1.0):
        edge = _soft(np.abs(xw - (ridge_x + side * g.nose_w * (0.5 + 0.6 * t))) / 0.022, 0.6)
        _darken(iw, fw * edge * span * (0.10 + 0.05 * side * g.yaw_s))
        nostril = (g.nose_tip[0] + side * g.nose_w * 0.55, g.nose_tip[1] + 0.01)
        _darken(iw, fw * 0.55 * _soft(_ellipse_d(xw, yw, nostril, (0.028, 0.014)), 0.4))
    tip = _soft(_ellipse_d(xw, yw, (g.nose_tip[0], g.nose_tip[1] - 0.03), (0.03, 0.04)), 0.8)
    _blend(iw, np.minimum(skin * 1.15, 1.0), fw * 0.35 * tip)

    # nasolabial folds: from the nose wings to the mouth corners
    if k.nasolabial > 0.01:
        for side, corner in ((-1.0, g.mouth_l), (1.0, g.mouth_r)):
            y0, y1 = g.nose_tip[1] + 0.005, corner[1] + 0.05
            w, xw, yw, iw = cv.at((corner[0], (y0 + y1) / 2), 0.2)
            tt = np.clip((yw - y0) / (y1 - y0), 0.0, 1.0)
            x0 = g.nose_tip[0] + side * g.nose_w * 1.25
            curve = x0 + (corner[0] + side * 0.035 - x0) * tt + side * 0.03 * np.sin(np.pi * tt)
            fold = _soft(np.abs(xw - curve) / (0.012 + 0.008 * k.nasolabial), 0.6) * (yw > y0) * (yw < y1)
            _darken(iw, face[w] * fold * 0.30 * k.nasolabial)

    # stubble or beard on the jaw and upper lip (adult men), greying like the hair
    if p.beard > 0.01 and p.sex == 1 and k.child < 0.05:
        w, xw, yw, iw = cv.at((g.face_c[0], g.chin_y - 0.2), g.jaw_r + 0.1)
        lower = np.clip((yw - g.mouth_c[1] + 0.06) / 0.08, 0.0, 1.0)
        lip_zone = _soft(_ellipse_d(xw, yw, (g.mouth_c[0], g.mouth_c[1] - 0.05), (g.mouth_w * 1.15, 0.045)), 0.4)
        mouth_gap = 1.0 - _soft(_ellipse_d(xw, yw, g.mouth_c, (g.mouth_w * 1.05, g.lip_h * 1.5)), 0.3)
        speckle = 0.6 + 0.4 * rng.random(xw.shape, dtype=F32)
        _blend(iw, hair_col, face[w] * mouth_gap * np.maximum(lower, lip_zone) * speckle * 0.45 * p.beard)

    # mouth: lips (thinner with age), lipstick, the line between them
    w, xw, yw, iw = cv.at(g.mouth_c, g.mouth_w * 1.3)
    lip_col = skin * np.array([0.86, 0.62, 0.62], dtype=F32)
    lip_col = lip_col + m.lipstick * (np.array([0.70, 0.08, 0.16], dtype=F32) - lip_col)
    _blend(iw, lip_col, face[w] * _soft(_ellipse_d(xw, yw, g.mouth_c, (g.mouth_w, g.lip_h * 1.4)), 0.25))
    seam = _soft(np.abs(yw - g.mouth_c[1] - 0.02 * ((xw - g.mouth_c[0]) / g.mouth_w) ** 2) / 0.010, 0.6)
    _darken(iw, seam * _soft(np.abs(xw - g.mouth_c[0]) / g.mouth_w, 0.15) * 0.55)

    # hair in front: the hairline (receding with age in men prone to it)
    hair_front = (y < g.hairline_y + 0.04 * np.cos(x * 3.0)) * _soft(_ellipse_d(x, y, head_c, head_r), 0.05) * crown
    _blend(img, hair_col, hair_front)

    # foundation evens the tone toward the base skin colour
    if m.foundation > 0.0:
        _blend(img, skin, face * (1.0 - hair_front) * 0.25 * m.foundation)

    _light(img, x, y, g, c, np.maximum(face, np.maximum(hair_back, neck)))
    rendered_landmarks = landmarks(g, size, c)
    regions = _region_masks(x, y, g, face, np.maximum(hair_back * crown, hair_front)) if with_regions else None
    encoded, suffix = _camera(img, c)
    return Rendered(rendered_landmarks, regions, encoded, suffix)


def _light(img: np.ndarray, x: np.ndarray, y: np.ndarray, g: Geometry, c: Capture, body: np.ndarray) -> None:
    """Lambert shading of an ellipsoid head, then colour temperature and exposure (in place)."""
    az, el = np.radians(c.light_azimuth), np.radians(c.light_elevation)
    light = np.array([np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)], dtype=F32)
    nx = (x - g.face_c[0]) / (g.face_r[0] * 1.1)
    ny = (y - g.face_c[1]) / (g.face_r[1] * 1.1)
    nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.02, 1.0))
    lambert = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0.0, 1.0)
    shade = (1.0 - c.light_intensity) + c.light_intensity * 1.6 * lambert
    img *= (1.0 + body * (shade - 1.0))[..., None]
    warm = c.colour_temperature
    img *= np.array([1.0 + 0.10 * warm, 1.0, 1.0 - 0.12 * warm], dtype=F32) * c.exposure


def _camera(img: np.ndarray, c: Capture) -> tuple[bytes, str]:
    """Blur (downsample and back), sensor noise, grey-scale film, then the file the camera writes."""
    size = img.shape[0]
    if c.blur > 0.0:
        small = max(8, int(size * (1.0 - 0.7 * c.blur)))
        pil = (
            Image.fromarray(_to_uint8(img)).resize((small, small), Image.BILINEAR).resize((size, size), Image.BILINEAR)
        )
        img = np.asarray(pil, dtype=F32) / 255.0
    if c.noise > 0.0:
        img = img + c.noise * np.random.default_rng(c.noise_seed).standard_normal(img.shape, dtype=F32)
    if c.grayscale:
        img = np.repeat((img @ np.array([0.299, 0.587, 0.114], dtype=F32))[..., None], 3, axis=2)
    out = Image.fromarray(_to_uint8(img))
    buf = io.BytesIO()
    if c.jpeg_quality > 0:
        out.save(buf, format="JPEG", quality=int(c.jpeg_quality))
        return buf.getvalue(), ".jpg"
    out.save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), ".png"


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
