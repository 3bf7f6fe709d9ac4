"""
A frame annotated with what was measured
========================================

The face box, dlib's 68 landmarks, the head's axes (red across the face, green up, blue where it points) and the
gaze ray (magenta), drawn from one row of the per-frame table.
"""

import tempfile
from pathlib import Path

import geoengage as ge

clip = ge.sample_video(Path(tempfile.mkdtemp()) / "clip.avi", n_frames=30)
frames = ge.extract_frames(clip)
frame = next(f for f in ge.iter_frames(clip) if f.frame_idx == 15)
row = frames.iloc[15]
print(row[["yaw_deg", "pitch_deg", "roll_deg", "gaze_cnn_yaw_deg", "on_screen", "expr_class"]])
fig = ge.plot.face(frame.image, row)
