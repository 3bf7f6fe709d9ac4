"""
A recording's signals and its engagement timeline, with reasons
===============================================================

The clip's face leaves the frame from 2.0 to 2.5 s: the grey band. The shipped model scores 2-second windows
(it learnt from 10-second ones; shorter ones here so the absence shows); an uncertain window, where the model was
weak on people it never saw, is marked with a cross.
"""

import tempfile
import warnings
from pathlib import Path

import geoengage as ge

warnings.simplefilter("ignore", ge.GeoEngageWarning)  # short windows are warned about
clip = ge.sample_video(Path(tempfile.mkdtemp()) / "clip.avi", n_frames=180, absent=(2.0, 2.5))
frames = ge.extract_frames(clip)
short = ge.WindowChanges(window_s=2.0, step_s=1.0)  # a 10 s clip: windows shorter than the model's
scores = ge.predict_frames(frames, config=ge.PredictConfig(windows=short, top_reasons=5)).windows
fig = ge.plot.timeline(frames, scores, signals=["yaw_deg", "pitch_deg", "ear", "on_screen"])

# %%
# Why the model said what it said for the first scored window: each feature's push (SHAP) towards the predicted
# class, in the reasons' words.
print(scores.loc[scores.window_ok, "reason_text"].iloc[0])
fig = ge.plot.reasons(scores[scores.window_ok].iloc[0])
