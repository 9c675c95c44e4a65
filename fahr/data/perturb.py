"""Perturbations of aligned photos ``[N, 3, H, W]`` in [0, 1]: pose (kornia perspective warps and rotation),
lighting (a side-light gain, colour temperature) and makeup painted inside 68-point landmark polygons. Strength 0
returns the input unchanged; each mirrors the sign convention of FAHR-Synth's ``Capture``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a float tensor [N, 3, H, W] with values in [0, 1], got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got {images.dtype}")
    return images


def _perspective(images: torch.Tensor, degrees: float, axis: str, distance: float) -> torch.Tensor:
    """The image as a plane turned by ``degrees`` about its vertical (``axis="x"``: yaw) or horizontal axis
    (pitch), seen by a pinhole camera ``distance`` half-widths away: the far side shrinks."""
    import kornia.geometry.transform as kt

    n, _, h, w = images.shape
    t = np.radians(degrees)
    corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])  # (x, y) normalised, clockwise
    u, v = (corners[:, 0], corners[:, 1]) if axis == "x" else (corners[:, 1], corners[:, 0])
    depth = u * np.sin(t)
    u2, v2 = u * np.cos(t) * distance / (distance + depth), v * distance / (distance + depth)
    moved = np.stack([u2, v2], axis=1) if axis == "x" else np.stack([v2, u2], axis=1)

    def to_pixels(p: np.ndarray) -> torch.Tensor:
        scale = np.array([(w - 1) / 2, (h - 1) / 2])
        return torch.tensor((p + 1.0) * scale, dtype=images.dtype)[None].expand(n, 4, 2)

    matrix = kt.get_perspective_transform(to_pixels(corners), to_pixels(moved))
    return kt.warp_perspective(images, matrix, (h, w), padding_mode="border", align_corners=True)


def yaw(images: torch.Tensor, degrees: float, distance: float = 3.0) -> torch.Tensor:
    """A yaw-like horizontal perspective warp: positive turns the face toward the image's right (its right half
    recedes and narrows), as FAHR-Synth's ``Capture.yaw``. A 2-D warp cannot show the hidden side of a face."""
    _check_images(images)
    return images.clone() if degrees == 0 else _perspective(images, degrees, "x", distance)


def pitch(images: torch.Tensor, degrees: float, distance: float = 3.0) -> torch.Tensor:
    """A pitch-like vertical perspective warp: positive tilts the face up (its upper half recedes), as
    ``Capture.pitch``."""
    _check_images(images)
    return images.clone() if degrees == 0 else _perspective(images, -degrees, "y", distance)


def roll(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """In-plane rotation about the image centre (kornia), edges replicated: positive turns the image clockwise
    (the top of the head toward the image's right), as ``Capture.roll``."""
    import kornia.geometry.transform as kt

    _check_images(images)
    if degrees == 0:
        return images.clone()
    angle = torch.full((images.shape[0],), -float(degrees), dtype=images.dtype)  # kornia: counter-clockwise
    return kt.rotate(images, angle, padding_mode="border", align_corners=True)


def light_direction(images: torch.Tensor, degrees: float, intensity: float = 0.5) -> torch.Tensor:
    """Side light as a horizontal brightness gradient: gain 1 + intensity·sin(azimuth)·x, x from −1 (left) to
    1 (right); positive azimuth lights the image's right side, as ``Capture.light_azimuth``."""
    _check_images(images)
    if degrees == 0:
        return images.clone()
    x = torch.linspace(-1.0, 1.0, images.shape[-1], dtype=images.dtype)
    gain = 1.0 + intensity * np.sin(np.radians(degrees)) * x
    return (images * gain).clamp(0.0, 1.0)


def light_temperature(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Colour temperature as channel gains (red 1 + 0.10 s, blue 1 − 0.12 s; −1 cool … +1 warm), as the
    FAHR-Synth renderer applies it."""
    _check_images(images)
    if strength == 0:
        return images.clone()
    gains = torch.tensor([1.0 + 0.10 * strength, 1.0, 1.0 - 0.12 * strength], dtype=images.dtype)
    return (images * gains[:, None, None]).clamp(0.0, 1.0)


# iBUG 300-W 68-point layout
LIPS_OUTER, LIPS_INNER = list(range(48, 60)), list(range(60, 68))
EYE_LIDS = {"left": [36, 37, 38, 39], "right": [42, 43, 44, 45]}  # outer corner, upper lid, inner corner
BROWS = {"left": [17, 18, 19, 20, 21], "right": [22, 23, 24, 25, 26]}
LIPSTICK, EYE_SHADOW = (0.70, 0.08, 0.16), (0.45, 0.28, 0.45)


def makeup_masks(landmarks: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Boolean masks ``[N, H, W]`` of the lips (outer minus inner lip contour) and the eyelids (between the
    upper lid and the brow) from 68-point landmarks ``[N, 68, 2]`` (x, y pixels)."""
    from skimage.draw import polygon2mask

    points = np.asarray(landmarks, dtype=float)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"makeup needs 68-point landmarks [N, 68, 2] (x, y pixels), got shape {points.shape}")

    def fill(poly: np.ndarray) -> np.ndarray:
        return polygon2mask(size, poly[:, ::-1])  # (row, col)

    lips, lids = [], []
    for p in points:
        lips.append(fill(p[LIPS_OUTER]) & ~fill(p[LIPS_INNER]))
        lid = np.zeros(size, dtype=bool)
        for side in ("left", "right"):
            lid |= fill(np.concatenate([p[EYE_LIDS[side]], p[BROWS[side]][::-1]]))
        eyes = [fill(p[36:42]), fill(p[42:48])]
        lids.append(lid & ~eyes[0] & ~eyes[1])
    return {"lips": np.stack(lips), "eyelids": np.stack(lids)}


def makeup(images: torch.Tensor, landmarks: np.ndarray, strength: float) -> torch.Tensor:
    """Lipstick and eye shadow painted inside the landmark polygons (alpha 0.6 and 0.45 at strength 1);
    pixels outside them are never touched."""
    _check_images(images)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"makeup strength must be in [0, 1], got {strength}")
    if strength == 0:
        return images.clone()
    n, _, h, w = images.shape
    if len(landmarks) != n:
        raise ValueError(f"{n} images but {len(landmarks)} landmark sets")
    masks = makeup_masks(landmarks, (h, w))
    out = images.clone()
    for name, colour, alpha in (("lips", LIPSTICK, 0.6), ("eyelids", EYE_SHADOW, 0.45)):
        m = torch.from_numpy(masks[name])[:, None].to(images.dtype) * (alpha * strength)  # [N, 1, H, W]
        out = out + m * (torch.tensor(colour, dtype=images.dtype)[:, None, None] - out)
    return out


WARPS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "yaw": yaw,
    "pitch": pitch,
    "roll": roll,
    "light_direction": light_direction,
    "light_temperature": light_temperature,
}


def perturb_images(images: torch.Tensor, condition: str, strength: float, landmarks=None) -> torch.Tensor:
    """Apply one condition at one strength to aligned photos ``[N, 3, H, W]`` in [0, 1] (``makeup`` needs
    68-point landmarks)."""
    if condition == "makeup":
        if landmarks is None:
            raise ValueError("makeup needs 68-point landmarks [N, 68, 2]")
        return makeup(images, landmarks, strength)
    if condition not in WARPS:
        raise ValueError(f"unknown condition {condition!r}; image perturbations: makeup, {', '.join(WARPS)}")
    return WARPS[condition](images, strength)
