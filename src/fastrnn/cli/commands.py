"""The `fastrnn` subcommands that use a finished checkpoint or the machine: sample, export, plot,
bench, info (train: run.py; predict and evaluate: tasks.py; quantize: quantize.py)."""
import os
import sys

from ..cpu_features import cpu_level
from .checkpoints import load_checkpoint as _load_checkpoint
from .checkpoints import set_precision
from .options import UsageError


def sample(args):
    """`fastrnn sample`: text from a language-model checkpoint (sampled, streamed or by beam search),
    or from a ConditionedGenerator's with --condition (sampled or streamed, every flag alike)."""
    from ..beam import MAX_BEAM, beam_search
    from ..sample import generate, stream
    if args.beam is not None:
        if args.beam > MAX_BEAM:
            raise UsageError(f"--beam: expected an integer in [1, {MAX_BEAM}], got {args.beam}")
        mixed = [flag for flag, on in (("--stream", args.stream), ("--argmax", args.argmax),
                                       ("--temperature", args.temperature != 1.0),
                                       ("--top-k", args.top_k is not None),
                                       ("--top-p", args.top_p is not None),
                                       ("--condition", args.condition is not None)) if on]
        if mixed:
            raise UsageError(f"--beam: cannot be combined with {', '.join(mixed)} (beam search "
                             f"finds the most likely text: it neither samples nor streams)")
    path, model, vocab, extra = _load_checkpoint(args.checkpoint)
    set_precision(model, extra["meta"], args)
    condition = None
    if args.condition is not None or type(model).__name__ == "ConditionedGenerator":
        # every other flag as for a language model: the same loop, from the condition's state
        from .tasks import parsed_condition
        condition = parsed_condition(model, vocab, extra["meta"], args)
    elif vocab is None or not hasattr(model, "step"):
        sys.exit(f"fastrnn: {path}: holds a {type(model).__name__} without a vocabulary; "
                 f"`fastrnn sample` needs a language-model checkpoint")
    try:
        if args.beam is not None:        # (refused above with --condition)
            print(beam_search(model, vocab, prime=args.prime, length=args.length, beam=args.beam,
                              stop=args.stop))
            return
        kw = dict(prime=args.prime, length=args.length, temperature=args.temperature, top_k=args.top_k,
                  top_p=args.top_p, argmax=args.argmax, stop=args.stop, seed=args.seed,
                  condition=condition)
        if not args.stream:
            # one native call per 1024 tokens (stop string included), not one per token as
            # stream's pieces; the same text (stream's docstring)
            print(generate(model, vocab, **kw))
            return
        pieces = stream(model, vocab, **kw)
        print(args.prime, end="", flush=True)
        for piece in pieces:          # each token as it is drawn; the same text as without --stream
            print(piece, end="", flush=True)
        print()
    except BrokenPipeError:           # the reader went away (`| head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())    # no error at exit's flush
        sys.exit(1)
    except ValueError as e:
        sys.exit(f"fastrnn: {e}")


def export(args):
    """`fastrnn export`: a checkpoint as an ONNX model."""
    from ..export import export_onnx
    if os.path.isdir(args.output):
        sys.exit(f"fastrnn: {args.output}: is a directory, expected the .onnx file to write")
    _, model, _, _ = _load_checkpoint(args.checkpoint)
    try:
        export_onnx(model, args.output, opset=args.opset, lengths=args.lengths,
                    initial_state=False if args.no_initial_state else None)
    except (OSError, ValueError, TypeError, ImportError) as e:
        sys.exit(f"fastrnn: {e}")
    print(f"fastrnn: wrote {args.output} ({model})")


def plot(args):
    """`fastrnn plot`: training curves from runs' log.jsonl."""
    from .plot import plot as draw
    return draw(args)


def bench(args):
    """`fastrnn bench`: the benchmark suite."""
    from ..benchmarks import main as bench_main
    return bench_main(args)


def info(args):
    """`fastrnn info`: versions, BLAS, threads, CPU features, kernel paths."""
    from ..distributed import describe, launch_rank, launched
    if launched() and launch_rank() != 0:
        describe()          # may be collective (the ranks per host); rank 0 prints
        return
    import platform

    import numpy
    import scipy

    from .._version import __version__
    print(f"fastrnn {__version__}  (Python {platform.python_version()}, {platform.machine()})")
    print(f"numpy {numpy.__version__}, scipy {scipy.__version__}")
    try:
        import torch
        print(f"torch {torch.__version__} (optional, for parity tests and benchmarks)")
    except ImportError:
        print("torch: not installed (optional)")
    blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    print(f"BLAS (via scipy.linalg.cython_blas): {blas.get('name')} {blas.get('version', '')}".rstrip())
    print(f"CPUs: {os.cpu_count()}; BLAS threads: OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', '(unset: one per CPU)')}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"note: {var}={os.environ[var]} is set (forces an OpenBLAS kernel choice)")
    print(f"CPU features used by the kernels' activation loops: {cpu_level()}")
    from .._kernels import engine_info, supported_isas
    e = engine_info()
    if e["path"] == "engine":
        print(f"float32 kernels: fastrnn's engine, {e['isa']} micro-kernels (supported here: "
              f"{', '.join(supported_isas())}), {e['threads']} thread(s) of its own team")
    else:
        print("float32 kernels: SciPy's BLAS (FASTRNN_KERNELS=blas, FASTRNN_ISA=none or a set this "
              "CPU lacks, or no AVX2/AVX-512 here)")
    print("float64 kernels: SciPy's BLAS")
    from .._kernels import int8_isa, int8_isas
    print(f"int8 inference (fastrnn quantize): {int8_isa()} path (this CPU runs {', '.join(int8_isas())})")
    from .._kernels import bf16_info
    b = bf16_info()
    print(f"bf16 kernels (precision='bf16'): {b['kernel']} (supported here: {', '.join(b['supported'])}; "
          f"every one gives the emulation's bits)")
    from .._kernels import amx_info
    a = amx_info()
    have = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in a["cpu"].items())
    note = "" if a["mode"] == "off" else "; bf16 on tiles sums in the SDM's order: float32 rounding apart"
    print(f"AMX tiles (bf16 and int8 products of >= 16 rows): {a['mode']} ({have}{note})")
    print(describe())
