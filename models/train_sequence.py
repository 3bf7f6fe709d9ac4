"""Train and evaluate a sequence model (GRU / LSTM over each recording's windows) from a versioned config.

    python models/train_sequence.py models/configs/engagement_sequence_v01.toml

Steps, through the `geoengage` command line so the script runs exactly what users run:
1. `geoengage import table`: the config's per-window table -> windows.parquet;
2. `geoengage evaluate --model gru`: subject-grouped CV of the sequence model beside ridge, XGBoost on per-recording
   aggregates and the mean, same folds, subject-bootstrap intervals -> report (html, md, json);
3. `geoengage train --model gru`: the sequence model on every recording -> models/artifacts/<name>/model
   (sequence.pt, a tensor-only state dict, and sequence.meta.json).
Artifacts go to models/artifacts/<name>/ (git-ignored). The model is not shipped in the package: it is trained on
another tool's features (OpenFace segment statistics), not on geoengage's windows.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from geoengage.cli import main as geoengage

ROOT = Path(__file__).resolve().parents[1]


def model_options(model: dict[str, object]) -> list[str]:
    """The config's [model] table as `geoengage evaluate/train` options."""
    options = ["--model", str(model.get("cell", "gru"))]
    if "task" in model:
        options += ["--task", str(model["task"])]
    for key in ("hidden", "max_epochs", "n_seeds", "max_features"):
        if key in model:
            options += [f"--{key.replace('_', '-')}", str(model[key])]
    if model.get("summary"):
        options.append("--summary-path")
    return options


def run(config_path: Path) -> int:
    config = tomllib.loads(config_path.read_text())
    data = config["data"]
    table = (ROOT / data["table"]).resolve()
    if not table.is_file():
        print(f"blocked: {table} is absent")
        return 2
    out = ROOT / "models" / "artifacts" / config["name"]
    out.mkdir(parents=True, exist_ok=True)
    status = geoengage(["-q", "import", "table", str(table), "--recording", data["recording"], "--order",
                        data["order"], "--subject", data["subject"], "--target", data["target"],
                        "--drop", ",".join(data.get("drop", [])), "--out", str(out / "windows")])
    if status:
        return status
    windows = out / "windows" / "windows.parquet"
    options = model_options(config.get("model", {}))
    status = geoengage(["-q", "evaluate", str(windows), "--target", data["target"], "--n-splits",
                        str(config["n_splits"]), "--seed", str(config["seed"]), "--n-boot", str(config["n_boot"]),
                        *options, "--out", str(out / "report")])
    if status:
        return status
    return geoengage(["-q", "train", str(windows), "--target", data["target"], "--seed", str(config["seed"]),
                      *options, "--out", str(out / "model")])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    sys.exit(run(parser.parse_args().config))
