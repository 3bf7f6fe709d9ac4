"""Train, evaluate and (optionally) ship an engagement model from a versioned config.

    python models/train.py models/configs/engagement_v09.toml [--ship]

Steps, all through the `geoengage` command line so the script runs exactly what users run:
1. write a manifest of the config's data (path, subject_id, label; levels renamed by `[labels] names`) and
   `geoengage extract` it; a config with `[[datasets]]` does so for each data set (labels mapped onto the pooled
   coding by each set's `labels` table, subjects named `<set><id>`), into models/artifacts/<name>/<set>/;
2. `geoengage evaluate`: subject-grouped cross-validation of XGBoost beside the baselines -> report; with several
   data sets, leave one data set out (`--by dataset`) with the cross-data-set matrix;
3. `geoengage train`: XGBoost on every window (of every set, weighted by `[pooling] weights`) ->
   models/artifacts/<name>/model (JSON, no pickle);
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


def _manifest(data: Path, target: str, names: dict[int, str] | None, subject: str) -> pd.DataFrame | str:
    """The data set's manifest (path, video_id, subject_id, target; levels renamed by ``names``), or why not."""
    labels = pd.read_csv(data / "labels.csv")
    values = labels[target]
    if names:  # level k of the data set is called names[k] (the model's classes, reasons and answers use the names)
        values = values.map(names)
        if values.isna().any():
            return f"levels {sorted(labels[target][values.isna()].unique())} of {data} have no name"
    return pd.DataFrame({"path": [str(data / p) for p in labels.path], "video_id": labels.path,
                         "subject_id": [subject.format(s) for s in labels.subject_id], target: values})


def _extract(manifest: pd.DataFrame, folder: Path, config: dict) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(folder / "manifest.csv", index=False)
    extract, windows = config["extract"], config["windows"]
    crop = ["--crop-box", str(extract["crop_box"])] if "crop_box" in extract else []
    detector = [arg for key in ("detector", "detect_threshold") if key in extract
                for arg in (f"--{key.replace('_', '-')}", str(extract[key]))]
    return geoengage(["-q", "extract", str(folder / "manifest.csv"), "--out", str(folder), "--crop-mode",
                      extract["crop_mode"], *detector, *crop, "--window-s", str(windows["window_s"]), "--step-s",
                      str(windows["step_s"]), "--feature-set", windows["feature_set"]])


def run(config_path: Path, *, ship: bool) -> int:
    config = tomllib.loads(config_path.read_text())
    out = ROOT / "models" / "artifacts" / config["name"]
    sets = config.get("datasets") or [{"name": "dataset", "data": config["data"], "subject": "s{:02d}",
                                       "labels": dict(enumerate(config.get("labels", {}).get("names", [])))}]
    tables = []
    for entry in sets:
        data = (ROOT / entry["data"]).resolve()
        if not data.is_dir():
            print(f"blocked: {data} is absent")
            return 2
        names = {int(k): v for k, v in entry.get("labels", {}).items()} or None
        manifest = _manifest(data, config["target"], names, entry.get("subject", f"{entry['name']}{{}}"))
        if isinstance(manifest, str):
            print(f"blocked: {manifest}")
            return 2
        status = _extract(manifest, out / entry["name"], config)
        if status:
            return status
        tables.append(str(out / entry["name"] / "windows.parquet"))
    options = _model_options(config.get("model", {}))
    pooling = ["--weights", config.get("pooling", {}).get("weights", "none")] if len(tables) > 1 else []
    by = ["--by", "dataset"] if len(tables) > 1 else []
    status = geoengage(["-q", "evaluate", *tables, "--target", config["target"], *by, *pooling, "--n-splits",
                        str(config["n_splits"]), "--seed", str(config["seed"]), "--n-boot", str(config["n_boot"]),
                        *options, "--out", str(out / "report")])
    if status:
        return status
    status = geoengage(["-q", "train", *tables, "--target", config["target"], *pooling, "--seed", str(config["seed"]),
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
