"""nnlearn's version: one place, read by the package and its build."""

__version__ = "0.3.0"
