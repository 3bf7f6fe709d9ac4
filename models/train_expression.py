"""Train the expression CNN on FER-2013 (Training), choose the epoch on PublicTest, report PrivateTest once.

    python models/train_expression.py models/configs/expression_v03.toml [--epochs N] [--ship]

``labels = "fer"`` (versions 01-02) learns FER-2013's single labels, 7 classes. ``labels = "ferplus"``
(version 03 on) learns FER+'s crowd votes, 8 classes: each training image's target is its vote
distribution over the 8 emotions after votes cast by a single annotator are dropped (FER+'s outlier rule);
images whose majority is "unknown" or "not a face" are left out. Epochs are chosen on PublicTest and
PrivateTest is reported on the FER+ majority label (ties, unknown and not-a-face dropped), and through the
7-class mapping (contempt -> disgust) against FER-2013's own labels. A temperature for the logits is fitted
on PublicTest (negative log-likelihood of the majority label) and its calibration reported on PrivateTest.

1. Every FER image is aligned by the same function inference uses (``alignment = "landmarks"``, the default; or
   ``"plain"``: the 48x48 crop as it is, equalised and standardised, for the alignment comparison): dlib landmarks on the image
   upscaled 3x (the detector's box, or the calibrated crop box when it finds nothing), then
   ``geoengage.normalize.normalize_face`` (eyes level, 48x48, CLAHE, standardised). The aligned set is
   cached in models/artifacts/<name>/fer_aligned.npz (git-ignored; FER-2013 is not redistributed).
2. AdamW with a one-cycle schedule, label smoothing, class weights, seeded augmentation (flip, shift,
   rotation, zoom). After every epoch, PublicTest accuracy; the best epoch's weights are kept.
3. PrivateTest is evaluated once, with the kept weights; per-class results, curves (PNG) and a JSON
   summary go to models/artifacts/<name>/. With --ship the weights are copied into the package as
   geoengage/models/expression_cnn.pt (a state dict, loaded with torch.load(weights_only=True)).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import torch

from geoengage.detect.expression import (
    FER_CLASSES,
    FERPLUS_CLASSES,
    FERPLUS_TO_EXPRESSION,
    ExpressionNet,
    predict_proba,
    to_fer7,
)
from geoengage.modeling.cnn_training import (
    aligned_fer_faces,
    evaluate_expression,
    ferplus_targets,
    plain_faces,
    train_expression_epoch,
)

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--epochs", type=int, help="override the config (e.g. for a quick check)")
    parser.add_argument("--ship", action="store_true")
    args = parser.parse_args()
    config = tomllib.loads(args.config.read_text())
    epochs = args.epochs or config["epochs"]
    data_path = (ROOT / config["data"]).resolve()
    if not data_path.is_file():
        print(f"blocked: {data_path} is absent")
        return 2
    out = ROOT / "models" / "artifacts" / config["name"]
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["threads"])

    data = np.load(data_path, allow_pickle=False)
    if config.get("alignment", "landmarks") == "plain":  # the crop as it is: no landmarks, no geometric alignment
        faces, detected = plain_faces(data["images"]), np.zeros(len(data["images"]), bool)
    else:
        cache = config.get("aligned_cache")
        faces, detected = aligned_fer_faces(data, ROOT / cache if cache else out / "fer_aligned.npz", save=not cache)
    usage = data["usage"]
    split = {name: usage == name for name in ("Training", "PublicTest", "PrivateTest")}
    if config.get("labels", "fer") == "ferplus":
        return _train_ferplus(config, args, data, faces, detected, split, epochs, out)
    labels = data["labels"].astype(np.int64)
    counts = np.bincount(labels[split["Training"]], minlength=len(FER_CLASSES))
    weights = (np.median(counts) / counts) ** config["class_weight_power"]

    shape = ({"channels": tuple(config["channels"]), "convs": tuple(config["convs"])} if "channels" in config
             else {"width": config["width"]})
    model = ExpressionNet(n_classes=len(FER_CLASSES), **shape).to(memory_format=torch.channels_last)
    history, best = _fit_epochs(model, config, epochs, (faces[split["Training"]], labels[split["Training"]]),
                                weights, (faces[split["PublicTest"]], labels[split["PublicTest"]]), out)
    torch.save(best[1], out / "expression_cnn.pt")
    private = evaluate_expression(model, faces[split["PrivateTest"]], labels[split["PrivateTest"]])
    predicted = predict_proba(model, faces[split["PrivateTest"]]).argmax(axis=1)
    truth = labels[split["PrivateTest"]]
    per_class = {c: float(np.mean(predicted[truth == k] == k)) for k, c in enumerate(FER_CLASSES)}
    summary = {"config": config, "epochs_run": epochs, "best_epoch": best[2], "public_accuracy": best[0],
               "private": private, "private_recall_per_class": per_class, "history": history,
               "aligned_by_detector": float(detected.mean())}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _plot(history, out / "curves.png")
    print(json.dumps({"best_epoch": best[2], "public_accuracy": best[0], "private": private}))
    if args.ship:
        target = ROOT / "geoengage" / "models" / "expression_cnn.pt"
        shutil.copy2(out / "expression_cnn.pt", target)
        print(f"shipped to {target}")
    return 0


def _fit_epochs(model: ExpressionNet, config: dict, epochs: int, train: tuple[np.ndarray, np.ndarray],
                weights: np.ndarray, public: tuple[np.ndarray, np.ndarray], out: Path) -> tuple[list, tuple]:
    """The training loop both label kinds share: AdamW with a one-cycle schedule, PublicTest accuracy after every
    epoch, the best epoch's weights kept (saved as they improve, so an interrupted run keeps them) and loaded
    back into ``model``. Returns the history and (accuracy, weights, epoch) of the best epoch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"])
    steps = epochs * int(np.ceil(len(train[0]) / config["batch_size"]))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config["learning_rate"], total_steps=steps)
    history, best = [], (-1.0, None, -1)
    for epoch in range(epochs):
        start = time.perf_counter()
        loss = train_expression_epoch(model, train[0], train[1], optimizer=optimizer, scheduler=scheduler,
                           batch_size=config["batch_size"], class_weights=weights,
                           label_smoothing=config["label_smoothing"], seed=config["seed"] + epoch)
        scores = evaluate_expression(model, public[0], public[1])
        history.append({"epoch": epoch + 1, "train_loss": loss, **{f"public_{k}": v for k, v in scores.items()},
                        "seconds": time.perf_counter() - start})
        print(json.dumps(history[-1]), flush=True)
        if scores["accuracy"] > best[0]:
            best = (scores["accuracy"], {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
            torch.save(best[1], out / "expression_cnn.pt")
    model.load_state_dict(best[1])
    return history, best


def _logits(model: ExpressionNet, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits of each face and of its mirror image."""
    model.eval()
    plain, mirrored = [], []
    with torch.no_grad():
        for start in range(0, len(faces), 256):
            x = torch.from_numpy(np.ascontiguousarray(faces[start:start + 256])).unsqueeze(1)
            plain.append(model(x).numpy())
            mirrored.append(model(torch.flip(x, dims=[3])).numpy())
    return np.concatenate(plain), np.concatenate(mirrored)


def proba_at(logits: tuple[np.ndarray, np.ndarray], temperature: float) -> np.ndarray:
    """Probabilities with the logits divided by ``temperature``, face and mirror averaged (as at inference)."""
    def softmax(z: np.ndarray) -> np.ndarray:
        z = z / temperature
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return (softmax(logits[0]) + softmax(logits[1])) / 2


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence over equal-width bins."""
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(confidence[which == b].mean() - correct[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def fit_temperature(logits: tuple[np.ndarray, np.ndarray], labels: np.ndarray) -> float:
    """The temperature (0.5-3) that minimises the negative log-likelihood of ``labels``."""
    grid = np.round(np.arange(0.5, 3.001, 0.01), 2)
    nll = [-np.mean(np.log(proba_at(logits, t)[np.arange(len(labels)), labels] + 1e-12)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def _train_ferplus(config: dict, args: argparse.Namespace, data, faces: np.ndarray, detected: np.ndarray,
                   split: dict[str, np.ndarray], epochs: int, out: Path) -> int:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    soft, majority, usable = ferplus_targets(data["ferplus_votes"])
    usable &= data["ferplus_has"]
    train = split["Training"] & usable
    public = split["PublicTest"] & usable & (majority >= 0)
    private = split["PrivateTest"] & usable & (majority >= 0)
    counts = np.bincount(majority[train & (majority >= 0)], minlength=8)
    weights = (np.median(counts) / np.maximum(counts, 1)) ** config["class_weight_power"]
    shape = {"channels": tuple(config["channels"]), "convs": tuple(config["convs"])}
    model = ExpressionNet(n_classes=len(FERPLUS_CLASSES), **shape).to(memory_format=torch.channels_last)
    print(json.dumps({"training_images": int(train.sum()), "public": int(public.sum()), "private": int(private.sum()),
                      "majority_counts": dict(zip(FERPLUS_CLASSES, counts.tolist(), strict=True))}))
    history, best = _fit_epochs(model, config, epochs, (faces[train], soft[train]), weights,
                                (faces[public], majority[public]), out)
    temperature = fit_temperature(_logits(model, faces[public]), majority[public])
    # PrivateTest, once: FER+ majority (8 classes), and FER-2013's labels through the 7-class mapping
    logits = _logits(model, faces[split["PrivateTest"]])
    proba = proba_at(logits, temperature)
    kept = private[split["PrivateTest"]]
    truth, predicted = majority[split["PrivateTest"]][kept], proba[kept].argmax(axis=1)
    precision, recall, f1, n = precision_recall_fscore_support(truth, predicted, labels=range(8), zero_division=0)
    seven = to_fer7(proba[:, np.argsort(FERPLUS_TO_EXPRESSION)])  # FER+ order -> geoengage's, then 7 classes
    fer_labels = data["labels"][split["PrivateTest"]].astype(int)
    no_contempt = truth != FERPLUS_CLASSES.index("contempt")
    sample = np.arange(len(proba)) < 500
    summary = {
        "config": config, "epochs_run": epochs, "best_epoch": best[2], "public_accuracy": best[0],
        "temperature": temperature, "aligned_by_detector": float(detected.mean()),
        "private_ferplus": {
            "n": int(kept.sum()), "accuracy": float(np.mean(predicted == truth)),
            "accuracy_without_contempt_rows": float(np.mean(predicted[no_contempt] == truth[no_contempt])),
            "macro_f1": float(np.mean(f1)),
            "per_class": {c: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                              "n": int(n[k])} for k, c in enumerate(FERPLUS_CLASSES)},
            "confusion": confusion_matrix(truth, predicted, labels=range(8)).tolist(),
            "ece_temperature": expected_calibration_error(proba[kept], truth),
            "ece_uncalibrated": expected_calibration_error(proba_at(logits, 1.0)[kept], truth),
            "detector_framed_accuracy": float(np.mean((predicted == truth)[detected[split["PrivateTest"]][kept]])),
            "fixed_sample_first_500": {
                "n": int((sample & kept).sum()),
                "accuracy": float(np.mean(proba[sample & kept].argmax(axis=1) == majority[split["PrivateTest"]][
                    sample & kept])),
                "ece": expected_calibration_error(proba[sample & kept], majority[split["PrivateTest"]][sample & kept])},
        },
        "private_fer2013_labels_7_class": {"n": len(fer_labels),
                                           "accuracy": float(np.mean(seven.argmax(axis=1) == fer_labels))},
        "history": history,
    }
    state = {**best[1]}
    torch.save(state, out / "expression_cnn.pt")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "temperature.json").write_text(json.dumps({"temperature": temperature}))
    _plot(history, out / "curves.png")
    print(json.dumps({k: summary[k] for k in ("best_epoch", "public_accuracy", "temperature")}
                     | {"private_accuracy": summary["private_ferplus"]["accuracy"],
                        "fer7_accuracy": summary["private_fer2013_labels_7_class"]["accuracy"]}))
    if args.ship:
        print(f"shipped to {ship_ferplus(out)}")
    return 0


def ship_ferplus(out: Path) -> Path:
    """Copy a FER+ run's weights into the package: the head's rows reordered from FER+'s class order to
    geoengage's (``EXPRESSION_CLASSES``: FER-2013's seven names, then contempt), and the PublicTest temperature
    stored as ``calibration.temperature``; still a state dict of tensors (``torch.load(weights_only=True)``)."""
    from geoengage.detect.expression import EXPRESSION_WEIGHTS, FERPLUS_TO_EXPRESSION

    state = torch.load(out / "expression_cnn.pt", map_location="cpu", weights_only=True)
    order = torch.as_tensor(np.argsort(FERPLUS_TO_EXPRESSION))  # geoengage position -> FER+ row
    state = {**state, "head.3.weight": state["head.3.weight"][order].clone(),
             "head.3.bias": state["head.3.bias"][order].clone()}
    temperature = json.loads((out / "temperature.json").read_text())["temperature"]
    state["calibration.temperature"] = torch.tensor(float(temperature))
    torch.save(state, EXPRESSION_WEIGHTS)
    return EXPRESSION_WEIGHTS


def _plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, left = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    left.plot(epochs, [h["train_loss"] for h in history], label="training loss", color="tab:blue")
    left.set(xlabel="epoch", ylabel="loss")
    right = left.twinx()
    right.plot(epochs, [h["public_accuracy"] for h in history], label="PublicTest accuracy", color="tab:orange")
    right.set(ylabel="accuracy")
    fig.legend(loc="lower center")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
