"""Run scripted calls through one dicomweb_client implementation and describe the outcome.

This script is the half of the differential oracle (``test_oracle.py``) that runs inside
the implementation under test: once with this project's module, once with the established
``dicomweb-client`` package from its own virtualenv.  It must therefore import nothing
from the test suite and nothing but the standard library before the package.

Usage::

    python oracle_runner.py JOB.json [--project-root ROOT]

``JOB.json`` holds ``{"scenarios": [{"id", "url", "setup", "call"}, ...]}``.  For each
scenario, ``setup`` (statements) and then ``call`` (one expression) run in a namespace
that holds the package's modules and ``URL`` (the scenario's server URL).  One JSON line
per scenario goes to stdout: ``{"id", "outcome": {...}}`` where the outcome describes
either the normalized result or the exception raised.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import hashlib
import importlib
import io
import json
import sys
import time
import types
from typing import Any, Dict, List

# Exception classes a caller might catch; an exception is described by those it is an
# instance of, so that the two packages' own class names do not matter, only what
# ``except`` clauses would catch.
_CATALOGUE = [
    ('builtins', name)
    for name in (
        'ValueError',
        'TypeError',
        'KeyError',
        'IndexError',
        'LookupError',
        'OSError',
        'FileNotFoundError',
        'PermissionError',
        'FileExistsError',
        'IsADirectoryError',
        'ConnectionError',
        'TimeoutError',
        'RuntimeError',
        'AttributeError',
        'NotImplementedError',
        'UnicodeError',
        'AssertionError',
        'StopIteration',
        'SystemExit',
        'ImportError',
    )
] + [
    ('json', 'JSONDecodeError'),
    ('requests.exceptions', 'RequestException'),
    ('requests.exceptions', 'HTTPError'),
    ('requests.exceptions', 'ConnectionError'),
    ('requests.exceptions', 'Timeout'),
    ('requests.exceptions', 'ContentDecodingError'),
    ('requests.exceptions', 'ChunkedEncodingError'),
    ('requests.exceptions', 'SSLError'),
    ('requests.exceptions', 'InvalidURL'),
    ('requests.exceptions', 'MissingSchema'),
    ('requests.exceptions', 'InvalidSchema'),
    ('retrying', 'RetryError'),
    ('pydicom.errors', 'InvalidDicomError'),
]

_MODULES = {
    'dicomweb_client': 'dicomweb_client',
    'api': 'dicomweb_client.api',
    'uri': 'dicomweb_client.uri',
    'session_utils': 'dicomweb_client.session_utils',
    'protocol': 'dicomweb_client.protocol',
    'log': 'dicomweb_client.log',
    'cli': 'dicomweb_client.cli',
    'gcp_uri': 'dicomweb_client.ext.gcp.uri',
}


def _catalogue() -> List[tuple]:
    """``(qualified name, class)`` of every catalogued exception class importable here."""
    found = []
    for module_name, class_name in _CATALOGUE:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.append((f'{module_name}.{class_name}', getattr(module, class_name)))
    return found


def _digest(data: bytes) -> Dict[str, Any]:
    return {'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest()[:20]}


def normalize(value: Any, depth: int = 0) -> Any:
    """A JSON-able description of ``value`` that is equal for equal results."""
    if depth > 20:
        return {'too_deep': type(value).__name__}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return {'enum': type(value).__name__, 'value': normalize(value.value, depth + 1)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _digest(bytes(value))
    if isinstance(value, dict):
        return {str(key): normalize(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [normalize(item, depth + 1) for item in value]}
    if isinstance(value, types.GeneratorType) or (
        hasattr(value, '__next__') and hasattr(value, '__iter__')
    ):
        return {'iterator': [normalize(item, depth + 1) for item in value]}
    dataset = _describe_dataset(value)
    if dataset is not None:
        return dataset
    return {'object': type(value).__name__}


def _describe_dataset(value: Any) -> Any:
    """Describe a pydicom Dataset by its elements (bulk values digested); else None."""
    try:
        from pydicom.dataset import Dataset
    except ImportError:
        return None
    if not isinstance(value, Dataset):
        return None
    meta = getattr(value, 'file_meta', None)
    syntax = str(getattr(meta, 'TransferSyntaxUID', '')) if meta is not None else None
    elements = value.to_json_dict(
        bulk_data_threshold=256, bulk_data_element_handler=lambda element: _bulk(element)
    )
    return {'dataset': elements, 'transfer_syntax': syntax}


def _bulk(element: Any) -> str:
    raw = element.value if isinstance(element.value, bytes) else repr(element.value).encode()
    return 'bulk:' + hashlib.sha256(raw).hexdigest()[:20]


def describe_exception(error: BaseException, catalogue: List[tuple]) -> Dict[str, Any]:
    """The catalogued classes ``error`` is an instance of, and its HTTP status if any."""
    outcome: Dict[str, Any] = {
        'raises': sorted(name for name, cls in catalogue if isinstance(error, cls)),
        'type': f'{type(error).__module__}.{type(error).__qualname__}',
        'message': str(error)[:300],
    }
    response = getattr(error, 'response', None)
    status = getattr(response, 'status_code', None)
    if isinstance(status, int):
        outcome['status'] = status
    if isinstance(error, SystemExit):
        outcome['exit_code'] = error.code if isinstance(error.code, int) else str(error.code)
    return outcome


def run_scenario(scenario: Dict[str, Any], catalogue: List[tuple]) -> Dict[str, Any]:
    """Run one scenario; return the description of its result or of its exception."""
    namespace: Dict[str, Any] = {
        alias: importlib.import_module(name) for alias, name in _MODULES.items()
    }
    namespace['URL'] = scenario['url']
    namespace['DATA'] = scenario.get('data')
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer, encoding='utf-8', write_through=True)
    try:
        with contextlib.redirect_stdout(stdout):
            exec(scenario.get('setup') or '', namespace)
            result = eval(scenario['call'], namespace)
            outcome = {'result': normalize(result)}
    except BaseException as error:  # noqa: BLE001 - the exception is the outcome
        if isinstance(error, KeyboardInterrupt):
            raise
        outcome = {'error': describe_exception(error, catalogue)}
    if scenario.get('capture_stdout'):
        stdout.flush()
        try:
            outcome['stdout'] = buffer.getvalue().decode('utf-8')
        except UnicodeDecodeError:
            outcome['stdout'] = _digest(buffer.getvalue())
    return outcome


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('job')
    parser.add_argument('--project-root', help='import dicomweb_client from this folder')
    args = parser.parse_args(argv)
    if args.project_root:
        sys.path.insert(0, args.project_root)
    # Import the optional packages first, as the programs being imitated would have.
    for optional in ('requests', 'retrying'):
        with contextlib.suppress(ImportError):
            importlib.import_module(optional)
    catalogue = _catalogue()
    with open(args.job, encoding='utf-8') as job_file:
        scenarios = json.load(job_file)['scenarios']
    out = sys.stdout
    for scenario in scenarios:
        started = time.monotonic()
        outcome = run_scenario(scenario, catalogue)
        outcome['seconds'] = round(time.monotonic() - started, 3)
        out.write(json.dumps({'id': scenario['id'], 'outcome': outcome}, sort_keys=True))
        out.write('\n')
        out.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
