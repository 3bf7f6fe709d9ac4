"""Fit the projection of the expression CNN's embedding that extraction writes as ``expr_emb_00 ... expr_emb_15``.

    python models/fit_expression_embedding.py [--data FER.npz] [--aligned models/artifacts/expression_v03/fer_aligned.npz]

The shipped CNN's penultimate layer (256 pooled features, face and mirror averaged) is computed for the FER-2013
``Training`` faces, aligned as in training and inference (the cache that models/train_expression.py writes, or
aligned here), and its first 16 principal axes are saved with the mean, the share of variance each explains and
the SHA-256 of the weights they belong to, as ``geoengage/models/expression_embedding.npz`` (plain arrays, loaded
with ``allow_pickle=False``; refused when the weights change).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from geoengage.detect.expression import (
    EMBEDDING_PROJECTION,
    EXPRESSION_WEIGHTS,
    load_expression_model,
    predict_with_embedding,
)
from geoengage.modeling.cnn_training import fer_faces_from_args

N_COMPONENTS = 16

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    loaded = fer_faces_from_args(__doc__, root=ROOT)
    if loaded is None:
        return 2
    data, faces = loaded
    faces = faces[data["usage"] == "Training"]
    _, embedding = predict_with_embedding(load_expression_model(), faces)
    mean = embedding.mean(axis=0)
    _, singular, axes = np.linalg.svd(embedding - mean, full_matrices=False)
    explained = singular**2 / np.sum(singular**2)
    components = axes[:N_COMPONENTS]
    components *= np.sign(components[np.arange(N_COMPONENTS), np.abs(components).argmax(axis=1)])[:, None]
    scores = (embedding - mean) @ components.T
    components /= scores.std(axis=0)[:, None]  # unit variance on FER-2013 Training
    np.savez(EMBEDDING_PROJECTION, mean=mean.astype(np.float32), components=components.astype(np.float32),
             explained=explained[:N_COMPONENTS].astype(np.float32),
             weights_sha256=np.array(hashlib.sha256(EXPRESSION_WEIGHTS.read_bytes()).hexdigest()))
    print(f"{EMBEDDING_PROJECTION}: {N_COMPONENTS} axes explain {explained[:N_COMPONENTS].sum():.1%} of the variance "
          f"of {len(faces)} FER-2013 Training embeddings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
