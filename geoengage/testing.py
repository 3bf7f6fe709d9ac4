"""Synthetic window tables for tests: geoengage's own and a user's.

:func:`synthetic_windows` builds a window table (:mod:`geoengage.windows` schema: ``subject_id``, ``video_id``,
``window_idx``, ``window_ok``, ``coverage`` and ``<signal>__<agg>`` feature columns) whose label a model can learn,
with a feature that identifies the subject, so that leakage, pooling and selection code can be checked against
known answers without extracting a video.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["synthetic_windows"]


def synthetic_windows(rng: np.random.Generator | int = 0, *, n_subjects: int = 12, per_subject: int = 30,
                      classes: int = 2, label: str = "label", prefix: str = "s", shift: float = 0.0,
                      noise: float = 0.6) -> pd.DataFrame:
    """Windows where ``signal__mean`` carries the label, ``noise__std`` nothing and ``person__mean`` the subject.

    Parameters
    ----------
    rng : numpy Generator or int
        Random source (an int seeds one).
    n_subjects, per_subject : int
        Subjects, and windows per subject (one recording each, ``<prefix><k>.mp4``).
    classes : int
        Labels are 0..classes-1, drawn uniformly per window.
    label : str
        Name of the label column.
    prefix : str
        Subject ids are ``<prefix>0``, ``<prefix>1``...: two tables with one prefix share ids, as two labs' might.
    shift : float
        Added to every feature: a data set recorded with another set-up.
    noise : float
        Standard deviation of ``signal__mean`` around the label.
    """
    rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
    rows = []
    for s in range(n_subjects):
        offset = rng.normal(0, 1)
        for w in range(per_subject):
            value = int(rng.integers(0, classes))
            rows.append({"subject_id": f"{prefix}{s}", "video_id": f"{prefix}{s}.mp4", "window_idx": w,
                         "start_s": 5.0 * w, "window_ok": True, "coverage": 1.0, label: value,
                         "signal__mean": value + rng.normal(0, noise) + shift,
                         "noise__std": rng.normal(0, 1) + shift, "person__mean": offset + rng.normal(0, 0.01) + shift})
    return pd.DataFrame(rows)
