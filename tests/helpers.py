"""Small helpers shared by several test modules: child interpreters, ports, credentials."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

#: the repository root (the folder that holds dicomweb_client.py)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, *, timeout: float = 120, check: bool = False,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) in a fresh interpreter that imports this checkout's module.

    The child runs in the repository root with the project first on ``PYTHONPATH``;
    ``env`` adds or replaces variables.  Output is captured as text.
    """
    child_env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(PROJECT_ROOT)] + [part for part in [os.environ.get('PYTHONPATH')] if part]))
    child_env.update(env or {})
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=PROJECT_ROOT,
                          env=child_env, capture_output=True, text=True, timeout=timeout,
                          check=check)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def basic(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic authentication."""
    return 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode('ascii')
