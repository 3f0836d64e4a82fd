"""`fastrnn plot RUN [RUN...] -o curves.png`: training and validation curves from the runs'
log.jsonl files (one colour per run: training loss dashed, validation loss solid; `--metric`
adds a panel for a logged metric such as val_acc). Needs matplotlib (`pip install "fastrnn[plot]"`).
"""
import json
import math
import os
import sys

FORMATS = (".png", ".pdf", ".svg")


def add_parser(sub):
    """The `plot` subcommand."""
    p = sub.add_parser("plot", help="draw training and validation curves of runs (their log.jsonl)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="a run directory, or its log.jsonl")
    p.add_argument("-o", "--output", default="curves.png", help="image to write: .png, .pdf or .svg "
                   "(default: curves.png)")
    p.add_argument("--x", choices=["iteration", "epoch"], default="iteration", help="horizontal axis")
    p.add_argument("--metric", help="also plot this logged value in a second panel (e.g. val_acc)")


def read_log(run):
    """The records of a run's log.jsonl (`run` a directory or the file); one line on error."""
    path = os.path.join(run, "log.jsonl") if os.path.isdir(run) else run
    if not os.path.exists(path):
        sys.exit(f"fastrnn: {run}: not a run directory (no log.jsonl in it)" if os.path.isdir(run)
                 else f"fastrnn: {run}: no such file or run directory")
    from .paths import check_file
    check_file(path, "log.jsonl file or a run directory")
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except ValueError:
                    r = None
                if not isinstance(r, dict) or not isinstance(r.get("iteration"), (int, float)):
                    sys.exit(f"fastrnn: {path}:{n}: expected a JSON record with an iteration (a log.jsonl line)")
                records.append(r)
    except (OSError, UnicodeDecodeError) as e:
        sys.exit(f"fastrnn: cannot read {path}: {e}")
    if not records:
        sys.exit(f"fastrnn: {path}: no records yet")
    return records


def _series(records, x, key):
    pts = [(r.get(x), r.get(key)) for r in records]
    pts = [(a, b) for a, b in pts if isinstance(a, (int, float)) and isinstance(b, (int, float))
           and math.isfinite(b)]
    return [a for a, _ in pts], [b for _, b in pts]


def plot(args):
    """Entry point of `fastrnn plot`."""
    ext = os.path.splitext(args.output)[1].lower()
    if ext not in FORMATS:
        from .options import UsageError
        raise UsageError(f"--output: expected a .png, .pdf or .svg file name, got {args.output!r}")
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        sys.exit(f"fastrnn: --output {args.output}: the directory {folder} does not exist")
    if os.path.isdir(args.output):
        sys.exit(f"fastrnn: --output {args.output}: is a directory, expected an image file name")
    runs = [(run, read_log(run)) for run in args.runs]
    if args.metric and not any(args.metric in r for _, recs in runs for r in recs):
        sys.exit(f"fastrnn: --metric {args.metric}: not in any run's log")
    try:
        import matplotlib
    except ImportError:
        sys.exit('fastrnn plot: needs matplotlib: pip install "fastrnn[plot]"')
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = 2 if args.metric else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5), squeeze=False)
    loss_ax = axes[0][0]
    for k, (run, records) in enumerate(runs):
        color, name = f"C{k % 10}", os.path.basename(os.path.normpath(run)) or run
        loss_ax.plot(*_series(records, args.x, "train_loss"), "--", color=color, label=f"{name} train")
        loss_ax.plot(*_series(records, args.x, "val_loss"), "-", color=color, label=f"{name} validation")
        if args.metric:
            axes[0][1].plot(*_series(records, args.x, args.metric), "-", color=color, label=name)
    loss_ax.set_xlabel(args.x)
    loss_ax.set_ylabel("loss")
    loss_ax.legend(fontsize=8)
    if args.metric:
        axes[0][1].set_xlabel(args.x)
        axes[0][1].set_ylabel(args.metric)
        axes[0][1].legend(fontsize=8)
    fig.tight_layout()
    from fastrnn.atomic import write_atomic     # absolute: survives the move into cli/
    try:               # written beside the target and renamed: never a half-written image
        write_atomic(args.output, lambda f: fig.savefig(f, dpi=110, format=ext[1:]))
    finally:
        plt.close(fig)
    print(f"fastrnn: wrote {args.output} ({len(runs)} run{'s' if len(runs) > 1 else ''})")
