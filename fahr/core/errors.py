"""Errors that name a bad input (file, row, reason) and end a command with exit code 2, without a traceback."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file that is missing, not a regular file, truncated or not a checkpoint at all."""
