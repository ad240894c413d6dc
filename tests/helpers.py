"""Small helpers shared by several test modules: child interpreters, ports, credentials,
and the places the tests read from or keep things in."""

from __future__ import annotations

import base64
import os
import select
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: this folder (``tests``)
TESTS_DIR = Path(__file__).resolve().parent
#: the repository root (the folder that holds dicomweb_client.py)
PROJECT_ROOT = TESTS_DIR.parent
#: the API listing of the established package, in the ``../shared`` folder that sits beside
#: some checkouts; tests marked ``shared_reference`` need it and skip without it
API_SIGNATURES = PROJECT_ROOT.parent / 'shared' / 'reference' / 'api-signatures.json'
#: the files a package of this project is built from (copied out before building, so that
#: no build/ or *.egg-info folder is left in the checkout)
PACKAGE_SOURCES = (
    'pyproject.toml',
    'setup.py',
    'README.md',
    'dicomweb_client.py',
    'dicomweb_client_cli.py',
)


def run_python(
    code: str, *, timeout: float = 120, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) in a fresh interpreter that imports this checkout's module.

    The child runs in the repository root with the project first on ``PYTHONPATH``;
    ``env`` adds or replaces variables.  Output is captured as text.
    """
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        cwd=PROJECT_ROOT,
        env=child_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that imports this checkout's module (the project
    first on ``PYTHONPATH``), with ``extra`` variables added or replaced."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(PROJECT_ROOT)] + [part for part in [os.environ.get('PYTHONPATH')] if part]
        ),
    )
    env.update(extra)
    return env


def env_without_pythonpath() -> dict[str, str]:
    """``os.environ`` less ``PYTHONPATH``: for pip and the interpreters of other virtualenvs,
    which must not see a checkout on it (its ``dicomweb_client.egg-info``, if a build left
    one, passes for an installed ``dicomweb-client``)."""
    return {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}


def check(result: subprocess.CompletedProcess) -> str:
    """The standard output of a child, which must have exited with 0 (else the test fails
    showing its exit code and output)."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def blocker(*names: str) -> str:
    """Code that makes importing the given top-level packages fail, as if not installed."""
    return textwrap.dedent(f'''
        import importlib.abc
        import sys

        BLOCKED = {set(names)!r}

        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname.partition('.')[0] in BLOCKED:
                    raise ModuleNotFoundError(f'blocked for the test: {{fullname}}',
                                              name=fullname)
                return None

        for loaded in [name for name in sys.modules if name.partition('.')[0] in BLOCKED]:
            del sys.modules[loaded]
        sys.meta_path.insert(0, Blocker())
        for name in BLOCKED:
            try:
                __import__(name)
            except ImportError:
                pass
            else:
                raise SystemExit(f'the blocker let {{name}} through')
    ''')


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def basic_credentials(user: str, password: str) -> str:
    """``user:password`` in base64, as HTTP Basic authentication sends it."""
    return base64.b64encode(f'{user}:{password}'.encode()).decode('ascii')


def basic(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic authentication."""
    return 'Basic ' + basic_credentials(user, password)


def kept_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """Where a costly set-up (a virtualenv) is kept from one run to the next.

    That is beside pytest's numbered temporary folders, in its own per-user folder
    (``<tmp>/pytest-of-<user>/<name>``).  When ``--basetemp`` names the folder of the
    session, its parent belongs to somebody else: the set-up goes inside that folder
    and lasts for the run.
    """
    basetemp = tmp_path_factory.getbasetemp()
    if basetemp.parent.name.startswith('pytest-of-'):
        return basetemp.parent / name
    return basetemp / name


def cli_command(*words: object) -> list[str]:
    """The command line that runs this checkout's CLI with ``words`` in a child process
    (give it ``env=child_env()``)."""
    return [sys.executable, '-m', 'dicomweb_client_cli', *map(str, words)]


def read_pty(master: int, process: subprocess.Popen) -> bytes:
    """Everything a child wrote to the terminal whose master end is ``master``, until the
    child closes it (or 20 s of silence); then wait for the child to end."""
    output = b''
    while True:
        ready, _, _ = select.select([master], [], [], 20)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=20)
    return output
