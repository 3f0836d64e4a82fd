"""Parameter dtypes and number arguments: fastrnn computes in float32 or float64 (the flat
parameter storage itself lives in `fastrnn.nn.module.Module`)."""

from .checks import FLOAT_DTYPES, is_real  # noqa: F401  (one home: fastrnn.checks)
from .checks import float_dtype as as_float_dtype  # noqa: F401
