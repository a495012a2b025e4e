"""The package version, in one place: pyproject.toml reads it from here (hatch's version
source) and every tracer and meter names its instrumentation scope with it. A module of its
own so that any layer can import it without importing the package root."""

__version__ = "0.1.0"
