"""Outputs written atomically: to a temporary name beside the target, then renamed into place.

A crash, a full disk or Ctrl-C while writing never leaves a half-written file under the target's name: the target
is either the previous file or the whole new one (a leftover ``*.tmp`` is all a failure can leave, and it is removed
when the write fails with an error). Every command's outputs (tables, reports, models, metadata) go through these.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

__all__ = ["WRITE_ERRNOS", "write_bytes", "write_table", "write_text"]

#: Errors of a write the user must fix before running again (a full disk or quota, a read-only or forbidden folder):
#: every command reports them in one line (``geoengage.cli``), a batch stops on them (``geoengage.dataset``).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def _atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return _atomically(path, lambda tmp: tmp.write_text(text))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return _atomically(path, lambda tmp: tmp.write_bytes(data))


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` to ``path`` atomically: CSV for a ``.csv`` name, else parquet."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _atomically(path, lambda tmp: table.to_csv(tmp, index=False))
    return _atomically(path, lambda tmp: table.to_parquet(tmp, index=False))
