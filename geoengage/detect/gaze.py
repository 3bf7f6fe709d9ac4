"""Normalised eye crops + head pose -> gaze yaw and pitch: a small PyTorch CNN trained on MPIIGaze.

**Input** (:func:`predict_eye_crops`): the 9x15 window around the iris of MPIIGaze-normalised eye patches
(:func:`geoengage.normalize.normalize_eyes` makes them from a video frame; ``../shared/data/mpiigaze`` holds
them as the data set gives them), uint8, each looking like a *left* eye (right eyes mirrored), and the head
pose in the normalised camera, (yaw, pitch) in radians. **Output**: gaze (yaw, pitch) in radians in the
normalised camera, MPIIGaze's convention: gaze vector ``g = (-cos p sin y, -sin p, -cos p cos y)`` (x right,
y down, z forward), so (0, 0) looks into the camera, + yaw towards the image left, + pitch up.

**Network** (:class:`GazeNet`): each crop is standardised on its own (mean 0, sd 1: exposure and contrast
drop out), then 3x3 convolutions (batch norm, ReLU) at 9x15, 4x8 and 2x4 with 2x2 pooling between,
a 128-unit layer with dropout, and the head pose joined before the last linear layer (as in MPIIGaze's
CNN). The mirrored crop is scored too (its yaw negated) and the two averaged. Training
(``models/train_gaze.py``, :func:`geoengage.modeling.cnn_training.train_gaze_epoch`) mirrors half of every batch
(yaw of gaze and head pose negated), jitters brightness and contrast, and minimises the L1 error of the angles.
Weights ship as a tensor-only state dict (``geoengage/models/gaze_cnn.pt``, ``torch.load(weights_only=True)``);
card: ``models/MODEL_CARD_gaze.md``.
Trained on MPIIGaze (CC BY-NC-SA 4.0): the weights inherit its non-commercial terms.

torch is imported only by this module (and only when a gaze is predicted).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..exceptions import InvalidParameterError
from .expression import for_inference
from .models import load_weights

__all__ = ["GAZE_WEIGHTS", "GazeNet", "load_gaze_model", "predict_eye_crops", "read_gaze_net", "standardise_crops"]

#: The trained weights shipped in the package (``models/train_gaze.py --ship``).
GAZE_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "gaze_cnn.pt"
#: Added to a crop's standard deviation before dividing (a flat crop stays flat instead of blowing up noise).
_SD_FLOOR = 0.02


def standardise_crops(crops: np.ndarray) -> np.ndarray:
    """uint8 crops (n, 9, 15) -> float32, each crop to mean 0 and sd 1 (plus a floor)."""
    x = crops.astype(np.float32) / 255.0
    mean = x.mean(axis=(1, 2), keepdims=True)
    return (x - mean) / (x.std(axis=(1, 2), keepdims=True) + _SD_FLOOR)


def _block(inputs: int, outputs: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]


class GazeNet(nn.Module):
    """Input (n, 1, 9, 15) standardised crops and (n, 2) head yaw/pitch (radians); output (n, 2) gaze yaw/pitch.

    ``width`` sets the channels: ``width`` at 9x15, ``2 width`` at 4x7, ``4 width`` at 2x4.
    """

    def __init__(self, width: int = 32, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(*_block(1, width), *_block(width, width), nn.MaxPool2d(2),
                                      *_block(width, 2 * width), *_block(2 * width, 2 * width),
                                      nn.MaxPool2d(2, ceil_mode=True), *_block(2 * width, 4 * width))
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * 2 * 4, hidden), nn.ReLU(inplace=True),
                                    nn.Dropout(dropout))
        self.out = nn.Linear(hidden + 2, 2)

    def forward(self, crops: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.hidden(self.features(crops)), head], dim=1))

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> GazeNet:
        """The network whose layer sizes match ``state``, loaded."""
        model = cls(width=int(state["features.0.weight"].shape[0]), hidden=int(state["hidden.1.weight"].shape[0]))
        model.load_state_dict(state)
        return model


@lru_cache(maxsize=4)
def load_gaze_model(path: str | Path | None = None) -> GazeNet:
    """The gaze CNN with trained weights (the shipped ones by default), in eval mode with batch norm folded into the
    convolutions, loaded once per process and never unpickled (``torch.load(..., weights_only=True)``)."""
    return for_inference(read_gaze_net(path))


def read_gaze_net(path: str | Path | None = None) -> GazeNet:
    """A fresh :class:`GazeNet` with the weights of ``path`` (the shipped ones by default), read with
    ``torch.load(..., weights_only=True)``, batch norm not folded (the unfused baseline)."""
    return load_weights(path if path is not None else GAZE_WEIGHTS, GazeNet.from_state_dict, what="GazeNet",
                        remedy="train them with models/train_gaze.py --ship")


def _mirror(crops: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(crops[:, :, ::-1]), head * np.array([-1.0, 1.0], dtype=head.dtype)


@torch.no_grad()
def predict_eye_crops(crops: np.ndarray, headpose_yaw_pitch: np.ndarray, *, model: GazeNet | None = None,
                      batch_size: int = 512) -> np.ndarray:
    """Gaze (n, 2) yaw/pitch in radians from normalised eye crops, MPIIGaze's format and convention.

    Parameters
    ----------
    crops : ndarray of shape (n, 9, 15), uint8
        The 9x15 iris windows of MPIIGaze-normalised 36x60 eye patches (rows 13-21, columns 22-36), left eyes
        or right eyes mirrored, as in ``../shared/data/mpiigaze/mpiigaze_eye_crops.npz``.
    headpose_yaw_pitch : ndarray of shape (n, 2), radians
        Head pose in the normalised camera (a mirrored eye's yaw negated).
    model : GazeNet, optional
        Default: the shipped weights.
    """

    crops, head = np.asarray(crops), np.asarray(headpose_yaw_pitch, dtype=np.float32)
    if crops.ndim != 3 or crops.shape[1:] != (9, 15) or head.shape != (len(crops), 2):
        raise InvalidParameterError(f"`crops` must be (n, 9, 15) and `headpose_yaw_pitch` (n, 2). Got {crops.shape} "
                                    f"and {head.shape} instead.")
    model = model if model is not None else load_gaze_model()
    if model.training:  # (eval() walks every module: ~0.5 ms per call on an already eval-mode model)
        model.eval()
    out = np.empty((len(crops), 2), np.float32)
    flipped_crops, flipped_head = _mirror(crops, head)
    for start in range(0, len(crops), batch_size):
        rows = slice(start, start + batch_size)
        x = torch.from_numpy(standardise_crops(np.concatenate([crops[rows], flipped_crops[rows]])))[:, None].contiguous(
            memory_format=torch.channels_last)
        h = torch.from_numpy(np.concatenate([head[rows], flipped_head[rows]]))
        both = model(x, h).numpy()
        n = len(both) // 2
        out[rows] = (both[:n] + both[n:] * [-1.0, 1.0]) / 2
    return out
