"""Model registry: `fastrnn.save/load` rebuild any registered model from its type name and config.

A model class is registered with the `@register` decorator; it must keep its constructor
arguments as a JSON-serialisable `self.config` dict so that `cls(**config)` rebuilds it.
"""
from .. import checks
from ..nn.module import parameter_budget

MODELS = {}


def register(cls):
    """Class decorator: make `cls` loadable by `fastrnn.load` under its class name."""
    if cls.__name__ in MODELS and MODELS[cls.__name__] is not cls:
        raise ValueError(f"register: a different model named {cls.__name__!r} is registered")
    MODELS[cls.__name__] = cls
    return cls


def build(type_name, config, max_parameters=None):
    """A new `type_name` model from `config`.

    max_parameters (e.g. the number of parameter values a checkpoint holds) bounds what may be
    allocated: a config asking for more (or with any integer setting above it) raises ValueError
    before the allocation, so a small file cannot make `load` build a huge model.
    """
    cls = MODELS.get(type_name)
    if cls is None:
        raise ValueError(f"model type: expected one of {sorted(MODELS)}, got {type_name!r}")
    if not isinstance(config, dict):
        raise ValueError(f"model config: expected a dict, got {type(config).__name__}")
    if max_parameters is not None:
        for key, value in config.items():
            if key != "seed" and checks.is_integer(value) \
                    and value > max_parameters:
                raise ValueError(f"model config: {key}={value} exceeds the {max_parameters} "
                                 f"parameter values present")
    with parameter_budget(max_parameters):
        return cls(**config)
