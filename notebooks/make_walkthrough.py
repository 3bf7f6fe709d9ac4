"""Write notebooks/walkthrough.ipynb (run: python notebooks/make_walkthrough.py). The test suite executes it.

The walkthrough is the tutorial: a researcher's order (a video, its faces and signals, windows, the shipped model's
scores and reasons, an evaluation and its report, figures), through the public API only (``import geoengage as ge``,
``ge.plot``).
"""

from pathlib import Path

import nbformat

CELLS = [
    ("markdown", """# geoengage tutorial: from a video to engagement, its reasons and a report

Everything runs offline on a clip made from scikit-image's astronaut photo, in which the face leaves the frame for
half a second (2.0-2.5 s). Replace `clip` by your own video to run the same steps on it."""),
    ("code", """%matplotlib inline
import json
import tempfile
import warnings
from pathlib import Path

import geoengage as ge

warnings.simplefilter("ignore", ge.GeoEngageWarning)  # the short demo windows are warned about; yours need not be
work = Path(tempfile.mkdtemp())
clip = ge.sample_video(work / "clip.avi", n_frames=180, absent=(2.0, 2.5))"""),
    ("markdown", """## 1. Faces, landmarks and per-frame signals

`ge.extract_frames` reads the video, finds the face (YuNet), fits dlib's 68 landmarks and computes every per-frame
signal: head pose, gaze, blinks, mouth and brow geometry, expression probabilities (`geoengage features` lists them
with units and ranges). One row per frame; frames without a face say so (`face_found`)."""),
    ("code", """frames = ge.extract_frames(clip)
frames[["frame_idx", "time_s", "face_found", "yaw_deg", "pitch_deg", "ear", "on_screen", "expr_class"]].head()"""),
    ("markdown", "One frame with what was measured on it: landmarks, head axes and the gaze ray."),
    ("code", """frame = next(f for f in ge.iter_frames(clip) if f.frame_idx == 30)
fig = ge.plot.face(frame.image, frames.iloc[30])"""),
    ("markdown", "The signals over time; the grey band is the half second without a face."),
    ("code", """fig = ge.plot.timeline(frames, signals=["yaw_deg", "pitch_deg", "ear", "on_screen"])"""),
    ("markdown", """## 2. Cleaning and windows

`ge.clean_frames` masks implausible values (poor fits, out-of-range values, single-frame jumps) and says how many;
`ge.make_windows` aggregates each face track into time windows: one row per (recording, track, window), with the
share of frames that had the face (`coverage`)."""),
    ("code", """cleaned = ge.clean_frames(frames)
print(cleaned.to_dict())
windows = ge.make_windows(cleaned.frames, window_s=1.0, step_s=0.5)
windows[["window_idx", "start_s", "coverage", "window_ok", "yaw_deg__median", "on_screen__frac"]].head(8)"""),
    ("markdown", """## 3. Engagement from the shipped model, with reasons

`ge.predict_frames` cleans and windows a recording the way the shipped model's training data was made, and scores
every window: the probability of being engaged, the predicted class, the features that pushed towards it, and a flag
where the model was weak on people it never saw (`uncertain`). The model learnt from 10-second windows; here 2-second
windows (logged) so the face's absence shows."""),
    ("code", """model = ge.load_default_model()
print("classes", list(model.classes_), "engaged:", list(model.positive_))
short = ge.WindowChanges(window_s=2.0, step_s=1.0)  # a 10 s clip: windows shorter than the model's
scores = ge.predict_frames(frames, config=ge.PredictConfig(windows=short, top_reasons=5)).windows
scores[["start_s", "window_ok", "engagement_probability", "engagement_pred", "uncertain", "reason_text"]]"""),
    ("code", """fig = ge.plot.timeline(frames, scores, signals=["yaw_deg", "on_screen"])"""),
    ("markdown", "Why the model said what it said for one window:"),
    ("code", """fig = ge.plot.reasons(scores[scores.window_ok].iloc[0])"""),
    ("markdown", """## 4. An evaluation and its report

With your own labelled windows (a `windows.parquet` from `geoengage extract`, with a label and a subject column),
`ge.evaluate` cross-validates with subjects kept apart, beside logistic regression and the majority class, runs the
set-up audit and writes an HTML/JSON report. Here on generated windows of 12 subjects whose `signal__mean` carries
the label and `person__mean` only the person (`geoengage.testing.synthetic_windows`)."""),
    ("code", """from geoengage.testing import synthetic_windows

data = synthetic_windows(0, n_subjects=12, per_subject=30)
result = ge.evaluate(data, target="label", out=work / "report", n_splits=3, n_boot=200)
print(result["report"])
{name: round(figures["auc_roc"], 3) for name, figures in result.items() if isinstance(figures, dict)}"""),
    ("markdown", """The set-up audit asks which features identify the person rather than the state: `person__mean`
does, so a model could learn who someone is instead of how engaged they are."""),
    ("code", """report = json.loads((work / "report" / "report.json").read_text())
fig = ge.plot.setup_audit(report["setup_audit"])"""),
]


def main() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
                      for kind, text in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, Path(__file__).with_name("walkthrough.ipynb"))


if __name__ == "__main__":
    main()
