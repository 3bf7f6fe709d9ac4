"""What a per-frame feature is, and how a feature module registers its features (:func:`frame_features`).

The feature modules (:mod:`~geoengage.geometry.blink`, :mod:`~geoengage.geometry.pose`, ...) import this module
only; :mod:`geoengage.geometry.registry` imports them all and computes the features in order. Also the landmark
helpers they share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import InvalidParameterError

__all__ = ["CAMERA_FOCAL", "KINDS", "REGISTERED_FUNCTIONS", "REGISTERED_SPECS", "FeatureSpec", "distance",
           "frame_features", "inter_ocular", "nan_rows"]

KINDS = ("image", "faces", "eyes", "landmarks", "derived", "track")


@dataclass(frozen=True)
class FeatureSpec:
    """One per-frame feature: name (with unit suffix), unit, expected range, meaning, module."""

    name: str
    unit: str
    low: float
    high: float
    doc: str
    kind: str = "landmarks"
    module: str = ""
    #: True: ``low``-``high`` are physical limits, and a value outside them is a measurement error that
    #: default cleaning masks (reason ``range``). False: a typical range only (image sharpness, sizes).
    hard_range: bool = True


#: Every registered feature by name, and every feature function with its kind and the names it returns, in the order
#: they registered: filled by :func:`frame_features`, read by :mod:`geoengage.geometry.registry` (nowhere else).
REGISTERED_SPECS: dict[str, FeatureSpec] = {}
REGISTERED_FUNCTIONS: list[tuple[str, Callable[..., dict[str, Any]], tuple[str, ...]]] = []


def frame_features(*specs: tuple[str, str, float, float, str], kind: str = "landmarks",
                   typical_range: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Register a function computing the features ``specs`` = ``(name, unit, low, high, doc)``, ...

    Ranges are physical limits unless the feature is named in ``typical_range``.
    """
    if kind not in KINDS:
        raise InvalidParameterError(f"`kind` must be one of {KINDS}. Got {kind!r} instead.")

    def register(func: Callable) -> Callable:
        names = []
        for name, unit, low, high, doc in specs:
            if "__" in name or name in REGISTERED_SPECS:
                raise InvalidParameterError(f"feature {name!r} is registered twice or contains '__'.")
            REGISTERED_SPECS[name] = FeatureSpec(name, unit, low, high, doc, kind, func.__module__.rsplit(".", 1)[-1],
                                       hard_range=name not in typical_range)
            names.append(name)
        REGISTERED_FUNCTIONS.append((kind, func, tuple(names)))
        return func

    return register


#: Per-frame column holding a calibrated camera's focal length (px); NaN or absent: uncalibrated.
CAMERA_FOCAL = "camera_focal_px"


def nan_rows(landmarks: np.ndarray) -> np.ndarray:
    """Rows (frames) whose landmarks hold any NaN: no face."""
    return np.isnan(landmarks).any(axis=(1, 2))


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the two eye centres (mean of each eye's 6 points), shape (n,), pixels."""
    return np.linalg.norm(landmarks[:, 42:48].mean(axis=1) - landmarks[:, 36:42].mean(axis=1), axis=-1)


def distance(landmarks: np.ndarray, a: Sequence[int] | int, b: Sequence[int] | int) -> np.ndarray:
    """Distances between landmark(s) ``a`` and ``b`` per frame, shape (n,) or (n, k)."""
    return np.linalg.norm(landmarks[:, a] - landmarks[:, b], axis=-1)
