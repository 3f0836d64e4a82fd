"""Deprecated alias (kept for one release): the command line's paths are `fastrnn.cli.paths`."""
from .cli.paths import GLOB_CHARS, check_file, checkpoint_path, corpus_files, kind, read_corpus

__all__ = ["GLOB_CHARS", "check_file", "checkpoint_path", "corpus_files", "kind", "read_corpus"]
