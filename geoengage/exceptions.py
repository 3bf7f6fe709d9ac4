"""Exceptions and warnings raised by geoengage.

Every error derives from :class:`GeoEngageError` and also from the built-in
exception a caller would expect, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "GeoEngageError",
    "GeoEngageWarning",
    "InvalidParameterError",
    "MediaReadError",
    "MediaTooLargeError",
    "MissingDependencyError",
    "ModelFileError",
    "OutputInUseError",
    "OutputWriteError",
    "SchemaError",
]


class GeoEngageError(Exception):
    """Root of every error raised on purpose by geoengage."""


class InvalidParameterError(GeoEngageError, ValueError):
    """A parameter is outside its documented range or of the wrong kind."""


class SchemaError(GeoEngageError, ValueError):
    """A table lacks columns, or has values, that a stage requires."""


class MediaReadError(GeoEngageError, OSError):
    """A media file or stream cannot be read; the message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MediaTooLargeError(MediaReadError):
    """A media file is over a size limit (pixels, duration); refused before its content is decoded."""


class MissingDependencyError(GeoEngageError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class ModelFileError(GeoEngageError, OSError):
    """A model file is damaged or altered (its hash or content is not what it must be); the message names it."""


class OutputWriteError(GeoEngageError, OSError):
    """An output could not be written (a full disk, a read-only or vanished folder); the message says what, what
    finished work is kept and how to resume."""


class OutputInUseError(GeoEngageError, OSError):
    """Another run is writing into the same output folder (its lock is held by a live process)."""


class GeoEngageWarning(UserWarning):
    """Data is degraded but usable (low face coverage, a dropped frame, ...)."""
