"""Packaging: the wheel holds both modules, installs, and exposes the console script.

The sources a build needs are copied to a temporary folder first, so building never
writes ``build/`` or ``*.egg-info`` into the working tree, and a file missing from that
list would show up as a failure here. The wheel goes into a fresh pip-less virtual
environment (driven by the outer ``pip --python``) with ``--no-deps``; pydicom is copied
in from the running interpreter, so nothing but the build step needs the package index.
"""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import PACKAGE_SOURCES, PROJECT_ROOT, check
from isolated_python import (
    VenvUnavailable,
    add_pydicom,
    clean_env,
    make_venv,
    pip_can_target_other_pythons,
    venv_script,
)

MODULES = {"dicomweb_client.py", "dicomweb_client_cli.py"}


def source_version() -> str:
    text = (PROJECT_ROOT / "dicomweb_client.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*(['"])([^'"]+)\1""", text, flags=re.MULTILINE)
    assert match is not None, "no __version__ in dicomweb_client.py"
    return match.group(2)


def run(command: list, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
    )


@dataclass
class Built:
    wheel: Path
    venv: Path
    python: Path
    workdir: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    source.mkdir()
    for name in PACKAGE_SOURCES:
        shutil.copy2(PROJECT_ROOT / name, source / name)
    wheels = base / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", source, "--no-deps", "-w", wheels]
    result = run(build, cwd=base, timeout=180)
    if result.returncode != 0:
        # No package index for the isolated build: use the setuptools installed here.
        result = run(build + ["--no-build-isolation"], cwd=base, timeout=180)
    check(result)
    (wheel,) = wheels.glob("dicomweb_client-*.whl")

    if not pip_can_target_other_pythons():
        pytest.skip("pip older than 22.3 cannot install into another interpreter")
    try:
        python = make_venv(base / "venv")
    except VenvUnavailable as error:
        pytest.skip(f"cannot create a virtual environment here: {error}")
    add_pydicom(python)
    check(
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                python,
                "install",
                "--no-deps",
                "--no-index",
                wheel,
            ],
            cwd=base,
        )
    )
    workdir = base / "elsewhere"  # not the repository, so nothing is imported from it
    workdir.mkdir()
    return Built(wheel, base / "venv", python, workdir)


def wheel_metadata(wheel: Path) -> tuple[set, "email.message.Message", str]:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(meta_name).decode("utf-8"))
        (entry_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(entry_name).decode("utf-8")
    return names, metadata, entry_points


def test_wheel_holds_both_modules_and_declares_extras(built: Built) -> None:
    names, metadata, entry_points = wheel_metadata(built.wheel)
    top_level = {name for name in names if "/" not in name}
    assert top_level == MODULES
    assert metadata["Version"] == source_version()
    requires = [re.sub(r"\s+", "", r) for r in metadata.get_all("Requires-Dist") or []]
    assert any(r.startswith("pydicom") and "extra" not in r for r in requires), requires
    for package, extra in (("numpy", "image"), ("Pillow", "image"), ("google-auth", "gcp")):
        assert f'{package};extra=="{extra}"' in requires, requires
    assert re.search(
        r"^dicomweb_client\s*=\s*dicomweb_client_cli:_console_main$",
        entry_points,
        flags=re.MULTILINE,
    ), entry_points


def test_installed_wheel_exposes_version(built: Built) -> None:
    script = (
        "import dicomweb_client, dicomweb_client_cli; "
        "print(dicomweb_client.__version__); print(dicomweb_client.__file__)"
    )
    version, location = check(run([built.python, "-c", script], cwd=built.workdir)).split()
    assert version == source_version()
    assert Path(location).resolve().is_relative_to(built.venv.resolve())


def test_installed_console_script_runs(built: Built) -> None:
    out = check(run([venv_script(built.venv, "dicomweb_client"), "--help"], cwd=built.workdir))
    assert out.startswith("usage: dicomweb_client")
    assert "--url" in out


def test_installed_environment_is_consistent(built: Built) -> None:
    check(run([sys.executable, "-m", "pip", "--python", built.python, "check"], cwd=built.workdir))


def _dependent_project(folder: Path, requirement: str) -> Path:
    """A wheel of a tiny project that depends on the established package's name, as
    wsidicom (``dicomweb-client>=0.61.0``) or a pinned application does.  The wheel is
    written directly (a zip of the module and its metadata): no build tools needed."""
    info = "needs_dicomweb-1.0.dist-info"
    files = {
        "needs_dicomweb.py": "import dicomweb_client\n",
        f"{info}/METADATA": (
            "Metadata-Version: 2.1\nName: needs-dicomweb\nVersion: 1.0\n"
            f"Requires-Dist: {requirement}\n"
        ),
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    wheel = folder / "needs_dicomweb-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


@pytest.mark.parametrize(
    "requirement",
    ["dicomweb-client>=0.61.0", "dicomweb-client==0.61.2", "dicomweb-client>=0.57,<0.62"],
)
def test_projects_depending_on_the_established_package_keep_this_module(
    built: Built, tmp_path: Path, requirement: str
) -> None:
    """Installing such a project finds its requirement met by this module: nothing is
    replaced (no package index is even consulted) and ``pip check`` is clean."""
    wheel = _dependent_project(tmp_path, requirement)
    check(
        run(
            [sys.executable, "-m", "pip", "--python", built.python, "install", "--no-index", wheel],
            cwd=tmp_path,
        )
    )
    check(run([sys.executable, "-m", "pip", "--python", built.python, "check"], cwd=tmp_path))
    location = check(
        run(
            [
                built.python,
                "-c",
                "import needs_dicomweb, dicomweb_client; print(dicomweb_client.__file__)",
            ],
            cwd=built.workdir,
        )
    ).strip()
    assert Path(location).name == "dicomweb_client.py"
    check(
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                built.python,
                "uninstall",
                "-y",
                "needs-dicomweb",
            ],
            cwd=tmp_path,
        )
    )
