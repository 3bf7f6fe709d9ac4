"""Train, evaluate and (optionally) ship an engagement model from a versioned config.

    python models/train.py models/configs/engagement_v04.toml [--ship]

Steps, all through the `geoengage` command line so the script runs exactly what users run:
1. write a manifest of the config's data (path, subject_id, label; levels renamed by `[labels] names`) and
   `geoengage extract` it;
2. `geoengage evaluate`: subject-grouped cross-validation of XGBoost beside the baselines -> report;
3. `geoengage train`: XGBoost on every window -> models/artifacts/<name>/model (JSON, no pickle);
4. with --ship, copy that model into geoengage/models/engagement_default/ (the package's default).
Artifacts go to models/artifacts/<name>/ (git-ignored).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tomllib
from pathlib import Path

import pandas as pd

from geoengage.cli import main as geoengage

ROOT = Path(__file__).resolve().parents[1]


def run(config_path: Path, *, ship: bool) -> int:
    config = tomllib.loads(config_path.read_text())
    data = (ROOT / config["data"]).resolve()
    if not data.is_dir():
        print(f"blocked: {data} is absent")
        return 2
    out = ROOT / "models" / "artifacts" / config["name"]
    out.mkdir(parents=True, exist_ok=True)
    labels = pd.read_csv(data / "labels.csv")
    target = labels[config["target"]]
    names = config.get("labels", {}).get("names")
    if names:  # level k of the data set is called names[k] (the model's classes, reasons and answers use the names)
        target = target.map(dict(enumerate(names)))
        if target.isna().any():
            print(f"blocked: levels {sorted(labels[config['target']][target.isna()].unique())} have no name")
            return 2
    manifest = pd.DataFrame({"path": [str(data / p) for p in labels.path], "video_id": labels.path,
                             "subject_id": [f"s{s:02d}" for s in labels.subject_id], config["target"]: target})
    manifest.to_csv(out / "manifest.csv", index=False)
    extract, windows, model = config["extract"], config["windows"], config.get("model", {})
    crop = ["--crop-box", str(extract["crop_box"])] if "crop_box" in extract else []
    detector = [arg for key in ("detector", "detect_threshold") if key in extract
                for arg in (f"--{key.replace('_', '-')}", str(extract[key]))]
    status = geoengage(["-q", "extract", str(out / "manifest.csv"), "--out", str(out / "dataset"),
                        "--crop-mode", extract["crop_mode"], *detector, *crop, "--window-s", str(windows["window_s"]), "--step-s", str(windows["step_s"]),
                        "--feature-set", windows["feature_set"]])
    if status:
        return status
    table = out / "dataset" / "windows.parquet"
    options = _model_options(model)
    status = geoengage(["-q", "evaluate", str(table), "--target", config["target"], "--n-splits",
                        str(config["n_splits"]), "--seed", str(config["seed"]), "--n-boot", str(config["n_boot"]),
                        *options, "--out", str(out / "report")])
    if status:
        return status
    status = geoengage(["-q", "train", str(table), "--target", config["target"], "--seed", str(config["seed"]),
                        *options, "--out", str(out / "model")])
    if status == 0 and ship:
        target = ROOT / "geoengage" / "models" / "engagement_default"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("model.json", "model.meta.json"):
            shutil.copy2(out / "model" / name, target / name)
        shutil.copy2(out / "report" / "report.json", target / "evaluation.json")
        print(f"shipped {config['name']} to {target}")
    return status


def _model_options(model: dict) -> list[str]:
    """The config's [model] table as `geoengage evaluate/train` options."""
    options = []
    if "classes" in model:
        options += ["--classes", ",".join(map(str, model["classes"]))]
    if "positive" in model:
        options += ["--positive", ",".join(map(str, model["positive"]))]
    if model.get("tune"):
        options.append("--tune")
    if "estimator" in model:
        options += ["--estimator", model["estimator"]]
    if "class_weight" in model:
        options += ["--class-weight", model["class_weight"]]
    return options


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--ship", action="store_true", help="copy the model into the package as its default")
    args = parser.parse_args()
    sys.exit(run(args.config, ship=args.ship))
