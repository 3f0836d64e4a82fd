"""`fastrnn bench`: the quick run's JSON against the schema of docs/bench.md (and its arithmetic:
GFLOP/s, % of peak, ratios), the memory measurement (bounded by the tape, independent of what ran
before), --compare, --plot on a real report, the workload definitions, the model-shape workloads (they run; their torch models compute
fastrnn's loss, gradients and Adam step for the same weights) and bad arguments. No timing
assertions."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastrnn.benchmarks import report as rep, shapes, workloads
from fastrnn import optim as fastrnn_optim
from fastrnn.cli import main

IMPLS = {"fastrnn", "reference", "torch"}
NUM = (int, float)


def fastrnn(*args, check=True, timeout=300):
    r = subprocess.run([sys.executable, "-m", "fastrnn", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode:
        raise AssertionError(f"fastrnn {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


# ---- a small validator of the documented schema (no jsonschema dependency) -------------------

def check_type(where, value, types, nullable=False):
    if value is None and nullable:
        return
    ok = isinstance(value, types) and not isinstance(value, bool)
    assert ok, f"{where}: expected {types}{' or null' if nullable else ''}, got {value!r}"
    if isinstance(value, float):
        assert math.isfinite(value), f"{where}: not finite"


def check_keys(where, obj, keys):
    assert isinstance(obj, dict), f"{where}: expected an object"
    assert set(obj) == set(keys), f"{where}: keys {sorted(obj)} != {sorted(keys)}"


def validate_report(r):
    """Assert that `r` follows docs/bench.md's schema fastrnn-bench/1."""
    check_keys("report", r, ["schema", "created", "mode", "filter", "command", "duration_s",
                             "machine", "peak", "workloads", "precision"])
    assert r["precision"] in ("float32", "bf16")
    assert r["schema"] == "fastrnn-bench/1" and r["mode"] in ("quick", "default")
    for k in ("created", "command"):
        check_type(k, r[k], str)
    check_type("filter", r["filter"], str, nullable=True)
    check_type("duration_s", r["duration_s"], NUM)
    m = r["machine"]
    check_keys("machine", m, ["cpu_model", "cpu_count", "platform", "cpu_flags", "kernel_level",
                              "engine", "blas", "versions", "threads"])
    for k in ("cpu_model", "platform", "kernel_level"):
        check_type(f"machine.{k}", m[k], str)
    check_type("machine.cpu_count", m["cpu_count"], int, nullable=True)
    assert all(isinstance(f, str) for f in m["cpu_flags"])
    check_keys("machine.engine", m["engine"], ["path", "isa", "threads", "bf16", "amx"])
    assert m["engine"]["bf16"] in ("emulated", "avx2", "avx512bf16")
    assert m["engine"]["amx"] in ("off", "amx", "amx-emulated")
    assert m["engine"]["path"] in ("engine", "blas")
    check_type("machine.engine.isa", m["engine"]["isa"], str)
    check_type("machine.engine.threads", m["engine"]["threads"], int)
    check_keys("machine.blas", m["blas"], ["name", "version", "openblas_core", "openblas_coretype",
                                           "openblas_l2_size"])
    for k, v in m["blas"].items():
        check_type(f"machine.blas.{k}", v, str, nullable=k != "openblas_core")
    assert m["blas"]["openblas_core"]
    check_keys("machine.versions", m["versions"], ["fastrnn", "python", "numpy", "scipy", "torch"])
    for k, v in m["versions"].items():
        check_type(f"machine.versions.{k}", v, str, nullable=k == "torch")
    t = m["threads"]
    check_keys("machine.threads", t, ["count", "fastrnn", "blas", "blas_source", "torch",
                                      "fastrnn_num_threads", "openblas_num_threads", "omp_num_threads"])
    for k in ("count", "fastrnn", "blas"):
        check_type(f"threads.{k}", t[k], int)
    assert t["blas_source"] in ("threadpoolctl", "environment")
    check_type("threads.torch", t["torch"], int, nullable=True)
    for k in ("fastrnn_num_threads", "openblas_num_threads", "omp_num_threads"):
        check_type(f"threads.{k}", t[k], str, nullable=True)
    p = r["peak"]
    check_keys("peak", p, ["gflops", "source", "fastrnn_gemm_gflops", "torch_mm_gflops", "n"])
    assert p["source"] in ("torch.mm", "fastrnn._kernels.gemm") and p["gflops"] > 0
    check_type("peak.fastrnn_gemm_gflops", p["fastrnn_gemm_gflops"], NUM)
    check_type("peak.torch_mm_gflops", p["torch_mm_gflops"], NUM, nullable=True)
    check_type("peak.n", p["n"], int)
    assert p["gflops"] == max(p["fastrnn_gemm_gflops"], p["torch_mm_gflops"] or 0)
    names = [w["name"] for w in r["workloads"]]
    assert names and len(set(names)) == len(names), "workload names must be unique"
    for w in r["workloads"]:
        validate_workload(w, p["gflops"])


def validate_workload(w, peak):
    """Assert the schema of one workload record, and that its derived numbers (GFLOP/s, % of the
    peak `peak`, ratios) follow from the measured ones."""
    where = f"workload {w.get('name')!r}"
    check_keys(where, w, ["name", "group", "kind", "params", "flops", "rounds", "results", "ratios"])
    assert w["group"] in ("kernels", "layers", "models", "latency", "memory")
    assert w["kind"] == ("memory" if w["group"] == "memory" else "time")
    assert all(isinstance(k, str) and (v is None or isinstance(v, (str, int, float, bool)))
               for k, v in w["params"].items())
    check_type(f"{where}.flops", w["flops"], NUM, nullable=True)
    check_type(f"{where}.rounds", w["rounds"], int)
    assert w["rounds"] >= 1 and set(w["results"]) <= IMPLS and "fastrnn" in w["results"]
    for impl, res in w["results"].items():
        if w["kind"] == "time":
            check_keys(f"{where}.{impl}", res, ["median_s", "min_s", "max_s", "gflops", "pct_peak"])
            assert 0 < res["min_s"] <= res["median_s"] <= res["max_s"]
            for k in ("gflops", "pct_peak"):
                check_type(f"{where}.{impl}.{k}", res[k], NUM, nullable=w["flops"] is None)
            if w["flops"] is not None:
                assert res["gflops"] == pytest.approx(w["flops"] / res["median_s"] / 1e9, rel=1e-12)
                assert res["pct_peak"] == pytest.approx(100 * res["gflops"] / peak, rel=1e-12)
        else:
            check_keys(f"{where}.{impl}", res, ["peak_rss_bytes"])
            check_type(f"{where}.{impl}.peak_rss_bytes", res["peak_rss_bytes"], int, nullable=True)
    assert set(w["ratios"]) <= {"reference/fastrnn", "torch/fastrnn"}
    for k, v in w["ratios"].items():
        check_type(f"{where}.ratios.{k}", v, NUM)
        assert k.split("/")[0] in w["results"]
    key = "median_s" if w["kind"] == "time" else "peak_rss_bytes"
    base = w["results"]["fastrnn"][key]
    for impl in ("reference", "torch"):
        if impl in w["results"]:                          # both ran: the ratio is there
            other = w["results"][impl][key]
            if w["kind"] == "memory" and (base is None or other is None or base == 0):
                continue                                  # nothing to divide (documented)
            assert w["ratios"][f"{impl}/fastrnn"] == pytest.approx(other / base, rel=1e-12), (where, impl)


# ---- the quick run end to end ---------------------------------------------------------------

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """(report, its JSON path, the Markdown text, stdout) of `fastrnn bench --quick --threads 1`."""
    d = tmp_path_factory.mktemp("quick")
    out, md = d / "run.json", d / "run.md"
    # one thread: the smoke test must not fight the other tests for both cores
    r = fastrnn("bench", "--quick", "--threads", 1, "--json", out, "--markdown", md)
    return json.loads(out.read_text()), out, md.read_text(), r.stdout


def test_quick_run_json_markdown_and_compare(quick_run):
    report, out, md, stdout = quick_run
    validate_report(report)
    threads = report["machine"]["threads"]
    assert report["mode"] == "quick" and threads["count"] == threads["fastrnn"] == 1
    assert report["machine"]["engine"]["threads"] == 1
    if threads["blas_source"] == "threadpoolctl":
        assert threads["blas"] == 1
    if threads["torch"] is not None:
        assert threads["torch"] == 1
    assert {w["name"] for w in report["workloads"]} == workloads.QUICK
    assert {w["group"] for w in report["workloads"]} == {"kernels", "models", "latency", "memory"}
    assert "% of peak" in md and "| workload |" in stdout
    assert "fastrnn engine:" in md and "core " + report["machine"]["blas"]["openblas_core"] in md
    # a report compared with itself has no slowdown and no warning
    r = fastrnn("bench", "--compare", out, out)
    assert r.returncode == 0 and "0 workload(s) slower" in r.stdout and "warning" not in r.stdout


MEMORY = "memory LSTM 2x256 fwd+bwd T=100 B=32"


def memory_row(report):
    return next(w for w in report["workloads"] if w["name"] == MEMORY)


@pytest.fixture(scope="module")
def filtered_run(tmp_path_factory):
    """(report, plot path or None) of a --quick --filter run where a timed workload runs before the
    memory one, with --plot when matplotlib is installed."""
    d = tmp_path_factory.mktemp("filtered")
    plot = d / "plot.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plot = None
    fastrnn("bench", "--quick", "--threads", 1, "--filter", "^LM forward|^memory", "--json", d / "r.json",
            *(["--plot", plot] if plot else []))
    return json.loads((d / "r.json").read_text()), plot


def test_plot_of_a_real_report(filtered_run):
    report, plot = filtered_run
    if plot is None:
        pytest.skip("matplotlib is not installed")
    validate_report(report)
    assert [w["group"] for w in report["workloads"]] == ["latency", "memory"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_is_bounded_by_the_tape_and_independent_of_earlier_workloads(quick_run, filtered_run, tmp_path):
    """fastrnn's peak RSS growth of a 2-layer LSTM forward+backward holds the tape the maths needs
    (0.5x is slack for untouched pages) and not much more (measured ~2.5x: fastrnn's tape keeps
    more than the minimum, plus the layer's weights, gradients, outputs and input gradients); and
    it reads the same alone, after one timed workload and after the whole quick run."""
    fastrnn("bench", "--quick", "--threads", 1, "--filter", "^memory", "--json", tmp_path / "alone.json")
    alone = memory_row(json.loads((tmp_path / "alone.json").read_text()))
    validate_workload(alone, 1.0)
    needed = alone["params"]["minimal_tape_bytes"]
    for impl, res in alone["results"].items():
        assert res["peak_rss_bytes"] >= 0.5 * needed, (impl, res, needed)   # everyone keeps a tape
    fast = alone["results"]["fastrnn"]["peak_rss_bytes"]
    assert 0.5 * needed <= fast <= 4 * needed, (fast, needed)
    after = [memory_row(quick_run[0]), memory_row(filtered_run[0])]
    for row in after:
        for impl, res in row["results"].items():
            a, b = res["peak_rss_bytes"], alone["results"][impl]["peak_rss_bytes"]
            assert 1 / 1.5 <= a / b <= 1.5, (impl, a, b)


def synthetic(medians, kind="time"):
    """A minimal report whose fastrnn medians (or RSS bytes) are `medians` {name: value}."""
    key = "median_s" if kind == "time" else "peak_rss_bytes"
    return {"workloads": [{"name": n, "kind": kind, "results": {"fastrnn": {key: v}}}
                          for n, v in medians.items()]}


def test_compare_flags_slowdowns(tmp_path):
    old = synthetic({"a": 1e-3, "b": 2e-3, "c": 1e-3, "gone": 1e-3})
    new = synthetic({"a": 1.05e-3, "b": 3e-3, "c": 0.5e-3, "added": 1e-3})
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    r = fastrnn("bench", "--compare", tmp_path / "old.json", tmp_path / "new.json", check=False)
    assert r.returncode == 1
    rows = {line.split("|")[1].strip(): line for line in r.stdout.splitlines() if line.startswith("| ")}
    assert "SLOWER" in rows["b"] and "1.500" in rows["b"]
    assert "SLOWER" not in rows["a"] and "SLOWER" not in rows["c"]
    assert "missing in new" in rows["gone"] and "new" in rows["added"]
    assert "1 workload(s) slower" in r.stdout
    # a looser threshold lets the 1.5x through
    r = fastrnn("bench", "--compare", tmp_path / "old.json", tmp_path / "new.json", "--threshold", 0.6,
                check=False)
    assert r.returncode == 0


@settings(max_examples=50, deadline=None, derandomize=True)
@given(old=st.floats(1e-6, 10), factor=st.floats(0.1, 10), threshold=st.floats(0, 2),
       kind=st.sampled_from(["time", "memory"]))
def test_compare_property(old, factor, threshold, kind):
    new = old * factor
    lines, slower = rep.compare(synthetic({"w": old}, kind), synthetic({"w": new}, kind), threshold)
    assert (slower == ["w"]) == (new / old > 1 + threshold)
    assert len(lines) == 3


def run_main(args, capsys):
    """(exit code, stdout, stderr) of the `fastrnn` entry point called in this process."""
    try:
        code = main(args)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err + (code if isinstance(code, str) else "")


def test_compare_zeros_and_missing_values():
    """An old 0 is a value, not "new": 0 -> 0 is a ratio of 1, 0 -> more is a rise; a null gets
    no ratio."""
    old = synthetic({"zero": 0, "grew": 0, "none": None, "ok": 2**20}, "memory")
    new = synthetic({"zero": 0, "grew": 2**20, "none": 2**20, "ok": 2**20}, "memory")
    lines, slower = rep.compare(old, new)
    rows = {line.split("|")[1].strip(): line for line in lines[2:]}
    assert slower == ["grew"] and "MORE MEMORY" in rows["grew"] and "old 0" in rows["grew"]
    assert "1.000" in rows["zero"] and "new" not in rows["zero"]
    assert "no old measurement" in rows["none"] and "1.000" in rows["ok"]


def test_compare_warns_when_conditions_differ(tmp_path):
    machine = lambda cpu, threads, isa: {"cpu_model": cpu, "kernel_level": "x86-64-v4",
                                         "threads": {"count": threads}, "engine": {"isa": isa}}
    old = dict(synthetic({"a": 1e-3}), mode="quick", machine=machine("A", 2, "avx512"))
    same = dict(synthetic({"a": 1e-3}), mode="quick", machine=machine("A", 2, "avx512"))
    new = dict(synthetic({"a": 1e-3}), mode="default", machine=machine("B", 1, "avx2"))
    assert rep.differences(old, same) == []
    warnings = rep.differences(old, new)
    assert len(warnings) == 4 and all(w in " ".join(warnings) for w in ("mode", "thread count", "CPU model", "ISA"))
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    r = fastrnn("bench", "--compare", tmp_path / "old.json", tmp_path / "new.json")
    assert r.returncode == 0 and r.stdout.count("warning:") == 4     # a warning, not a failure


def test_compare_bad_files(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text("[1, 2]")
    for name in ("bad.json", "other.json", "missing.json"):
        code, _, err = run_main(["bench", "--compare", str(tmp_path / name), str(tmp_path / name)], capsys)
        assert code not in (0, None) and "--compare" in err and name in err


def test_plot_without_matplotlib_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)    # `import matplotlib` raises ImportError
    with pytest.raises(SystemExit) as e:
        main(["bench", "--quick", "--plot", str(tmp_path / "p.png")])
    assert "pip install 'fastrnn[plot]'" in str(e.value)
    assert not (tmp_path / "p.png").exists()                # refused before measuring anything
    with pytest.raises(ImportError, match="matplotlib"):
        rep.plot(fake_report(), tmp_path / "p.png")


def fake_report():
    res = lambda s: {"median_s": s, "min_s": s, "max_s": s, "gflops": 1.0, "pct_peak": 10.0}
    return {"mode": "quick", "machine": {"cpu_model": "test CPU"}, "peak": {"gflops": 10.0},
            "workloads": [{"name": "w1", "kind": "time", "results": {"fastrnn": res(1e-3), "torch": res(2e-3)},
                           "ratios": {"torch/fastrnn": 2.0}},
                          {"name": "w2", "kind": "time", "results": {"fastrnn": res(1e-3)}, "ratios": {}}]}


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    rep.plot(fake_report(), tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- definitions and arguments --------------------------------------------------------------

def test_workload_definitions():
    every = workloads.all_workloads()
    names = [w.name for w in every]
    assert len(set(names)) == len(names)
    assert workloads.QUICK <= set(names), "a quick workload name does not exist"
    groups = {w.group for w in every}
    assert groups == {"kernels", "layers", "models", "latency", "memory"}
    kernels = [w.params for w in every if w.group == "kernels"]
    assert {(p["cell"], p["mode"], p["dtype"]) for p in kernels} == {
        (c, m, d) for c in ("rnn", "gru", "lstm") for m in ("forward", "fwd+bwd") for d in ("float32", "float64")}
    assert min(p["H"] for p in kernels) == 128 and max(p["H"] for p in kernels) == 1024
    assert min(p["B"] for p in kernels) == 1 and max(p["B"] for p in kernels) == 64
    assert min(p["T"] for p in kernels) == 25 and max(p["T"] for p in kernels) == 150
    assert sum(p["deepbench"] for p in kernels) == 2 * len(workloads.DEEPBENCH_LSTM)
    models = [w for w in every if w.group == "models"]
    assert len([w for w in models if w.name.startswith("LM train")]) == 12
    assert [w.params.get("shape") for w in models[12:]] == list(shapes.SHAPES)   # one per shape
    assert all(w.flops > 0 and set(w.impls) <= {"fastrnn", "torch"} for w in models)
    # FLOPs: 2 (I + H) G H per step and sequence, backward twice forward
    w = next(w for w in every if w.name == "kernel gru fwd+bwd float32 T=25 B=64 I=512 H=512")
    assert w.flops == 3 * 25 * 64 * 2 * (512 + 512) * 3 * 512
    assert [x.name for x in workloads.select(pattern=r"^LM sampling")] == ["LM sampling step LSTM 2x256 B=1"]
    assert {x.name for x in workloads.select(quick=True)} == workloads.QUICK


def test_bad_arguments(capsys):
    for args, message in [(["--filter", "("], "not a regular expression"),
                          (["--threshold", "-1"], "non-negative"),
                          (["--threads", "0"], "--threads"),
                          (["--filter", "no such workload"], "no workload matches")]:
        code, _, err = run_main(["bench", *args], capsys)
        assert code not in (0, None) and message in err, (args, err)


# ---- the model-shape workloads (fastrnn.benchmarks.shapes) ----------------------------------------

TINY = dict(classifier=dict(V=20, E=5, H=6, C=3, B=4, T=7), tagger=dict(V=20, E=5, H=6, K=4, B=4, T=7),
            regressor=dict(F=3, H=6, B=4, T=7), seq2seq=dict(V=12, E=5, H=6, B=4, T=7),
            conditioned=dict(V=11, C=3, E=5, H=6, B=4, T=7), output_recurrent=dict(I=3, O=2, H=6, B=4, T=7),
            grid=dict(N=3, side=5, C=2, K=4, classes=3))


@pytest.fixture
def one_torch_thread():
    """torch on one thread: at tiny sizes its 2-thread pool only spins against the other tests."""
    if shapes.torch is None:
        yield
        return
    threads = shapes.torch.get_num_threads()
    shapes.torch.set_num_threads(1)
    yield
    shapes.torch.set_num_threads(threads)


def test_every_shape_has_tiny_sizes():
    assert set(TINY) == set(shapes.SHAPES)
    assert all(set(TINY[k]) == set(s.sizes) for k, s in shapes.SHAPES.items())


@pytest.mark.parametrize("name", list(shapes.SHAPES))
def test_shape_workloads_run(name, one_torch_thread):
    """Each implementation's iteration runs (twice: the optimiser's state is reused) at tiny sizes."""
    builders = shapes.train(name, **TINY[name])
    impls = ["fastrnn"] + (["torch"] if shapes.torch is not None else [])
    for impl in impls:
        iteration = builders[impl]()
        iteration()
        iteration()


@pytest.mark.parametrize("name", list(shapes.SHAPES))
def test_shape_torch_model_is_fastrnns_model(name, one_torch_thread):
    """float64, same weights: the torch loss, every gradient and the parameters after one Adam
    step equal fastrnn's (so the benchmark times the same computation on both sides)."""
    torch = pytest.importorskip("torch")
    shape = shapes.SHAPES[name]
    model, batch = shape.make("float64", **TINY[name])
    m, tb = shapes.torch_model(shape, model), shapes.torch_batch(batch)
    fast_opt, torch_opt = fastrnn_optim.Adam(model, lr=0.01), torch.optim.Adam(m.parameters(), lr=0.01)
    model.zero_grad()
    loss = model.forward(batch)
    model.backward()
    fast_opt.step()
    torch_loss = shape.torch_loss(m, tb)
    torch_loss.backward()
    torch_opt.step()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12, abs=1e-12)
    grads, params = model.named_grads(), dict(model.named_parameters())
    for n, p in m.named_parameters():
        np.testing.assert_allclose(grads[n], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)
        np.testing.assert_allclose(params[n], p.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=n)
    assert model.forward(batch, train=False) != loss          # the step changed the model


def test_torch_model_rejects_different_names():
    torch = pytest.importorskip("torch")
    shape = shapes.SHAPES["regressor"]
    model, _ = shape.make("float64", **TINY["regressor"])
    wrong = shapes.Shape(shape.title, shape.make, lambda m: {"rnn": torch.nn.LSTM(3, 6)},
                         shape.torch_loss, shape.flops, shape.sizes)
    with pytest.raises(ValueError, match="head.weight"):
        shapes.torch_model(wrong, model)
