"""Crash-isolated property fuzzing: run one entry point's hypothesis cases in a subprocess.

A segfault or abort in a C kernel would kill pytest itself; here it kills a child process, and
the test fails with the case that caused it (every drawn value is logged before the call runs).

    python tests/fuzz_helpers.py ENTRY [EXAMPLES]     # one entry point, prints its case counts

Outcome rule for every case: a correct result, or ValueError/TypeError (CheckpointError, a
ValueError, for files). Anything else -- another exception, a wrong result, a crash -- fails.
FASTRNN_FUZZ_EXAMPLES=N runs N cases per entry point instead of the CI default, with random
(not derandomized) data; FASTRNN_FUZZ_SEED fixes that campaign's seed.
"""
import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ACCEPTED = (ValueError, TypeError)


def package_root():
    """The directory the running fastrnn was imported from (src/ or site-packages): children
    must import the same build."""
    import fastrnn
    return os.path.dirname(os.path.dirname(os.path.abspath(fastrnn.__file__)))


def campaign_examples():
    """N from FASTRNN_FUZZ_EXAMPLES (a long campaign), or None for the CI slice."""
    n = os.environ.get("FASTRNN_FUZZ_EXAMPLES")
    return int(n) if n else None


def run_isolated(entry, examples, timeout=600):
    """Run `examples` cases of ENTRY_POINTS[entry] in a child process; returns its case counts.

    Raises AssertionError with the falsifying case (hypothesis' report) or, after a crash, with
    the signal and the last case's drawn values.
    """
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "case.log")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [package_root(), HERE, os.environ.get("PYTHONPATH", "")]),
            OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
        r = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_helpers.py"), entry,
                            str(examples), log], capture_output=True, text=True, timeout=timeout,
                           env=env)
        if r.returncode < 0:
            case = open(log).read() if os.path.exists(log) else "(no case logged)"
            name = signal.Signals(-r.returncode).name
            raise AssertionError(f"{entry}: the process died with {name} on this case:\n{case}\n"
                                 f"{r.stderr[-3000:]}")
        if r.returncode:
            raise AssertionError(f"{entry}: a case broke the outcome rule:\n{r.stdout[-4000:]}\n"
                                 f"{r.stderr[-6000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])


def _run(entry, examples, log_path):
    """In the child: run the hypothesis property of `entry`, logging each case's draws."""
    import numpy as np
    from hypothesis import HealthCheck, given, seed, settings, strategies as st
    from fuzz_entry_points import ENTRY_POINTS
    counts = {"entry": entry, "ok": 0, "rejected": 0}
    campaign = campaign_examples() is not None
    table = dict(ENTRY_POINTS)
    if os.environ.get("FASTRNN_FUZZ_EXTRA_MODULE"):      # more entry points (used by the self-test)
        import importlib
        table.update(importlib.import_module(os.environ["FASTRNN_FUZZ_EXTRA_MODULE"]).ENTRY_POINTS)
    fn = table[entry]

    @settings(max_examples=examples, deadline=None, derandomize=not campaign, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(st.data())
    def prop(data):
        with open(log_path, "w") as log:
            def draw(strategy, label):
                value = data.draw(strategy, label=label)
                log.write(f"{label} = {_short(value)}\n")
                log.flush()
                return value
            try:
                with np.errstate(all="ignore"):
                    fn(draw)
            except ACCEPTED:
                counts["rejected"] += 1
                return
            counts["ok"] += 1

    if campaign and os.environ.get("FASTRNN_FUZZ_SEED"):
        prop = seed(int(os.environ["FASTRNN_FUZZ_SEED"]))(prop)
    prop()
    print(json.dumps(counts))


def _short(value, limit=1500):
    import numpy as np
    text = repr(value)
    if isinstance(value, np.ndarray):
        text = f"array(dtype={value.dtype}, shape={value.shape}, strides={getattr(value, 'strides', None)}, " \
               f"c_contiguous={value.flags.c_contiguous}, writeable={value.flags.writeable}) {text}"
    return text if len(text) <= limit else text[:limit] + "..."


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    _run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100,
         sys.argv[3] if len(sys.argv) > 3 else os.devnull)
