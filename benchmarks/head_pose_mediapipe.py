"""MediaPipe FaceMesh's reading of head yaw and pitch on ../shared/data/pointing04, to check the labels with a
second, independent landmark model (``benchmarks/head_pose.py --mediapipe CSV`` compares it with geoengage's).

MediaPipe is not a geoengage dependency: run this in an environment that has it (``pip install mediapipe
opencv-python-headless pandas``). Per photo with |pitch| <= 30: FaceMesh (static images, one face) and a yaw proxy
from its 3-D landmarks, the angle of the head's left-right axis (cheek contour points 234 and 454) out of the image
plane, ``atan2(dz, dx)``, in degrees (uncalibrated: ``head_pose.py`` puts it on the labels' scale with one line for
everyone), and a pitch proxy, the angle of its up-down axis (forehead point 10 to chin point 152) out of the image
plane, ``-atan2(dz, dy)`` (+ = chin up), left as a geometric angle: its slope against the labels is compared with
geoengage's as it is. Writes a CSV: path, mp_yaw_raw, mp_pitch_raw (NaN where no face was found).

    python benchmarks/head_pose_mediapipe.py out.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pointing04"


def main() -> None:
    import mediapipe as mp

    if not (DATA / "labels.csv").is_file():
        print(f"{DATA} is absent: skipped")
        sys.exit(0)
    labels = pd.read_csv(DATA / "labels.csv")
    labels = labels[labels.pitch_deg.abs() <= 30]
    rows = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for path in labels.path:
            image = cv2.imread(str(DATA / path))
            width = image.shape[1]
            found = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).multi_face_landmarks
            yaw = pitch = np.nan
            if found:
                right, left = found[0].landmark[234], found[0].landmark[454]
                yaw = float(np.degrees(np.arctan2((left.z - right.z) * width, (left.x - right.x) * width)))
                top, chin = found[0].landmark[10], found[0].landmark[152]  # x, y, z in image widths / heights
                pitch = -float(np.degrees(np.arctan2((chin.z - top.z) * width, (chin.y - top.y) * image.shape[0])))
            rows.append({"path": path, "mp_yaw_raw": yaw, "mp_pitch_raw": pitch})
    pd.DataFrame(rows).to_csv(sys.argv[1], index=False)
    print(f"{sys.argv[1]}: {len(rows)} photos, a face in {np.isfinite([r['mp_yaw_raw'] for r in rows]).mean():.1%}")


if __name__ == "__main__":
    main()
