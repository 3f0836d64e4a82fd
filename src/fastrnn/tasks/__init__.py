"""Supervised tasks from files: readers (formats), metrics, and one Task per file format that
builds a model's batches and turns its outputs into metrics and predictions (used by
`fastrnn train --task`, `fastrnn predict` and `fastrnn evaluate`)."""
from .forecast import Forecast
from .formats import FormatError
from .lm import LanguageModelTask
from .text import Classify, Tag, Translate

# the tasks of files with labels (a checkpoint's `task` metadata names one)
TASKS = {t.name: t for t in (Classify, Tag, Translate, Forecast)}
# every task `fastrnn train --task` trains: the language model (the default) and those above
ALL_TASKS = {"lm": LanguageModelTask, **TASKS}

__all__ = ["TASKS", "ALL_TASKS", "LanguageModelTask", "FormatError", "Classify", "Tag", "Translate", "Forecast"]
