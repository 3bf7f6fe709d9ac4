"""Turned heads on ../shared/data/pointing04: faces found, head yaw and pitch error per yaw step, the yaw slope, and
the geometric gaze's error. Skips cleanly when ../shared/data is absent.

Pointing'04 (persons 01-07, 1,302 photos at 384x288): people look at markers on a wall at labelled yaw 0 to +-90 and
pitch 0 to +-60 deg (15-deg steps). The labels are nominal (the head does not always turn the whole way; the eyes do
part of it), so single photos are not judged: per yaw step this prints the share of photos with a face (photos with
|pitch| <= 15, as the data's SOURCE.md measures), and among the faces found (|pitch| <= 30) the mean absolute yaw
error, the mean signed error, and the slope of estimated on labelled yaw (least squares over |yaw| <= 60: 1 reads a
turn true, 0.7 compresses it). Pitch: mean absolute error per pitch step (|yaw| <= 30). Gaze: the angle between the
geometric gaze (``gaze_yaw_deg``, ``gaze_pitch_deg``) and the marker's direction (the camera sits at the 0/0
marker), median over photos with yaw and pitch within 30 deg, and its yaw and pitch parts: the errors ``on_screen``'s
margins are set to (:data:`geoengage.geometry.gaze.GAZE_ERROR_YAW_DEG`, ``GAZE_ERROR_PITCH_DEG``).

Two extractions in one run: the default (YuNet detector, yaw from its five points past 25 deg, features of failed
68-point fits masked) and the former default (``detector="hog"``, ``min_face_px=80``). Nothing is fitted here;
persons 08-15 are kept back by the data's owners to check the project on people it has not seen.

The labels, checked (``--mediapipe CSV`` from ``benchmarks/head_pose_mediapipe.py``): MediaPipe FaceMesh's yaw,
a second landmark model, put on the labels' scale by one line fitted on |yaw| <= 30 for everyone (nothing per
person); printed beside the default's: each person's mean reading at labelled yaw 0 (a head that was not turned to
the label reads off in both if the label is off), their correlation across people, each reader's error per yaw step
and slope, and the error of each reading against the person's own reading at labelled yaw 0 (a diagnostic of the
labels, not a correction: geoengage fits nothing per person). Pitch (|yaw| <= 30, |pitch| <= 30): the slope of
MediaPipe's pitch, a geometric angle with no line fitted, beside geoengage's on the same photos; its yaw slope the same
way, to show how far its raw angles can be taken at their word.

    python benchmarks/head_pose.py [--mediapipe mediapipe_yaw.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from geoengage.config import ExtractConfig
from geoengage.extract import extract_batch
from geoengage.geometry.gaze import vectors_from_yaw_pitch
from geoengage.media import MediaItem

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pointing04"
STEPS = (0, 15, 30, 45, 60, 75, 90)


def extract(config: ExtractConfig, labels: pd.DataFrame) -> pd.DataFrame:
    """One row per photo (the largest face, or none), with the labels beside it."""
    items = [MediaItem(str(DATA / p), p, {}) for p in labels.path]
    frames = extract_batch(items, config=config).frames
    return labels.merge(frames, left_on="path", right_on="video_id", how="left")


def summarize(table: pd.DataFrame) -> dict[str, object]:
    found = table.face_found.fillna(False).astype(bool)
    ay, ap = table.yaw_deg_label.abs(), table.pitch_deg_label.abs()
    level = ap <= 15
    found_share = found[level].groupby(ay[level]).mean()
    posed = found & (ap <= 30) & table.yaw_deg.notna()
    error = (table.yaw_deg - table.yaw_deg_label)[posed]
    slope_rows = posed & (ay <= 60)
    slope = float(np.polyfit(table.yaw_deg_label[slope_rows], table.yaw_deg[slope_rows], 1)[0])
    pitched = found & (ay <= 30) & table.pitch_deg.notna()
    pitch_error = (table.pitch_deg - table.pitch_deg_label)[pitched]
    pitch_slope = float(np.polyfit(table.pitch_deg_label[pitched], table.pitch_deg[pitched], 1)[0])
    gazed = found & (ay <= 30) & (ap <= 30) & table.gaze_yaw_deg.notna()
    truth = vectors_from_yaw_pitch(np.radians(table.loc[gazed, ["yaw_deg_label", "pitch_deg_label"]].to_numpy(float)))
    est = vectors_from_yaw_pitch(np.radians(table.loc[gazed, ["gaze_yaw_deg", "gaze_pitch_deg"]].to_numpy(float)))
    gaze_error = np.degrees(np.arccos(np.clip((truth * est).sum(axis=1), -1, 1)))
    parts = (table.loc[gazed, ["gaze_yaw_deg", "gaze_pitch_deg"]].to_numpy(float)
             - table.loc[gazed, ["yaw_deg_label", "pitch_deg_label"]].to_numpy(float))
    fit_ok = table.landmarks_ok[found] if "landmarks_ok" in table else pd.Series(dtype=float)
    return {"found": found_share, "yaw_abs": error.abs().groupby(ay[posed]).mean(),
            "yaw_signed": error.groupby(table.yaw_deg_label[posed]).mean(), "yaw_n": error.groupby(ay[posed]).size(),
            "slope": slope, "pitch_abs": pitch_error.abs().groupby(ap[pitched]).mean(), "pitch_slope": pitch_slope,
            "gaze_median": float(np.median(gaze_error)) if len(gaze_error) else float("nan"), "gaze_n": len(gaze_error),
            "gaze_parts": np.median(np.abs(parts), axis=0) if len(parts) else np.full(2, np.nan),
            "fit_ok": fit_ok.groupby(ay[found]).mean() if len(fit_ok) else None,
            "on_screen": table.on_screen[found].groupby(ay[found]).mean()}


def _row(series: pd.Series | None, fmt: str, keys=STEPS) -> str:
    if series is None:
        return "  ".join("   -  " for _ in keys)
    return "  ".join(fmt.format(series.get(k, np.nan)) for k in keys)


def labels_check(table: pd.DataFrame, mediapipe: Path) -> None:
    """Print the labels check of the module docstring for the default's readings in ``table``."""
    merged = table.merge(pd.read_csv(mediapipe), on="path", how="left")
    read = merged[merged.pitch_deg_label.abs() <= 15].copy()
    near = (read.yaw_deg_label.abs() <= 30) & read.mp_yaw_raw.notna()
    scale, offset = np.polyfit(read.mp_yaw_raw[near], read.yaw_deg_label[near], 1)
    read["mediapipe"] = scale * read.mp_yaw_raw + offset
    zero = read[read.yaw_deg_label == 0].groupby("subject")[["yaw_deg", "mediapipe"]].mean()
    print(f"labels check: MediaPipe FaceMesh yaw ({scale:+.3f} x raw {offset:+.2f}, fitted for everyone on |yaw| <= 30)")
    print("  mean reading at labelled yaw 0 per person (geoengage / MediaPipe): "
          + ", ".join(f"{s}: {g:+.1f} / {m:+.1f}" for s, (g, m) in zero.iterrows())
          + f"; correlation across people {zero.corr().iloc[0, 1]:.2f}")
    print("|yaw| step:                    " + "  ".join(f"{k:>6d}" for k in STEPS[:5]))
    for name in ("yaw_deg", "mediapipe"):
        own = read[name] - read.subject.map(zero[name])
        label = "geoengage" if name == "yaw_deg" else "MediaPipe"
        error = (read[name] - read.yaw_deg_label).abs().groupby(read.yaw_deg_label.abs()).mean()
        relative = (own - read.yaw_deg_label).abs().groupby(read.yaw_deg_label.abs()).mean()
        kept = (read.yaw_deg_label.abs() <= 60) & read[name].notna()
        slope = np.polyfit(read.yaw_deg_label[kept], read[name][kept], 1)[0]
        print(f"  {label:9s} abs error, deg    " + _row(error, "{:6.1f}", STEPS[:5]) + f"   slope {slope:.2f}")
        print(f"  {label:9s} vs own yaw-0 read " + _row(relative, "{:6.1f}", STEPS[:5]))
    if "mp_pitch_raw" in merged.columns:
        both = merged[(merged.yaw_deg_label.abs() <= 30) & merged.mp_pitch_raw.notna() & merged.pitch_deg.notna()]
        yawed = read[near & read.yaw_deg.notna()]
        slopes = [np.polyfit(frame[f"{x}_deg_label"], frame[column], 1)[0]
                  for frame, x, column in ((both, "pitch", "pitch_deg"), (both, "pitch", "mp_pitch_raw"),
                                           (yawed, "yaw", "yaw_deg"), (yawed, "yaw", "mp_yaw_raw"))]
        slopes[3] = -slopes[3]  # its raw yaw is + towards the subject's left
        print(f"  raw angles, deg per labelled deg: pitch ({len(both)} photos, |yaw| <= 30): geoengage {slopes[0]:.2f}, "
              f"MediaPipe {slopes[1]:.2f}; yaw (|yaw| <= 30): geoengage {slopes[2]:.2f}, MediaPipe {slopes[3]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mediapipe", type=Path, help="CSV of benchmarks/head_pose_mediapipe.py: check the labels")
    args = parser.parse_args()
    if not (DATA / "labels.csv").is_file():
        print(f"{DATA} is absent: skipped")
        sys.exit(0)
    labels = pd.read_csv(DATA / "labels.csv").rename(columns={"yaw_deg": "yaw_deg_label", "pitch_deg": "pitch_deg_label"})
    labels = labels[labels.pitch_deg_label.abs() <= 30]
    print(f"pointing04: {len(labels)} photos with |pitch| <= 30 of {labels.subject.nunique()} people")
    runs = {"default (YuNet)": ExtractConfig(expression=False, gaze_cnn=False),
            "former default (HOG, min_face_px 80)": ExtractConfig(detector="hog", min_face_px=80, expression=False,
                                                                  gaze_cnn=False)}
    print("|yaw| step:                    " + "  ".join(f"{k:>6d}" for k in STEPS))
    for name, config in runs.items():
        table = extract(config, labels)
        r = summarize(table)
        print(name)
        print("  faces found (|pitch|<=15)    " + _row(r["found"], "{:6.1%}"))
        print("  yaw mean abs error, deg      " + _row(r["yaw_abs"], "{:6.1f}"))
        print("  faces posed (n)              " + _row(r["yaw_n"], "{:6.0f}"))
        print("  68-point fit holds (share)   " + _row(r["fit_ok"], "{:6.1%}"))
        print("  on_screen (share)            " + _row(r["on_screen"], "{:6.1%}"))
        signed = r["yaw_signed"]
        print("  yaw mean signed error by labelled yaw: "
              + ", ".join(f"{int(k):+d}: {v:+.1f}" for k, v in signed.items()))
        print(f"  yaw slope (|yaw| <= 60): {r['slope']:.2f} deg per labelled deg")
        print("  pitch mean abs error by |pitch| (|yaw| <= 30): "
              + ", ".join(f"{int(k)}: {v:.1f}" for k, v in r["pitch_abs"].items())
              + f"; slope {r['pitch_slope']:.2f}")
        print(f"  geometric gaze error vs the marker's direction: median {r['gaze_median']:.1f} deg "
              f"({r['gaze_n']} photos, yaw and pitch within 30); median abs yaw part {r['gaze_parts'][0]:.1f}, "
              f"pitch part {r['gaze_parts'][1]:.1f}")
        if args.mediapipe is not None and config.detector == "yunet":
            labels_check(table, args.mediapipe)


if __name__ == "__main__":
    main()
