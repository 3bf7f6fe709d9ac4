"""Train the gaze CNN on MPIIGaze's normalised eye crops, leave-one-participant-out, and ship one fold's weights.

    python models/train_gaze.py models/configs/gaze_v01.toml [--jobs 2] [--participants 0,3] [--epochs N]
                                [--seed N] [--ship]

For every participant p00-p12 in turn, a :class:`geoengage.detect.gaze.GazeNet` is trained on the other twelve
(AdamW, one-cycle schedule, L1 loss on yaw/pitch, half of every batch mirrored with the yaws negated, brightness
and contrast jitter; no early stopping and nothing chosen on the held-out participant) and scored on the held-out
one through :func:`geoengage.detect.gaze.predict_eye_crops` (the mirrored crop averaged in): mean angular error
in degrees, per participant and as the mean over participants (MPIIGaze's protocol). The reference "predict the
training participants' mean gaze" is measured on the same folds.

Outputs in models/artifacts/<name>/ (git-ignored): fold_pNN.pt (state dicts), predictions.npz, results.json.
With --ship, fold ``ship_fold``'s weights (trained without that participant) are copied to
geoengage/models/gaze_cnn.pt (tensors only, read with torch.load(weights_only=True)) and the error of those weights
on the fixed sample the tests use (every 6th sample of that participant, 500 eyes) is written to
geoengage/models/gaze_cnn.json for the test to reproduce.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The fixed sample the tests score: every 6th sample of the shipped fold's participant.
SAMPLE_STEP = 6


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in ("image", "gaze_yaw_pitch", "headpose_yaw_pitch", "participant")}


def train_fold(config: dict, held_out: int) -> dict:
    """Train without participant ``held_out`` and score it; returns the fold's figures (weights saved)."""
    import torch

    from geoengage.detect.gaze import GazeNet, predict_eye_crops
    from geoengage.modeling.cnn_training import angular_error_deg, train_gaze_epoch

    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    data = _load(ROOT / config["data"])
    train = data["participant"] != held_out
    model = GazeNet(width=config["width"], hidden=config["hidden"], dropout=config["dropout"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"] / 3,
                                  weight_decay=config["weight_decay"])
    steps = config["epochs"] * -(-int(train.sum()) // config["batch_size"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config["learning_rate"], total_steps=steps)
    started = time.perf_counter()
    losses = [train_gaze_epoch(model, data["image"][train], data["headpose_yaw_pitch"][train],
                               data["gaze_yaw_pitch"][train], optimizer=optimizer, scheduler=scheduler,
                               batch_size=config["batch_size"], seed=config["seed"] + epoch, mirror=config["mirror"],
                               jitter=config["jitter"])
              for epoch in range(config["epochs"])]
    model.eval()
    test = ~train
    predicted = predict_eye_crops(data["image"][test], data["headpose_yaw_pitch"][test], model=model)
    errors = angular_error_deg(predicted, data["gaze_yaw_pitch"][test])
    mean_gaze = data["gaze_yaw_pitch"][train].mean(axis=0, keepdims=True)
    baseline = angular_error_deg(np.repeat(mean_gaze, test.sum(), axis=0), data["gaze_yaw_pitch"][test])
    out_dir = ROOT / "models" / "artifacts" / config["name"]
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_dir / f"fold_p{held_out:02d}.pt")
    return {"participant": held_out, "error_deg": float(errors.mean()), "median_error_deg": float(np.median(errors)),
            "mean_gaze_error_deg": float(baseline.mean()), "n": int(test.sum()), "losses": losses,
            "train_s": time.perf_counter() - started, "predicted": predicted.tolist()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="folds trained at once (one thread each)")
    parser.add_argument("--participants", help="comma-separated participants to hold out (default: all)")
    parser.add_argument("--epochs", type=int, help="override the config (a quick check; not for the card)")
    parser.add_argument("--seed", type=int, help="override the config's seed; outputs go to <name>_seed<N>/ (the "
                        "seed-ensemble check in the card)")
    parser.add_argument("--ship", action="store_true")
    args = parser.parse_args()
    config = tomllib.loads(args.config.read_text())
    if args.epochs:
        config["epochs"] = args.epochs
    if args.seed is not None:
        config["seed"], config["name"] = args.seed, f"{config['name']}_seed{args.seed}"
    data_path = ROOT / config["data"]
    if not data_path.is_file():
        print(f"{data_path} is absent: MPIIGaze's crops live in ../shared/data/mpiigaze (see its SOURCE.md).",
              file=sys.stderr)
        return 1
    data = _load(data_path)
    participants = (sorted(int(p) for p in args.participants.split(",")) if args.participants
                    else sorted(int(p) for p in np.unique(data["participant"])))
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        folds = list(pool.map(train_fold, [config] * len(participants), participants))
    out_dir = ROOT / "models" / "artifacts" / config["name"]
    predicted = np.full((len(data["participant"]), 2), np.nan, np.float32)
    for fold in folds:
        predicted[data["participant"] == fold["participant"]] = np.array(fold.pop("predicted"))
        print(f"p{fold['participant']:02d}: {fold['error_deg']:.2f} deg (mean-gaze reference "
              f"{fold['mean_gaze_error_deg']:.2f}), trained in {fold['train_s']:.0f} s")
    np.savez_compressed(out_dir / "predictions.npz", predicted=predicted, participant=data["participant"])
    summary = {"config": config, "folds": folds,
               "mean_error_deg": float(np.mean([f["error_deg"] for f in folds])),
               "mean_gaze_error_deg": float(np.mean([f["mean_gaze_error_deg"] for f in folds]))}
    print(f"leave-one-participant-out mean over {len(folds)} participants: {summary['mean_error_deg']:.2f} deg "
          f"(mean gaze {summary['mean_gaze_error_deg']:.2f})")
    if args.ship:
        summary["shipped"] = ship(config, data, out_dir)
    (out_dir / "results.json").write_text(json.dumps(summary, indent=2))
    return 0


def ship(config: dict, data: dict[str, np.ndarray], out_dir: Path) -> dict:
    """Copy the ship fold's weights into the package and record their error on the fixed test sample."""
    from geoengage.detect.gaze import GAZE_WEIGHTS, load_gaze_model, predict_eye_crops
    from geoengage.modeling.cnn_training import angular_error_deg

    fold = config["ship_fold"]
    shutil.copyfile(out_dir / f"fold_p{fold:02d}.pt", GAZE_WEIGHTS)
    load_gaze_model.cache_clear()
    rows = np.flatnonzero(data["participant"] == fold)[::SAMPLE_STEP]
    errors = angular_error_deg(predict_eye_crops(data["image"][rows], data["headpose_yaw_pitch"][rows]),
                               data["gaze_yaw_pitch"][rows])
    record = {"name": config["name"], "held_out_participant": fold, "sample_step": SAMPLE_STEP, "n": len(rows),
              "sample_error_deg": round(float(errors.mean()), 4)}
    GAZE_WEIGHTS.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"shipped fold p{fold:02d} -> {GAZE_WEIGHTS} ({GAZE_WEIGHTS.stat().st_size / 1e6:.1f} MB); fixed sample "
          f"({len(rows)} eyes): {record['sample_error_deg']:.2f} deg")
    return record


if __name__ == "__main__":
    sys.exit(main())
