"""The package version (one place: pyproject.toml says the same; a test checks)."""

__version__ = "0.1.0"
