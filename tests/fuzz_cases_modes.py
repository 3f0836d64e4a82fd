"""Fuzz case of torch's conventions on a layer: random sequences of mode switches, grad-mode
blocks, weight edits through every public view, loads (strict or not, some keys missing or
extra, hostile values), inference calls and backward. Invariants checked after every step:

- an inference call (no_grad or train=False forward, `step`) equals a fresh layer holding a copy
  of the current weights: never stale, whatever was edited and how;
- eval() forwards are deterministic; a pending tape survives inference calls, and backward
  without one raises RuntimeError;
- load_state_dict(strict=False) reports exactly the keys left out and the ones added.
"""
import numpy as np
import pytest
from hypothesis import strategies as st

import fastrnn
from fuzz_mutations import SIZES, same

OPS = ["train", "eval", "bad_mode", "edit_params", "edit_view", "edit_state_dict", "torch_edit",
       "load", "infer", "step", "tape", "backward"]


def _fresh(layer, make):
    ref = make()
    ref.load_state_dict({k: v.copy() for k, v in layer.state_dict().items()})
    return ref.eval()


def module_modes(draw):
    cls = draw(st.sampled_from([fastrnn.RNN, fastrnn.GRU, fastrnn.LSTM]), "layer")
    H, L = draw(SIZES, "H"), draw(st.integers(1, 2), "num_layers")
    kw = dict(num_layers=L, dropout=draw(st.sampled_from([0.0, 0.5]), "dropout"),
              dtype=draw(st.sampled_from(["float32", "float64"]), "dtype"), seed=0)
    make = lambda: cls(3, H, **kw)
    layer = make()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 3)).astype(layer.dtype)
    held, pending = [], False
    for i in range(draw(st.integers(1, 8), "ops")):
        op = draw(st.sampled_from(OPS), f"op {i}")
        names = [n for n, _ in layer.named_parameters()]
        name = draw(st.sampled_from(names), f"op {i} parameter")
        if op in ("train", "eval"):
            getattr(layer, op)()
            assert layer.training == (op == "train")
        elif op == "bad_mode":
            with pytest.raises(ValueError, match="mode"):
                layer.train(draw(st.sampled_from([1, "yes", None, 0.5]), f"op {i} mode"))
        elif op == "edit_params":
            j = draw(st.integers(0, layer.params.size - 1), f"op {i} index")
            layer.params[j] += draw(st.sampled_from([0.5, -1.0, 0.0]), f"op {i} delta")
        elif op == "edit_view":
            dict(layer.named_parameters())[name][...] *= -0.5
        elif op == "edit_state_dict":
            sd = layer.state_dict()
            sd[name].flat[0] = 0.25
            if draw(st.booleans(), f"op {i} keep the state dict"):
                held.append(sd)
        elif op == "torch_edit":
            torch = pytest.importorskip("torch")
            t = torch.from_numpy(dict(layer.named_parameters())[name])
            t.mul_(1.5)
            if draw(st.booleans(), f"op {i} keep the tensor"):
                held.append(t)
        elif op == "load":
            state = {k: v * 0.9 for k, v in layer.state_dict().items()}
            dropped = [k for k in state if draw(st.booleans(), f"op {i} drop {k}")]
            for k in dropped:
                del state[k]
            extra = draw(st.sampled_from([[], ["x.weight"]]), f"op {i} extra")
            state.update({k: np.ones(2) for k in extra})
            strict = draw(st.booleans(), f"op {i} strict")
            if strict and (dropped or extra):
                with pytest.raises(KeyError):
                    layer.load_state_dict(state, strict=True)
            else:
                missing, unexpected = layer.load_state_dict(state, strict=strict)
                assert missing == dropped and unexpected == extra
        elif op == "infer":
            ref = _fresh(layer, make)
            if draw(st.booleans(), f"op {i} no_grad"):
                with fastrnn.no_grad():
                    y = layer.forward(x, train=False)[0]
            else:
                y = layer.forward(x, train=False)[0]
            same([y], [ref.forward(x, train=False)[0]], layer.dtype)
            if not layer.training:
                np.testing.assert_array_equal(layer(x)[0], layer(x)[0])
                pending = True                 # those two forwards kept a tape (grad mode on)
        elif op == "step":
            ref = _fresh(layer, make)
            state = rs = None
            for t in range(x.shape[0]):
                y, state = layer.step(x[t], state)
                want, rs = ref.step(x[t], rs)
                same([y], [want], layer.dtype)
        elif op == "tape":
            layer(x)
            pending = True
        else:
            if pending:
                dx, _ = layer.backward(np.ones((3, 2, H)))
                assert dx.shape == x.shape
            else:
                with pytest.raises(RuntimeError, match="no tape"):
                    layer.backward(np.ones((3, 2, H)))
            pending = False
