"""Aligned face crops -> expression probabilities and an appearance embedding, from the CNN shipped in the package.

The eight ``expr_<class>`` columns are the temperature-scaled softmax of
:class:`geoengage.detect.expression.ExpressionNet` (averaged with the mirrored face) over FER+'s eight emotions,
named as in FER-2013 (``angry disgust fear happy sad surprise neutral``) plus ``contempt``; they sum to 1 in
every row with a face. Feature sets made before contempt existed still find their seven columns; FER-2013's
seven-class view (contempt joined to disgust) is :func:`geoengage.detect.expression.to_fer7`. Extraction also
writes ``expr_class``, the most probable class (see the per-frame schema).

``expr_emb_00`` ... ``expr_emb_15`` are the same forward pass's penultimate layer (256 pooled features)
projected on its 16 principal axes over FER-2013 Training (``models/fit_expression_embedding.py``; unit
variance there): a compact description of the face's appearance for models that need more than geometry
(the ``appearance`` window feature set). They describe the face, so they also carry identity: check the
set-up audit before relying on them.
The CNN runs in bfloat16 on CPUs with native bfloat16 (AVX512-BF16 or AMX) and in float32 elsewhere; the two differ
by about 0.0004 in probability on average (``GEOENGAGE_CNN_PRECISION=float32`` makes every machine compute the same
numbers; :func:`geoengage.detect.expression.cnn_dtype`).
The network is trained on FER-2013 (posed and web photos), not on classrooms: read
``models/MODEL_CARD_expression.md`` before interpreting these columns. torch is imported the
first time a batch is scored, never by importing this module.
"""

from __future__ import annotations

import numpy as np

from .base import frame_features

__all__ = ["EXPRESSION_CLASSES", "expression_probabilities"]

#: The CNN's classes (the same tuple as ``geoengage.detect.expression.EXPRESSION_CLASSES``, repeated here so
#: that listing features does not import torch; a test checks they agree).
EXPRESSION_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")

_WORDS = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
          "surprise": "surprise", "neutral": "a neutral face", "contempt": "contempt"}


#: Principal axes of the CNN embedding written per face.
N_EMBEDDING = 16
EMBEDDING_COLUMNS = tuple(f"expr_emb_{k:02d}" for k in range(N_EMBEDDING))


@frame_features(*((f"expr_{c}", "probability", 0.0, 1.0, (f"CNN probability of {_WORDS[c]} (FER+ classes; "
                   "the eight sum to 1).")) for c in EXPRESSION_CLASSES),
                *((name, "sd", -20.0, 20.0, (f"Expression CNN embedding on its principal axis {k + 1} (unit variance "
                   "over FER-2013 Training faces): appearance, for the `appearance` feature set."))
                  for k, name in enumerate(EMBEDDING_COLUMNS)),
                kind="faces", typical_range=EMBEDDING_COLUMNS)
def expression_probabilities(faces: np.ndarray) -> dict[str, np.ndarray]:
    # torch loads only when a CNN runs
    from ..detect.expression import load_embedding_projection, load_expression_model, predict_with_embedding

    if not len(faces):
        return {name: np.empty(0) for name in (*(f"expr_{c}" for c in EXPRESSION_CLASSES), *EMBEDDING_COLUMNS)}
    proba, embedding = predict_with_embedding(load_expression_model(), faces)
    mean, components = load_embedding_projection()
    scores = (embedding - mean) @ components.T
    return {**{f"expr_{c}": proba[:, k] for k, c in enumerate(EXPRESSION_CLASSES)},
            **{name: scores[:, k] for k, name in enumerate(EMBEDDING_COLUMNS)}}
