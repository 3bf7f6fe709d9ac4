"""Aligned face crops -> engagement classes: the shipped expression CNN fine-tuned (transfer from facial expression).

For data sets of single face images (engagement_wacv, DAiSEE's one crop per clip), engagement is often recognised
by transferring an expression network: :class:`FaceCropClassifier` starts from the shipped expression CNN's weights
(:mod:`geoengage.detect.expression`), replaces its 8-way output layer by one for the engagement classes, and trains
the whole network for a few epochs (AdamW, the new layer at 10x the learning rate of the pretrained ones, the
expression training's augmentation: flip, shift, rotation, zoom; label smoothing 0.1). Inputs are faces aligned by
:func:`geoengage.normalize.normalize_face`, the expression CNN's own preparation. It is an sklearn-style estimator
(``fit``, ``predict_proba``, ``predict``, ``classes_``), so it is fitted inside each training fold only; the
engagement benchmarks run it on the same subject-grouped folds as the feature-based models ("fine-tuned CNN").
torch is imported when it is fitted, not when this module is imported.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..exceptions import InvalidParameterError

__all__ = ["FaceCropClassifier"]


class FaceCropClassifier(ClassifierMixin, BaseEstimator):
    """The expression CNN fine-tuned to classify aligned faces (n, 48, 48) float32 into engagement classes.

    Parameters
    ----------
    epochs : int
        Passes over the training faces.
    learning_rate : float
        AdamW learning rate of the pretrained layers (the new output layer gets 10x).
    batch_size : int
    weight_decay : float
    seed : int
        Seeds the new layer, the batch order and the augmentation (same data and seed, same model on the CPU).
    threads : int
        torch threads while fitting and predicting.
    """

    def __init__(self, *, epochs: int = 6, learning_rate: float = 3e-4, batch_size: int = 64,
                 weight_decay: float = 1e-4, seed: int = 0, threads: int = 1) -> None:
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        self.threads = threads

    def fit(self, faces: np.ndarray, y: np.ndarray) -> FaceCropClassifier:
        import torch
        from torch import nn

        # torch loads only when a CNN runs
        from ..detect.expression import read_expression_net

        # torch loads only when a CNN runs
        from .cnn_training import train_expression_epoch

        faces = self.check_setting(faces)
        if len(faces) != len(y):
            raise InvalidParameterError(f"`faces` and `y` must have the same length. Got {len(faces)} and {len(y)}.")
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise InvalidParameterError(f"`y` must hold at least two classes. Got {list(self.classes_)} instead.")
        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        model = read_expression_net()
        model.head[3] = nn.Linear(model.head[3].in_features, len(self.classes_))
        model.temperature = 1.0
        new = list(model.head[3].parameters())
        pretrained = [p for p in model.parameters() if all(p is not q for q in new)]
        optimizer = torch.optim.AdamW([{"params": pretrained, "lr": self.learning_rate},
                                       {"params": new, "lr": 10 * self.learning_rate}],
                                      weight_decay=self.weight_decay)
        self.losses_ = [train_expression_epoch(model, faces, codes.astype(np.int64), optimizer=optimizer,
                                    batch_size=self.batch_size, seed=self.seed + epoch)
                        for epoch in range(self.epochs)]
        self.model_ = model.eval()
        return self

    def predict_proba(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes), the face and its mirror image averaged."""
        import torch

        # torch loads only when a CNN runs
        from ..detect.expression import predict_proba

        torch.set_num_threads(self.threads)
        return predict_proba(self.model_, self.check_setting(faces)).astype(np.float64)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(faces).argmax(axis=1)]

    @staticmethod
    def check_setting(faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces, dtype=np.float32)
        if faces.ndim != 3 or faces.shape[1:] != (48, 48) or not np.isfinite(faces).all():
            raise InvalidParameterError("`faces` must be finite aligned faces of shape (n, 48, 48) "
                                        f"(geoengage.normalize.normalize_face). Got shape {faces.shape} instead.")
        return np.ascontiguousarray(faces)
