"""Reading a photo as a viewer shows it: upright by its EXIF orientation, 8-bit RGB whatever its mode (grey,
palette, RGBA, CMYK, 16-bit or floating-point grey), so that alignment and the models see the same picture."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # more than 8 bits per pixel


def _to_8bit(img: Image.Image) -> Image.Image:
    """A grey image of more than 8 bits as 8-bit grey: 16-bit values scaled by 1/257 (65535 → 255), 32-bit
    integer or float values stretched from their minimum to their maximum."""
    values = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        scaled = values / 257.0
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def read_rgb(source: str | os.PathLike | bytes) -> np.ndarray:
    """A photo (a file or its bytes) as upright RGB uint8 ``[H, W, 3]``; raises if it is missing or corrupt."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        img.load()
        upright = ImageOps.exif_transpose(img)
        if upright.mode in WIDE_MODES:
            upright = _to_8bit(upright)
        return np.asarray(upright.convert("RGB"))


@dataclass(frozen=True)
class Face:
    """An image of a face to show, with what it was made from: the cohort of its photos and the number of different
    people (1 for one photo, however it was changed; all of them for a mean face or an averaged map). The book's
    one figure writer (``fahr.report.figures.faces``) refuses one made from too few patients of a clinical cohort."""

    pixels: np.ndarray  # [H, W, 3] or [H, W]
    cohort: str  # a cohort's name, or "sample" for a library's public sample photo
    people: int

    def __post_init__(self) -> None:
        if self.people < 1:
            raise ValueError(f"a face image is made from at least one person, not {self.people}")
