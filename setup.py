"""Declares the one compiled extension; everything else lives in pyproject.toml."""
import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

kernels = Extension(
    "fastrnn._kernels",
    sources=["src/fastrnn/_kernels.pyx", "csrc/kernels.c", "csrc/gemm.c", "csrc/gemm_bf16.c",
             "csrc/team.c"],
    include_dirs=["csrc", numpy.get_include()],
    # headers included by kernels.c, and the .pxi files _kernels.pyx includes
    depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/*.c") + glob.glob("src/fastrnn/*.pxi")),
    # -O3 for auto-vectorised gate loops; no -march=native so wheels stay portable
    # (activations.h uses target_clones, gemm.c target attributes, for AVX2/AVX-512 where the
    # CPU has them).
    # -fno-trapping-math lets GCC if-convert (and so vectorise) the branch-free activation loops;
    # fastrnn never reads floating-point exception flags.
    extra_compile_args=["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math", "-pthread"],
    extra_link_args=["-pthread"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(ext_modules=cythonize([kernels], language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False}))
