"""Run the benchmark suite: this project against the reference package, and curl.

::

    python benchmarks/run.py                          # full run (about 2-3 minutes)
    python benchmarks/run.py --quick                  # smaller data, fewer runs
    python benchmarks/run.py --create-reference-venv  # first make the reference venv
    python benchmarks/run.py --cases parallel --part-delay 0.005   # workers= vs sequential

Starts ``benchmarks.server`` as its own process, then runs every case in a fresh child
process per implementation (``benchmarks/run_case.py``): this project with this
interpreter, the reference ``dicomweb-client`` with the interpreter of
``benchmarks/.venv-reference`` when that virtualenv exists.  ``curl`` downloads the
frames once more as the wire ceiling.  The result is a Markdown table on standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks import server as bench_server  # noqa: E402

REFERENCE_VENV = HERE / '.venv-reference'
GB = 1e9
MIB = 1 << 20

# case name -> (row label, unit); the unit is GB/s of payload or requests per second
ROWS: Dict[str, Tuple[str, str]] = {
    'retrieve_instance_frames': ('retrieve_instance_frames (list)', 'GB/s'),
    'iter_instance_frames': ('iter_instance_frames (streamed)', 'GB/s'),
    'search_for_studies': ('search_for_studies (loop, keep-alive)', 'req/s'),
    'store_instances': ('store_instances (files; ours: paths)', 'GB/s'),
    'store_instances_datasets': ('store_instances (datasets, both)', 'GB/s'),
    'retrieve_series': ('retrieve_series (small instances)', 'GB/s'),
    'iter_series_to_disk': ('iter_series to disk (save_as)', 'GB/s'),
}

# parallel case -> (its sequential counterpart, row label, unit); ours only, because the
# reference package has no workers= keyword.  "--cases parallel" selects all of them.
PARALLEL: Dict[str, Tuple[str, str, str]] = {
    'retrieve_series_parallel': ('retrieve_series', 'retrieve_series (small instances)', 'GB/s'),
    'retrieve_instance_frames_parallel': (
        'retrieve_instance_frames',
        'retrieve_instance_frames (list)',
        'GB/s',
    ),
}

SIZES = {
    # frames, frame size, series instances, pixel bytes per instance, STOW files,
    # bytes per STOW file, searches per run, timed runs per process, processes per case and
    # implementation (alternating which implementation goes first)
    'full': dict(
        frames=100,
        frame_size=4 * MIB,
        series=200,
        instance_size=70_000,
        stow_files=200,
        stow_size=1_000_000,
        searches=1000,
        repeat=3,
        rounds=2,
    ),
    'quick': dict(
        frames=25,
        frame_size=4 * MIB,
        series=50,
        instance_size=70_000,
        stow_files=50,
        stow_size=1_000_000,
        searches=200,
        repeat=2,
        rounds=1,
    ),
}

PROXY_VARIABLES = (
    'http_proxy',
    'https_proxy',
    'all_proxy',
    'HTTP_PROXY',
    'HTTPS_PROXY',
    'ALL_PROXY',
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child_env(impl: str) -> Dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}
    env['no_proxy'] = env['NO_PROXY'] = '127.0.0.1,localhost,::1'
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    if impl == 'reference':
        env.pop('PYTHONPATH', None)  # the project root must not shadow the reference
    return env


def create_reference_venv() -> None:
    log(f'creating {REFERENCE_VENV} with dicomweb-client from PyPI ...')
    subprocess.run([sys.executable, '-m', 'venv', str(REFERENCE_VENV)], check=True)
    subprocess.run(
        [str(REFERENCE_VENV / 'bin' / 'python'), '-m', 'pip', 'install', '-q', 'dicomweb-client'],
        check=True,
    )


def start_server(
    sizes: Dict[str, int], delay: float, part_delay: float = 0.0
) -> Tuple[subprocess.Popen, str]:
    command = [
        sys.executable,
        '-m',
        'benchmarks.server',
        '--port',
        '0',
        '--frames',
        str(sizes['frames']),
        '--frame-size',
        str(sizes['frame_size']),
        '--series-instances',
        str(sizes['series']),
        '--instance-size',
        str(sizes['instance_size']),
        '--delay',
        str(delay),
        '--part-delay',
        str(part_delay),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=child_env('ours')
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        raise RuntimeError(f'benchmark server did not start (said {line!r})')
    return process, f'http://127.0.0.1:{line}'


def write_stow_files(folder: Path, count: int, size: int) -> int:
    total = 0
    for number in range(1, count + 1):
        data = bench_server.make_instance(
            f'1.2.826.0.1.3680043.8.498.7004.1.{number}',
            number,
            size,
            study_uid='1.2.826.0.1.3680043.8.498.7004',
            series_uid='1.2.826.0.1.3680043.8.498.7004.1',
        )
        (folder / f'{number:05d}.dcm').write_bytes(data)
        total += len(data)
    return total


def run_case(
    python: str,
    impl: str,
    case: str,
    url: str,
    sizes: Dict[str, int],
    data_dir: Path,
    scratch: Path,
    profile: int = 0,
    repeat: Optional[int] = None,
    workers: Optional[int] = None,
) -> Dict[str, Any]:
    command = [
        python,
        str(HERE / 'run_case.py'),
        '--impl',
        impl,
        '--case',
        case,
        '--url',
        url,
        '--repeat',
        str(repeat or sizes['repeat']),
        '--searches',
        str(sizes['searches']),
        '--data-dir',
        str(data_dir),
        '--scratch',
        str(scratch),
    ]
    if workers is not None:
        command += ['--workers', str(workers)]
    if profile:
        command += ['--profile', str(profile)]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, env=child_env(impl), timeout=600
        )
    except subprocess.TimeoutExpired:
        return {'impl': impl, 'case': case, 'error': 'timed out after 600 s', 'problems': []}
    lines = [line for line in done.stdout.splitlines() if line.startswith('{')]
    if not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {
            'impl': impl,
            'case': case,
            'problems': [],
            'error': f'exit status {done.returncode}: {" | ".join(tail)}',
        }
    result = json.loads(lines[-1])
    result['stderr'] = done.stderr
    return result


def better(old: Optional[Dict[str, Any]], new: Dict[str, Any]) -> Dict[str, Any]:
    """Keep the faster of two results of the same case; problems of both are kept."""
    if old is None:
        return new
    problems = sorted(set(old.get('problems', [])) | set(new.get('problems', [])))
    if 'wall' not in new or ('wall' in old and old['wall'] <= new['wall']):
        kept = dict(old)
    else:
        kept = dict(new)
    kept['rss_peak'] = max(old.get('rss_peak', 0), new.get('rss_peak', 0))
    kept['problems'] = problems
    if 'error' in old or 'error' in new:
        kept['error'] = old.get('error') or new.get('error')
    return kept


def run_curl(
    url: str, sizes: Dict[str, int], info: Dict[str, Any], repeat: int
) -> Optional[Dict[str, Any]]:
    """Best of ``repeat`` curl downloads of every frame; curl is reaped with wait4, so its
    CPU time is known too."""
    curl = shutil.which('curl')
    if curl is None:
        return None
    frames = ','.join(str(number) for number in range(1, sizes['frames'] + 1))
    target = (
        f'{url}/studies/{info["study_uid"]}/series/{info["series_uid"]}/instances/'
        f'{info["sop_uid"]}/frames/{frames}'
    )
    best: Optional[Dict[str, Any]] = None
    for _ in range(repeat):
        read_end, write_end = os.pipe()
        pid = os.posix_spawn(
            curl,
            [
                curl,
                '-s',
                '-o',
                '/dev/null',
                '--noproxy',
                '*',
                '-H',
                'Accept: multipart/related; type="application/octet-stream"',
                target,
                '-w',
                '%{speed_download} %{size_download} %{http_code}',
            ],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 1), (os.POSIX_SPAWN_CLOSE, read_end)],
        )
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            out = pipe.read()
        _, status, usage = os.wait4(pid, 0)
        speed, size, code = out.split()
        result = {
            'speed': float(speed),
            'bytes': int(size),
            'code': code,
            'status': status,
            'cpu': usage.ru_utime + usage.ru_stime,
        }
        if best is None or result['speed'] > best['speed']:
            best = result
    return best


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def rate(result: Optional[Dict[str, Any]], unit: str) -> Optional[float]:
    if not result or 'wall' not in result or not result['wall']:
        return None
    if unit == 'req/s':
        return result['requests'] / result['wall']
    return result['bytes'] / result['wall'] / GB


def fmt_rate(value: Optional[float], unit: str) -> str:
    if value is None:
        return '-'
    return f'{value:,.0f}' if unit == 'req/s' else f'{value:.3f}'


def fmt_mib(value: Optional[int]) -> str:
    return '-' if value is None else f'{value / MIB:,.0f}'


def fmt_cpu(result: Optional[Dict[str, Any]]) -> str:
    if not result or result.get('cpu') is None:
        return '-'
    return f'{result["cpu"]:.2f}'


def cell(result: Optional[Dict[str, Any]], unit: str) -> str:
    if result is None:
        return 'not run'
    if 'error' in result:
        return 'ERROR'
    return fmt_rate(rate(result, unit), unit)


def table(
    results: Dict[str, Dict[str, Dict[str, Any]]], curl: Optional[Dict[str, Any]], cases: List[str]
) -> str:
    """The Markdown table: one row per case, then the ceilings (curl, raw socket)."""
    lines = [
        '| row | unit | ours | reference | ours/ref | ours peak RSS MiB '
        '| ref peak RSS MiB | ours CPU s | ref CPU s | payload MiB |',
        '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for case in cases:
        label, unit = ROWS[case]
        ours = results.get(case, {}).get('ours')
        reference = results.get(case, {}).get('reference')
        ours_rate, reference_rate = rate(ours, unit), rate(reference, unit)
        ratio = (
            f'{ours_rate / reference_rate:.2f}x'
            if ours_rate
            and reference_rate
            and 'error' not in (ours or {})
            and 'error' not in (reference or {})
            else '-'
        )
        payload = next((r['bytes'] for r in (ours, reference) if r and r.get('bytes')), None)
        lines.append(
            f'| {label} | {unit} | {cell(ours, unit)} | {cell(reference, unit)} | {ratio} '
            f'| {fmt_mib((ours or {}).get("rss_peak"))} '
            f'| {fmt_mib((reference or {}).get("rss_peak"))} '
            f'| {fmt_cpu(ours)} | {fmt_cpu(reference)} '
            f'| {fmt_mib(payload) if unit != "req/s" else "-"} |'
        )
    if curl is not None:
        # curl's ru_maxrss is not shown: started with vfork, it inherits this process's
        lines.append(
            f'| curl, frames to /dev/null (wire ceiling) | GB/s '
            f'| {curl["speed"] / GB:.3f} | | | - | '
            f'| {curl["cpu"]:.2f} | | {fmt_mib(curl["bytes"])} |'
        )
    ceiling = results.get('search_ceiling', {}).get('ours')
    if ceiling is not None:
        lines.append(
            f'| raw socket + json.loads, search loop (ceiling) | req/s '
            f'| {cell(ceiling, "req/s")} | | | {fmt_mib(ceiling.get("rss_peak"))} | '
            f'| {fmt_cpu(ceiling)} | | - |'
        )
    return '\n'.join(lines)


def parallel_table(
    results: Dict[str, Dict[str, Dict[str, Any]]],
    sizes: Dict[str, int],
    workers: int,
    part_delay: float,
) -> str:
    """Our sequential call against the same call with ``workers=``, same server."""
    lines = [
        f'| row | unit | sequential | workers={workers} | speed-up (parallel/sequential) '
        '| wall s (seq / par) | requests (seq / par) | peak RSS MiB (seq / par) '
        '| CPU s (seq / par) | server wait alone s (seq / par) |',
        '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    parts = {
        'retrieve_series_parallel': sizes['series'],
        'retrieve_instance_frames_parallel': sizes['frames'],
    }
    for case, (_, label, unit) in PARALLEL.items():
        if case not in results:
            continue
        seq, par = results[case].get('sequential'), results[case].get('parallel')
        seq_rate, par_rate = rate(seq, unit), rate(par, unit)
        ok = seq_rate and par_rate and 'error' not in (seq or {}) and 'error' not in (par or {})
        speedup = f'{par_rate / seq_rate:.2f}x' if ok else '-'

        def pair(key: str, fmt: str, seq: Any = seq, par: Any = par) -> str:
            values = [(r or {}).get(key) for r in (seq, par)]
            return ' / '.join('-' if v is None else format(v, fmt) for v in values)

        wait = parts[case] * part_delay  # the server's sleeps for one call, back to back
        lines.append(
            f'| {label} | {unit} | {cell(seq, unit)} | {cell(par, unit)} | {speedup} '
            f'| {pair("wall", ".3f")} | {pair("requests", "d")} '
            f'| {fmt_mib((seq or {}).get("rss_peak"))} / '
            f'{fmt_mib((par or {}).get("rss_peak"))} '
            f'| {fmt_cpu(seq)} / {fmt_cpu(par)} '
            f'| {wait:.2f} / {wait / min(workers, parts[case]):.2f} |'
        )
    return '\n'.join(lines)


def targets(results: Dict[str, Dict[str, Dict[str, Any]]]) -> List[str]:
    """The goals of the issue, each with the measured value and whether it is met."""
    out = []

    def pair(case: str, unit: str) -> Tuple[Optional[float], Optional[float]]:
        got = results.get(case, {})
        return rate(got.get('ours'), unit), rate(got.get('reference'), unit)

    def verdict(ok: bool) -> str:
        return 'met' if ok else 'MISSED'

    for case, unit, goal in (
        ('retrieve_instance_frames', 'GB/s', 5.0),
        ('iter_instance_frames', 'GB/s', 1.5),
        ('search_for_studies', 'req/s', 4.0),
    ):
        if case not in results:
            continue
        ours, reference = pair(case, unit)
        if ours and reference:
            out.append(
                f'- {case}: ours/reference {ours / reference:.2f}x, goal >= {goal}x: '
                f'{verdict(ours / reference >= goal)}'
            )
        else:
            out.append(f'- {case}: ratio not measured (no reference result)')
    frames = results.get('retrieve_instance_frames', {}).get('ours')
    if frames and frames.get('bytes'):
        share = frames['rss_peak'] / frames['bytes']
        above = (frames['rss_peak'] - frames['rss_baseline']) / frames['bytes']
        out.append(
            f'- retrieve_instance_frames peak RSS: {share:.2f}x payload '
            f'({fmt_mib(frames["rss_peak"])} MiB for {fmt_mib(frames["bytes"])} MiB; '
            f'{above:.2f}x above the {fmt_mib(frames["rss_baseline"])} MiB baseline), '
            f'goal <= 1.3x: {verdict(share <= 1.3)}'
        )
    stow = results.get('store_instances', {}).get('ours')
    if stow and stow.get('wall'):
        speed = stow['bytes'] / stow['wall'] / GB
        growth = stow['rss_peak'] - stow['rss_baseline']
        out.append(
            f'- store_instances from files: {speed:.2f} GB/s, goal >= 1 GB/s: '
            f'{verdict(speed >= 1.0)}; peak RSS {fmt_mib(growth)} MiB above baseline '
            f'for {fmt_mib(stow["bytes"])} MiB of files (constant memory: '
            f'{verdict(growth <= 64 * MIB)})'
        )
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Benchmark dicomweb_client against the reference package on a loopback server.'
    )
    parser.add_argument('--quick', action='store_true', help='smaller data, fewer runs')
    parser.add_argument(
        '--cases',
        default=','.join(ROWS),
        help='comma-separated cases (default: all of the main table): '
        + ', '.join(ROWS)
        + '; or "parallel" (or '
        + ', '.join(PARALLEL)
        + ') for our workers= against our '
        'sequential call',
    )
    parser.add_argument('--repeat', type=int, help='timed runs per process (best counts)')
    parser.add_argument(
        '--rounds',
        type=int,
        help='processes per case and implementation, alternating which goes '
        'first; the best run of all counts (default 2, quick 1)',
    )
    parser.add_argument('--searches', type=int, help='searches per search_for_studies run')
    parser.add_argument(
        '--delay', type=float, default=0.0, help='server delay per DICOMweb request, seconds'
    )
    parser.add_argument(
        '--part-delay',
        type=float,
        default=0.0,
        metavar='SECONDS',
        help='server delay before each part (instance, frame) of a multipart '
        'answer, seconds; meant for the parallel cases',
    )
    parser.add_argument(
        '--workers', type=int, default=4, help='workers= of the parallel cases (default 4)'
    )
    parser.add_argument('--no-reference', action='store_true', help='measure only this project')
    parser.add_argument(
        '--create-reference-venv',
        action='store_true',
        help=f'create {REFERENCE_VENV.relative_to(ROOT)} with pip install '
        'dicomweb-client if it is missing',
    )
    parser.add_argument(
        '--reference-python',
        help='python of an environment that has the '
        'reference package (default: the reference venv)',
    )
    parser.add_argument(
        '--profile',
        default='',
        metavar='CASES',
        help='comma-separated cases to profile on our side with cProfile',
    )
    parser.add_argument(
        '--profile-top', type=int, default=10, help='functions shown per profile (by own time)'
    )
    parser.add_argument('--json', metavar='FILE', help='also write the raw results as JSON')
    args = parser.parse_args(argv)

    sizes = dict(SIZES['quick' if args.quick else 'full'])
    if args.repeat:
        sizes['repeat'] = args.repeat
    if args.searches:
        sizes['searches'] = args.searches
    if args.rounds:
        sizes['rounds'] = args.rounds
    cases, parallel_cases = [], []
    for case in (case.strip() for case in args.cases.split(',') if case.strip()):
        if case == 'parallel':
            parallel_cases += [name for name in PARALLEL if name not in parallel_cases]
        elif case in PARALLEL:
            if case not in parallel_cases:
                parallel_cases.append(case)
        elif case in ROWS:
            cases.append(case)
        else:
            parser.error(f'unknown case: {case}')
    if args.workers < 2:
        parser.error('--workers must be at least 2')
    if args.part_delay < 0 or args.delay < 0:
        parser.error('delays cannot be negative')
    profile_cases = [case.strip() for case in args.profile.split(',') if case.strip()]

    if args.create_reference_venv and not (REFERENCE_VENV / 'bin' / 'python').exists():
        create_reference_venv()
    reference_python = args.reference_python
    if reference_python is None and (REFERENCE_VENV / 'bin' / 'python').exists():
        reference_python = str(REFERENCE_VENV / 'bin' / 'python')
    if args.no_reference:
        reference_python = None
    if reference_python is None:
        log('no reference environment: measuring only this project (see --create-reference-venv)')

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix='dicomweb-bench-'))
    server_process: Optional[subprocess.Popen] = None
    results: Dict[str, Dict[str, Dict[str, Any]]] = {}
    parallel_results: Dict[str, Dict[str, Dict[str, Any]]] = {}
    profiles: Dict[str, str] = {}
    curl = None
    try:
        log('building answers and starting the server ...')
        server_process, url = start_server(sizes, args.delay, args.part_delay)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url + '/_bench/info', timeout=30) as answer:
            info = json.loads(answer.read())
        data_dir, scratch = work / 'stow', work / 'scratch'
        data_dir.mkdir()
        scratch.mkdir()
        if any(case.startswith('store_instances') for case in cases):
            log(f'writing {sizes["stow_files"]} STOW files of ~{sizes["stow_size"]:,} bytes')
            write_stow_files(data_dir, sizes['stow_files'], sizes['stow_size'])

        impls = [('ours', sys.executable)]
        if reference_python:
            impls.append(('reference', reference_python))
        for case in cases:
            for round_number in range(max(sizes['rounds'], 1)):
                order = impls if round_number % 2 == 0 else impls[::-1]
                for impl, python in order:
                    log(f'{case}: {impl} (round {round_number + 1}) ...')
                    result = run_case(python, impl, case, url, sizes, data_dir, scratch)
                    slot = results.setdefault(case, {})
                    slot[impl] = better(slot.get(impl), result)
        # parallel section: ours only, sequential against workers=N on the same server,
        # alternating which of the two goes first
        for case in parallel_cases:
            sequential = PARALLEL[case][0]
            runs = [('sequential', sequential, None), ('parallel', case, args.workers)]
            for round_number in range(max(sizes['rounds'], 1)):
                for mode, name, workers in runs if round_number % 2 == 0 else runs[::-1]:
                    log(
                        f'{name}: ours{f" workers={workers}" if workers else ""} '
                        f'(round {round_number + 1}) ...'
                    )
                    result = run_case(
                        sys.executable, 'ours', name, url, sizes, data_dir, scratch, workers=workers
                    )
                    slot = parallel_results.setdefault(case, {})
                    slot[mode] = better(slot.get(mode), result)
        if 'search_for_studies' in cases:
            log('search ceiling (raw socket) ...')
            ceiling = None
            for _ in range(max(sizes['rounds'], 1)):
                ceiling = better(
                    ceiling,
                    run_case(
                        sys.executable, 'ours', 'search_ceiling', url, sizes, data_dir, scratch
                    ),
                )
            results['search_ceiling'] = {'ours': ceiling}
        if 'retrieve_instance_frames' in cases or 'iter_instance_frames' in cases:
            log('curl ...')
            curl = run_curl(url, sizes, info, sizes['repeat'] + 1)
        for case in profile_cases:
            log(f'profiling {case} (ours) ...')
            result = run_case(
                sys.executable,
                'ours',
                case,
                url,
                sizes,
                data_dir,
                scratch,
                profile=args.profile_top,
                repeat=1,
            )
            profiles[case] = result.get('stderr', '') or result.get('error', '')
    finally:
        if server_process is not None:
            server_process.terminate()
            server_process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.perf_counter() - started
    print(
        f'## dicomweb_client benchmarks ({"quick" if args.quick else "full"}; best of '
        f'{sizes["repeat"]} runs x {max(sizes["rounds"], 1)} process(es); {os.cpu_count()} '
        f'CPUs; took {elapsed:.0f} s)\n'
    )
    print(
        f'Data: {sizes["frames"]} frames x {sizes["frame_size"] / MIB:g} MiB; '
        f'series of {sizes["series"]} instances x ~{sizes["instance_size"] / 1000:g} kB; '
        f'STOW of {sizes["stow_files"]} files x ~{sizes["stow_size"] / 1e6:g} MB; '
        f'{sizes["searches"]} searches per run'
        + (f'; server delay {args.delay:g} s per request' if args.delay else '')
        + (
            f'; server part delay {args.part_delay:g} s per instance/frame'
            if args.part_delay
            else ''
        )
        + '.\n'
    )
    versions = {
        impl: result.get('version')
        for slot in list(results.values()) + list(parallel_results.values())
        for impl, result in slot.items()
        if result.get('version')
    }
    if cases:
        print(table(results, curl, cases))
        print(
            f'\nVersions: '
            f'{", ".join(f"{impl} {version}" for impl, version in versions.items())}'
            '. Rates count payload bytes (frames, files, instances) per wall second; peak '
            'RSS is the whole client process (ru_maxrss), CPU is user+system of the best '
            'run.'
        )
        print('\nTargets:')
        print('\n'.join(targets(results)))
    if parallel_cases:
        print(
            f'\n### Parallel retrieval (ours only; workers={args.workers}; server part delay '
            f'{args.part_delay:g} s)\n'
        )
        print(parallel_table(parallel_results, sizes, args.workers, args.part_delay))
        print(
            '\nThe reference package has no parallel mode, so it has no column here. '
            'Sequential is one request for the whole series or frame list; parallel is a '
            'QIDO-RS search plus one request per instance (series), or one request per '
            'contiguous piece of the frame list (frames). "Server wait alone" is the sum of '
            'the part delays of one call, divided by the workers for the parallel call: the '
            'floor that overlapping can reach.'
        )
    problems = []
    labelled = list(results.items()) + [
        (case, {mode: result})
        for case, slot in parallel_results.items()
        for mode, result in slot.items()
    ]
    for case, slot in labelled:
        for impl, result in slot.items():
            if 'error' in result:
                problems.append(f'- {case} ({impl}): {result["error"]}')
                if result.get('traceback'):
                    problems.append('  ' + result['traceback'].strip().replace('\n', '\n  '))
            for problem in result.get('problems', []):
                problems.append(f'- {case} ({impl}): {problem}')
    if curl is not None and curl['code'] != '200':
        problems.append(f'- curl got HTTP status {curl["code"]}')
    elif curl is not None and curl['bytes'] != info['frames_body_bytes']:
        problems.append(
            f'- curl received {curl["bytes"]} bytes, the server sends {info["frames_body_bytes"]}'
        )
    print('\nProblems:')
    print('\n'.join(problems) if problems else '- none')
    for case, text in profiles.items():
        print(f'\n### Profile of {case} (ours), top {args.profile_top} by own time\n')
        print('```\n' + text.strip() + '\n```')
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    'sizes': sizes,
                    'results': results,
                    'parallel': parallel_results,
                    'curl': curl,
                    'delay': args.delay,
                    'part_delay': args.part_delay,
                    'workers': args.workers,
                },
                indent=2,
            )
        )
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
