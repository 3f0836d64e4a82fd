"""Supervised tasks from files: readers (formats), metrics, and one Task per file format that
builds a model's batches and turns its outputs into metrics and predictions (used by
`fastrnn train --task`, `fastrnn predict` and `fastrnn evaluate`)."""
from .forecast import Forecast
from .formats import FormatError
from .text import Classify, Tag, Translate

TASKS = {t.name: t for t in (Classify, Tag, Translate, Forecast)}

__all__ = ["TASKS", "FormatError", "Classify", "Tag", "Translate", "Forecast"]
