"""Train the expression CNN on FER-2013 (Training), choose the epoch on PublicTest, report PrivateTest once.

    python models/train_expression.py models/configs/expression_v01.toml [--epochs N] [--ship]

1. Every FER image is aligned by the same function inference uses: dlib landmarks on the image
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

from geoengage.detect.expression import EXPRESSION_CLASSES, ExpressionNet, evaluate, predict_proba, train_epoch
from geoengage.normalize import normalize_crops

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
    cache = out / "fer_aligned.npz"
    if cache.is_file():
        aligned = np.load(cache)
        faces, detected = aligned["faces"], aligned["detected"]
    else:
        start = time.perf_counter()
        faces, detected = normalize_crops(data["images"])
        np.savez_compressed(cache, faces=faces, detected=detected)
        print(f"aligned {len(faces)} faces in {time.perf_counter() - start:.0f} s "
              f"(detector {detected.mean():.1%}, crop box {1 - detected.mean():.1%})")
    labels, usage = data["labels"].astype(np.int64), data["usage"]
    split = {name: usage == name for name in ("Training", "PublicTest", "PrivateTest")}
    counts = np.bincount(labels[split["Training"]], minlength=len(EXPRESSION_CLASSES))
    weights = (np.median(counts) / counts) ** config["class_weight_power"]

    shape = ({"channels": tuple(config["channels"]), "convs": tuple(config["convs"])} if "channels" in config
             else {"width": config["width"]})
    model = ExpressionNet(**shape).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"])
    steps = epochs * int(np.ceil(split["Training"].sum() / config["batch_size"]))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config["learning_rate"], total_steps=steps)
    history, best = [], (-1.0, None, -1)
    for epoch in range(epochs):
        start = time.perf_counter()
        loss = train_epoch(model, faces[split["Training"]], labels[split["Training"]], optimizer=optimizer,
                           scheduler=scheduler, batch_size=config["batch_size"], class_weights=weights,
                           label_smoothing=config["label_smoothing"], seed=config["seed"] + epoch)
        public = evaluate(model, faces[split["PublicTest"]], labels[split["PublicTest"]])
        history.append({"epoch": epoch + 1, "train_loss": loss, **{f"public_{k}": v for k, v in public.items()},
                        "seconds": time.perf_counter() - start})
        print(json.dumps(history[-1]))
        if public["accuracy"] > best[0]:
            best = (public["accuracy"], {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
            torch.save(best[1], out / "expression_cnn.pt")  # an interrupted run keeps its best epoch
    model.load_state_dict(best[1])
    torch.save(best[1], out / "expression_cnn.pt")
    private = evaluate(model, faces[split["PrivateTest"]], labels[split["PrivateTest"]])
    predicted = predict_proba(model, faces[split["PrivateTest"]]).argmax(axis=1)
    truth = labels[split["PrivateTest"]]
    per_class = {c: float(np.mean(predicted[truth == k] == k)) for k, c in enumerate(EXPRESSION_CLASSES)}
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
