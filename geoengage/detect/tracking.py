"""Faces across frames: detection, landmark refitting and stable track ids.

:class:`FaceTracker` turns each grayscale frame (and, for the YuNet detector, the same frame in colour) into a list
of :class:`TrackedFace`. With ``tracking=True`` the full-frame detector (YuNet: about 3 ms on a 640x360 frame at
its default input size; dlib's HOG detector, ``detector="hog"``: about 20 ms on 640x480)
runs only every ``detect_every`` frames, or when every track is lost; while nobody is in view it
searches every ``search_every`` frames (3: a face that comes into view is found at most two frames
late, and an empty room costs a third of the detector runs; measured with the HOG detector on the real clip in
``../shared``: the landmark stage ran 1.8x faster and found a face in 52.4% of frames instead of 54.5%); between
detections each face's landmarks are refitted inside the box derived from the
previous frame's landmarks (2-4.5 ms, dlib's 68-point fit). Every ``verify_every`` frames, and at
once when the face patch stops looking like the last confirmed one (normalised
cross-correlation of a 24x24 patch below ``min_patch_ncc``) or when the box its landmarks imply has drifted from
the size last confirmed by more than :data:`MAX_SIZE_DRIFT`, a detector run on a
small region around the face (about 3 ms) confirms it is still a face and re-centres
the box; of the faces found there it answers with the one overlapping the tracked box most (a neighbour in a crowd
may score higher). The periodic check is skipped for a face whose patch still matches its last
confirmed one at ``skip_verify_ncc`` (0.9) or more: the box then holds what the detector
confirmed, nearly unchanged (a still subject, a steady camera). On the generated clip
(a photo moved smoothly) this skips most checks: 360 -> 439 fps in
``benchmarks/landmark_speed.py``, the landmarks' median distance to detect-every-frame
landmarks unchanged (0.86-0.87% of the eye distance); on the real clip in ``../shared``
faces change more and every result is identical.

**Re-identification** (``reidentify=True``): a face that leaves the frame (or turns away) and comes
back is the same person, and keeps its track id. When the detector finds a face that no current
track explains while a track of this recording has ended, the two faces' 128-d dlib encodings
(:func:`geoengage.detect.identity.encode_face`, from the new frame and from the last frame the ended
track was seen in) are compared: within ``reid_tolerance`` (0.5, stricter than dlib's 0.6 rule for
"same person", so two different people are not merged) the ended track's id is reused, otherwise a
new id starts. The encodings cost about 20 ms each on one core (dlib's network run in torch,
:mod:`geoengage.detect.face_encoder`), and are only computed when a face appears
while an ended track exists, and only for faces at least :data:`REID_MIN_FACE_PX` wide: dlib's encoder works on
150 px chips, and smaller faces (passers-by in the background, found since the CNN detector finds faces of 16 px at
its input) get a new id instead. On the real clip in ``../shared`` background faces of 40-60 px came and went and
their encodings were 30% of the landmark stage's time (when dlib's own run took ~0.17 s each). Track ids of
different people are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..exceptions import InvalidParameterError
from .faces import FaceDetector, box_area, box_iou, crop_box
from .identity import encode_face
from .landmarks import LandmarkBackend, box_from_landmarks, fit_disagrees

__all__ = ["MAX_SIZE_DRIFT", "REID_MIN_FACE_PX", "FaceTracker", "TrackedFace"]

_PATCH_PX = 24
_MAX_ENDED = 16
#: Smallest face width (px) that is re-identified (module docstring).
REID_MIN_FACE_PX = 64
#: How far (a share of its width) the box a tracked face's landmarks imply may drift from the size the detector last
#: confirmed before the face is checked by the detector in that frame. Refitting in the box the last fit implies is
#: a loop: on the real clip in ../shared, whose faces are small and often turned, the box came out smaller each frame
#: (0.81-0.88 of the last, 47 times in 121 tracked frames; a 100 px face read 69 px two frames later). On a still
#: frontal face the loop settles 2-8% below the detector's size (3-15% for heads turned 30-60 deg), so a drift
#: past 20% is the loop running away, not the face changing.
MAX_SIZE_DRIFT = 0.2


def _patch(gray: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The face box resampled to 24x24, zero-mean and unit-norm (None when off the frame)."""
    left, top = int(max(0, box[0])), int(max(0, box[1]))
    right, bottom = int(min(gray.shape[1], box[2])), int(min(gray.shape[0], box[3]))
    if right - left < 4 or bottom - top < 4:
        return None
    patch = cv2.resize(gray[top:bottom, left:right], (_PATCH_PX, _PATCH_PX), interpolation=cv2.INTER_AREA)
    patch = patch.astype(np.float32) - patch.mean()
    norm = float(np.linalg.norm(patch))
    return patch / norm if norm > 0 else None


@dataclass(frozen=True)
class TrackedFace:
    """One face in one frame.

    Attributes
    ----------
    track_id : int
    box : ndarray of shape (4,), pixels, (left, top, right, bottom)
    landmarks : ndarray of shape (68, 2), pixels
    score : float
        Detector score, NaN when the box came from the tracker or crop mode.
    source : {"detector", "tracker", "crop"}
    points : ndarray of shape (5, 2) or None
        The detector's five points (YuNet) when a detector found the face in this frame, else None.
    """

    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    score: float
    source: str
    points: np.ndarray | None = None

    @property
    def area(self) -> float:
        return box_area(self.box)


class FaceTracker:
    """Detect, track and fit landmarks to faces, frame after frame.

    Parameters
    ----------
    detector : FaceDetector
        :class:`~geoengage.detect.faces.YuNetFaceDetector` or :class:`~geoengage.detect.faces.HogFaceDetector`.
    landmarker : LandmarkBackend
    tracking : bool
        False runs the detector on every frame (ids still follow faces by overlap).
    detect_every, search_every, verify_every, max_faces : int
        See :class:`~geoengage.config.ExtractConfig`.
    crop_mode : {"off", "fallback", "always"}
        Use the calibrated crop box when the detector finds nothing ("fallback") or always.
    min_patch_ncc : float
        A tracked face whose patch correlates less than this with its last confirmed patch
        is checked by the detector in that frame.
    skip_verify_ncc : float or None
        A tracked face whose patch correlates at least this much with its last confirmed patch
        skips the periodic check (None: every ``verify_every`` frames, whatever the patch).
    reidentify : bool
        Give a returning face its earlier track id when its face encoding matches (module docstring).
    reid_tolerance : float
        Largest encoding distance at which a returning face is the ended track's person.
    largest_only : bool
        Follow only the largest face each full-frame detection finds (``face_policy="largest"``): the others are
        counted (:attr:`n_faces`) but get no landmarks, track or identity. On the real clip in ../shared (2-4 faces
        in its crowd scenes) this fits 277 faces instead of 391 and encodes 6 instead of 8 for re-identification;
        where two faces of nearly one size took turns at being the largest, the one followed stays the kept face
        until the next detection.

    Attributes
    ----------
    n_faces : int
        Faces in view in the last frame, before any policy: those followed, or with ``largest_only`` those the last
        full-frame detection found while the kept face is still followed (0 when it is lost and none is found).
    """

    def __init__(
        self,
        detector: FaceDetector,
        landmarker: LandmarkBackend,
        *,
        tracking: bool = True,
        detect_every: int = 30,
        search_every: int = 3,
        verify_every: int = 5,
        max_faces: int = 8,
        crop_mode: str = "off",
        crop_fractions: tuple[float, float, float, float] | None = None,
        min_patch_ncc: float = 0.6,
        skip_verify_ncc: float | None = 0.9,
        reidentify: bool = True,
        reid_tolerance: float = 0.5,
        largest_only: bool = False,
    ) -> None:
        if crop_mode not in ("off", "fallback", "always"):
            raise InvalidParameterError(f"`crop_mode` must be 'off', 'fallback' or 'always'. Got {crop_mode!r} instead.")
        self.detector = detector
        self.landmarker = landmarker
        self.tracking = tracking
        self.detect_every = detect_every
        self.search_every = search_every
        self._last_empty: int | None = None  # frame of the last full-frame detection that found no face
        self.verify_every = verify_every
        self.max_faces = max_faces
        self.crop_mode = crop_mode
        self.crop_fractions = crop_fractions
        self.min_patch_ncc = min_patch_ncc
        self.skip_verify_ncc = skip_verify_ncc
        self.n_region_checks = 0
        self.reidentify = reidentify
        self.reid_tolerance = reid_tolerance
        self.largest_only = largest_only
        self.n_faces = 0
        self._n_detected = 0  # faces the last full-frame detection found (before largest_only)
        self._last_seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # track id -> (gray frame, box)
        self._ended: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}  # + encoding, made lazily
        self._encodings: dict[int, np.ndarray] = {}  # encodings already made for live tracks (when they started)
        self.n_reidentified = 0
        # track id -> (24x24 patch, box width) of the box the detector (or crop mode) last confirmed
        self._confirmed: dict[int, tuple[np.ndarray | None, float]] = {}
        self._turned: set[int] = set()  # tracks whose 68-point fit disagreed with the detector's points last time
        self._faces: list[TrackedFace] = []
        self._next_id = 0
        self._frames_seen = 0
        self.n_detector_runs = 0

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _returning_id(self, gray: np.ndarray, box: np.ndarray, taken: set[int]) -> int:
        """The id of an ended track whose face matches the new face in ``box``, else a new id."""
        candidates = [tid for tid, (_, old_box, _) in self._ended.items()
                      if tid not in taken and old_box[2] - old_box[0] >= REID_MIN_FACE_PX]
        if not self.reidentify or not candidates or box[2] - box[0] < REID_MIN_FACE_PX:
            return self._new_id()

        new = encode_face(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), box)
        best, best_distance = None, np.inf
        for tid in candidates:
            frame, old_box, encoding = self._ended[tid]
            if encoding is None:
                encoding = encode_face(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), old_box)
                self._ended[tid] = (frame, old_box, encoding)
            distance = float(np.linalg.norm(encoding - new))
            if distance < best_distance:
                best, best_distance = tid, distance
        if best is not None and best_distance <= self.reid_tolerance:
            self._encodings[best] = self._ended.pop(best)[2]
            self.n_reidentified += 1
            return best
        track_id = self._new_id()
        self._encodings[track_id] = new  # when this track ends, its face needs no second encoding
        return track_id

    def _detect(self, gray: np.ndarray, seen: np.ndarray) -> list[TrackedFace]:
        """Full-frame detection in ``seen`` (the frame the detector takes), matched to the current tracks by overlap."""
        self.n_detector_runs += 1
        if self.crop_mode == "always":
            detections = []
        else:
            detections = self.detector(seen)[: self.max_faces]
        self._n_detected = len(detections)
        if not detections and self.crop_mode != "off":
            self._n_detected = 1
            box = crop_box(*gray.shape[:2], self.crop_fractions)
            old = self._faces[0].track_id if self._faces else self._new_id()
            return [TrackedFace(old, box, self.landmarker(gray, box), float("nan"), "crop")]
        if self.largest_only and len(detections) > 1:  # the first of equal sizes, as the sort by size below keeps
            detections = [max(detections, key=lambda det: box_area(det.box))]
        previous = {face.track_id: self._box(face) for face in self._faces}
        faces = []
        unmatched = []
        for det in detections:
            best = max(previous.items(), key=lambda kv: box_iou(kv[1], det.box), default=None)
            if best is not None and box_iou(best[1], det.box) > 0.3:
                track_id = best[0]
                del previous[track_id]
                faces.append(self._fitted(gray, track_id, det.box, det.score, "detector", det.points))
            else:
                unmatched.append(det)
        # tracks not seen in this frame end now, so a new face can be matched against them
        for track_id in previous:
            self._end(track_id)
        for det in unmatched:
            track_id = self._returning_id(gray, det.box, {f.track_id for f in faces})
            faces.append(self._fitted(gray, track_id, det.box, det.score, "detector", det.points))
        return faces

    def _fitted(self, gray: np.ndarray, track_id: int, box: np.ndarray, score: float, source: str,
                points: np.ndarray | None) -> TrackedFace:
        """The face with its 68 landmarks fitted in ``box``; a fit that disagrees with the detector's five points
        (a turned head, :func:`~geoengage.detect.landmarks.fit_disagrees`) has its track checked every frame."""
        landmarks = self.landmarker(gray, box)
        if points is not None:
            if fit_disagrees(landmarks, points):
                self._turned.add(track_id)
            else:
                self._turned.discard(track_id)
        return TrackedFace(track_id, box, landmarks, score, source, points)

    def _unconfirmed(self, face: TrackedFace) -> bool:
        """A region check's answer that scores below what a new face needs (the detector's ``threshold``) counts only
        when the 68-point fit in its box agrees with its five points: on a test clip whose face is replaced by a coffee
        cup the cup scored 0.51 in the face's region, while a turned head, whose fit disagrees, scores 0.9 and more."""
        threshold = getattr(self.detector, "threshold", None)
        return (face.source == "detector" and face.points is not None and threshold is not None
                and face.score < threshold and face.track_id in self._turned)  # _fitted has just checked the fit

    def _box(self, face: TrackedFace) -> np.ndarray:
        """Where the face is: the box its landmarks imply, or the detector's box for a turned face, whose 68-point
        fit does not hold it."""
        return face.box if face.track_id in self._turned else box_from_landmarks(face.landmarks)

    def _end(self, track_id: int) -> None:
        self._turned.discard(track_id)
        seen = self._last_seen.pop(track_id, None)
        if seen is not None:
            self._ended[track_id] = (*seen, self._encodings.pop(track_id, None))
            while len(self._ended) > _MAX_ENDED:  # keep the most recently ended tracks
                del self._ended[next(iter(self._ended))]

    def _follow(self, gray: np.ndarray, seen: np.ndarray, verify: bool) -> list[TrackedFace]:
        """Refit each track from its previous landmarks; optionally confirm it in a small region."""
        faces: list[TrackedFace] = []
        for face in self._faces:
            turned = face.track_id in self._turned
            box = self._box(face)
            score, source, points = float("nan"), "tracker", None
            reference, confirmed = self._confirmed[face.track_id]
            current = _patch(gray, box)
            ncc = -1.0 if reference is None or current is None else float(np.sum(reference * current))
            changed = ncc < self.min_patch_ncc
            unchanged = self.skip_verify_ncc is not None and ncc >= self.skip_verify_ncc
            drifted = not 1 - MAX_SIZE_DRIFT <= (box[2] - box[0]) / confirmed <= 1 / (1 - MAX_SIZE_DRIFT)
            if (verify and not unchanged) or changed or turned or drifted:
                self.n_region_checks += 1
                found = self.detector.in_region(seen, box)
                if found is None:
                    continue  # the face left or was occluded: end the track
                box, score, source, points = found.box, found.score, "detector", found.points
            fitted = self._fitted(gray, face.track_id, box, score, source, points)
            if self._unconfirmed(fitted):
                continue  # a weak answer the landmarks do not bear out (a face replaced by an object): end the track
            if any(box_iou(self._box(fitted), self._box(kept)) > 0.5 for kept in faces):
                continue  # two tracks converged on one face: keep the older
            faces.append(fitted)
        return faces

    def update(self, gray: np.ndarray, image: np.ndarray | None = None) -> list[TrackedFace]:
        """Faces of the next frame (``gray``: a 2-D uint8 array; ``image``: the same frame in BGR, for a detector
        that takes colour, else it gets ``gray``), largest first."""
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise InvalidParameterError(f"`gray` must be a 2-D uint8 image. Got {gray.dtype} of shape {gray.shape} instead.")
        seen = image if image is not None and getattr(self.detector, "colour", False) else gray
        index = self._frames_seen
        self._frames_seen += 1
        due = not self.tracking or not self._faces or index % self.detect_every == 0
        faces = [] if due else self._follow(gray, seen, verify=index % self.verify_every == 0)
        searching = (self.tracking and not self._faces and self._last_empty is not None
                     and index - self._last_empty < self.search_every)
        if (due or not faces) and not searching:
            faces = self._detect(gray, seen)
            self._last_empty = None if faces else index
        self._confirmed = {f.track_id: ((_patch(gray, self._box(f)), float(f.box[2] - f.box[0]))
                                        if f.source != "tracker" else self._confirmed[f.track_id]) for f in faces}
        current = {f.track_id for f in faces}
        for face in self._faces:
            if face.track_id not in current:
                self._end(face.track_id)
        for face in faces:  # the frame is kept by reference (no copy): encoded only if the track ends
            if face.source != "crop":
                self._last_seen[face.track_id] = (gray, self._box(face))
        self._faces = sorted(faces, key=lambda f: -f.area)
        self.n_faces = (self._n_detected if faces else 0) if self.largest_only else len(faces)
        return list(self._faces)
