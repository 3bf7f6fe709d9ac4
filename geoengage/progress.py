"""Progress reporting: the API is silent and calls ``hook(stage, done, total)``; the CLI shows a bar."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Hook", "TqdmHook"]


class Hook(Protocol):
    """Called as work advances; ``total`` is None when unknown (a live stream)."""

    def __call__(self, stage: str, done: int, total: int | None) -> None: ...


class TqdmHook:
    """A :class:`Hook` drawing one tqdm bar per stage."""

    def __init__(self, **tqdm_kwargs: object) -> None:
        self._bars: dict[str, object] = {}
        self._kwargs = tqdm_kwargs

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        from tqdm.auto import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            bar = self._bars[stage] = tqdm(total=total, desc=stage, **self._kwargs)  # type: ignore[call-overload]
        bar.update(done - bar.n)  # type: ignore[attr-defined]
        if total is not None and done >= total:
            bar.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()  # type: ignore[attr-defined]
