"""Build the Cython fast path; everything else is declared in pyproject.toml."""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

ext = [
    Extension(
        "adc._fastpath." + os.path.splitext(os.path.basename(p))[0],
        [p],
        extra_compile_args=["-O2", "-Wno-unused-function"],
    )
    for p in sorted(glob.glob("adc/_fastpath/*.pyx"))
] + [
    # the L7 core's C scanner (adc/l7/http1.py holds its pure-Python reference)
    Extension("adc.l7." + os.path.splitext(os.path.basename(p))[0], [p],
              extra_compile_args=["-O2", "-Wno-unused-function"])
    for p in sorted(glob.glob("adc/l7/*.pyx"))
] + [
    # plain Python compiled with its .pxd (adc.l7.listener runs the source when this build is stale)
    Extension("adc.l7.proxy", ["adc/l7/proxy.py"], extra_compile_args=["-O2", "-Wno-unused-function"]),
] + [
    # TLS termination in C (adc.tls.server falls back to uvloop's ssl without it). The same libssl
    # as Python's _ssl: we use the SSL_CTX inside its SSLContext objects (checked at import)
    Extension("adc.tls." + os.path.splitext(os.path.basename(p))[0], [p],
              libraries=["ssl", "crypto"], extra_compile_args=["-O2", "-Wno-unused-function"])
    for p in sorted(glob.glob("adc/tls/*.pyx"))
]

setup(
    ext_modules=cythonize(
        ext,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
    packages=find_packages(include=["adc", "adc.*"]) + ["adcctl"],
    package_dir={"adcctl": "cli/adcctl"},
    package_data={"adc._fastpath": ["*.pxd", "includes/*.pxd"], "adc.tls": ["*.pxd", "includes/*.pxd"]},
)
