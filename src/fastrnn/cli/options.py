"""Option types and errors of the `fastrnn` command: argparse types that name what they expected
(`--hidden: expected an integer >= 1, got -3`), `UsageError` for a bad combination of options and
the `Parser` that reports both in one line with exit status 2."""
import argparse
import math
import re


def parse_duration(text):
    """Seconds in a duration such as '90', '90s', '10m', '1.5h' (used by --max-time); must be > 0."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 10m or 1h, got {text!r}")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return seconds


def integer(low):
    """argparse type: an integer >= low."""
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    return convert


def number(low=None, high=None, low_open=False, high_open=False):
    """argparse type: a finite float in the interval given by low/high (open or closed ends)."""
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"

    def convert(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = math.isfinite(value)
        if low is not None:
            ok = ok and (value > low if low_open else value >= low)
        if high is not None:
            ok = ok and (value < high if high_open else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value
    return convert


POSITIVE, NON_NEGATIVE = integer(1), integer(0)
FRACTION = number(0, 1, high_open=True)


def regex(text):
    """argparse type: a valid regular expression."""
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a regular expression: {e}") from None
    return text


def non_negative_fraction(text):
    """argparse type: a number >= 0 such as 0.1 (bench --threshold)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number such as 0.1, got {text!r}")
    return value


def flag(name):
    """The command-line flag of an option name: `seq_len` -> `--seq-len`."""
    return "--" + name.replace("_", "-")


class UsageError(Exception):
    """A bad combination of command-line options (reported like argparse's own errors)."""
    exit_code = 2       # argparse's (distributed.Setup reports it with this status)


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors, exit status 2:
    `fastrnn train: --hidden: expected an integer >= 1, got -3 (see fastrnn train --help)`
    (argparse's own error() prints the whole usage first)."""

    def error(self, message):
        message = " ".join(re.sub(r"^argument ([^:]+): ", r"\1: ", str(message)).split())
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")
