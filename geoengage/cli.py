"""The ``geoengage`` command: a thin argparse front end, one subcommand per stage.

Each subcommand calls one public function; user errors become one log line and
exit status 2 (no traceback). ``main(argv)`` returns the exit status, so it is testable.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import outputs
from .clean import CleanConfig
from .config import SCREEN_FIELDS, ExtractConfig, load_config
from .dataset import WINDOWS_SCHEMA_VERSION, WindowConfig, build_dataset, import_dataset, write_windows
from .detect.faces import fit_crop_box_to_files
from .detect.identity import enroll_people, save_encodings
from .exceptions import GeoEngageError, InvalidParameterError
from .geometry.registry import feature_specs, features_markdown
from .importers import IMPORTED_SIGNALS
from .media import IMAGE_EXTENSIONS, list_media
from .progress import TqdmHook
from .recipe import WindowChanges
from .window_tables import read_window_table

__all__ = ["main"]

logger = logging.getLogger("geoengage")


def _add_extract_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("landmark stage")
    group.add_argument("--config", type=Path, help="TOML file with an [extract] table (options below override it)")
    group.add_argument("--sample-fps", type=float, help="keep at most this many video frames per second")
    group.add_argument("--detector", choices=["yunet", "hog"],
                       help="face detector: yunet (CNN, finds turned heads; default) or hog (dlib, frontal faces)")
    group.add_argument("--min-face-px", type=int, help="smallest face width to detect (default 48)")
    group.add_argument("--detect-threshold", type=float,
                       help="detector score for a new face (default: yunet 0.6, hog 0.3; with hog, 0 suits face crops)")
    group.add_argument("--face-policy", choices=["largest", "all"], help="faces kept per frame (default largest)")
    group.add_argument("--crop-mode", choices=["off", "fallback", "always"],
                       help="inputs are face crops: use the crop box when no face is detected (fallback) or always")
    group.add_argument("--crop-box", metavar="auto|L,T,R,B",
                       help="crop box for face-crop inputs: fractions of width and height, or 'auto' to fit it on "
                            "up to 300 of the images (the median detector box; default: the square WACV crops')")
    group.add_argument("--no-tracking", action="store_true", help="run the detector on every video frame")
    group.add_argument("--identify", type=Path, metavar="ENCODINGS_JSON",
                       help="name faces by the people enrolled in this file (from `geoengage enroll`)")
    group.add_argument("--no-expression", action="store_true", help="skip the expression CNN (no expr_* columns)")
    group.add_argument("--no-gaze-cnn", action="store_true",
                       help="skip the gaze CNN (no gaze_cnn_*/on_screen_cnn; the geometric gaze_* stay)")
    camera = parser.add_argument_group("camera calibration (features in mm: head_*_mm, screen_*_mm; else NaN)")
    calibration = camera.add_mutually_exclusive_group()
    calibration.add_argument("--focal-px", type=float,
                             help="the camera's focal length in pixels at the decoded resolution (fx of a calibration)")
    calibration.add_argument("--camera-hfov-deg", type=float,
                             help="the camera's horizontal field of view in degrees (instead of --focal-px)")
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
    for option in ("sample_fps", "detector", "min_face_px", "detect_threshold", "face_policy", "crop_mode"):
        if getattr(args, option) is not None:
            overrides[option] = getattr(args, option)
    if args.no_tracking:
        overrides["tracking"] = False
    if args.no_expression:
        overrides["expression"] = False
    if args.no_gaze_cnn:
        overrides["gaze_cnn"] = False
    if args.identify is not None:
        overrides.update(identify=True, encodings_path=str(args.identify))
    overrides.update(_screen_overrides(args))
    for option in ("focal_px", "camera_hfov_deg"):
        if getattr(args, option, None) is not None:
            overrides[option] = getattr(args, option)
    crop = getattr(args, "crop_box", None)
    if crop is not None and crop != "auto":
        try:
            overrides["crop_box"] = tuple(float(v) for v in crop.split(","))
        except ValueError as err:
            raise InvalidParameterError(f"`--crop-box` must be 'auto' or four fractions L,T,R,B. Got {crop!r}.") from err
    elif crop == "auto":
        overrides["crop_box"] = _fit_crop_box(args.source)
    values = {**{k: getattr(base, k) for k in base.__dataclass_fields__}, **overrides}
    return ExtractConfig(**values)  # type: ignore[arg-type]


def _fit_crop_box(source: str) -> tuple[float, float, float, float]:
    """Crop-box fractions fitted on up to 300 images of ``source`` (a seeded sample)."""

    paths = [i.path for i in list_media(source) if Path(i.path).suffix.lower() in IMAGE_EXTENSIONS]
    if not paths:
        raise InvalidParameterError(f"`--crop-box auto` needs images; {source} has none.")
    fractions, n, n_read = fit_crop_box_to_files(paths)
    logger.info("crop box fitted on %d of %d sampled images: %s", n, n_read, [round(v, 3) for v in fractions])
    return tuple(round(v, 4) for v in fractions)  # type: ignore[return-value]


def _window_config(args: argparse.Namespace):

    return WindowConfig(window_s=args.window_s, step_s=args.step_s, feature_set=args.feature_set,
                        min_coverage=args.min_coverage)


#: Inputs whose longer side is at most this (px, median) look like face crops to ``extract``'s hint.
CROP_LIKE_PX = 160


def _cmd_extract(args: argparse.Namespace) -> int:

    hook = None if args.quiet else TqdmHook(file=sys.stderr)
    result = build_dataset(args.source, args.out, extract=_extract_config(args),
                           clean=CleanConfig(z_max=args.z_max, max_gap_s=args.max_gap_s),
                           windows=_window_config(args), n_jobs=args.jobs, scheduler=args.scheduler,
                           chunk_size=args.chunk_size, hook=hook)
    print(json.dumps(result.to_dict()))
    read = result.n_items - len(result.failures)
    if read and not result.n_with_face:  # nothing usable was made: say so, and what to try
        crops = result.median_size_px is not None and result.median_size_px <= CROP_LIKE_PX
        hint = (f" The inputs are small ({result.median_size_px:.0f} px, median): if they are face crops, try "
                "--crop-mode fallback, which takes the crop box as the face where the detector finds none."
                if crops and args.crop_mode in (None, "off") else
                " Check that the inputs show faces (at least --min-face-px on their shorter side).")
        logger.error("no face found in any of the %d inputs read; the windows have no face coverage.%s", read, hint)
        return 1
    if not args.quiet:
        logger.info("a face in %d of %d inputs read", result.n_with_face, read)
    if len(result.failures):  # the batch went on; the exit status still says that not everything was read
        logger.error("%d of %d items failed (see %s); the others are in %s", len(result.failures), result.n_items,
                     Path(args.out) / "failures.csv", args.out)
        return 1
    return 0


def _cmd_import_table(args: argparse.Namespace) -> int:

    if len(args.csv) != 1:
        raise InvalidParameterError(f"`import table` reads one table; got {len(args.csv)} files.")
    if not (args.recording and args.order):
        raise InvalidParameterError("`import table` needs --recording and --order (the recording column and the "
                                    "column giving each window's position in it).")
    drop = [c.strip() for c in (args.drop or "").split(",") if c.strip()]
    result = read_window_table(args.csv[0], recording=args.recording, order=args.order, subject=args.subject,
                               target=args.target, start=args.start, end=args.end, drop=drop)
    args.out.mkdir(parents=True, exist_ok=True)
    attrs = result.windows.attrs["geoengage"]
    write_windows(result.windows, args.out, meta={"schema": WINDOWS_SCHEMA_VERSION, **attrs,
                                                  "feature_set": [c for c in result.windows.columns if "__" in c],
                                                  "table_import": result.summary})
    print(json.dumps({**result.summary, "out": str(args.out)}))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    if args.tool == "table":
        return _cmd_import_table(args)


    size = None
    if args.frame_size:
        try:
            width, height = (int(v) for v in args.frame_size.lower().split("x"))
        except ValueError as err:
            raise InvalidParameterError(f"`--frame-size` must be WIDTHxHEIGHT, e.g. 640x480. Got {args.frame_size!r} "
                                        "instead.") from err
        size = (width, height)
    done = import_dataset(args.csv, args.out, tool=args.tool, fps=args.fps, frame_size=size, focal_px=args.focal_px,
                          clean=CleanConfig(z_max=args.z_max, max_gap_s=args.max_gap_s), windows=_window_config(args))
    print(json.dumps(done.to_dict()))
    if done.windows is None:
        logger.error("no file could be imported; see %s", done.out_dir / "failures.csv")
        return 1
    return 1 if len(done.imported.failures) else 0


def _model_options(args: argparse.Namespace) -> dict[str, object]:
    """The model options shared by evaluate and train (classes, engaged classes, imbalance, tuning)."""
    def names(text: str | None) -> list[str] | None:
        return None if text is None else [v.strip() for v in text.split(",") if v.strip()]

    return {"classes": names(args.classes), "positive": names(args.positive),
            "class_weight": None if args.class_weight == "none" else args.class_weight,
            "calibrate": not args.no_calibration, "decision": args.decision, "threshold": args.threshold,
            "tune": args.tune, "estimator": args.estimator}


def _label_map(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    try:
        return dict(pair.split("=", 1) for pair in text.split(","))
    except ValueError as err:
        raise InvalidParameterError(f"label maps must be FROM=TO pairs, e.g. 0=0,1=0,2=1. Got {text!r}.") from err


def _named_tables(paths: list[Path]) -> dict[str, Path]:
    """Each data set's windows.parquet by name: the folder it lies in (``A/windows.parquet`` is data set ``A``)."""
    names = [p.parent.name if p.suffix else p.name for p in paths]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidParameterError(f"data sets are named by their folder, and {repeated} name more than one of "
                                    f"{[str(p) for p in paths]}: put each set's windows.parquet in its own folder.")
    return dict(zip(names, paths, strict=True))


def _set_maps(texts: list[str] | None) -> dict[str, dict[str, str]]:
    """``--set-map NAME:FROM=TO,...`` (repeated) as {data set: {label: pooled label}}."""
    maps: dict[str, dict[str, str]] = {}
    for text in texts or []:
        name, sep, pairs = text.partition(":")
        mapping = _label_map(pairs) if sep else None
        if not mapping or not name:
            raise InvalidParameterError(f"`--set-map` must be NAME:FROM=TO,..., e.g. daisee:0=0,1=0,2=1,3=1. "
                                        f"Got {text!r}.")
        maps[name] = mapping
    return maps


def _kind_options(args: argparse.Namespace) -> dict[str, object]:
    """The options of the model kind chosen by ``--model``: a window model's (:func:`_model_options`) or a
    sequence model's (task, state size, epochs, networks, features, summary path)."""
    if args.model == "tabular":
        return _model_options(args)
    options: dict[str, object] = {"task": args.task}
    for name in ("hidden", "max_epochs", "n_seeds", "max_features"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.summary_path:
        options["summary"] = True
    return options


def _cmd_evaluate(args: argparse.Namespace) -> int:
    # scikit-learn and XGBoost load only for the commands that model (`geoengage --help` stays fast)
    from .evaluation import evaluate

    if args.by == "dataset":
        if args.model != "tabular":
            raise InvalidParameterError("--by dataset (leave one data set out) evaluates window models: drop --model "
                                        f"{args.model}, or evaluate the sequence model on one data set.")
        # scikit-learn and XGBoost load only for the commands that model (`geoengage --help` stays fast)
        from .evaluation import evaluate_datasets

        summary = evaluate_datasets(_named_tables(args.windows), target=args.target, out=args.out,
                                    label_maps=_set_maps(args.set_map), weights=args.weights, groups=args.groups,
                                    n_splits=args.n_splits, seed=args.seed, n_boot=args.n_boot,
                                    **_model_options(args))
        print(json.dumps(summary))
        return 0
    if len(args.windows) > 1:
        raise InvalidParameterError(f"{len(args.windows)} window tables given: several data sets are evaluated with "
                                    "--by dataset (leave one data set out); one table with --by subject.")
    summary = evaluate(args.windows[0], target=args.target, out=args.out, groups=args.groups, n_splits=args.n_splits,
                       split=args.split, seed=args.seed, n_boot=args.n_boot, test=args.test,
                       test_target=args.test_target, label_map=_label_map(args.test_map),
                       test_name=args.test.parent.name if args.test else "test", model=args.model,
                       **_kind_options(args))
    print(json.dumps(summary))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    # scikit-learn and XGBoost load only for the commands that model (`geoengage --help` stays fast)
    from .report.render import render_report

    print(json.dumps({"report": str(render_report(args.report, args.out))}))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    # scikit-learn and XGBoost load only for the commands that model (`geoengage --help` stays fast)
    from .modeling.protocol import train

    windows = args.windows[0] if len(args.windows) == 1 else _named_tables(args.windows)
    model = train(windows, target=args.target, model=args.model, out=args.out, random_state=args.seed,
                  label_maps=_set_maps(args.set_map), weights=args.weights, **_kind_options(args))
    print(json.dumps({"model": str(args.out), **model.describe()}, default=str))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    # scikit-learn and XGBoost load only for the commands that model (`geoengage --help` stays fast)
    from .modeling.protocol import model_kind

    # (for the same reason) the model score applies, read once, and scoring with it
    from .predict import score, scoring_model

    model = scoring_model(args.model)
    scored = score(args.windows, model=model, top_reasons=args.top_reasons)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if model_kind(model) != "tabular":  # a sequence model: scores with time
        outputs.write_table(scored, args.out)
        final = scored.dropna(subset=["engagement_recording"]).drop_duplicates("video_id")
        print(json.dumps({"out": str(args.out), "windows": len(scored),
                          "scored": int(scored["engagement_so_far"].notna().sum()), "recordings": len(final),
                          "recording_predictions": dict(zip(final["video_id"].astype(str).head(20),
                                                            final["engagement_recording"].head(20).tolist()))},
                         default=str))
        return 0
    table = scored.drop(columns=["reasons"])
    if args.out.suffix.lower() == ".csv":
        table = table.assign(out_of_range=table["out_of_range"].map(";".join))
    outputs.write_table(table, args.out)
    ok = scored["engagement_probability"].notna()
    print(json.dumps({"out": str(args.out), "windows": len(scored), "scored": int(ok.sum()),
                      "mean_engagement_probability": round(float(scored.loc[ok, "engagement_probability"].mean()), 4)
                      if ok.any() else None,
                      "windows_out_of_training_range": int((scored["n_out_of_range"] > 0).sum()),
                      "windows_uncertain": int(scored["uncertain"].sum())}))
    return 0


def _add_pooling_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("several data sets")
    group.add_argument("--set-map", action="append", metavar="NAME:FROM=TO,...",
                       help="map one data set's labels onto the pooled coding, e.g. daisee:0=0,1=0,2=1,3=1 "
                            "(repeat per set; unmapped labels are left out)")
    group.add_argument("--weights", choices=["none", "dataset", "subject"], default="none",
                       help="training weights: each data set, or each subject, counts the same (default none)")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("classes and model")
    group.add_argument("--classes", help="class order, least to most engaged, comma-separated (default: numeric "
                                         "order for numbers)")
    group.add_argument("--positive", help="classes that count as engaged, comma-separated (default: all but the "
                                          "first; required for named labels without --classes)")
    group.add_argument("--class-weight", choices=["balanced", "none"], default="none",
                       help="balanced: weight classes equally in training (default none: the fitted decision rule "
                            "handles imbalance)")
    group.add_argument("--estimator", choices=["xgboost", "xgboost_ordinal", "logistic"], default="xgboost",
                       help="xgboost_ordinal regresses the class position (ordered levels) and calibrates it into "
                            "class probabilities; logistic is regularised logistic regression")
    group.add_argument("--no-calibration", action="store_true", help="skip the inner-fold probability calibration")
    group.add_argument("--decision", choices=["balanced", "argmax"], default="balanced",
                       help="pick classes for balanced accuracy (fitted threshold) or the most probable one")
    group.add_argument("--threshold", type=float, help="two classes: fixed threshold on P(engaged)")
    group.add_argument("--tune", action="store_true", help="choose XGBoost depth and trees in inner grouped folds")
    sequence = parser.add_argument_group("sequence models (one prediction per recording, from its windows in order)")
    sequence.add_argument("--model", choices=["tabular", "gru", "lstm"], default="tabular",
                          help="gru / lstm: a recurrent network over each recording's windows, reported beside "
                               "ridge/logistic and XGBoost on per-recording aggregates (default tabular: per window)")
    sequence.add_argument("--task", choices=["regression", "classification"],
                          help="sequence models: intensity (MSE) or class (default: regression for numeric labels)")
    sequence.add_argument("--hidden", type=int, help="sequence models: state size (default 32)")
    sequence.add_argument("--max-epochs", type=int, help="sequence models: most epochs (default 100; the count is "
                                                         "chosen on an inner subject split)")
    sequence.add_argument("--max-features", type=int,
                          help="sequence models: keep the features whose recording medians rank-correlate most with "
                               "the label (chosen inside each training fold; default: all)")
    sequence.add_argument("--n-seeds", type=int, help="sequence models: networks averaged (default 5)")
    sequence.add_argument("--summary-path", action="store_true",
                          help="sequence models: also feed the recording's mean and sd of each input to the output")


def _add_window_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cleaning and windows")
    group.add_argument("--z-max", type=float, default=None,
                       help="opt-in: mask values whose robust z-score (on the level) exceeds this; off by default, "
                            "since it erases look-aways and blinks (measurement-error rules always run)")
    group.add_argument("--max-gap-s", type=float, default=0.25, help="longest gap to interpolate (seconds)")
    group.add_argument("--window-s", type=float, default=10.0, help="window length (seconds)")
    group.add_argument("--step-s", type=float, default=5.0, help="window step (seconds)")
    group.add_argument("--feature-set", default="default",
                       help="default, minimal, with_setup (default + set-up features), appearance, gaze_cnn, "
                            "audit_clean (no feature the set-up audit flags on engagement_wacv), or a TOML file")
    group.add_argument("--min-coverage", type=float, default=0.6, help="face coverage for window_ok")


def _cmd_enroll(args: argparse.Namespace) -> int:

    people, skipped = enroll_people(args.folder, min_face_px=args.min_face_px)
    save_encodings(people, args.out)
    for path, reason in skipped:
        logger.warning("skipped %s: %s", path, reason)
    print(json.dumps({"people": list(people.names), "n_encodings": len(people.encodings),
                      "n_skipped": len(skipped), "out": str(args.out)}))
    return 0


def _cmd_features(args: argparse.Namespace) -> int:

    if args.markdown:
        sys.stdout.write(features_markdown(IMPORTED_SIGNALS))
    else:
        for spec in feature_specs():
            print(f"{spec.name:24s} {spec.unit:14s} {spec.low:g} to {spec.high:g}  {spec.doc}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    # scikit-learn and XGBoost load only for the commands that model (`geoengage --help` stays fast)
    from .demo import run_demo

    summary = run_demo(Path(args.out))
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    # FastAPI and uvicorn load only for `geoengage serve`
    from .serve import ServeConfig, create_app

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")  # each analysis worker computes on one core: N workers, N cores
    config = ServeConfig(max_upload_mb=args.max_upload_mb, max_video_s=args.max_video_s, video_fps=args.video_fps,
                         sequence_model=args.sequence_model, max_queue=args.max_queue,
                         max_request_s=args.max_request_s, max_image_megapixels=args.max_image_megapixels,
                         gaze_cnn=not args.no_gaze_cnn, workers=args.workers or os.cpu_count() or 1,
                         **_screen_overrides(args))
    # one web process (uploads, queue, /health) and a pool of analysis worker processes (see geoengage.serve)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning" if args.quiet else "info",
                http="geoengage.serve:NoDelayHTTPProtocol")
    return 0


def _cmd_live(args: argparse.Namespace) -> int:
    import signal
    import threading

    # scikit-learn and XGBoost load only for the commands that model (`geoengage --help` stays fast)
    from .live import CsvSink, JsonLinesSink, LiveConfig, run_live

    source = int(args.source) if args.source.isdigit() else args.source
    config = LiveConfig(windows=WindowChanges(window_s=args.window_s), step_s=args.step_s,
                        realtime=not args.every_frame, max_seconds=args.max_seconds)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C ends the run cleanly, outputs closed
    if args.format == "csv":
        if args.output is None:
            raise InvalidParameterError("`--output` must be set for --format csv (a .csv path).")
        sink = CsvSink(args.output)
    else:
        stream = sys.stdout if args.output is None else open(args.output, "w")
        sink = JsonLinesSink(stream)
    try:
        sequence = None
        if args.sequence_model is not None:
            # scikit-learn and XGBoost load only for the commands that model (`geoengage --help` stays fast)
            from .modeling.sequence import load_sequence_model

            sequence = load_sequence_model(args.sequence_model)
        stats = run_live(source, sink, config=config, extract=_extract_config(args), annotate_path=args.annotate,
                         stop=stop, sequence_model=sequence)
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
    parser.add_argument("-v", "--verbose", action="count",
                        help="more log lines, FFmpeg's own about damaged videos too (-vv for debug)",
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
    extract.add_argument("--chunk-size", type=int, default=64,
                         help="most images per part file (default 64; each video gets its own part)")
    _add_extract_options(extract)
    _add_window_options(extract)
    extract.set_defaults(handler=_cmd_extract)

    importer = sub.add_parser("import", parents=common,
                              help="another tool's per-frame CSV -> frames and windows; or a per-window table "
                                   "(import table FILE --recording ... --order ...) -> windows")
    importer.add_argument("tool", choices=["openface", "pyfeat", "table"],
                          help="table: any per-window feature table (parquet or CSV), one row per (recording, window)")
    importer.add_argument("csv", nargs="+", type=Path,
                          help="the tool's CSVs, or a CSV manifest with a 'path' column naming them and any other "
                               "columns (label, subject_id, fps, frame_width, frame_height, media_path); for "
                               "'table', one parquet or CSV file")
    table_group = importer.add_argument_group("per-window tables (import table)")
    table_group.add_argument("--recording", help="column naming each row's recording (video)")
    table_group.add_argument("--order", help="column giving the window's position within its recording")
    table_group.add_argument("--subject", help="column naming the person (folds never split it)")
    table_group.add_argument("--target", help="label column")
    table_group.add_argument("--start", help="column with each window's start (seconds)")
    table_group.add_argument("--end", help="column with each window's end (seconds)")
    table_group.add_argument("--drop", help="columns that are neither keys nor features, comma-separated")
    importer.add_argument("--out", required=True, type=Path)
    importer.add_argument("--fps", type=float, help="frame rate for times (default: the CSV's timestamps, else 30)")
    importer.add_argument("--frame-size", metavar="WxH",
                          help="frame size where neither the CSV nor the media gives it (pose, gaze need it)")
    importer.add_argument("--focal-px", type=float,
                          help="calibrated focal length the tool ran with (OpenFace -fx): keeps head_*_mm, else NaN")
    _add_window_options(importer)
    importer.set_defaults(handler=_cmd_import)

    evaluate = sub.add_parser("evaluate", parents=common,
                              help="subject-grouped cross-validation of XGBoost and baselines -> report")
    evaluate.add_argument("windows", type=Path, nargs="+", help="windows.parquet from `geoengage extract`; with "
                          "--by dataset one per data set (named by its folder)")
    evaluate.add_argument("--target", required=True, help="label column, e.g. engagement")
    evaluate.add_argument("--groups", default="subject_id", help="column that folds never split (default subject_id)")
    evaluate.add_argument("--n-splits", type=int, default=5)
    evaluate.add_argument("--split", choices=["subject", "random"], default="subject",
                          help="random only for comparison: the report flags it in red")
    evaluate.add_argument("--seed", type=int, default=0, help="subject split and models' seed; another seed, "
                          "another stratified subject split (repeated CV)")
    evaluate.add_argument("--n-boot", type=int, default=1000, help="subject bootstrap resamples for the 95%% CIs")
    evaluate.add_argument("--out", type=Path, required=True, help="report folder (report.html, .md, .json)")
    evaluate.add_argument("--test", type=Path, help="another windows.parquet (validation split or another data set): "
                                                    "train on all windows, report it beside the CV")
    evaluate.add_argument("--test-target", help="label column of --test (default: --target)")
    evaluate.add_argument("--test-map", help="map --test labels onto the training classes: FROM=TO,... "
                                             "(unmapped labels are left out)")
    evaluate.add_argument("--by", choices=["subject", "dataset"], default="subject",
                          help="dataset: leave one data set out (train on the others, score it), with the "
                               "cross-data-set matrix (default subject: grouped CV on one table)")
    _add_pooling_options(evaluate)
    _add_model_options(evaluate)
    evaluate.set_defaults(handler=_cmd_evaluate)

    report = sub.add_parser("report", parents=common, help="render report.html/.md again from a report.json")
    report.add_argument("report", type=Path, help="report folder or report.json written by `geoengage evaluate`")
    report.add_argument("--out", type=Path, required=True)
    report.set_defaults(handler=_cmd_report)

    train = sub.add_parser("train", parents=common, help="fit XGBoost on every window and save it (JSON, no pickle)")
    train.add_argument("windows", type=Path, nargs="+", help="windows.parquet; several (one per data set, named "
                       "by its folder) are pooled (--set-map, --weights)")
    train.add_argument("--target", required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, required=True, help="model folder (model.json, model.meta.json)")
    _add_pooling_options(train)
    _add_model_options(train)
    train.set_defaults(handler=_cmd_train)

    scorer = sub.add_parser("score", parents=common, help="apply a saved model to windows.parquet -> scores")
    scorer.add_argument("windows", type=Path, help="windows.parquet made with the model's settings")
    scorer.add_argument("--model", type=Path, help="model folder from `geoengage train` (default: the shipped model)")
    scorer.add_argument("--out", type=Path, required=True, help="scores file (.parquet, or .csv)")
    scorer.add_argument("--top-reasons", type=int, default=3, help="SHAP reasons per window (0: none)")
    scorer.set_defaults(handler=_cmd_score)

    features = sub.add_parser("features", parents=common, help="list every per-frame feature: name, unit, range")
    features.add_argument("--markdown", action="store_true", help="print features/FEATURES.md")
    features.set_defaults(handler=_cmd_features)

    serve = sub.add_parser("serve", parents=common, help="HTTP service: POST /predict, GET /health, a web page at /")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-upload-mb", type=float, default=50.0)
    serve.add_argument("--max-video-s", type=float, default=120.0)
    serve.add_argument("--video-fps", type=float, default=10.0, help="video frames analysed per second")
    serve.add_argument("--workers", type=int, help="worker processes, each analysing one request at a time with one "
                                                   "thread (default: the number of cores)")
    serve.add_argument("--max-queue", type=int, default=16, help="requests waiting before 503 (default 16)")
    serve.add_argument("--max-request-s", type=float, default=120.0, help="time budget of one analysis (default 120)")
    serve.add_argument("--max-image-megapixels", type=float, default=50.0,
                       help="largest image, by its header, before decoding (default 50)")
    serve.add_argument("--sequence-model", help="saved sequence model folder (geoengage train --model gru): videos "
                                                "also get its prediction from the windows so far")
    serve.add_argument("--no-gaze-cnn", action="store_true", help="skip the gaze CNN (no gaze_cnn_*/on_screen_cnn)")
    _add_screen_options(serve)
    serve.set_defaults(handler=_cmd_serve)

    live = sub.add_parser("live", parents=common,
                          help="analyse a camera, stream or file in real time: JSON lines or CSV, annotated video")
    live.add_argument("--source", required=True, help="camera index (0), stream address or video file")
    live.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    live.add_argument("--output", type=Path, help="file to write (default: JSON lines on stdout)")
    live.add_argument("--annotate", type=Path, help="also write an annotated video (.avi or .mp4)")
    live.add_argument("--window-s", type=float, help="window length (default: the model's training windows)")
    live.add_argument("--step-s", type=float, default=1.0, help="seconds between window records (default 1)")
    live.add_argument("--max-seconds", type=float, help="stop after this much source time")
    live.add_argument("--sequence-model", type=Path, help="saved sequence model folder (geoengage train --model gru on "
                                                        "geoengage windows): window records add engagement_so_far")
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


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """A warning as one log line (``WARNING geoengage: ...``), not Python's file path and source line."""
    logging.getLogger("geoengage").warning("%s", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``geoengage`` command; return the process exit status."""
    args = _build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else max(logging.DEBUG, logging.INFO - 10 * args.verbose)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # FFmpeg's own lines about a damaged video ("moov atom not found", "error while decoding MB") repeat in its
        # words what geoengage reports and records (failures.csv, frame_readable); OpenCV reads this when it opens the
        # first video, and worker processes inherit it. -v keeps them.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            return int(args.handler(args))
    except GeoEngageError as err:
        logger.error("%s", err)
        return 2
    except OSError as err:
        if err.errno not in outputs.WRITE_ERRNOS:
            raise
        # a full disk, a read-only or vanished folder: one line, not a traceback (outputs are written to a temporary
        # name and renamed into place, so none is left half-written)
        logger.error("could not write %s (%s); free space or fix the folder, then run the same command again",
                     err.filename or "an output", err.strerror or err)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, the conventional status; finished parts stay (a rerun resumes)
        logger.error("interrupted; finished work is kept (run the same command again to resume)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
