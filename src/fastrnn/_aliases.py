"""The modules that moved under `fastrnn.nn`, importable under their old names (alias for one release).

`fastrnn.layers`, `fastrnn.cells`, `fastrnn._buffers` and `fastrnn.losses` are the very module
objects `fastrnn.nn.layers`, `.cells`, `.buffers` and `.loss_math` (not copies), so
`from fastrnn.layers import LSTM`, `import fastrnn.losses as F` and monkeypatching a module
attribute all keep working. No files stay at the old paths: git follows the moves when branches
that edit them are merged. New code imports from `fastrnn.nn`.
"""
import sys

from .nn import buffers, cells, layers, loss_math

MOVED = {"layers": layers, "cells": cells, "_buffers": buffers, "losses": loss_math}   # alias for one release

_package = sys.modules[__package__]
for _old, _module in MOVED.items():
    sys.modules[f"{__package__}.{_old}"] = _module
    setattr(_package, _old, _module)
