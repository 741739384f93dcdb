"""The package version (one place; read by setuptools)."""

__version__ = "0.1.0"
