"""The maths of every cell in plain NumPy: forward and backpropagation through time (BPTT).

This module is the oracle the C kernels are tested against and the baseline `bench/` compares
them with, so it is written to be read, not to be fast.

Dimension letters used throughout:
    T time steps, B batch, I input features, H hidden units, G gates (RNN 1, GRU 3, LSTM 4),
    P size of the LSTM output h (P = H unless a projection W_hr (P, H) is used).

Layout follows PyTorch exactly: time-major x (T, B, I); W_ih (G*H, I); W_hh (G*H, P);
b_ih, b_hh (G*H,) or None; gate order LSTM `i f g o`, GRU `r z n`, simplified GRU `z n`.

Packed-sequence `lengths` (B,): at steps t >= lengths[b] sequence b keeps its state, outputs
zeros and neither receives nor propagates gradient; its final state is the state after its last
valid step (PyTorch's `pack_padded_sequence` semantics).

Every `*_forward` returns the outputs and a `cache`; the matching `*_backward(dy, dstate, cache)`
returns a dict with the gradient of every input, initial state and parameter (None for a
parameter the layer does not have).
"""
import numpy as np

__all__ = ["rnn_forward", "rnn_backward", "gru_forward", "gru_backward", "simplified_gru_forward",
           "simplified_gru_backward", "lstm_forward", "lstm_backward", "sigmoid"]


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x)), without overflow for large ``abs(x)``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ---- argument checking ------------------------------------------------------------------------

def _check(name, a, shape, dtype, optional=False):
    """`a` as an ndarray of `dtype` and `shape` (None entries match anything), or raise naming it."""
    if a is None:
        if optional:
            return None
        raise TypeError(f"{name}: expected an array of shape {shape}, got None")
    a = np.asarray(a)
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype.name} (the dtype of x), got {a.dtype.name}")
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    return a


def _check_layer(x, W_ih, W_hh, b_ih, b_hh, G, lengths, W_hr=None):
    """Validate a layer's input and parameters; returns (x, params dict, masks or None)."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x: expected float32 or float64, got {x.dtype.name}")
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (T, B, I), got {x.shape}")
    T, B, I = x.shape
    W_hh = _check("W_hh", W_hh, (None, None), x.dtype)
    if W_hh.shape[0] % G:
        raise ValueError(f"W_hh: expected {G}*H rows, got {W_hh.shape}")
    H, P = W_hh.shape[0] // G, W_hh.shape[1]
    if W_hr is None and P != H:
        raise ValueError(f"W_hh: expected shape ({G}*H, H), got {W_hh.shape}")
    p = dict(W_ih=_check("W_ih", W_ih, (G * H, I), x.dtype),
             W_hh=W_hh,
             b_ih=_check("b_ih", b_ih, (G * H,), x.dtype, optional=True),
             b_hh=_check("b_hh", b_hh, (G * H,), x.dtype, optional=True),
             W_hr=_check("W_hr", W_hr, (P, H), x.dtype, optional=True))
    return x, p, _masks(lengths, T, B, x.dtype)


def _masks(lengths, T, B, dtype):
    """(T, B, 1) array, 1 where step t is inside sequence b, or None when lengths is None."""
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got {lengths.dtype.name}")
    if lengths.shape != (B,):
        raise ValueError(f"lengths: expected shape ({B},), got {lengths.shape}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(f"lengths: expected values in [0, {T}], got {lengths.min()}..{lengths.max()}")
    return (np.arange(T)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def _state(name, s, B, width, dtype):
    return np.zeros((B, width), dtype) if s is None else _check(name, s, (B, width), dtype)


# ---- the time loops, shared by every cell ----------------------------------------------------
# A cell is a pair of functions:
#   step(x_t, states, p) -> (new_states, step_cache); new_states[0] is the output h
#   back(dnew, x_t, states, step_cache, p, g) -> (dx_t, dstates), accumulating parameter grads in g

def _run_forward(cell, x, states, p, masks):
    """Apply the cell's step over time; returns (y, final states, cache)."""
    step, _ = cell
    y = np.zeros((x.shape[0],) + states[0].shape, x.dtype)
    history, step_caches = [], []
    for t in range(x.shape[0]):
        new, sc = step(x[t], states, p)
        if masks is not None:       # past its length a sequence keeps its state and outputs 0
            m = masks[t]
            new = tuple(m * n + (1 - m) * s for n, s in zip(new, states))
            y[t] = m * new[0]
        else:
            y[t] = new[0]
        history.append(states)
        step_caches.append(sc)
        states = tuple(new)
    return y, states, (cell, x, history, step_caches, p, masks)


def _run_backward(dy, dstates, cache):
    """BPTT over a cache of `_run_forward`; returns (dx, initial-state grads, parameter grads)."""
    (_, back), x, history, step_caches, p, masks = cache
    g = {k: None if v is None else np.zeros_like(v) for k, v in p.items()}
    dstates = [np.zeros_like(s) if d is None else _check("dstate", d, s.shape, s.dtype)
               for s, d in zip(history[0], dstates)]
    if dy is not None:
        dy = _check("dy", dy, (x.shape[0],) + history[0][0].shape, x.dtype)
    dx = np.zeros_like(x)
    for t in reversed(range(x.shape[0])):
        dnew = list(dstates)
        if dy is not None:
            dnew[0] = dnew[0] + dy[t]
        carry = [0] * len(dnew)
        if masks is not None:       # a finished sequence passes its state gradient straight back
            m = masks[t]            # (its output there is a constant 0: dy[t] is dropped)
            carry = [(1 - m) * d for d in dstates]
            dnew = [m * d for d in dnew]
        dx[t], dprev = back(dnew, x[t], history[t], step_caches[t], p, g)
        dstates = [c + d for c, d in zip(carry, dprev)]
    return dx, dstates, g


def _lin(v, W, b, rows=slice(None)):
    """v @ W[rows].T + b[rows] (b may be None)."""
    out = v @ W[rows].T
    return out if b is None else out + b[rows]


def _lin_back(dout, v, W, dW, db, rows=slice(None)):
    """Backprop of `_lin`: accumulates dW[rows], db[rows]; returns dv."""
    dW[rows] += dout.T @ v
    if db is not None:
        db[rows] += dout.sum(0)
    return dout @ W[rows]


# ---- vanilla RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu) ---------------------------

def _rnn_cell(nonlinearity):
    relu = nonlinearity == "relu"

    def step(x_t, states, p):
        (h,) = states
        a = _lin(x_t, p["W_ih"], p["b_ih"]) + _lin(h, p["W_hh"], p["b_hh"])   # (B, H)
        h_new = np.maximum(a, 0) if relu else np.tanh(a)
        return (h_new,), h_new

    def back(dnew, x_t, states, h_new, p, g):
        (dh_new,), (h,) = dnew, states
        da = dh_new * (h_new > 0) if relu else dh_new * (1 - h_new * h_new)  # through the nonlinearity
        dx = _lin_back(da, x_t, p["W_ih"], g["W_ih"], g["b_ih"])
        dh = _lin_back(da, h, p["W_hh"], g["W_hh"], g["b_hh"])
        return dx, [dh]
    return step, back


def rnn_forward(x, h0, W_ih, W_hh, b_ih=None, b_hh=None, nonlinearity="tanh", lengths=None):
    """Elman RNN over x (T, B, I) from h0 (B, H) (None = zeros); returns (y (T, B, H), h_T, cache)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    x, p, masks = _check_layer(x, W_ih, W_hh, b_ih, b_hh, 1, lengths)
    h0 = _state("h0", h0, x.shape[1], p["W_hh"].shape[1], x.dtype)
    y, (h_T,), cache = _run_forward(_rnn_cell(nonlinearity), x, (h0,), p, masks)
    return y, h_T, cache


def rnn_backward(dy, dh_T, cache):
    """Gradients of an `rnn_forward`: dict(x, h0, W_ih, W_hh, b_ih, b_hh); dy, dh_T may be None."""
    dx, (dh0,), g = _run_backward(dy, [dh_T], cache)
    return dict(x=dx, h0=dh0, W_ih=g["W_ih"], W_hh=g["W_hh"], b_ih=g["b_ih"], b_hh=g["b_hh"])


# ---- GRU --------------------------------------------------------------------------------------
#   r = σ(W_ir x + b_ir + W_hr h + b_hr)          reset gate
#   z = σ(W_iz x + b_iz + W_hz h + b_hz)          update gate
#   reset_after (PyTorch/cuDNN): n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
#   reset before (Cho et al.):   n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
#   h' = (1 - z) * n + z * h

def _gru_cell(reset_after):
    def step(x_t, states, p):
        (h,) = states
        H = h.shape[1]
        rz, n_ = slice(0, 2 * H), slice(2 * H, 3 * H)
        gi = _lin(x_t, p["W_ih"], p["b_ih"])                                  # (B, 3H)
        gh_rz = _lin(h, p["W_hh"], p["b_hh"], rz)                             # (B, 2H)
        rz_act = sigmoid(gi[:, rz] + gh_rz)
        r, z = rz_act[:, :H], rz_act[:, H:]
        if reset_after:
            gh_n = _lin(h, p["W_hh"], p["b_hh"], n_)                          # W_hn h + b_hn
            n = np.tanh(gi[:, n_] + r * gh_n)
        else:
            gh_n = _lin(r * h, p["W_hh"], p["b_hh"], n_)                      # W_hn (r h) + b_hn
            n = np.tanh(gi[:, n_] + gh_n)
        h_new = (1 - z) * n + z * h
        return (h_new,), (r, z, n, gh_n)

    def back(dnew, x_t, states, sc, p, g):
        (dh_new,), (h,), (r, z, n, gh_n) = dnew, states, sc
        H = h.shape[1]
        rz, n_ = slice(0, 2 * H), slice(2 * H, 3 * H)
        dn = dh_new * (1 - z)                   # h' = (1 - z) n + z h
        dz = dh_new * (h - n)
        dh = dh_new * z
        dan = dn * (1 - n * n)                  # through tanh
        if reset_after:
            dr = dan * gh_n                     # n's pre-activation has r * gh_n
            dgh_n = dan * r
            dh = dh + _lin_back(dgh_n, h, p["W_hh"], g["W_hh"], g["b_hh"], n_)
        else:
            drh = _lin_back(dan, r * h, p["W_hh"], g["W_hh"], g["b_hh"], n_)  # d(r * h)
            dr = drh * h
            dh = dh + drh * r
        darz = np.concatenate([dr * r * (1 - r), dz * z * (1 - z)], axis=1)   # through σ
        dh = dh + _lin_back(darz, h, p["W_hh"], g["W_hh"], g["b_hh"], rz)
        dgi = np.concatenate([darz, dan], axis=1)
        dx = _lin_back(dgi, x_t, p["W_ih"], g["W_ih"], g["b_ih"])
        return dx, [dh]
    return step, back


def gru_forward(x, h0, W_ih, W_hh, b_ih=None, b_hh=None, reset_after=True, lengths=None):
    """GRU over x (T, B, I) from h0 (B, H); returns (y (T, B, H), h_T, cache).

    reset_after=True is PyTorch's GRU; False is the original Cho et al. (2014) form.
    """
    x, p, masks = _check_layer(x, W_ih, W_hh, b_ih, b_hh, 3, lengths)
    h0 = _state("h0", h0, x.shape[1], p["W_hh"].shape[1], x.dtype)
    y, (h_T,), cache = _run_forward(_gru_cell(bool(reset_after)), x, (h0,), p, masks)
    return y, h_T, cache


def gru_backward(dy, dh_T, cache):
    """Gradients of a `gru_forward`: dict(x, h0, W_ih, W_hh, b_ih, b_hh)."""
    return rnn_backward(dy, dh_T, cache)


# ---- simplified GRU (update gate only, as in Andrew Ng's Sequence Models course) ---------------
#   z = σ(W_iz x + b_iz + W_hz h + b_hz);  n = tanh(W_in x + b_in + W_hn h + b_hn)
#   h' = (1 - z) * n + z * h;  weights (2H, ·) in gate order z n

def _simplified_gru_step(x_t, states, p):
    (h,) = states
    H = h.shape[1]
    a = _lin(x_t, p["W_ih"], p["b_ih"]) + _lin(h, p["W_hh"], p["b_hh"])     # (B, 2H)
    z, n = sigmoid(a[:, :H]), np.tanh(a[:, H:])
    return ((1 - z) * n + z * h,), (z, n)


def _simplified_gru_back(dnew, x_t, states, sc, p, g):
    (dh_new,), (h,), (z, n) = dnew, states, sc
    da = np.concatenate([dh_new * (h - n) * z * (1 - z),        # dz through σ
                         dh_new * (1 - z) * (1 - n * n)], axis=1)  # dn through tanh
    dx = _lin_back(da, x_t, p["W_ih"], g["W_ih"], g["b_ih"])
    dh = dh_new * z + _lin_back(da, h, p["W_hh"], g["W_hh"], g["b_hh"])
    return dx, [dh]


def simplified_gru_forward(x, h0, W_ih, W_hh, b_ih=None, b_hh=None, lengths=None):
    """Simplified GRU (no reset gate) over x (T, B, I); returns (y, h_T, cache)."""
    x, p, masks = _check_layer(x, W_ih, W_hh, b_ih, b_hh, 2, lengths)
    h0 = _state("h0", h0, x.shape[1], p["W_hh"].shape[1], x.dtype)
    cell = (_simplified_gru_step, _simplified_gru_back)
    y, (h_T,), cache = _run_forward(cell, x, (h0,), p, masks)
    return y, h_T, cache


def simplified_gru_backward(dy, dh_T, cache):
    """Gradients of a `simplified_gru_forward`: dict(x, h0, W_ih, W_hh, b_ih, b_hh)."""
    return rnn_backward(dy, dh_T, cache)


# ---- minimal gated unit (Zhou et al. 2016): one forget gate --------------------------------------
#   f = σ(W_if x + b_if + W_hf h + b_hf);  n = tanh(W_in x + b_in + W_hn (f * h) + b_hn)
#   h' = (1 - f) * h + f * n;  weights (2H, ·) in gate order f n

def _mgu_step(x_t, states, p):
    (h,) = states
    H = h.shape[1]
    f_, n_ = slice(0, H), slice(H, 2 * H)
    gi = _lin(x_t, p["W_ih"], p["b_ih"])                                      # (B, 2H)
    f = sigmoid(gi[:, f_] + _lin(h, p["W_hh"], p["b_hh"], f_))
    n = np.tanh(gi[:, n_] + _lin(f * h, p["W_hh"], p["b_hh"], n_))            # W_hn (f h) + b_hn
    return ((1 - f) * h + f * n,), (f, n)


def _mgu_back(dnew, x_t, states, sc, p, g):
    (dh_new,), (h,), (f, n) = dnew, states, sc
    H = h.shape[1]
    f_, n_ = slice(0, H), slice(H, 2 * H)
    dan = dh_new * f * (1 - n * n)                                            # h' = ... + f n; tanh
    dfh = _lin_back(dan, f * h, p["W_hh"], g["W_hh"], g["b_hh"], n_)         # d(f * h)
    daf = (dh_new * (n - h) + dfh * h) * f * (1 - f)                          # through σ
    dh = dh_new * (1 - f) + dfh * f + _lin_back(daf, h, p["W_hh"], g["W_hh"], g["b_hh"], f_)
    dx = _lin_back(np.concatenate([daf, dan], axis=1), x_t, p["W_ih"], g["W_ih"], g["b_ih"])
    return dx, [dh]


def mgu_forward(x, h0, W_ih, W_hh, b_ih=None, b_hh=None, lengths=None):
    """Minimal gated unit over x (T, B, I) from h0 (B, H); returns (y, h_T, cache)."""
    x, p, masks = _check_layer(x, W_ih, W_hh, b_ih, b_hh, 2, lengths)
    h0 = _state("h0", h0, x.shape[1], p["W_hh"].shape[1], x.dtype)
    y, (h_T,), cache = _run_forward((_mgu_step, _mgu_back), x, (h0,), p, masks)
    return y, h_T, cache


def mgu_backward(dy, dh_T, cache):
    """Gradients of a `mgu_forward`: dict(x, h0, W_ih, W_hh, b_ih, b_hh)."""
    return rnn_backward(dy, dh_T, cache)


# ---- LSTM -------------------------------------------------------------------------------------
#   i = σ(a_i + w_ci * c)   f = σ(a_f + w_cf * c)   g = tanh(a_g)      (a = W_ih x + b_ih + W_hh h + b_hh)
#   c' = f * c + i * g      o = σ(a_o + w_co * c')  h' = W_hr (o * tanh(c'))
# peepholes (w_ci, w_cf, w_co) and the projection W_hr are optional (Gers & Schmidhuber; Sak et al.)

def _lstm_step(x_t, states, p):
    h, c = states
    H = c.shape[1]
    a = _lin(x_t, p["W_ih"], p["b_ih"]) + _lin(h, p["W_hh"], p["b_hh"])       # (B, 4H)
    a_i, a_f, a_g, a_o = (a[:, k * H:(k + 1) * H] for k in range(4))
    peep = p["w_peep"]
    if peep is not None:                     # i and f look at c, o looks at c'
        a_i, a_f = a_i + peep[0] * c, a_f + peep[1] * c
    i, f, gg = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g)
    c_new = f * c + i * gg
    o = sigmoid(a_o + peep[2] * c_new if peep is not None else a_o)
    tc = np.tanh(c_new)
    m = o * tc                                                                 # (B, H)
    h_new = m if p["W_hr"] is None else m @ p["W_hr"].T                        # (B, P)
    return (h_new, c_new), (i, f, gg, o, tc, m, c_new)


def _lstm_back(dnew, x_t, states, sc, p, g):
    (dh_new, dc_new), (h, c), (i, f, gg, o, tc, m, c_new) = dnew, states, sc
    peep = p["w_peep"]
    if p["W_hr"] is not None:                # h' = m W_hr^T
        g["W_hr"] += dh_new.T @ m
        dm = dh_new @ p["W_hr"]
    else:
        dm = dh_new
    dao = dm * tc * o * (1 - o)              # m = o tanh(c'); through σ
    dc_new = dc_new + dm * o * (1 - tc * tc)
    if peep is not None:                     # o saw c'
        dc_new = dc_new + dao * peep[2]
        g["w_peep"][2] += (dao * c_new).sum(0)
    dai = dc_new * gg * i * (1 - i)          # c' = f c + i g
    daf = dc_new * c * f * (1 - f)
    dag = dc_new * i * (1 - gg * gg)
    dc = dc_new * f
    if peep is not None:                     # i and f saw c
        dc = dc + dai * peep[0] + daf * peep[1]
        g["w_peep"][0] += (dai * c).sum(0)
        g["w_peep"][1] += (daf * c).sum(0)
    da = np.concatenate([dai, daf, dag, dao], axis=1)
    dx = _lin_back(da, x_t, p["W_ih"], g["W_ih"], g["b_ih"])
    dh = _lin_back(da, h, p["W_hh"], g["W_hh"], g["b_hh"])
    return dx, [dh, dc]


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih=None, b_hh=None, w_peep=None, W_hr=None, lengths=None):
    """LSTM over x (T, B, I) from h0 (B, P), c0 (B, H) (None = zeros).

    w_peep (3, H): peephole weights [w_ci, w_cf, w_co]; W_hr (P, H): output projection.
    Returns (y (T, B, P), (h_T, c_T), cache).
    """
    x, p, masks = _check_layer(x, W_ih, W_hh, b_ih, b_hh, 4, lengths, W_hr=W_hr)
    H = p["W_hh"].shape[0] // 4
    p["w_peep"] = _check("w_peep", w_peep, (3, H), x.dtype, optional=True)
    B, P = x.shape[1], p["W_hh"].shape[1]
    states = (_state("h0", h0, B, P, x.dtype), _state("c0", c0, B, H, x.dtype))
    y, (h_T, c_T), cache = _run_forward((_lstm_step, _lstm_back), x, states, p, masks)
    return y, (h_T, c_T), cache


def lstm_backward(dy, dstate, cache):
    """Gradients of an `lstm_forward`; dstate = (dh_T, dc_T) or None.

    Returns dict(x, h0, c0, W_ih, W_hh, b_ih, b_hh, w_peep, W_hr).
    """
    dh_T, dc_T = (None, None) if dstate is None else dstate
    dx, (dh0, dc0), g = _run_backward(dy, [dh_T, dc_T], cache)
    return dict(x=dx, h0=dh0, c0=dc0, **g)


#: kernel cell (csrc/cells.h) -> (forward, backward, keyword arguments) of its reference
CELLS = {
    "rnn_tanh": (rnn_forward, rnn_backward, dict(nonlinearity="tanh")),
    "rnn_relu": (rnn_forward, rnn_backward, dict(nonlinearity="relu")),
    "gru": (gru_forward, gru_backward, dict(reset_after=True)),
    "gru_reset_before": (gru_forward, gru_backward, dict(reset_after=False)),
    "gru_simplified": (simplified_gru_forward, simplified_gru_backward, {}),
    "lstm": (lstm_forward, lstm_backward, {}),
    "mgu": (mgu_forward, mgu_backward, {}),
}
