"""The kernels' operands of a recurrent layer: views of each layer's and direction's weights
and gradients (cached: building them costs more than a batch-1 step), the stack's parameter
lists, and the packed recurrent weights of the inference kernels (`fastrnn._packs`).

`_Recurrent` (fastrnn.nn.layers) inherits these methods; they read its sizes, cell, storage
(`_flat`), `_weight_cache` and `_packs`.
"""
from .._packs import sources as _packs_sources


class LayerOperands:
    """Weight views and packed weights of `_Recurrent` (a mixin)."""

    def _weights(self, k, d):
        """Kernel arguments of layer k, direction d: (W_ih, W_hh, b_ih, b_hh), {w_peep, W_hr}, grads.

        `grads` is keyed as the kernel's `grads` argument. Cached, since building the views costs
        more than a batch-1 `step`; the views stay valid while the storage does and `rebind`
        clears the cache.
        """
        cached = self._weight_cache.get((k, d))
        if cached is None:
            cached = self._weight_cache[(k, d)] = self._weight_views(k, d)
        return cached

    def _weight_views(self, k, d):
        sfx, H = self._suffixes(k)[d], self.hidden_size
        kernel_names = [("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"),
                        ("b_hh", "bias_hh"), ("W_hr", "weight_hr")]
        p, g = self._flat._named("_views"), self._flat.named_grads()
        w = {kn: p.get(tn + sfx) for kn, tn in kernel_names}
        grads = {kn: g[tn + sfx] for kn, tn in kernel_names if tn + sfx in g}
        w["w_peep"] = None
        if self.peephole:   # the kernel takes [ci, cf, co] as one (3H,) array: they are adjacent
            w["w_peep"] = _span(self._flat._params, p[f"weight_ci{sfx}"], 3 * H)
            grads["w_peep"] = _span(self._flat.grads, g[f"weight_ci{sfx}"], 3 * H)
        args = (w["W_ih"], w["W_hh"], w["b_ih"], w["b_hh"])
        return args, dict(w_peep=w["w_peep"], W_hr=w["W_hr"]), grads

    def _stack_params(self, input_projected):
        """The kernels' (W_ih, W_hh, b_ih, b_hh, w_peep, W_hr) of every layer and direction (layer
        0's W_ih None when the input is already projected)."""
        params = []
        for k in range(self.num_layers):
            for d in range(self.D):
                args, kw, _ = self._weights(k, d)
                if k == 0 and input_projected:
                    args = (None,) + args[1:]
                params.append(args + (kw["w_peep"], kw["W_hr"]))
        return params

    def _packed_weights(self, k, d):
        """W_hh (and W_hr) of layer k, direction d packed for the float32 engine's forward (None
        where the kernels run on BLAS), kept across calls (`fastrnn._packs`); the pack also holds
        W_ih^T. A quantized layer's are its int8 weights (fastrnn.quant)."""
        if self.__dict__.get("_int8") is not None:
            from .. import quant
            return quant.packed(self, k, d)
        args, kw, _ = self._weights(k, d)
        return self._packs.get((k, d, self.precision), self.param_version, self.cell, args[1], kw["W_hr"],
                               self.peephole, W_ih=args[0])

    def _recurrent_weights(self, key):
        """The weights a pack of `key` (layer, direction, precision) was made from, what
        `_packs.check` compares against its copy: W_hh, W_hr, W_ih."""
        args, kw, _ = self._weights(*key[:2])
        return _packs_sources(key[2], args[1], kw["W_hr"], args[0])

    def step_operands(self):
        """Per layer, what one inference step of direction 0 needs, as the native generation loop
        (`fastrnn._kernels.Generator`) takes it: (W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, packed)."""
        if self.bidirectional:
            raise ValueError("step_operands: a bidirectional layer cannot run one step at a time")
        self._packs.check(self._storage, self._recurrent_weights)     # never a stale pack
        out = []
        for k in range(self.num_layers):
            (W_ih, W_hh, b_ih, b_hh), kw, _ = self._weights(k, 0)
            out.append((W_ih, W_hh, b_ih, b_hh, kw["w_peep"], kw["W_hr"], self._packed_weights(k, 0)))
        return out


def _span(buf, first, n):
    """The n elements of the 1-D `buf` starting where its view `first` starts (adjacent parameters
    as one array, e.g. the three peephole vectors)."""
    start = (first.__array_interface__["data"][0] - buf.__array_interface__["data"][0]) // buf.itemsize
    return buf[start:start + n]
