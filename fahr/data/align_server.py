"""Imported once by the alignment pool's fork server (``fahr.data.align``): dlib's face detector and its 68-point
landmark model (95 MB) are loaded here, so every worker forks with them in memory instead of loading its own."""

from fahr.data import align

align.default_detector()
align._shape_predictor()
