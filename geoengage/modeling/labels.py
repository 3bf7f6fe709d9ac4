"""Labels -> named classes in a stated order, and which of them count as engaged.

Labels arrive as numbers (``0, 1, 2``), as text read from a CSV (``"0"``, ``"10"``) or as names
(``"low"``, ``"high"``). :func:`canonical_labels` makes one kind of value out of them: if every label
reads as a number, numbers (integers where they are whole), otherwise text. So ``0``, ``"0"`` and
``0.0`` are one class, and ``"10"`` sorts after ``"2"``.

:func:`resolve_classes` fixes the class order and the engaged ("positive") classes:

- ``classes`` given: that order (it must name every label seen);
- numbers: numeric order;
- names without ``classes``: no order is known, so ``positive`` must be given; the classes that are not engaged come
  first, then the engaged ones (each side alphabetically, which claims nothing). :func:`classes_ordered` says whether
  an order was given: the report then names the engaged and the other classes instead of an order, and an ordinal
  model refuses such classes;
- ``positive`` not given: every class but the first in the order (for numbers, every level above the
  lowest: "higher means more engaged").

``engagement_probability`` is then the sum of the positive classes' probabilities, whatever their position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..exceptions import InvalidParameterError

__all__ = ["canonical_label", "canonical_labels", "classes_ordered", "describe_classes", "map_labels", "resolve_classes"]


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def canonical_labels(values: Iterable[object]) -> np.ndarray:
    """Labels as one kind of value (object array): ints or floats if every label reads as a number, else text.

    Missing values (None, NaN, pd.NA) stay missing (None).
    """
    items = list(values)
    present = [k for k, v in enumerate(items) if not (v is None or (not isinstance(v, str) and pd.isna(v)))]
    numbers = {k: _as_number(items[k]) for k in present}
    out = np.full(len(items), None, dtype=object)
    if present and all(n is not None and np.isfinite(n) for n in numbers.values()):
        whole = all(float(n).is_integer() for n in numbers.values())  # type: ignore[arg-type]
        for k, n in numbers.items():
            out[k] = int(n) if whole else float(n)  # type: ignore[arg-type]
        return out
    for k in present:
        out[k] = str(items[k]).strip()
    return out


def canonical_label(value: object, classes: Sequence[object]) -> object:
    """One user-given label (e.g. from ``--positive``) in the kind of ``classes``."""
    if classes and isinstance(classes[0], (int, float)):
        number = _as_number(value)
        if number is None:
            raise InvalidParameterError(f"the classes are numbers {list(classes)}; {value!r} is not one.")
        return int(number) if float(number).is_integer() and isinstance(classes[0], int) else number
    return str(value).strip()


def resolve_classes(labels: Iterable[object], *, classes: Sequence[object] | None = None,
                    positive: Sequence[object] | None = None) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """The class order and the engaged classes for ``labels`` (see the module docstring)."""
    seen = [v for v in canonical_labels(labels) if v is not None]
    if not seen:
        raise InvalidParameterError("there are no labels to learn from (every target value is missing).")
    numeric = isinstance(seen[0], (int, float))
    if classes is not None:
        order = tuple(canonical_label(c, seen) for c in classes)
        if len(set(order)) != len(order):
            raise InvalidParameterError(f"`classes` must not repeat a class. Got {list(classes)} instead.")
        unknown = sorted(set(seen) - set(order), key=str)
        if unknown:
            raise InvalidParameterError(f"`classes` {list(order)} does not name the labels {unknown} found in the data.")
    else:
        order = tuple(sorted(set(seen)))
    if positive is None:
        if classes is None and not numeric:
            raise InvalidParameterError(
                f"the labels are names {list(order)}: say which count as engaged (positive=[...], CLI --positive), "
                "or give the classes from least to most engaged (classes=[...], --classes).")
        chosen: tuple[object, ...] = order[1:]
    else:
        chosen = tuple(canonical_label(c, order) for c in ([positive] if isinstance(positive, (str, int, float))
                                                               else positive))
        missing = [c for c in chosen if c not in order]
        if missing:
            raise InvalidParameterError(f"`positive` names {missing}, which are not classes {list(order)}.")
    if not chosen or len(chosen) == len(order):
        raise InvalidParameterError(f"`positive` must leave at least one class on each side. Got {list(chosen)} "
                                    f"of {list(order)}.")
    if classes is None and not numeric:  # names without an order: the non-engaged side first, nothing claimed inside
        order = tuple(c for c in order if c not in chosen) + tuple(c for c in order if c in chosen)
    return order, tuple(c for c in order if c in chosen)


def classes_ordered(labels: Iterable[object], *, classes: Sequence[object] | None = None) -> bool:
    """Whether :func:`resolve_classes` knows the classes' order from least to most engaged: ``classes`` was given,
    or the labels are numbers (levels). Names alone give only the engaged and the other side."""
    if classes is not None:
        return True
    seen = [v for v in canonical_labels(labels) if v is not None]
    return bool(seen) and isinstance(seen[0], (int, float))


def describe_classes(classes: Sequence[object], positive: Sequence[object], *, ordered: bool) -> dict[str, list]:
    """How a report states the classes: in their order when ``ordered``, else only which are engaged."""
    if ordered:
        return {"classes (least to most engaged)": list(classes)}
    return {"engaged": [c for c in classes if c in positive], "not engaged": [c for c in classes if c not in positive]}


def map_labels(values: pd.Series | np.ndarray, mapping: Mapping[object, object] | None) -> np.ndarray:
    """Labels through ``mapping`` (keys and values compared as canonical labels); unmapped labels become missing."""
    labels = canonical_labels(np.asarray(values, dtype=object))
    if not mapping:
        return labels
    keys = canonical_labels(list(mapping))
    targets = canonical_labels(list(mapping.values()))
    lookup = dict(zip(keys.tolist(), targets.tolist(), strict=True))
    return np.array([lookup.get(v) for v in labels], dtype=object)
