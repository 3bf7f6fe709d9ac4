"""config.py: frozen, validated, TOML round trip with unknown keys refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from geoengage.config import ExtractConfig, dump_config, load_config
from geoengage.exceptions import InvalidParameterError


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sample_fps", 0, "`sample_fps` must be None or > 0. Got 0 instead."),
        ("face_policy", "biggest", "`face_policy` must be 'largest' or 'all'. Got 'biggest' instead."),
        ("crop_mode", "yes", "`crop_mode` must be"),
        ("min_face_px", 5, "`min_face_px` must be between 20 and 2000"),
        ("identify", True, "`encodings_path` must be set when identify=True"),
    ],
)
def test_bad_values_fail_at_construction(field: str, value: object, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ExtractConfig(**{field: value})


def test_frozen_and_keyword_only() -> None:
    config = ExtractConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tracking = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        ExtractConfig(10.0)  # type: ignore[misc]


def test_toml_round_trip(tmp_path: Path) -> None:
    config = ExtractConfig(sample_fps=5.0, crop_mode="fallback", face_policy="all")
    dump_config(config, tmp_path / "c.toml", table="extract")
    assert load_config(tmp_path / "c.toml", ExtractConfig, table="extract") == config
    (tmp_path / "bad.toml").write_text("[extract]\nsampel_fps = 3\n")
    with pytest.raises(InvalidParameterError, match=r"unknown keys \['sampel_fps'\]"):
        load_config(tmp_path / "bad.toml", ExtractConfig, table="extract")
