"""Run one benchmark case a few times in this process and print one JSON line.

::

    python benchmarks/run_case.py --impl ours --case retrieve_instance_frames \\
        --url http://127.0.0.1:PORT --repeat 3

``--impl ours`` imports ``dicomweb_client`` from the project root; ``--impl reference``
imports whatever ``dicomweb_client`` the running interpreter has installed, so run it
with the reference virtualenv's python.  Both are used through the same API
(``from dicomweb_client.api import DICOMwebClient``), so the case code is shared.

The JSON line holds the best wall time, the CPU time (user + system) of that run, the
payload bytes, the requests sent, the peak RSS (``ru_maxrss``) of the whole process and
its RSS before the first run, plus any problem seen: a wrong answer, or a server-side
count (requests, STOW parts) that differs from what the case expected.  This file needs
only the standard library besides the client and pydicom, so it runs in either
environment.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import socket
import struct
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent

for _name in ('http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'):
    os.environ.pop(_name, None)
os.environ['no_proxy'] = os.environ['NO_PROXY'] = '127.0.0.1,localhost,::1'


class CheckFailed(AssertionError):
    """The answer the client produced is not the one the server sent."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Context:
    """What a case needs: the client class, the server's data and scratch space."""

    def __init__(
        self, client_class: type, url: str, info: Dict[str, Any], args: argparse.Namespace
    ) -> None:
        self.client_class = client_class
        self.url = url
        self.info = info
        self.args = args
        self.files: List[str] = []
        if args.data_dir:
            self.files = sorted(str(path) for path in Path(args.data_dir).glob('*.dcm'))
        self.leftovers: List[str] = []

    def client(self) -> Any:
        return self.client_class(self.url)

    def cleanup(self) -> None:
        for path in self.leftovers:
            shutil.rmtree(path, ignore_errors=True)
        self.leftovers.clear()


# ---------------------------------------------------------------------------------------
# Cases: each returns payload bytes, requests sent and items handled
# ---------------------------------------------------------------------------------------


def _check_frame(frame: Any, number: int, size: int) -> None:
    check(len(frame) == size, f'frame {number} has {len(frame)} bytes, expected {size}')
    check(
        bytes(frame[:8]) == struct.pack('>Q', number),
        f'frame {number} starts with {bytes(frame[:8])!r}: frames out of order or mixed',
    )


def case_retrieve_instance_frames(ctx: Context) -> Dict[str, int]:
    info = ctx.info
    numbers = list(range(1, info['frame_count'] + 1))
    frames = ctx.client().retrieve_instance_frames(
        info['study_uid'], info['series_uid'], info['sop_uid'], frame_numbers=numbers
    )
    check(len(frames) == len(numbers), f'got {len(frames)} frames, expected {len(numbers)}')
    total = 0
    for number, frame in zip(numbers, frames):
        _check_frame(frame, number, info['frame_size'])
        total += len(frame)
    return {'bytes': total, 'requests': 1, 'items': len(frames)}


def case_iter_instance_frames(ctx: Context) -> Dict[str, int]:
    info = ctx.info
    numbers = list(range(1, info['frame_count'] + 1))
    frames = ctx.client().iter_instance_frames(
        info['study_uid'], info['series_uid'], info['sop_uid'], frame_numbers=numbers
    )
    total = count = 0
    for frame in frames:
        count += 1
        _check_frame(frame, count, info['frame_size'])
        total += len(frame)
        del frame
    check(count == len(numbers), f'got {count} frames, expected {len(numbers)}')
    return {'bytes': total, 'requests': 1, 'items': count}


def case_search_for_studies(ctx: Context) -> Dict[str, int]:
    client = ctx.client()
    searches = ctx.args.searches
    expected = ctx.info['qido_count']
    for _ in range(searches):
        studies = client.search_for_studies()
        check(len(studies) == expected, f'got {len(studies)} studies, expected {expected}')
    check(studies[0]['0020000D']['Value'][0] == ctx.info['study_uid'], 'wrong first study')
    return {
        'bytes': searches * ctx.info['qido_body_bytes'],
        'requests': searches,
        'items': searches * expected,
        'connections': 1,
    }


def case_search_ceiling(ctx: Context) -> Dict[str, int]:
    """The same searches over one raw keep-alive socket, answers parsed with json.loads.

    Not a client library: the fastest a Python loop can go against this server, i.e. the
    ceiling for ``search_for_studies``.
    """
    target = urllib.parse.urlsplit(ctx.url)
    request = (
        f'GET {target.path}/studies HTTP/1.1\r\nHost: {target.netloc}\r\n'
        f'Accept: application/dicom+json\r\n\r\n'
    ).encode('ascii')
    expected = ctx.info['qido_count']
    searches = ctx.args.searches
    with socket.create_connection((target.hostname, target.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with sock.makefile('rb') as reader:
            for _ in range(searches):
                sock.sendall(request)
                status = reader.readline()
                check(status.startswith(b'HTTP/1.1 200'), f'server answered {status!r}')
                length = 0
                while True:
                    line = reader.readline()
                    if line in (b'\r\n', b''):
                        break
                    if line[:15].lower() == b'content-length:':
                        length = int(line[15:])
                studies = json.loads(reader.read(length))
                check(len(studies) == expected, f'got {len(studies)} studies, expected {expected}')
    return {
        'bytes': searches * ctx.info['qido_body_bytes'],
        'requests': searches,
        'items': searches * expected,
    }


def _file_bytes(ctx: Context) -> int:
    check(bool(ctx.files), 'no *.dcm files in --data-dir')
    return sum(os.path.getsize(path) for path in ctx.files)


def case_store_instances(ctx: Context) -> Dict[str, int]:
    """Store files from disk: ours streams the paths, the reference needs datasets."""
    size = _file_bytes(ctx)
    if ctx.args.impl == 'ours':
        instances: List[Any] = list(ctx.files)
    else:
        import pydicom

        instances = [pydicom.dcmread(path) for path in ctx.files]
    ctx.client().store_instances(instances)
    return {'bytes': size, 'requests': 1, 'items': len(ctx.files), 'stow_parts': len(ctx.files)}


def case_store_instances_datasets(ctx: Context) -> Dict[str, int]:
    """Store files from disk read as pydicom datasets, for both implementations."""
    import pydicom

    size = _file_bytes(ctx)
    ctx.client().store_instances([pydicom.dcmread(path) for path in ctx.files])
    return {'bytes': size, 'requests': 1, 'items': len(ctx.files), 'stow_parts': len(ctx.files)}


def _check_series(uids: List[str], info: Dict[str, Any]) -> None:
    expected = [
        f'{info["series_sop_prefix"]}{number}' for number in range(1, info['series_count'] + 1)
    ]
    check(len(uids) == len(expected), f'got {len(uids)} instances, expected {len(expected)}')
    check(uids == expected, 'instances differ from the ones sent or are out of order')


def case_retrieve_series(ctx: Context) -> Dict[str, int]:
    info = ctx.info
    datasets = ctx.client().retrieve_series(info['study_uid'], info['series_uid'])
    _check_series([str(ds.SOPInstanceUID) for ds in datasets], info)
    pixels = {len(ds.PixelData) for ds in datasets}
    check(len(pixels) == 1, f'instances have pixel data of sizes {sorted(pixels)}')
    return {
        'bytes': len(datasets) * info['series_instance_bytes'],
        'requests': 1,
        'items': len(datasets),
    }


def _workers(ctx: Context) -> int:
    """The ``workers=`` of the parallel cases; only this project has that keyword."""
    if ctx.args.impl != 'ours':
        raise NotImplementedError(
            'the reference package has no parallel retrieval '
            '(workers=); the parallel cases are ours only'
        )
    return ctx.args.workers


def case_retrieve_series_parallel(ctx: Context) -> Dict[str, int]:
    """``retrieve_series(..., workers=N)``: one QIDO-RS search of the series' instances,
    then one WADO-RS request per instance, up to N at a time."""
    info = ctx.info
    workers = _workers(ctx)
    datasets = ctx.client().retrieve_series(info['study_uid'], info['series_uid'], workers=workers)
    _check_series([str(ds.SOPInstanceUID) for ds in datasets], info)
    pixels = {len(ds.PixelData) for ds in datasets}
    check(len(pixels) == 1, f'instances have pixel data of sizes {sorted(pixels)}')
    # the search takes two pages: all instances, then the empty page that ends the paging
    requests = len(datasets) + 2 if workers > 1 else 1
    return {
        'bytes': len(datasets) * info['series_instance_bytes'],
        'requests': requests,
        'items': len(datasets),
    }


def case_retrieve_instance_frames_parallel(ctx: Context) -> Dict[str, int]:
    """``retrieve_instance_frames(..., workers=N)``: the frame list split into N contiguous
    pieces, one request each."""
    info = ctx.info
    workers = _workers(ctx)
    numbers = list(range(1, info['frame_count'] + 1))
    frames = ctx.client().retrieve_instance_frames(
        info['study_uid'],
        info['series_uid'],
        info['sop_uid'],
        frame_numbers=numbers,
        workers=workers,
    )
    check(len(frames) == len(numbers), f'got {len(frames)} frames, expected {len(numbers)}')
    total = 0
    for number, frame in zip(numbers, frames):
        _check_frame(frame, number, info['frame_size'])
        total += len(frame)
    size = -(-len(numbers) // workers)  # frames per request
    requests = -(-len(numbers) // size) if workers > 1 and len(numbers) > 1 else 1
    return {'bytes': total, 'requests': requests, 'items': len(frames)}


def case_iter_series_to_disk(ctx: Context) -> Dict[str, int]:
    info = ctx.info
    out = tempfile.mkdtemp(prefix='iter-series-', dir=ctx.args.scratch)
    ctx.leftovers.append(out)
    uids = []
    for number, ds in enumerate(ctx.client().iter_series(info['study_uid'], info['series_uid']), 1):
        ds.save_as(os.path.join(out, f'{number:05d}.dcm'))
        uids.append(str(ds.SOPInstanceUID))
    _check_series(uids, info)
    written = sum(entry.stat().st_size for entry in os.scandir(out))
    return {
        'bytes': len(uids) * info['series_instance_bytes'],
        'requests': 1,
        'items': len(uids),
        'written': written,
    }


CASES: Dict[str, Callable[[Context], Dict[str, int]]] = {
    'retrieve_instance_frames': case_retrieve_instance_frames,
    'iter_instance_frames': case_iter_instance_frames,
    'search_for_studies': case_search_for_studies,
    'search_ceiling': case_search_ceiling,
    'store_instances': case_store_instances,
    'store_instances_datasets': case_store_instances_datasets,
    'retrieve_series': case_retrieve_series,
    'iter_series_to_disk': case_iter_series_to_disk,
    'retrieve_series_parallel': case_retrieve_series_parallel,
    'retrieve_instance_frames_parallel': case_retrieve_instance_frames_parallel,
}


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(url: str) -> Dict[str, Any]:
    with _NO_PROXY.open(url, timeout=30) as answer:
        return json.loads(answer.read())


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_once(
    case: Callable[[Context], Dict[str, int]], ctx: Context, problems: List[str]
) -> Dict[str, Any]:
    gc.collect()
    before = _get_json(ctx.url + '/_bench/stats')
    cpu0, t0 = _cpu(), time.perf_counter()
    outcome = case(ctx)
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    after = _get_json(ctx.url + '/_bench/stats')
    ctx.cleanup()
    served = {name: after[name] - before[name] for name in after}
    if served['requests'] != outcome['requests']:
        problems.append(
            f'server saw {served["requests"]} requests, the case sent {outcome["requests"]}'
        )
    if served['errors']:
        problems.append(f'server answered {served["errors"]} requests with an error')
    if 'connections' in outcome and served['connections'] > outcome['connections']:
        problems.append(
            f'server saw {served["connections"]} connections, expected at most '
            f'{outcome["connections"]} (keep-alive not used?)'
        )
    if 'stow_parts' in outcome and served['stow_parts'] != outcome['stow_parts']:
        problems.append(
            f'server received {served["stow_parts"]} STOW parts, expected {outcome["stow_parts"]}'
        )
    return {'wall': wall, 'cpu': cpu, 'outcome': outcome, 'served': served}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='Run one benchmark case; print JSON.')
    parser.add_argument('--impl', choices=('ours', 'reference'), required=True)
    parser.add_argument('--case', choices=sorted(CASES), required=True)
    parser.add_argument('--url', required=True, help='base URL of benchmarks.server')
    parser.add_argument('--repeat', type=int, default=3, help='timed runs; the best counts')
    parser.add_argument(
        '--searches', type=int, default=1000, help='searches per run of search_for_studies'
    )
    parser.add_argument(
        '--workers', type=int, default=4, help='workers= of the parallel cases (ours only)'
    )
    parser.add_argument('--data-dir', help='folder of *.dcm files for the STOW cases')
    parser.add_argument('--scratch', default=None, help='folder for files written to disk')
    parser.add_argument(
        '--profile',
        type=int,
        default=0,
        metavar='N',
        help='after the timed runs, profile one more run and print the N '
        'functions with the most own time to standard error',
    )
    args = parser.parse_args(argv)

    if args.impl == 'ours':
        sys.path.insert(0, str(ROOT))
    else:
        sys.path[:] = [entry for entry in sys.path if entry and Path(entry).resolve() != ROOT]
    import pydicom  # noqa: F401 - counted in the baseline for both implementations
    import dicomweb_client
    from dicomweb_client.api import DICOMwebClient

    module_file = str(Path(dicomweb_client.__file__).resolve())
    from_project = module_file == str(ROOT / 'dicomweb_client.py')
    if from_project != (args.impl == 'ours'):
        print(f'wrong dicomweb_client imported for {args.impl}: {module_file}', file=sys.stderr)
        return 2

    url = args.url.rstrip('/')
    ctx = Context(DICOMwebClient, url, _get_json(url + '/_bench/info'), args)
    case = CASES[args.case]
    result: Dict[str, Any] = {
        'impl': args.impl,
        'case': args.case,
        'module': module_file,
        'version': getattr(dicomweb_client, '__version__', '?'),
        'python': sys.version.split()[0],
        'repeat': args.repeat,
        'rss_baseline': _peak_rss(),
        'problems': [],
    }
    runs = []
    try:
        for _ in range(max(args.repeat, 1)):
            runs.append(_run_once(case, ctx, result['problems']))
    except Exception as error:  # noqa: BLE001 - reported, not raised: the table shows it
        ctx.cleanup()
        result['error'] = f'{type(error).__name__}: {error}'
        result['traceback'] = traceback.format_exc(limit=8)
    if runs:
        best = min(runs, key=lambda run: run['wall'])
        result.update(
            {
                'wall': best['wall'],
                'walls': [run['wall'] for run in runs],
                'cpu': best['cpu'],
                'bytes': best['outcome']['bytes'],
                'requests': best['outcome']['requests'],
                'items': best['outcome']['items'],
                'served': best['served'],
            }
        )
    result['rss_peak'] = _peak_rss()
    result['problems'] = sorted(set(result['problems']))

    if args.profile and 'error' not in result:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            case(ctx)
        finally:
            profiler.disable()
            ctx.cleanup()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats('tottime').print_stats(args.profile)
        print(text.getvalue(), file=sys.stderr)

    print(json.dumps(result), flush=True)
    return 1 if 'error' in result else 0


if __name__ == '__main__':
    sys.exit(main())
