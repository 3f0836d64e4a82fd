"""Presenting bench reports: a Markdown table, a PNG plot, and the comparison of two runs."""
import json

from .. import atomic


def _ms(r, key="median_s"):
    return "-" if r is None else f"{r[key] * 1e3:.3f}"


def _x(v):
    return "-" if v is None else f"{v:.2f}x"


def machine_lines(report):
    """Short human-readable lines describing the machine and the run."""
    m, p = report["machine"], report["peak"]
    blas, th, v, e = m["blas"], m["threads"], m["versions"], m["engine"]
    torch_mm = "-" if p["torch_mm_gflops"] is None else f"{p['torch_mm_gflops']:.1f}"
    mismatch = _thread_mismatch(th)
    return [
        f"command: `{report['command']}` ({report['mode']} run, {report['duration_s']:.0f} s, {report['created']})",
        f"CPU: {m['cpu_model']} ({m['cpu_count']} CPUs; kernels use {m['kernel_level']}; "
        f"flags {' '.join(m['cpu_flags']) or '-'})",
        f"fastrnn engine: float32 on the {e['path']} path, ISA {e['isa']}, team of {e['threads']} threads",
        f"precision of fastrnn's float32 recurrent layers: {report.get('precision', 'float32')} "
        f"(bf16 kernel: {e.get('bf16', '-')}; AMX tiles: {e.get('amx', '-')})",
        f"BLAS: {blas['name']} {blas['version'] or ''}, core {blas['openblas_core']} "
        f"(OPENBLAS_CORETYPE={blas['openblas_coretype'] or 'unset'})",
        f"threads: {th['count']} for everyone: fastrnn {th['fastrnn']}, OpenBLAS {th['blas']} "
        f"({'as threadpoolctl reads it' if th['blas_source'] == 'threadpoolctl' else 'from its environment'}), "
        f"torch {th['torch'] or '-'}" + (f" — WARNING: {mismatch}" if mismatch else ""),
        f"versions: fastrnn {v['fastrnn']}, Python {v['python']}, numpy {v['numpy']}, scipy {v['scipy']}, "
        f"torch {v['torch'] or 'not installed'}",
        f"float32 peak: {p['gflops']:.1f} GFLOP/s ({p['source']} on {p['n']}²; fastrnn gemm "
        f"{p['fastrnn_gemm_gflops']:.1f}, torch.mm {torch_mm})",
    ]


def _thread_mismatch(threads):
    # imported here: timing imports torch, which --compare and --plot alone do not need
    
    from .timing import thread_mismatch
    return thread_mismatch(threads)


def to_markdown(report):
    """The report as Markdown: machine lines, a timing table and a memory table."""
    lines = [f"- {line}" for line in machine_lines(report)] + [""]
    lines += ["| workload | fastrnn ms (min–max) | reference ms | torch ms | ref/fastrnn | torch/fastrnn "
              "| GFLOP/s | % of peak |", "|---|---|---|---|---|---|---|---|"]
    memory = []
    for w in report["workloads"]:
        r, q = w["results"], w["ratios"]
        if w["kind"] == "memory":
            memory.append(w)
            continue
        f = r.get("fastrnn")
        spread = "-" if f is None else f"{_ms(f)} ({_ms(f, 'min_s')}–{_ms(f, 'max_s')})"
        gf = None if f is None else f["gflops"]
        gflops, pct = ("-", "-") if gf is None else (f"{gf:.1f}", f"{f['pct_peak']:.0f}%")
        lines.append(f"| {w['name']} | {spread} | {_ms(r.get('reference'))} | {_ms(r.get('torch'))} | "
                     f"{_x(q.get('reference/fastrnn'))} | {_x(q.get('torch/fastrnn'))} | {gflops} | {pct} |")
    if memory:
        mb = lambda b: "-" if b is None else f"{b / 2**20:.1f}"
        lines += ["", "| workload | fastrnn peak RSS growth MB | reference MB | torch MB | fastrnn tape MB "
                  "| tape the maths needs MB |", "|---|---|---|---|---|---|"]
        for w in memory:
            r = {k: v["peak_rss_bytes"] for k, v in w["results"].items()}
            lines.append(f"| {w['name']} | {mb(r.get('fastrnn'))} | {mb(r.get('reference'))} | "
                         f"{mb(r.get('torch'))} | {mb(w['params']['tape_bytes'])} | "
                         f"{mb(w['params']['minimal_tape_bytes'])} |")
    return "\n".join(lines) + "\n"


def write_text(path, text):
    """Write `text` to `path` atomically (fastrnn.atomic: temp file, fsync, rename, fsync dir)."""
    atomic.write_text(path, text)


def write_json(path, report):
    """The report as indented JSON, written atomically."""
    write_text(path, json.dumps(report, indent=1, allow_nan=False) + "\n")


def plot(report, path):
    """PNG: speed-up over torch and % of the float32 peak of fastrnn, per timed workload."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'fastrnn[plot]' "
                          "(or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    rows = [w for w in report["workloads"] if w["kind"] == "time" and "fastrnn" in w["results"]]
    if not rows:
        raise ValueError("--plot: the report has no timed workloads")
    names = [w["name"] for w in rows][::-1]
    speedup = [w["ratios"].get("torch/fastrnn", float("nan")) for w in rows][::-1]
    peak = [w["results"]["fastrnn"]["pct_peak"] or 0 for w in rows][::-1]
    # the layout is set in inches: labels get the width their longest one needs (tight_layout
    # gave up on the default run's 90 rows and cut the long ones), the bars a fixed width each
    # and every row the same height, however many workloads the report holds
    panel, row, top, bottom = 5.5, 0.22, 0.5, 0.6
    height = top + bottom + row * (len(rows) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(2 * panel + 4, height), sharey=True)
    # bars grow from 1x on a log axis: a 2x win and a 2x loss look the same size
    a.barh(names, [s - 1 for s in speedup], left=1,
           color=["tab:green" if s >= 1 else "tab:red" for s in speedup])
    a.axvline(1, color="k", lw=0.8)
    a.set_xscale("log")
    a.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    a.set_xlabel("speed-up over torch (torch time / fastrnn time)")
    a.set_ylim(-0.7, len(rows) - 0.3)
    b.barh(names, peak, color="tab:blue")
    b.set_xlabel(f"fastrnn GFLOP/s as % of the float32 peak ({report['peak']['gflops']:.0f} GFLOP/s)")
    a.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"fastrnn bench ({report['mode']}): {report['machine']['cpu_model']}", fontsize=9)
    renderer = fig.canvas.get_renderer()
    # + ticks, their pad and a margin (text extents measured before drawing run a little short)
    label = max(t.get_window_extent(renderer).width for t in a.get_yticklabels()) / fig.dpi + 0.5
    gap, right = 0.3, 0.3
    width = label + 2 * panel + gap + right
    fig.set_size_inches(width, height)
    fig.subplots_adjust(left=label / width, right=1 - right / width, wspace=gap / panel,
                        bottom=bottom / height, top=1 - top / height)
    try:
        atomic.write_atomic(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    finally:
        plt.close(fig)


def _metric(w):
    """The number a comparison looks at: fastrnn's median seconds, or its peak RSS bytes."""
    r = w["results"].get("fastrnn") or {}
    return r.get("median_s" if w["kind"] == "time" else "peak_rss_bytes")


def compare(old, new, threshold=0.1):
    """(lines, slower names): per-workload new/old ratios of fastrnn's time (or memory), flagging
    those more than `threshold` (0.1 = 10%) above the old run.

    A workload only in `new`, or without a measurement on one side (null: no /proc), gets no
    ratio. An old value of 0 (a memory growth) gives 1 when the new one is 0 too, and counts as
    a rise when the new one is not.
    """
    before = {w["name"]: w for w in old["workloads"]}
    lines = ["| workload | old | new | new/old | |", "|---|---|---|---|---|"]
    slower = []
    for w in new["workloads"]:
        o = before.pop(w["name"], None)
        a, b = (None if o is None else _metric(o)), _metric(w)
        if o is None or a is None or b is None:
            note = "new" if o is None else f"no {'old' if a is None else 'new'} measurement"
            lines.append(f"| {w['name']} | {_fmt(w, a)} | {_fmt(w, b)} | - | {note} |")
            continue
        if a == 0:
            ratio, shown = (1.0, "1.000") if b == 0 else (float("inf"), "inf (old 0)")
        else:
            ratio = b / a
            shown = f"{ratio:.3f}"
        flag = ""
        if ratio > 1 + threshold:
            flag = f"SLOWER (> {1 + threshold:.2f}x)" if w["kind"] == "time" else f"MORE MEMORY (> {1 + threshold:.2f}x)"
            slower.append(w["name"])
        lines.append(f"| {w['name']} | {_fmt(w, a)} | {_fmt(w, b)} | {shown} | {flag} |")
    lines += [f"| {name} | {_fmt(o, _metric(o))} | - | - | missing in new |" for name, o in before.items()]
    return lines, slower


def _get(report, *keys):
    for k in keys:
        report = report.get(k) if isinstance(report, dict) else None
    return report


def differences(old, new):
    """Sentences naming what differs between two reports' conditions (mode, thread count, CPU
    model, the engine's ISA): their ratios then measure the change of conditions too."""
    out = []
    for what, keys in (("mode", ("mode",)), ("thread count", ("machine", "threads", "count")),
                       ("CPU model", ("machine", "cpu_model")), ("ISA", ("machine", "engine", "isa")),
                       ("kernel level", ("machine", "kernel_level"))):
        a, b = _get(old, *keys), _get(new, *keys)
        if a != b:
            out.append(f"the reports differ in {what}: {a if a is not None else 'unknown'} (old) "
                       f"vs {b if b is not None else 'unknown'} (new)")
    return out


def _fmt(w, v):
    if v is None:
        return "-"
    return f"{v * 1e3:.3f} ms" if w["kind"] == "time" else f"{v / 2**20:.1f} MB"
