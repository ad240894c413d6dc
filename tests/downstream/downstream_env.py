"""Downstream projects installed next to this module, in a virtualenv of their own
(what the tests of this folder share).

``downstream_python`` is an interpreter whose environment holds this project (installed
from the checkout with its ``compat`` extra: requests and retrying, which such projects
import themselves) and then the downstream packages from the package index, installed
the way their users install them: after this module, so that pip finds the
``dicomweb-client`` requirement met and keeps this module.  The virtualenv is made once
per machine beside pytest's numbered temporary folders (``helpers.kept_folder``).  Under
``CI`` a failure to make it fails the tests; elsewhere it skips them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import PACKAGE_SOURCES, PROJECT_ROOT, env_without_pythonpath, kept_folder

DOWNSTREAM_PACKAGES = ("wsidicom",)
HERE = Path(__file__).resolve().parent


def _pip(python: Path, *arguments: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *arguments],
        check=True,
        capture_output=True,
        timeout=900,
        env=env_without_pythonpath(),
    )


def _fingerprint() -> str:
    """Changes when this module or the package list changes, so the venv is remade."""
    digest = hashlib.sha256(" ".join(DOWNSTREAM_PACKAGES).encode())
    for name in ("dicomweb_client.py", "dicomweb_client_cli.py", "setup.py"):
        digest.update((PROJECT_ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def _make_venv(folder: Path) -> Path:
    python = folder / "bin" / "python"
    marker = folder / "fingerprint.txt"
    if python.exists() and marker.exists() and marker.read_text() == _fingerprint():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True, timeout=300
    )
    source = folder / "source"  # built from a copy: the checkout gets no build/ folder
    source.mkdir()
    for name in PACKAGE_SOURCES:
        shutil.copy2(PROJECT_ROOT / name, source / name)
    _pip(python, f"{source}[compat]")
    _pip(python, *DOWNSTREAM_PACKAGES)
    marker.write_text(_fingerprint())
    return python


def downstream_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The downstream virtualenv's interpreter (skip, or fail under CI, without it); the
    body of the test modules' session fixture of the same name."""
    folder = kept_folder(tmp_path_factory, "downstream-venv")
    try:
        python = _make_venv(folder)
    except (OSError, subprocess.SubprocessError) as error:
        detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace")[-3000:]
        message = (
            f"cannot install {', '.join(DOWNSTREAM_PACKAGES)} for the tests: {error}\n{detail}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def run_in(python: Path, script: Path, *arguments: str, timeout: float = 600) -> dict:
    """Run ``script`` with the downstream interpreter; return the JSON it prints last."""
    env = env_without_pythonpath()
    env["NETRC"] = os.devnull
    result = subprocess.run(
        [str(python), str(script), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(script.parent),
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])
