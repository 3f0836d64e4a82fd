"""`fastrnn quantize CHECKPOINT OUT [--eval FILE]`: write an int8 copy of a checkpoint
(fastrnn.quant) and report what it costs: the file sizes, and with --eval the float and int8
models side by side on held-out data -- a language model's loss (nats/token) and perplexity on a
text file, a task model's metrics on a labelled file in its task's format."""
import os
import sys

import numpy as np

from ..io import RESERVED_META


def add_parser(sub, positive):
    """The `quantize` subcommand (positive: the CLI's positive-integer type)."""
    q = sub.add_parser("quantize", help="write an int8 copy of a checkpoint for inference, with an "
                       "accuracy report")
    q.add_argument("checkpoint", help="a .npz checkpoint, or a training directory (uses best.npz)")
    q.add_argument("output", help="the quantized .npz to write")
    q.add_argument("--eval", metavar="FILE", help="held-out data: text for a language model, a "
                   "labelled file in the task's format for a task checkpoint")
    q.add_argument("--threads", type=positive)
    q.add_argument("--activations", choices=("auto", "static", "dynamic"), default="auto",
                   help="rows of h_{t-1}: a fixed scale where the cell keeps |h| <= 1 (auto, static) "
                   "or one scale per row found at run time (dynamic); see fastrnn.quantize")


def _lm_loss(model, vocab, path, seq=128):
    """Mean cross-entropy (nats/token) of a language model over the text file `path`."""
    try:
        with open(path, encoding="utf-8") as f:
            ids = vocab.encode(f.read())
    except (OSError, UnicodeDecodeError) as e:
        sys.exit(f"fastrnn: --eval: cannot read {path!r}: {e}")
    if len(ids) < 2:
        sys.exit(f"fastrnn: --eval: {path}: fewer than two tokens")
    total, count, state = 0.0, 0, None
    for t0 in range(0, len(ids) - 1, seq):     # one sequence, the state carried between chunks
        x, y = ids[t0:t0 + seq], ids[t0 + 1:t0 + seq + 1]
        x = x[:len(y)]
        loss, state = model.forward(x[None], y[None], state, train=False)
        total, count = total + float(loss) * len(y), count + len(y)
    return total / count


def _report(float_model, int8_model, vocab, meta, args):
    """[(name, float value, int8 value)] on the --eval file."""
    if meta.get("task") is None:
        if vocab is None or not hasattr(float_model, "step"):
            sys.exit(f"fastrnn: --eval: {args.checkpoint} holds a {type(float_model).__name__} without "
                     f"a task or vocabulary; nothing to evaluate it with")
        a, b = _lm_loss(float_model, vocab, args.eval), _lm_loss(int8_model, vocab, args.eval)
        return [("loss", a, b), ("perplexity", float(np.exp(a)), float(np.exp(b)))]
    from .tasks import read_examples
    from ..tasks import TASKS, FormatError
    try:
        task = TASKS[meta["task"]](meta["task_options"], meta["task_state"])
    except (KeyError, TypeError, ValueError) as e:
        sys.exit(f"fastrnn: {args.checkpoint}: bad task metadata ({e})")
    errors = []
    data = read_examples(task, args.eval, labelled=True, errors=errors)
    try:
        encoded = task.encode(data, args.eval, errors)
    except FormatError as e:
        sys.exit(f"fastrnn: {e}")
    if not len(encoded[0]):
        sys.exit(f"fastrnn: --eval: {args.eval}: no examples to evaluate")
    a, b = task.metrics(float_model, encoded), task.metrics(int8_model, encoded)
    return [(name, a[name], b.get(name)) for name in a]


def _float_size(model, vocab, meta, arrays, output):
    """Bytes of the float model saved as the int8 one is (no optimizer or training state), measured by writing
    it next to `output` and removing it."""
    import tempfile

    from ..io import save
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(output)), prefix=".float-size-", suffix=".npz")
    os.close(fd)
    try:
        save(tmp, model, vocab, arrays=arrays, **meta)
        return os.path.getsize(tmp)
    finally:
        os.unlink(tmp)


def quantize(args):
    """`fastrnn quantize`: see the module docstring."""
    from .checkpoints import load_checkpoint as _load_checkpoint
    from ..io import save
    from ..quant import quantize as quantize_model
    path, model, vocab, extra = _load_checkpoint(args.checkpoint)
    _, int8_model, _, _ = _load_checkpoint(args.checkpoint)
    try:
        quantize_model(int8_model, activations=args.activations)
    except (TypeError, ValueError) as e:
        sys.exit(f"fastrnn: cannot quantize {path}: {e}")
    meta = {k: v for k, v in extra["meta"].items() if k not in RESERVED_META}
    # the callbacks' arrays only resume training (the carried stream state, early stopping's
    # float copy of the best parameters): an inference copy keeps none of them, as it keeps no
    # optimizer state; the float file it is compared with is written the same way
    arrays = {}
    try:
        save(args.output, int8_model, vocab, arrays=arrays, **meta)
    except (OSError, ValueError, TypeError) as e:
        sys.exit(f"fastrnn: cannot write {args.output}: {e}")
    after = os.path.getsize(args.output)
    before = _float_size(model, vocab, meta, arrays, args.output)
    print(f"fastrnn: wrote {args.output} (int8 recurrent and head weights)")
    print("bytes\tfloat32\tint8\tratio")
    print(f"model file\t{before}\t{after}\t{before / after:.2f}")
    if args.eval:
        print("metric\tfloat32\tint8")
        for name, a, b in _report(model, int8_model, vocab, extra["meta"], args):
            print(f"{name}\t{a:.6g}\t{'n/a' if b is None else f'{b:.6g}'}")
    return 0
