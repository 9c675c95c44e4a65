"""The one writer of every face image the book shows, and the first line of its privacy (the scan of
``fahr.privacy`` is the second).

An image of a face reaches a figure only as a ``Face`` (``fahr.data.photo.Face``): its pixels together with the
cohort its photos came from and how many different people they were. ``draw`` puts it on an axis, and refuses,
whatever the pixels look like, an image made from fewer than ``privacy.min_people`` patients of a clinical
cohort: a patient's photo flipped, grey, blurred, cropped, recoloured or under a heat map is still that patient,
and no look-alike test is needed to keep it out. A population average of at least that many patients may be
shown. A saliency map is drawn as a ``Face`` too (it is made from the photos it explains). tests/test_privacy.py
holds that no code in ``fahr/`` or in the chapters calls ``imshow`` (or another way of putting pixels on a
figure) anywhere but here.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from fahr.data.photo import Face

CLINICAL = ("clinical-a", "clinical-b")
SAMPLE = "sample"  # a library's public sample photo (scikit-image's astronaut): no cohort, no patient
DEFAULT_MIN_PEOPLE = 20  # until a chapter sets the profile's privacy.min_people


class PrivacyRefused(ValueError):
    """A figure asked to show an image made from too few clinical patients."""


_least = {"people": DEFAULT_MIN_PEOPLE}


def configure(min_people: int) -> None:
    """Set the profile's ``privacy.min_people`` (``fahr.report.notebook.start`` does, for every chapter)."""
    if min_people < 2:
        raise ValueError(f"privacy.min_people must be at least 2, not {min_people}")
    _least["people"] = int(min_people)


def min_people() -> int:
    return _least["people"]


def check(face: Face) -> Face:
    """``face`` if the book may show it; a ``PrivacyRefused`` naming why if not."""
    if not isinstance(face, Face):
        raise TypeError(
            f"a figure is given {type(face).__name__} pixels: every face image must be a fahr.data.photo.Face, "
            "which says the cohort and the number of people it was made from"
        )
    if face.cohort in CLINICAL and face.people < min_people():
        raise PrivacyRefused(
            f"an image made from {face.people} patient(s) of {face.cohort} would be shown; the book shows a "
            f"clinical cohort only as averages of at least {min_people()} patients (privacy.min_people)"
        )
    return face


def draw(ax: plt.Axes, face: Face, **imshow: object) -> None:
    """Show ``face`` on ``ax`` (``imshow`` options passed on), after ``check``."""
    ax.imshow(check(face).pixels, **imshow)


def grid(faces: Sequence[Face], labels: Sequence[str], columns: int, scale: float = 1.35) -> plt.Figure:
    """A grid of face images with a caption under each; every one is checked before any is drawn."""
    for face in faces:
        check(face)
    rows = int(np.ceil(len(faces) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(scale * columns, scale * 1.18 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, face, label in zip(axes.ravel(), faces, labels, strict=False):
        draw(ax, face)
        ax.set_title(label, fontsize=7, pad=2)
    fig.tight_layout(pad=0.3)
    return fig
