"""Presenting bench reports: a Markdown table, a PNG plot, and the comparison of two runs."""
import json
import os
import tempfile


def _ms(r, key="median_s"):
    return "-" if r is None else f"{r[key] * 1e3:.3f}"


def _x(v):
    return "-" if v is None else f"{v:.2f}x"


def machine_lines(report):
    """Short human-readable lines describing the machine and the run."""
    m, p = report["machine"], report["peak"]
    blas, th, v = m["blas"], m["threads"], m["versions"]
    torch_mm = "-" if p["torch_mm_gflops"] is None else f"{p['torch_mm_gflops']:.1f}"
    return [
        f"command: `{report['command']}` ({report['mode']} run, {report['duration_s']:.0f} s, {report['created']})",
        f"CPU: {m['cpu_model']} ({m['cpu_count']} CPUs; kernels use {m['kernel_level']}; "
        f"flags {' '.join(m['cpu_flags']) or '-'})",
        f"BLAS: {blas['name']} {blas['version'] or ''} (OPENBLAS_CORETYPE="
        f"{blas['openblas_coretype'] or 'unset'}); threads: BLAS {th['blas']}, torch {th['torch'] or '-'}",
        f"versions: fastrnn {v['fastrnn']}, Python {v['python']}, numpy {v['numpy']}, scipy {v['scipy']}, "
        f"torch {v['torch'] or 'not installed'}",
        f"float32 peak: {p['gflops']:.1f} GFLOP/s ({p['source']} on {p['n']}²; fastrnn gemm "
        f"{p['fastrnn_gemm_gflops']:.1f}, torch.mm {torch_mm})",
    ]


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
        lines += ["", "| workload | fastrnn peak RSS MB | reference MB | torch MB | fastrnn tape MB "
                  "| tape the maths needs MB |", "|---|---|---|---|---|---|"]
        for w in memory:
            r = {k: v["peak_rss_bytes"] for k, v in w["results"].items()}
            lines.append(f"| {w['name']} | {mb(r.get('fastrnn'))} | {mb(r.get('reference'))} | "
                         f"{mb(r.get('torch'))} | {mb(w['params']['tape_bytes'])} | "
                         f"{mb(w['params']['minimal_tape_bytes'])} |")
    return "\n".join(lines) + "\n"


def write_text(path, text):
    """Write `text` to `path` atomically (a temporary file renamed over it)."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 1.5 + 0.22 * len(rows)), sharey=True)
    # bars grow from 1x on a log axis: a 2x win and a 2x loss look the same size
    a.barh(names, [s - 1 for s in speedup], left=1,
           color=["tab:green" if s >= 1 else "tab:red" for s in speedup])
    a.axvline(1, color="k", lw=0.8)
    a.set_xscale("log")
    a.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    a.set_xlabel("speed-up over torch (torch time / fastrnn time)")
    b.barh(names, peak, color="tab:blue")
    b.set_xlabel(f"fastrnn GFLOP/s as % of the float32 peak ({report['peak']['gflops']:.0f} GFLOP/s)")
    a.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"fastrnn bench ({report['mode']}): {report['machine']['cpu_model']}", fontsize=9)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        plt.close(fig)


def _metric(w):
    """The number a comparison looks at: fastrnn's median seconds, or its peak RSS bytes."""
    r = w["results"].get("fastrnn") or {}
    return r.get("median_s" if w["kind"] == "time" else "peak_rss_bytes")


def compare(old, new, threshold=0.1):
    """(lines, slower names): per-workload new/old ratios of fastrnn's time (or memory), flagging
    those more than `threshold` (0.1 = 10%) above the old run."""
    before = {w["name"]: w for w in old["workloads"]}
    lines = ["| workload | old | new | new/old | |", "|---|---|---|---|---|"]
    slower = []
    for w in new["workloads"]:
        o = before.pop(w["name"], None)
        a, b = (None if o is None else _metric(o)), _metric(w)
        if not a or b is None:
            lines.append(f"| {w['name']} | - | {_fmt(w, b)} | - | new |")
            continue
        ratio = b / a
        flag = ""
        if ratio > 1 + threshold:
            flag = f"SLOWER (> {1 + threshold:.2f}x)" if w["kind"] == "time" else f"MORE MEMORY (> {1 + threshold:.2f}x)"
            slower.append(w["name"])
        lines.append(f"| {w['name']} | {_fmt(w, a)} | {_fmt(w, b)} | {ratio:.3f} | {flag} |")
    lines += [f"| {name} | {_fmt(o, _metric(o))} | - | - | missing in new |" for name, o in before.items()]
    return lines, slower


def _fmt(w, v):
    if v is None:
        return "-"
    return f"{v * 1e3:.3f} ms" if w["kind"] == "time" else f"{v / 2**20:.1f} MB"
