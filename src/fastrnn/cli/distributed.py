"""The distributed side of `fastrnn train` under MPI (mpiexec/mpirun, or --distributed).

A rank whose setup fails (a missing, empty or garbage file, a bad option, a checkpoint it cannot
read) must not leave the others waiting for it forever, and ranks that read different data or
options must not train together. So `fastrnn train` initialises MPI first and does its whole
setup inside a `fastrnn.distributed.Setup` block, which every rank leaves through one agreement:
ready with the same facts (`expect_lm`, `expect_task`: options, vocabulary, labels, data,
checkpoint), or the whole job ends with one line from rank 0 (`setup_failed`). A command line
that does not even parse on one rank joins the same agreement (`parse_args`).
"""
import contextlib
import io
import sys

from .. import distributed as mpi

# the commands that never join a distributed run's agreement (see parse_args)
LOCAL_COMMANDS = ("sample", "export", "bench", "info", "predict", "evaluate")


def parse_args(parser, argv):
    """parser.parse_args(argv). Under an MPI launch, a `train` command line that does not parse
    still meets the other ranks at the end of their setup (which would otherwise wait for it
    forever), and only rank 0 shows argparse's message."""
    from .options import UsageError
    words = sys.argv[1:] if argv is None else list(argv)
    if not mpi.launched() or words[:1] and words[0] in LOCAL_COMMANDS:
        return parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit as e:
        code, lines = e.code, err.getvalue().strip().splitlines()
    try:
        block = train_setup(True)[0]
    except ImportError:
        block = mpi.Setup(None)     # no MPI here: no rank can be waiting for this one in it
    try:
        with block:
            error = UsageError(lines[-1] if lines else f"exited with status {code}")
            error.exit_code = code          # argparse's: 2, or 0 after --help
            raise error
    except UsageError:              # every rank failed alike: rank 0 shows argparse's message
        sys.stdout.write(out.getvalue())
        sys.stderr.write(err.getvalue())
        sys.exit(code)
    except mpi.SetupFailed as e:
        setup_failed(e)


def train_setup(distributed):
    """(the Setup block of `fastrnn train`, the Trainer's `distributed` argument): MPI's
    communicator when launched or asked for (--distributed), else a block that does nothing and
    False. MPI is initialised here, before anything can fail on one rank; ImportError (saying
    how to install mpi4py) when it is launched or asked for without mpi4py."""
    from ..train.distributed import communicator
    comm = communicator(True if distributed else None)
    return mpi.Setup(comm), (False if comm is None else comm)


def setup_failed(e):
    """Exit with a SetupFailed's status; rank 0 prints its one line."""
    if e.rank == 0:
        print(f"fastrnn: {e}", file=sys.stderr)
    sys.exit(e.code)


def expect_lm(options, vocab, text, checkpoint=None):
    """What every rank of a distributed language-model run must share: the options, the
    vocabulary, the corpus text, and the checkpoint it resumes."""
    if not mpi.expecting():
        return
    mpi.expect_options(options)
    mpi.expect("vocabulary", vocab.tokens, f"{len(vocab)} tokens")
    mpi.expect("corpus", text, f"{len(text)} characters")
    if checkpoint is not None:
        mpi.expect_file("checkpoint", checkpoint)


def expect_task(task, o, enc_train, enc_val, checkpoint=None):
    """What every rank of a distributed task run must share: the options, the fitted state
    (vocabularies, labels, normaliser), the encoded data, and the checkpoint it resumes."""
    if not mpi.expecting():
        return
    mpi.expect_options(o)
    for k, v in task.state.items():
        mpi.expect(k, v, f"{len(v['tokens'])} tokens" if isinstance(v, dict) and "tokens" in v else None)
    for name, enc in (("training data", enc_train), ("validation data", enc_val)):
        mpi.expect(name, enc and enc[:2], f"{len(enc[0]) if enc else 0} examples")
    if checkpoint is not None:
        mpi.expect_file("checkpoint", checkpoint)
