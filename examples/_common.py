"""What every example script shares: its command line (--quick, --json, --write-data, --seed),
the check for an optional dependency, the "equivalent command" line and the result report.

Scripts import this as `from _common import ...` (examples/ is on sys.path when a script runs,
and the tests put it there).
"""
import argparse
import importlib
import json
import sys
import time

INSTALL_HINT = 'pip install "fastrnn[examples]"'


def require(module, package=None):
    """Import `module` or exit with a message naming the package and the examples extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        sys.exit(f"this example needs the {package or module!r} package: {INSTALL_HINT}")


def parser(doc, write_data=True):
    """An ArgumentParser with the options every example has (description: the script's docstring)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a small, fast run (for tests)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the model (default 0)")
    if write_data:
        p.add_argument("--write-data", metavar="PATH",
                       help="also write the data in the format `fastrnn train --task ...` reads")
    return p


def write_text(path, lines):
    """Write `lines` (str, no newline) to `path` atomically (fastrnn.atomic: temp file, fsync, rename)."""
    from fastrnn.atomic import write_atomic
    write_atomic(path, lambda f: f.writelines(line + "\n" for line in lines), text=True)


def show_command(args, command, write_lines=None):
    """Print the equivalent `fastrnn train` command; with --write-data, write its data file first."""
    path = getattr(args, "write_data", None)
    if path and write_lines is not None:
        write_text(path, write_lines())
    if not args.json:           # --json output stays one JSON line
        if path:
            print(f"wrote {path}")
        print("equivalent command:", command.format(data=path or "DATA"))


class Timer:
    """Wall-clock seconds since creation: `Timer().seconds`."""

    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self):
        return round(time.perf_counter() - self.start, 1)


def report(args, metrics):
    """Print `metrics` (a flat dict) as a table, or as one JSON line with --json; return it."""
    if args.json:
        print(json.dumps(metrics))
    else:
        width = max(map(len, metrics))
        for k, v in metrics.items():
            print(f"  {k:<{width}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
    return metrics
