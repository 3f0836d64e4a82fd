"""MPI plumbing for data-parallel training: launch detection, the communicator, kernel threads
per rank, the library's name, and ending the whole job when one rank fails.

mpi4py is optional (`pip install "fastrnn[mpi]"` brings mpi4py and a self-contained MPICH with
`mpiexec`); nothing here imports it until a distributed run asks for it, so fastrnn works as
before without it. The training side (sharding, the gradient all-reduce) is
`fastrnn.train.distributed`.
"""
import os
import sys
import time

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
