"""Training the CNNs: the expression CNN on FER-2013 / FER+ and the gaze CNN on MPIIGaze (the loops, augmentation,
targets and metrics the ``models/train_*.py`` scripts run). Inference lives in :mod:`geoengage.detect.expression` and
:mod:`geoengage.detect.gaze`; nothing here runs when geoengage measures a face.

torch is imported by this module, which geoengage itself never imports.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..detect.expression import ExpressionNet, predict_proba
from ..detect.gaze import GazeNet, standardise_crops
from ..geometry.gaze import vectors_from_yaw_pitch
from ..normalize import equalize_illumination, normalize_crops

__all__ = ["aligned_fer_faces", "angular_error_deg", "augment", "evaluate_expression", "fer_faces",
           "fer_faces_from_args", "ferplus_targets", "load_fer", "plain_faces", "take_step", "train_expression_epoch",
           "train_gaze_epoch"]

logger = logging.getLogger(__name__)


def augment(batch: torch.Tensor, generator: torch.Generator, *, max_shift: float = 0.08,
            max_rotation_deg: float = 10.0, max_zoom: float = 0.1) -> torch.Tensor:
    """Random horizontal flip, shift, rotation and zoom of a (n, 1, h, w) batch (one affine warp)."""
    n = batch.shape[0]
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * np.radians(max_rotation_deg)
    zoom = 1 + (torch.rand(n, generator=generator) * 2 - 1) * max_zoom
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * max_shift * 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
                         torch.stack([sin * flip, cos, shift[:, 1]], dim=1)], dim=1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, padding_mode="border", align_corners=False)


def take_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
              scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
    """One optimisation step on ``loss`` (gradients cleared first), then the schedule's step (both CNNs' loops)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


def train_expression_epoch(model: ExpressionNet, faces: np.ndarray, labels: np.ndarray, *,
                           optimizer: torch.optim.Optimizer,
                           scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, batch_size: int = 128,
                           class_weights: np.ndarray | None = None, label_smoothing: float = 0.1, seed: int = 0,
                           augmentation: bool = True) -> float:
    """One pass over ``faces`` (n, 48, 48) float32 with ``labels``; returns the mean training loss.

    ``labels`` are class indices (n,) or a distribution over the classes per face (n, k), e.g. FER+'s
    normalised crowd votes (cross-entropy to the soft label).
    """
    generator = torch.Generator().manual_seed(seed)
    weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    order = torch.randperm(len(faces), generator=generator)
    soft = labels.ndim == 2
    x_all = torch.from_numpy(faces).unsqueeze(1)
    y_all = torch.from_numpy(labels.astype(np.float32 if soft else np.int64))
    model.train()
    total, seen = 0.0, 0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        x, y = x_all[rows], y_all[rows]
        if augmentation:
            x = augment(x, generator)
        x = x.contiguous(memory_format=torch.channels_last)  # about 20% faster convolutions on the CPU
        loss = F.cross_entropy(model(x), y, weight=weights, label_smoothing=label_smoothing)
        take_step(loss, optimizer, scheduler)
        total += loss.item() * len(rows)
        seen += len(rows)
    return total / max(seen, 1)


def ferplus_targets(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FER+ votes (n, 10) -> soft targets (n, 8), majority label (n,) and which rows are usable.

    A row is usable when it has votes and its majority (over all 10 columns) is one of the 8 emotions;
    the majority label is -1 where the top count is tied. Soft targets drop single votes (FER+'s outlier
    rule) unless that leaves nothing, and are normalised over the 8 emotions.
    """
    votes = votes.astype(np.float64)
    top = votes.max(axis=1)
    tied = (votes == top[:, None]).sum(axis=1) > 1
    majority = np.where(tied, -1, votes.argmax(axis=1))
    usable = (votes.sum(axis=1) > 0) & (votes[:, :8].max(axis=1) >= votes[:, 8:].max(axis=1)) & (top > 0)
    emotions = votes[:, :8]
    pruned = np.where(emotions > 1, emotions, 0.0)
    emotions = np.where(pruned.sum(axis=1, keepdims=True) > 0, pruned, emotions)
    soft = emotions / np.maximum(emotions.sum(axis=1, keepdims=True), 1e-9)
    majority = np.where(majority < 8, majority, -1)
    return soft.astype(np.float32), majority, usable


def evaluate_expression(model: ExpressionNet, faces: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 on a labelled set (class indices in the model's output order)."""
    from sklearn.metrics import f1_score

    proba = predict_proba(model, faces)
    predicted = proba.argmax(axis=1)
    return {"accuracy": float(np.mean(predicted == labels)),
            "macro_f1": float(f1_score(labels, predicted, average="macro", labels=range(proba.shape[1])))}


def angular_error_deg(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Angle in degrees between gaze directions given as (n, 2) yaw/pitch in radians."""
    cosine = (vectors_from_yaw_pitch(predicted) * vectors_from_yaw_pitch(true)).sum(axis=-1)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def train_gaze_epoch(model: GazeNet, crops: np.ndarray, head: np.ndarray, gaze: np.ndarray, *,
                optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                batch_size: int = 256, seed: int = 0, mirror: bool = True, jitter: float = 0.2) -> float:
    """One pass over the training crops (n, 9, 15) uint8 with head pose and gaze (n, 2) radians; returns the mean
    L1 loss. Half of every batch is mirrored (gaze and head yaw negated) when ``mirror``; ``jitter`` scales a
    random contrast (x 1 +- jitter) and brightness (+ N(0, jitter / 2)) change of the standardised crops."""
    rng = np.random.default_rng(seed)
    x_all, head, gaze = standardise_crops(crops), head.astype(np.float32), gaze.astype(np.float32)
    model.train()
    total = 0.0
    order = rng.permutation(len(x_all))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        x, h, g = x_all[rows].copy(), head[rows].copy(), gaze[rows].copy()
        if jitter:
            x = (x * rng.uniform(1 - jitter, 1 + jitter, (len(rows), 1, 1))
                 + rng.normal(0, jitter / 2, (len(rows), 1, 1))).astype(np.float32)
        if mirror:
            flip = rng.random(len(rows)) < 0.5
            x[flip], h[flip, 0], g[flip, 0] = x[flip][:, :, ::-1], -h[flip, 0], -g[flip, 0]
        loss = F.l1_loss(model(torch.from_numpy(np.ascontiguousarray(x))[:, None], torch.from_numpy(h)),
                         torch.from_numpy(g))
        take_step(loss, optimizer, scheduler)
        total += loss.item() * len(rows)
    return total / max(len(order), 1)


def plain_faces(images: np.ndarray) -> np.ndarray:
    """FER-2013's 48x48 crops as they are (no landmarks, no rotation or scaling), with the same illumination
    equalisation and standardisation as aligned faces: the plain-crop side of the alignment comparison."""
    faces = np.empty(images.shape, np.float32)
    for i, image in enumerate(images):
        face = equalize_illumination(np.ascontiguousarray(image, dtype=np.uint8)).astype(np.float32)
        faces[i] = (face - face.mean()) / max(float(face.std()), 1e-6)
    return faces


def aligned_fer_faces(data, cache: Path, *,  # type: ignore[no-untyped-def]
                      save: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every FER-2013 image of ``data`` (:func:`load_fer`) aligned as inference aligns faces
    (:func:`geoengage.normalize.normalize_crops`), and whether the detector framed it: from the ``cache`` a training
    run wrote, or aligned now (and cached when ``save``)."""
    if cache.is_file():
        aligned = np.load(cache)
        return aligned["faces"], aligned["detected"]
    start = time.perf_counter()
    faces, detected = normalize_crops(data["images"])
    if save:
        np.savez_compressed(cache, faces=faces, detected=detected)
    logger.info("aligned %d faces in %.0f s (detector %.1f%%, crop box %.1f%%)", len(faces),
                time.perf_counter() - start, 100 * detected.mean(), 100 * (1 - detected.mean()))
    return faces, detected


def load_fer(path: Path) -> Any | None:
    """FER-2013 with FER+ votes (``../shared/data/fer2013/fer2013.npz``: images, usage, labels, votes), or None where
    the file is absent (the scripts then say "blocked")."""
    if not Path(path).is_file():
        return None
    return np.load(path, allow_pickle=False)


def fer_faces(data_path: Path, aligned_path: Path) -> tuple[Any, np.ndarray] | None:
    """For the scripts that study the shipped CNN on FER-2013: the data set and its faces aligned as in training (the
    training run's cache ``aligned_path``, or aligned now); None when the data set is absent."""
    data = load_fer(data_path)
    if data is None:
        return None
    return data, aligned_fer_faces(data, aligned_path, save=False)[0]


def fer_faces_from_args(description: str, *, root: Path) -> tuple[Any, np.ndarray] | None:
    """For a ``models/`` script: parse ``--data`` (default ``<root>/../shared/data/fer2013/fer2013.npz``) and
    ``--aligned`` (default the expression_v03 training run's cache under ``<root>/models/artifacts``), then
    :func:`fer_faces`; prints "blocked: ..." and returns None when the data set is absent."""
    import argparse

    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--data", type=Path, default=root.parent / "shared" / "data" / "fer2013" / "fer2013.npz")
    parser.add_argument("--aligned", type=Path, default=root / "models" / "artifacts" / "expression_v03" /
                        "fer_aligned.npz", help="aligned faces cached by models/train_expression.py")
    args = parser.parse_args()
    loaded = fer_faces(args.data, args.aligned)
    if loaded is None:
        print(f"blocked: {args.data} is absent")
    return loaded

