"""Frozen stage configurations that round-trip through TOML.

Each stage takes one ``@dataclass(frozen=True, kw_only=True)`` config, validated
in ``__post_init__``: a bad value fails when the config is made, not deep inside
a run. :func:`load_config` and :func:`dump_config` read and write the same TOML
tables the ``features/`` and ``models/configs/`` files use.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import tomli_w

from .exceptions import InvalidParameterError
from .geometry.gaze import GazeConfig, ScreenGeometry
from .geometry.pose import focal_from_hfov, focal_lengths

__all__ = ["SCREEN_FIELDS", "ExtractConfig", "check_setting", "config_from_dict", "config_to_dict", "dump_config",
           "load_config", "parse_focal_px"]

#: The settings that describe the screen behind ``on_screen`` (:class:`ExtractConfig`, the service, the CLI).
SCREEN_FIELDS = ("screen_width_mm", "screen_height_mm", "screen_centre_x_mm", "screen_top_mm")

C = TypeVar("C")


def check_setting(ok: bool, name: str, constraint: str, value: object) -> None:
    """Raise :class:`~geoengage.exceptions.InvalidParameterError` ("`name` must be constraint. Got value instead.")
    unless ``ok``: the one message every config class gives for a bad setting."""
    if not ok:
        raise InvalidParameterError(f"`{name}` must be {constraint}. Got {value!r} instead.")


def parse_focal_px(value: object, *, where: str) -> float | None:
    """A camera's focal length in pixels from a setting or a manifest cell: None for none given (None, NaN, an empty
    cell), else a finite number > 0; anything else is an :class:`InvalidParameterError` naming ``where``."""
    if value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        focal = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        focal = math.nan
    if not (math.isfinite(focal) and focal > 0):
        raise InvalidParameterError(f"{where} must be a focal length in pixels (a number > 0). Got {value!r} instead.")
    return focal


@dataclass(frozen=True, kw_only=True)
class ExtractConfig:
    """How media become per-frame faces and landmarks.

    Parameters
    ----------
    sample_fps : float or None
        Keep at most this many frames per second of video (``None``: every frame).
    sequence_fps : float
        Frame rate assumed for an image-sequence folder and for videos that do not state one.
    detector : {"yunet", "hog"}
        The face detector (:mod:`geoengage.detect.faces`): ``"yunet"``, a small CNN shipped in the package that
        finds faces turned up to 90 deg and gives five points that check the 68-point fit and give the head pose of
        a turned head; or ``"hog"``, dlib's HOG detector (frontal faces only, loses heads turned past about 45 deg;
        the default until features version 3).
    min_face_px : int
        Smallest face width, in pixels, the detector must find; it sets the detector's input size, so its cost.
        YuNet finds faces of about 16 px at its input: frames are resized by ``16 / min_face_px`` (48: a 640x360
        frame is searched at 213x120). dlib's HOG detector sees faces of about 80 px: frames are resized by
        ``80 / min_face_px``, so it is much slower at small settings.
    detect_threshold : float or None
        Detector score a new face must pass; None: the detector's own default (YuNet 0.6 of its 0-1 score, HOG
        0.3). HOG: real faces in photos and webcam video score 0.7 to 2.5; dlib's own default, 0, also admits
        weak false positives (the astronaut photo's space suit scores 0.05). For face crops with the HOG detector
        (``crop_mode``), 0 is better: on the engagement_wacv crops 0.3 finds 69% of the faces where 0 finds 83%
        (YuNet finds all of them at its default).
    face_policy : {"largest", "all"}
        Keep one face, or every face. ``"largest"``: the largest face a full-frame detection finds is kept and
        followed until the next one (``detect_every``) or until it is lost; the others are counted (``n_faces``)
        but not fitted (one 68-point fit a frame), and two people of about one size no longer take turns at being
        the kept face between detections. ``"all"``: every face, up to ``max_faces``, each its own track.
    crop_mode : {"off", "fallback", "always"}
        For inputs that are already face crops: ``"fallback"`` uses the calibrated crop box
        when the detector finds no face; ``"always"`` skips the detector. Crops get their own camera model
        (:data:`~geoengage.geometry.pose.CROP_FOCAL_FACTOR`) and no ``on_screen``.
    crop_box : tuple of 4 floats or None
        The crop box as fractions (left, top, right, bottom) of the crop's width and height; ``None``: the one
        measured on the square engagement_wacv crops. Crops of another shape or framing need their own:
        :func:`geoengage.detect.faces.fit_crop_box` (``geoengage extract --crop-box auto`` fits it on the data).
    tracking : bool
        In videos, refit landmarks from the previous frame's face instead of detecting
        in every frame.
    detect_every : int
        With tracking, run the full-frame detector every this many frames to find new faces.
    search_every : int
        With tracking, while no face is tracked and the last detector run found none, run the full-frame
        detector on every this many frames (1: every frame). The detector is most of the cost of a frame without a
        face; at 30 fps the default 3 still looks 10 times a second, so a face that comes into view is found at most
        2 frames (67 ms) late.
    verify_every : int
        With tracking, check every this many frames that each tracked face is still a face
        (a detector run on a small region around it); a failed check ends the track.
    skip_verify_ncc : float or None
        With tracking, a face whose 24x24 patch still correlates at least this much with the patch the detector
        last confirmed skips that periodic check (it looks as it did then); None checks every ``verify_every``
        frames. A face whose patch correlates less than 0.6 is checked at once, whatever this is.
    max_faces : int
        Most faces tracked at once.
    reidentify : bool
        In videos, a face that leaves and comes back keeps its track id when its dlib face encoding
        matches the ended track's (see :mod:`geoengage.detect.tracking`); two people keep two ids.
    reid_tolerance : float
        Largest face-encoding distance at which a returning face is the same person (0.5; dlib's
        own "same person" rule is 0.6).
    identify : bool
        Match each face track against the enrolled people in ``encodings_path``.
    encodings_path : str or None
        JSON file written by ``geoengage enroll``.
    identity_tolerance : float
        Largest encoding distance accepted as the same person (0.6 is dlib's rule).
    expression : bool
        Run the shipped expression CNN on every face (columns ``expr_<class>`` and ``expr_class``).
    gaze_cnn : bool
        Run the shipped gaze CNN on both eyes of every face (``gaze_cnn_*``, ``on_screen_cnn``;
        :mod:`geoengage.geometry.gaze_cnn`).
    screen_width_mm, screen_height_mm : float
        Size of the screen the subject looks at, for ``on_screen`` (default a 15.6-inch laptop).
    screen_centre_x_mm : float
        Horizontal position of the screen's centre relative to the camera (x towards the image right).
    screen_top_mm : float
        How far below the camera the screen's top edge is (0: a laptop webcam at the edge).
    gaze_v_bias : float
        Upward bias of the measured vertical pupil position removed before the gaze geometry
        (see :mod:`geoengage.geometry.gaze`).
    focal_px : float or None
        The camera's calibrated focal length in pixels at the resolution frames are decoded at (``fx`` of an OpenCV
        calibration; for a square-pixel camera ``fy`` is the same). With it (or ``camera_hfov_deg``) the head
        position and the gaze's landing point are produced in mm (``head_*_mm``, ``screen_*_mm``); without either
        they are NaN, because a focal length assumed from the frame width can be 40% off
        (:mod:`geoengage.geometry.pose`). Not for face crops (``crop_mode``): a crop has no camera.
    camera_hfov_deg : float or None
        The camera's horizontal field of view in degrees, instead of ``focal_px`` (focal = width / (2 tan(hfov/2)));
        a data sheet's diagonal field of view is larger: convert it first.
    expression_batch : int
        Faces per CNN call (expression and gaze). Rows are held back until a batch is full (32 suits files); live mode
        uses 1 so each frame's row comes out at once.
    """

    sample_fps: float | None = None
    sequence_fps: float = 30.0
    detector: str = "yunet"
    min_face_px: int = 48
    detect_threshold: float | None = None
    face_policy: str = "largest"
    crop_mode: str = "off"
    crop_box: tuple[float, float, float, float] | None = None
    tracking: bool = True
    detect_every: int = 30
    search_every: int = 3
    verify_every: int = 5
    skip_verify_ncc: float | None = 0.9
    max_faces: int = 8
    reidentify: bool = True
    reid_tolerance: float = 0.5
    identify: bool = False
    encodings_path: str | None = None
    identity_tolerance: float = 0.6
    expression: bool = True
    gaze_cnn: bool = True
    expression_batch: int = 32
    screen_width_mm: float = 345.0
    screen_height_mm: float = 194.0
    screen_centre_x_mm: float = 0.0
    screen_top_mm: float = 0.0
    gaze_v_bias: float = 0.21
    focal_px: float | None = None
    camera_hfov_deg: float | None = None

    def __post_init__(self) -> None:
        check_setting(self.sample_fps is None or self.sample_fps > 0, "sample_fps", "None or > 0", self.sample_fps)
        check_setting(self.sequence_fps > 0, "sequence_fps", "> 0", self.sequence_fps)
        check_setting(20 <= self.min_face_px <= 2000, "min_face_px", "between 20 and 2000", self.min_face_px)
        check_setting(self.detector in ("yunet", "hog"), "detector", "'yunet' or 'hog'", self.detector)
        check_setting(self.detect_threshold is None or (0.0 <= self.detect_threshold <= 1.0 if self.detector == "yunet"
                                                 else -1.0 <= self.detect_threshold <= 3.0),
                      "detect_threshold", "None or a score between 0 and 1 (yunet) or between -1 and 3 (hog)",
                      self.detect_threshold)
        check_setting(self.face_policy in ("largest", "all"), "face_policy", "'largest' or 'all'", self.face_policy)
        check_setting(self.crop_mode in ("off", "fallback", "always"), "crop_mode", "'off', 'fallback' or 'always'",
                      self.crop_mode)
        check_setting(self.crop_box is None or (len(self.crop_box) == 4 and self.crop_box[0] < self.crop_box[2]
                                         and self.crop_box[1] < self.crop_box[3]),
                      "crop_box", "None or (left, top, right, bottom) fractions with left < right and top < bottom",
                      self.crop_box)
        if self.crop_box is not None:
            object.__setattr__(self, "crop_box", tuple(float(v) for v in self.crop_box))
        check_setting(self.detect_every >= 1, "detect_every", ">= 1", self.detect_every)
        check_setting(self.search_every >= 1, "search_every", ">= 1", self.search_every)
        check_setting(self.verify_every >= 1, "verify_every", ">= 1", self.verify_every)
        check_setting(self.skip_verify_ncc is None or 0.6 <= self.skip_verify_ncc <= 1, "skip_verify_ncc",
                      "None or between 0.6 and 1", self.skip_verify_ncc)
        check_setting(self.max_faces >= 1, "max_faces", ">= 1", self.max_faces)
        check_setting(0 < self.reid_tolerance < 2, "reid_tolerance", "between 0 and 2", self.reid_tolerance)
        check_setting(0 < self.identity_tolerance < 2, "identity_tolerance", "between 0 and 2", self.identity_tolerance)
        check_setting(1 <= self.expression_batch <= 4096, "expression_batch", "between 1 and 4096",
                      self.expression_batch)
        self.feature_options()  # checks the screen and gaze settings
        check_setting(self.focal_px is None or (math.isfinite(self.focal_px) and self.focal_px > 0), "focal_px",
                      "None or a focal length in pixels > 0", self.focal_px)
        check_setting(self.camera_hfov_deg is None or 1.0 <= self.camera_hfov_deg <= 170.0, "camera_hfov_deg",
                      "None or a horizontal field of view between 1 and 170 degrees", self.camera_hfov_deg)
        check_setting(self.focal_px is None or self.camera_hfov_deg is None, "camera_hfov_deg",
                      "None when focal_px is given (one calibration, not two)", self.camera_hfov_deg)
        check_setting(self.crop_mode == "off" or (self.focal_px is None and self.camera_hfov_deg is None), "crop_mode",
                      "'off' with a calibrated camera (focal_px, camera_hfov_deg): a face crop has no camera geometry",
                      self.crop_mode)
        check_setting(not self.identify or self.encodings_path is not None, "encodings_path",
                      "set when identify=True (write one with `geoengage enroll`)", self.encodings_path)


    def camera_focal(self, width: int | None) -> float:
        """The calibrated focal length (px) for frames ``width`` pixels wide; NaN for an uncalibrated camera."""
        if self.focal_px is not None:
            return float(self.focal_px)
        if self.camera_hfov_deg is not None and width:
            return focal_from_hfov(width, self.camera_hfov_deg)
        return float("nan")

    def model_focal(self, width: int | None) -> float:
        """The focal length (px) of the camera model for frames ``width`` pixels wide: the calibrated one, else
        :data:`~geoengage.geometry.pose.CROP_FOCAL_FACTOR` widths for face crops (``crop_mode``), else NaN (the
        full-frame rule, focal length = width, applies)."""
        focal = self.camera_focal(width)
        if self.crop_mode == "off" or not width:
            return focal

        return float(focal_lengths(np.array([[width, 0.0]]), np.array([focal]), crops=True)[0])

    def feature_options(self) -> dict[str, Any]:
        """Settings of the per-frame features (``compute_frame_features(options=...)``): the gaze geometry (face
        crops, ``crop_mode`` other than "off", are no camera's view: no ``on_screen``)."""

        screen = ScreenGeometry(width_mm=self.screen_width_mm, height_mm=self.screen_height_mm,
                                centre_x_mm=self.screen_centre_x_mm, top_mm=self.screen_top_mm)
        return {"gaze": GazeConfig(screen=screen, v_bias=self.gaze_v_bias, camera_frames=self.crop_mode == "off")}


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain dict, leaving out ``None`` values (TOML has no null)."""
    return {k: v for k, v in dataclasses.asdict(config).items() if v is not None}


def dump_config(config: Any, path: str | Path, *, table: str) -> None:
    """Write ``config`` to ``path`` as the TOML table ``[table]``."""
    Path(path).write_text(tomli_w.dumps({table: config_to_dict(config)}))


def load_config(path: str | Path, cls: type[C], *, table: str) -> C:
    """Read the TOML table ``[table]`` of ``path`` into ``cls``; unknown keys are an error."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise InvalidParameterError(f"{path}: cannot read the config ({err}).") from err
    return config_from_dict(data.get(table, {}), cls, where=f"{path} [{table}]")


def config_from_dict(values: dict[str, Any], cls: type[C], *, where: str) -> C:
    """A config from plain values (a TOML table, a model's saved settings); unknown keys are an error naming
    ``where`` they came from, and ``cls`` validates the rest (lists from JSON or TOML become tuples there)."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidParameterError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}.")
    return cls(**values)
