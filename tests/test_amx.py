"""AMX tiles (csrc/amx.h, gemm_amx.c; issues 22 and 23) on any CPU, through the exact emulation of
TDPBF16PS and TDPBUSD (csrc/test_amx.c checks the products themselves, under ASan/UBSan and TSan):

- bf16: products whose whole row count fills a tile (>= 16 rows) take the tiles, the same choice at
  every thread count, so 1/2/3 threads give the same bits; the tiles add each instruction's even and
  odd products apart (the SDM's order, not VDPBF16PS's), so they differ from the vector kernels by
  float32 rounding only; below 16 rows the vector kernels run (their bits exactly);
- int8: every tile product is the same integers, so int8 layers give the reference's bits;
- FASTRNN_ISA=amx on a CPU without AMX is a clear error; amx-emulated runs the emulation; `fastrnn
  info` names the tile path.
On an AMX CPU the last test compares the hardware with the emulation."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels

LAYERS = {"lstm": fastrnn.LSTM, "gru": fastrnn.GRU, "rnn": fastrnn.RNN}


@pytest.fixture
def amx_mode():
    """Restores the default tile mode and thread count after a test."""
    yield _kernels.set_amx
    _kernels.set_amx(None)
    fastrnn.set_num_threads(0)


def _run_bf16(layer, x):
    layer.zero_grad()
    y, _ = layer(x)
    dx, _ = layer.backward(np.ones_like(y))
    return [y, dx, layer.grads.copy(), layer(x, train=False)[0]]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_bf16_tiles_same_bits_at_every_thread_count_and_near_the_vector_kernels(cell, amx_mode):
    layer = LAYERS[cell](24, 40, num_layers=2, seed=0, precision="bf16")
    x = np.random.default_rng(0).standard_normal((4, 20, 24)).astype(np.float32)   # batch 20: tiles per step
    amx_mode("off")
    vector = _run_bf16(layer, x)
    amx_mode("amx-emulated")
    runs = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        runs.append(_run_bf16(layer, x))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)
    # the tiles ran: their order of summation gives other roundings somewhere ...
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0], vector))
    # ... and float32 rounding only: products of 24-80 bf16 terms summed in another order differ
    # by <= 2 * 80 * 2^-24 of their sum of magnitudes (csrc/test_amx.c checks that bound per
    # element); through 4 steps and the backward that stays far below 1e-3 of the values here
    for a, b in zip(runs[0], vector):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(b).max())))


def test_below_a_tiles_rows_the_vector_kernels_run(amx_mode):
    layer = fastrnn.LSTM(24, 40, seed=1, precision="bf16")
    x = np.random.default_rng(1).standard_normal((1, 8, 24)).astype(np.float32)  # 8 rows everywhere
    amx_mode("off")
    want = layer(x, train=False)[0]
    amx_mode("amx-emulated")
    np.testing.assert_array_equal(layer(x, train=False)[0], want)


def _outputs(result):
    y, state = result
    return [y] + list(state if isinstance(state, tuple) else (state,))


@pytest.mark.parametrize("cell,opts", [("lstm", {}), ("gru", {}), ("lstm", {"proj_size": 16}),
                                       ("gru", {"bidirectional": True})])
def test_int8_tiles_give_the_reference_bits(cell, opts, amx_mode):
    layer = fastrnn.quantize(LAYERS[cell](12, 48, num_layers=2, seed=3, **opts))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 17, 12)).astype(np.float32)     # 17 rows a step, 85 in the projection
    lengths = rng.integers(0, 6, 17)
    isa = _kernels.int8_isa()
    try:
        _kernels.set_int8_isa("ref")
        amx_mode("off")
        want = _outputs(layer.forward(x, lengths=lengths, train=False))
        amx_mode("amx-emulated")
        for threads in (1, 2, 3):
            fastrnn.set_num_threads(threads)
            got = _outputs(layer.forward(x, lengths=lengths, train=False))
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b, err_msg=f"{threads} threads")
    finally:
        _kernels.set_int8_isa(isa)


def test_set_amx_errors(amx_mode):
    with pytest.raises(ValueError, match="expected one of"):
        amx_mode("tiles")
    info = _kernels.amx_info()
    assert set(info["cpu"]) == {"amx-tile", "amx-bf16", "amx-int8", "os_permission"}
    if not info["supported"]:
        with pytest.raises(ValueError, match="amx-emulated|did not grant"):
            amx_mode("amx")
    amx_mode("amx-emulated")
    assert _kernels.amx_info()["mode"] == "amx-emulated"
    amx_mode("off")
    assert _kernels.amx_info()["mode"] == "off"


def _python(code, isa):
    env = dict(os.environ, FASTRNN_ISA=isa)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_fastrnn_isa_amx_is_an_error_without_amx_and_amx_emulated_runs():
    if _kernels.amx_info()["supported"]:
        pytest.skip("this CPU runs AMX: FASTRNN_ISA=amx is no error here")
    r = _python("import fastrnn", "amx")
    assert r.returncode != 0
    assert "RuntimeError: FASTRNN_ISA=amx:" in r.stderr and "amx-emulated" in r.stderr
    r = _python("import fastrnn; from fastrnn import _kernels as k; "
                "print(k.amx_info()['mode'], k.engine_info()['isa'])", "amx-emulated")
    assert r.returncode == 0, r.stderr
    mode, isa = r.stdout.split()
    assert mode == "amx-emulated" and isa == _kernels.supported_isas()[0]   # the best vector ISA


def test_info_names_the_tile_path():
    env = dict(os.environ, FASTRNN_ISA="amx-emulated")
    out = subprocess.run([sys.executable, "-m", "fastrnn", "info"], capture_output=True, text=True, env=env,
                         timeout=120).stdout
    assert "AMX tiles (bf16 and int8 products of >= 16 rows): amx-emulated (amx-tile " in out


@pytest.mark.skipif(not _kernels.amx_info()["supported"], reason="no AMX on this CPU (or not granted by the OS)")
def test_hardware_tiles_equal_the_emulation(amx_mode):
    layer = fastrnn.LSTM(64, 96, seed=4, precision="bf16")
    q = fastrnn.quantize(fastrnn.GRU(64, 96, seed=4))
    x = np.random.default_rng(4).standard_normal((3, 32, 64)).astype(np.float32)
    out = {}
    for mode in ("amx", "amx-emulated"):
        amx_mode(mode)
        out[mode] = _run_bf16(layer, x) + [q.forward(x, train=False)[0]]
    for a, b in zip(out["amx"], out["amx-emulated"]):
        np.testing.assert_array_equal(a, b)


def test_benchmark_runs_and_refuses_the_emulation():
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "amx.py")
    if not os.path.exists(script):
        pytest.skip("no bench/ (installed without sources)")
    env = {k: v for k, v in os.environ.items() if k != "FASTRNN_ISA"}
    r = subprocess.run([sys.executable, script, "--shape", "2", "3", "4", "8", "--repeat", "1", "--threads", "1"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "AMX tiles: " in r.stdout and "gru: float32 inference" in r.stdout
    r = subprocess.run([sys.executable, script, "--repeat", "1"], capture_output=True, text=True,
                       env=dict(env, FASTRNN_ISA="amx-emulated"), timeout=300)
    assert r.returncode != 0 and "emulation" in r.stderr
