"""Packaging for dicomweb_client: a single-module DICOMweb client plus its CLI module."""
import pathlib
import re

from setuptools import setup

HERE = pathlib.Path(__file__).resolve().parent


def read_version() -> str:
    """Pull ``__version__`` out of dicomweb_client.py without importing it.

    Importing would require pydicom to be installed before setup.py can even run.
    """
    source = (HERE / "dicomweb_client.py").read_text(encoding="utf-8")
    match = re.search(
        r"""^__version__\s*=\s*(['"])([^'"]+)\1""", source, flags=re.MULTILINE
    )
    if match is None:
        raise RuntimeError("no __version__ assignment found in dicomweb_client.py")
    return match.group(2)


def read_readme() -> str:
    readme = HERE / "README.md"
    return readme.read_text(encoding="utf-8") if readme.exists() else ""


setup(
    name="dicomweb_client",
    version=read_version(),
    description=(
        "Single-file DICOMweb client (QIDO-RS, WADO-RS, STOW-RS) "
        "needing only the standard library and pydicom"
    ),
    long_description=read_readme(),
    long_description_content_type="text/markdown",
    license="MIT",
    py_modules=["dicomweb_client", "dicomweb_client_cli"],
    python_requires=">=3.9",
    install_requires=["pydicom>=2.2"],
    extras_require={
        "image": ["numpy", "Pillow"],
        "gcp": ["google-auth"],
        # for projects that import requests or retrying themselves, counting on the
        # established dicomweb-client package to have installed them (wsidicom does)
        "compat": ["requests", "retrying"],
        # dask[distributed]: tests/test_cohort_dask.py runs the docs/cohort.md recipe on a
        # local Dask cluster
        "test": ["pytest", "hypothesis", "numpy", "Pillow", "google-auth", "requests",
                 "retrying", "dask[distributed]"],
        # building the HTML documentation (docs/, see docs/index.md); docs/make_pictures.py
        # also needs the image extra
        "docs": ["sphinx", "myst-parser"],
    },
    entry_points={
        "console_scripts": ["dicomweb_client = dicomweb_client_cli:_console_main"],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "Intended Audience :: Healthcare Industry",
        "Intended Audience :: Science/Research",
        "License :: OSI Approved :: MIT License",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Internet :: WWW/HTTP",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
    ],
)
