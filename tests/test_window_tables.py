"""window_tables.py and `geoengage import table`: other labs' per-window tables in, bad files refused clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoengage.cli import main
from geoengage.dataset import read_windows
from geoengage.exceptions import MediaReadError, SchemaError
from geoengage.modeling.cv import feature_columns
from geoengage.window_tables import read_window_table


def _segments(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for v in range(6):
        for k in range(5):
            rows.append({"video": f"vid{v}", "seg": 4 - k, "person": f"p{v // 2}", "engagement": [0.33, 0.66][v % 2],
                         "gaze_x": rng.normal(), "head_tz_mm": rng.normal(600, 50), "note": "ok"})
    return pd.DataFrame(rows)


def test_a_segment_table_becomes_a_windows_table(tmp_path, rng) -> None:
    table = _segments(rng)
    table.to_csv(tmp_path / "seg.csv", index=False)
    result = read_window_table(tmp_path / "seg.csv", recording="video", order="seg", subject="person",
                               target="engagement", drop=["note"])
    w = result.windows
    assert feature_columns(w) == ["gaze_x__value", "head_tz_mm__value"]
    assert len(w) == 30 and w.window_ok.all() and set(w.subject_id) == {"p0", "p1", "p2"}
    first = w[w.video_id == "vid0"]
    assert first.window_idx.tolist() == [0, 1, 2, 3, 4]  # ordered by `seg`, which ran backwards in the file
    source = table[table.video == "vid0"].sort_values("seg")
    assert np.allclose(first["gaze_x__value"], source["gaze_x"])
    assert result.summary["recordings"] == 6 and result.summary["grouped_by"] == "subject"


def test_cli_import_table_then_evaluate_with_a_gru(tmp_path, rng) -> None:
    table = _segments(rng)
    table.to_parquet(tmp_path / "seg.parquet")
    out = tmp_path / "imported"
    assert main(["import", "table", str(tmp_path / "seg.parquet"), "--recording", "video", "--order", "seg",
                 "--subject", "person", "--target", "engagement", "--drop", "note", "--out", str(out)]) == 0
    windows = read_windows(out / "windows.parquet")
    assert windows.attrs["geoengage"]["import"]["recording"] == "video" and len(windows) == 30
    assert main(["evaluate", str(out / "windows.parquet"), "--target", "engagement", "--model", "gru",
                 "--n-splits", "3", "--max-epochs", "3", "--n-seeds", "1", "--n-boot", "20",
                 "--out", str(tmp_path / "report")]) == 0
    assert "gru" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.drop(columns="seg"), "missing column"),
    (lambda t: t.assign(gaze_x=t.gaze_x.astype(str) + "deg"), "not numeric"),
    (lambda t: pd.concat([t, t.iloc[:1]]), "share a \\(recording, order\\) key"),
    (lambda t: t.assign(video=t.video.where(t.index != 3)), "no recording"),
    (lambda t: t.assign(seg="first"), "must hold numbers"),
])
def test_bad_tables_are_refused_with_a_clear_message(tmp_path, rng, change, message) -> None:
    path = tmp_path / "bad.csv"
    change(_segments(rng)).to_csv(path, index=False)
    with pytest.raises(SchemaError, match=message) as err:
        read_window_table(path, recording="video", order="seg", subject="person", target="engagement",
                          drop=["note"])
    assert str(path) in str(err.value)


def test_unreadable_and_empty_files(tmp_path) -> None:
    (tmp_path / "empty.csv").write_text("video,seg,x\n")
    with pytest.raises(MediaReadError, match="no rows"):
        read_window_table(tmp_path / "empty.csv", recording="video", order="seg")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(MediaReadError, match="junk.parquet"):
        read_window_table(tmp_path / "junk.parquet", recording="video", order="seg")
    with pytest.raises(MediaReadError, match="does not exist"):
        read_window_table(tmp_path / "nope.csv", recording="video", order="seg")
    assert main(["import", "table", str(tmp_path / "nope.csv"), "--recording", "v", "--order", "o",
                 "--out", str(tmp_path / "o")]) == 2
