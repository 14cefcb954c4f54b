"""The package version, in one place: pyproject.toml, ``fastfnn.__version__`` and the file formats read it here.

Modules below the package ``__init__`` import it from here, never from ``fastfnn`` (whose ``__init__``
imports the estimator and everything under it).
"""

__version__ = "0.3.0"
