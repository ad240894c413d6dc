"""Throwaway virtual environments for the vendoring and packaging tests.

The environments are made from the interpreter running the tests with the standard
``venv`` module, *without* pip (so nothing but the standard library is importable), and
then get pydicom by copying the installed pydicom package and its ``.dist-info`` folder
from the current environment. That keeps the tests offline and fast (well under a second
per environment) and guarantees the same pydicom version as the rest of the suite.

When pip is needed inside such an environment (to install a wheel), the outer pip drives
it through ``pip --python VENV_PYTHON ...`` (pip >= 22.3).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom

# Third-party distributions the module can use when present; none may leak into the
# isolated environments.
OPTIONAL_IMPORTS = ("requests", "urllib3", "numpy", "PIL", "google", "certifi")


class VenvUnavailable(RuntimeError):
    """The interpreter cannot make a virtual environment (tests skip on this)."""


def clean_env(**extra: str) -> dict[str, str]:
    """An environment for child interpreters: no PYTHON* variables, no proxies."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith("PYTHON")
        and key.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
        and not key.startswith("PIP_")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def venv_python(venv: Path) -> Path:
    """The interpreter of the environment at ``venv``."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def venv_script(venv: Path, name: str) -> Path:
    """A console script installed into the environment at ``venv``."""
    if os.name == "nt":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def make_venv(venv: Path) -> Path:
    """Create a pip-less virtual environment at ``venv``; return its interpreter."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise VenvUnavailable(f"python -m venv failed: {error}") from error
    python = venv_python(venv)
    if result.returncode != 0 or not python.exists():
        raise VenvUnavailable(f"python -m venv failed:\n{result.stdout}{result.stderr}")
    return python


def site_packages(python: Path) -> Path:
    """The ``purelib`` folder of the interpreter ``python``."""
    out = subprocess.run(
        [str(python), "-E", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=clean_env(),
    )
    return Path(out.stdout.strip())


def add_pydicom(python: Path) -> Path:
    """Copy the pydicom of this interpreter into the environment of ``python``.

    Returns the environment's site-packages folder.
    """
    target = site_packages(python)
    package = Path(pydicom.__file__).resolve().parent
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(package, target / package.name, ignore=ignore)
    distribution = importlib.metadata.distribution("pydicom")
    dist_info = getattr(distribution, "_path", None)
    if dist_info is not None and Path(dist_info).is_dir():
        # Lets pip see pydicom as installed, so a --no-deps install passes `pip check`.
        shutil.copytree(dist_info, target / Path(dist_info).name, ignore=ignore)
    return target


def pip_can_target_other_pythons() -> bool:
    """True when this pip knows ``--python`` (pip 22.3 and later)."""
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= (22, 3)
