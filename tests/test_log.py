"""Tests of the logging section: ``configure_logging`` (also as ``dicomweb_client.log``)."""

from __future__ import annotations

import logging

import pytest
from recording_server import RecordingServer, Response

import dicomweb_client
from dicomweb_client import configure_logging
from helpers import run_python

PACKAGE_LOGGER = 'dicomweb_client'

# Every standard level plus one below DEBUG (only verbosity 4 shows it).
LEVELS = {
    'trace': 5,
    'debug': logging.DEBUG,
    'info': logging.INFO,
    'warning': logging.WARNING,
    'error': logging.ERROR,
    'critical': logging.CRITICAL,
}

SHOWN = {
    0: set(),
    1: {'warning', 'error', 'critical'},
    2: {'info', 'warning', 'error', 'critical'},
    3: {'debug', 'info', 'warning', 'error', 'critical'},
    4: set(LEVELS),
}


@pytest.fixture(autouse=True)
def restore_package_logger():
    """Put the package logger back as it was, so tests do not leak handlers or levels."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield logger
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate


def emit_every_level(logger: logging.Logger) -> None:
    for name, level in LEVELS.items():
        logger.log(level, 'marker-%s', name)


def shown_markers(text: str) -> set:
    return {name for name in LEVELS if f'marker-{name}' in text}


@pytest.mark.parametrize('verbosity', sorted(SHOWN))
def test_verbosity_selects_the_messages_written_to_stderr(
    verbosity: int, capsys: pytest.CaptureFixture
) -> None:
    logger = configure_logging(verbosity)
    emit_every_level(logger)
    captured = capsys.readouterr()
    assert shown_markers(captured.err) == SHOWN[verbosity]
    assert captured.out == ''


@pytest.mark.parametrize(
    'verbosity, level', [(1, logging.WARNING), (2, logging.INFO), (3, logging.DEBUG)]
)
def test_verbosity_sets_the_package_logger_level(verbosity: int, level: int) -> None:
    logger = configure_logging(verbosity)
    assert logger.level == level
    assert logging.getLogger(PACKAGE_LOGGER).getEffectiveLevel() == level


def test_verbosity_0_silences_everything() -> None:
    logger = configure_logging(0)
    assert logger.level > logging.CRITICAL
    assert not logger.isEnabledFor(logging.CRITICAL)


def test_verbosity_4_enables_everything() -> None:
    logger = configure_logging(4)
    assert logger.isEnabledFor(1)
    assert logger.isEnabledFor(logging.DEBUG)


def test_returns_the_package_logger() -> None:
    for verbosity in range(5):
        assert configure_logging(verbosity) is logging.getLogger(PACKAGE_LOGGER)


def test_child_loggers_follow_the_package_logger(capsys: pytest.CaptureFixture) -> None:
    configure_logging(2)
    child = logging.getLogger(f'{PACKAGE_LOGGER}.transport')
    child.info('child-info')
    child.debug('child-debug')
    err = capsys.readouterr().err
    assert 'child-info' in err
    assert 'child-debug' not in err


def test_calling_twice_does_not_duplicate_handlers(capsys: pytest.CaptureFixture) -> None:
    logger = configure_logging(2)
    count = len(logger.handlers)
    assert configure_logging(2) is logger
    assert configure_logging(3) is logger
    assert len(logger.handlers) == count
    logger.warning('only-once')
    assert capsys.readouterr().err.count('only-once') == 1


def test_reconfiguring_changes_the_level(capsys: pytest.CaptureFixture) -> None:
    logger = configure_logging(3)
    logger.debug('first-debug')
    configure_logging(1)
    logger.debug('second-debug')
    logger.info('second-info')
    logger.warning('second-warning')
    err = capsys.readouterr().err
    assert 'first-debug' in err
    assert 'second-debug' not in err and 'second-info' not in err
    assert 'second-warning' in err


def test_handlers_of_other_code_are_kept() -> None:
    logger = logging.getLogger(PACKAGE_LOGGER)
    own = logging.NullHandler()
    logger.addHandler(own)
    configure_logging(1)
    configure_logging(2)
    assert own in logger.handlers


def test_log_alias_is_the_same_function() -> None:
    import dicomweb_client.log
    from dicomweb_client.log import configure_logging as aliased

    assert aliased is configure_logging
    assert dicomweb_client.log.configure_logging is dicomweb_client.configure_logging


@pytest.mark.parametrize('verbosity', sorted(SHOWN))
def test_messages_go_to_stderr_not_stdout_in_a_fresh_interpreter(verbosity: int) -> None:
    code = (
        'import logging\n'
        'from dicomweb_client.log import configure_logging\n'
        f'logger = configure_logging({verbosity})\n'
        f'for name, level in {LEVELS!r}.items():\n'
        "    logger.log(level, 'marker-%s', name)\n"
        "print('stdout-line')\n"
    )
    result = run_python(code, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'stdout-line\n'
    assert shown_markers(result.stderr) == SHOWN[verbosity]


def test_importing_does_not_print_anything() -> None:
    result = run_python(
        'import dicomweb_client\n'
        "import logging\n"
        "logging.getLogger('dicomweb_client').warning('x')\n",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''


def test_configure_logging_is_exported() -> None:
    assert 'configure_logging' in dicomweb_client.__all__


# -- nothing is printed unless the program configures logging ----------------------------

FAILING_REQUESTS = '''
import socket
import dicomweb_client
{configure}
busy = dicomweb_client.DICOMwebClient({busy_url!r})
busy.set_http_retry_params(wait_exponential_multiplier=1)
print(busy.search_for_studies())
with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
down = dicomweb_client.DICOMwebClient(f'http://127.0.0.1:{{port}}')
down.set_http_retry_params(wait_exponential_multiplier=1, connect_budget=0.1)
try:
    down.search_for_studies()
except dicomweb_client.TransportError:
    print('down')
'''


def _busy_server(server: RecordingServer) -> str:
    """A server that answers 503 first, so that the request is retried once."""
    server.add('GET', '/studies', Response(body=b'[]', content_type='application/dicom+json'))
    server.queue(Response(status=503, body=b'busy'))
    return server.url


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger(PACKAGE_LOGGER).handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


def test_retries_print_nothing_when_logging_is_not_configured(recording_server) -> None:
    """Without the NullHandler, Python's last-resort handler would print the retry
    warnings on standard error of a program that never set logging up."""
    result = run_python(
        FAILING_REQUESTS.format(configure='', busy_url=_busy_server(recording_server)), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == '[]\ndown\n'
    assert result.stderr == ''
    assert len(recording_server.requests) == 2  # the retry really happened


def test_retries_reach_the_logging_the_program_configures(recording_server) -> None:
    configure = 'import logging\nlogging.basicConfig(format="%(name)s: %(message)s")'
    result = run_python(
        FAILING_REQUESTS.format(configure=configure, busy_url=_busy_server(recording_server)),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) >= 2 and all(line.startswith('dicomweb_client.retry: ') for line in lines)
    assert 'answered 503; retrying in 0.0 s (retry 1 of 4)' in lines[0]
    assert 'Connection refused; retrying in' in lines[1]
