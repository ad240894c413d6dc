"""Time whole CLI calls: how long a user waits for one ``search studies`` to finish.

::

    python benchmarks/cli_startup.py                                   # ours only
    python benchmarks/cli_startup.py --reference-python /path/to/venv/bin/python

Starts ``benchmarks.server`` (three studies, answered from memory) and runs each command
``--runs`` times in fresh processes, alternating the implementations, after one untimed
run each (so Python's bytecode caches exist, as after any installation).  Ours runs in a
throwaway virtual environment holding only pydicom (as a user's would), the established
package in its own; so neither pays for packages the other lacks (a development
environment's site-packages can add 80 ms to every start).  Rows: the bare interpreter of
each environment (``python -c pass``: the floor no Python program goes below), importing
the module, and the CLI's ``search studies``.  Prints a Markdown table of the median and
the fastest run; a shell loop over N UIDs waits about N times the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / 'tests')]

from benchmarks.run import child_env, start_server  # noqa: E402
from isolated_python import add_pydicom, make_venv  # noqa: E402

SIZES = dict(frames=1, frame_size=1024, series=1, instance_size=1024)


def environment(impl: str) -> Dict[str, str]:
    """The benchmark children's environment, with bytecode caching as a user has it."""
    env = child_env(impl)
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    return env


def wall_time(command: Sequence[str], env: Dict[str, str]) -> float:
    """Seconds from starting ``command`` to its exit; a failure stops the benchmark."""
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f'{" ".join(command)} failed: {completed.stderr.decode()[-500:]}')
    return elapsed


def commands(url: str, our_python: str, reference_python: Optional[str]) -> Dict[str, List[str]]:
    """Row label -> command line (run in the repository root)."""
    rows = {
        'bare interpreter (our venv)': [our_python, '-c', 'pass'],
        'import dicomweb_client (ours)': [our_python, '-c', 'import dicomweb_client'],
        'CLI search studies (ours)': [
            our_python,
            str(ROOT / 'dicomweb_client_cli.py'),
            '--url',
            url,
            'search',
            'studies',
        ],
    }
    if reference_python:
        script = Path(reference_python).parent / 'dicomweb_client'
        # -P: the current folder (this checkout, with our dicomweb_client.py) is not on
        # the path, so the established package is what gets imported
        rows['bare interpreter (established venv)'] = [reference_python, '-P', '-c', 'pass']
        rows['import dicomweb_client.api (established)'] = [
            reference_python,
            '-P',
            '-c',
            'import dicomweb_client.api',
        ]
        rows['CLI search studies (established)'] = [str(script), '--url', url, 'search', 'studies']
    return rows


def measure(rows: Dict[str, List[str]], runs: int) -> Dict[str, List[float]]:
    """Run every row ``runs`` times, interleaved, after one untimed warm-up run each."""
    envs = {label: environment('reference' if 'established' in label else 'ours') for label in rows}
    for label, command in rows.items():
        wall_time(command, envs[label])
    times: Dict[str, List[float]] = {label: [] for label in rows}
    for _ in range(runs):
        for label, command in rows.items():
            times[label].append(wall_time(command, envs[label]))
    return times


def table(times: Dict[str, List[float]]) -> str:
    lines = ['| command | median | fastest |', '|---|---:|---:|']
    for label, values in times.items():
        lines.append(
            f'| {label} | {statistics.median(values) * 1000:.0f} ms | {min(values) * 1000:.0f} ms |'
        )
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--runs', type=int, default=20, help='timed runs per row')
    parser.add_argument(
        '--reference-python', help='python of a virtualenv with the established dicomweb-client'
    )
    options = parser.parse_args(argv)
    server, url = start_server(SIZES, 0.0)
    try:
        with tempfile.TemporaryDirectory(prefix='dicomweb-startup-') as folder:
            our_python = make_venv(Path(folder) / 'venv')
            add_pydicom(our_python)
            rows = commands(f'{url}/dicom-web', str(our_python), options.reference_python)
            times = measure(rows, options.runs)
    finally:
        server.terminate()
        server.wait()
    print(table(times))
    print(
        f'\n{options.runs} runs per row, Python {sys.version.split()[0]}, '
        f'{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
