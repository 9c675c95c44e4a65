"""The parameters of one FAHR-Synth face and where its features sit.

A face is drawn in *face coordinates*: x to the right, y downwards, the face centred at the origin, one unit
about half the image. ``FaceParams`` holds what the cohort decides (identity, age, latent frailty);
``Capture`` the photo conditions (pose, lighting, camera); ``Modifiers`` makeup and cosmetic surgery.
``geometry`` turns them into feature positions that both the renderer and the region masks use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

RACE_GROUPS = ("white", "black", "asian", "indian", "other")
# base skin reflectance (RGB, 0–1) per race group; identities vary around it
SKIN_TONE = {
    "white": (0.89, 0.72, 0.62),
    "black": (0.42, 0.28, 0.20),
    "asian": (0.88, 0.73, 0.58),
    "indian": (0.66, 0.48, 0.36),
    "other": (0.76, 0.57, 0.44),
}
HAIR_COLOURS = np.array([(0.10, 0.08, 0.07), (0.30, 0.20, 0.12), (0.62, 0.48, 0.30), (0.55, 0.25, 0.12)])
IRIS_COLOURS = np.array([(0.25, 0.15, 0.08), (0.35, 0.45, 0.60), (0.35, 0.45, 0.30)])


@dataclass(frozen=True)
class FaceParams:
    """One face: identity, chronological and biological age (years), and latent frailty (z-score)."""

    age: float
    bio_gap: float = 0.0
    frailty: float = 0.0
    sex: int = 0  # 0 female, 1 male
    race: str = "white"
    tone: float = 0.0  # within-group lightness shift
    face_width: float = 0.0  # the shape parameters below are z-scores of the identity
    face_length: float = 0.0
    jaw: float = 0.0
    eye_spacing: float = 0.0
    eye_size: float = 0.0
    nose_length: float = 0.0
    nose_width: float = 0.0
    mouth_width: float = 0.0
    lips: float = 0.0
    brows: float = 0.0
    hair_colour: int = 0
    iris_colour: int = 0
    long_hair: bool = False
    beard: float = 0.0  # 0–1, adult men only
    baldness: float = 0.0  # 0–1 propensity to a receding hairline
    texture_seed: int = 0

    @property
    def apparent_age(self) -> float:
        """The age the face shows: chronological age plus the biological-age gap (years)."""
        return float(np.clip(self.age + self.bio_gap, 0.0, 110.0))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Capture:
    """Photo conditions: pose (degrees), light, camera. The defaults are a frontal, evenly lit studio photo."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    light_azimuth: float = 0.0  # degrees, 0 = frontal, +90 = from the face's left (image right)
    light_elevation: float = 20.0
    light_intensity: float = 0.35  # directional share of the light
    colour_temperature: float = 0.0  # -1 cool (blue) … +1 warm (orange)
    exposure: float = 1.0
    background: tuple[float, float, float] = (0.55, 0.60, 0.66)
    blur: float = 0.0  # 0–1, softens detail like a low-resolution camera
    noise: float = 0.01  # sensor noise sd (0–1 scale)
    jpeg_quality: int = 92  # 0 = no JPEG round trip
    grayscale: bool = False
    scale: float = 1.0  # face size in the frame
    shift: tuple[float, float] = (0.0, 0.0)
    noise_seed: int = 0


@dataclass(frozen=True)
class Modifiers:
    """Makeup and cosmetic surgery (strengths 0–1); they change the look, never the true age."""

    foundation: float = 0.0  # smooths wrinkles and spots, evens tone
    lipstick: float = 0.0
    eye_shadow: float = 0.0
    facelift: float = 0.0  # less sagging, shallower folds and forehead lines
    blepharoplasty: float = 0.0  # no eyelid droop or under-eye bags


@dataclass(frozen=True)
class AgeCues:
    """How strongly each visible cue shows (0–1), from apparent age, frailty and modifiers."""

    child: float
    forehead_lines: float
    crows_feet: float
    nasolabial: float
    spots: float
    texture: float
    greying: float
    recession: float
    sagging: float
    eyelid_droop: float
    eye_bags: float
    temporal_wasting: float
    pallor: float
    under_eye_dark: float
    thinning: float


FRAILTY_SATURATION = 2.5  # frailty (z) at which the frailty cues are fully painted; below 0 none are


def _ramp(x: float, start: float, end: float) -> float:
    return float(np.clip((x - start) / (end - start), 0.0, 1.0))


def cues(p: FaceParams, m: Modifiers = Modifiers()) -> AgeCues:
    """Visible cue strengths. Ageing cues follow apparent age; frailty cues follow the latent frailty."""
    a = p.apparent_age
    frail = float(np.clip(p.frailty / FRAILTY_SATURATION, 0.0, 1.0))  # only positive frailty shows
    smooth = 1.0 - 0.75 * m.foundation
    lift = 1.0 - 0.8 * m.facelift
    bleph = 1.0 - 0.9 * m.blepharoplasty
    return AgeCues(
        child=_ramp(-a, -16.0, 0.0),
        forehead_lines=_ramp(a, 28, 85) ** 1.2 * smooth * (1.0 - 0.5 * m.facelift),
        crows_feet=_ramp(a, 32, 85) * smooth,
        nasolabial=_ramp(a, 30, 90) * smooth * lift,
        spots=_ramp(a, 48, 95) * smooth,
        texture=_ramp(a, 20, 95) * smooth,
        greying=_ramp(a, 38, 82),
        recession=_ramp(a, 25, 75) * p.baldness * p.sex,
        sagging=_ramp(a, 42, 95) * lift,
        eyelid_droop=_ramp(a, 45, 95) * bleph,
        eye_bags=_ramp(a, 40, 95) * bleph,
        temporal_wasting=frail,
        pallor=frail * (1.0 - 0.5 * m.foundation),
        under_eye_dark=frail * bleph * (1.0 - 0.4 * m.foundation),
        thinning=frail,
    )


@dataclass(frozen=True)
class Geometry:
    """Feature positions in face coordinates, after age, frailty and pose."""

    face_c: tuple[float, float]
    face_r: tuple[float, float]
    jaw_r: float  # half-width of the lower face
    eye_l: tuple[float, float]  # image-left eye (the subject's right)
    eye_r: tuple[float, float]
    eye_r_size: tuple[float, float]
    brow_y: float
    nose_tip: tuple[float, float]
    nose_top: float
    nose_w: float
    mouth_c: tuple[float, float]
    mouth_w: float
    lip_h: float
    hairline_y: float
    chin_y: float
    yaw_s: float  # sin(yaw): how far the face is turned
    foreshorten: tuple[float, float] = field(default=(1.0, 1.0))

    @property
    def mouth_l(self) -> tuple[float, float]:
        return (self.mouth_c[0] - self.mouth_w, self.mouth_c[1])

    @property
    def mouth_r(self) -> tuple[float, float]:
        return (self.mouth_c[0] + self.mouth_w, self.mouth_c[1])


def geometry(p: FaceParams, c: Capture, k: AgeCues) -> Geometry:
    """Where the features are. Children have rounder faces and features lower and larger; pose shifts the
    features by their depth (a turned face shows its features off-centre and narrower)."""
    sy, sp = np.sin(np.radians(c.yaw)), np.sin(np.radians(c.pitch))
    cy_, cp = np.cos(np.radians(c.yaw)), np.cos(np.radians(c.pitch))
    width = (0.60 + 0.025 * p.face_width + 0.02 * p.sex + 0.05 * k.child - 0.035 * k.thinning) * cy_
    length = 0.74 + 0.03 * p.face_length + 0.02 * p.sex - 0.08 * k.child
    jaw = width * (0.80 + 0.04 * p.jaw + 0.05 * p.sex - 0.12 * k.child + 0.08 * k.sagging - 0.05 * k.thinning)
    eye_y = -0.10 + 0.13 * k.child
    half_gap = (0.225 + 0.012 * p.eye_spacing) * cy_
    eye_size = (0.085 + 0.005 * p.eye_size + 0.025 * k.child) * np.array([cy_, 1.0])
    depth_dx = 0.16 * sy  # features sit in front of the face's centre of rotation
    depth_dy = -0.16 * sp
    eye_dy = eye_y * cp + depth_dy * 0.8
    nose_len = (0.22 + 0.015 * p.nose_length) * (1.0 - 0.35 * k.child) * cp
    nose_tip = (depth_dx * 1.6, eye_dy + nose_len + 0.04 + depth_dy * 0.6)
    mouth_y = nose_tip[1] + 0.20 * (1.0 - 0.25 * k.child) * cp + 0.02 * k.sagging
    return Geometry(
        face_c=(-0.04 * sy, -0.03 * sp),
        face_r=(width, length),
        jaw_r=jaw,
        eye_l=(-half_gap + depth_dx, eye_dy),
        eye_r=(half_gap + depth_dx, eye_dy),
        eye_r_size=(float(eye_size[0]), float(eye_size[1]) * 0.55),
        brow_y=eye_dy - 0.11 - 0.01 * k.child,
        nose_tip=nose_tip,
        nose_top=eye_dy,
        nose_w=(0.075 + 0.008 * p.nose_width + 0.01 * p.sex) * (1.0 - 0.2 * k.child) * cy_,
        mouth_c=(depth_dx * 1.3, mouth_y),
        mouth_w=(0.155 + 0.01 * p.mouth_width) * (1.0 - 0.2 * k.child) * cy_,
        lip_h=(0.035 + 0.006 * p.lips + 0.01 * (1 - p.sex)) * (1.0 - 0.4 * _ramp(p.apparent_age, 40, 95)),
        hairline_y=-0.50 + 0.06 * k.child - 0.22 * k.recession,
        chin_y=-0.03 * sp + length,
        yaw_s=float(sy),
        foreshorten=(float(cy_), float(cp)),
    )
