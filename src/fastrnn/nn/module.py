"""`Module`: the one parameter facade of fastrnn (layers, blocks and models all derive from it).

A module declares its own parameters (`add_parameter(name, shape)`) and its children (assigning
a Module to an attribute, as in torch: `self.head = Linear(H, V)`). The ROOT of a tree owns one
flat `params` buffer and one flat `grads` buffer; every module sees the contiguous span of its
subtree, its own parameters first, then its children's in the order they were attached. Whenever
a child is attached the root re-lays its storage (values kept) and hands each descendant its
slice, so nobody computes offsets. Names are PyTorch's dotted paths (`rnn.weight_ih_l0`).

As in torch: `named_parameters()` yields (name, array) pairs, `parameters()` the arrays,
`state_dict()` is an ordered dict of arrays that SHARE memory with the module, and
`load_state_dict(state, strict=True)` returns `IncompatibleKeys(missing_keys, unexpected_keys)`.
Every array handed out is a writable view: an edit through it (or through `params`, or a
`torch.from_numpy` of it) is seen by the next call, training or inference (see `storage`).

Mode, as in torch: a new module is in training mode; `eval()` turns dropout off, `train()` on,
for the whole subtree. Whether a forward keeps a tape for `backward` is the separate grad mode
(`fastrnn.no_grad()`, see `grad`). The older `train=` argument of the forwards, when given,
still decides both (True: dropout and a tape; False: neither), whatever the mode.

`param_version` is one counter shared by the whole tree; it changes whenever fastrnn writes the
parameters (`load_state_dict`, `rebind`, re-layout, every `fastrnn.optim` step, `invalidate()`).

Dtype adoption: a block built with dtype=None (the default of every nn block) takes the dtype of
the module being constructed in this thread -- a model's children need no `dtype=` of their own
-- and float32 when built alone. `add_module` of a child of another dtype: a child whose dtype
was not chosen (dtype=None) adopts the root's when that widens it (float32 -> float64, exact);
a dtype the caller chose, or a narrowing that would round (possibly trained) values, is refused
with a TypeError: convert explicitly (build the child in the model's dtype and load its
state_dict).
"""
import functools
import collections
import contextlib
import threading

import numpy as np

from ..checks import float_dtype as as_float_dtype
from ..checks import to_numpy
from . import grad as _grad
from .storage import Storage

_limits = threading.local()
_building = threading.local()       # .dtype: the dtype of the module being constructed here


def _restores_dtype(init):
    """Wrap a Module subclass's __init__: children built while the outermost __init__ of an
    object runs take its dtype (set by Module.__init__); the outer context comes back after."""
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if "_constructing" in self.__dict__:        # super().__init__ of the same object
            return init(self, *args, **kwargs)
        self.__dict__["_constructing"] = True
        outer = getattr(_building, "dtype", None)
        try:
            init(self, *args, **kwargs)
        finally:
            _building.dtype = outer
            self.__dict__.pop("_constructing", None)
    __init__._restores_dtype = True
    return __init__

IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = "What `load_state_dict` returns, as torch's `_IncompatibleKeys`."


@contextlib.contextmanager
def parameter_budget(n):
    """Within this block, building a module tree of more than `n` parameters raises ValueError
    before allocating (used by `fastrnn.load`, whose files say how many values they hold)."""
    old = getattr(_limits, "n", None)
    _limits.n = n
    try:
        yield
    finally:
        _limits.n = old


class Module:
    """Base of every block and model; see the module docstring.

    Subclasses call `super().__init__(dtype)` first, declare parameters with `add_parameter`,
    attach children by attribute assignment, and list their RNG attributes in `_rng_attrs`
    (their states are saved by `rng_state` for exact resume).
    """
    _rng_attrs = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_restores_dtype", False):
            cls.__init__ = _restores_dtype(init)

    def __init__(self, dtype=None):
        d = self.__dict__       # plain dict writes: __setattr__ below needs these to exist
        d["_dtype_chosen"] = dtype is not None          # None: adopt (see the module docstring)
        d["dtype"] = as_float_dtype(getattr(_building, "dtype", None) or "float32" if dtype is None else dtype)
        _building.dtype = d["dtype"]                    # for the children this __init__ builds
        d["_param_specs"], d["_children"], d["_parent"] = [], {}, None
        d["_storage"], d["training"] = Storage(), True
        d["_views"], d["_grad_views"] = {}, {}
        d["_params"] = np.zeros(0, d["dtype"])      # internal: `params` is the public view
        d["grads"] = np.zeros(0, d["dtype"])

    # ---- declaring the tree ------------------------------------------------------------------
    def add_parameter(self, name, shape):
        """Declare a parameter (zeros; the caller initialises it); returns its view."""
        return self.add_parameters([(name, shape)])[0]

    def add_parameters(self, specs):
        """Declare several (name, shape) parameters with one re-layout; returns their views."""
        specs = [(name, tuple(int(s) for s in shape)) for name, shape in specs]
        names = [n for n, _ in specs]
        for name in names:
            if not isinstance(name, str) or not name or "." in name or name in self._views \
                    or name in self._children or names.count(name) > 1:
                raise ValueError(f"name: {name!r} is taken, repeated or not a plain name")
        self._param_specs.extend(specs)
        self._root()._layout()
        return [self._views[n] for n in names]

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self.add_module(name, value)
        else:
            object.__setattr__(self, name, value)

    def add_module(self, name, module):
        """Attach `module` as child `name` (its parameters keep their values)."""
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a fastrnn Module, got {type(module).__name__}")
        if module._parent is not None or module is self._root():
            raise ValueError(f"module: {type(module).__name__} already belongs to a model")
        if name in self._views or name in self._children:
            raise ValueError(f"name: {name!r} is taken")
        if module.dtype != self.dtype:
            module._adopt_dtype(name, self.dtype)
        self._children[name] = module
        object.__setattr__(self, name, module)
        module.__dict__["_parent"] = self
        self._root()._layout()

    def _adopt_dtype(self, name, dtype):
        """Convert this (unattached) subtree to `dtype` when adoption allows it (see the module
        docstring), else TypeError naming the child."""
        refuse = self._dtype_chosen or dtype.itemsize < self.dtype.itemsize or \
            any(m.__dict__.get("_int8") is not None for _, m in self.modules())
        if refuse:
            raise TypeError(f"module: {name!r} is {self.dtype.name}, this model {dtype.name} (a chosen "
                            f"dtype, a narrowing or int8 weights are not converted silently)")
        for _, m in self.modules():
            m.__dict__["dtype"] = dtype
            m._dtype_changed()
        # the values follow when the root re-lays its storage (a widening copy: exact)

    def _dtype_changed(self):
        """Hook: this module's dtype changed (subclasses rebuild dtype-bound caches here)."""

    def _root(self):
        m = self
        while m._parent is not None:
            m = m._parent
        return m

    def modules(self, prefix=""):
        """[(dotted path, module)] of this module and every descendant, in declaration order."""
        out = [(prefix, self)]
        for name, child in self._children.items():
            out += child.modules(f"{prefix}.{name}" if prefix else name)
        return out

    def _size(self):
        return sum(int(np.prod(s)) for _, s in self._param_specs) + sum(c._size() for c in self._children.values())

    # ---- storage ---------------------------------------------------------------------------
    def _layout(self):
        """(Root) allocate storage for the whole tree, keep the values, hand out the slices."""
        n = self._size()
        limit = getattr(_limits, "n", None)
        if limit is not None and n > limit:
            raise ValueError(f"model config: asks for more than {limit} parameters "
                             f"({type(self).__name__} reached {n})")
        # the old views keep the old buffers alive until their values are copied over
        values, grads = self._named("_views"), self._named("_grad_views")
        params = np.zeros(n, self.dtype)
        self._storage.bind(params)
        self._bind(params, np.zeros(n, self.dtype), self._storage)
        for which, saved in (("_views", values), ("_grad_views", grads)):
            now = self._named(which)
            for k, v in saved.items():
                now[k][...] = v
        self.invalidate()

    def _bind(self, params, grads, storage):
        """Point this subtree at the 1-D `params`/`grads` (its span) and the tree's Storage."""
        d = self.__dict__
        d["_params"], d["grads"], d["_storage"] = params, grads, storage
        d["_views"], d["_grad_views"] = {}, {}
        offset = 0
        for name, shape in self._param_specs:
            n = int(np.prod(shape))
            self._views[name] = params[offset:offset + n].reshape(shape)
            self._grad_views[name] = grads[offset:offset + n].reshape(shape)
            offset += n
        for child in self._children.values():
            n = child._size()
            child._bind(params[offset:offset + n], grads[offset:offset + n], storage)
            offset += n
        self._storage_changed()

    def _storage_changed(self):
        """Hook: the views moved (subclasses drop caches of views here)."""

    def rebind(self, params, grads, copy=True):
        """(Root only) move all storage into the given 1-D buffers, e.g. slices of a bigger one.

        With copy=True the current values (parameters and gradients) are copied over first.
        """
        if self._parent is not None:
            raise ValueError("rebind: this module is part of a model; rebind the model instead")
        for arg, buf in (("params", params), ("grads", grads)):
            if not isinstance(buf, np.ndarray) or buf.ndim != 1 or buf.shape[0] != self._params.size \
                    or buf.dtype != self.dtype or not buf.flags.c_contiguous:
                raise ValueError(f"{arg}: expected a 1-D C-contiguous {self.dtype.name} array of "
                                 f"{self._params.size} elements, got {getattr(buf, 'dtype', type(buf))}"
                                 f" {getattr(buf, 'shape', '')}")
        if copy:
            params[...] = self._params
            grads[...] = self.grads
        self._storage.bind(params, external=True)       # the caller holds it: always checked
        self._bind(params, grads, self._storage)
        self.invalidate()

    @property
    def params(self):
        """This subtree's parameters as one writable 1-D view (in-place edits are seen by the
        next call; see the module docstring)."""
        return self._storage.view(self._params)

    @property
    def param_version(self):
        """An int that changes whenever fastrnn writes this tree's parameters (see invalidate)."""
        return self._storage.version

    def invalidate(self):
        """Declare the parameters changed (not needed after edits through the public views, which
        are detected; cheaper for code that writes `params` at every step, as the optimisers)."""
        self._storage.bump()

    @property
    def precision(self):
        """The products' precision of this tree's recurrent layers and output head: 'float32',
        'bf16' or 'mixed'; setting it sets all of theirs (bf16: float32 models only;
        `fastrnn.precision`)."""
        from ..precision import precision_of
        return precision_of(self)

    @precision.setter
    def precision(self, value):
        from ..precision import set_precision
        set_precision(self, value)

    # ---- names -------------------------------------------------------------------------------
    def _named(self, which):
        out = dict(getattr(self, which))
        for cname, child in self._children.items():
            for k, v in child._named(which).items():
                out[f"{cname}.{k}" if cname else k] = v
        return {self._export_name(k): v for k, v in out.items()}

    def _export_name(self, name):
        """Hook: the public name of a parameter of this subtree (identity but for cells)."""
        return name

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield (dotted name, writable view) pairs in declaration order, as torch (its names;
        recurse=False: this module's own parameters only; fastrnn never shares a parameter, so
        remove_duplicate changes nothing)."""
        own = self._named("_views") if recurse else self._own_views()
        for name, view in own.items():
            yield (f"{prefix}.{name}" if prefix else name), self._storage.view(view)

    _inline_children = ()       # children whose parameters count as this module's own (cells)

    def _own_views(self):
        out = dict(self._views)
        for cname in self._inline_children:
            out.update({f"{cname}.{k}": v for k, v in self._children[cname]._named("_views").items()})
        return {self._export_name(k): v for k, v in out.items()}

    def parameters(self, recurse=True):
        """Yield the parameter views in declaration order (as named_parameters)."""
        for _, view in self.named_parameters(recurse=recurse):
            yield view

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield (name, array) of non-parameter state, as torch: none (fastrnn keeps no buffers;
        dropout RNG states are in `rng_state`)."""
        return iter(())

    def buffers(self, recurse=True):
        """Yield the buffers (none; see named_buffers)."""
        return iter(())

    def named_modules(self, prefix=""):
        """Yield (dotted path, module) of this module and every descendant, as torch."""
        yield from self.modules(prefix)

    def named_children(self):
        """Yield (name, child) of the direct children."""
        yield from self._children.items()

    def children(self):
        """Yield the direct children."""
        yield from self._children.values()

    def named_grads(self):
        """{dotted name: view into `grads`} in declaration order (a dict; torch keeps `.grad`)."""
        return self._named("_grad_views")

    def zero_grad(self):
        """Set every gradient of this subtree to zero (backward passes accumulate)."""
        self.grads[...] = 0

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An ordered {dotted name: array} that shares memory with the module, as torch's.

        The arrays are NumPy; torch's own `load_state_dict` wants tensors:
        `torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})`.
        Take `.copy()` of each array for a snapshot that later training does not change.
        """
        out = collections.OrderedDict() if destination is None else destination
        for name, view in self.named_parameters(prefix):
            out[name] = view
        return out

    def load_state_dict(self, state, strict=True):
        """Copy parameters in by name from NumPy arrays or torch tensors; all or nothing.

        Returns `IncompatibleKeys(missing_keys, unexpected_keys)` as torch does (both empty
        unless strict=False). Raises KeyError naming missing/unexpected names (strict=True),
        ValueError naming a wrong shape and TypeError for a non-real dtype. Everything is checked
        before anything is copied, so a failed load changes nothing. Values are converted to the
        module's dtype.
        """
        if not hasattr(state, "items"):
            raise TypeError(f"state: expected a mapping of names to arrays, got {type(state).__name__}")
        own = self._named("_views")
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict: missing {missing}, unexpected {unexpected}")
        values = {}
        for name in own:
            if name not in state:
                continue
            value = to_numpy(state[name])
            if value.dtype.kind not in "fiu":
                raise TypeError(f"state_dict[{name!r}]: expected a real (float or integer) array, "
                                f"got {value.dtype.name}")
            if value.shape != own[name].shape:
                raise ValueError(f"state_dict[{name!r}]: expected shape {own[name].shape}, got {value.shape}")
            values[name] = value
        for name, value in values.items():
            own[name][...] = value
        self.invalidate()
        return IncompatibleKeys(missing, unexpected)

    # ---- RNGs and mode ---------------------------------------------------------------------------
    def _rngs(self):
        return {(f"{p}.{a}" if p else a): getattr(m, a) for p, m in self.modules() for a in m._rng_attrs}

    def rng_state(self):
        """{path: bit-generator state} of every RNG in the tree (JSON-serialisable), for exact resume."""
        return {k: r.bit_generator.state for k, r in self._rngs().items()}

    def set_rng_state(self, state):
        """Restore the states from `rng_state` (checked: the same RNGs must be present)."""
        rngs = self._rngs()
        if not isinstance(state, dict) or set(state) != set(rngs):
            raise ValueError(f"state: expected RNG states for {sorted(rngs)}, got "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        for k, r in rngs.items():
            r.bit_generator.state = state[k]

    def __repr__(self):
        children = ", ".join(f"{k}={v!r}" for k, v in self._children.items())
        return f"{type(self).__name__}({children}{', ' if children else ''}parameters={self._params.size})"

    def train(self, mode=True):
        """Set training mode (dropout on; mode=False: off) for the whole subtree; returns self."""
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"mode: expected a bool, got {mode!r}")
        for _, m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode (no dropout) for the whole subtree; returns self. A forward in
        eval mode still keeps its tape for `backward` unless run under `fastrnn.no_grad()`."""
        return self.train(False)

    def _mode(self, train):
        """(dropout on, keep a tape) of a forward given its `train` argument: None (the default)
        as torch -- dropout from `self.training`, the tape from the grad mode; an explicit
        True/False (the older API) decides both."""
        if train is None:
            return self.training, _grad.is_grad_enabled()
        return bool(train), bool(train)


Module.__init__ = _restores_dtype(Module.__init__)     # Module("float64") built directly, too
