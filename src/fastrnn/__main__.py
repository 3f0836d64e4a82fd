"""`python -m fastrnn` is the `fastrnn` command."""
import sys

from .cli import main

sys.exit(main())
