"""Time cohort downloads with the command line's ``retrieve --manifest``.

::

    python benchmarks/cohort.py                  # speed table, about 1-2 minutes
    python benchmarks/cohort.py --quick          # 100 instances, one run each
    python benchmarks/cohort.py --rss            # also peak RSS for 1,000 and 100,000 lines
    python benchmarks/cohort.py --no-speed --orthanc http://127.0.0.1:8042/dicom-web

Starts ``benchmarks.server`` as its own process (a study of ``--series`` series, 1,000
small instances in all, ``--delay`` seconds before each answer) and runs the CLI,
``dicomweb_client_cli.py --url URL --no-progress retrieve --manifest FILE --output-dir DIR
--workers N --report FILE``, of this checkout (``PYTHONPATH`` is the project root, the
working folder a temporary one).  Each run downloads into a fresh temporary folder, which
is then checked (every file there, none more, each of the size the server sends; the
report has one ``ok`` line per manifest item) and removed.  The manifests: one line per
instance, one per series, one for the study.  The speed table gives the median wall time
of ``--repeat`` runs per case and ``--workers`` value, the instances per second, the
speed-up against ``--workers 1``, and the peak RSS and CPU time of the CLI process.

``--rss`` adds a memory table: manifests of ``--rss-lines`` instance lines (default 1,000
and 100,000), spread over 100 series of a server started with ``--any-instance`` (it answers
any SOP Instance UID under its series with the same small instance), each downloaded once
with ``--workers 8``.  ``--orthanc URL`` adds the same speed table against a running
DICOMweb server (an Orthanc, say), with manifests built from its QIDO-RS ``/instances``.
The exit status is non-zero if any run failed or downloaded something else than expected.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.dont_write_bytecode = True  # leave no bytecode caches in the checkout
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import child_env, log  # noqa: E402

CLI = ROOT / 'dicomweb_client_cli.py'
MIB = 1 << 20
RSS_SERIES = 100  # series the --rss manifests are spread over
ORTHANC_PAGE = 1000  # instances per QIDO-RS page when listing a server's instances

# Runs the CLI (argv[3:]) with its output in two files and prints, as JSON, its exit status,
# wall time, peak RSS (KiB) and CPU seconds.  This interpreter is small, so the peak RSS
# the CLI inherits from it (ru_maxrss counts the parent's pages at fork) stays below the
# CLI's own.
WRAPPER = """
import json, resource, subprocess, sys, time
with open(sys.argv[1], 'wb') as out, open(sys.argv[2], 'wb') as err:
    started = time.perf_counter()
    code = subprocess.call(sys.argv[3:], stdout=out, stderr=err)
    wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({'returncode': code, 'wall': wall, 'maxrss_kib': usage.ru_maxrss,
                  'cpu': usage.ru_utime + usage.ru_stime}))
"""

# A cohort: manifest lines, and the files a download must leave, by path under the
# output folder (study/series/sop.dcm), with their sizes (None: any size but 0)
Expected = Dict[str, Optional[int]]


@dataclass
class Cohort:
    """One manifest and what downloading it must leave in the output folder."""

    name: str
    lines: List[str]
    files: Expected


@dataclass
class Run:
    """One CLI run: what it cost and what it left."""

    wall: float
    rss: int  # bytes
    cpu: float
    files: int
    nbytes: int
    problems: List[str] = field(default_factory=list)


@dataclass
class Row:
    """The runs of one manifest with one ``--workers`` value."""

    case: str
    workers: int
    instances: int
    runs: List[Run] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and not any(run.problems for run in self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(run.wall for run in self.runs)

    @property
    def rss(self) -> int:
        return max(run.rss for run in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(run.cpu for run in self.runs)


# ---------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------


def environment(pycache: Path) -> Dict[str, str]:
    """The children's environment: no proxies, the checkout first on the path, and
    bytecode caches in a temporary folder (written once, then reused)."""
    env = child_env('ours')
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    env['PYTHONPYCACHEPREFIX'] = str(pycache)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(ROOT)] + [part for part in env.get('PYTHONPATH', '').split(os.pathsep) if part]
    )
    return env


def start_server(options: List[str], env: Dict[str, str]) -> Tuple[subprocess.Popen, str]:
    """Start ``benchmarks.server`` with ``options`` (as ``benchmarks/run.py`` does, with no
    frames worth mentioning); returns the process and its base URL."""
    command = [sys.executable, '-m', 'benchmarks.server', '--port', '0']
    command += ['--frames', '1', '--frame-size', '16', *options]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.isdigit():
        stop_server(process)
        raise RuntimeError(f'benchmark server did not start (said {line!r})')
    return process, f'http://127.0.0.1:{line}'


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def get_json(url: str, accept: str = 'application/json') -> Any:
    """GET ``url`` (no proxy) and decode its JSON; an empty answer is ``[]``."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={'Accept': accept})
    with opener.open(request, timeout=60) as answer:
        body = answer.read()
    return json.loads(body) if body.strip() else []


def check_library(env: Dict[str, str], cwd: Path) -> Tuple[str, float]:
    """The version of the ``dicomweb_client`` the children import (it must be this
    checkout's), and the median wall time of three ``--help`` runs of the CLI: its
    start-up.  Also writes the bytecode caches before the first timed run."""
    code = 'import dicomweb_client as m; print(m.__file__); print(m.__version__)'
    done = subprocess.run(
        [sys.executable, '-c', code], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f'cannot import dicomweb_client: {done.stderr.strip()[-500:]}')
    path, version = done.stdout.split()[:2]
    if Path(path).resolve() != ROOT / 'dicomweb_client.py':
        raise RuntimeError(f'the children import {path}, not the checkout in {ROOT}')
    walls = []
    for _ in range(4):  # the first one writes the bytecode caches
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(CLI), '--help'], cwd=cwd, env=env, capture_output=True, check=True
        )
        walls.append(time.perf_counter() - started)
    return version, statistics.median(walls[1:])


# ---------------------------------------------------------------------------------------
# One CLI run
# ---------------------------------------------------------------------------------------


def cli_command(url: str, manifest: Path, output: Path, workers: int, report: Path) -> List[str]:
    return [
        sys.executable,
        str(CLI),
        '--url',
        url,
        '--no-progress',
        'retrieve',
        '--manifest',
        str(manifest),
        '--output-dir',
        str(output),
        '--workers',
        str(workers),
        '--report',
        str(report),
    ]


def files_on_disk(folder: Path) -> Dict[str, int]:
    """Every file under ``folder``, by path relative to it, with its size."""
    found: Dict[str, int] = {}
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            else:
                relative = os.path.relpath(entry.path, folder).replace(os.sep, '/')
                found[relative] = entry.stat(follow_symlinks=False).st_size
    return found


def compare_files(found: Dict[str, int], expected: Expected) -> List[str]:
    """What differs between the files downloaded and the files expected."""
    problems = []
    missing = [path for path in expected if path not in found]
    extra = [path for path in found if path not in expected]
    wrong = [
        path
        for path, size in expected.items()
        if path in found and (found[path] != size if size is not None else not found[path])
    ]
    for what, paths in (('missing', missing), ('unexpected', extra), ('of wrong size', wrong)):
        if paths:
            problems.append(f'{len(paths)} files {what}, e.g. {paths[0]}')
    want = sum(size for size in expected.values() if size is not None)
    if all(size is not None for size in expected.values()) and sum(found.values()) != want:
        problems.append(f'{sum(found.values()):,} bytes on disk, the server sent {want:,}')
    return problems


def check_report(report: Path, cohort: Cohort, nbytes: int) -> List[str]:
    """The ``--report`` lines: one per manifest item, all ``ok``, their bytes those on
    disk."""
    try:
        lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as error:
        return [f'cannot read the report: {error}']
    problems = []
    if len(lines) != len(cohort.lines):
        problems.append(f'report has {len(lines)} lines for {len(cohort.lines)} items')
    failed = [line for line in lines if line.get('status') != 'ok']
    if failed:
        problems.append(f'report: {len(failed)} items not ok, e.g. {failed[0]}')
    reported = sum(line.get('bytes') or 0 for line in lines)
    if all('bytes' in line for line in lines) and reported != nbytes:
        problems.append(f'report counts {reported:,} bytes, {nbytes:,} on disk')
    return problems


def run_wrapped(
    command: List[str], cwd: Path, env: Dict[str, str], timeout: float
) -> Dict[str, Any]:
    """Run the wrapper in a process group of its own (so that a timeout also stops the
    CLI) and return what it measured."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if process.returncode != 0 or not out.strip():
        raise RuntimeError(f'the wrapper failed: {err.strip()[-500:]}')
    return json.loads(out.strip().splitlines()[-1])


def run_once(
    url: str, cohort: Cohort, manifest: Path, workers: int, work: Path, env: Dict[str, str]
) -> Run:
    """Download ``cohort`` once into a fresh folder under ``work``, check and remove it."""
    scratch = Path(tempfile.mkdtemp(prefix='run-', dir=work))
    try:
        output, report = scratch / 'out', scratch / 'report.jsonl'
        stdout, stderr = scratch / 'stdout', scratch / 'stderr'
        command = [sys.executable, '-c', WRAPPER, str(stdout), str(stderr)]
        command += cli_command(url, manifest, output, workers, report)
        measured = run_wrapped(command, scratch, env, 600 + len(cohort.files) * 0.05)
        found = files_on_disk(output)
        nbytes = sum(found.values())
        problems = []
        if measured['returncode'] != 0:
            tail = ' | '.join(stderr.read_text(errors='replace').strip().splitlines()[-3:])
            problems.append(f'exit status {measured["returncode"]}: {tail}')
        problems += compare_files(found, cohort.files)
        problems += check_report(report, cohort, nbytes)
        summary = stdout.read_text(errors='replace').strip().splitlines()
        log(f'    {measured["wall"]:.2f} s: {summary[-1] if summary else "(no summary)"}')
        return Run(
            wall=measured['wall'],
            rss=measured['maxrss_kib'] * 1024,
            cpu=measured['cpu'],
            files=len(found),
            nbytes=nbytes,
            problems=problems,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def warm_up(
    url: str, cohort: Cohort, workers: int, work: Path, env: Dict[str, str], lines: int = 10
) -> None:
    """One untimed download of the first ``lines`` lines of an instance-per-line cohort,
    so that the bytecode caches of every module a download imports (pydicom's too) are
    written before the timed runs; a failure stops the benchmark."""
    kept = cohort.lines[:lines]
    small = Cohort('warm-up', kept, {f'{line}.dcm': cohort.files[f'{line}.dcm'] for line in kept})
    manifest = work / 'warm-up.txt'
    manifest.write_text('\n'.join(kept) + '\n')
    log(f'  warm-up: {len(kept)} instance lines, --workers {workers} (untimed) ...')
    run = run_once(url, small, manifest, workers, work, env)
    manifest.unlink()
    if run.problems:
        raise RuntimeError(f'the warm-up download went wrong: {"; ".join(run.problems)}')


def measure(
    url: str,
    cohorts: List[Cohort],
    workers: List[int],
    repeat: int,
    work: Path,
    env: Dict[str, str],
) -> List[Row]:
    """``repeat`` runs of every cohort with every ``--workers`` value, interleaved."""
    rows = {(c.name, n): Row(c.name, n, len(c.files)) for c in cohorts for n in workers}
    manifests = {}
    for cohort in cohorts:
        manifests[cohort.name] = work / f'{cohort.name.replace(" ", "-")}.txt'
        manifests[cohort.name].write_text('\n'.join(cohort.lines) + '\n')
    for number in range(1, repeat + 1):
        for cohort in cohorts:
            for count in workers:
                log(f'  {cohort.name}, --workers {count} (run {number}/{repeat}) ...')
                run = run_once(url, cohort, manifests[cohort.name], count, work, env)
                for problem in run.problems:
                    log(f'    PROBLEM: {problem}')
                rows[cohort.name, count].runs.append(run)
    for manifest in manifests.values():
        manifest.unlink()
    return list(rows.values())


# ---------------------------------------------------------------------------------------
# Cohorts
# ---------------------------------------------------------------------------------------


def bench_cohorts(info: Dict[str, Any]) -> Dict[str, Cohort]:
    """Manifests of the benchmark server's study, by case: a line per instance, a line
    per series, one line for the study."""
    study = info['study_uid']
    files: Expected = {}
    instance_lines, series_lines = [], []
    for series in info['series']:
        series_lines.append(f'{study}/{series["uid"]}')
        listed = get_json(f'{info["url"]}/studies/{study}/series/{series["uid"]}/instances')
        if len(listed) != series['instances']:
            raise RuntimeError(f'the server lists {len(listed)} of {series["instances"]}')
        for entry in listed:
            sop = entry['00080018']['Value'][0]
            instance_lines.append(f'{study}/{series["uid"]}/{sop}')
            files[f'{study}/{series["uid"]}/{sop}.dcm'] = None
    total = sum(series['bytes'] for series in info['series'])
    sizes = fetch_sizes(info, files)
    if sum(sizes.values()) != total:
        raise RuntimeError(f'instances of {sum(sizes.values())} bytes, the server says {total}')
    lines = {'instances': instance_lines, 'series': series_lines, 'study': [study]}
    names = {'instances': 'instance per line', 'series': 'series per line', 'study': 'study'}
    return {case: Cohort(names[case], lines[case], dict(sizes)) for case in lines}


def fetch_sizes(info: Dict[str, Any], files: Expected) -> Dict[str, int]:
    """The size of each instance file the server sends: its series' prebuilt instances
    differ only in the instance number, so the sizes are read from one whole-series
    answer per series."""
    sizes: Dict[str, int] = {}
    for series in info['series']:
        part_sizes = series_part_sizes(info['url'], info['study_uid'], series['uid'])
        paths = [path for path in files if path.split('/')[1] == series['uid']]
        if len(part_sizes) != len(paths):
            raise RuntimeError(f'series {series["uid"]}: {len(part_sizes)} parts')
        # the QIDO-RS order is the series order of the WADO-RS answer
        sizes.update(zip(paths, part_sizes))
    return sizes


def series_part_sizes(url: str, study: str, series: str) -> List[int]:
    """The sizes of the parts of a whole-series WADO-RS answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f'{url}/studies/{study}/series/{series}',
        headers={'Accept': 'multipart/related; type="application/dicom"'},
    )
    with opener.open(request, timeout=60) as answer:
        content_type = answer.headers.get('Content-Type', '')
        body = answer.read()
    boundary = content_type.split('boundary=')[1].split(';')[0].strip('"')
    delimiter = b'\r\n--' + boundary.encode('ascii')
    sizes = []
    for chunk in (b'\r\n' + body).split(delimiter)[1:]:
        if chunk.startswith(b'--'):
            break
        sizes.append(len(chunk.split(b'\r\n\r\n', 1)[1]))
    return sizes


def rss_cohort(info: Dict[str, Any], lines: int) -> Cohort:
    """``lines`` instance lines spread over the server's series, with SOP Instance UIDs
    the server does not hold: ``--any-instance`` answers each with the series' first
    instance."""
    study = info['study_uid']
    series = info['series']
    manifest, files = [], {}
    for number in range(lines):
        entry = series[number % len(series)]
        sop = f'{study}.9.{number % len(series) + 1}.{number // len(series) + 1}'
        manifest.append(f'{study}/{entry["uid"]}/{sop}')
        files[f'{study}/{entry["uid"]}/{sop}.dcm'] = entry['first_instance_bytes']
    return Cohort(f'{lines:,} instance lines', manifest, files)


def server_cohorts(url: str, limit: Optional[int]) -> List[Cohort]:
    """Manifests of the instances a DICOMweb server lists (QIDO-RS ``/instances``, paged),
    per instance and per series.  The sizes are not known beforehand."""
    uids: List[Tuple[str, str, str]] = []
    seen = set()
    while limit is None or len(uids) < limit:
        page_size = ORTHANC_PAGE if limit is None else min(ORTHANC_PAGE, limit - len(uids))
        query = urllib.parse.urlencode({'limit': page_size, 'offset': len(uids)})
        page = get_json(f'{url.rstrip("/")}/instances?{query}', 'application/dicom+json')
        fresh = []
        for entry in page:
            key = tuple(entry[tag]['Value'][0] for tag in ('0020000D', '0020000E', '00080018'))
            if key not in seen:
                seen.add(key)
                fresh.append(key)
        if not fresh:  # the end, or a server that ignores offset
            break
        uids += fresh
    if not uids:
        raise RuntimeError(f'{url} lists no instances')
    files: Expected = {f'{study}/{series}/{sop}.dcm': None for study, series, sop in uids}
    series_lines = list(dict.fromkeys(f'{study}/{series}' for study, series, _ in uids))
    instance_lines = [f'{study}/{series}/{sop}' for study, series, sop in uids]
    cohorts = [Cohort('instance per line', instance_lines, files)]
    if limit is None:  # a series line downloads the whole series
        cohorts.append(Cohort('series per line', series_lines, files))
    return cohorts


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def speed_table(rows: List[Row]) -> str:
    lines = [
        '| case | workers | seconds | instances/s | speed-up vs workers 1 | peak RSS MiB | CPU s |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    base = {row.case: row for row in rows if row.workers == 1 and row.ok}
    for row in rows:
        if not row.ok:
            lines.append(f'| {row.case} | {row.workers} | WRONG | | | | |')
            continue
        one = base.get(row.case)
        speedup = f'{one.wall / row.wall:.2f}x' if one else '-'
        lines.append(
            f'| {row.case} | {row.workers} | {row.wall:.2f} | {row.instances / row.wall:,.0f} '
            f'| {speedup} | {row.rss / MIB:,.0f} | {row.cpu:.2f} |'
        )
    return '\n'.join(lines)


def rss_table(rows: List[Row]) -> str:
    lines = [
        '| manifest | workers | seconds | instances/s | peak RSS MiB | CPU s |',
        '|---|---:|---:|---:|---:|---:|',
    ]
    for row in rows:
        if not row.ok:
            lines.append(f'| {row.case} | {row.workers} | WRONG | | | |')
            continue
        lines.append(
            f'| {row.case} | {row.workers} | {row.wall:.2f} | {row.instances / row.wall:,.0f} '
            f'| {row.rss / MIB:,.1f} | {row.cpu:.2f} |'
        )
    return '\n'.join(lines)


def problems_of(section: str, rows: List[Row]) -> List[str]:
    out = []
    for row in rows:
        for number, run in enumerate(row.runs, start=1):
            for problem in run.problems:
                out.append(
                    f'- {section}, {row.case}, workers {row.workers}, run {number}: {problem}'
                )
    return out


def same_bytes(rows: List[Row]) -> List[str]:
    """Against a server whose sizes are not known beforehand, every run of a cohort must
    still have downloaded the same number of bytes."""
    out = []
    for case in dict.fromkeys(row.case for row in rows):
        totals = {run.nbytes for row in rows if row.case == case for run in row.runs}
        if len(totals) > 1:
            out.append(f'- server, {case}: runs downloaded different totals {sorted(totals)}')
    return out


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------


def speed_section(args: argparse.Namespace, work: Path, env: Dict[str, str]) -> List[Row]:
    per_series = args.instances // args.series
    options = ['--study-series', str(args.series), '--series-instances', str(per_series)]
    options += ['--instance-size', str(args.instance_size), '--delay', str(args.delay)]
    log(f'speed: starting the server ({args.series} series x {per_series} instances) ...')
    process, url = start_server(options, env)
    try:
        info = dict(get_json(url + '/_bench/info'), url=url)
        cohorts = bench_cohorts(info)
        warm_up(url, cohorts['instances'], max(args.workers), work, env)
        chosen = [cohorts[case] for case in args.cases]
        return measure(url, chosen, args.workers, args.repeat, work, env)
    finally:
        stop_server(process)


def rss_section(args: argparse.Namespace, work: Path, env: Dict[str, str]) -> List[Row]:
    options = ['--study-series', str(RSS_SERIES), '--series-instances', '1', '--any-instance']
    options += ['--instance-size', str(args.instance_size), '--delay', str(args.rss_delay)]
    log(f'rss: starting the server ({RSS_SERIES} series, --any-instance) ...')
    process, url = start_server(options, env)
    try:
        info = get_json(url + '/_bench/info')
        warm_up(url, rss_cohort(info, 10), args.rss_workers, work, env)
        rows = []
        for lines in args.rss_lines:
            cohort = rss_cohort(info, lines)
            rows += measure(url, [cohort], [args.rss_workers], 1, work, env)
        return rows
    finally:
        stop_server(process)


def server_section(args: argparse.Namespace, work: Path, env: Dict[str, str]) -> List[Row]:
    log(f'server: listing the instances of {args.orthanc} ...')
    cohorts = server_cohorts(args.orthanc, args.orthanc_max)
    log(f'server: {len(cohorts[0].files)} instances')
    warm_up(args.orthanc, cohorts[0], max(args.workers), work, env)
    return measure(args.orthanc, cohorts, args.workers, args.repeat, work, env)


def numbers(text: str) -> List[int]:
    try:
        values = [int(part.replace('_', '')) for part in text.split(',') if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a list of numbers: {text!r}') from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f'not a list of positive numbers: {text!r}')
    return values


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='100 instances, one run each')
    parser.add_argument('--repeat', type=int, help='runs per case; the median counts (3)')
    parser.add_argument('--workers', type=numbers, default=[1, 8], help='--workers values (1,8)')
    parser.add_argument('--instances', type=int, help='instances in the study (1000; quick 100)')
    parser.add_argument('--series', type=int, default=10, help='series in the study (10)')
    parser.add_argument(
        '--instance-size', type=int, default=8192, help='pixel bytes per instance (8192)'
    )
    parser.add_argument(
        '--delay', type=float, default=0.005, help='server delay per request, s (0.005)'
    )
    parser.add_argument(
        '--cases',
        default='instances,series',
        help='manifests of the speed table: instances (a line each), series (a line each), '
        'study (one line); default instances,series',
    )
    parser.add_argument('--no-speed', action='store_true', help='skip the speed table')
    parser.add_argument('--rss', action='store_true', help='add the peak RSS table')
    parser.add_argument(
        '--rss-lines', type=numbers, help='instance lines of the RSS manifests (1000,100000)'
    )
    parser.add_argument('--rss-workers', type=int, default=8, help='--workers of the RSS runs')
    parser.add_argument(
        '--rss-delay', type=float, default=0.0, help='server delay per request, RSS runs (0)'
    )
    parser.add_argument('--orthanc', metavar='URL', help='also time a running DICOMweb server')
    parser.add_argument('--orthanc-max', type=int, help='at most this many of its instances')
    parser.add_argument('--json', metavar='FILE', help='also write the raw results as JSON')
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.instances = args.instances or (100 if args.quick else 1000)
    args.rss_lines = args.rss_lines or ([100, 10_000] if args.quick else [1000, 100_000])
    args.cases = [case.strip() for case in args.cases.split(',') if case.strip()]
    if not set(args.cases) <= {'instances', 'series', 'study'} or not args.cases:
        parser.error(f'unknown cases: {args.cases}')
    if args.series < 1 or args.instances % args.series:
        parser.error('--instances must be a multiple of --series')
    if args.delay < 0 or args.rss_delay < 0:
        parser.error('delays cannot be negative')
    if args.repeat < 1 or args.rss_workers < 1:
        parser.error('--repeat and --rss-workers must be at least 1')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix='dicomweb-cohort-'))
    sections: Dict[str, List[Row]] = {}
    try:
        env = environment(work / 'pycache')
        version, startup = check_library(env, work)
        if not args.no_speed:
            sections['speed'] = speed_section(args, work, env)
        if args.rss:
            sections['rss'] = rss_section(args, work, env)
        if args.orthanc:
            sections['server'] = server_section(args, work, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started

    print(
        f'## retrieve --manifest (dicomweb_client {version}; {os.cpu_count()} CPUs; '
        f'took {elapsed:.0f} s)\n'
    )
    print(
        f'Seconds: wall time of the whole CLI process (its start-up, `--help`, takes '
        f'{startup:.2f} s), each run into a fresh folder; the speed tables give the median of '
        f'{args.repeat} run(s). Peak RSS is the CLI process (ru_maxrss), CPU its user+system '
        'time (median).\n'
    )
    if 'speed' in sections:
        per_series = args.instances // args.series
        print(
            f'### Speed: benchmark server, {args.instances:,} instances ({args.series} series x '
            f'{per_series}, {args.instance_size:,} pixel bytes each), {args.delay * 1000:g} ms '
            'per request\n'
        )
        print(speed_table(sections['speed']) + '\n')
    if 'rss' in sections:
        print(
            f'### Memory: --workers {args.rss_workers}, instance lines over {RSS_SERIES} series, '
            f'server delay {args.rss_delay * 1000:g} ms, one run each\n'
        )
        print(rss_table(sections['rss']) + '\n')
    if 'server' in sections:
        print(f'### Server: {args.orthanc}\n')
        print(speed_table(sections['server']) + '\n')
    problems = [line for name, rows in sections.items() for line in problems_of(name, rows)]
    problems += same_bytes(sections.get('server', []))
    print('Problems:')
    print('\n'.join(problems) if problems else '- none')
    if args.json:
        raw = {
            name: [
                {
                    'case': row.case,
                    'workers': row.workers,
                    'instances': row.instances,
                    'runs': [run.__dict__ for run in row.runs],
                }
                for row in rows
            ]
            for name, rows in sections.items()
        }
        Path(args.json).write_text(json.dumps(raw, indent=2))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
