"""Reliability diagram of the shipped expression CNN on FER-2013 PrivateTest (FER+ majority labels).

    python models/plot_expression_reliability.py [--aligned models/artifacts/expression_v03/fer_aligned.npz]

Writes models/expression_v03_reliability.png and prints the 15 equal-width confidence bins (count, mean
confidence, accuracy) and the expected calibration error, with the shipped temperature and without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from geoengage.detect.expression import FERPLUS_TO_EXPRESSION, load_expression_model, predict_proba
from geoengage.modeling.cnn_training import fer_faces_from_args, ferplus_targets

ROOT = Path(__file__).resolve().parents[1]


def bins(proba: np.ndarray, truth: np.ndarray, n: int = 15) -> tuple[list[tuple[int, float, float]], float]:
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == truth
    which = np.clip(np.digitize(confidence, np.linspace(0, 1, n + 1)[1:-1]), 0, n - 1)
    rows = [(int(np.sum(which == b)), float(confidence[which == b].mean()), float(correct[which == b].mean()))
            for b in range(n) if np.any(which == b)]
    return rows, float(sum(c / len(truth) * abs(m - a) for c, m, a in rows))


def main() -> int:
    loaded = fer_faces_from_args(__doc__, root=ROOT)
    if loaded is None:
        return 2
    data, aligned = loaded
    _, majority, usable = ferplus_targets(data["ferplus_votes"])
    rows = (data["usage"] == "PrivateTest") & usable & data["ferplus_has"] & (majority >= 0)
    faces = aligned[rows]
    truth = np.asarray(FERPLUS_TO_EXPRESSION)[majority[rows]]
    model = load_expression_model()
    scaled = predict_proba(model, faces)
    temperature, model.temperature = model.temperature, 1.0
    raw = predict_proba(model, faces)
    model.temperature = temperature
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    for name, proba in ((f"temperature {temperature:.2f}", scaled), ("no temperature", raw)):
        found, ece = bins(proba, truth)
        ax.plot([m for _, m, _ in found], [a for _, _, a in found], marker="o", label=f"{name} (ECE {ece:.3f})")
        print(f"{name}: ECE {ece:.4f}; bins (n, confidence, accuracy): "
              + ", ".join(f"({c}, {m:.2f}, {a:.2f})" for c, m, a in found))
    ax.set(xlabel="confidence of the top class", ylabel="accuracy", title=f"PrivateTest, {len(truth)} images")
    ax.legend(fontsize=8)
    out = ROOT / "models" / "expression_v03_reliability.png"
    fig.savefig(out, dpi=100, bbox_inches="tight")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
