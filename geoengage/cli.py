"""The ``geoengage`` command: a thin argparse front end, one subcommand per stage.

Each subcommand calls one public function; user errors become one log line and
exit status 2 (no traceback). ``main(argv)`` returns the exit status, so it is testable.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import SCREEN_FIELDS, ExtractConfig, load_config
from .exceptions import GeoEngageError, InvalidParameterError

__all__ = ["main"]

logger = logging.getLogger("geoengage")


def _add_extract_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("landmark stage")
    group.add_argument("--config", type=Path, help="TOML file with an [extract] table (options below override it)")
    group.add_argument("--sample-fps", type=float, help="keep at most this many video frames per second")
    group.add_argument("--min-face-px", type=int, help="smallest face width to detect (default 80)")
    group.add_argument("--detect-threshold", type=float,
                       help="detector score for a new face (default 0.3; 0 suits face crops)")
    group.add_argument("--face-policy", choices=["largest", "all"], help="faces kept per frame (default largest)")
    group.add_argument("--crop-mode", choices=["off", "fallback", "always"],
                       help="inputs are face crops: use the crop box when no face is detected (fallback) or always")
    group.add_argument("--no-tracking", action="store_true", help="run the detector on every video frame")
    group.add_argument("--identify", type=Path, metavar="ENCODINGS_JSON",
                       help="name faces by the people enrolled in this file (from `geoengage enroll`)")
    group.add_argument("--no-expression", action="store_true", help="skip the expression CNN (no expr_* columns)")
    _add_screen_options(parser)


def _add_screen_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("screen geometry (for on_screen)")
    group.add_argument("--screen-width-mm", type=float, help="visible screen width (default 345: a 15.6-inch laptop)")
    group.add_argument("--screen-height-mm", type=float, help="visible screen height (default 194)")
    group.add_argument("--screen-centre-x-mm", type=float,
                       help="screen centre right of the camera, as seen in the image (default 0)")
    group.add_argument("--screen-top-mm", type=float,
                       help="how far below the camera the screen's top edge is (default 0: laptop webcam)")


def _screen_overrides(args: argparse.Namespace) -> dict[str, float]:
    return {k: getattr(args, k) for k in SCREEN_FIELDS if getattr(args, k, None) is not None}


def _extract_config(args: argparse.Namespace) -> ExtractConfig:
    base = load_config(args.config, ExtractConfig, table="extract") if args.config else ExtractConfig()
    overrides: dict[str, object] = {}
    for option in ("sample_fps", "min_face_px", "detect_threshold", "face_policy", "crop_mode"):
        if getattr(args, option) is not None:
            overrides[option] = getattr(args, option)
    if args.no_tracking:
        overrides["tracking"] = False
    if args.no_expression:
        overrides["expression"] = False
    if args.identify is not None:
        overrides.update(identify=True, encodings_path=str(args.identify))
    overrides.update(_screen_overrides(args))
    values = {**{k: getattr(base, k) for k in base.__dataclass_fields__}, **overrides}
    return ExtractConfig(**values)  # type: ignore[arg-type]


def _window_config(args: argparse.Namespace):
    from .dataset import WindowConfig

    return WindowConfig(window_s=args.window_s, step_s=args.step_s, feature_set=args.feature_set,
                        min_coverage=args.min_coverage)


def _cmd_extract(args: argparse.Namespace) -> int:
    from .clean import CleanConfig
    from .dataset import build_dataset
    from .progress import TqdmHook

    hook = None if args.quiet else TqdmHook(file=sys.stderr)
    result = build_dataset(args.source, args.out, extract=_extract_config(args),
                           clean=CleanConfig(z_max=args.z_max, max_gap_s=args.max_gap_s),
                           windows=_window_config(args), n_jobs=args.jobs, scheduler=args.scheduler, hook=hook)
    print(json.dumps(result.to_dict()))
    return 1 if result.n_items and len(result.failures) == result.n_items else 0


def _cmd_import(args: argparse.Namespace) -> int:
    import dataclasses

    from .clean import CleanConfig, clean_frames
    from .dataset import WINDOWS_SCHEMA_VERSION, write_windows
    from .extract import write_frames
    from .importers import import_tables, imported_feature_set
    from .windows import make_windows

    size = None
    if args.frame_size:
        try:
            width, height = (int(v) for v in args.frame_size.lower().split("x"))
        except ValueError as err:
            raise InvalidParameterError(f"`--frame-size` must be WIDTHxHEIGHT, e.g. 640x480. Got {args.frame_size!r} "
                                        "instead.") from err
        size = (width, height)
    result = import_tables(args.csv, tool=args.tool, fps=args.fps, frame_size=size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.failures.to_csv(out / "failures.csv", index=False)
    summary = result.to_dict()
    if not len(result.frames):
        print(json.dumps({**summary, "out": str(out)}))
        logger.error("no file could be imported; see %s", out / "failures.csv")
        return 1
    write_frames(result.frames, out / "frames.parquet")
    meta_path = out / "frames.meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "import": {"tool": args.tool, **summary}}, indent=2, default=str))
    clean = CleanConfig(z_max=args.z_max, max_gap_s=args.max_gap_s)
    cleaned = clean_frames(result.frames, config=clean)
    config = _window_config(args)
    fset = imported_feature_set(result.frames, config.feature_set)
    windows = make_windows(cleaned.frames, window_s=config.window_s, step_s=config.step_s,
                           feature_set=fset, min_coverage=config.min_coverage)
    write_windows(windows, out, meta={"schema": WINDOWS_SCHEMA_VERSION, "windows": dataclasses.asdict(config),
                                       "feature_set": fset.columns, "clean": dataclasses.asdict(clean),
                                       "cleaning": cleaned.to_dict(), "import": summary})
    print(json.dumps({**summary, "n_windows": len(windows), "out": str(out)}))
    return 1 if len(result.failures) else 0


def _read_windows(path: Path):
    import pandas as pd

    from .exceptions import MediaReadError

    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise MediaReadError(path, f"cannot be read as a windows parquet table ({err})") from err


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .modeling.cv import cross_validate, make_folds
    from .modeling.train import fit_model
    from .report.explain import explain_model, explain_windows, global_importance
    from .report.figures import confusion_figure, importance_figure, roc_figure, shap_beeswarm_figure
    from .report.metrics import summarize
    from .report.render import write_report

    windows = _read_windows(args.windows)
    windows = windows[windows[args.target].notna()].reset_index(drop=True) if args.target in windows else windows
    folds = make_folds(windows, target=args.target, groups=args.groups, n_splits=args.n_splits, split=args.split,
                       random_state=args.seed)
    cv = {name: cross_validate(windows, target=args.target, groups=args.groups, estimator=name, folds=folds,
                               split=args.split, random_state=args.seed) for name in ("xgboost", "logistic", "majority")}
    results = {name: summarize(result, n_boot=args.n_boot, seed=args.seed) for name, result in cv.items()}
    model = fit_model(windows, target=args.target, random_state=args.seed)
    explanation = explain_model(model, windows)
    importance = global_importance(explanation).mean(axis=1)
    figures = {"ROC curves, out-of-fold": roc_figure({k: cv[k] for k in ("xgboost", "logistic")}),
               "XGBoost confusion matrix, out-of-fold": confusion_figure(cv["xgboost"]),
               "Global SHAP importance (model fitted on all windows)": importance_figure(explanation)}
    for k, cls in enumerate(model.classes):
        figures[f"SHAP beeswarm, class {cls}"] = shap_beeswarm_figure(explanation, k)
    examples = windows.groupby(args.target, group_keys=False).head(2).index.to_numpy()
    texts = explain_windows(explanation)
    keys = [c for c in ("video_id", "window_idx", "start_s") if c in windows]
    explanations = [f"{', '.join(f'{k}={windows.at[i, k]}' for k in keys)} (true {windows.at[i, args.target]}): "
                    f"{texts[i]}" for i in examples]
    protocol = {"target": args.target, "split": f"{args.split} ({args.n_splits} folds, grouped by {args.groups})"
                if args.split == "subject" else f"random ({args.n_splits} folds)", "windows": len(windows),
                "subjects": int(windows[args.groups].nunique()) if args.groups in windows else None}
    quality = {"windows": len(windows), "windows with window_ok": int(windows["window_ok"].sum())
               if "window_ok" in windows else None,
               "median face coverage": round(float(windows["coverage"].median()), 3) if "coverage" in windows else None,
               "missing feature values": f"{windows[model.features].isna().to_numpy().mean():.1%}"}
    meta_path = args.windows.with_name("windows.meta.json")
    config: dict[str, object] = {"evaluate": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                              if k not in ("handler",)}}
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        config.update({k: meta.get(k) for k in ("extract", "clean", "windows")})
        cleaning = meta.get("cleaning", {})
        quality.update({"items": meta.get("n_items"), "failed items": meta.get("n_failures"),
                        "values masked by reason (quality, range, jump, level)": cleaning.get("masked_by_reason"),
                        "values masked per feature": cleaning.get("outliers"),
                        "values interpolated per feature": cleaning.get("filled")})
    frames_meta = args.windows.with_name("frames.meta.json")
    if frames_meta.is_file():
        meta = json.loads(frames_meta.read_text())
        quality.update({"face yield (frames with a face)": meta.get("face_yield"),
                        "unreadable frames": meta.get("n_unreadable_frames")})
    path = write_report(results, args.out, title=f"geoengage evaluation: {args.target}", protocol=protocol,
                        figures=figures, importance=importance.round(5).to_dict(), explanations=explanations,
                        data_quality=quality, config=config)
    print(json.dumps({name: {k: round(r["metrics"][k], 4) for k in ("balanced_accuracy", "f1_macro", "auc_roc")}
                      for name, r in results.items()} | {"report": str(path)}))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report.render import render_report

    print(json.dumps({"report": str(render_report(args.report, args.out))}))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .modeling.train import fit_model

    model = fit_model(_read_windows(args.windows), target=args.target, random_state=args.seed)
    folder = model.save(args.out)
    print(json.dumps({"model": str(folder), "features": len(model.features), "classes": model.classes,
                      "training": model.training}, default=str))
    return 0


def _add_window_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cleaning and windows")
    group.add_argument("--z-max", type=float, default=None,
                       help="opt-in: mask values whose robust z-score (on the level) exceeds this; off by default, "
                            "since it erases look-aways and blinks (measurement-error rules always run)")
    group.add_argument("--max-gap-s", type=float, default=0.25, help="longest gap to interpolate (seconds)")
    group.add_argument("--window-s", type=float, default=10.0, help="window length (seconds)")
    group.add_argument("--step-s", type=float, default=5.0, help="window step (seconds)")
    group.add_argument("--feature-set", default="default", help="default, minimal, or a TOML file")
    group.add_argument("--min-coverage", type=float, default=0.6, help="face coverage for window_ok")


def _cmd_enroll(args: argparse.Namespace) -> int:
    from .detect.identity import enroll_people, save_encodings

    people, skipped = enroll_people(args.folder, min_face_px=args.min_face_px)
    save_encodings(people, args.out)
    for path, reason in skipped:
        logger.warning("skipped %s: %s", path, reason)
    print(json.dumps({"people": list(people.names), "n_encodings": len(people.encodings),
                      "n_skipped": len(skipped), "out": str(args.out)}))
    return 0


def _cmd_features(args: argparse.Namespace) -> int:
    from .geometry.registry import feature_specs, features_markdown

    if args.markdown:
        sys.stdout.write(features_markdown())
    else:
        for spec in feature_specs():
            print(f"{spec.name:24s} {spec.unit:14s} {spec.low:g} to {spec.high:g}  {spec.doc}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    summary = run_demo(Path(args.out))
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .serve import ServeConfig, create_app

    app = create_app(ServeConfig(max_upload_mb=args.max_upload_mb, max_video_s=args.max_video_s,
                                 video_fps=args.video_fps, **_screen_overrides(args)))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def _cmd_live(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .live import CsvSink, JsonLinesSink, LiveConfig, run_live

    source = int(args.source) if args.source.isdigit() else args.source
    config = LiveConfig(window_s=args.window_s, step_s=args.step_s, realtime=not args.every_frame,
                        max_seconds=args.max_seconds)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C ends the run cleanly, outputs closed
    if args.format == "csv":
        if args.output is None:
            raise InvalidParameterError("`--output` must be set for --format csv (a .csv path).")
        sink = CsvSink(args.output)
    else:
        stream = sys.stdout if args.output is None else open(args.output, "w")  # noqa: SIM115 (closed below)
        sink = JsonLinesSink(stream)
    try:
        stats = run_live(source, sink, config=config, extract=_extract_config(args), annotate_path=args.annotate,
                         stop=stop)
    finally:
        if isinstance(sink, CsvSink):
            sink.close()
        elif args.output is not None:
            sink.stream.close()
    print(json.dumps({"type": "summary", **stats.to_dict()}), file=sys.stderr)
    return 0


def _logging_options(*, defaults: bool) -> argparse.ArgumentParser:
    """-v/-q, accepted before or after the subcommand (the subcommand's copy leaves unset values alone)."""
    parser = argparse.ArgumentParser(add_help=False, argument_default=None if defaults else argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="count", help="more log lines (-vv for debug)",
                        **({"default": 0} if defaults else {}))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only",
                        **({} if defaults else {"default": argparse.SUPPRESS}))
    return parser


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geoengage", description=__doc__.splitlines()[0],
                                     parents=[_logging_options(defaults=True)])
    sub = parser.add_subparsers(dest="command", required=True)
    common = [_logging_options(defaults=False)]

    demo = sub.add_parser("demo", parents=common, help="run the pipeline on a bundled sample clip and write its outputs")
    demo.add_argument("--out", default="geoengage-demo", help="output folder (default ./geoengage-demo)")
    demo.set_defaults(handler=_cmd_demo)

    extract = sub.add_parser("extract", parents=common, help="media -> per-frame faces and landmarks (parquet)")
    extract.add_argument("source", help="image, video, folder (recursive) or CSV manifest with a 'path' column")
    extract.add_argument("--out", required=True,
                         help="output folder: parts/, failures.csv, frames.parquet, windows.parquet (+ .meta.json)")
    extract.add_argument("--jobs", type=int, default=-1, help="local worker processes (default -1: every core)")
    extract.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run on that cluster")
    _add_extract_options(extract)
    _add_window_options(extract)
    extract.set_defaults(handler=_cmd_extract)

    importer = sub.add_parser("import", parents=common, help="another tool's per-frame CSV -> frames and windows")
    importer.add_argument("tool", choices=["openface", "pyfeat"])
    importer.add_argument("csv", nargs="+", type=Path,
                          help="the tool's CSVs, or a CSV manifest with a 'path' column naming them and any other "
                               "columns (label, subject_id, fps, frame_width, frame_height, media_path)")
    importer.add_argument("--out", required=True, type=Path)
    importer.add_argument("--fps", type=float, help="frame rate for times (default: the CSV's timestamps, else 30)")
    importer.add_argument("--frame-size", metavar="WxH",
                          help="frame size where neither the CSV nor the media gives it (pose, gaze need it)")
    _add_window_options(importer)
    importer.set_defaults(handler=_cmd_import)

    evaluate = sub.add_parser("evaluate", parents=common,
                              help="subject-grouped cross-validation of XGBoost and baselines -> report")
    evaluate.add_argument("windows", type=Path, help="windows.parquet from `geoengage extract`")
    evaluate.add_argument("--target", required=True, help="label column, e.g. engagement")
    evaluate.add_argument("--groups", default="subject_id", help="column that folds never split (default subject_id)")
    evaluate.add_argument("--n-splits", type=int, default=5)
    evaluate.add_argument("--split", choices=["subject", "random"], default="subject",
                          help="random only for comparison: the report flags it in red")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--n-boot", type=int, default=1000, help="subject bootstrap resamples for the 95%% CIs")
    evaluate.add_argument("--out", type=Path, required=True, help="report folder (report.html, .md, .json)")
    evaluate.set_defaults(handler=_cmd_evaluate)

    report = sub.add_parser("report", parents=common, help="render report.html/.md again from a report.json")
    report.add_argument("report", type=Path, help="report folder or report.json written by `geoengage evaluate`")
    report.add_argument("--out", type=Path, required=True)
    report.set_defaults(handler=_cmd_report)

    train = sub.add_parser("train", parents=common, help="fit XGBoost on every window and save it (JSON, no pickle)")
    train.add_argument("windows", type=Path)
    train.add_argument("--target", required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, required=True, help="model folder (model.json, model.meta.json)")
    train.set_defaults(handler=_cmd_train)

    features = sub.add_parser("features", parents=common, help="list every per-frame feature: name, unit, range")
    features.add_argument("--markdown", action="store_true", help="print features/FEATURES.md")
    features.set_defaults(handler=_cmd_features)

    serve = sub.add_parser("serve", parents=common, help="HTTP service: POST /predict, GET /health, a web page at /")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-upload-mb", type=float, default=50.0)
    serve.add_argument("--max-video-s", type=float, default=120.0)
    serve.add_argument("--video-fps", type=float, default=10.0, help="video frames analysed per second")
    _add_screen_options(serve)
    serve.set_defaults(handler=_cmd_serve)

    live = sub.add_parser("live", parents=common,
                          help="analyse a camera, stream or file in real time: JSON lines or CSV, annotated video")
    live.add_argument("--source", required=True, help="camera index (0), stream address or video file")
    live.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    live.add_argument("--output", type=Path, help="file to write (default: JSON lines on stdout)")
    live.add_argument("--annotate", type=Path, help="also write an annotated video (.avi or .mp4)")
    live.add_argument("--window-s", type=float, default=2.0)
    live.add_argument("--step-s", type=float, default=1.0)
    live.add_argument("--max-seconds", type=float, help="stop after this much source time")
    live.add_argument("--every-frame", action="store_true",
                      help="analyse every frame instead of dropping frames to keep up (offline use)")
    _add_extract_options(live)
    live.set_defaults(handler=_cmd_live)

    enroll = sub.add_parser("enroll", parents=common, help="encode known people from FOLDER/<person>/*.jpg into a JSON file")
    enroll.add_argument("folder", type=Path)
    enroll.add_argument("--out", type=Path, default=Path("encodings.json"))
    enroll.add_argument("--min-face-px", type=int, default=40)
    enroll.set_defaults(handler=_cmd_enroll)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``geoengage`` command; return the process exit status."""
    args = _build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else max(logging.DEBUG, logging.INFO - 10 * args.verbose)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except GeoEngageError as err:
        logger.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
