"""Aligned face crops -> 7 expression probabilities: a small PyTorch CNN (FER-2013 classes).

Faces are prepared by :func:`geoengage.normalize.normalize_face` (eyes level, 48x48, CLAHE,
standardised) for training and inference alike. The network is VGG-like: four convolution
stages (``width`` x 1, 2, 4, 8 channels, batch norm, ReLU), global average pooling, dropout and one
linear layer. Measured here on two CPU cores (batch 128, channels-last): width 32 (0.58 M parameters)
takes about 245 s per FER-2013 training epoch, width 16 (0.15 M parameters) about 63 s.

:func:`train_epoch` and :func:`evaluate` are the training loop's pieces (``models/train_expression.py``
uses them); torch is imported only by this module, so the rest of geoengage never loads it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EXPRESSION_CLASSES", "ExpressionNet", "augment", "evaluate", "predict_proba", "train_epoch"]

#: FER-2013 label order.
EXPRESSION_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _block(inputs: int, outputs: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(inputs if i == 0 else outputs, outputs, 3, padding=1, bias=False),
                   nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]
    return layers


class ExpressionNet(nn.Module):
    """Input (n, 1, 48, 48) standardised faces; output (n, 7) logits. ``width`` is the first stage's channels."""

    def __init__(self, n_classes: int = len(EXPRESSION_CLASSES), dropout: float = 0.3, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_block(1, w, 2), nn.MaxPool2d(2),
            *_block(w, 2 * w, 2), nn.MaxPool2d(2),
            *_block(2 * w, 4 * w, 2), nn.MaxPool2d(2),
            *_block(4 * w, 8 * w, 1),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(8 * w, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


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


def train_epoch(model: ExpressionNet, faces: np.ndarray, labels: np.ndarray, *, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, batch_size: int = 128,
                class_weights: np.ndarray | None = None, label_smoothing: float = 0.1, seed: int = 0,
                augmentation: bool = True) -> float:
    """One pass over ``faces`` (n, 48, 48) float32 with ``labels`` (n,); returns the mean training loss."""
    generator = torch.Generator().manual_seed(seed)
    weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    order = torch.randperm(len(faces), generator=generator)
    x_all, y_all = torch.from_numpy(faces).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
    model.train()
    total, seen = 0.0, 0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        x, y = x_all[rows], y_all[rows]
        if augmentation:
            x = augment(x, generator)
        x = x.contiguous(memory_format=torch.channels_last)  # about 20% faster convolutions on the CPU
        loss = F.cross_entropy(model(x), y, weight=weights, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(rows)
        seen += len(rows)
    return total / max(seen, 1)


@torch.no_grad()
def predict_proba(model: ExpressionNet, faces: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (n, 7) for standardised faces (n, 48, 48); the flipped face is averaged in."""
    model.eval()
    out = []
    for start in range(0, len(faces), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(faces[start:start + batch_size])).unsqueeze(1)
        logits = model(x).softmax(dim=1) + model(torch.flip(x, dims=[3])).softmax(dim=1)
        out.append((logits / 2).numpy())
    return np.concatenate(out) if out else np.empty((0, len(EXPRESSION_CLASSES)), dtype=np.float32)


def evaluate(model: ExpressionNet, faces: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 on a labelled set."""
    from sklearn.metrics import f1_score

    predicted = predict_proba(model, faces).argmax(axis=1)
    return {"accuracy": float(np.mean(predicted == labels)),
            "macro_f1": float(f1_score(labels, predicted, average="macro", labels=range(len(EXPRESSION_CLASSES))))}
