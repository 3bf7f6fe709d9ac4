"""The two labelled engagement data sets in ../shared/data as geoengage window tables (shared by the benchmarks).

Each image is one window. Extraction uses the crop mode for face crops (the default YuNet detector, the crop box
where it finds nothing: 0.03% of the WACV crops), with a crop box fitted on each data set's own training images
(:func:`geoengage.detect.faces.fit_crop_box`), and every feature the benchmarks compare (``all_features.toml``:
the old default with set-up features, the new default, appearance), so each set is measured from one table.
Tables are kept under ``--work`` and resumed.

- engagement_wacv: 18 subjects, engagement 0/1/2; binary "engaged" = 1 or 2 ("high"), 0 = "low".
- DAiSEE: train (69 subjects) and validation (19 subjects) splits, engagement 0-3; binary "high" = 2-3, "low" = 0-1.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from geoengage.config import ExtractConfig
from geoengage.dataset import WindowConfig, build_dataset, read_windows
from geoengage.detect.faces import fit_crop_box_to_files
from geoengage.exceptions import GeoEngageWarning
from geoengage.media import MediaItem
from geoengage.windows import load_feature_set

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_WORK = Path(__file__).resolve().parent / "out"
OLD_DEFAULT = "with_setup"
ALL_FEATURES = Path(__file__).resolve().parent / "all_features.toml"


def feature_sets() -> dict[str, list[str]]:
    """Feature columns of the old default set (with set-up features), the new default, the new default plus the
    appearance embedding or the gaze CNN's estimate, and the set without the features the set-up audit flags
    (``audit_clean``)."""
    return {"old default (with set-up features)": load_feature_set(OLD_DEFAULT).columns,
            "new default": load_feature_set("default").columns,
            "new default + appearance": load_feature_set("appearance").columns,
            "new default + gaze CNN": load_feature_set("gaze_cnn").columns,
            "audit-clean (+ gaze CNN)": load_feature_set("audit_clean").columns}


#: Rows beside the feature sets: the new default with XGBoost's depth and trees chosen in inner subject-grouped
#: folds of the training data (nested), and the new default z-scored within each subject.
TUNED, WITHIN = "new default, nested tuning", "new default, within-subject z"


def compared_rows(*, majority: bool = True, within: bool = True) -> dict[str, tuple[list[str] | None, dict, bool]]:
    """Each row the engagement benchmarks compare: label -> (feature columns, None for the majority class; extra
    model options; whether the features are z-scored within subject, :func:`within_subject`)."""
    default = feature_sets()["new default"]
    rows: dict[str, tuple[list[str] | None, dict, bool]] = {"majority": (None, {}, False)} if majority else {}
    rows.update({name: (columns, {}, False) for name, columns in feature_sets().items()})
    rows[TUNED] = (default, {"tune": True}, False)
    if within:
        rows[WITHIN] = (default, {}, True)
    return rows


def _crop_box(folder: Path, paths: list[str]) -> tuple[float, float, float, float]:
    return fit_crop_box_to_files([folder / p for p in paths])[0]


def _extract(items: list[MediaItem], out: Path, crop_box: tuple[float, float, float, float]) -> pd.DataFrame:
    warnings.simplefilter("ignore", GeoEngageWarning)
    config = ExtractConfig(crop_mode="fallback", crop_box=crop_box)
    build_dataset(items, out, extract=config, windows=WindowConfig(feature_set=str(ALL_FEATURES)), n_jobs=2)
    return read_windows(out / "windows.parquet")


def wacv(data: Path, work: Path) -> pd.DataFrame:
    """engagement_wacv windows with ``engagement`` (0/1/2) and ``level`` ("low"/"high")."""
    folder = data / "engagement_wacv"
    labels = pd.read_csv(folder / "labels.csv")
    items = [MediaItem(str(folder / p), p, {"subject_id": f"wacv{s:02d}", "engagement": int(e), "image_id": i})
             for p, s, e, i in zip(labels.path, labels.subject_id, labels.engagement, labels.source_image_id,
                                   strict=True)]
    windows = _extract(items, work / "wacv", _crop_box(folder, list(labels.path)))
    windows["engagement"] = windows["engagement"].astype(int)
    windows["level"] = np.where(windows["engagement"] > 0, "high", "low")
    return windows


def daisee(data: Path, work: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DAiSEE train and validation windows with ``engagement`` (0-3) and ``level`` ("low" 0-1 / "high" 2-3)."""
    folder = data / "daisee"
    labels = pd.read_csv(folder / "labels.csv")
    items = [MediaItem(str(folder / p), p, {"subject_id": f"daisee{s}", "split": split, "engagement": int(e)})
             for p, s, split, e in zip(labels.path, labels.subject_id, labels.split, labels.engagement, strict=True)]
    train_paths = list(labels.loc[labels.split == "train", "path"])
    windows = _extract(items, work / "daisee", _crop_box(folder, train_paths))  # fitted on train images only
    windows["engagement"] = windows["engagement"].astype(int)
    windows["level"] = np.where(windows["engagement"] >= 2, "high", "low")
    return (windows[windows.split == "train"].reset_index(drop=True),
            windows[windows.split == "validation"].reset_index(drop=True))


def summary_line(name: str, summary: dict, metrics: tuple[str, ...] = ("auc_roc", "balanced_accuracy",
                                                                        "minority_recall")) -> str:
    """One printed line: each metric with its subject-bootstrap 95% interval."""
    m = summary["metrics"]
    parts = [f"{k} {m[k]:.3f} [{m['ci95'][k][0]:.3f}, {m['ci95'][k][1]:.3f}]" for k in metrics]
    return f"  {name:44s} " + "  ".join(parts)


def parse_args(doc: str, needs: tuple[str, ...], extra: tuple[tuple[str, type, object], ...] = ()):  # type: ignore[no-untyped-def]
    """The engagement benchmarks' options (--data, --work, --out, --n-boot, and ``extra`` (flag, type, default)
    ones); exits 0 with a clear line when a data set in ``needs`` is absent (the benchmarks skip, they do not
    fail)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the data sets (../shared/data)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where extracted tables are kept")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    parser.add_argument("--n-boot", type=int, default=1000, help="subject bootstrap resamples")
    for flag, kind, default in extra:
        parser.add_argument(flag, type=kind, default=default, help=f"default {default}")
    args = parser.parse_args()
    missing = [n for n in needs if not (args.data / n / "labels.csv").is_file()]
    if missing:
        print(f"skipped: {', '.join(str(args.data / n) for n in missing)} absent (pass --data DIR, default ../shared/data)")
        sys.exit(0)
    warnings.simplefilter("ignore")
    return args


def within_subject(windows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``windows`` with ``columns`` as robust z-scores within each subject (median, 1.4826 MAD; 0 where constant):
    per-subject normalisation, which needs only the subject's own unlabelled windows at test time."""
    out = windows.copy()
    grouped = out.groupby("subject_id")[columns]
    median = grouped.transform("median")
    mad = (out[columns] - median).abs().groupby(out["subject_id"]).transform("median") * 1.4826
    out[columns] = ((out[columns] - median) / mad.where(mad > 0)).fillna(0.0)
    return out


def aligned_faces(work: Path, video_ids: list[str]) -> np.ndarray:
    """The face of each image in ``video_ids`` aligned as the expression CNN expects (``normalize_face``), from the
    landmarks the extraction in ``work`` stored and the image itself: (n, 48, 48) float32."""
    import cv2

    from geoengage.normalize import normalize_face
    from geoengage.schema import LANDMARK_COLUMNS

    frames = pd.read_parquet(work / "frames.parquet", columns=["video_id", "source_path", "face_found",
                                                                *LANDMARK_COLUMNS])
    frames = frames[frames["face_found"].astype(bool)].drop_duplicates("video_id").set_index("video_id")
    faces = np.empty((len(video_ids), 48, 48), np.float32)
    for i, video_id in enumerate(video_ids):
        row = frames.loc[video_id]
        gray = cv2.imread(str(row["source_path"]), cv2.IMREAD_GRAYSCALE)
        faces[i] = normalize_face(gray, row[list(LANDMARK_COLUMNS)].to_numpy(np.float64).reshape(68, 2))
    return faces
