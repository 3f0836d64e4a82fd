"""MPI plumbing for data-parallel training: launch detection, the communicator, kernel threads
per rank, the library's name, ending the whole job when one rank fails, and the ranks'
agreement at the end of setup (`Setup`: every rank ready with the same facts, or none trains).

mpi4py is optional (`pip install "fastrnn[mpi]"` brings mpi4py and a self-contained MPICH with
`mpiexec`); nothing here imports it until a distributed run asks for it, so fastrnn works as
before without it. The training side (sharding, the gradient all-reduce) is
`fastrnn.train.distributed`.
"""
import hashlib
import os
import sys
import time
import traceback

import numpy as np

INSTALL_HINT = ('install it with: pip install "fastrnn[mpi]" (mpi4py and MPICH), or build mpi4py '
                'against your cluster\'s MPI (pip install --no-binary mpi4py mpi4py)')

# what launchers put in each rank's environment: world size, and ranks on this host
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")   # MPICH/Intel, Open MPI, MVAPICH
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
_LOCAL_SIZE_VARS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")


def _env_int(names, environ):
    for name in names:
        try:
            return int(environ[name])
        except (KeyError, ValueError):
            continue
    return None


def launch_size(environ=None):
    """The world size an MPI launcher (mpiexec/mpirun/srun) announced in the environment, else 1."""
    return _env_int(_SIZE_VARS, os.environ if environ is None else environ) or 1


def launch_rank(environ=None):
    """This process's rank as the launcher announced it (0 without one)."""
    return _env_int(_RANK_VARS, os.environ if environ is None else environ) or 0


def launched(environ=None):
    """True when this process is one of several MPI ranks: a launcher's variables say so, or
    mpi4py is already imported with MPI initialised (e.g. the caller set MPI up itself)."""
    if launch_size(environ) > 1:
        return True
    mpi = sys.modules.get("mpi4py.MPI")
    return bool(mpi is not None and mpi.Is_initialized() and mpi.COMM_WORLD.Get_size() > 1)


def import_mpi():
    """The `mpi4py.MPI` module (initialises MPI); ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"distributed training needs mpi4py ({e}); {INSTALL_HINT}") from None
    return MPI


def world():
    """MPI.COMM_WORLD (importing mpi4py; see `import_mpi`)."""
    return import_mpi().COMM_WORLD


def library_version():
    """First line of the MPI library's version string, e.g. 'MPICH Version: 5.0.2'."""
    text = import_mpi().Get_library_version().strip()
    return " ".join(text.splitlines()[0].split()) if text else "unknown MPI library"


def local_ranks(comm=None, environ=None):
    """Ranks on this host: the launcher's variable, else a shared-memory split of `comm`; None
    when neither tells."""
    n = _env_int(_LOCAL_SIZE_VARS, os.environ if environ is None else environ)
    if n is None and comm is not None:
        MPI = import_mpi()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        n = node.Get_size()
        node.Free()
    return None if n is None else max(1, n)


def default_threads(comm=None, environ=None):
    """Kernel threads per rank: the CPUs this process may use, shared by the ranks on its host
    (None when the ranks per host are unknown: no launcher variable and no `comm`)."""
    ranks = local_ranks(comm, environ)
    if ranks is None:
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:          # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // ranks)


def abort(comm, message, code=1, detail=""):
    """Print `message` naming this rank (then `detail`, e.g. a traceback), and end every rank of
    `comm` (MPI_Abort): the others may be waiting in a collective this rank will never join."""
    rank, size = comm.Get_rank(), comm.Get_size()
    try:
        sys.stderr.write(f"fastrnn: rank {rank} of {size}: {message}; aborting the job\n{detail}")
        sys.stderr.flush()
        time.sleep(0.5)     # let the launcher forward the message before it kills the job
    finally:
        comm.Abort(code)
        os._exit(code)      # MPICH's MPI_Abort may return to the caller: never run on after it


def describe():
    """One line for `fastrnn info`: ranks and MPI library, or why MPI is not in use."""
    if launched():
        comm = world()
        return (f"MPI: {comm.Get_size()} ranks ({library_version()}); "
                f"{default_threads(comm)} kernel thread(s) per rank by default")
    from importlib import metadata
    versions = []
    for name in ("mpi4py", "mpich"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    if not any(v.startswith("mpi4py") for v in versions):
        return f"MPI: not available (mpi4py is not installed; {INSTALL_HINT})"
    return f"MPI: {', '.join(versions)} installed; not launched (use mpiexec -n K fastrnn train ...)"


# ---- the end of setup: every rank ready and agreeing, or the whole job stops --------------------

class SetupFailed(RuntimeError):
    """Raised on every rank when a rank's setup failed or the ranks' facts differ. str(): one
    line naming the rank and what failed or differs (the CLI prints it on rank 0, `rank`);
    `code`: the exit status of the whole job; `unanimous`: every rank failed with this error."""

    def __init__(self, message, code, rank, unanimous=False):
        super().__init__(message)
        self.code, self.rank, self.unanimous = code, rank, unanimous


_current = None         # the Setup block this process is in


class Setup:
    """A distributed run's setup that no rank can fail alone (a context manager).

    Every rank enters it before anything can fail (reading files, building the vocabulary, the
    model, the Trainer) and leaves it through ONE collective, `agree`: each rank brings either
    its error or its facts (`expect`: digests of what must be the same on every rank). If any
    rank failed, or a rank's facts differ from rank 0's, every rank raises `SetupFailed` with the
    same one-line message; when every rank failed alike, rank 0 re-raises its own error instead
    (it says the same thing) and the others raise `SetupFailed`. No collective may run inside
    the block: a Trainer built in it starts its collectives (the broadcast of rank 0's weights)
    in `fit`. `comm` None or of size 1: the block does nothing."""

    def __init__(self, comm):
        self.comm = comm if comm is not None and comm.Get_size() > 1 else None
        self.facts = {}

    def __enter__(self):
        global _current
        self._outer, _current = _current, self
        return self

    def __exit__(self, kind, error, tb):
        global _current
        _current = self._outer
        if self.comm is None or isinstance(error, SetupFailed):
            return False
        if error is None:
            agree(self.comm, self.facts)
            return False
        text, code, unexpected = _failure(error)
        try:
            agree(self.comm, self.facts, (text, code))
        except SetupFailed as e:
            if e.rank == 0 and e.unanimous:
                return False            # rank 0's own error says it, as in one process
            if unexpected and not e.unanimous:      # a bug on this rank alone: keep its traceback
                traceback.print_exception(kind, error, tb)
            raise e from None


def current_setup(comm):
    """The Setup block this process is in for `comm`, else None."""
    s = _current
    return s if s is not None and s.comm is not None and s.comm == comm else None


def expecting():
    """True inside a distributed Setup block (where `expect` records facts)."""
    return _current is not None and _current.comm is not None


def expect(name, value, size=None):
    """In a distributed Setup block: every rank must have the same `value` under `name` (any
    nesting of arrays, lists, dicts, strings and numbers); `size` describes it in the message
    (e.g. '812 tokens'). Outside one, nothing (and nothing is computed)."""
    if expecting():
        _current.facts[name] = fact(value, size)


def expect_options(options):
    """`expect` each option of a dict, named by its command-line flag."""
    for k, v in options.items():
        expect("--" + k.replace("_", "-"), v)


def expect_file(name, path):
    """`expect` the bytes of a file (e.g. the checkpoint every rank resumes)."""
    if expecting():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _current.facts[name] = (h.hexdigest(), f"{os.path.getsize(path)} bytes, sha256 {h.hexdigest()[:12]}")


def fact(value, size=None):
    """(digest, short description) of a value the ranks compare: the value itself when short."""
    h = hashlib.sha256()
    _feed(h, value)
    text = _short(value) if size is None else ""
    if text:
        return h.hexdigest(), text
    if size is None:
        size = f"{len(value)} items" if hasattr(value, "__len__") else type(value).__name__
    return h.hexdigest(), f"{' '.join(str(size).split())}, sha256 {h.hexdigest()[:12]}"


def _short(value):
    """repr of a scalar, a short string or a short list of them ('' for anything else: its repr
    could cost more than its digest)."""
    scalars = (type(None), bool, int, float, str)
    if isinstance(value, (list, tuple)) and len(value) <= 20:
        ok = all(isinstance(v, scalars) and (not isinstance(v, str) or len(v) <= 60) for v in value)
    else:
        ok = isinstance(value, scalars) and (not isinstance(value, str) or len(value) <= 60)
    text = repr(value) if ok else ""
    return text if len(text) <= 60 else ""


def _feed(h, value):
    """Hash `value` by content (arrays by dtype, shape and bytes; containers item by item)."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        h.update(f"a{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).view(np.uint8).ravel())
    elif isinstance(value, dict):
        h.update(b"d%d" % len(value))
        for k in sorted(value, key=str):
            _feed(h, str(k))
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)) and _same_kind_arrays(value):     # e.g. sequences: at once
        h.update(b"L%d" % len(value))
        _feed(h, np.array([v.shape for v in value]))
        _feed(h, np.concatenate([v.ravel() for v in value]))
    elif isinstance(value, (list, tuple, np.ndarray)):
        h.update(b"l%d" % len(value))
        for v in value:
            _feed(h, v)
    elif isinstance(value, str):
        b = value.encode("utf-8", "surrogatepass")
        h.update(b"s%d:" % len(b))
        h.update(b)
    elif value is None or isinstance(value, (bool, int, float, complex, np.generic)):
        h.update(("r" + repr(value)).encode())
    else:       # another object: its type only (its repr may hold an address, different per rank)
        h.update(("o" + type(value).__qualname__).encode())


def _same_kind_arrays(items):
    """True for a non-empty list of numeric arrays of one dtype and one number of dimensions."""
    first = items[0] if len(items) else None
    return (isinstance(first, np.ndarray) and first.dtype != object and first.ndim > 0 and
            all(isinstance(v, np.ndarray) and v.dtype == first.dtype and v.ndim == first.ndim
                for v in items))


def _failure(error):
    """(one-line text, exit status, unexpected?) of an exception that ended a rank's setup."""
    if isinstance(error, SystemExit):
        if isinstance(error.code, str):
            text = error.code[len("fastrnn: "):] if error.code.startswith("fastrnn: ") else error.code
            return " ".join(text.split()), 1, False
        # a rank that leaves setup without an error still leaves the others without it
        return f"exited with status {error.code}", error.code or 1, False
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", 130, False
    if hasattr(error, "exit_code"):             # e.g. the CLI's usage errors
        return " ".join(str(error).split()), error.exit_code, False
    return " ".join(f"{type(error).__name__}: {error}".split()), 1, True


def agree(comm, facts, error=None):
    """The ranks' agreement point (collective): every rank brings `error` ((text, exit status)
    or None) and its `facts` ({name: fact(...)}). Returns when no rank failed and every rank's
    facts equal rank 0's; otherwise raises SetupFailed on every rank (see `Setup`)."""
    rank, size = comm.Get_rank(), comm.Get_size()
    reports = comm.allgather((error, facts))
    failed = [(r, e) for r, (e, _) in enumerate(reports) if e is not None]
    if failed:
        (first, (text, code)), others = failed[0], [str(r) for r, _ in failed[1:]]
        text = " ".join(str(text).split())          # one line
        if len(failed) == size and len({e for _, e in failed}) == 1:
            raise SetupFailed(text, code, rank, unanimous=True)
        also = f" (rank{'s' * (len(others) > 1)} {', '.join(others)} failed too)" if others else ""
        raise SetupFailed(f"rank {first} of {size}: {text}{also}", code, rank)
    ref = reports[0][1]
    differ = {}
    for r, (_, theirs) in enumerate(reports[1:], 1):
        names = [n for n in dict.fromkeys([*ref, *theirs])
                 if ref.get(n, (None,))[0] != theirs.get(n, (None,))[0]]
        if names:
            differ[r] = names
    if differ:
        first, names = next(iter(differ.items()))
        theirs = reports[first][1]
        shown = "; ".join(f"{n}: {theirs.get(n, (0, 'none'))[1]} (rank 0: {ref.get(n, (0, 'none'))[1]})"
                          for n in names[:4]) + (f"; and {len(names) - 4} more" if len(names) > 4 else "")
        others = [str(r) for r in list(differ)[1:]]
        also = f" (rank{'s' * (len(others) > 1)} {', '.join(others)} differ too)" if others else ""
        raise SetupFailed(f"the ranks disagree, refusing to train: rank {first} of {size} differs "
                          f"from rank 0 in {', '.join(names)}{also} -- {shown}; every rank must read "
                          f"the same data with the same options", 2, rank)
