"""int8 inference: `quantize(model)` gives every recurrent layer of a float32 model int8 weights.

The scheme (csrc/int8.h): each weight matrix W (N, K) of W_ih, W_hh and the LSTM projection W_hr
becomes s8 values q = rint(W / s) with one symmetric scale s = max|W[n]| / 127 per output channel
(per gate and hidden unit); at run time each row of the product's input (x, h_{t-1}) is quantized
to 7 bits with its own scale inside the kernel, the products add up in s32, and the gate maths,
cell state, biases and everything between steps stay float32. A model's `head` Linear (a language
model's logits, a classifier's scores) gets the same per-row int8 weights; biases, embeddings,
peepholes and other layers (attention, condition maps) stay float32.

A quantized model is the same model object: its float weights are replaced by their dequantized
values (s * q), so `predict`, `sample`, `evaluate`, `fastrnn.generate` and `step` run it
unchanged, the recurrent products running in int8. `fastrnn.save` stores the int8 arrays and their
scales instead of the float weights (`int8/NAME`, `int8scale/NAME`), and `fastrnn.load` restores
exactly those values. Training a quantized model updates its float weights; the next inference
call quantizes them again.

Activations of h_{t-1} (`activations=`): "dynamic" rows carry one scale per row, max|row| / 63,
found by a pass over the row before each product; "static" rows use the fixed scale 1/63 (h in
[-1, 1] on 7 bits, oneDNN's fixed-scale u8 activations), so each value of h_t is quantized as the
gate step writes it and the next step's product reads bytes, with no range pass. A static row is
exact about the range only where the cell keeps |h| <= 1 -- tanh RNN, GRU, MGU, LSTM without
projection -- so "auto" (the default) picks static for those layers and dynamic for relu RNNs and
projecting LSTMs; at run time a call whose h0 leaves [-1, 1] runs dynamic rows. The input
projection and the other operands (GRU's r*h, MGU's f*h, the projection's m) stay dynamic.
"""
import numpy as np

from . import _kernels

SCHEME = "s8-channel-symmetric/u7-row"       # the checkpoints' name of the scheme above
_KINDS = (("ih", "weight_ih"), ("hh", "weight_hh"), ("hr", "weight_hr"))


def quantize_weight(W):
    """(q int8 (N, K), scale float32 (N,)) of a float matrix W (N, K): q = rint(W / s), one
    symmetric scale s = max|W[n]| / 127 per row (0 for an all-zero row, whose q is 0)."""
    W = np.asarray(W, np.float32)
    if W.ndim != 2:
        raise ValueError(f"W: expected a 2-D matrix, got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W: non-finite weights cannot be quantized")
    scale = (np.abs(W).max(axis=1) / np.float32(127)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.rint(W / safe[:, None]), -127, 127).astype(np.int8)
    return q, scale


def dequantize_weight(q, scale):
    """The float32 matrix s * q (what the int8 kernels multiply by, up to the activations')."""
    return q.astype(np.float32) * np.asarray(scale, np.float32)[:, None]


def recurrent_layers(model):
    """[(dotted path, layer)] of the recurrent layers (fastrnn.RNN/GRU/LSTM/...) inside `model`."""
    from .nn.layers import _Recurrent
    if isinstance(model, _Recurrent):
        return [("", model)]
    if not hasattr(model, "modules"):
        raise TypeError(f"model: expected a fastrnn model or layer, got {type(model).__name__}")
    return [(path, m) for path, m in model.modules() if isinstance(m, _Recurrent)]


def _layer_names(model, layer):
    """{layer's own parameter name: the model's dotted name} (matched by storage, so renaming
    hooks of any model are respected)."""
    where = {v.__array_interface__["data"][0]: k for k, v in model._named("_views").items()}
    return {k: where[v.__array_interface__["data"][0]] for k, v in layer._named("_views").items()}


def _heads(model):
    """[(dotted path, Linear)] of the modules named `head` (a language model's logits, a
    classifier's or tagger's scores): their products run in int8 too."""
    from .nn.linear import Linear
    if not hasattr(model, "modules"):
        return []
    return [(path, m) for path, m in model.modules() if isinstance(m, Linear) and path.split(".")[-1] == "head"]


def _quantized_names(layer):
    """The module's parameter names that are stored in int8, in its own naming."""
    if not hasattr(layer, "num_layers"):            # a head: its weight
        return ["weight"]
    names = []
    for k in range(layer.num_layers):
        for sfx in layer._suffixes(k):
            names += [f"weight_ih{sfx}", f"weight_hh{sfx}"] + ([f"weight_hr{sfx}"] if layer.proj_size else [])
    return names


def bounded(layer):
    """True when the layer's cell keeps |h_t| <= 1 given |h0| <= 1 (static rows fit it)."""
    return getattr(layer, "nonlinearity", "tanh") != "relu" and not getattr(layer, "proj_size", 0)


class _Loaded(dict):
    """{name: (q, scale)} read from a checkpoint, with `static`: the names of the weight_hh_l0 of
    the layers saved with static rows."""
    static = frozenset()


def quantize(model, activations="auto", _arrays=None):
    """Quantize every recurrent layer and `head` Linear of `model` (a float32 fastrnn model or
    layer) to int8 for inference, in place; returns the model. See the module docstring.
    activations: "auto" (static rows of h for layers whose cell bounds h, dynamic for the
    rest), "static" (the same, but ValueError for an unbounded layer) or "dynamic".

    ValueError for a float64 model (int8 runs float32 models), for a model without recurrent
    layers, for non-finite weights and for layers wider than the int8 kernels take (16384).
    """
    if activations not in ("auto", "static", "dynamic"):
        raise ValueError(f"activations: expected 'auto', 'static' or 'dynamic', got {activations!r}")
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(f"model: {type(model).__name__} has no recurrent layer to quantize")
    if np.dtype(model.dtype) != np.float32:
        raise ValueError(f"model: int8 inference runs float32 models, this one is {np.dtype(model.dtype).name}")
    plans = []
    for _, layer in layers + _heads(model):     # everything is checked before any weight changes
        names = _layer_names(model, layer)
        own = layer._named("_views")
        q = {}
        for name in _quantized_names(layer):
            full = names[name]
            try:
                q[name] = (_arrays[full] if _arrays is not None and full in _arrays
                           else quantize_weight(own[name]))
            except ValueError as e:
                raise ValueError(f"{full}: {e}") from None
            if q[name][0].shape[1] > 16384 - 63:
                raise ValueError(f"{full}: at most 16321 input columns run in int8, got {q[name][0].shape[1]}")
        static = False
        if hasattr(layer, "num_layers"):
            if isinstance(_arrays, _Loaded):          # a checkpoint: the rows it was saved with
                static = names["weight_hh_l0"] in _arrays.static
                if static and not bounded(layer):
                    raise ValueError(f"{names['weight_hh_l0']}: saved with static activations, but its h is unbounded")
            elif activations == "static" and not bounded(layer):
                raise ValueError(f"{names['weight_hh_l0']}: static activations need |h| <= 1; a relu RNN "
                                 f"or a projecting LSTM runs activations='dynamic' (or 'auto')")
            else:
                static = activations != "dynamic" and bounded(layer)
        plans.append((layer, q, static))
    for layer, q, _ in plans:
        own = layer._named("_views")
        for name, (qv, s) in q.items():
            own[name][...] = dequantize_weight(qv, s)
    model.invalidate()          # one version for the whole tree, after every write
    for layer, q, static in plans:
        layer.__dict__["_int8"] = dict(weights=q, version=layer.param_version, packed={}, static=static)
    return model


def _weights(module):
    """{name: (q, scale)} of a quantized module, quantized again first if its floats changed."""
    info = module._int8
    if info["version"] != module.param_version:         # trained or edited since: follow the floats
        own = module._named("_views")
        info["weights"] = {name: quantize_weight(own[name]) for name in _quantized_names(module)}
        info["version"], info["packed"] = module.param_version, {}
    return info["weights"]


def head_matrix(linear):
    """The `_kernels.Q8Matrix` of a quantized head (None for a float one)."""
    if linear.__dict__.get("_int8") is None:
        return None
    w = _weights(linear)
    hit = linear._int8["packed"].get("weight")
    if hit is None:
        hit = linear._int8["packed"]["weight"] = _kernels.Q8Matrix(*w["weight"])
    return hit


def is_quantized(model):
    """True when `model` (or a layer) has int8 recurrent layers."""
    try:
        return any(getattr(layer, "_int8", None) is not None for _, layer in recurrent_layers(model))
    except TypeError:
        return False


def packed(layer, k, d):
    """The `_kernels.Q8Layer` of layer k, direction d of a quantized layer (what its inference
    calls pass as `packed=`); weights edited since quantization are quantized again first."""
    w = _weights(layer)
    hit = layer._int8["packed"].get((k, d))
    if hit is None:
        sfx = layer._suffixes(k)[d]
        hit = layer._int8["packed"][(k, d)] = _kernels.Q8Layer(
            ih=w[f"weight_ih{sfx}"], hh=w[f"weight_hh{sfx}"], hr=w.get(f"weight_hr{sfx}"),
            hstatic=layer._int8.get("static", False))
    return hit


# ---- checkpoints (fastrnn.io) -------------------------------------------------------------------
def checkpoint_arrays(model, arrays):
    """io.save's arrays with each quantized weight `param/NAME` replaced by `int8/NAME` and
    `int8scale/NAME`; returns (arrays, metadata or None)."""
    if not is_quantized(model):
        return arrays, None
    names, static = [], []
    for _, layer in recurrent_layers(model) + _heads(model):
        if layer.__dict__.get("_int8") is None:
            continue
        full = _layer_names(model, layer)
        if layer._int8.get("static"):
            static.append(full["weight_hh_l0"])
        for name, (q, s) in _weights(layer).items():
            arrays.pop(f"param/{full[name]}")
            arrays[f"int8/{full[name]}"], arrays[f"int8scale/{full[name]}"] = q, s
            names.append(full[name])
    return arrays, dict(scheme=SCHEME, names=names, static=static)


def checkpoint_params(meta, arrays, params):
    """io.load's params with every int8 weight of the file dequantized in; returns (params,
    {name: (q, scale)}) after checking each int8 array and scale (ValueError naming it)."""
    info = meta.get("int8")
    if info is None:
        if any(k.startswith("int8") for k in arrays):
            raise ValueError("int8 arrays without int8 metadata")
        return params, None
    if not isinstance(info, dict) or info.get("scheme") != SCHEME or not isinstance(info.get("names"), list):
        raise ValueError(f"int8 metadata: expected scheme {SCHEME!r} and a list of names")
    expected = {f"int8/{n}" for n in info["names"]} | {f"int8scale/{n}" for n in info["names"]}
    present = {k for k in arrays if k.startswith("int8")}
    if expected != present:
        raise ValueError(f"int8 arrays: missing {sorted(expected - present)}, unexpected {sorted(present - expected)}")
    static = info.get("static", [])          # files from before static rows: every layer dynamic
    if not isinstance(static, list) or not all(isinstance(n, str) and n in info["names"]
                                                and n.rsplit(".", 1)[-1] == "weight_hh_l0" for n in static):
        raise ValueError("int8 metadata: 'static' must list int8 weight_hh_l0 names")
    weights = _Loaded()
    weights.static = frozenset(static)
    for name in info["names"]:
        q, s = arrays[f"int8/{name}"], arrays[f"int8scale/{name}"]
        if q.dtype != np.int8 or q.ndim != 2 or q.size == 0:
            raise ValueError(f"int8/{name}: expected a non-empty 2-D int8 array, got {q.dtype} {q.shape}")
        if q.min() < -127:
            raise ValueError(f"int8/{name}: values must be in [-127, 127]")
        if s.dtype != np.float32 or s.shape != (q.shape[0],):
            raise ValueError(f"int8scale/{name}: expected float32 ({q.shape[0]},), got {s.dtype} {s.shape}")
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ValueError(f"int8scale/{name}: expected finite scales >= 0")
        if name in params:
            raise ValueError(f"param/{name}: stored both as float and int8")
        weights[name] = (q, s)
        params = dict(params, **{name: dequantize_weight(q, s)})
    return params, weights
