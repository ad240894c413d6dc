"""The ``dicomweb_client`` command: search, retrieve and store DICOM objects from a shell.

Usage: ``dicomweb_client [GLOBAL OPTIONS] {search,retrieve,store} ...``; run it with
``--help`` (also after any subcommand) for the options.  docs/cli.md has examples.

The command is a thin layer over :mod:`dicomweb_client`: it parses the arguments, builds a
:class:`dicomweb_client.DICOMwebClient` (or, for a ``file://`` URL, a
``dicomweb_client.DICOMfileClient``), calls one of its methods and prints or saves what comes
back.  It needs nothing beyond the standard library, pydicom and ``dicomweb_client``.

The module reads top to bottom: argument types, the parser, building the client, output
(JSON, data sets, tables, binary data, files on disk), the progress bar, the commands
(search, retrieve, store) and finally error reporting and :func:`main`.

Exit codes: 0 success, 1 a request or some of the work failed, 2 bad arguments, 130
interrupted, 141 standard output was closed early (for example by ``head``).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import dicomweb_client

if TYPE_CHECKING:
    import pydicom
    from pydicom.dataset import Dataset
else:  # imported on first use: most commands never make or parse a data set
    pydicom = dicomweb_client._DeferredModule('pydicom', dicomweb_client._PYDICOM_PARTS, globals())

PROG = 'dicomweb_client'

logger = logging.getLogger('dicomweb_client.cli')

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_STUDY_UID = '0020000D'
_SERIES_UID = '0020000E'
_SOP_UID = '00080018'


class CommandError(Exception):
    """A problem that ends the command with one line on standard error (exit code 1)."""


# ---------------------------------------------------------------------------------------
# Argument types: each turns one command line word into a value or rejects it
# ---------------------------------------------------------------------------------------


def _number(text: str, kind: Callable[[str], Any], least: float, inclusive: bool) -> Any:
    """``text`` as a number of ``kind`` that is at least (or above) ``least``."""
    try:
        value = kind(text)
    except ValueError:
        noun = 'a whole number' if kind is int else 'a number'
        raise argparse.ArgumentTypeError(f'{text!r} is not {noun}') from None
    if value < least or (not inclusive and value == least):
        bound = f'{least:g} or more' if inclusive else f'more than {least:g}'
        raise argparse.ArgumentTypeError(f'{text!r} must be {bound}')
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, 1, inclusive=True)


def _non_negative_int(text: str) -> int:
    return _number(text, int, 0, inclusive=True)


def _positive_float(text: str) -> float:
    return _number(text, float, 0, inclusive=False)


def _seconds(text: str) -> float:
    """A finite number of seconds, 0 or more."""
    value = _number(text, float, 0, inclusive=True)
    if value != value or value == float('inf'):  # nan or inf
        raise argparse.ArgumentTypeError(f'{text!r} is not a finite number')
    return value


_UID = re.compile(r'[0-9]+(\.[0-9]+)*')


def _uid(text: str) -> str:
    """A UID as the standard writes them: digits and dots, at most 64 characters."""
    text = text.strip()
    if not _UID.fullmatch(text) or len(text) > 64:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a UID (digits separated by dots, at most 64 characters)'
        )
    return text


def _shard(text: str) -> Tuple[int, int]:
    """``K/N``: the K-th of N shares of a manifest, counting from 1."""
    match = re.fullmatch(r'\s*([0-9]+)\s*/\s*([0-9]+)\s*', text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a shard: write K/N with 1 <= K <= N, for example 1/4'
        )
    return int(match[1]), int(match[2])


def _attribute_name(text: str) -> str:
    """An attribute keyword, tag or dotted path of them; a misspelling is told with the
    nearest keyword, in the words of the command line rather than of the library."""
    try:
        return dicomweb_client._check_attribute(text, 'option')
    except dicomweb_client.UnknownAttributeError as error:
        hint = f'; did you mean {error.suggestion}?' if error.suggestion else ''
        raise argparse.ArgumentTypeError(
            f'unknown attribute {error.step!r}{hint} (give a DICOM keyword such as '
            f'PatientID or an eight digit hex tag such as 00100020)'
        ) from None


def _search_filter(text: str) -> Tuple[str, str]:
    """``KEY=VALUE`` as a (key, value) pair; the key is an attribute keyword or tag."""
    key, sep, value = text.partition('=')
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not KEY=VALUE (for example PatientID=ABC123)'
        )
    return _attribute_name(key), value


def _field_name(text: str) -> str:
    """A ``--field`` value: an attribute name or ``all``."""
    return text if text.strip().lower() == 'all' else _attribute_name(text)


def _header(text: str) -> Tuple[str, str]:
    """``'Name: value'`` as a (name, value) pair; the name is checked as the client checks
    the names it sends."""
    name, sep, value = text.partition(':')
    name = name.strip()
    bad = f'{text!r} is not a header field; write it as "Name: value"'
    if not sep:
        raise argparse.ArgumentTypeError(bad)
    try:
        dicomweb_client._check_header_name(name)
    except ValueError:
        raise argparse.ArgumentTypeError(bad) from None
    if '\r' in value or '\n' in value:
        raise argparse.ArgumentTypeError(f'the value of header {name} holds a line break')
    return name, value.strip()


def _media_types(words: Optional[Sequence[str]]) -> Optional[Tuple[Any, ...]]:
    """The ``--media-type`` words as the ``media_types`` argument of the client.

    Each word is a media type, optionally followed by whitespace and a transfer syntax UID
    (``"image/jpeg 1.2.840.10008.1.2.4.50"``).  A UID given as a word of its own (the
    quotes were forgotten) belongs to the media type before it.
    """
    if not words:
        return None
    result: List[Any] = []
    for word in words:
        tokens = word.split()
        if len(tokens) == 1 and '/' not in tokens[0] and result and isinstance(result[-1], str):
            result[-1] = (result[-1], tokens[0])
        elif len(tokens) == 1 and '/' in tokens[0]:
            result.append(tokens[0])
        elif len(tokens) == 2 and '/' in tokens[0] and '/' not in tokens[1]:
            result.append((tokens[0], tokens[1]))
        else:
            raise CommandError(
                f'--media-type {word!r} is not a media type, optionally followed by a '
                'transfer syntax UID (for example "image/jpeg 1.2.840.10008.1.2.4.50")'
            )
    return tuple(result)


# ---------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------

_DESCRIPTION = 'Search, retrieve and store DICOM objects on a DICOMweb server.'

_EPILOG = """\
examples:
  dicomweb_client --url http://localhost:8042/dicom-web search studies --output table
  dicomweb_client --url http://localhost:8042/dicom-web retrieve studies --study UID \\
      full --save --output-dir downloads --workers 8
  dicomweb_client --url http://localhost:8042/dicom-web store instances folder/
  dicomweb_client --url file:///data/dicom search series

Global options go before the command.  Run any command with --help for its options.
"""


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--filter',
        metavar='KEY=VALUE',
        dest='filters',
        action='append',
        type=_search_filter,
        default=[],
        help='match an attribute (keyword or tag) against a value; '
        'wildcards * and ? and date ranges are passed on to the '
        'server; repeat for more attributes',
    )
    parser.add_argument(
        '--field',
        metavar='NAME',
        dest='fields',
        action='append',
        type=_field_name,
        default=[],
        help='also return this attribute (keyword, tag or "all"); repeatable',
    )
    parser.add_argument(
        '--limit', metavar='NUM', type=_non_negative_int, help='return at most NUM results'
    )
    parser.add_argument(
        '--offset', metavar='NUM', type=_non_negative_int, help='skip the first NUM results'
    )
    parser.add_argument(
        '--fuzzy', action='store_true', help='ask the server for fuzzy matching of person names'
    )
    _add_format_options(parser)
    parser.add_argument(
        '--output',
        choices=('json', 'table'),
        default='json',
        help='print the results as DICOM JSON (default) or as a table '
        'with one row per result, fitted to the terminal width',
    )


def _add_format_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--prettify', action='store_true', help='indent the JSON output for reading')
    group.add_argument(
        '--dicomize',
        action='store_true',
        help='print each item as a pydicom data set instead of JSON',
    )


def _add_save_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--save',
        action='store_true',
        help='write what is retrieved to files instead of printing it',
    )
    parser.add_argument(
        '--output-dir',
        metavar='PATH',
        help='folder for the files (default: the current folder); implies --save',
    )


def _add_media_type_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--media-type',
        metavar='MEDIATYPE',
        nargs='+',
        dest='media_types',
        help='acceptable media type, optionally followed by a space and a '
        'transfer syntax UID, e.g. "image/jpeg" or '
        '"image/jpeg 1.2.840.10008.1.2.4.50"; several may be given',
    )


def _add_uid_options(parser: argparse.ArgumentParser, *levels: str, required: bool = True) -> None:
    texts = {
        'study': 'Study Instance UID',
        'series': 'Series Instance UID',
        'instance': 'SOP Instance UID',
    }
    for level in levels:
        parser.add_argument(
            f'--{level}', metavar='UID', required=required, type=_uid, help=f'the {texts[level]}'
        )


def _add_manifest_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('downloading a cohort (instead of an information entity)')
    group.add_argument(
        '--manifest',
        metavar='FILE',
        help='download what FILE ("-": standard input) lists, one study, series or '
        'instance a line: UIDs separated by "/", spaces or commas; CSV with a '
        'StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID header; or the JSON that '
        '"search" prints',
    )
    group.add_argument(
        '--output-dir',
        metavar='PATH',
        dest='cohort_dir',
        help='with --manifest: the folder to download to (required)',
    )
    group.add_argument(
        '--workers',
        metavar='N',
        type=_positive_int,
        dest='cohort_workers',
        help='with --manifest: download N instances at a time, of any items (default: 4)',
    )
    group.add_argument(
        '--media-type',
        metavar='MEDIATYPE',
        nargs='+',
        dest='cohort_media_types',
        help='with --manifest: acceptable media type of the instances, optionally followed '
        'by a space and a transfer syntax UID (as for "retrieve studies ... full")',
    )
    group.add_argument(
        '--report',
        metavar='FILE',
        help='with --manifest: write one JSON line per manifest item to FILE (its UIDs, '
        'files, bytes, "ok" or "failed" and the error)',
    )
    group.add_argument(
        '--shard',
        metavar='K/N',
        type=_shard,
        help='with --manifest: keep only the K-th of N shares of the manifest, divided by '
        'series (a study item by its study), for N downloads that run side by side',
    )


def _subparsers(parser: argparse.ArgumentParser, dest: str, title: str, metavar: str) -> Any:
    return parser.add_subparsers(dest=dest, title=title, metavar=metavar, required=True)


def _add_metadata_command(subparsers: Any, level: str, help_text: str) -> None:
    description = (
        f'Fetch {help_text} as DICOM JSON and print it, or with --save write one '
        '<SOPInstanceUID>.json file per instance.'
    )
    parser = subparsers.add_parser('metadata', help=help_text, description=description)
    _add_format_options(parser)
    _add_save_options(parser)
    parser.set_defaults(handler=_retrieve_metadata, level=level)


def _add_full_command(subparsers: Any, level: str, help_text: str) -> None:
    if level == 'instance':
        description = (
            f'Fetch {help_text} and print it as a pydicom data set, or with '
            '--save write it to <SOPInstanceUID>.dcm.'
        )
    else:
        description = (
            f'Fetch {help_text} and print them as pydicom data sets, or with --save write '
            'them to <output-dir>/<StudyInstanceUID>/<SeriesInstanceUID>/'
            '<SOPInstanceUID>.dcm.  Saving lists the instances (QIDO-RS) and fetches them '
            'one request each, several at a time (--workers).  Files already there are '
            'skipped and each file is written under a .part name until it is complete, so '
            'running the same command again resumes an interrupted download.'
        )
    parser = subparsers.add_parser('full', help=help_text, description=description)
    _add_save_options(parser)
    _add_media_type_option(parser)
    if level != 'instance':
        parser.add_argument(
            '--workers',
            metavar='N',
            type=_positive_int,
            default=4,
            help='with --save: download N instances at a time (default: 4)',
        )
    parser.set_defaults(handler=_retrieve_full, level=level)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``dicomweb_client`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--version', action='version', version=f'%(prog)s {dicomweb_client.__version__}'
    )
    parser.add_argument(
        '-v',
        '--verbosity',
        action='count',
        default=0,
        help='say more on standard error: -v warnings and the traceback '
        'of a failure, -vv information, -vvv debug messages, '
        '-vvvv everything',
    )
    parser.add_argument(
        '-u',
        '--user',
        metavar='NAME',
        dest='username',
        help='user name for HTTP basic authentication',
    )
    parser.add_argument(
        '-p',
        '--password',
        metavar='PASSWORD',
        help='password for HTTP basic authentication (asked for when '
        '--user is given without it and a terminal is attached)',
    )
    parser.add_argument(
        '--ca',
        metavar='CERT-FILE',
        dest='ca_bundle',
        help='PEM file of the certificate authorities that vouch for the server',
    )
    parser.add_argument(
        '--cert', metavar='CERT-FILE', help='PEM file holding the client certificate and its key'
    )
    parser.add_argument(
        '--bearer-token',
        '--token',
        metavar='TOKEN',
        dest='bearer_token',
        help='send "Authorization: Bearer TOKEN" with every request',
    )
    parser.add_argument(
        '--url',
        metavar='URL',
        required=True,
        help='URL of the DICOMweb service, or file:///path/to/folder for '
        'DICOM files in a local folder',
    )
    parser.add_argument(
        '--chunk-size',
        metavar='NUM',
        type=_positive_int,
        help='bytes per read or write when data are streamed',
    )
    parser.add_argument(
        '--header',
        metavar='"NAME: VALUE"',
        dest='headers',
        action='append',
        type=_header,
        default=[],
        help='send this header field with every request; repeatable',
    )
    parser.add_argument(
        '--timeout',
        metavar='SECONDS',
        type=_positive_float,
        help='give up on a connection or read after this many seconds (default: 20)',
    )
    parser.add_argument(
        '--retries',
        metavar='NUM',
        type=_non_negative_int,
        help='repeat a request up to NUM times when the server is busy '
        '(429, 408, 503, 504), waiting 2, 4, 8 ... seconds in between '
        '(default: 4; 0 turns retries off); each retry is shown on '
        'standard error',
    )
    parser.add_argument(
        '--connect-budget',
        metavar='SECONDS',
        type=_seconds,
        help='keep trying to reach a server that refuses the connection or '
        'cannot be reached for this many seconds in all, within '
        '--retries (default: 1; 0 reports it at once); a host name '
        'that does not exist is reported at once',
    )
    parser.add_argument(
        '--no-progress',
        action='store_true',
        help='never draw a progress bar (it is only drawn when standard error is a terminal)',
    )

    services = _subparsers(parser, 'service', 'services', '{search,retrieve,store}')

    # -- search (QIDO-RS) ------------------------------------------------------------
    search = services.add_parser(
        'search',
        help='find studies, series or instances (QIDO-RS)',
        description='QIDO-RS: find studies, series or instances that match criteria.',
    )
    entities = _subparsers(search, 'entity', 'information entities', 'INFORMATION ENTITIES')
    studies = entities.add_parser('studies', help='find studies', description='Find studies.')
    _add_search_options(studies)
    studies.set_defaults(handler=_search, level='study')
    series = entities.add_parser(
        'series', help='find series', description='Find series, of one study or of all.'
    )
    _add_search_options(series)
    _add_uid_options(series, 'study', required=False)
    series.set_defaults(handler=_search, level='series')
    instances = entities.add_parser(
        'instances',
        help='find instances',
        description='Find instances, of one study, one series or of all.',
    )
    _add_search_options(instances)
    _add_uid_options(instances, 'study', 'series', required=False)
    instances.set_defaults(handler=_search, level='instance')

    # -- retrieve (WADO-RS) ----------------------------------------------------------
    retrieve = services.add_parser(
        'retrieve',
        help='fetch metadata, instances, frames or bulk data (WADO-RS)',
        description='WADO-RS: fetch metadata, whole instances, frames or bulk data.  With '
        '--manifest instead of an information entity, download every study, series and '
        'instance a manifest lists (a cohort) to <output-dir>/<StudyInstanceUID>/'
        '<SeriesInstanceUID>/<SOPInstanceUID>.dcm, skipping the files already there.',
    )
    _add_manifest_options(retrieve)
    retrieve.set_defaults(handler=_retrieve_manifest, level=None)
    entities = retrieve.add_subparsers(
        dest='entity', title='information entities', metavar='INFORMATION ENTITIES'
    )

    studies = entities.add_parser(
        'studies',
        help='every instance of one study',
        description='Fetch the metadata or the instances of one study.',
    )
    _add_uid_options(studies, 'study')
    kinds = _subparsers(studies, 'kind', 'what to fetch', '{metadata,full}')
    _add_metadata_command(kinds, 'study', 'the metadata of every instance of the study')
    _add_full_command(kinds, 'study', 'every instance of the study as DICOM files')

    series = entities.add_parser(
        'series',
        help='every instance of one series',
        description='Fetch the metadata or the instances of one series.',
    )
    _add_uid_options(series, 'study', 'series')
    kinds = _subparsers(series, 'kind', 'what to fetch', '{metadata,full}')
    _add_metadata_command(kinds, 'series', 'the metadata of every instance of the series')
    _add_full_command(kinds, 'series', 'every instance of the series as DICOM files')

    instances = entities.add_parser(
        'instances',
        help='one instance',
        description='Fetch the metadata, the DICOM file or frames of one instance.',
    )
    _add_uid_options(instances, 'study', 'series', 'instance')
    kinds = _subparsers(instances, 'kind', 'what to fetch', '{metadata,full,frames}')
    _add_metadata_command(kinds, 'instance', 'the metadata of the instance')
    _add_full_command(kinds, 'instance', 'the instance as a DICOM file')
    frames = kinds.add_parser(
        'frames',
        help='frames of the pixel data',
        description='Fetch frames of the pixel data of the instance.  Without --save '
        'or --show the frames are written to standard output when it is '
        'redirected, and described when it is a terminal.',
    )
    _add_save_options(frames)
    _add_media_type_option(frames)
    frames.add_argument(
        '--numbers',
        metavar='NUM',
        nargs='+',
        type=_positive_int,
        default=[1],
        help='frame numbers, counting from 1 (default: 1)',
    )
    frames.add_argument(
        '--show', action='store_true', help='open each frame in the default image viewer'
    )
    frames.set_defaults(handler=_retrieve_frames, level='instance')

    bulkdata = entities.add_parser(
        'bulkdata',
        help='bulk data from a known location',
        description='Fetch bulk data from a BulkDataURI found in metadata.  The data are '
        'written to standard output when it is redirected, and described '
        'when it is a terminal.',
    )
    _add_media_type_option(bulkdata)
    bulkdata.add_argument(
        '--uri',
        required=True,
        metavar='URI',
        help='the URI of the bulk data (absolute, or relative to --url)',
    )
    bulkdata.set_defaults(handler=_retrieve_bulkdata, level=None)

    # -- store (STOW-RS) -------------------------------------------------------------
    store = services.add_parser(
        'store', help='upload DICOM files (STOW-RS)', description='STOW-RS: upload DICOM files.'
    )
    entities = _subparsers(store, 'entity', 'information entities', 'INFORMATION ENTITIES')
    instances = entities.add_parser(
        'instances',
        help='upload DICOM files or folders of them',
        description='Upload DICOM Part 10 files, streamed from disk.  Folders are '
        'searched for DICOM files.  One line is printed per file: stored on '
        'standard output, failed on standard error.',
    )
    instances.add_argument(
        'paths',
        metavar='PATH',
        nargs='+',
        help='DICOM file, or folder searched recursively for them',
    )
    _add_uid_options(instances, 'study', required=False)
    instances.set_defaults(handler=_store_instances, level=None)
    return parser


def _check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks that span several options; a failure ends with argparse's usage error."""
    scheme = urllib.parse.urlsplit(args.url).scheme.lower()
    if scheme not in ('http', 'https', 'file'):
        parser.error(f'--url {args.url!r} must start with http://, https:// or file://')
    if args.bearer_token is not None and (args.username is not None or args.password is not None):
        parser.error('give either --user/--password or --bearer-token, not both')
    if args.password is not None and args.username is None:
        parser.error('--password needs --user')
    if args.service == 'retrieve':
        _check_manifest_arguments(parser, args)
    if getattr(args, 'output', 'json') == 'table' and (args.prettify or args.dicomize):
        parser.error('--output table cannot be combined with --prettify or --dicomize')
    if getattr(args, 'output_dir', None) is not None:
        args.save = True
    try:
        args.media_types = _media_types(getattr(args, 'media_types', None))
    except CommandError as error:
        parser.error(str(error))
    if args.username is not None and args.password is None:
        if not sys.stdin.isatty():
            parser.error('--user needs --password (no terminal to ask for it)')
        args.password = getpass.getpass(f'password for {args.username}: ')


def _check_manifest_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``retrieve`` takes an information entity or ``--manifest``, and the options before
    the entity only with ``--manifest``."""
    given = [
        option
        for option, dest in (
            ('--output-dir', 'cohort_dir'),
            ('--workers', 'cohort_workers'),
            ('--media-type', 'cohort_media_types'),
            ('--report', 'report'),
            ('--shard', 'shard'),
        )
        if getattr(args, dest, None) is not None
    ]
    if args.manifest is None:
        if args.entity is None:
            parser.error(
                'retrieve needs an information entity (studies, series, ...) or --manifest'
            )
        if given:
            parser.error(
                f'{", ".join(given)} before the information entity only go with --manifest'
            )
    elif args.entity is not None:
        parser.error('give either --manifest or an information entity, not both')
    elif args.cohort_dir is None:
        parser.error('--manifest needs --output-dir')
    else:
        args.media_types = args.cohort_media_types


# ---------------------------------------------------------------------------------------
# Building the client
# ---------------------------------------------------------------------------------------


def _make_client(args: argparse.Namespace) -> Any:
    """A DICOMwebClient, or a DICOMfileClient for a ``file://`` URL."""
    if urllib.parse.urlsplit(args.url).scheme.lower() == 'file':
        return _make_file_client(args)
    if args.bearer_token is not None:
        session = dicomweb_client.create_session_from_auth(
            dicomweb_client.BearerAuth(args.bearer_token)
        )
    elif args.username is not None:
        session = dicomweb_client.create_session_from_user_pass(args.username, args.password)
    else:
        session = dicomweb_client.create_session()
    if args.ca_bundle is not None or args.cert is not None:
        for path in (args.ca_bundle, args.cert):
            if path is not None and not os.path.exists(path):
                raise CommandError(f'certificate file {path} does not exist')
        dicomweb_client.add_certs_to_session(session, ca_bundle=args.ca_bundle, cert=args.cert)
    workers = getattr(args, 'workers', None) or 1
    if workers > session.pool_maxsize:  # each download thread keeps its connection
        session.pool_maxsize = workers
    options: Dict[str, Any] = {'session': session}
    if args.headers:
        options['headers'] = dict(args.headers)
    if args.chunk_size is not None:
        options['chunk_size'] = args.chunk_size
    if args.timeout is not None:
        options['timeout'] = args.timeout
    client = dicomweb_client.DICOMwebClient(args.url, **options)
    retry_options: Dict[str, Any] = {}
    if args.retries is not None:
        retry_options.update(retry=args.retries > 0, max_attempts=args.retries + 1)
    if args.connect_budget is not None:
        retry_options['connect_budget'] = args.connect_budget
    if retry_options:
        client.set_http_retry_params(**retry_options)
    return client


def _make_file_client(args: argparse.Namespace) -> Any:
    file_client = getattr(dicomweb_client, 'DICOMfileClient', None)
    if file_client is None:
        raise CommandError(
            f'--url {args.url} needs dicomweb_client.DICOMfileClient, which the installed '
            f'dicomweb_client {dicomweb_client.__version__} does not have; use an '
            'http:// or https:// URL'
        )
    try:  # the file client's own reading of the URL, without creating the folder
        dicomweb_client._root_of(args.url, create=False)
    except FileNotFoundError as error:
        raise CommandError(
            f'--url {args.url}: the folder {error.filename} does not exist'
        ) from None
    except ValueError as error:
        raise CommandError(
            f'--url {args.url} is not a file URL of a local folder: {error}'
        ) from None
    unused = [
        name
        for name, value in (
            ('--user', args.username),
            ('--bearer-token', args.bearer_token),
            ('--ca', args.ca_bundle),
            ('--cert', args.cert),
            ('--header', args.headers),
            ('--chunk-size', args.chunk_size),
            ('--timeout', args.timeout),
            ('--retries', args.retries),
        )
        if value is not None and value != []
    ]
    if unused:
        _warn(f'ignored for a file:// URL: {", ".join(unused)}')
    # update_db: files added to or removed from the folder since the last run count
    return file_client(args.url, update_db=True)


def _is_file_client(client: Any) -> bool:
    return not isinstance(client, dicomweb_client.DICOMwebClient)


# ---------------------------------------------------------------------------------------
# Output: JSON, data sets, tables, binary data and files
# ---------------------------------------------------------------------------------------


def _stdout() -> IO[str]:
    return sys.stdout


def _warn(message: str) -> None:
    _WaitNotice.erase_current()
    print(f'{PROG}: warning: {message}', file=sys.stderr)


def _error_line(message: str) -> None:
    _WaitNotice.erase_current()
    print(f'{PROG}: error: {_one_line(message)}', file=sys.stderr)


def _one_line(text: str) -> str:
    return ' '.join(str(text).split())


class _RetryLines(logging.Handler):
    """Prints each retry that the package decides as a warning line on standard error."""

    def emit(self, record: logging.LogRecord) -> None:
        """Print ``record`` as ``dicomweb_client: warning: ...``."""
        try:
            _warn(_one_line(record.getMessage()))
        except Exception:  # noqa: BLE001 - logging must not end the command
            self.handleError(record)


@contextlib.contextmanager
def _retries_shown(verbosity: int) -> Iterator[None]:
    """Show retries on standard error while the command runs, whatever the verbosity.

    From ``-v`` on, the package's log handler shows them already (with the other
    warnings); below, its messages are silenced, so the ``dicomweb_client.retry``
    logger gets a handler of its own.  The logger is put back as it was afterwards.

    Parameters
    ----------
    verbosity: int
        The number of ``-v`` options.

    """
    if verbosity > 0:
        yield
        return
    retry_logger = logging.getLogger('dicomweb_client.retry')
    saved = retry_logger.level, retry_logger.propagate
    handler = _RetryLines()
    retry_logger.addHandler(handler)
    retry_logger.setLevel(logging.WARNING)
    retry_logger.propagate = False
    try:
        yield
    finally:
        retry_logger.removeHandler(handler)
        retry_logger.setLevel(saved[0])
        retry_logger.propagate = saved[1]


def _to_json(value: Any, prettify: bool) -> str:
    return json.dumps(value, indent=2) if prettify else json.dumps(value)


def _ignore_bulkdata(tag: str, vr: str, value: str) -> None:
    """Bulk data URIs in metadata are not followed when printing data sets."""
    return None


def _as_dataset(item: Dict[str, Any]) -> Dataset:
    return pydicom.Dataset.from_json(item, bulk_data_uri_handler=_ignore_bulkdata)


def _print_items(items: Any, args: argparse.Namespace) -> None:
    """Print DICOM JSON (a list or one object) as JSON or as data sets."""
    out = _stdout()
    if getattr(args, 'dicomize', False):
        for item in items if isinstance(items, list) else [items]:
            out.write(f'{_as_dataset(item)}\n\n')
        return
    out.write(_to_json(items, getattr(args, 'prettify', False)) + '\n')


# The default columns of a table by level.  Every row ends with the UIDs that the next
# command takes (--study, --series, --instance), in that order.
_TABLE_COLUMNS = {
    'study': (
        'PatientName',
        'PatientID',
        'StudyDate',
        'AccessionNumber',
        'ModalitiesInStudy',
        'StudyDescription',
        'NumberOfStudyRelatedSeries',
        'NumberOfStudyRelatedInstances',
        'StudyInstanceUID',
    ),
    'series': (
        'Modality',
        'SeriesNumber',
        'SeriesDescription',
        'NumberOfSeriesRelatedInstances',
        'StudyInstanceUID',
        'SeriesInstanceUID',
    ),
    'instance': (
        'InstanceNumber',
        'Rows',
        'Columns',
        'NumberOfFrames',
        'SOPClassUID',
        'StudyInstanceUID',
        'SeriesInstanceUID',
        'SOPInstanceUID',
    ),
}

# These are always shown, never cut and never dropped: they are what the user copies.
_TABLE_KEYS = ('StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID')

# Fitting a table to the terminal (docs/cli.md describes it): free-text columns are cut
# first; if the rows are still too wide, columns go in this order, then the --field
# columns (the last one given first).
_TABLE_DROP_ORDER = {
    'study': (
        'AccessionNumber',
        'NumberOfStudyRelatedSeries',
        'NumberOfStudyRelatedInstances',
        'ModalitiesInStudy',
        'PatientID',
        'StudyDescription',
        'StudyDate',
        'PatientName',
    ),
    'series': ('NumberOfSeriesRelatedInstances', 'SeriesNumber', 'Modality', 'SeriesDescription'),
    'instance': ('Columns', 'Rows', 'NumberOfFrames', 'SOPClassUID', 'InstanceNumber'),
}

# Free text, which may be cut: these default columns, and --field columns of these value
# representations (except identifiers, such as PatientID, which are copied like UIDs).
_TABLE_FREE_TEXT = frozenset(
    {'PatientName', 'StudyDescription', 'SeriesDescription', 'SOPClassUID'}
)
_FREE_TEXT_VRS = frozenset({'PN', 'LO', 'LT', 'ST', 'UT', 'UC'})
_TABLE_NARROWEST = 10  # a free-text column is not cut below this, nor below its heading
_CUT = '...'  # ends a cut cell
_UID_TEXT = re.compile(r'[0-9]+(\.[0-9]+)+')  # e.g. an unknown SOP class: never cut

_TABLE_HEADINGS = {
    'NumberOfStudyRelatedSeries': 'Series',
    'NumberOfStudyRelatedInstances': 'Instances',
    'NumberOfSeriesRelatedInstances': 'Instances',
    'ModalitiesInStudy': 'Modalities',
    'NumberOfFrames': 'Frames',
    'SOPClassUID': 'SOPClass',
}


def _tag_of(name: str) -> Optional[str]:
    """The 8-digit hex tag of a keyword or tag, or ``None`` if it is neither."""
    if re.fullmatch(r'[0-9A-Fa-f]{8}', name):
        return name.upper()
    tag = dicomweb_client._tag_for_keyword(name)
    return None if tag is None else f'{tag:08X}'


def _cell(element: Any) -> str:
    """One attribute of a DICOM JSON object as table text."""
    if not isinstance(element, dict):
        return ''
    values = element.get('Value')
    if values is None:
        return '(bulk data)' if 'BulkDataURI' in element or 'InlineBinary' in element else ''
    if element.get('vr') == 'SQ':
        return f'({len(values)} items)'
    texts = []
    for value in values:
        if isinstance(value, dict):  # a person name
            value = value.get('Alphabetic', next(iter(value.values()), ''))
        texts.append(str(value))
    return '\\'.join(texts)


def _uid_label(uid: str) -> str:
    """The name of a well-known UID, such as ``'CT Image Storage'``, else the UID itself."""
    uid_name = getattr(dicomweb_client, '_uid_name', None)
    if uid_name is None:
        from pydicom.uid import UID_dictionary

        entry = UID_dictionary.get(uid)
        return entry[0] if entry else uid
    return uid_name(uid) or uid


@dataclass
class _Column:
    """One column of a table: keyword, heading, a cell per row and how it may be fitted.

    ``key`` columns are never cut or dropped; ``narrowest`` is the width the column may be
    cut to (its full width unless it holds free text).
    """

    name: str
    heading: str
    cells: List[str]
    key: bool = False
    narrowest: int = 0

    @property
    def width(self) -> int:
        """The width of the longest cell (or of the heading)."""
        return max([len(self.heading)] + [len(cell) for cell in self.cells])


def _table_column(
    name: str, items: List[Dict[str, Any]], free_text: bool, known: Dict[str, str]
) -> _Column:
    """The column of attribute ``name`` (a keyword, or a tag if it has none)."""
    tag = _tag_of(name) or name
    key = name in _TABLE_KEYS
    cells = [_cell(item.get(tag)) or (known.get(tag, '') if key else '') for item in items]
    if name == 'SOPClassUID':
        cells = [
            '\\'.join(_uid_label(uid) for uid in cell.split('\\')) if cell else '' for cell in cells
        ]
    column = _Column(name, _TABLE_HEADINGS.get(name, name), cells, key)
    column.narrowest = column.width
    if free_text:
        whole = [len(cell) for cell in cells if _UID_TEXT.fullmatch(cell)]
        floor = max([len(column.heading), _TABLE_NARROWEST] + whole)
        column.narrowest = min(column.width, floor)
    return column


def _row_width(widths: Sequence[int]) -> int:
    return sum(widths) + 2 * max(len(widths) - 1, 0)


def _table_width() -> Optional[int]:
    """The width to fit tables to, or ``None`` to print them whole.

    As ``ls`` does: tables are fitted on a terminal or when ``COLUMNS`` is set (which
    then gives the width); piped output without ``COLUMNS`` is whole, for programs.
    """
    columns = os.environ.get('COLUMNS', '').strip()
    if (columns.isdigit() and int(columns) > 0) or _stdout_is_terminal():
        return shutil.get_terminal_size().columns
    return None


def _narrowed(columns: Sequence[_Column], limit: int) -> List[int]:
    """Column widths with the free-text columns cut, widest first, towards ``limit``."""
    widths = [column.width for column in columns]
    excess = _row_width(widths) - limit
    while excess > 0:
        cuttable = [i for i, column in enumerate(columns) if widths[i] > column.narrowest]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def _fit(
    columns: List[_Column], drop: Sequence[str], limit: Optional[int]
) -> Tuple[List[_Column], List[int]]:
    """The columns to show, and their widths, for rows of at most ``limit`` characters.

    Free-text columns are cut first; columns are dropped, in ``drop`` order, only while
    that is not enough, and then those dropped columns that still fit in the room left
    are put back, the most important first.  With no limit every column is shown whole.
    The key UID columns alone must fit in ``limit`` (otherwise the caller prints the
    results as records, see :func:`_print_records`).
    """
    if limit is None:
        return columns, [column.width for column in columns]
    shown = list(columns)
    order = list(drop) + [column.name for column in columns]
    while _row_width(_narrowed(shown, limit)) > limit:
        # the key columns alone fit, so something else is left to drop
        shown.remove(
            next(
                column
                for name in order
                for column in shown
                if column.name == name and not column.key
            )
        )
    dropped = [column for column in columns if column not in shown]
    for column in sorted(dropped, key=lambda column: order.index(column.name), reverse=True):
        candidate = [kept for kept in columns if kept in shown or kept is column]
        if _row_width(_narrowed(candidate, limit)) <= limit:
            shown = candidate
    return shown, _narrowed(shown, limit)


def _hoisted(columns: List[_Column]) -> Tuple[List[_Column], List[_Column]]:
    """The columns left in a fitted table, and the UID columns printed above it instead.

    A UID column is printed above the table when it has one value, not empty, in every
    row of two rows or more (as a series' study UID in a table of its instances).  At
    least one column stays in the table.
    """

    def shared(column: _Column) -> bool:
        return (
            column.key
            and len(column.cells) > 1
            and column.cells[0] != ''
            and len(set(column.cells)) == 1
        )

    kept = [column for column in columns if not shared(column)]
    if not kept:
        return columns, []
    return kept, [column for column in columns if shared(column)]


def _labelled_lines(columns: Sequence[_Column], row: int, limit: int) -> List[str]:
    """Row ``row`` of ``columns`` as lines of a label and a value, labels aligned.

    Empty values are left out, except those of UID columns.  Free text is cut to fit
    ``limit``; UIDs never are: a label and a UID that do not fit on one line become two,
    the label, then the UID indented below it.
    """
    shown = [column for column in columns if column.key or column.cells[row]]
    label = max(len(column.heading) for column in shown)
    lines: List[str] = []
    for column in shown:
        text = column.cells[row]
        if not column.key:
            text = _clip(text, max(limit - label - 2, column.narrowest, len(_CUT) + 1))
        line = f'{column.heading.ljust(label)}  {text}'.rstrip()
        lines += [line] if len(line) <= limit else [column.heading, f'  {text}']
    return lines


def _print_records(columns: Sequence[_Column], rows: int, limit: int, out: IO[str]) -> None:
    """Each result as a block of labelled lines, for a terminal narrower than the UIDs of
    one row (as ``psql``'s expanded display); blocks are separated by a blank line."""
    blocks = ['\n'.join(_labelled_lines(columns, row, limit)) for row in range(rows)]
    out.write('\n\n'.join(blocks) + '\n')


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - len(_CUT)].rstrip() + _CUT


def _print_table(
    items: List[Dict[str, Any]],
    level: str,
    fields: Sequence[str],
    known: Optional[Dict[str, str]] = None,
) -> None:
    """One row per result; default columns by level, plus the --field attributes.

    Columns that are empty in every row are left out, except the UID columns; a count ends
    the table.  The table is fitted to the terminal (see :func:`_table_width` and
    :func:`_fit`); a fitted table shows a UID that is the same in every row once, above
    it (see :func:`_hoisted`).  Piped output without ``COLUMNS`` keeps every column.

    Parameters
    ----------
    items: List[Dict[str, Any]]
        The results, as DICOM JSON objects.
    level: str
        ``'study'``, ``'series'`` or ``'instance'``.
    fields: Sequence[str]
        The ``--field`` values (keywords, tags or ``all``).
    known: Dict[str, str], optional
        UIDs given on the command line, by tag, for results that leave them out.

    """
    out = _stdout()
    noun = {'study': 'study', 'series': 'series', 'instance': 'instance'}[level]
    plural = {'study': 'studies', 'series': 'series', 'instance': 'instances'}[level]
    count = f'{len(items)} {noun if len(items) == 1 else plural}\n'
    if not items:
        out.write(count)
        return
    defaults = _TABLE_COLUMNS[level]
    names = list(defaults)
    requested: List[str] = []
    for name in fields:
        tag = _tag_of(name)
        if tag is None:  # e.g. "all": keep the default columns
            continue
        keyword = dicomweb_client._keyword_for_tag(int(tag, 16)) or tag
        if keyword not in requested:
            requested.append(keyword)
        if keyword not in names:  # before the UIDs, which end every row
            first_uid = next(i for i, name in enumerate(names) if name in _TABLE_KEYS)
            names.insert(first_uid, keyword)
    columns = []
    for name in names:
        tag = _tag_of(name) or name
        vr = next((item[tag].get('vr') for item in items if isinstance(item.get(tag), dict)), None)
        free_text = name in _TABLE_FREE_TEXT or (
            name not in defaults and vr in _FREE_TEXT_VRS and not name.endswith('ID')
        )
        column = _table_column(name, items, free_text, known or {})
        if column.key or name in requested or any(column.cells):
            columns.append(column)
    limit = _table_width()
    above: List[_Column] = []
    if limit is not None:  # for people: programs get the same columns in every table
        columns, above = _hoisted(columns)
    if above and limit is not None:
        out.write('\n'.join(_labelled_lines(above, 0, limit)) + '\n\n')
    if limit is not None and _row_width([c.width for c in columns if c.key]) > limit:
        _print_records(columns, len(items), limit, out)  # no table of them can fit
        out.write('\n' + count)
        return
    drop = [name for name in _TABLE_DROP_ORDER[level] if name not in requested]
    columns, widths = _fit(columns, drop + requested[::-1], limit)
    lines = [[column.heading for column in columns]]
    lines += [[column.cells[row] for column in columns] for row in range(len(items))]
    for number, line in enumerate(lines):
        out.write(
            '  '.join(_clip(text, width).ljust(width) for text, width in zip(line, widths)).rstrip()
            + '\n'
        )
        if number == 0:
            out.write('  '.join('-' * width for width in widths) + '\n')
    out.write(count)


def _write_binary(chunks: Iterable[bytes]) -> None:
    """Write bytes to standard output (which has been redirected)."""
    out = _stdout()
    target: Any = getattr(out, 'buffer', None)  # binary, or a stream that takes bytes
    if target is None:  # a text stream without a buffer (e.g. captured by a test)
        out.flush()
        target = out
    for chunk in chunks:
        target.write(chunk)
    target.flush()


def _stdout_is_terminal() -> bool:
    try:
        return _stdout().isatty()
    except (AttributeError, ValueError):
        return False


def _save(path: str, data: bytes, mode: Optional[int] = None) -> int:
    """Write a file with the library's atomic write: under a temporary name in its folder,
    on disk (fsync), then renamed, so that ``path`` appears only when complete (a failure
    or Ctrl-C removes the temporary file).  ``mode`` defaults to what the umask gives.
    Returns the number of bytes written.
    """
    dicomweb_client._write_atomically(
        path, data, dicomweb_client._new_file_mode() if mode is None else mode
    )
    return len(data)


def _instance_file(
    client: Any, study: str, series: str, sop: str, options: Dict[str, Any]
) -> bytes:
    """One instance as a Part 10 file.

    From a server, a Part 10 file is kept byte for byte as it came (nothing is lost or
    changed by decoding and encoding it again, and it is quicker); a bare data set is
    written as a Part 10 file, as the library does for one given to store.
    """
    data = client.retrieve_instance_file(study, series, sop, **options)
    return dicomweb_client._payload(data)


def _output_dir(args: argparse.Namespace, create: bool = True) -> str:
    folder = args.output_dir if args.output_dir is not None else os.curdir
    if create:
        os.makedirs(folder, exist_ok=True)
    return folder


def _plural(count: int, noun: str) -> str:
    return f'{count} {noun}' + ('' if count == 1 else 's')


# ---------------------------------------------------------------------------------------
# The progress bar
# ---------------------------------------------------------------------------------------


def _human_bytes(count: float) -> str:
    unit = 'B'
    for bigger in ('KiB', 'MiB', 'GiB', 'TiB'):
        if count < 1024:
            break
        count /= 1024
        unit = bigger
    return f'{count:.0f} B' if unit == 'B' else f'{count:.1f} {unit}'


class Progress:
    """A one-line progress bar on standard error, drawn only when that is a terminal.

    Thread safe: download workers report through :meth:`advance`.  Messages written with
    :meth:`message` appear above the bar.  When disabled every method does nothing but
    :meth:`message`, which prints plainly.
    """

    INTERVAL = 0.1

    def __init__(
        self,
        label: str,
        total_items: Optional[int] = None,
        total_bytes: Optional[int] = None,
        enabled: Optional[bool] = None,
        stream: Optional[IO[str]] = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = _is_terminal(self.stream)
        self.enabled = enabled
        self.label = label
        self.total_items = total_items
        self.total_bytes = total_bytes
        self.items = 0
        self.bytes = 0
        self._start = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0
        self._bar_width = max(10, min(40, _terminal_columns(self.stream) - len(label) - 50))
        self._lock = threading.Lock()

    def advance(self, items: int = 0, nbytes: int = 0) -> None:
        """Count finished items and transferred bytes; redraw at most every 0.1 s."""
        with self._lock:
            self.items += items
            self.bytes += nbytes
            self._draw_if_due()

    def update(self, items: int, nbytes: int) -> None:
        """Set the finished items and transferred bytes; redraw at most every 0.1 s."""
        with self._lock:
            self.items, self.bytes = items, nbytes
            self._draw_if_due()

    def message(self, text: str) -> None:
        """Print a line of text (to the bar's stream) without garbling the bar."""
        with self._lock:
            self._clear()
            self.stream.write(text + '\n')
            self.stream.flush()
            if self.enabled and self._drawn_at:
                self._draw()

    def close(self) -> None:
        """Draw the final state and end the line."""
        with self._lock:
            if self.enabled:
                self._draw()
                self.stream.write('\n')
                self.stream.flush()
                self.enabled = False

    def __enter__(self) -> 'Progress':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _draw_if_due(self) -> None:
        """Redraw (with the lock held) if the last drawing is at least 0.1 s old."""
        if self.enabled and time.monotonic() - self._drawn_at >= self.INTERVAL:
            self._draw()

    def _fraction(self) -> Optional[float]:
        if self.total_bytes:
            return min(self.bytes / self.total_bytes, 1.0)
        if self.total_items:
            return min(self.items / self.total_items, 1.0)
        return None

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        elapsed = max(self._drawn_at - self._start, 1e-6)
        columns = _terminal_columns(self.stream)
        counts = (
            f'{self.items}/{self.total_items}' if self.total_items is not None else str(self.items)
        )
        tail = (
            f' {counts} files  {_human_bytes(self.bytes)}  {_human_bytes(self.bytes / elapsed)}/s'
        )
        fraction = self._fraction()
        head = self.label
        if fraction is not None:
            filled = int(round(fraction * self._bar_width))
            head += f' [{"#" * filled}{"." * (self._bar_width - filled)}] {fraction:4.0%}'
        line = (head + tail)[: max(columns - 1, 20)]
        self.stream.write('\r' + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def _clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write('\r' + ' ' * self._width + '\r')
            self._width = 0


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _terminal_columns(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return 80


def _progress(args: argparse.Namespace, label: str, **totals: Any) -> Progress:
    enabled = False if args.no_progress else None
    return Progress(label, enabled=enabled, **totals)


class _CohortProgress(Progress):
    """The progress line of a cohort download: items and files done, bytes, the rate of
    the fetches and the time left, from the totals that
    :func:`dicomweb_client.download_cohort` hands to :meth:`show`."""

    def __init__(self, enabled: Optional[bool] = None, stream: Optional[IO[str]] = None) -> None:
        super().__init__('cohort', enabled=enabled, stream=stream)
        self.totals = dicomweb_client.CohortTotals()

    def show(self, totals: dicomweb_client.CohortTotals) -> None:
        """Take the latest totals; redraw at most every 0.1 s."""
        with self._lock:
            self.totals = totals
            self._draw_if_due()

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        totals = self.totals
        done = totals.items_ok + totals.items_failed
        parts = [
            f'{done}/{totals.items_total if totals.items_total is not None else "?"} items',
            f'{totals.finished}/{totals.listed} files',
            _human_bytes(totals.nbytes + totals.present_bytes),
            f'{_human_bytes(totals.rate)}/s',
        ]
        failed = totals.failed + totals.items_failed
        if failed:
            parts.append(f'{failed} failed')
        eta = totals.eta
        if eta is not None and done < (totals.items_total or 0):
            parts.append(f'ETA {_duration(eta)}')
        tail = '  '.join(parts)
        columns = max(_terminal_columns(self.stream) - 1, 20)
        head = self.label
        room = min(40, columns - len(head) - len(tail) - 9)  # ' [' '] ' '100% '
        if totals.items_total and room >= 10:
            fraction = min(done / totals.items_total, 1.0)
            filled = int(round(fraction * room))
            head += f' [{"#" * filled}{"." * (room - filled)}] {fraction:4.0%}'
        line = f'{head} {tail}'[:columns]
        self.stream.write('\r' + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)


def _duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


class _WaitNotice:
    """On a terminal, says that the command waits for the server's first answer.

    A server that accepts the connection and then says nothing would leave the command
    silent until the timeout.  After :attr:`DELAY` seconds without an answer this draws
    ``waiting for an answer from <server> ... N s`` on standard error, redrawn each
    second, and erases it when the first answer arrives or the command ends.  Warnings
    and errors erase it before they are printed (:meth:`erase_current`).
    """

    DELAY = 1.0
    _current: Optional['_WaitNotice'] = None

    def __init__(self, where: str, stream: IO[str]) -> None:
        self._where = where
        self._stream = stream
        self._answered = threading.Event()
        self._lock = threading.Lock()
        self._width = 0
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._draw_while_waiting, daemon=True, name='dicomweb_client-wait-notice'
        )

    def start(self) -> None:
        """Begin watching; the line appears only once :attr:`DELAY` has passed."""
        _WaitNotice._current = self
        self._thread.start()

    def answered(self, response: Any, **_: Any) -> Any:
        """Response hook of the session: the server has answered, the notice goes."""
        self.stop()
        return response

    def stop(self) -> None:
        """Stop drawing and erase the line (safe to call more than once)."""
        self._answered.set()
        self._erase()
        if _WaitNotice._current is self:
            _WaitNotice._current = None

    @classmethod
    def erase_current(cls) -> None:
        """Erase the notice being drawn, if any, so that a line of text can be printed."""
        notice = cls._current
        if notice is not None:
            notice._erase()

    def _draw_while_waiting(self) -> None:
        wait = self.DELAY
        while not self._answered.wait(wait):
            with self._lock:
                if self._answered.is_set():
                    return
                elapsed = time.monotonic() - self._started
                text = f'waiting for an answer from {self._where} ... {elapsed:.0f} s'
                self._stream.write('\r' + text.ljust(self._width))
                self._stream.flush()
                self._width = len(text)
            wait = 1.0

    def _erase(self) -> None:
        with self._lock:
            if self._width:
                self._stream.write('\r' + ' ' * self._width + '\r')
                self._stream.flush()
                self._width = 0


@contextlib.contextmanager
def _first_answer_awaited(client: Any, args: argparse.Namespace) -> Iterator[None]:
    """Show a :class:`_WaitNotice` while the command waits for its first answer.

    Only for a web client, with standard error a terminal and ``--no-progress`` not given.
    """
    session = getattr(client, '_session', None)
    hooks = getattr(session, 'hooks', None)
    if args.no_progress or not isinstance(hooks, dict) or not _is_terminal(sys.stderr):
        yield
        return
    parts = urllib.parse.urlsplit(args.url)
    notice = _WaitNotice(f'{parts.scheme}://{parts.netloc}', sys.stderr)
    hooks.setdefault('response', []).append(notice.answered)
    notice.start()
    try:
        yield
    finally:
        notice.stop()


# ---------------------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------------------


def _search(client: Any, args: argparse.Namespace) -> int:
    filters: Dict[str, Any] = {}
    for key, value in args.filters:
        if key in filters:  # a repeated key is sent as a repeated parameter
            previous = filters[key]
            filters[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            filters[key] = value
    options: Dict[str, Any] = {
        'fuzzymatching': True if args.fuzzy else None,
        'limit': args.limit,
        'offset': args.offset,
        'fields': args.fields or None,
        'search_filters': filters or None,
    }
    if args.level == 'study':
        results = client.search_for_studies(**options)
    elif args.level == 'series':
        results = client.search_for_series(study_instance_uid=args.study, **options)
    else:
        results = client.search_for_instances(
            study_instance_uid=args.study, series_instance_uid=args.series, **options
        )
    if args.output == 'table':
        known = {
            _STUDY_UID: getattr(args, 'study', None),
            _SERIES_UID: getattr(args, 'series', None),
        }
        _print_table(
            results, args.level, args.fields, {tag: uid for tag, uid in known.items() if uid}
        )
    else:
        _print_items(results, args)
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# retrieve: metadata
# ---------------------------------------------------------------------------------------


def _retrieve_metadata(client: Any, args: argparse.Namespace) -> int:
    if args.level == 'study':
        metadata: Any = client.retrieve_study_metadata(args.study)
    elif args.level == 'series':
        metadata = client.retrieve_series_metadata(args.study, args.series)
    else:
        metadata = client.retrieve_instance_metadata(args.study, args.series, args.instance)
    if not args.save:
        _print_items(metadata, args)
        return EXIT_OK
    folder = _output_dir(args)
    items = metadata if isinstance(metadata, list) else [metadata]
    mode = dicomweb_client._new_file_mode()
    for number, item in enumerate(items, start=1):
        try:
            name = dicomweb_client._file_name_uid(dicomweb_client._first_value(item, _SOP_UID))
        except ValueError:  # no SOP Instance UID: the file is named by its number
            name = None
        text = _to_json(item, args.prettify).encode('utf-8')
        _save(os.path.join(folder, f'{name or f"instance-{number}"}.json'), text, mode)
    _stdout().write(f'saved {_plural(len(items), "file")} to {folder}\n')
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# retrieve: whole instances (printed, or saved resumably and in parallel)
# ---------------------------------------------------------------------------------------


def _retrieve_full(client: Any, args: argparse.Namespace) -> int:
    options = {} if args.media_types is None else {'media_types': args.media_types}
    if args.level == 'instance':
        if not args.save:
            dataset = client.retrieve_instance(args.study, args.series, args.instance, **options)
            _stdout().write(f'{dataset}\n')
            return EXIT_OK
        data = _instance_file(client, args.study, args.series, args.instance, options)
        folder = _output_dir(args)
        name = dicomweb_client._file_name_uid(args.instance) or 'instance'
        _save(os.path.join(folder, f'{name}.dcm'), data)
        _stdout().write(f'saved 1 file to {folder}\n')
        return EXIT_OK
    if not args.save:
        if args.level == 'study':
            datasets = client.iter_study(args.study, **options)
        else:
            datasets = client.iter_series(args.study, args.series, **options)
        out = _stdout()
        for dataset in datasets:
            out.write(f'{dataset}\n\n')
        return EXIT_OK
    return _download(client, args, options)


def _download(client: Any, args: argparse.Namespace, options: Dict[str, Any]) -> int:
    """Save every instance of a study or series to ``<dir>/<study>/<series>/<sop>.dcm``.

    A cohort of one item for the library's :func:`dicomweb_client.download_cohort`: the
    instances are listed with QIDO-RS (every page) and fetched one request each by
    ``--workers`` threads; files already present are skipped, so an interrupted download
    resumes where it stopped, and each file keeps the bytes the server sent.  An instance
    that fails is reported and counted while the others go on; when the listing fails
    (or lists nothing), that error ends the command.
    """
    folder = _output_dir(args, create=False)
    item = dicomweb_client.CohortItem(args.study, args.series if args.level == 'series' else None)
    whole: List[BaseException] = []  # what made the item fail as a whole
    with _progress(args, 'retrieve') as progress:

        def complain(message: str, error: BaseException) -> None:
            if message.startswith(f'{item}: '):
                whole.append(error)
            else:
                _report_error(progress, args, message, error)

        totals = dicomweb_client.download_cohort(
            client,
            [item],
            folder,
            workers=args.workers,
            media_types=options.get('media_types'),
            on_progress=lambda totals: _show_files(progress, totals),
            on_error=complain,
        )
    if whole:
        raise whole[0]
    target = os.path.join(folder, args.study)
    summary = (
        f'{totals.downloaded} downloaded, {totals.present} already present, '
        f'{totals.failed} failed: {target}'
    )
    _stdout().write(summary + '\n')
    return EXIT_FAILED if totals.failed else EXIT_OK


def _show_files(progress: Progress, totals: dicomweb_client.CohortTotals) -> None:
    """Progress of a study or series: files done of those listed, and their bytes."""
    progress.total_items = totals.listed if totals.items_listed else None
    progress.update(items=totals.finished, nbytes=totals.nbytes + totals.present_bytes)


def _report_error(
    progress: Progress, args: argparse.Namespace, message: str, error: BaseException
) -> None:
    """Print what failed above the progress bar (with its traceback when verbose)."""
    progress.message(f'{PROG}: error: {_one_line(message)}')
    if args.verbosity:
        progress.message(_traceback_text(error))


# ---------------------------------------------------------------------------------------
# retrieve --manifest: a cohort of studies, series and instances
# ---------------------------------------------------------------------------------------


def _retrieve_manifest(client: Any, args: argparse.Namespace) -> int:
    """Download every item of a manifest with :func:`dicomweb_client.download_cohort`.

    A manifest read from a file is read through once first, so that one with an error
    downloads nothing (and the number of items is known for the estimate of the time
    left); standard input is read as the items are downloaded.  An item that fails is
    reported (and, with ``--report``, written as ``failed``) and the others go on.  The
    files already present are skipped, so running the command again fetches only what is
    missing.
    """
    folder = args.cohort_dir
    os.makedirs(folder, exist_ok=True)
    total = _manifest_length(args)
    with contextlib.ExitStack() as stack:
        report = None
        if args.report is not None:
            report = stack.enter_context(open(args.report, 'w', encoding='utf-8'))
        progress = _CohortProgress(enabled=False if args.no_progress else None)
        stack.enter_context(progress)

        def write(result: dicomweb_client.CohortItemResult) -> None:
            if report is not None:
                report.write(json.dumps(result.as_report()) + '\n')
                report.flush()

        totals = dicomweb_client.download_cohort(
            client,
            _manifest_lines(args),
            folder,
            workers=args.cohort_workers or 4,
            media_types=args.media_types,
            shard=args.shard,
            on_item=write,
            on_progress=progress.show,
            on_error=lambda message, error: _report_error(progress, args, message, error),
            total_items=total,
        )
    shard = '' if args.shard is None else f' (shard {args.shard[0]}/{args.shard[1]})'
    summary = (
        f'{_plural(totals.items, "item")}{shard}: {totals.items_ok} ok, '
        f'{totals.items_failed} failed; {totals.downloaded} files downloaded, '
        f'{totals.present} already present, {totals.failed} failed: {folder}'
    )
    _stdout().write(summary + '\n')
    return EXIT_FAILED if totals.items_failed else EXIT_OK


def _manifest_length(args: argparse.Namespace) -> Optional[int]:
    """The number of items of a manifest file that ``--shard`` keeps, read through once
    so that a manifest with an error is refused before anything is downloaded; ``None``
    for standard input, which is checked as it is read."""
    if args.manifest == '-':
        return None
    count = 0
    with open(args.manifest, 'rb') as lines:
        try:
            for item in dicomweb_client.read_manifest(lines):
                count += args.shard is None or dicomweb_client._in_shard(item, args.shard)
        except ValueError as error:
            raise CommandError(f'{args.manifest}: {error}') from None
    return count


def _manifest_lines(args: argparse.Namespace) -> Iterator[dicomweb_client.CohortItem]:
    """The items of ``--manifest``, read as they are asked for."""
    name = 'standard input' if args.manifest == '-' else args.manifest
    with contextlib.ExitStack() as stack:
        if args.manifest == '-':
            lines: Any = getattr(sys.stdin, 'buffer', sys.stdin)
        else:
            lines = stack.enter_context(open(args.manifest, 'rb'))
        try:
            yield from dicomweb_client.read_manifest(lines)
        except ValueError as error:
            raise CommandError(f'{name}: {error}') from None


# ---------------------------------------------------------------------------------------
# retrieve: frames and bulk data
# ---------------------------------------------------------------------------------------

_EXTENSIONS = {
    'application/octet-stream': '.dat',
    'image/jpeg': '.jpg',
    'image/jp2': '.jp2',
    'image/jpx': '.jpx',
    'image/jls': '.jls',
    'image/x-jls': '.jls',
    'image/png': '.png',
    'image/gif': '.gif',
    'image/dicom-rle': '.rle',
    'image/x-dicom-rle': '.rle',
    'image/jxl': '.jxl',
    'image/jphc': '.jhc',
    'video/mpeg': '.mpg',
    'video/mpeg2': '.mpg',
    'video/mp4': '.mp4',
    'video/H265': '.mp4',
}

_SIGNATURES = (
    (b'\x89PNG\r\n\x1a\n', '.png'),
    (b'\x00\x00\x00\x0cjP  \r\n\x87\n', '.jp2'),
    (b'\xff\x4f\xff\x51', '.j2k'),
    (b'GIF87a', '.gif'),
    (b'GIF89a', '.gif'),
    (b'\xff\xd8\xff\xf7', '.jls'),
    (b'\xff\xd8', '.jpg'),
)


def _extension(data: bytes, media_types: Optional[Tuple[Any, ...]]) -> str:
    """File name extension of a frame: from the one media type asked for, else sniffed."""
    if media_types is not None and len(media_types) == 1:
        media_type = media_types[0] if isinstance(media_types[0], str) else media_types[0][0]
        if media_type in _EXTENSIONS:
            return _EXTENSIONS[media_type]
    for signature, extension in _SIGNATURES:
        if data.startswith(signature):
            return extension
    return '.dat'


def _describe_blob(name: str, data: bytes, media_types: Optional[Tuple[Any, ...]]) -> str:
    kind = _extension(data, media_types).lstrip('.')
    kind = {'dat': 'binary data', 'jpg': 'JPEG', 'png': 'PNG', 'jp2': 'JPEG 2000'}.get(
        kind, kind.upper()
    )
    return f'{name}: {_plural(len(data), "byte")} ({kind})'


def _retrieve_frames(client: Any, args: argparse.Namespace) -> int:
    media_types = args.media_types
    options = {} if media_types is None else {'media_types': media_types}
    frames = client.retrieve_instance_frames(
        args.study, args.series, args.instance, args.numbers, **options
    )
    numbered = list(zip(args.numbers, frames))
    status = EXIT_OK
    if args.save:
        folder = _output_dir(args)
        base = dicomweb_client._file_name_uid(args.instance) or 'instance'
        mode = dicomweb_client._new_file_mode()
        for number, data in numbered:
            path = os.path.join(folder, f'{base}_{number}{_extension(data, media_types)}')
            _save(path, data, mode)
        _stdout().write(f'saved {_plural(len(numbered), "file")} to {folder}\n')
    if args.show:
        status = _show(numbered, media_types)
    if not args.save and not args.show:
        _print_blobs(
            [(f'frame {number}', data) for number, data in numbered],
            media_types,
            'redirect standard output to a file to keep the data, or use --save',
        )
    return status


def _show(numbered: List[Tuple[int, bytes]], media_types: Optional[Tuple[Any, ...]]) -> int:
    """Open frames in the default viewer (through temporary files)."""
    folder = tempfile.mkdtemp(prefix=f'{PROG}-frames-')
    for number, data in numbered:
        path = os.path.join(folder, f'frame_{number}{_extension(data, media_types)}')
        with open(path, 'wb') as fileobj:
            fileobj.write(data)
        import webbrowser  # imported here: only --show needs it

        if not webbrowser.open(
            urllib.parse.urljoin('file:', urllib.request.pathname2url(os.path.abspath(path)))
        ):
            _error_line(f'no image viewer could be started for {path}; use --save')
            return EXIT_FAILED
    return EXIT_OK


def _print_blobs(
    blobs: List[Tuple[str, bytes]], media_types: Optional[Tuple[Any, ...]], hint: str
) -> None:
    """Raw bytes to a redirected standard output, a description to a terminal."""
    if _stdout_is_terminal():
        out = _stdout()
        for name, data in blobs:
            out.write(_describe_blob(name, data, media_types) + '\n')
        out.write(f'({hint})\n')
        return
    _write_binary(data for _, data in blobs)


def _retrieve_bulkdata(client: Any, args: argparse.Namespace) -> int:
    media_types = args.media_types
    options = {} if media_types is None else {'media_types': media_types}
    items = client.retrieve_bulkdata(args.uri, **options)
    _print_blobs(
        [(f'item {number}', data) for number, data in enumerate(items, start=1)],
        media_types,
        'redirect standard output to a file to keep the data',
    )
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# store
# ---------------------------------------------------------------------------------------


@dataclass
class _Upload:
    """A file to store: where it is, its SOP Instance UID and what became of it."""

    path: str
    size: int
    uid: Optional[str] = None
    error: Optional[str] = None
    stored: bool = False


class _StreamedFile:
    """A file that the multipart body reads in chunks, opened only while it is read.

    Opening lazily keeps one file open at a time however many are stored; every read
    is counted by the progress bar.
    """

    def __init__(self, path: str, size: int, progress: Progress) -> None:
        self.path = path
        self.size = size
        self.progress = progress
        self._position = 0
        self._file: Optional[IO[bytes]] = None

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = base + offset
        self._close()
        return self._position

    def read(self, size: int = -1) -> bytes:
        if self._file is None:
            self._file = open(self.path, 'rb')
            self._file.seek(self._position)
        data = self._file.read(size)
        self._position += len(data)
        if data:
            self.progress.advance(nbytes=len(data))
        else:
            self._close()
            self.progress.advance(items=1)
        return data

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


_FAILURE_REASONS = {
    0x0110: 'processing failure',
    0x0112: 'no such object instance',
    0x0117: 'invalid object instance',
    0x0119: 'class-instance conflict',
    0x0122: 'SOP class not supported',
    0x0124: 'not authorized',
    0xA700: 'out of resources',
    0xA770: 'storage full',
    0xA900: 'data set does not match SOP class',
    0xC000: 'cannot understand',
    0xC122: 'transfer syntax not supported',
}


def _store_instances(client: Any, args: argparse.Namespace) -> int:
    uploads, ignored = _collect_uploads(args.paths)
    ready = [upload for upload in uploads if upload.error is None]
    if ready:
        if _is_file_client(client):
            _store_one_by_one(client, args, ready)
        else:
            _store_in_one_request(client, args, ready)
    stored = 0
    for upload in uploads:
        if upload.stored:
            stored += 1
            _stdout().write(f'stored: {upload.path}\n')
        else:
            _error_line(f'{upload.path}: {upload.error or "not stored"}')
    summary = f'stored {stored} of {_plural(len(uploads), "file")}'
    if ignored:
        summary += f' ({_plural(ignored, "file")} in folders ignored: not DICOM)'
    _stdout().write(summary + '\n')
    return EXIT_OK if uploads and stored == len(uploads) else EXIT_FAILED


def _collect_uploads(paths: Sequence[str]) -> Tuple[List[_Upload], int]:
    """The files to store, with what is wrong with each; also the count of ignored files.

    A folder contributes the DICOM files below it (others are ignored); a path that does
    not exist or a named file that is not DICOM is reported and not sent.
    """
    uploads: List[_Upload] = []
    ignored = 0
    for path in paths:
        if os.path.isdir(path):
            for found in _walk(path):
                upload = _inspect(found)
                if upload.error is None:
                    uploads.append(upload)
                else:
                    logger.info('ignored %s: %s', found, upload.error)
                    ignored += 1
        elif os.path.exists(path):
            uploads.append(_inspect(path))
        else:
            uploads.append(_Upload(path, 0, error='no such file or folder'))
    return uploads, ignored


def _walk(folder: str) -> List[str]:
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith('.'))
        found += [
            os.path.join(root, name)
            for name in sorted(files)
            if not name.startswith('.') and not name.endswith('.part')
        ]
    return found


def _inspect(path: str) -> _Upload:
    """Check that a file is a DICOM Part 10 file and read its SOP Instance UID."""
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as fileobj:
            fileobj.seek(128)
            if fileobj.read(4) != b'DICM':
                return _Upload(path, size, error='not a DICOM file (no DICM prefix)')
            fileobj.seek(0)
            dataset = pydicom.dcmread(
                fileobj, stop_before_pixels=True, specific_tags=['SOPInstanceUID']
            )
    except OSError as error:
        return _Upload(path, 0, error=error.strerror or str(error))
    except Exception as error:  # noqa: BLE001 - pydicom raises several kinds for broken files
        return _Upload(path, 0, error=f'cannot be read as DICOM: {_one_line(str(error))}')
    uid = dataset.get('SOPInstanceUID') or dataset.file_meta.get('MediaStorageSOPInstanceUID')
    return _Upload(path, size, uid=str(uid) if uid else None)


def _store_in_one_request(client: Any, args: argparse.Namespace, uploads: List[_Upload]) -> None:
    """Stream every file in one STOW-RS request and sort the files by the report."""
    total = sum(upload.size for upload in uploads)
    with _progress(args, 'store', total_items=len(uploads), total_bytes=total) as progress:
        parts = [_StreamedFile(upload.path, upload.size, progress) for upload in uploads]
        try:
            report = client.store_instances(parts, study_instance_uid=args.study)
        except dicomweb_client.HTTPError as error:
            refusal = _report_of_refusal(error)
            if refusal is None:
                for upload in uploads:
                    upload.error = f'the server refused the request: {_describe(error)}'
                return
            report = refusal
        except dicomweb_client.RequestException as error:
            for upload in uploads:
                upload.error = f'not sent: {_describe(error)}'
            return
    _apply_report(report, uploads)


def _report_of_refusal(error: Any) -> Optional[Dataset]:
    """The STOW-RS report in an error answer (409 lists the failed instances), if any."""
    response = getattr(error, 'response', None)
    if response is None:
        return None
    try:
        data = json.loads(response.content)
        report = pydicom.Dataset.from_json(data)
    except Exception:  # noqa: BLE001 - whatever fails, it is not a DICOM JSON report
        return None
    if 'FailedSOPSequence' not in report and 'ReferencedSOPSequence' not in report:
        return None
    return report


def _apply_report(report: Dataset, uploads: List[_Upload]) -> None:
    stored = {
        str(item.get('ReferencedSOPInstanceUID', ''))
        for item in report.get('ReferencedSOPSequence', [])
    }
    failed = {}
    for item in report.get('FailedSOPSequence', []):
        code = item.get('FailureReason')
        reason = 'refused by the server'
        if code is not None:
            reason += f': failure reason 0x{int(code):04X}'
            if int(code) in _FAILURE_REASONS:
                reason += f' ({_FAILURE_REASONS[int(code)]})'
        failed[str(item.get('ReferencedSOPInstanceUID', ''))] = reason
    itemized = bool(stored or failed)
    for upload in uploads:
        if upload.uid in failed:
            upload.error = failed[upload.uid]
        elif upload.uid in stored or not itemized:
            upload.stored = True  # an answer without a report: the request succeeded
        else:
            upload.error = 'not listed in the server\'s report'


def _store_one_by_one(client: Any, args: argparse.Namespace, uploads: List[_Upload]) -> None:
    """Store files through a file client, one data set in memory at a time."""
    with _progress(
        args, 'store', total_items=len(uploads), total_bytes=sum(upload.size for upload in uploads)
    ) as progress:
        for upload in uploads:
            try:
                dataset = pydicom.dcmread(upload.path)
                report = client.store_instances([dataset], study_instance_uid=args.study)
                if report is not None and report.get('FailedSOPSequence'):
                    _apply_report(report, [upload])
                else:
                    upload.stored = True
            except Exception as error:  # noqa: BLE001 - reported per file; the others go on
                upload.error = _describe(error)
            progress.advance(items=1, nbytes=upload.size)


# ---------------------------------------------------------------------------------------
# Errors and the entry points
# ---------------------------------------------------------------------------------------


def _describe(error: BaseException) -> str:
    """One line saying what went wrong."""
    if isinstance(error, CommandError):
        return _one_line(str(error)) or type(error).__name__
    return dicomweb_client._describe_error(error)


def _traceback_text(error: BaseException) -> str:
    return ''.join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()


def _exit_code(exit_: SystemExit) -> int:
    code = exit_.code
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def _silence_stdout() -> None:
    """After a broken pipe: point standard output at /dev/null so exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass


def _get_parser() -> argparse.ArgumentParser:
    """Return the argument parser; the name the established package's CLI module uses.

    ``main(_get_parser().parse_args([...]))`` runs a command from parsed arguments.
    """
    return build_parser()


def main(args: Union[Sequence[str], argparse.Namespace, None] = None) -> int:
    """Run the ``dicomweb_client`` command with ``args`` and return its exit code.

    Parameters
    ----------
    args: Union[Sequence[str], argparse.Namespace, None], optional
        Command line arguments without the program name (default: ``sys.argv[1:]``),
        or the namespace that :func:`_get_parser` (or :func:`build_parser`) parsed
        from them.

    Returns
    -------
    int
        0 on success, 1 when a request or part of the work failed, 2 for bad
        arguments, 130 when interrupted.

    Raises
    ------
    SystemExit
        With the exit code instead of returning it, when ``args`` is a namespace: that
        is how the established package's ``main`` ends, so callers written for it keep
        working.
    TypeError
        If ``args`` is a namespace that this module's parser did not produce.

    """
    parser = build_parser()
    if isinstance(args, argparse.Namespace):
        if not callable(getattr(args, 'handler', None)):
            raise TypeError(
                'args must be a list of strings or the namespace returned by '
                '_get_parser().parse_args()'
            )
        sys.exit(_run(parser, args))
    try:
        namespace = parser.parse_args(sys.argv[1:] if args is None else list(args))
    except SystemExit as exit_:
        return _exit_code(exit_)
    return _run(parser, namespace)


def _run(parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> int:
    """Check the parsed arguments, run the command and return its exit code."""
    try:
        _check_arguments(parser, namespace)
    except SystemExit as exit_:
        return _exit_code(exit_)
    dicomweb_client.configure_logging(min(namespace.verbosity, 4))
    try:
        with _retries_shown(namespace.verbosity):
            client = _make_client(namespace)
            with _first_answer_awaited(client, namespace):
                return namespace.handler(client, namespace)
    except KeyboardInterrupt:
        print(f'\n{PROG}: interrupted', file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as error:  # noqa: BLE001 - any failure is one error line and status 1
        if namespace.verbosity:
            print(_traceback_text(error), file=sys.stderr)
        _error_line(_describe(error))
        return EXIT_FAILED


def _console_main() -> None:
    """Entry point of the ``dicomweb_client`` console script."""
    sys.exit(main(sys.argv[1:]))


if __name__ == '__main__':
    _console_main()
