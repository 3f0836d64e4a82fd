"""`fastrnn bench`: the quick run's JSON against the schema of docs/bench.md, --compare, --plot,
the workload definitions, the model-shape workloads (they run; their torch models compute
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
                             "machine", "peak", "workloads"])
    assert r["schema"] == "fastrnn-bench/1" and r["mode"] in ("quick", "default")
    for k in ("created", "command"):
        check_type(k, r[k], str)
    check_type("filter", r["filter"], str, nullable=True)
    check_type("duration_s", r["duration_s"], NUM)
    m = r["machine"]
    check_keys("machine", m, ["cpu_model", "cpu_count", "platform", "cpu_flags", "kernel_level",
                              "blas", "versions", "threads"])
    for k in ("cpu_model", "platform", "kernel_level"):
        check_type(f"machine.{k}", m[k], str)
    check_type("machine.cpu_count", m["cpu_count"], int, nullable=True)
    assert all(isinstance(f, str) for f in m["cpu_flags"])
    check_keys("machine.blas", m["blas"], ["name", "version", "openblas_coretype", "openblas_l2_size"])
    for k, v in m["blas"].items():
        check_type(f"machine.blas.{k}", v, str, nullable=True)
    check_keys("machine.versions", m["versions"], ["fastrnn", "python", "numpy", "scipy", "torch"])
    for k, v in m["versions"].items():
        check_type(f"machine.versions.{k}", v, str, nullable=k == "torch")
    t = m["threads"]
    check_keys("machine.threads", t, ["blas", "torch", "openblas_num_threads", "omp_num_threads"])
    check_type("threads.blas", t["blas"], int)
    check_type("threads.torch", t["torch"], int, nullable=True)
    for k in ("openblas_num_threads", "omp_num_threads"):
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
        validate_workload(w)


def validate_workload(w):
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
        else:
            check_keys(f"{where}.{impl}", res, ["peak_rss_bytes"])
            check_type(f"{where}.{impl}.peak_rss_bytes", res["peak_rss_bytes"], int, nullable=True)
    assert set(w["ratios"]) <= {"reference/fastrnn", "torch/fastrnn"}
    for k, v in w["ratios"].items():
        check_type(f"{where}.ratios.{k}", v, NUM)
        assert k.split("/")[0] in w["results"]


# ---- the quick run end to end ---------------------------------------------------------------

def test_quick_run_json_markdown_and_compare(tmp_path):
    out, md = tmp_path / "run.json", tmp_path / "run.md"
    # one thread: the smoke test must not fight the other tests for both cores
    r = fastrnn("bench", "--quick", "--threads", 1, "--json", out, "--markdown", md)
    report = json.loads(out.read_text())
    validate_report(report)
    assert report["mode"] == "quick" and report["machine"]["threads"]["blas"] == 1
    assert {w["name"] for w in report["workloads"]} == workloads.QUICK
    assert {w["group"] for w in report["workloads"]} == {"kernels", "models", "latency", "memory"}
    assert "% of peak" in md.read_text() and "| workload |" in r.stdout
    # a report compared with itself has no slowdown
    r = fastrnn("bench", "--compare", out, out)
    assert r.returncode == 0 and "0 workload(s) slower" in r.stdout


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
    grads, params = model.named_grads(), model.named_parameters()
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
