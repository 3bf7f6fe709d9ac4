"""Aligned face crops -> expression probabilities, from the CNN shipped in the package.

The seven ``expr_<class>`` columns are the softmax of :class:`geoengage.detect.expression.ExpressionNet`
(averaged with the mirrored face) over the FER-2013 classes; they sum to 1 in every row with a
face. Extraction also writes ``expr_class``, the most probable class (see the per-frame schema).
The network is trained on FER-2013 (posed and web photos), not on classrooms: read
``models/MODEL_CARD_expression.md`` before interpreting these columns. torch is imported the
first time a batch is scored, never by importing this module.
"""

from __future__ import annotations

import numpy as np

from .registry import frame_features

__all__ = ["EXPRESSION_CLASSES", "expression_probabilities"]

#: FER-2013 label order (the same tuple as ``geoengage.detect.expression.EXPRESSION_CLASSES``,
#: repeated here so that listing features does not import torch; a test checks they agree).
EXPRESSION_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

_WORDS = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
          "surprise": "surprise", "neutral": "a neutral face"}


@frame_features(*((f"expr_{c}", "probability", 0.0, 1.0, f"CNN probability of {_WORDS[c]} (FER-2013 classes; "
                   "the seven sum to 1).") for c in EXPRESSION_CLASSES), kind="faces")
def expression_probabilities(faces: np.ndarray) -> dict[str, np.ndarray]:
    from ..detect.expression import load_expression_model, predict_proba

    proba = predict_proba(load_expression_model(), faces) if len(faces) else np.empty((0, len(EXPRESSION_CLASSES)))
    return {f"expr_{c}": proba[:, k] for k, c in enumerate(EXPRESSION_CLASSES)}
