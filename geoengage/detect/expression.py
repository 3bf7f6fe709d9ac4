"""Aligned face crops -> 8 expression probabilities: a small PyTorch CNN (FER+ classes, FER-2013 names).

Faces are prepared by :func:`geoengage.normalize.normalize_face` (eyes level, 48x48, CLAHE,
standardised) for training and inference alike. The network is VGG-like: four convolution
stages (batch norm, ReLU; widths and depths set by ``channels`` and ``convs``), global average
pooling, dropout and one linear layer. Measured here on two CPU cores (batch 128, channels-last): width 32 (0.58 M parameters)
takes about 245 s per FER-2013 training epoch, width 16 (0.15 M parameters) about 63 s.

:mod:`geoengage.modeling.cnn_training` holds the training loop's pieces (``models/train_expression.py`` runs them).
torch is imported only by this module (and the training module), so the rest of geoengage never loads it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..exceptions import InvalidParameterError, MissingDependencyError, SchemaError
from .models import load_weights

__all__ = [
    "EMBEDDING_PROJECTION",
    "EXPRESSION_CLASSES",
    "EXPRESSION_WEIGHTS",
    "FERPLUS_CLASSES",
    "FERPLUS_TO_EXPRESSION",
    "FERPLUS_TO_FER",
    "FER_CLASSES",
    "PRECISION_ENV",
    "ExpressionNet",
    "cnn_dtype",
    "for_inference",
    "load_embedding_projection",
    "load_expression_model",
    "predict_proba",
    "predict_with_embedding",
    "read_expression_net",
    "to_fer7",
]

#: The network's output order: FER-2013's seven classes in FER-2013's label order, then FER+'s contempt.
EXPRESSION_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
#: FER-2013's own seven classes (label order of its ``emotion`` column).
FER_CLASSES = EXPRESSION_CLASSES[:7]
#: FER+ emotion order (the first 8 vote columns of fer2013new.csv; ``unknown`` and ``NF`` are not classes).
FERPLUS_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
#: FER+ class -> FER-2013 class index (contempt, absent from FER-2013, joins disgust).
FERPLUS_TO_FER = (6, 3, 5, 4, 0, 1, 2, 1)
#: FER+ class order -> :data:`EXPRESSION_CLASSES` position (how the shipped head's rows are ordered).
FERPLUS_TO_EXPRESSION = (6, 3, 5, 4, 0, 1, 2, 7)


def to_fer7(proba: np.ndarray) -> np.ndarray:
    """8-class probabilities (:data:`EXPRESSION_CLASSES` order) -> FER-2013's 7 classes: contempt joins disgust."""
    seven = np.array(proba[:, :7], dtype=np.float64, copy=True)
    seven[:, 1] += proba[:, 7]
    return seven

#: The trained weights shipped in the package (``models/train_expression.py --ship``; card:
#: ``models/MODEL_CARD_expression.md``): a state dict of tensors, read with ``weights_only=True``.
EXPRESSION_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "expression_cnn.pt"


def _block(inputs: int, outputs: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(inputs if i == 0 else outputs, outputs, 3, padding=1, bias=False),
                   nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]
    return layers


class ExpressionNet(nn.Module):
    """Input (n, 1, 48, 48) standardised faces; output (n, 7) logits.

    Four stages of 3x3 convolutions (batch norm, ReLU), 2x2 max pooling between stages, global
    average pooling, dropout and one linear layer. ``channels`` and ``convs`` give each stage's
    width and number of convolutions; by default ``channels = (width, 2 width, 4 width, 8 width)`` and
    ``convs = (2, 2, 2, 1)``.
    """

    def __init__(self, n_classes: int = len(EXPRESSION_CLASSES), dropout: float = 0.3, width: int = 32,
                 channels: tuple[int, ...] | None = None, convs: tuple[int, ...] = (2, 2, 2, 1)) -> None:
        super().__init__()
        channels = tuple(channels) if channels is not None else (width, 2 * width, 4 * width, 8 * width)
        if len(channels) != len(convs) or min(convs) < 1:
            raise ValueError(f"`channels` and `convs` must have one entry per stage. Got {channels} and {convs}.")
        layers: list[nn.Module] = []
        previous = 1
        for stage, (outputs, n) in enumerate(zip(channels, convs, strict=True)):
            layers += _block(previous, outputs, n)
            previous = outputs
            if stage < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
        self.channels, self.convs = channels, tuple(convs)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(previous, n_classes))

    #: Logits are divided by this before the softmax (temperature scaling, fitted on PublicTest; 1 = none).
    temperature: float = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: globally pooled features of the last stage, (n, channels[-1])."""
        return self.head[1](self.head[0](self.features(x)))

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> ExpressionNet:
        """The network whose layers match ``state`` (read from the convolutions' positions and shapes), loaded.

        A ``calibration.temperature`` entry (a 0-d tensor) sets :attr:`temperature`.
        """
        state = dict(state)
        temperature = state.pop("calibration.temperature", None)
        positions = sorted(int(key.split(".")[1]) for key, value in state.items()
                           if key.startswith("features.") and key.endswith(".weight") and value.ndim == 4)
        channels, convs = [], []
        for k, position in enumerate(positions):
            out = int(state[f"features.{position}.weight"].shape[0])
            if k and position - positions[k - 1] == 3:  # the next convolution of the same stage
                channels[-1], convs[-1] = out, convs[-1] + 1
            else:  # 4 apart: a pooling layer began a new stage
                channels.append(out)
                convs.append(1)
        model = cls(n_classes=int(state["head.3.weight"].shape[0]), channels=tuple(channels), convs=tuple(convs))
        model.load_state_dict(state)
        if temperature is not None:
            model.temperature = float(temperature)
        return model


#: Environment variable choosing the expression CNN's inference precision: ``auto`` (default), ``float32`` or
#: ``bfloat16``. ``auto`` is bfloat16 on CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX), float32 elsewhere.
PRECISION_ENV = "GEOENGAGE_CNN_PRECISION"


def cnn_dtype(precision: str | None = None) -> torch.dtype:
    """The dtype the expression CNN runs in: ``precision`` (or :data:`PRECISION_ENV`, default ``auto``).

    bfloat16 halves the time per face where the CPU computes it natively (measured here: 2.0 vs 4.2 ms for a face
    and its mirror image on one thread) and changes the probabilities very little (shipped weights on FER-2013
    PrivateTest: FER+ accuracy 82.64% vs 82.61%, mean absolute difference 0.0004, largest 0.014, the same top class for
    99.94% of faces; see the model card). Set ``float32`` for bit-for-bit the same numbers on every machine.
    """

    choice = (precision or os.environ.get(PRECISION_ENV) or "auto").strip().lower()
    if choice not in ("auto", "float32", "bfloat16"):
        raise InvalidParameterError(f"{PRECISION_ENV}={choice!r}: use auto, float32 or bfloat16.")
    if choice == "auto":
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return torch.bfloat16 if native else torch.float32
    return torch.bfloat16 if choice == "bfloat16" else torch.float32


@lru_cache(maxsize=4)
def load_expression_model(path: str | Path | None = None, precision: str | None = None) -> ExpressionNet:
    """The expression CNN with trained weights (the shipped ones by default), in eval mode, in the dtype of
    :func:`cnn_dtype` (``precision``: ``auto``, ``float32`` or ``bfloat16``; default from :data:`PRECISION_ENV`).

    Loaded once per process (cached) and never unpickled: ``torch.load(..., weights_only=True)``
    accepts only tensors. The layers are read from the weights (:meth:`ExpressionNet.from_state_dict`).
    """
    return for_inference(read_expression_net(path), dtype=cnn_dtype(precision))


def read_expression_net(path: str | Path | None = None) -> ExpressionNet:
    """A fresh, trainable :class:`ExpressionNet` with the weights of ``path`` (the shipped ones by default), read with
    ``torch.load(..., weights_only=True)``: the starting point for fine-tuning and the unfused baseline."""

    return load_weights(path if path is not None else EXPRESSION_WEIGHTS, ExpressionNet.from_state_dict,
                        what="ExpressionNet", remedy="train them with models/train_expression.py --ship")


def for_inference(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Eval mode, batch norm folded into the convolutions of ``model.features`` (each convolution followed by its
    batch norm and ReLU), channels-last, weights in ``dtype``: the same outputs, about 2x faster (used for the gaze
    CNN too, which stays float32)."""
    from torch.ao.quantization import fuse_modules

    model.eval()
    layers = list(model.features)
    groups = [[str(i), str(i + 1), str(i + 2)] for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
    fuse_modules(model.features, groups, inplace=True)
    return model.to(dtype=dtype, memory_format=torch.channels_last)


def predict_proba(model: ExpressionNet, faces: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (n, classes) for standardised faces (n, 48, 48), logits divided by the model's
    temperature; the flipped face is averaged in (the probabilities of :func:`predict_with_embedding`)."""
    return predict_with_embedding(model, faces, batch_size=batch_size)[0]


@torch.no_grad()
def predict_with_embedding(model: ExpressionNet, faces: np.ndarray, *, batch_size: int = 256
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and penultimate embeddings (n, channels[-1]); face and mirror image averaged.

    Runs in the model's dtype (see :func:`cnn_dtype`); the results are float32."""
    if model.training:  # (eval() walks every module: ~0.5 ms per call on an already eval-mode model)
        model.eval()
    dtype = model.head[3].weight.dtype
    probas, embeddings = [], []
    for start in range(0, len(faces), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(faces[start:start + batch_size], dtype=np.float32)).unsqueeze(1)
        both = torch.cat([x, torch.flip(x, dims=[3])]).to(dtype).contiguous(memory_format=torch.channels_last)
        pooled = model.embed(both)
        logits = model.head[3](pooled).float()
        pooled = pooled.float()
        proba = (logits / model.temperature).softmax(dim=1)
        probas.append(((proba[:len(x)] + proba[len(x):]) / 2).numpy())
        embeddings.append(((pooled[:len(x)] + pooled[len(x):]) / 2).numpy())
    if not probas:
        return np.empty((0, model.head[3].out_features), np.float32), np.empty((0, model.channels[-1]), np.float32)
    return np.concatenate(probas), np.concatenate(embeddings)


#: Principal axes of the CNN's embedding (``models/fit_expression_embedding.py``), for the shipped weights.
EMBEDDING_PROJECTION = EXPRESSION_WEIGHTS.with_name("expression_embedding.npz")


@lru_cache(maxsize=2)
def load_embedding_projection(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components) of the shipped embedding projection; refuses one made for other weights."""
    import hashlib


    path = Path(path) if path is not None else EMBEDDING_PROJECTION
    if not path.is_file():
        raise MissingDependencyError(f"{path}: the expression embedding's projection is missing; make it with "
                                     "models/fit_expression_embedding.py.")
    data = np.load(path, allow_pickle=False)
    weights = hashlib.sha256(EXPRESSION_WEIGHTS.read_bytes()).hexdigest()
    if path == EMBEDDING_PROJECTION and str(data["weights_sha256"]) != weights:
        raise SchemaError(f"{path} was fitted for other CNN weights; run models/fit_expression_embedding.py again.")
    return data["mean"].astype(np.float32), data["components"].astype(np.float32)
