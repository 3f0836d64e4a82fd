"""The version of fastrnn: one place, read by the package, its checkpoints and the build
(pyproject.toml: version = {attr = "fastrnn._version.__version__"})."""
__version__ = "0.1.0"
