"""Benchmarks shipped with the package: `fastrnn bench` and the pytest-benchmark suite in bench/.

workloads.py defines what is measured (one list for both), runners.py the code each
implementation (fastrnn, fastrnn.reference, torch) runs, shapes.py one training iteration per
model shape in fastrnn and in torch, timing.py how it is measured (threads, peak, timing
rounds, machine info), memory.py the peak memory (in a fresh process), suite.py
runs a selection into a report, report.py turns reports into Markdown, a plot or a comparison.
The report's JSON schema is documented in docs/bench.md.
"""
import json
import sys


def main(args):
    """`fastrnn bench`: run (or --compare) and write the requested outputs; returns the exit code."""
    from . import report as rep
    if args.compare:
        reports = []
        for path in args.compare:
            try:
                with open(path, encoding="utf-8") as f:
                    reports.append(json.load(f))
            except (OSError, ValueError) as e:
                sys.exit(f"fastrnn: --compare: cannot read {path}: {e}")
            if not isinstance(reports[-1], dict) or "workloads" not in reports[-1]:
                sys.exit(f"fastrnn: --compare: {path} is not a fastrnn bench report")
        for warning in rep.differences(*reports):
            print(f"warning: {warning}")
        lines, slower = rep.compare(*reports, threshold=args.threshold)
        print("\n".join(lines))
        print(f"{len(slower)} workload(s) slower than {1 + args.threshold:.2f}x the old run"
              + (": " + ", ".join(slower) if slower else ""))
        return 1 if slower else 0
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (checked before spending minutes measuring)
        except ImportError:
            sys.exit("fastrnn: --plot needs matplotlib: pip install 'fastrnn[plot]' (or pip install matplotlib)")
    from .suite import run
    command = ["fastrnn", "bench"] + (["--quick"] if args.quick else [])
    for flag in ("filter", "threads", "json", "markdown", "plot", "precision"):
        if getattr(args, flag) is not None:
            command += [f"--{flag}", repr(args.filter) if flag == "filter" else str(getattr(args, flag))]
    try:
        result = run(quick=args.quick, pattern=args.filter, progress=True, command=" ".join(command),
                     threads=args.threads, precision=getattr(args, "precision", None) or "float32")
    except ValueError as e:
        sys.exit(f"fastrnn: {e}")
    text = rep.to_markdown(result)
    print(text)
    if args.json:
        rep.write_json(args.json, result)
    if args.markdown:
        rep.write_text(args.markdown, text)
    if args.plot:
        rep.plot(result, args.plot)
    return 0
