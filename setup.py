"""Declares the one compiled extension; everything else lives in pyproject.toml."""
import glob
import platform
import sys

if sys.platform == "win32":
    # The thread team (csrc/team.c) uses pthreads and GCC atomics; MSVC has neither.
    raise SystemExit("fastrnn: Windows is not supported yet (the C kernels need pthreads and "
                     "GCC/Clang builtins); use Linux, macOS or WSL. See README.md, 'Install'.")

import numpy  # noqa: E402
from Cython.Build import cythonize  # noqa: E402
from setuptools import Extension, setup  # noqa: E402

define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
extra_link_args = ["-pthread"]
if sys.platform.startswith("linux") and platform.machine() == "x86_64" \
        and platform.libc_ver()[0] == "glibc":
    # Loadable on glibc < 2.34 too (manylinux_2_28 wheels built on a newer glibc): team.c binds
    # pthread_create/pthread_once to their old symbol version, which older glibc keeps in
    # libpthread.so.0, so that library is linked even where it is an empty stub (glibc >= 2.34).
    define_macros.append(("FRNN_GLIBC_COMPAT", "1"))
    extra_link_args += ["-Wl,--no-as-needed", "-l:libpthread.so.0"]

kernels = Extension(
    "fastrnn._kernels",
    sources=["src/fastrnn/_kernels.pyx", "csrc/kernels.c", "csrc/gemm.c", "csrc/team.c", "csrc/gemm_int8.c",
             "csrc/gemm_bf16.c", "csrc/gemm_amx.c", "csrc/head.c", "csrc/optim.c",
             "csrc/head_seq.c"],
    include_dirs=["csrc", numpy.get_include()],
    # headers included by kernels.c, the .pxi files _kernels.pyx includes and its .pxd (the C API)
    depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/*.c") + glob.glob("src/fastrnn/*.pxi")
                   + glob.glob("src/fastrnn/*.pxd")),
    # -O3 for auto-vectorised gate loops; no -march=native so wheels stay portable
    # (activations.h uses target_clones, gemm.c target attributes, for AVX2/AVX-512 where the
    # CPU has them).
    # -fno-trapping-math lets GCC if-convert (and so vectorise) the branch-free activation loops;
    # fastrnn never reads floating-point exception flags.
    extra_compile_args=["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math", "-pthread"],
    extra_link_args=extra_link_args,
    define_macros=define_macros,
)

setup(ext_modules=cythonize([kernels], language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False}))
