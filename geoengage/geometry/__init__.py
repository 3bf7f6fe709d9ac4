"""Landmarks -> per-frame features (see :mod:`geoengage.geometry.registry`)."""
