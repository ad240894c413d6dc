"""A DICOMweb client in one file: search (QIDO-RS), retrieve (WADO-RS), store (STOW-RS).

``dicomweb_client.py`` needs only the Python standard library and pydicom when it is
imported.  numpy and Pillow are used, when installed, for image features; google-auth,
when installed, for Google Cloud credentials.  Copy this file next to your code and
``import dicomweb_client``; the import paths of the established ``dicomweb-client``
package (``dicomweb_client.api``, ``dicomweb_client.uri``, ``dicomweb_client.session_utils``,
``dicomweb_client.log``, ``dicomweb_client.protocol``, ``dicomweb_client.ext.gcp.uri``,
``dicomweb_client.ext.gcp.session_utils``) are registered by this module, so code written
for that package runs unchanged.

The file reads top to bottom: logging, errors, attribute tags, URIs, transport (connection
pool, retry policy, session), multipart bodies, content negotiation (and DICOM XML), the
client protocol, the web client (:class:`DICOMwebClient`), the file client
(:class:`DICOMfileClient`, a folder of Part 10 files indexed with sqlite3), Google Cloud
helpers and finally the module aliases.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import datetime
import email.parser
import email.utils
import enum
import errno
import functools
import hashlib
import http.client
import http.cookiejar
import importlib
import importlib.util
import io
import itertools
import json
import logging
import mmap
import netrc
import os
import pathlib
import queue
import re
import select
import socket
import sqlite3
import ssl
import stat
import struct
import sys
import tempfile
import threading
import time
import types
import urllib.parse
import urllib.request
import warnings
import zlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from typing import (
    Any,
    Callable,
    Deque,
    IO,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
    cast,
    runtime_checkable,
    TYPE_CHECKING,
)

if TYPE_CHECKING:
    import pydicom
    import pydicom.encaps
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag


# -- pydicom (and numpy with it), imported on first use ---------------------------------


class _DeferredModule(types.ModuleType):
    """Stand-in for a module that is imported when one of its attributes is first read.

    Importing pydicom (numpy with it) takes about half a second, most of this module's
    import time, while a search, a download of files or most CLI commands never make or
    parse a data set.  On first use the stand-in imports the module and the submodules
    read through it, puts the module in its own place in this module's namespace (later
    reads cost nothing extra) and answers from it.  The import lock makes concurrent
    first uses from several threads safe.
    """

    def __init__(self, name: str, submodules: Tuple[str, ...], namespace: Dict[str, Any]) -> None:
        super().__init__(name)
        self._submodules = submodules
        self._namespace = namespace

    def __getattr__(self, attribute: str) -> Any:
        module = importlib.import_module(self.__name__)
        for submodule in self._submodules:
            importlib.import_module(f'{self.__name__}.{submodule}')
        if self._namespace.get(self.__name__) is self:
            self._namespace[self.__name__] = module
        return getattr(module, attribute)


#: the parts of pydicom read as ``pydicom.<part>`` here and in the CLI
_PYDICOM_PARTS = ('charset', 'datadict', 'dataset', 'encaps', 'errors', 'tag', 'uid')
if not TYPE_CHECKING:
    pydicom = _DeferredModule('pydicom', _PYDICOM_PARTS, globals())

#: The API version of the established dicomweb-client package this module implements,
#: with a local label (PEP 440) saying it is this module: version checks such as
#: ``>=0.61`` or ``==0.61.2`` accept it, so installing a project that depends on
#: dicomweb-client keeps this module instead of replacing it.
__version__ = '0.61.2+stdlib.1'

__all__ = [
    'ArchiveNotFoundError',
    'BodyTooLargeError',
    'ChunkedEncodingError',
    'CohortItem',
    'CohortItemResult',
    'CohortTotals',
    'ConnectFailedError',
    'ContentDecodingError',
    'CookieJar',
    'DICOMClient',
    'DICOMfileClient',
    'DICOMwebClient',
    'FileClientMissingUIDError',
    'FileClientNotAcceptableError',
    'FileClientNotFoundError',
    'FileClientReadOnlyError',
    'FileClientStoreError',
    'FileClientTypeError',
    'FileClientValueError',
    'GoogleCloudHealthcareURL',
    'HTTPDigestAuth',
    'HTTPError',
    'JSONDecodeError',
    'MultipartError',
    'NoMetadataError',
    'OutsideArchiveError',
    'RequestException',
    'Response',
    'RetryError',
    'RetryPolicy',
    'SSLError',
    'Session',
    'StaleConnectionError',
    'Timeout',
    'TransportError',
    'URI',
    'URISuffix',
    'URIType',
    'UnknownAttributeError',
    'add_certs_to_session',
    'build_query_string',
    'configure_logging',
    'create_session',
    'create_session_from_auth',
    'create_session_from_gcp_credentials',
    'create_session_from_user_pass',
    'download_cohort',
    'lookup_keyword',
    'lookup_tag',
    'parse_query_parameters',
    'read_manifest',
]

_T = TypeVar('_T')
_R = TypeVar('_R')

MediaTypes = Tuple[Union[str, Tuple[str, str]], ...]
"""Acceptable media types, each a media type or a (media type, transfer syntax UID) pair."""


# ---------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------

logger = logging.getLogger('dicomweb_client')
# nothing reaches standard error until the program configures logging (without a
# handler, Python's last-resort handler would print warnings such as retries there)
if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
    logger.addHandler(logging.NullHandler())  # once, should the module be loaded again
#: retries, as they are decided (a child of the package logger; the CLI always shows it)
_retry_logger = logging.getLogger('dicomweb_client.retry')

_VERBOSITY_LEVELS = {
    0: logging.CRITICAL + 10,
    1: logging.WARNING,
    2: logging.INFO,
    3: logging.DEBUG,
}


def configure_logging(verbosity: int) -> logging.Logger:
    """Send the package's log messages to standard error at a chosen verbosity.

    Standard output stays free for results, so it can be redirected to a file.

    Parameters
    ----------
    verbosity: int
        0 shows nothing, 1 warnings and errors, 2 adds informational messages, 3 adds
        debug messages and 4 or more shows every message, including the library's most
        detailed tracing.

    Returns
    -------
    logging.Logger
        The package logger (``dicomweb_client``).

    """
    level = _VERBOSITY_LEVELS.get(max(int(verbosity), 0), logging.NOTSET + 1)
    for handler in list(logger.handlers):
        if getattr(handler, '_dicomweb_client_handler', False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._dicomweb_client_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(
        logging.Formatter(
            '%(asctime)s | %(levelname)-8s | %(name)s | %(message)s', '%Y-%m-%d %H:%M:%S'
        )
    )
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


class RequestException(OSError):
    """Base class of every error raised while talking to a server."""


class HTTPError(RequestException):
    """The server answered with a status code outside 2xx.

    Attributes
    ----------
    status_code: int
        HTTP status code of the answer.
    method: str
        HTTP method of the request.
    url: str
        URL of the request.
    message: str
        What the server said (the start of the body), or its reason phrase.
    response: Response
        The answer itself.

    Note
    ----
    When ``requests`` has been imported by the program, the raised object is also an
    instance of ``requests.exceptions.HTTPError``, so ``except`` clauses written for
    the established package keep working.

    """

    def __init__(
        self,
        status_code: int,
        method: str,
        url: str,
        message: str = '',
        response: Optional['Response'] = None,
    ) -> None:
        reason = _reason_phrase(status_code)
        kind = 'Client Error' if 400 <= status_code < 500 else 'Server Error'
        text = f'{status_code} {kind}: {reason} for {method} {url}'
        if message and message != reason:
            text += f' - {message}'
        super().__init__(text)
        self.status_code = status_code
        self.method = method
        self.url = url
        self.message = message
        self.response = response
        self.request = getattr(response, 'request', None)


class _Attempt:
    """The last attempt of a request that was given up, as ``retrying`` describes one."""

    has_exception = False

    def __init__(self, value: Any, attempt_number: int) -> None:
        self.value = value
        self.attempt_number = attempt_number

    def get(self, wrap_exception: bool = False) -> Any:
        """Return the answer of the attempt."""
        return self.value

    def __repr__(self) -> str:
        return f'Attempts: {self.attempt_number}, Value: {self.value!r}'


class RetryError(HTTPError):
    """The server kept answering with a retriable status until no attempt was left.

    Raised instead of a plain :class:`HTTPError` when retries are on (see
    ``DICOMwebClient.set_http_retry_params``) and the last answer still has one of the
    retriable status codes.

    Attributes
    ----------
    last_attempt: Any
        The last attempt: ``value`` is its :class:`Response`, ``attempt_number`` says how
        many attempts were made and ``has_exception`` is ``False``.

    Note
    ----
    When ``retrying`` has been imported by the program, the raised object is also an
    instance of ``retrying.RetryError``, which the established package raises here.

    """

    def __init__(
        self,
        status_code: int,
        method: str,
        url: str,
        message: str = '',
        response: Optional['Response'] = None,
    ) -> None:
        super().__init__(status_code, method, url, message, response)
        self.last_attempt = _Attempt(response, getattr(response, 'attempts', 1))


class TransportError(RequestException):
    """The connection to the server failed (refused, reset, closed or unreadable)."""


class Timeout(TransportError):
    """Connecting or waiting for the server took longer than the timeout."""


class ContentDecodingError(TransportError):
    """A compressed body (``Content-Encoding``) is corrupt, truncated or in a coding this
    module cannot undo (it undoes ``gzip`` and ``deflate``)."""


class SSLError(TransportError):
    """TLS failed: the server's certificate did not verify (unknown issuer, expired,
    another host name) or the handshake was refused."""


class ChunkedEncodingError(TransportError):
    """An answer sent with chunked transfer coding is malformed (a chunk size line that
    is not a hex number, a body that ends inside or between chunks), or a body ends
    before its ``Content-Length``: requests raises its ``ChunkedEncodingError`` for
    both."""


class MultipartError(ValueError):
    """A multipart body is truncated or malformed."""


class BodyTooLargeError(RequestException):
    """An answer is larger than the client holds in memory, or it inflates so much
    that it is taken for a decompression bomb.

    Raised while the body is read, once the limit is passed (memory stays near the
    limit); the connection is then closed and nothing partial is returned.  It is not
    a :class:`TransportError`: the connection worked, and repeating the request would
    only fetch the same answer again.

    Attributes
    ----------
    url: str
        URL of the request.
    setting: str
        The attribute that sets the limit that was passed, ``'max_body_size'`` or
        ``'max_decoding_ratio'`` (of :class:`Session` and :class:`DICOMwebClient`).
    limit: float
        Its value: bytes, or decoded bytes per compressed byte.

    Note
    ----
    When ``requests`` has been imported by the program, the raised object is also an
    instance of ``requests.exceptions.RequestException``, which ``except`` clauses
    written for the established package catch.

    """

    def __init__(self, url: str, setting: str, limit: float, what: str) -> None:
        super().__init__(
            f'the answer from {url} is refused: {what}; set {setting} on '
            f'the client or session to a larger value (None: no limit) if '
            f'it is expected'
        )
        self.url = url
        self.setting = setting
        self.limit = limit


class JSONDecodeError(RequestException, json.JSONDecodeError):
    """An answer that should be JSON is not.

    It is a :class:`json.JSONDecodeError` (so a ``ValueError``) and, when ``requests`` has
    been imported, also ``requests.exceptions.JSONDecodeError``, which the established
    package raises here.
    """

    def __init__(self, url: str, error: ValueError, hint: str = '') -> None:
        document = getattr(error, 'doc', '')
        position = getattr(error, 'pos', 0)
        reason = getattr(error, 'msg', str(error))
        message = f'the answer from {url} is not valid JSON: {reason}'
        json.JSONDecodeError.__init__(
            self, f'{message} ({hint})' if hint else message, document, position
        )
        self.url = url
        self.error = error


_REQUESTS_TWINS = {
    HTTPError: 'HTTPError',
    TransportError: 'ConnectionError',
    Timeout: 'Timeout',
    ContentDecodingError: 'ContentDecodingError',
    SSLError: 'SSLError',
    ChunkedEncodingError: 'ChunkedEncodingError',
    JSONDecodeError: 'JSONDecodeError',
    BodyTooLargeError: 'RequestException',
}
_twin_cache: Dict[Tuple[type, ...], type] = {}


def _compatible(error_class: type) -> type:
    """Return ``error_class`` or, when ``requests`` or ``retrying`` is loaded, a subclass
    of it and of their matching exception classes.

    Neither package is ever imported here: a program that catches their exceptions has
    imported them already, and only then do the raised errors need to match them.
    """
    twins = _twins_of(error_class)
    if not twins:
        return error_class
    key = (error_class, *twins)
    if key not in _twin_cache:
        _twin_cache[key] = type(
            error_class.__name__,
            key,
            {'__module__': __name__, '__qualname__': error_class.__name__},
        )
    return _twin_cache[key]


def _twins_of(error_class: type) -> Tuple[type, ...]:
    """The loaded exception classes of ``requests`` and ``retrying`` that match."""
    twins: List[type] = []
    requests_exceptions = sys.modules.get('requests.exceptions')
    if requests_exceptions is not None:
        name = next(
            (_REQUESTS_TWINS[base] for base in error_class.__mro__ if base in _REQUESTS_TWINS), ''
        )
        twin = getattr(requests_exceptions, name, None)
        if isinstance(twin, type):
            twins.append(twin)
    retrying = sys.modules.get('retrying')
    if retrying is not None and issubclass(error_class, RetryError):
        twin = getattr(retrying, 'RetryError', None)
        if isinstance(twin, type) and issubclass(twin, Exception):
            twins.append(twin)
    return tuple(twins)


def _reason_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return 'Unknown Status'


# ---------------------------------------------------------------------------------------
# Attribute tags and keywords
# ---------------------------------------------------------------------------------------

_HEX_TAG = re.compile(r'^[0-9A-Fa-f]{8}$')


class _KeywordTables(NamedTuple):
    """pydicom's data dictionary in the shape lookups need."""

    tags: Dict[str, int]  # keyword -> tag
    keywords: Dict[int, str]  # tag -> keyword
    repeaters: Tuple[Tuple[int, int, str], ...]  # (mask, masked value, keyword): 60xx0010


def _pydicom_data_file(name: str) -> Optional[types.ModuleType]:
    """Run one of pydicom's generated dictionary files (``_dicom_dict``, ``_uid_dict``) alone.

    They hold plain data; read this way they cost milliseconds instead of the whole
    package import.  ``None`` when pydicom's layout is not the expected one.
    """
    spec = importlib.util.find_spec('pydicom')
    folders = list(spec.submodule_search_locations or ()) if spec else []
    path = os.path.join(folders[0], f'{name}.py') if folders else ''
    if not os.path.isfile(path):
        return None
    file_spec = importlib.util.spec_from_file_location(f'{__name__}._pydicom{name}', path)
    if file_spec is None or file_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(file_spec)
    try:
        file_spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - any surprise: fall back to importing pydicom
        return None
    return module


@functools.lru_cache(maxsize=None)
def _keyword_tables() -> _KeywordTables:
    """The standard data dictionary, read without importing pydicom when possible."""
    data = _pydicom_data_file('_dicom_dict')
    if data is None:
        data = pydicom.datadict
    keywords = {tag: entry[4] for tag, entry in data.DicomDictionary.items() if entry[4]}
    repeaters = tuple(
        (
            int(''.join('0' if digit == 'x' else 'F' for digit in mask), 16),
            int(mask.replace('x', '0'), 16),
            entry[4],
        )
        for mask, entry in data.RepeatersDictionary.items()
        if entry[4]
    )
    return _KeywordTables({keyword: tag for tag, keyword in keywords.items()}, keywords, repeaters)


@functools.lru_cache(maxsize=None)
def _uid_names() -> Dict[str, str]:
    """UID -> name from pydicom's UID dictionary, read without importing pydicom."""
    data = _pydicom_data_file('_uid_dict')
    table = data.UID_dictionary if data is not None else pydicom.uid.UID_dictionary
    return {uid: entry[0] for uid, entry in table.items()}


def _loaded_datadict() -> Any:
    """pydicom's own ``datadict`` once pydicom is imported (it may hold added entries)."""
    datadict = sys.modules.get('pydicom.datadict')
    return datadict if hasattr(datadict, 'keyword_dict') else None


def _tag_for_keyword(keyword: str) -> Optional[int]:
    """The tag of a standard keyword, or ``None`` (as ``pydicom.datadict.tag_for_keyword``)."""
    datadict = _loaded_datadict()
    if datadict is not None:
        return cast(Optional[int], datadict.tag_for_keyword(keyword))
    return _keyword_tables().tags.get(keyword)


def _keyword_for_tag(tag: int) -> str:
    """The keyword of a tag, repeating groups included, or ``''`` (as pydicom's)."""
    datadict = _loaded_datadict()
    if datadict is not None:
        return cast(str, datadict.keyword_for_tag(tag))
    tables = _keyword_tables()
    keyword = tables.keywords.get(tag)
    if keyword is None:
        keyword = next(
            (keyword for mask, value, keyword in tables.repeaters if tag & mask == value), ''
        )
    return keyword


def _uid_name(uid: str) -> Optional[str]:
    """The name of a well-known UID (``'CT Image Storage'``), or ``None``."""
    return _uid_names().get(uid)


def _closest_keyword(word: str) -> Optional[str]:
    """The standard keyword nearest to a misspelt one, or ``None`` when none is close."""
    import difflib  # only on the error path

    datadict = _loaded_datadict()
    candidates = datadict.keyword_dict if datadict is not None else _keyword_tables().tags
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return matches[0] if matches else None


def lookup_keyword(tag: Union[str, int, Tuple[int, int], BaseTag]) -> str:
    """Return the keyword of a DICOM attribute, e.g. ``'SOPInstanceUID'``.

    Parameters
    ----------
    tag: Union[str, int, Tuple[int, int], pydicom.tag.BaseTag]
        The tag, as an eight digit hex string (``'00080018'``), an integer, a
        (group, element) pair or a pydicom tag.

    Returns
    -------
    str
        Keyword of the attribute.

    Raises
    ------
    KeyError
        If the data dictionary does not know the tag.

    """
    value = pydicom.tag.Tag(int(tag, 16)) if isinstance(tag, str) else pydicom.tag.Tag(tag)
    keyword = pydicom.datadict.keyword_for_tag(value)
    if not keyword:
        raise KeyError(f'no keyword is known for tag "{value}"')
    return cast(str, keyword)


def lookup_tag(keyword: str) -> str:
    """Return the tag of a DICOM attribute as an eight digit hex string.

    Parameters
    ----------
    keyword: str
        Keyword of the attribute, e.g. ``'SOPInstanceUID'``.

    Returns
    -------
    str
        The tag, e.g. ``'00080018'``.

    Raises
    ------
    KeyError
        If the data dictionary does not know the keyword.

    """
    tag = _tag_for_keyword(keyword) if keyword else None
    if tag is None:
        raise KeyError(f'no tag is known for keyword "{keyword}"')
    return f'{tag:08X}'


class UnknownAttributeError(ValueError):
    """An attribute name that is neither a DICOM keyword nor an eight digit hex tag.

    A ``ValueError`` (what the established package raises there).  ``argument`` is the
    parameter that held it, ``name`` the name as given, ``step`` the unknown part of a
    dotted path and ``suggestion`` the nearest standard keyword, if one is close.
    """

    def __init__(self, argument: str, name: str, step: str, suggestion: Optional[str]) -> None:
        self.argument, self.name, self.step, self.suggestion = argument, name, step, suggestion
        hint = f'; did you mean {suggestion!r}?' if suggestion else ''
        super().__init__(
            f'"{argument}" names an unknown attribute: {name!r} (use a DICOM '
            f'keyword or an eight digit hex tag{hint})'
        )


def _check_attribute(name: str, argument: str) -> str:
    """Check that ``name`` names an attribute: a keyword, a hex tag or a dotted path of them.

    Returns the name unchanged; raises :class:`UnknownAttributeError` naming ``argument``
    (and the nearest keyword) otherwise.
    """
    if not isinstance(name, str):
        raise TypeError(f'attribute names in "{argument}" must be strings, not {name!r}')
    for step in name.split('.'):
        if _HEX_TAG.fullmatch(step):
            continue
        if not step or _tag_for_keyword(step) is None:
            raise UnknownAttributeError(
                argument, name, step, _closest_keyword(step) if step else None
            )
    return name


# ---------------------------------------------------------------------------------------
# URIs
# ---------------------------------------------------------------------------------------

_UID_PATTERN = re.compile(r'[0-9]+(\.[0-9]+)*')
_PERMISSIVE_UID_PATTERN = re.compile(r'[^/@?#%\s\x00-\x1f\x7f]+')
_FRAME_LIST_PATTERN = re.compile(r'[0-9]+(,[0-9]+)*')
_MAX_UID_LENGTH = 64


def _check_uid(value: Any, name: str, permissive: bool = False) -> str:
    """Return ``value`` if it is a valid UID, else raise a ``ValueError`` naming ``name``.

    A conformant UID is dot separated digits, at most 64 characters.  ``permissive``
    accepts anything that stays one URL path segment (no ``/``, ``@``, ``?``, ``#``,
    ``%``, white space or control characters, and never ``.`` or ``..``), for servers
    that hold non-conformant UIDs.
    """
    if not isinstance(value, str):
        raise TypeError(f'{name} must be a string, not {type(value).__name__}')
    if permissive:
        if not _PERMISSIVE_UID_PATTERN.fullmatch(value) or value in ('.', '..'):
            raise ValueError(
                f'{name} {value!r} is not usable as a UID: it must not be '
                'empty or contain "/", "@", "?", "#", "%", white space or '
                'control characters'
            )
        return value
    if len(value) > _MAX_UID_LENGTH or not _UID_PATTERN.fullmatch(value):
        raise ValueError(
            f'{name} {value!r} is not a valid DICOM UID (digits separated '
            'by dots, at most 64 characters); permissive mode '
            '(permissive=True, or permissive_uid=True for the client) '
            'accepts non-conformant UIDs'
        )
    return value


def _check_frame_numbers(frames: Any, name: str = 'frame_numbers') -> Tuple[int, ...]:
    """Return frame numbers as a tuple of positive integers, else raise."""
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
        raise TypeError(f'{name} must be a sequence of integers, not {frames!r}')
    numbers = tuple(frames)
    if not numbers:
        raise ValueError(f'{name} must not be empty')
    numbers = tuple(int(n) if isinstance(n, str) and n.isdigit() else n for n in numbers)
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f'{name} must hold integers, not {number!r}')
        if number < 1:
            raise ValueError(f'{name} must be positive (frames are numbered from 1), got {number}')
    return numbers


class URISuffix(enum.Enum):
    """Resources that can be appended to a study, series, instance or frame URI."""

    METADATA = 'metadata'
    RENDERED = 'rendered'
    THUMBNAIL = 'thumbnail'


class URIType(enum.Enum):
    """Level of the DICOM resource a URI points to."""

    SERVICE = 'service'
    STUDY = 'study'
    SERIES = 'series'
    INSTANCE = 'instance'
    FRAME = 'frame'


def _resource_path(
    study_instance_uid: Optional[str] = None,
    series_instance_uid: Optional[str] = None,
    sop_instance_uid: Optional[str] = None,
    frames: Optional[Sequence[int]] = None,
    suffix: Optional[str] = None,
) -> str:
    """Build the DICOMweb path below the service URL (no validation here)."""
    path = ''
    if study_instance_uid is not None:
        path += f'/studies/{study_instance_uid}'
        if series_instance_uid is not None:
            path += f'/series/{series_instance_uid}'
            if sop_instance_uid is not None:
                path += f'/instances/{sop_instance_uid}'
                if frames is not None:
                    path += '/frames/' + ','.join(str(number) for number in frames)
    if suffix is not None:
        path += f'/{suffix}'
    return path


class URI:
    """An immutable HTTP(S) URI of a DICOMweb resource.

    The URI is the service URL followed by an optional study, series, instance and frame
    list, and optionally a ``metadata``, ``rendered`` or ``thumbnail`` suffix, as PS3.18
    defines them.  Use :meth:`update` to derive a changed copy.

    Parameters
    ----------
    base_url: str
        URL of the DICOMweb service (http or https, no trailing slash).
    study_instance_uid: Union[str, None], optional
        Study Instance UID.
    series_instance_uid: Union[str, None], optional
        Series Instance UID (needs the study).
    sop_instance_uid: Union[str, None], optional
        SOP Instance UID (needs study and series).
    frames: Union[Sequence[int], None], optional
        Positive frame numbers in ascending order (needs the instance).
    suffix: Union[URISuffix, None], optional
        Resource appended to the URI.
    permissive: bool, optional
        Accept UIDs that break the standard's syntax (anything without ``/``, ``@`` or
        white space).  Use only for servers that hold such UIDs.

    Raises
    ------
    ValueError
        If the service URL is not an http(s) URL or ends in a slash, a UID is malformed, a
        lower level is given without its parents, the frame list is empty, not positive or
        not ascending, or the suffix does not fit the level.

    """

    def __init__(
        self,
        base_url: str,
        study_instance_uid: Optional[str] = None,
        series_instance_uid: Optional[str] = None,
        sop_instance_uid: Optional[str] = None,
        frames: Optional[Sequence[int]] = None,
        suffix: Optional[URISuffix] = None,
        permissive: bool = False,
    ):
        _check_base_url(base_url)
        if series_instance_uid is not None and study_instance_uid is None:
            raise ValueError('series_instance_uid needs study_instance_uid')
        if sop_instance_uid is not None and (
            study_instance_uid is None or series_instance_uid is None
        ):
            raise ValueError('sop_instance_uid needs study_instance_uid and series_instance_uid')
        for value, name in (
            (study_instance_uid, 'study_instance_uid'),
            (series_instance_uid, 'series_instance_uid'),
            (sop_instance_uid, 'sop_instance_uid'),
        ):
            if value is not None:
                _check_uid(value, name, permissive)
        if frames is not None:
            if sop_instance_uid is None:
                raise ValueError(
                    'frames need study_instance_uid, series_instance_uid and sop_instance_uid'
                )
            frames = _check_frame_numbers(frames, 'frames')
            if any(later <= earlier for earlier, later in zip(frames, frames[1:])):
                raise ValueError(
                    f'frames must be in ascending order without duplicates, got {list(frames)}'
                )
        if suffix is not None:
            suffix = URISuffix(suffix)
            if study_instance_uid is None:
                raise ValueError(f'suffix {suffix.value!r} needs study_instance_uid')
            if suffix is URISuffix.METADATA and frames is not None:
                raise ValueError('frames have no metadata resource')
        self._base_url = base_url
        self._study_instance_uid = study_instance_uid
        self._series_instance_uid = series_instance_uid
        self._sop_instance_uid = sop_instance_uid
        self._frames = frames
        self._suffix = suffix
        self._permissive = permissive

    def __str__(self) -> str:
        suffix = self._suffix.value if self._suffix is not None else None
        return self._base_url + _resource_path(
            self._study_instance_uid,
            self._series_instance_uid,
            self._sop_instance_uid,
            self._frames,
            suffix,
        )

    def _parts(self) -> Tuple[Any, ...]:
        """The parts the URI is made of, from the service URL to the suffix."""
        return (
            self._base_url,
            self._study_instance_uid,
            self._series_instance_uid,
            self._sop_instance_uid,
            self._frames,
            self._suffix,
        )

    def __repr__(self) -> str:
        names = (
            'base_url',
            'study_instance_uid',
            'series_instance_uid',
            'sop_instance_uid',
            'frames',
            'suffix',
        )
        arguments = ', '.join(f'{name}={value!r}' for name, value in zip(names, self._parts()))
        return f'dicomweb_client.URI({arguments})'

    def __hash__(self) -> int:
        return hash(self._parts())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, URI):
            return NotImplemented
        return self._parts() == other._parts() and self._permissive == other._permissive

    @property
    def base_url(self) -> str:
        """str: URL of the DICOMweb service."""
        return self._base_url

    @property
    def study_instance_uid(self) -> Optional[str]:
        """Union[str, None]: Study Instance UID, if any."""
        return self._study_instance_uid

    @property
    def series_instance_uid(self) -> Optional[str]:
        """Union[str, None]: Series Instance UID, if any."""
        return self._series_instance_uid

    @property
    def sop_instance_uid(self) -> Optional[str]:
        """Union[str, None]: SOP Instance UID, if any."""
        return self._sop_instance_uid

    @property
    def frames(self) -> Optional[Tuple[int, ...]]:
        """Union[Tuple[int, ...], None]: frame numbers, if any."""
        return self._frames

    @property
    def suffix(self) -> Optional[URISuffix]:
        """Union[URISuffix, None]: resource suffix, if any."""
        return self._suffix

    @property
    def permissive(self) -> bool:
        """bool: whether non-conformant UIDs were accepted."""
        return self._permissive

    @property
    def type(self) -> URIType:
        """URIType: level of the resource the URI points to."""
        if self._frames is not None:
            return URIType.FRAME
        if self._sop_instance_uid is not None:
            return URIType.INSTANCE
        if self._series_instance_uid is not None:
            return URIType.SERIES
        if self._study_instance_uid is not None:
            return URIType.STUDY
        return URIType.SERVICE

    @property
    def parent(self) -> 'URI':
        """URI: the resource one level up; for a suffixed URI, the same URI unsuffixed."""
        if self._suffix is not None:
            return self._without_suffix()
        level = self.type
        if level is URIType.FRAME:
            return self.instance_uri()
        if level is URIType.INSTANCE:
            return self.series_uri()
        if level is URIType.SERIES:
            return self.study_uri()
        return self.base_uri()

    def _without_suffix(self) -> 'URI':
        return URI(
            self._base_url,
            self._study_instance_uid,
            self._series_instance_uid,
            self._sop_instance_uid,
            self._frames,
            None,
            self._permissive,
        )

    def base_uri(self) -> 'URI':
        """Return the URI of the DICOMweb service itself."""
        return URI(self._base_url, permissive=self._permissive)

    def study_uri(self) -> 'URI':
        """Return the URI of the study; raises ``ValueError`` without a study."""
        if self._study_instance_uid is None:
            raise ValueError(f'{self} has no Study Instance UID')
        return URI(self._base_url, self._study_instance_uid, permissive=self._permissive)

    def series_uri(self) -> 'URI':
        """Return the URI of the series; raises ``ValueError`` without a series."""
        if self._series_instance_uid is None:
            raise ValueError(f'{self} has no Series Instance UID')
        return URI(
            self._base_url,
            self._study_instance_uid,
            self._series_instance_uid,
            permissive=self._permissive,
        )

    def instance_uri(self) -> 'URI':
        """Return the URI of the instance; raises ``ValueError`` without an instance."""
        if self._sop_instance_uid is None:
            raise ValueError(f'{self} has no SOP Instance UID')
        return URI(
            self._base_url,
            self._study_instance_uid,
            self._series_instance_uid,
            self._sop_instance_uid,
            permissive=self._permissive,
        )

    def frame_uri(self) -> 'URI':
        """Return the URI of the frames; raises ``ValueError`` without frames."""
        if self._frames is None:
            raise ValueError(f'{self} has no frame numbers')
        return URI(
            self._base_url,
            self._study_instance_uid,
            self._series_instance_uid,
            self._sop_instance_uid,
            self._frames,
            permissive=self._permissive,
        )

    def update(
        self,
        base_url: Optional[str] = None,
        study_instance_uid: Optional[str] = None,
        series_instance_uid: Optional[str] = None,
        sop_instance_uid: Optional[str] = None,
        frames: Optional[Sequence[int]] = None,
        suffix: Optional[URISuffix] = None,
        permissive: Optional[bool] = False,
    ) -> 'URI':
        """Return a copy with the given parts replaced (``None`` keeps the current part).

        Raises
        ------
        ValueError
            If the resulting URI is invalid.

        """
        return URI(
            base_url if base_url is not None else self._base_url,
            study_instance_uid if study_instance_uid is not None else self._study_instance_uid,
            series_instance_uid if series_instance_uid is not None else self._series_instance_uid,
            sop_instance_uid if sop_instance_uid is not None else self._sop_instance_uid,
            frames if frames is not None else self._frames,
            suffix if suffix is not None else self._suffix,
            permissive if permissive is not None else self._permissive,
        )

    @classmethod
    def from_string(
        cls, dicomweb_uri: str, uri_type: Optional[URIType] = None, permissive: bool = False
    ) -> 'URI':
        """Parse a DICOMweb URI such as ``<service>/studies/<uid>/series/<uid>``.

        Parameters
        ----------
        dicomweb_uri: str
            The URI.
        uri_type: Union[URIType, None], optional
            Level the URI must have; checked when given.
        permissive: bool, optional
            Accept non-conformant UIDs (see :class:`URI`).

        Returns
        -------
        URI
            The parsed URI.

        Raises
        ------
        ValueError
            If the string is not a valid DICOMweb URI or has another level than
            ``uri_type``.

        """
        if not isinstance(dicomweb_uri, str):
            raise TypeError(f'dicomweb_uri must be a string, not {dicomweb_uri!r}')
        base_url, parts = _split_resource_path(dicomweb_uri)
        suffix = None
        if len(parts) % 2:  # key/value pairs, then possibly one suffix
            if parts[-1] not in {member.value for member in URISuffix}:
                raise ValueError(
                    f'{dicomweb_uri!r} is not a DICOMweb URI: unknown suffix {parts[-1]!r}'
                )
            suffix = URISuffix(parts.pop())
        values: Dict[str, Any] = {}
        for key, name in (
            ('studies', 'study_instance_uid'),
            ('series', 'series_instance_uid'),
            ('instances', 'sop_instance_uid'),
            ('frames', 'frames'),
        ):
            if not parts:
                break
            if len(parts) < 2 or parts[0] != key:
                raise ValueError(
                    f'{dicomweb_uri!r} is not a DICOMweb URI: expected '
                    f'"{key}/<value>" at "{"/".join(parts)}"'
                )
            values[name] = parts[1]
            parts = parts[2:]
        if parts:
            raise ValueError(
                f'{dicomweb_uri!r} is not a DICOMweb URI: unexpected "{"/".join(parts)}"'
            )
        if 'frames' in values:
            if not _FRAME_LIST_PATTERN.fullmatch(values['frames']):
                raise ValueError(f'{dicomweb_uri!r} has a malformed frame list')
            values['frames'] = [int(number) for number in values['frames'].split(',')]
        uri = cls(base_url, suffix=suffix, permissive=permissive, **values)
        if uri_type is not None and uri.type is not URIType(uri_type):
            raise ValueError(
                f'{dicomweb_uri!r} is a {uri.type.value} URI, expected '
                f'a {URIType(uri_type).value} URI'
            )
        return uri


def _split_resource_path(dicomweb_uri: str) -> Tuple[str, List[str]]:
    """Split a DICOMweb URI into the service URL and the resource path segments."""
    parsed = urllib.parse.urlsplit(dicomweb_uri)
    if parsed.query or parsed.fragment or dicomweb_uri.endswith(('?', '#')):
        raise ValueError(f'{dicomweb_uri!r} is not a DICOMweb URI: it has a query or fragment')
    segments = parsed.path.split('/')
    for index, segment in enumerate(segments):
        if segment == 'studies' and index + 1 < len(segments):
            service_path = '/'.join(segments[:index])
            base_url = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, service_path, '', ''))
            return base_url, segments[index:]
    suffixes = {member.value for member in URISuffix}
    if len(segments) > 1 and segments[-1] in suffixes:
        raise ValueError(f'{dicomweb_uri!r}: a suffix needs at least a study')
    return dicomweb_uri, []


def _check_base_url(base_url: str) -> None:
    """Raise ``ValueError`` unless ``base_url`` is an http(s) URL without trailing slash."""
    if not isinstance(base_url, str):
        raise TypeError(f'base_url must be a string, not {base_url!r}')
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ('http', 'https'):
        raise ValueError(f'base_url {base_url!r} must use the http or https scheme')
    if not parsed.netloc:
        raise ValueError(f'base_url {base_url!r} has no host')
    if base_url.endswith('/'):
        raise ValueError(f'base_url {base_url!r} must not end with a slash')
    if parsed.query or parsed.fragment:
        raise ValueError(f'base_url {base_url!r} must not have a query or fragment')


# Characters sent as they are in query values: the QIDO-RS wildcards and list separators
# and the person name component separator.  RFC 3986 allows them (but "^") unescaped, and
# some servers (Orthanc 1.10) compare query values without percent-decoding them.
_QUERY_SAFE = "*?,:@/!$'()^-"


def build_query_string(params: Optional[Dict[str, Any]] = None) -> str:
    """Build the query string of a request, starting with ``?`` (empty if no parameters).

    Values are percent-encoded except for the characters QIDO-RS gives a meaning
    (``*``, ``?``, ``,``, ``^`` and a few others RFC 3986 allows in a query).

    Parameters
    ----------
    params: Union[Dict[str, Any], None], optional
        Parameters; a list, tuple or set value repeats the key once per item
        (``{"key": ["a", "b"]}`` gives ``?key=a&key=b``).

    Returns
    -------
    str
        The query string.

    """
    if not params:
        return ''
    pairs = []
    for key, value in params.items():
        values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        for item in values:
            pairs.append(f'{key}={urllib.parse.quote(_query_value(item), safe=_QUERY_SAFE)}')
    return '?' + '&'.join(pairs) if pairs else ''


def _query_value(value: Any) -> str:
    """Render a query value: booleans as true/false, dates and times in DICOM form."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if hasattr(value, 'strftime') and hasattr(value, 'year') and hasattr(value, 'hour'):
        return value.strftime('%Y%m%d%H%M%S')
    if hasattr(value, 'strftime') and hasattr(value, 'year'):
        return value.strftime('%Y%m%d')
    if hasattr(value, 'strftime'):
        return value.strftime('%H%M%S')
    return str(value)


def parse_query_parameters(
    fuzzymatching: Optional[bool] = None,
    limit: Optional[int] = None,
    offset: Optional[int] = None,
    fields: Optional[Sequence[str]] = None,
    search_filters: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Check the arguments of a search and turn them into sorted query parameters.

    Parameters
    ----------
    fuzzymatching: Union[bool, None], optional
        Ask for fuzzy semantic matching of person names.
    limit: Union[int, None], optional
        Maximum number of results.
    offset: Union[int, None], optional
        Number of results to skip.
    fields: Union[Sequence[str], None], optional
        Attributes (keywords or tags, or ``'all'``) to include in the results.
    search_filters: Union[Dict[str, Any], None], optional
        Matching keys (keyword or tag) and the values they must match.

    Returns
    -------
    Dict[str, Any]
        Query parameters, sorted by name.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``limit`` or ``offset`` is negative or an attribute name is unknown.

    """
    params: Dict[str, Any] = {}
    for name, value in (('limit', limit), ('offset', offset)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f'{name} must be an integer, not {value!r}')
        if value < 0:
            raise ValueError(f'{name} must not be negative, got {value}')
        params[name] = value
    if fuzzymatching is not None:
        if not isinstance(fuzzymatching, bool):
            raise TypeError(f'fuzzymatching must be a boolean, not {fuzzymatching!r}')
        params['fuzzymatching'] = 'true' if fuzzymatching else 'false'
    if fields is not None:
        if isinstance(fields, str):
            fields = [fields]
        params['includefield'] = sorted(
            {field if field == 'all' else _check_attribute(field, 'fields') for field in fields}
        )
    for key, value in (search_filters or {}).items():
        if key in ('limit', 'offset', 'fuzzymatching', 'includefield'):
            raise ValueError(f'search_filters must not hold {key!r}; use the {key} argument')
        params[_check_attribute(key, 'search_filters')] = value
    return dict(sorted(params.items()))


# ---------------------------------------------------------------------------------------
# Transport: headers, retry policy, responses, connection pool and session
# ---------------------------------------------------------------------------------------
#
# The parts, in reading order (each uses only the parts above it, and from the sections
# after this one only the Content-Type parser and the read1 adapter of Multipart bodies):
#
#   Memos                 what is remembered to save work: what each memo saves, its bound
#   Model                 transport errors, URL helpers, header fields and cookies, the
#                         retry policy and its one loop, the request, the response
#   Wire format           request heads (built, checked), request bodies framed (chunked),
#                         answer heads read (_HTTPResponse)
#   Connection and pool   where a connection goes (_Origin), one connection, the pool
#   Auth and environment  which origins get the credentials, netrc, basic and bearer auth,
#                         proxies, certificates, digest auth
#   Session               Session: prepare, redirects and 401 challenges, retries, one
#                         exchange on a pooled connection, connecting, proxies and TLS
#   Foreign session       a requests.Session (or a subclass) behind the Session interface
#   Factories             create_session and friends (the session_utils module)


# -- Memos: what the transport remembers to save work -----------------------------------

_MEMO_SIZE = 256  # most entries of a memo kept with _remember
_HEADER_NAMES_KEPT = 512  # most valid field names remembered


def _remember(memo: Dict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` in a bounded memo (a full one starts over)."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value


class _TransportMemo:
    """The memos of the transport, in one place: work that every request would repeat,
    done once and kept.  Each is bounded.

    The figures say what each saves: a ``timeit`` of the call it serves, with and without
    it (a small request on loopback costs the client 60-75 us in all).  This object, one
    per process (:data:`_MEMO`), holds the memos with nothing secret in them.  The memos
    of what a session sends and receives are attributes of each :class:`Session`
    instead, since request heads hold its credentials and answer heads the cookies it
    is sent; they go with :meth:`Session.close` and are not pickled:

    ``Session._heads_sent``
        Request heads by method, URL, origin and fields (:func:`_request_head`): a
        request sent again (a search repeated, a poll) skips building and checking its
        head, 0.7-1.2 us instead of 7.5-9 us (86-90%).  At most :data:`_MEMO_SIZE`.
    ``Session._heads_read``
        Answer heads by their bytes (:func:`_buffered_head`): a server sends the same
        few heads again and again, and a known one is not parsed again, 0.7 us instead
        of 7.3-7.6 us (90%).  At most :data:`_MEMO_SIZE`.
    ``Session._origins``
        Where a URL goes, its proxy and TLS settings, by scheme, host, the request's
        proxies and TLS settings (:meth:`Session._origin`): choosing reads the
        environment, 0.6 us instead of 80 us (99%).  At most :data:`_MEMO_SIZE`.
    ``Session._ssl_contexts``
        TLS contexts by (verify, cert) (:meth:`Session._ssl_context`): making one loads
        the CA certificates, 0.7 us instead of about 50 ms for each new TLS connection.
        At most :data:`_MEMO_SIZE`.

    Every :class:`_Origin` keeps two of its own: its hash (it is looked up in the pool
    twice a request and hashed in the key of each request head; 0.12 instead of
    0.25 us a pool lookup, 28% of a remembered request head) and
    :attr:`_Origin.host_header` (0.1 instead of 0.7 us, 15% of building a request head).
    """

    __slots__ = ('header_names', 'authority_origins')

    def __init__(self) -> None:
        #: header field names found valid (:func:`_check_header_name`): a set lookup in
        #: place of a regular expression for each field of a request head being built,
        #: about 4 instead of 5 us a head of three fields (15-22%); at most
        #: :data:`_HEADER_NAMES_KEPT`, then no more are added
        self.header_names: Set[str] = set()
        #: origins (scheme, host, port) by scheme and authority (:func:`_origin_of`), for
        #: URLs outside a client's own origin (bulk data elsewhere, ``credential_origins``):
        #: 0.8 instead of 3.5-4.8 us a URL (77-83%); at most :data:`_MEMO_SIZE`
        self.authority_origins: Dict[Tuple[str, str], Tuple[str, str, int]] = {}


_MEMO = _TransportMemo()


# -- Model: errors, URLs, header fields, cookies, retry policy, request, response -------


class ConnectFailedError(TransportError):
    """The connection could not be opened; nothing was sent, so a retry is safe."""

    #: whether trying again may help (not for a host name that does not exist)
    retriable = True


class StaleConnectionError(TransportError):
    """The server closed the connection before answering."""


def _transport_error(error: BaseException, url: str, chunked: bool = False) -> RequestException:
    """Wrap a low-level exception in the matching :class:`RequestException`;
    ``chunked`` says that it happened while a chunked body was read."""
    if isinstance(error, RequestException):
        return error
    if isinstance(error, (socket.timeout, TimeoutError)):
        return _compatible(Timeout)(f'timed out talking to {url}: {error}')
    if chunked and isinstance(error, (http.client.IncompleteRead, http.client.LineTooLong)):
        return _compatible(ChunkedEncodingError)(
            f'the chunked answer from {url} is malformed or ends inside a chunk '
            f'({type(error).__name__})'
        )
    if isinstance(error, http.client.IncompleteRead):  # requests: ChunkedEncodingError too
        missing = '' if error.expected is None else f', {error.expected} more were expected'
        return _compatible(ChunkedEncodingError)(
            f'the answer from {url} ended early: got {len(error.partial)} bytes{missing}'
        )
    if isinstance(error, ssl.SSLError):
        return _compatible(SSLError)(f'TLS failed for {url}: {error}')
    return _compatible(TransportError)(
        f'connection to {url} failed: {type(error).__name__}: {error}'
    )


def _body_too_large(
    url: str, limit: float, what: str, setting: str = 'max_body_size'
) -> BodyTooLargeError:
    """The error for an answer past a limit: ``what`` it did, ``setting`` that sets it."""
    return _compatible(BodyTooLargeError)(url, setting, limit, what)


def _redact(url: str) -> str:
    """The URL without user name and password, for messages and logs."""
    if '@' not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ''
    if parts.port:
        netloc += f':{parts.port}'
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _credentials_in_url(url: str) -> Tuple[Optional[str], Optional[str]]:
    if '@' not in url:
        return None, None
    pieces = url.split('/', 3)  # scheme, '', user info + host, path
    if len(pieces) < 3 or '@' not in pieces[2]:
        return None, None
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None, None
    return (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ''))


_TARGET_OF_URL = re.compile(r'[^/]*//[^/?#]*([^#]*)')


def _request_target(url: str) -> str:
    """Path and query of an absolute URL (without any fragment), as sent to a server."""
    match = _TARGET_OF_URL.match(url)
    target = match.group(1) if match else ''
    return target if target.startswith('/') else '/' + target


def _merged_params(
    session_params: Mapping[str, Any], params: Optional[Dict[str, Any]]
) -> Dict[str, Any]:
    """The session's query parameters updated with a request's; ``None`` drops one."""
    merged = {**session_params, **(params or {})}
    return {key: value for key, value in merged.items() if value is not None}


def _with_query(url: str, params: Optional[Dict[str, Any]]) -> str:
    """``url`` with ``params`` appended to its query string (if it has one already)."""
    query = build_query_string(params)
    if query and '?' in url:
        return url + '&' + query[1:]
    return url + query


class CaseInsensitiveDict(MutableMapping):
    """A dict of header fields whose keys compare without regard to case."""

    def __init__(self, data: Optional[Mapping[str, str]] = None, **kwargs: str) -> None:
        self._store: Dict[str, Tuple[str, str]] = {}
        if data or kwargs:
            self.update(data or {}, **kwargs)

    def __setitem__(self, key: str, value: str) -> None:
        self._store[key.lower()] = (key, value)

    def __getitem__(self, key: str) -> str:
        return self._store[key.lower()][1]

    def __delitem__(self, key: str) -> None:
        del self._store[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._store

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def copy(self) -> 'CaseInsensitiveDict':
        """Return a shallow copy."""
        duplicate = CaseInsensitiveDict.__new__(CaseInsensitiveDict)
        duplicate._store = self._store.copy()
        return duplicate

    def pairs(self) -> List[Tuple[str, str]]:
        """Return the (name, value) pairs with names as they were set (a quick ``items``)."""
        return list(self._store.values())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


_NO_COOKIE = object()


class CookieJar(http.cookiejar.CookieJar):
    """The cookies of a :class:`Session`: a standard ``http.cookiejar.CookieJar`` with the
    name-based helpers of the jar a ``requests.Session`` has.

    Cookies that servers set are kept and sent back where their domain, path and
    ``Secure`` flag allow; cookies set here without a domain go to every server.
    """

    def __bool__(self) -> bool:
        return bool(self._cookies)  # type: ignore[attr-defined]

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state.pop('_cookies_lock', None)  # a lock cannot be pickled; a new one is made
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cookies_lock = threading.RLock()

    def set(self, name: str, value: Optional[str], domain: str = '', path: str = '/') -> None:
        """Set a cookie (``value=None`` removes the cookies of that name)."""
        if value is None:
            for cookie in [cookie for cookie in self if cookie.name == name]:
                self.clear(cookie.domain, cookie.path, cookie.name)
            return
        self.set_cookie(
            http.cookiejar.Cookie(
                0,
                name,
                str(value),
                None,
                False,
                domain,
                bool(domain),
                domain.startswith('.'),
                path,
                True,
                False,
                None,
                True,
                None,
                None,
                {},
            )
        )

    def get(
        self,
        name: str,
        default: Any = None,
        domain: Optional[str] = None,
        path: Optional[str] = None,
    ) -> Any:
        """The value of the first cookie called ``name`` (in that domain and path)."""
        for cookie in self:
            if (
                cookie.name == name
                and domain in (None, cookie.domain)
                and path in (None, cookie.path)
            ):
                return cookie.value
        return default

    def __getitem__(self, name: str) -> Optional[str]:
        value = self.get(name, _NO_COOKIE)
        if value is _NO_COOKIE:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: Optional[str]) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        self.set(name, None)

    def __contains__(self, name: object) -> bool:
        return any(cookie.name == name for cookie in self)

    def update(self, cookies: Any) -> None:
        """Add cookies from another jar, or from a mapping of names to values."""
        if isinstance(cookies, http.cookiejar.CookieJar):
            for cookie in cookies:
                self.set_cookie(cookie)
        else:
            for name, value in dict(cookies).items():
                self.set(name, value)

    def get_dict(self) -> Dict[str, Optional[str]]:
        """Names and values of all cookies."""
        return {cookie.name: cookie.value for cookie in self}

    def keys(self) -> List[str]:
        """Names of all cookies."""
        return [cookie.name for cookie in self]

    def values(self) -> List[Optional[str]]:
        """Values of all cookies."""
        return [cookie.value for cookie in self]

    def items(self) -> List[Tuple[str, Optional[str]]]:
        """(name, value) of all cookies."""
        return [(cookie.name, cookie.value) for cookie in self]


def _cookie_request(url: str) -> urllib.request.Request:
    """A urllib request for ``url`` (without credentials), for ``http.cookiejar``."""
    if '@' in url:
        parts = urllib.parse.urlsplit(url)
        url = parts._replace(netloc=parts.netloc.rpartition('@')[2]).geturl()
    return urllib.request.Request(url)


def _with_cookies(
    prepared: 'PreparedRequest', cookies: http.cookiejar.CookieJar
) -> 'PreparedRequest':
    """``prepared``, or a copy of it with the ``Cookie`` field of the cookies that apply."""
    request = _cookie_request(prepared.url)
    cookies.add_cookie_header(request)
    field = request.get_header('Cookie')
    if field is None:
        return prepared
    prepared = prepared.copy()
    prepared.headers['Cookie'] = field
    return prepared


DEFAULT_RETRIABLE_STATUSES: Tuple[HTTPStatus, ...] = (
    HTTPStatus.TOO_MANY_REQUESTS,
    HTTPStatus.REQUEST_TIMEOUT,
    HTTPStatus.SERVICE_UNAVAILABLE,
    HTTPStatus.GATEWAY_TIMEOUT,
)


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before repeating a request; immutable.

    Attributes
    ----------
    max_attempts: int
        Total number of attempts, the first one included (1 disables retries).
    wait_exponential_multiplier: float
        Milliseconds; the n-th retry waits ``multiplier * 2**n`` ms unless the server
        said how long to wait in a ``Retry-After`` header.
    retriable_statuses: frozenset
        Status codes that are retried.
    max_wait: float
        Longest single wait in seconds; a ``Retry-After`` beyond it ends the retries.
    attempt: int
        Number of the attempt this policy governs (starts at 1).
    connect_budget: float
        Most seconds that the waits before reconnecting to a server that cannot be
        reached (connection refused or reset while connecting, network unreachable, a
        temporary name resolution failure) may add up to; the waits follow the same
        exponential schedule, the last one shortened to fit.  0 reports such failures
        at once; a host name that does not exist is never retried.
    connect_waited: float
        Seconds already waited for reconnecting before the attempt this policy governs.

    """

    max_attempts: int = 5
    wait_exponential_multiplier: float = 1000
    retriable_statuses: frozenset = frozenset(int(s) for s in DEFAULT_RETRIABLE_STATUSES)
    max_wait: float = 60.0
    attempt: int = 1
    connect_budget: float = 1.0
    connect_waited: float = 0.0

    @property
    def exhausted(self) -> bool:
        """bool: whether no attempt is left."""
        return self.attempt >= self.max_attempts

    def increment(self, connect_wait: float = 0.0) -> 'RetryPolicy':
        """Return the policy of the next attempt (``connect_wait``: seconds waited before
        it because the connection failed)."""
        return dataclasses.replace(
            self, attempt=self.attempt + 1, connect_waited=self.connect_waited + connect_wait
        )

    def backoff(self) -> float:
        """Return the exponential wait in seconds before the next attempt."""
        return min(self.wait_exponential_multiplier * 2**self.attempt / 1000.0, self.max_wait)

    def wait_after(self, response: 'Response') -> Optional[float]:
        """Return seconds to wait before retrying ``response``, or ``None`` not to retry."""
        if self.exhausted or response.status_code not in self.retriable_statuses:
            return None
        retry_after = _parse_retry_after(response.headers.get('Retry-After'))
        if retry_after is None:
            return self.backoff()
        return retry_after if retry_after <= self.max_wait else None

    def connect_wait(self) -> Optional[float]:
        """Return seconds to wait before connecting again after a failed connection, or
        ``None`` once the attempts or the :attr:`connect_budget` are used up."""
        if self.exhausted:
            return None
        wait = min(self.backoff(), self.connect_budget - self.connect_waited)
        return wait if wait > 0.001 else None


def _announce_retry(retry: RetryPolicy, wait: float, what: str) -> None:
    """Log a retry, as it is decided, on the ``dicomweb_client.retry`` logger.

    Parameters
    ----------
    retry: RetryPolicy
        The policy of the attempt that failed.
    wait: float
        Seconds until the next attempt.
    what: str
        What went wrong, without credentials.

    """
    _retry_logger.warning(
        '%s; retrying in %.1f s (retry %d of %d)', what, wait, retry.attempt, retry.max_attempts - 1
    )


_NO_RETRIES = RetryPolicy(max_attempts=1)


def _send_retrying(
    send: Callable[[], 'Response'], retry: RetryPolicy, replayable: bool, method: str, url: str
) -> 'Response':
    """Send a request with ``send()`` until ``retry`` says its answer is final.

    The one retry loop of both sessions, :class:`Session` and the adapter of a
    ``requests.Session`` (:class:`_ForeignSession`).  A connection that could not be
    opened (:class:`ConnectFailedError`) is tried again while
    :meth:`RetryPolicy.connect_wait` allows; an answer is sent again while
    :meth:`RetryPolicy.wait_after` allows and the body can be sent again.  Each retry is
    logged as it is decided (:func:`_announce_retry`), then waited for.

    Parameters
    ----------
    send: Callable[[], Response]
        Sends the request once and returns the answer.
    retry: RetryPolicy
        The policy of the first attempt.
    replayable: bool
        Whether the body can be sent again (if not, no answer is retried).
    method: str
        HTTP method, for the log.
    url: str
        URL of the request, for the log (credentials are left out).

    Returns
    -------
    Response
        The final answer, its :attr:`Response.attempts` set (the web client raises
        :class:`RetryError` from it when the retries gave up).

    Raises
    ------
    ConnectFailedError
        Once reconnecting is no longer allowed.

    """
    wait: Optional[float]
    while True:
        try:
            response = send()
        except ConnectFailedError as error:
            wait = retry.connect_wait() if error.retriable else None
            if wait is None:
                raise
            _announce_retry(retry, wait, str(error))
            time.sleep(wait)
            retry = retry.increment(connect_wait=wait)
            continue
        wait = retry.wait_after(response) if replayable else None
        if wait is None:
            response.attempts = retry.attempt
            return response
        _announce_retry(retry, wait, f'{method} {_redact(url)} answered {response.status_code}')
        response.close()
        time.sleep(wait)
        retry = retry.increment()


class PreparedRequest:
    """A request ready to send: method, URL, header fields and body.

    Auth callables receive this object and may change ``headers`` (and ``url``); it has
    the attributes that authentication handlers written for ``requests`` use, response
    hooks included (see :meth:`register_hook`).
    """

    #: an auth that answers 401 challenges (see :class:`HTTPDigestAuth`), or ``None``
    authenticator: Any = None
    #: the class name of the auth whose hooks were registered, for error messages
    _hook_owner = ''
    _jar: Optional[http.cookiejar.CookieJar] = None

    def __init__(
        self, method: str, url: str, headers: CaseInsensitiveDict, body: Any = None
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.hooks: Dict[str, List[Callable]] = {'response': []}

    def register_hook(self, event: str, hook: Callable) -> None:
        """Register a response hook, as ``requests`` auth handlers do.

        The session calls ``hook(response, timeout=..., stream=...)`` with the final
        answer; a hook may return a replacement.  It can send a new request as in
        requests: ``response.request.copy()``, ``prepare_cookies``, then
        ``response.connection.send(request)``.
        """
        self.hooks.setdefault(event, []).append(hook)

    @property
    def _cookies(self) -> http.cookiejar.CookieJar:
        """The cookie jar of the request, as requests' auth hooks expect to find it."""
        if self._jar is None:
            self._jar = CookieJar()
        return self._jar

    def prepare_cookies(self, cookies: http.cookiejar.CookieJar) -> None:
        """Set the ``Cookie`` field from the cookies of ``cookies`` that apply (unless the
        request has a ``Cookie`` field already), as ``requests`` does."""
        self._jar = cookies
        if 'Cookie' not in self.headers:
            request = _cookie_request(self.url)
            cookies.add_cookie_header(request)
            field = request.get_header('Cookie')
            if field is not None:
                self.headers['Cookie'] = field

    def copy(self) -> 'PreparedRequest':
        """Return a copy with its own header dict."""
        duplicate = PreparedRequest(self.method, self.url, self.headers.copy(), self.body)
        duplicate.authenticator = self.authenticator
        duplicate._jar = self._jar
        return duplicate

    def __repr__(self) -> str:
        return f'<PreparedRequest [{self.method} {self.url}]>'


def _remaining_size(fileobj: Any) -> Tuple[Optional[int], Optional[int]]:
    """Position and remaining size of a seekable file object, or (None, None)."""
    try:
        start = fileobj.tell()
        end = fileobj.seek(0, io.SEEK_END)
        fileobj.seek(start)
        return start, end - start
    except (AttributeError, OSError, ValueError):
        return None, None


def _read_chunks(fileobj: Any, chunk_size: int) -> Iterator[bytes]:
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            return
        yield chunk


class _Body:
    """A request body as a source of byte chunks, its length if known, and replayability."""

    def __init__(self, data: Any, chunk_size: int = 1 << 20) -> None:
        self.length: Optional[int] = None
        self.replayable = True
        self._start: Optional[int] = None
        self._data = data
        self._chunk_size = chunk_size
        if data is None:
            self.length = 0
        elif isinstance(data, str):
            self._data = data.encode('utf-8')
            self.length = len(self._data)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            self.length = memoryview(data).nbytes
        elif isinstance(data, Mapping):
            self._data = urllib.parse.urlencode(data, doseq=True).encode('ascii')
            self.length = len(self._data)
        elif hasattr(data, 'read'):
            self._start, self.length = _remaining_size(data)
            self.replayable = self._start is not None
        elif callable(data):
            self.length = getattr(data, 'length', None)
        elif isinstance(data, Iterable):
            self.length = getattr(data, 'length', None)
            self.replayable = hasattr(data, 'replayable') and bool(data.replayable)
        else:
            raise TypeError(f'cannot send a body of type {type(data).__name__}')

    def payload(self) -> Any:
        """Return what http.client sends: bytes, or an iterable of byte chunks."""
        data = self._data
        if data is None or isinstance(data, (bytes, bytearray, memoryview)):
            return data
        if hasattr(data, 'read'):
            if self._start is not None:
                data.seek(self._start)
            return _read_chunks(data, self._chunk_size)
        if callable(getattr(data, 'transient_chunks', None)):
            return data.transient_chunks()  # every chunk is sent before the next is made
        if callable(data):
            return data()
        return data


_NO_BODY = _Body(None)  # shared: a request without a body has nothing to change


def _json_loads(data: bytes) -> Any:
    """Parse a JSON body; one that starts like UTF-8 JSON is decoded as such directly
    (``json.loads`` would first guess among UTF-8, -16 and -32, and still does for the
    rest: a byte order mark, or a NUL byte second as UTF-16 has it)."""
    if data[:1] in (b'[', b'{') and data[1:2] != b'\x00':
        return json.loads(data.decode('utf-8'))
    return json.loads(data)


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value).encode('utf-8')


#: default ``max_body_size``: the most bytes of one answer read whole into memory, and of
#: one part of a multipart answer (4 GiB: DICOM lengths are 32 bits, so no uncompressed
#: value reaches it, and no study's metadata comes near)
DEFAULT_MAX_BODY_SIZE = 4 << 30
#: default ``max_decoding_ratio``: the most decoded bytes per compressed byte (JSON
#: shrinks 5 to 30 times; deflate's own ceiling, for long runs of one byte, is 1032)
DEFAULT_MAX_DECODING_RATIO = 200.0
_RATIO_CHECKED_AFTER = 16 << 20  # decoded bytes before the ratio counts


_WBITS_OF_CODING = {
    'gzip': 16 + zlib.MAX_WBITS,
    'x-gzip': 16 + zlib.MAX_WBITS,
    'deflate': zlib.MAX_WBITS,
}
_DECODER_READ_SIZE = 1 << 16
_COLLECTED_PIECE = 1 << 20  # bytes per read while a body is read whole


class _BodyDecoder:
    """Undoes the ``gzip`` or ``deflate`` Content-Encoding of a body, piece by piece.

    Compressed bytes go in with :meth:`feed`; :meth:`take` hands out at most the number of
    decompressed bytes asked for, so a small compressed body cannot make a huge read.
    A ``gzip`` body may hold several members one after the other; ``deflate`` is accepted
    with the zlib wrapper the standard asks for and also without it, as some servers send
    it.  Corrupt or truncated data raises :class:`ContentDecodingError`.  With
    ``max_ratio``, data that inflates more than that many times (counted over the bytes
    inflated so far, once more than 16 MiB came out) raises :class:`BodyTooLargeError`.
    """

    def __init__(self, encoding: str, url: str, max_ratio: Optional[float] = None) -> None:
        self._encoding = encoding
        self._url = url
        self._max_ratio = max_ratio
        self._fed = self._decoded = 0  # bytes in and out so far
        wbits = _WBITS_OF_CODING.get(encoding.lower())
        if wbits is None:
            raise self._error(
                f'it is sent with Content-Encoding {encoding!r}; this module '
                f'undoes only {", ".join(sorted(_WBITS_OF_CODING))}'
            )
        self._wbits = wbits
        self._inflater = zlib.decompressobj(self._wbits)
        self._pending = b''
        self._started = False  # any compressed byte seen yet
        self._full = False  # the last piece was cut at the size asked for: more may follow

    def _error(self, problem: str) -> ContentDecodingError:
        return _compatible(ContentDecodingError)(
            f'cannot decode the answer from {self._url}: {problem}'
        )

    def feed(self, data: bytes) -> None:
        """Add compressed bytes."""
        self._fed += len(data)
        self._pending = self._pending + data if self._pending else data

    def take(self, size: int) -> bytes:
        """Decompress up to ``size`` bytes (all there are for ``size <= 0``) of what was
        fed; ``b''`` when more input is needed."""
        limit = max(size, 0)
        if not self._started:
            # the first two bytes tell how deflate data is wrapped
            if len(self._pending) < (2 if self._wbits == zlib.MAX_WBITS else 1):
                return b''
            self._start()
        while self._pending or self._full:
            data, self._pending = self._pending, b''
            if self._inflater.eof and data:  # another gzip member follows the finished one
                self._inflater = zlib.decompressobj(self._wbits)
            out = self._inflate(data, limit)
            self._full = 0 < limit == len(out)
            self._pending = self._inflater.unconsumed_tail or self._inflater.unused_data
            if out:
                self._count(len(out))
                return out
        return b''

    def _count(self, size: int) -> None:
        """Add ``size`` decoded bytes; refuse a body that inflates past the ratio (of the
        compressed bytes used so far, not of all that were fed)."""
        self._decoded += size
        ratio = self._max_ratio
        used = self._fed - len(self._pending)
        if (
            ratio is not None
            and self._decoded > _RATIO_CHECKED_AFTER
            and self._decoded > ratio * used
        ):
            raise _body_too_large(
                self._url,
                ratio,
                f'its {self._encoding} body inflates more than {ratio:g} '
                f'times ({self._decoded} bytes from {used}), as a decompression bomb does',
                'max_decoding_ratio',
            )

    def _start(self) -> None:
        """Pick the decompressor once the first bytes are in: deflate data without the
        zlib wrapper (its header's check bits do not add up) is inflated raw."""
        self._started = True
        if self._wbits == zlib.MAX_WBITS:
            method, flags = self._pending[0], self._pending[1]
            if method & 0x0F != 8 or (method << 8 | flags) % 31:
                self._wbits = -zlib.MAX_WBITS
                self._inflater = zlib.decompressobj(self._wbits)

    def _inflate(self, data: bytes, limit: int) -> bytes:
        try:
            return self._inflater.decompress(data, limit)
        except zlib.error as error:
            raise self._error(f'corrupt {self._encoding} data ({error})') from None

    def finish(self) -> None:
        """Check, once the body has ended, that the compressed data was complete."""
        if self._pending or (self._started and not self._inflater.eof):
            raise self._error(f'the {self._encoding} data is truncated')


def _joined_within(
    pieces: Iterable[bytes], limit: Optional[int], url: str, what: str = 'its body'
) -> bytes:
    """Join ``pieces`` of an answer from ``url``, refused once more than ``limit`` bytes.

    Parameters
    ----------
    pieces: Iterable[bytes]
        The body, piece by piece, as it is read.
    limit: Union[int, None]
        Most bytes kept (``None``: no limit); the pieces after it are not read.
    url: str
        URL of the request, for the error message.
    what: str
        What the pieces are, for the error message.

    Returns
    -------
    bytes
        The pieces joined.

    Raises
    ------
    BodyTooLargeError
        As soon as the pieces add up to more than ``limit`` bytes.

    """
    kept: List[bytes] = []
    total = 0
    for piece in pieces:
        total += len(piece)
        if limit is not None and total > limit:
            raise _body_too_large(url, limit, f'{what} is larger than {limit} bytes')
        kept.append(piece)
    return b''.join(kept)


_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHARSET_FROM_HEADERS = object()
_NO_TIME = datetime.timedelta(0)


def _charset_param(content_type: Message) -> Optional[str]:
    """The charset parameter of a parsed Content-Type, if any."""
    charset = content_type.get_param('charset')
    return str(charset).strip('\'"') or None if charset else None


def _parse_link_field(value: str) -> List[Dict[str, str]]:
    """The links of an HTTP ``Link`` field (RFC 8288): each its ``url`` and parameters."""
    links = []
    for item in re.split(r',\s*(?=<)', value.strip()):
        target, _, parameters = item.partition(';')
        if not target.strip():
            continue
        link = {'url': target.strip().strip('<>')}
        for parameter in parameters.split(';'):
            name, equals, text = parameter.partition('=')
            if equals:
                link[name.strip().lower()] = text.strip().strip('"\'')
        links.append(link)
    return links


def _server_message(response: Response, limit: int = 2000) -> str:
    """The start of an error answer's body as text, or its reason phrase."""
    try:  # UTF-8 unless the server says otherwise (not ISO-8859-1 for text/*)
        charset = _charset_param(_content_type(response.headers.get('Content-Type', '')))
        text = response.content.decode(charset or 'utf-8', errors='replace').strip()
    except (RequestException, LookupError):
        text = ''
    text = ' '.join(text.split())
    return (text[:limit] + ' ...' if len(text) > limit else text) or response.reason


class Response:
    """An answer from the server; the body is read on demand.

    Attributes
    ----------
    status_code: int
        HTTP status code.
    reason: str
        Reason phrase.
    headers: email.message.Message
        Header fields (case-insensitive ``get`` and ``[]``).
    url: str
        URL of the request that produced this answer.
    request: PreparedRequest
        That request.
    raw: http.client.HTTPResponse
        The underlying stream.
    elapsed: datetime.timedelta
        Time from sending the request to reading the head of the answer.
    history: List[Response]
        The redirects followed to get here, oldest first.
    attempts: int
        How many times the request was sent to get this answer (retries included).
    max_body_size: Union[int, None]
        Most bytes :attr:`content` holds, decoded (``None``: no limit), and most bytes
        one part of a multipart answer may have; the session's when it sent the request.
    max_decoding_ratio: Union[float, None]
        Most decoded bytes per compressed byte of a compressed body, checked once more
        than 16 MiB have been decoded (``None``: no limit); the session's.

    """

    #: charset that :attr:`text` decodes with, once set by hand (see :attr:`encoding`)
    _charset: Any = _CHARSET_FROM_HEADERS
    attempts: int = 1
    max_body_size: Optional[int] = DEFAULT_MAX_BODY_SIZE
    max_decoding_ratio: Optional[float] = DEFAULT_MAX_DECODING_RATIO
    #: while response hooks run: ``connection.send(request)`` sends a request again
    connection: Any = None

    def __init__(
        self,
        raw: http.client.HTTPResponse,
        request: PreparedRequest,
        release: Callable[[bool], None],
    ) -> None:
        self.raw = raw
        self.request = request
        self.status_code: int = raw.status
        self.reason: str = raw.reason
        self.headers: Message = raw.headers
        self.url = _redact(request.url)
        self.history: List['Response'] = []
        self.elapsed = _NO_TIME
        self._release = release
        self._content: Optional[bytes] = None
        self._error: Optional[RequestException] = None
        self._released = False
        #: the Content-Encoding to undo (``None``: the body is sent as it is)
        self._coding: Optional[str] = getattr(raw, 'content_encoding', None)
        self._decoder: Optional[_BodyDecoder] = None

    def __repr__(self) -> str:
        return f'<Response [{self.status_code}]>'

    def __enter__(self) -> 'Response':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def ok(self) -> bool:
        """bool: whether the status code is below 400."""
        return self.status_code < 400

    @property
    def is_redirect(self) -> bool:
        """bool: whether this answer redirects to another URL."""
        return self.status_code in _REDIRECT_STATUSES and 'Location' in self.headers

    @property
    def is_permanent_redirect(self) -> bool:
        """bool: whether this answer redirects for good (301 or 308)."""
        return self.status_code in (301, 308) and 'Location' in self.headers

    @property
    def content_type(self) -> str:
        """str: media type of the body, lower case, without parameters."""
        return _content_type(self.headers.get('Content-Type', '')).get_content_type()

    @property
    def encoding(self) -> Optional[str]:
        """Union[str, None]: the charset :attr:`text` decodes with: the one the
        Content-Type names, else ``ISO-8859-1`` for ``text/*`` and ``utf-8`` for JSON, as
        requests picks it; may be set, as in requests."""
        if self._charset is not _CHARSET_FROM_HEADERS:
            return self._charset
        content_type = _content_type(self.headers.get('Content-Type', ''))
        charset = _charset_param(content_type)
        if charset:
            return charset
        if content_type.get_content_maintype() == 'text':
            return 'ISO-8859-1'
        if content_type.get_content_subtype().endswith('json'):
            return 'utf-8'
        return None

    @encoding.setter
    def encoding(self, value: Optional[str]) -> None:
        self._charset = value

    @property
    def cookies(self) -> 'CookieJar':
        """CookieJar: the cookies this answer sets."""
        jar = CookieJar()
        if getattr(self.raw, 'sets_cookies', False):
            jar.extract_cookies(self.raw, _cookie_request(self.request.url))
        return jar

    @property
    def links(self) -> Dict[str, Dict[str, str]]:
        """Dict[str, Dict[str, str]]: the ``Link`` field parsed, keyed by ``rel`` (or by
        URL), e.g. ``{'next': {'url': '...', 'rel': 'next'}}``."""
        links = {}
        for link in _parse_link_field(self.headers.get('Link', '')):
            links[link.get('rel') or link['url']] = link
        return links

    @property
    def content(self) -> bytes:
        """bytes: the whole body (read once, then kept)."""
        if self._error is not None:
            raise self._error
        if self._content is None:
            try:
                self._content = self._read_body()
            except Exception as error:
                raise self._failed(error) from error
            self._finish(reusable=True)
        return self._content

    def _read_body(self) -> bytes:
        """The whole body, decoded, refused past :attr:`max_body_size`; one read from
        the connection's buffer when it is sent as it is and its size is known."""
        raw = self.raw
        size, limit = raw.length, self.max_body_size
        if self._coding is not None:
            pieces = functools.partial(self._read1_decoded, _COLLECTED_PIECE)
            return _joined_within(iter(pieces, b''), limit, self.url)
        if raw.chunked or size is None or raw.fp is None:  # (read fills across chunks)
            pieces = functools.partial(raw.read, _DECODER_READ_SIZE)
            return _joined_within(iter(pieces, b''), limit, self.url)
        if limit is not None and size > limit:
            raise _body_too_large(self.url, limit, f'it announces a body of {size} bytes')
        data = raw.fp.read(size)
        if len(data) < size:
            raise http.client.IncompleteRead(data, size - len(data))
        raw.length = 0
        return data

    @property
    def text(self) -> str:
        """str: the body decoded with :attr:`encoding` (UTF-8 if it is ``None``)."""
        return self.content.decode(self.encoding or 'utf-8', errors='replace')

    def json(self, **kwargs: Any) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.content, **kwargs)

    def read1(self, size: int) -> bytes:
        """Return up to ``size`` bytes of the body as soon as any are available.

        Returns ``b''`` at the end of the body.  Errors of the connection (reset, timeout,
        truncation) raise :class:`TransportError` or :class:`Timeout`.
        """
        if self._error is not None:
            raise self._error
        if self._content is not None:
            raise RuntimeError('the body was already read into Response.content')
        try:
            if self._coding is None:
                data = self._read1_as_sent(size)
            else:
                data = self._read1_decoded(size)
        except Exception as error:
            raise self._failed(error) from error
        if not data:
            self._finish(reusable=True)
        return data

    def _read1_as_sent(self, size: int) -> bytes:
        data = self.raw.read1(size)
        if not data and size > 0 and self.raw.length:
            raise http.client.IncompleteRead(b'', self.raw.length)
        return data

    def _read1_decoded(self, size: int) -> bytes:
        """Up to ``size`` bytes of the decompressed body (``b''`` at its end)."""
        if self._decoder is None:
            self._decoder = _BodyDecoder(str(self._coding), self.url, self.max_decoding_ratio)
        decoder = self._decoder
        while True:
            data = decoder.take(size)
            if data or size <= 0:
                return data
            received = self._read1_as_sent(max(size, _DECODER_READ_SIZE))
            if not received:
                decoder.finish()
                return b''
            decoder.feed(received)

    def readinto1(self, view: memoryview) -> int:
        """Read what is available (at most ``len(view)`` bytes) into ``view``.

        Returns the number of bytes read, 0 at the end of the body.  Plain (not chunked)
        bodies go from the socket buffer straight into ``view``.
        """
        raw = self.raw
        if (
            raw.chunked
            or raw.fp is None
            or self._content is not None
            or self._error is not None
            or self._coding is not None
        ):
            return _readinto_from_read1(self.read1)(view)
        if raw.length is not None:
            view = view[: raw.length]
        try:
            count = raw.fp.readinto1(view) if len(view) else 0
        except Exception as error:
            raise self._failed(error) from error
        if raw.length is not None:
            raw.length -= count
            if count == 0 and raw.length:
                raise self._failed(http.client.IncompleteRead(b'', raw.length))
        if count == 0:
            self._finish(reusable=True)
        return count

    def iter_content(
        self, chunk_size: int = 1 << 16, decode_unicode: bool = False
    ) -> Iterator[bytes]:
        """Yield the body in pieces of at most ``chunk_size`` bytes as they arrive."""
        if self._content is not None:
            for start in range(0, len(self._content), chunk_size):
                yield self._content[start : start + chunk_size]
            return
        try:
            while True:
                data = self.read1(chunk_size)
                if not data:
                    return
                yield data
        finally:
            self.close()

    def iter_lines(
        self, chunk_size: int = 512, decode_unicode: bool = False, delimiter: Optional[bytes] = None
    ) -> Iterator[Any]:
        """Yield the body line by line as it arrives (without the line breaks), as
        ``str`` when ``decode_unicode`` is true; ``delimiter`` replaces line breaks."""
        rest = b''
        for chunk in self.iter_content(chunk_size):
            rest += chunk
            lines = rest.split(delimiter) if delimiter else rest.splitlines(keepends=True)
            rest = lines.pop() if lines else b''
            if not delimiter and rest.endswith(b'\n'):  # a complete line: no more to wait for
                lines.append(rest)
                rest = b''
            yield from (self._line(line, delimiter, decode_unicode) for line in lines)
        if rest:
            yield self._line(rest, delimiter, decode_unicode)

    def _line(self, line: bytes, delimiter: Optional[bytes], decode: bool) -> Any:
        if not delimiter:
            line = line.rstrip(b'\r\n')
        return line.decode(self.encoding or 'utf-8', errors='replace') if decode else line

    def raise_for_status(self) -> None:
        """Raise :class:`HTTPError` if the status code is 400 or above."""
        if self.status_code >= 400:
            raise _compatible(HTTPError)(
                self.status_code, self.request.method, self.url, _server_message(self), self
            )

    def close(self) -> None:
        """Give the connection back to the pool, or close it if the body is unread."""
        if not self._released:
            self._finish(reusable=self.raw.isclosed() or self.raw.length == 0)

    def _failed(self, error: BaseException) -> RequestException:
        """Remember a failed read (later reads raise it again) and drop the connection."""
        self._error = _transport_error(error, self.url, bool(getattr(self.raw, 'chunked', 0)))
        self._finish(reusable=False)
        return self._error

    def _finish(self, reusable: bool) -> None:
        if self._released:
            return
        self._released = True
        will_close = self.raw.will_close
        self.raw.close()  # marks the exchange done so the connection can send again
        self._release(reusable and not will_close)


# -- Wire format: request heads, chunked request bodies, answer heads -------------------

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token
_BAD_METHOD = re.compile(r'[\x00-\x20\x7f]')
_BAD_TARGET = re.compile(r'[\x00-\x20\x7f]')
_BODY_METHODS = frozenset({'POST', 'PUT', 'PATCH'})


def _header_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode('latin-1')
    return str(value)


def _check_header_name(name: str) -> bool:
    """Check a field name once; valid names are remembered (see :class:`_TransportMemo`)."""
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise ValueError(f'invalid header field name {name!r}')
    if len(_MEMO.header_names) < _HEADER_NAMES_KEPT:
        _MEMO.header_names.add(name)
    return True


def _check_header_fields(pairs: Sequence[Tuple[str, Any]]) -> None:
    """Raise :class:`ValueError` naming the field that breaks the framing of the head."""
    for name, value in pairs:
        _check_header_name(name)
        text = _header_text(value)
        if '\r' in text or '\n' in text:
            raise ValueError(f'invalid value for header field {name!r}: {text!r}')
    raise ValueError('a line break in the Host field or the request line')


def _new_request_head(
    method: str, target: str, host: str, pairs: List[Tuple[str, Any]], has_body: bool
) -> bytes:
    if _BAD_METHOD.search(method):
        raise ValueError(f'invalid HTTP method {method!r}')
    if _BAD_TARGET.search(target) or not target.isascii():
        raise ValueError(f'invalid characters in the request target {target!r}')
    lines = [f'{method} {target} HTTP/1.1']
    present = {name.lower() for name, _ in pairs}
    if 'host' not in present:
        lines.append(f'Host: {host}')
    if 'accept-encoding' not in present:
        lines.append('Accept-Encoding: identity')  # bodies are not decompressed
    if not has_body and method in _BODY_METHODS and 'content-length' not in present:
        lines.append('Content-Length: 0')
    lines.extend(f'{name}: {_header_text(value)}' for name, value in pairs)
    block = '\r\n'.join(lines)
    # each line break is one of the separators just inserted, unless a field has its own
    if (
        block.count('\n') != len(lines) - 1
        or block.count('\r') != len(lines) - 1
        or not all(name in _MEMO.header_names or _check_header_name(name) for name, _ in pairs)
    ):
        _check_header_fields(pairs)
    return (block + '\r\n\r\n').encode('latin-1')


def _request_head(
    method: str,
    url: str,
    origin: _Origin,
    headers: Mapping[str, Any],
    has_body: bool,
    sent: Dict[Any, bytes],
) -> bytes:
    """The request line and header block of an HTTP/1.1 request to ``url`` sent to
    ``origin``, checked and encoded.

    Raises :class:`ValueError` before anything is sent when a field would break the
    framing (a line break in a value, a bad name, spaces in the target).  A client sends
    the same few heads again and again: heads whose field values are all text are kept in
    ``sent`` (only text, so that a lookup never mistakes ``1`` for ``True``).
    """
    pairs = headers.pairs() if type(headers) is CaseInsensitiveDict else list(headers.items())
    key = (method, url, origin, has_body, *pairs)
    try:
        return sent[key]
    except (KeyError, TypeError):  # not seen yet, or a value that cannot be a key
        pass
    if origin.proxy and origin.scheme == 'http':
        target = _redact(url)  # a plain HTTP proxy wants the absolute URI
    else:
        target = _request_target(url)
    head = _new_request_head(method, target, origin.host_header, pairs, has_body)
    if all(type(value) is str for _, value in pairs):
        _remember(sent, key, head)
    return head


def _as_bytes(chunk: Any) -> Any:
    """A body chunk as something a socket can send (text is encoded as UTF-8)."""
    return chunk.encode('utf-8') if isinstance(chunk, str) else chunk


def _chunk_framed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Chunked transfer coding as separate pieces, so big chunks are never copied."""
    for chunk in chunks:
        if chunk:
            yield b'%X\r\n' % len(chunk)
            yield chunk
            yield b'\r\n'
    yield b'0\r\n\r\n'


def _framed_payload(body: _Body, headers: Mapping[str, Any]) -> Tuple[Any, Dict[str, str]]:
    """What to send for a request body, and the framing fields it needs: its
    Content-Length when known, else chunked transfer coding."""
    payload = body.payload()
    if body.length is not None:
        if 'Content-Length' in headers:
            return payload, {}
        return payload, {'Content-Length': str(body.length)}
    if isinstance(payload, (bytes, bytearray)):
        return payload, {}
    return _chunk_framed(map(_as_bytes, payload)), {'Transfer-Encoding': 'chunked'}


_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100
_MAX_INTERIM_ANSWERS = 100


def _is_interim(status: int) -> bool:
    """Whether ``status`` is an interim answer that a final one follows: every 1xx but
    101 Switching Protocols (the server then speaks another protocol; nothing follows)."""
    return 100 <= status < 200 and status != 101


def _content_length(values: List[str]) -> Optional[int]:
    """The Content-Length of an answer from its field values, ``None`` if there are none;
    raises if they are malformed or disagree."""
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].strip().isdigit():
        raise http.client.HTTPException(f'malformed Content-Length: {values!r}')
    return int(values[0])


class _Head(NamedTuple):
    """What the head of an answer says: status line, fields as received, framing."""

    version: int
    status: int
    reason: str
    fields: Tuple[Tuple[str, str], ...]
    chunked: bool
    close: bool  #: ``Connection: close`` was sent
    length: Optional[int]  #: the Content-Length, ``None`` if none (or chunked)
    encoding: Optional[str] = None  #: the Content-Encoding, ``None`` if none or identity
    sets_cookies: bool = False  #: a ``Set-Cookie`` field is among the fields


def _head(version: int, status: int, reason: str, fields: Sequence[Tuple[str, str]]) -> _Head:
    """The head from its status line and fields (raises on a malformed Content-Length)."""
    coding = connection = None
    lengths: List[str] = []
    encodings: List[str] = []
    sets_cookies = False
    for name, value in fields:
        key = name.lower()
        if key == 'content-length':
            lengths.append(value)
        elif key == 'transfer-encoding' and coding is None:
            coding = value
        elif key == 'connection' and connection is None:
            connection = value
        elif key == 'content-encoding':
            encodings.extend(item.strip() for item in value.split(','))
        elif key == 'set-cookie':
            sets_cookies = True
    chunked = (coding or '').lower() == 'chunked'
    encoding = ', '.join(item for item in encodings if item and item.lower() != 'identity') or None
    return _Head(
        version,
        status,
        reason,
        tuple(fields),
        chunked,
        'close' in (connection or '').lower(),
        None if chunked else _content_length(lengths),
        encoding,
        sets_cookies,
    )


def _plain_head(block: bytes) -> Optional[_Head]:
    """The head in ``block`` (status line and field lines, CRLF between them) if it is an
    HTTP/1.1 final answer with plain field lines; else ``None``."""
    if (
        block[:9] != b'HTTP/1.1 '
        or not block[9:12].isdigit()
        or block[9:10] == b'1'
        or block[12:13] not in (b' ', b'\r', b'')
    ):
        return None
    text = block.decode('iso-8859-1')
    lines = text.split('\r\n')
    if (
        text.count('\n') != len(lines) - 1
        or text.count('\r') != len(lines) - 1
        or len(lines) > _MAX_HEADERS
    ):
        return None
    fields = []
    for line in itertools.islice(lines, 1, None):
        name, colon, value = line.partition(':')
        if not colon or line[0] in ' \t:':  # no name, or folded: the general reader
            return None
        fields.append((name.strip(), value.strip()))
    return _head(11, int(text[9:12]), lines[0][13:], fields)


def _buffered_head(reader: Any, read: Dict[bytes, _Head]) -> Optional[Tuple[_Head, int]]:
    """The head of an HTTP/1.1 answer that the reader already holds whole, when it is
    plain (no folded or odd lines, not an interim 1xx answer), consumed, and how many
    bytes the reader still holds; else ``None``, nothing is consumed, and the line-by-line
    reader takes over.

    A server sends the same few heads again and again (only ``Date`` changes, once a
    second), so heads are kept in ``read`` by their bytes.
    """
    buffered = reader.peek(1)
    end = buffered.find(b'\r\n\r\n')
    if end < 0:
        return None
    block = buffered[:end]
    head = read.get(block)
    if head is None:
        head = _plain_head(block)
        if head is None:
            return None
        _remember(read, block, head)
    reader.read(end + 4)
    return head, len(buffered) - end - 4


class _HTTPResponse(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` with a lean reader of the status line and headers.

    The standard one feeds the header block through the email package's general parser,
    which costs more than the rest of a small request on loopback.  The framing rules
    (chunked, Content-Length, connection close) are applied here the same way.  It reads
    through the reader of its :class:`_Connection`, which stays open when the answer ends.
    """

    #: bytes the reader held past the end of this answer's body when its head was read,
    #: if known: 0 means that nothing beyond the answer had arrived by then
    spare: Optional[int] = None
    #: the Content-Encoding of the body (``gzip``, say), ``None`` if none or identity
    content_encoding: Optional[str] = None
    #: whether the answer sets cookies
    sets_cookies = False

    def __init__(self, connection: '_Connection', method: str) -> None:
        super().__init__(connection, method=method)  # type: ignore[arg-type]
        self.heads_read = connection.heads_read

    def flush(self) -> None:
        """Nothing to flush: an answer is only read.  (The standard method flushes the
        connection's reader, which raises once the connection has closed it.)"""

    @property
    def closed(self) -> bool:  # type: ignore[override]
        """bool: whether the answer was read to its end or closed."""
        return self.fp is None

    def close(self) -> None:
        """Let go of the reader, which belongs to the connection (it may carry more
        requests, or is closed by its owner)."""
        self.fp = None  # type: ignore[assignment]

    _close_conn = close

    def release_conn(self) -> None:
        """Nothing to do (requests' auth hooks call it): the connection goes back to the
        pool when the body has been read or the :class:`Response` is closed."""

    def begin(self) -> None:
        if self.headers is not None:
            return
        found = _buffered_head(self.fp, self.heads_read)
        if found is not None:  # the usual case: all of it arrived with the first read
            head, buffered = found
        else:
            head, buffered = self._read_head(), None
        status = head.status
        self.version, self.status, self.code, self.reason = (
            head.version,
            status,
            status,
            head.reason,
        )
        self.headers = self.msg = headers = http.client.HTTPMessage()
        for name, value in head.fields:
            headers.set_raw(name, value)  # as received, like the email parser keeps them
        self.chunked, self.chunk_left, self.length = head.chunked, None, head.length
        self.content_encoding, self.sets_cookies = head.encoding, head.sets_cookies
        self.will_close = head.close if head.version == 11 else self._check_close()
        if status in (204, 304) or 100 <= status < 200 or self._method == 'HEAD':
            self.length = 0
        if status == 101 or (not self.will_close and not self.chunked and self.length is None):
            self.will_close = True  # (after 101 the connection no longer speaks HTTP)
        if buffered is not None and self.length is not None:
            self.spare = buffered - self.length

    def _read_head(self) -> '_Head':
        """Read the head line by line (it did not arrive whole, or is not plain)."""
        version, status, reason = self._read_status_line()
        for _ in range(_MAX_INTERIM_ANSWERS):
            if not _is_interim(status):
                return _head(version, status, reason, self._read_header_lines())
            self._read_header_lines()  # 100 Continue, 102 Processing, 103 Early Hints
            version, status, reason = self._read_status_line()
        raise http.client.HTTPException(
            f'more than {_MAX_INTERIM_ANSWERS} interim (1xx) answers before the final one'
        )

    def _read_status_line(self) -> Tuple[int, int, str]:
        line = self.fp.readline(_MAX_HEADER_LINE + 1)
        if (
            line[:9] == b'HTTP/1.1 '
            and line[9:12].isdigit()
            and line[12:13] in b' \r\n'
            and len(line) <= _MAX_HEADER_LINE
        ):  # the usual case, quickly
            return 11, int(line[9:12]), line[13:].rstrip(b'\r\n').decode('iso-8859-1')
        if not line:
            raise http.client.RemoteDisconnected(
                'the server closed the connection without answering'
            )
        if len(line) > _MAX_HEADER_LINE:
            raise http.client.LineTooLong('status line')
        parts = line.decode('iso-8859-1').rstrip('\r\n').split(None, 2)
        if (
            len(parts) < 2
            or not parts[0].startswith('HTTP/')
            or not parts[1].isdigit()
            or len(parts[1]) != 3
        ):
            raise http.client.BadStatusLine(line.decode('iso-8859-1', 'replace'))
        version = 10 if parts[0] == 'HTTP/1.0' else 11
        return version, int(parts[1]), parts[2] if len(parts) == 3 else ''

    def _read_header_lines(self) -> List[Tuple[str, str]]:
        fields: List[Tuple[str, str]] = []
        readline = self.fp.readline
        name: Optional[str] = None
        value = ''  # read only once a field name has been seen
        for _ in range(_MAX_HEADERS):
            line = readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                raise http.client.LineTooLong('header line')
            if line in (b'\r\n', b'\n', b''):
                break
            text = line.decode('iso-8859-1').rstrip('\r\n')
            if text[:1] in (' ', '\t') and name is not None:  # folded continuation
                value = f'{value} {text.strip()}'
                continue
            if name is not None:
                fields.append((name, value))
            name, _, value = text.partition(':')
            name, value = name.strip(), value.strip()
        else:
            raise http.client.HTTPException(f'more than {_MAX_HEADERS} header fields')
        if name is not None:
            fields.append((name, value))
        return fields


# -- Connection and pool ----------------------------------------------------------------

_COALESCE_LIMIT = 1 << 16  # bodies up to this size go out in one write with the head


#: errors of a send that the server cut short (it may have answered first)
_SEND_CUT_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError)
_STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.BadStatusLine,
)


#: name resolution answers that say the host does not exist (retrying cannot help)
_UNKNOWN_HOST_ERRORS = frozenset(
    getattr(socket, name) for name in ('EAI_NONAME', 'EAI_NODATA') if hasattr(socket, name)
)


def _connect_failure(error: OSError, where: str, host: str) -> TransportError:
    """The error that reports a connection to ``where`` that could not be opened.

    Parameters
    ----------
    error: OSError
        What opening the connection raised.
    where: str
        The server (and proxy) as shown to the user, e.g. ``http://host:80``.
    host: str
        The host name that was looked up (the proxy's, when there is one).

    Returns
    -------
    TransportError
        A ``ConnectFailedError`` (also a ``requests.ConnectionError`` when requests is
        installed) whose message names ``where`` and the cause.

    """
    if not isinstance(error, socket.gaierror):
        return _compatible(ConnectFailedError)(f'cannot connect to {where}: {error}')
    failure = _compatible(ConnectFailedError)(
        f'cannot connect to {where}: the host name {host!r} cannot be resolved '
        f'({error.strerror or error})'
    )
    failure.retriable = error.errno not in _UNKNOWN_HOST_ERRORS
    return failure


def _split_timeout(timeout: Any) -> Tuple[Optional[float], Optional[float]]:
    """(connect, read) timeouts from a number, a pair or ``None``."""
    if isinstance(timeout, (tuple, list)):
        connect, read = timeout
        return connect, read
    return timeout, timeout


@dataclass(frozen=True)
class _Origin:
    """Where a connection goes: the server, and the proxy in between if any."""

    scheme: str
    host: str
    port: int
    proxy: Optional[str] = None
    tls: Optional[Tuple[Any, Any]] = None

    def __post_init__(self) -> None:
        # looked up in the pool twice per request: hash the fields once (_TransportMemo)
        object.__setattr__(
            self, '_hash', hash((self.scheme, self.host, self.port, self.proxy, self.tls))
        )

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined,no-any-return]

    @functools.cached_property
    def host_header(self) -> str:
        """str: the ``Host`` field of requests to this server (port only if not default)."""
        host = f'[{self.host}]' if ':' in self.host else self.host
        if not host.isascii():
            host = host.encode('idna').decode('ascii')
        default = 443 if self.scheme == 'https' else 80
        return host if self.port == default else f'{host}:{self.port}'


class _SocketIO(socket.SocketIO):
    """The raw stream under a connection's reader; it can pretend to have nothing yet.

    That lets the connection ask its buffered reader whether bytes are left over after an
    answer (``peek`` then returns only what is buffered) without a system call.
    """

    probing = False

    def readinto(self, b: Any) -> Optional[int]:
        if self.probing:
            return None  # 'would block': the reader keeps what it has and asks no more
        return super().readinto(b)


class _Connection:
    """One keep-alive connection to a server.

    http.client opens it (TCP, TLS, proxy tunnel); requests are then written straight to
    the socket, and answers are read through one buffered reader that lives as long as
    the connection, instead of a new one per answer.  On a small request both savings
    together are about a third of the client's time.
    """

    __slots__ = ('_opener', 'sock', '_raw', '_reader', '_timeout', '_poller', 'heads_read')

    def __init__(
        self, opener: http.client.HTTPConnection, heads_read: Dict[bytes, '_Head']
    ) -> None:
        self._opener = opener
        self.heads_read = heads_read  # the session's memo of answer heads
        self.sock = opener.sock
        self._timeout: Any = opener.timeout
        self._raw = _SocketIO(self.sock, 'rb')
        self._reader = io.BufferedReader(self._raw)
        self._poller: Any = None

    def makefile(self, mode: str = 'rb') -> Any:
        """The connection's reader (what :class:`http.client.HTTPResponse` asks for)."""
        return self._reader

    def set_timeout(self, timeout: Optional[float]) -> None:
        """Set the socket's timeout (a system call, so only when it changes)."""
        if timeout != self._timeout:
            self.sock.settimeout(timeout)
            self._timeout = timeout

    def send_request(self, head: bytes, payload: Any) -> None:
        """Write a request: its head, then the body (bytes or an iterable of chunks)."""
        sendall = self.sock.sendall
        if payload is None:
            sendall(head)
        elif isinstance(payload, (bytes, bytearray, memoryview)):
            if len(payload) <= _COALESCE_LIMIT:
                sendall(head + bytes(payload))
            else:
                sendall(head)
                sendall(payload)
        else:
            sendall(head)
            for chunk in payload:
                if chunk:
                    sendall(_as_bytes(chunk))

    def is_dropped(self) -> bool:
        """Whether the idle connection was closed by the server (or sent something
        unasked): its socket is readable."""
        sock = self.sock
        if sock is None:
            return True
        try:
            if self._poller is None:
                self._poller = select.poll()
                self._poller.register(sock, select.POLLIN)
            return bool(self._poller.poll(0))
        except (AttributeError, OSError, ValueError):  # no poll() on this platform
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable)

    def has_leftover(self) -> bool:
        """Whether bytes beyond the last answer were already read (the connection is then
        out of step with the server and must not carry another request)."""
        if self.sock is None or self._reader.closed:
            return True
        self._raw.probing = True
        try:
            return bool(self._reader.peek(1))
        finally:
            self._raw.probing = False

    def close(self) -> None:
        """Close the reader and the socket."""
        self._reader.close()
        self._opener.close()
        self.sock = None


class _ConnectionPool:
    """Idle keep-alive connections per origin, most recently used first; thread safe.

    Without a lock: ``dict.setdefault``, ``deque.append`` and ``deque.pop`` are atomic,
    so a connection is handed to one thread only; threads putting back at the same time
    may keep a few more than ``maxsize`` for a while.
    """

    def __init__(self, maxsize: int = 10) -> None:
        self.maxsize = maxsize
        self._idle: Dict[_Origin, Deque[_Connection]] = {}

    def get(self, origin: _Origin) -> Optional[_Connection]:
        """Return an idle connection that is still open, or ``None``."""
        idle = self._idle.get(origin)
        while idle:
            try:
                connection = idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if not connection.is_dropped():
                return connection
            connection.close()
        return None

    def put(self, origin: _Origin, connection: _Connection) -> None:
        """Keep ``connection`` for reuse (or close it when the pool is full)."""
        idle = self._idle.get(origin)
        if idle is None:
            idle = self._idle.setdefault(origin, collections.deque())
        if len(idle) < self.maxsize:
            idle.append(connection)
        else:
            connection.close()

    def clear(self) -> None:
        """Close every idle connection."""
        for idle in list(self._idle.values()):
            while idle:
                try:
                    idle.pop().close()
                except IndexError:
                    break


# -- Auth and environment: credential scope, netrc, proxies, certificates, digest -------

#: session header fields that are not credentials: they say who the client is and what
#: it can read, and go to every origin; every other session field (Authorization,
#: Cookie, X-Api-Key, ...) goes only to the origins trusted with the credentials
_UNSCOPED_HEADERS = frozenset(
    {
        'user-agent',
        'accept',
        'accept-charset',
        'accept-encoding',
        'accept-language',
        'cache-control',
        'connection',
        'pragma',
    }
)


_AUTHORITY_END = re.compile(r'[/?#]')


def _origin_of_authority(scheme: str, authority: str) -> Tuple[str, str, int]:
    """The origin of ``scheme://authority`` (see :func:`_origin_of`, which remembers it)."""
    parts = urllib.parse.urlsplit(f'{scheme}://{authority}')
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ValueError(
            f'{scheme}://{authority!r} is not an http(s) URL such as https://host:port'
        )
    return parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == 'https' else 80)


def _origin_of(url: str) -> Tuple[str, str, int]:
    """The origin of an absolute http(s) URL: scheme, host and port, as compared when
    deciding where credentials may go.

    Parameters
    ----------
    url: str
        An absolute URL (only its scheme and authority are read).

    Returns
    -------
    Tuple[str, str, int]
        Scheme and host in lower case, and the port (80 or 443 when none is given).

    Raises
    ------
    ValueError
        If ``url`` is not an absolute http(s) URL.

    """
    scheme, separator, rest = url.partition('://')
    if not separator:
        raise ValueError(f'{url!r} is not an http(s) URL such as https://host:port')
    key = (scheme, _AUTHORITY_END.split(rest, 1)[0])
    origin = _MEMO.authority_origins.get(key)
    if origin is None:
        origin = _origin_of_authority(*key)
        _remember(_MEMO.authority_origins, key, origin)
    return origin


def _trusted(url: str, credential_origin: Optional[str], also: Iterable[str]) -> bool:
    """Whether the credentials meant for ``credential_origin`` may go to ``url``.

    Parameters
    ----------
    url: str
        Where the request goes.
    credential_origin: Union[str, None]
        A URL of the server the credentials are for; ``None`` trusts every URL.
    also: Iterable[str]
        More origins trusted with them (URLs); ``'*'`` among them trusts every URL.

    Returns
    -------
    bool
        ``True`` if ``url`` has the origin of ``credential_origin`` or of one in ``also``.

    """
    if credential_origin is None:
        return True
    if url.startswith(credential_origin) and url[
        len(credential_origin) : len(credential_origin) + 1
    ] in ('', '/', '?', '#'):
        return True  # the client's own URLs: the quick answer
    origin = _origin_of(url)
    if origin == _origin_of(credential_origin):
        return True
    return any(item == '*' or _origin_of(item) == origin for item in also)


def _scoped_header_names(headers: Mapping[str, Any]) -> Tuple[str, ...]:
    """Names of the fields of ``headers`` that only trusted origins receive."""
    return tuple(name for name in headers if name.lower() not in _UNSCOPED_HEADERS)


def _read_netrc() -> Dict[str, Tuple[str, str]]:
    """(login, password) by host from the user's netrc file; empty if there is none or it
    cannot be read."""
    path = os.environ.get('NETRC')
    if not path:
        home = os.path.expanduser('~')
        path = next(
            (
                os.path.join(home, name)
                for name in ('.netrc', '_netrc')
                if os.path.isfile(os.path.join(home, name))
            ),
            None,
        )
    if not path or not os.path.isfile(path):
        return {}
    try:
        hosts = netrc.netrc(path).hosts
    except (OSError, netrc.NetrcParseError, UnicodeDecodeError):
        return {}
    return {host: (login or '', password or '') for host, (login, _, password) in hosts.items()}


def _basic_auth_value(username: str, password: str) -> str:
    """The Basic credentials field: Latin-1, as requests and most servers expect, and
    UTF-8 (RFC 7617) for names and passwords Latin-1 cannot hold."""
    text = f'{username}:{password}'
    try:
        raw = text.encode('latin-1')
    except UnicodeEncodeError:
        raw = text.encode('utf-8')
    return f'Basic {base64.b64encode(raw).decode("ascii")}'


class BasicAuth:
    """Auth callable for HTTP basic authentication."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers['Authorization'] = _basic_auth_value(self.username, self.password)
        return request

    def __repr__(self) -> str:
        return f'BasicAuth({self.username!r}, ***)'


class BearerAuth:
    """Auth callable that sends an OAuth 2 bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers['Authorization'] = f'Bearer {self.token}'
        return request

    def __repr__(self) -> str:
        return 'BearerAuth(***)'


def _merged_proxies(
    session_proxies: Optional[Dict[str, str]], proxies: Optional[Dict[str, str]]
) -> Tuple[Tuple[str, str], ...]:
    """The proxies of a request (the session's, then the request's) as a sorted tuple."""
    if not session_proxies and not proxies:
        return ()
    return tuple(sorted({**(session_proxies or {}), **(proxies or {})}.items()))


def _proxy_auth_headers(proxy_url: str) -> Dict[str, str]:
    """``Proxy-Authorization`` from credentials in a proxy URL (none without them)."""
    user, password = _credentials_in_url(proxy_url)
    if user is None:
        return {}
    return {'Proxy-Authorization': _basic_auth_value(user, password or '')}


def _tls_settings(verify: Any, cert: Any) -> Tuple[Any, Any]:
    """(verify, cert) in a hashable form with paths as strings."""
    if cert is None and isinstance(verify, bool):
        return verify, cert
    if isinstance(verify, os.PathLike):
        verify = os.fspath(verify)
    if isinstance(cert, (list, tuple)):
        cert = tuple(os.fspath(item) for item in cert)
    elif isinstance(cert, os.PathLike):
        cert = os.fspath(cert)
    return verify, cert


def _existing_ca_bundle(verify: Any, source: str = 'the CA bundle') -> Any:
    """``verify`` unchanged, after checking that a path in it exists."""
    if isinstance(verify, (str, os.PathLike)) and not os.path.exists(verify):
        raise FileNotFoundError(errno.ENOENT, f'{source} does not exist', os.fspath(verify))
    return verify


def _make_ssl_context(verify: Union[bool, str], cert: Any) -> ssl.SSLContext:
    """A TLS context that verifies with the system CAs or ``verify`` (a CA path)."""
    if isinstance(verify, str):
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    if cert:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        context.load_cert_chain(certfile, keyfile)
    return context


def _sha512_256(data: bytes = b'') -> Any:
    return hashlib.new('sha512_256', data)


#: hash functions of the digest algorithms (RFC 7616, and ``SHA``/``SHA-512`` as
#: requests knows them); a ``-sess`` suffix selects the session variant of each
_DIGEST_HASHES: Dict[str, Callable[..., Any]] = {
    'MD5': hashlib.md5,
    'SHA': hashlib.sha1,
    'SHA-256': hashlib.sha256,
    'SHA-512': hashlib.sha512,
}
if 'sha512_256' in hashlib.algorithms_available:
    _DIGEST_HASHES['SHA-512-256'] = _sha512_256
_AUTH_SCHEME = re.compile(r"[\s,]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?=[\s,]|$)")
_AUTH_PARAM = re.compile(
    r"""[\s,]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*"""
    r'''("(?:[^"\\]|\\.)*"|[^\s,]*)'''
)


def _digest_base_algorithm(algorithm: Optional[str]) -> str:
    """The algorithm name without its ``-sess`` suffix, upper case (MD5 if none)."""
    name = (algorithm or 'MD5').upper()
    return name[:-5] if name.endswith('-SESS') else name


class _DigestChallenge(NamedTuple):
    """The parts of a ``Digest`` challenge that an answer needs."""

    realm: str
    nonce: str
    algorithm: Optional[str]  #: as the server named it; ``None`` if it named none (MD5)
    qop: Optional[str]  #: ``'auth'``, or ``None`` for an RFC 2069 server
    opaque: Optional[str]
    stale: bool
    userhash: bool

    @property
    def hash(self) -> Callable[..., Any]:
        """The hash function of the algorithm."""
        return _DIGEST_HASHES[_digest_base_algorithm(self.algorithm)]

    @property
    def per_session(self) -> bool:
        """bool: whether the algorithm is a ``-sess`` variant."""
        return (self.algorithm or '').upper().endswith('-SESS')


def _auth_challenges(field: str) -> List[Tuple[str, Dict[str, str]]]:
    """The challenges of one ``WWW-Authenticate`` field: (scheme, parameters) each,
    parameter names in lower case and quoted values unquoted."""
    challenges: List[Tuple[str, Dict[str, str]]] = []
    position = 0
    while position < len(field):
        param = _AUTH_PARAM.match(field, position) if challenges else None
        if param is not None:
            value = param.group(2)
            if value.startswith('"'):
                value = re.sub(r'\\(.)', r'\1', value[1:-1])
            challenges[-1][1][param.group(1).lower()] = value
            position = param.end()
            continue
        scheme = _AUTH_SCHEME.match(field, position)
        if scheme is None:
            break
        challenges.append((scheme.group(1), {}))
        position = scheme.end()
    return challenges


def _usable_challenge(params: Dict[str, str]) -> Optional[_DigestChallenge]:
    """The challenge, if it has a nonce, a known algorithm and offers ``qop=auth`` (or
    no quality of protection at all)."""
    algorithm = params.get('algorithm') or None
    if 'nonce' not in params or _digest_base_algorithm(algorithm) not in _DIGEST_HASHES:
        return None
    qop: Optional[str] = None
    if 'qop' in params:
        if 'auth' not in {item.strip().lower() for item in params['qop'].split(',')}:
            return None  # auth-int only: the body would have to be hashed
        qop = 'auth'
    return _DigestChallenge(
        params.get('realm', ''),
        params['nonce'],
        algorithm,
        qop,
        params.get('opaque'),
        params.get('stale', '').lower() == 'true',
        params.get('userhash', '').lower() == 'true',
    )


def _digest_challenge(response: 'Response') -> Optional[_DigestChallenge]:
    """The first ``Digest`` challenge of a 401 answer that this module can answer."""
    get_all = getattr(response.headers, 'get_all', None)
    fields = (
        (get_all('WWW-Authenticate') or [])
        if get_all
        else [response.headers.get('WWW-Authenticate', '')]
    )
    for field in fields:
        for scheme, params in _auth_challenges(field):
            if scheme.lower() == 'digest':
                challenge = _usable_challenge(params)
                if challenge is not None:
                    return challenge
    return None


def _quoted(value: str) -> str:
    """``value`` as an HTTP quoted string."""
    return '"' + value.replace('\\', '\\\\').replace('"', '\\"') + '"'


def _digest_authorization(
    challenge: _DigestChallenge, username: str, password: str, count: int, method: str, url: str
) -> str:
    """The ``Authorization`` field answering ``challenge`` for one request (RFC 7616;
    RFC 2069 when the server offers no quality of protection)."""

    def digest(text: str) -> str:
        return str(challenge.hash(text.encode('utf-8')).hexdigest())

    uri = _request_target(url)
    cnonce = os.urandom(16).hex()
    secret = digest(f'{username}:{challenge.realm}:{password}')
    if challenge.per_session:
        secret = digest(f'{secret}:{challenge.nonce}:{cnonce}')
    request_digest = digest(f'{method}:{uri}')
    if challenge.qop is None:
        answer = digest(f'{secret}:{challenge.nonce}:{request_digest}')
    else:
        answer = digest(
            f'{secret}:{challenge.nonce}:{count:08x}:{cnonce}:{challenge.qop}:{request_digest}'
        )
    name = digest(f'{username}:{challenge.realm}') if challenge.userhash else username
    fields = [
        f'username={_quoted(name)}',
        f'realm={_quoted(challenge.realm)}',
        f'nonce={_quoted(challenge.nonce)}',
        f'uri={_quoted(uri)}',
        f'response={_quoted(answer)}',
    ]
    if challenge.algorithm is not None:
        fields.append(f'algorithm={challenge.algorithm}')
    if challenge.opaque is not None:
        fields.append(f'opaque={_quoted(challenge.opaque)}')
    if challenge.qop is not None:
        fields.append(f'qop={challenge.qop}, nc={count:08x}, cnonce={_quoted(cnonce)}')
    if challenge.userhash:
        fields.append('userhash=true')
    return 'Digest ' + ', '.join(fields)


class HTTPDigestAuth:
    """Auth callable for HTTP digest authentication (RFC 7616, and RFC 2069 servers).

    The first request goes out without credentials; the server's 401 challenge is
    answered once and the request repeated (a body is sent again when it can be: bytes,
    text, a seekable file or a callable, but not a one-shot iterator, whose 401 is
    returned).  The nonce is then reused for the following requests, with a growing
    nonce count, so they need no second round trip until the server calls it stale.
    The algorithms ``MD5``, ``SHA-256``, ``SHA-512-256`` and their ``-sess`` variants
    (and ``SHA``, ``SHA-512``) are known, with ``qop=auth``.  An instance of
    ``requests.auth.HTTPDigestAuth`` given to a :class:`Session` is replaced by one of
    these with the same user name and password.

    Parameters
    ----------
    username: str
        User name.
    password: str
        Password.

    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._lock = threading.Lock()
        self._challenge: Optional[_DigestChallenge] = None
        self._count = 0

    def __getstate__(self) -> Dict[str, Any]:
        return {'username': self.username, 'password': self.password}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state['username'], state['password'])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f'HTTPDigestAuth({self.username!r}, ***)'

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Mark ``request`` as answerable by this auth; once a challenge is known, add
        its ``Authorization`` at once (with the next nonce count)."""
        request.authenticator = self
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return request
            self._count += 1
            count = self._count
        request.headers['Authorization'] = _digest_authorization(
            challenge, self.username, self.password, count, request.method, request.url
        )
        return request

    def respond(self, response: 'Response', answered: int) -> Optional[str]:
        """The ``Authorization`` that answers the challenge of a 401 ``response``, or
        ``None`` to give up: there is no usable digest challenge, or the request was
        answered already (twice, or once unless the server says the nonce was stale).

        Parameters
        ----------
        response: Response
            The 401 answer.
        answered: int
            How many challenges were answered for this request so far.

        Returns
        -------
        Union[str, None]
            The field value, or ``None``.

        """
        challenge = _digest_challenge(response)
        if challenge is None or answered >= 2 or (answered and not challenge.stale):
            return None
        with self._lock:
            if self._challenge is None or self._challenge.nonce != challenge.nonce:
                self._count = 0
            self._challenge = challenge
            self._count += 1
            count = self._count
        request = response.request
        return _digest_authorization(
            challenge, self.username, self.password, count, request.method, request.url
        )


def _is_requests_digest_auth(auth: Any) -> bool:
    """Whether ``auth`` is a ``requests.auth.HTTPDigestAuth`` (found without importing
    requests: by the names of its classes)."""
    return any(
        cls.__name__ == 'HTTPDigestAuth' and cls.__module__ == 'requests.auth'
        for cls in type(auth).__mro__
    )


def _native_auth(auth: Any) -> Any:
    """``auth``, or this module's twin of a requests auth that needs requests internals."""
    if auth is not None and _is_requests_digest_auth(auth):
        return HTTPDigestAuth(auth.username, auth.password)
    return auth


# -- Session ----------------------------------------------------------------------------

_USER_AGENT = f'dicomweb_client/{__version__} (python {sys.version.split()[0]})'
# methods repeated on a fresh connection when a pooled one dies before answering; a
# DELETE or STOW might have taken effect, so they are reported instead
_REPEATABLE_METHODS = frozenset({'GET', 'HEAD', 'OPTIONS'})
_CREDENTIAL_HEADERS = ('Authorization', 'Cookie', 'Proxy-Authorization')


class _SendOptions(NamedTuple):
    """How one request is sent: timeout, retries, TLS settings and proxies."""

    timeout: Any
    retry: 'RetryPolicy'
    tls: Tuple[Any, Any]
    proxies: Tuple[Tuple[str, str], ...]


def _drain(response: Response) -> None:
    """Read the rest of an answer that is dropped (its connection then serves again)."""
    try:
        response.content  # noqa: B018 - reads the body and frees the connection
    except RequestException:
        pass


class _HookConnection:
    """The ``connection`` of an answer while an auth's response hooks run: ``send``
    sends a prepared request through the session once more, as a requests adapter
    does (with retries, without following redirects)."""

    def __init__(self, session: 'Session', options: '_SendOptions') -> None:
        self._session = session
        self._options = options

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        """Send ``request``; of requests' keyword arguments only ``timeout`` is used."""
        options = self._options
        if kwargs.get('timeout') is not None:
            options = options._replace(timeout=kwargs['timeout'])
        response = self._session._send_with_retries(request, options)
        response.connection = self
        return response


#: what a pickled :class:`Session` leaves out: live connections, locks and caches
_SESSION_RUNTIME = frozenset(
    {
        '_pool',
        '_heads_sent',
        '_heads_read',
        '_ssl_contexts',
        '_origins',
        '_ssl_lock',
        '_netrc_hosts',
        '_digest_twins',
    }
)


class Session:
    """Sends HTTP requests over pooled keep-alive connections; plays ``requests.Session``.

    One session can be shared by threads and clients.  Its attributes apply to every
    request it sends.

    Attributes
    ----------
    headers: CaseInsensitiveDict
        Header fields sent with every request.
    auth: Union[Tuple[str, str], Callable, None]
        A (user, password) pair for basic authentication, or a callable that receives
        the :class:`PreparedRequest`, sets its headers and returns it (for example a
        ``requests.auth.AuthBase`` instance, or :class:`HTTPDigestAuth`).  A
        ``requests.auth.HTTPDigestAuth`` set here is replaced by this module's
        :class:`HTTPDigestAuth` with the same credentials.
    verify: Union[bool, str]
        Verify TLS certificates (default), or the path of a CA bundle to verify with;
        ``False`` turns verification off.  By default the system's CAs are used (and
        OpenSSL's ``SSL_CERT_FILE``/``SSL_CERT_DIR``), or, while ``trust_env`` is true,
        the bundle that ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` names.  A path
        that does not exist is refused when it is set (``FileNotFoundError``).
    cert: Union[str, Tuple[str, str], None]
        Client certificate: a PEM file holding certificate and key, or a (cert, key) pair.
    proxies: Dict[str, str]
        Proxy URLs by scheme (``'http'``, ``'https'``), by ``'scheme://host'`` or
        ``'all'``; the ``*_proxy`` and ``no_proxy`` environment variables apply too
        while ``trust_env`` is true.
    hooks: Dict[str, List[Callable]]
        ``hooks['response']`` callables receive each :class:`Response` and may return a
        replacement.
    timeout: Union[float, Tuple[float, float], None]
        Default timeout (seconds) when a request gives none.
    retry: RetryPolicy
        Default retry policy when a request gives none (no retries).
    max_redirects: int
        How many redirects are followed.
    max_body_size: Union[int, None]
        Most bytes of an answer read whole into memory (:attr:`Response.content`,
        ``json()``), decoded, and of one part of a multipart answer; past it reading
        stops with :class:`BodyTooLargeError`.  ``None``: no limit.  Default
        :data:`DEFAULT_MAX_BODY_SIZE` (4 GiB).
    max_decoding_ratio: Union[float, None]
        Most decoded bytes per compressed byte of a ``gzip`` or ``deflate`` body, checked
        once 16 MiB have been decoded, streamed or not; past it reading stops with
        :class:`BodyTooLargeError` (a decompression bomb).  ``None``: no limit.  Default
        :data:`DEFAULT_MAX_DECODING_RATIO` (200).
    cookies: CookieJar
        Cookies sent with the requests they apply to; those that answers set are added.
    params: Dict[str, Any]
        Query parameters added to every request (an API key, say); a request's own
        parameters of the same name win, and a ``None`` value leaves one out.
    credential_origins: Set[str]
        Origins (``https://host:port``; a path is ignored) trusted with the session's
        credentials besides the server of the client that sends a request; ``'*'``
        trusts every origin, as the established package did.  The credentials are
        ``auth`` and every field of ``headers`` but ``User-Agent``, ``Accept``,
        ``Accept-Charset``, ``Accept-Encoding``, ``Accept-Language``, ``Cache-Control``,
        ``Connection`` and ``Pragma``.  A :class:`DICOMwebClient` sends them only to its
        own origin (scheme, host and port of its URL) and to these, so that a
        ``BulkDataURI`` or a redirect naming another server does not receive them; a
        second client for that server sharing the session sends them there.  A request
        sent through the session directly (``session.get(url)``) takes its own URL as
        the origin, as with requests, and drops them on redirects to other origins.

    """

    def __init__(self) -> None:
        self.headers = CaseInsensitiveDict({'User-Agent': _USER_AGENT, 'Accept': '*/*'})
        self._auth: Any = None
        self._verify: Any = True
        self._digest_twins: Dict[int, Tuple[Any, Any]] = {}  # see _request_auth
        self.cert: Union[str, Tuple[str, str], None] = None
        self.proxies: Dict[str, str] = {}
        self.hooks: Dict[str, List[Callable]] = {'response': []}
        self.trust_env = True
        self.timeout: Any = None
        self.retry = RetryPolicy(max_attempts=1)
        self.max_redirects = 10
        self.max_body_size: Optional[int] = DEFAULT_MAX_BODY_SIZE
        self.max_decoding_ratio: Optional[float] = DEFAULT_MAX_DECODING_RATIO
        self.cookies: http.cookiejar.CookieJar = CookieJar()
        self.params: Dict[str, Any] = {}
        self.credential_origins: Set[str] = set()
        self._netrc_hosts: Optional[Dict[str, Tuple[str, str]]] = None  # read when needed
        self._pool = _ConnectionPool(10)
        # the memos of this session: what each saves, and its bound, see _TransportMemo
        self._heads_sent: Dict[Any, bytes] = {}
        self._heads_read: Dict[bytes, _Head] = {}
        self._origins: Dict[Any, _Origin] = {}
        self._ssl_contexts: Dict[Any, ssl.SSLContext] = {}
        self._ssl_lock = threading.Lock()

    def __enter__(self) -> 'Session':
        return self

    def __getstate__(self) -> Dict[str, Any]:
        """The settings (headers, auth, cookies, TLS, proxies, ...) without connections,
        locks and caches, so that a session, and a client holding one, can be pickled
        (e.g. into the worker processes of a data loader)."""
        state = {
            name: value for name, value in self.__dict__.items() if name not in _SESSION_RUNTIME
        }
        state['pool_maxsize'] = self._pool.maxsize
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        state = dict(state)
        maxsize = state.pop('pool_maxsize', 10)
        Session.__init__(self)  # fresh connections, locks and caches (also in subclasses)
        for name in ('auth', 'verify'):  # plain attributes in earlier versions
            if name in state:
                state['_' + name] = state.pop(name)
        self.__dict__.update(state)
        self.pool_maxsize = maxsize

    @property
    def auth(self) -> Any:  # described under Attributes in the class docstring
        return self._auth

    @auth.setter
    def auth(self, value: Any) -> None:
        self._auth = _native_auth(value)

    @property
    def verify(self) -> Any:  # described under Attributes in the class docstring
        return self._verify

    @verify.setter
    def verify(self, value: Any) -> None:
        self._verify = _existing_ca_bundle(value)

    @property
    def pool_maxsize(self) -> int:
        """int: most idle connections kept per server (set before the first request)."""
        return self._pool.maxsize

    @pool_maxsize.setter
    def pool_maxsize(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f'pool_maxsize must be a positive integer, got {value!r}')
        self._pool.maxsize = value

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close all idle pooled connections and forget the request and answer heads
        remembered so far."""
        self._pool.clear()
        self._heads_sent.clear()
        self._heads_read.clear()

    # -- the public verbs ----------------------------------------------------------------

    def get(self, url: str, **kwargs: Any) -> Response:
        """Send a GET request (see :meth:`request`)."""
        return self.request('GET', url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Response:
        """Send a HEAD request (see :meth:`request`); redirects are not followed unless
        ``allow_redirects=True``, as in requests."""
        kwargs.setdefault('allow_redirects', False)
        return self.request('HEAD', url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Response:
        """Send an OPTIONS request (see :meth:`request`)."""
        return self.request('OPTIONS', url, **kwargs)

    def post(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        """Send a POST request (see :meth:`request`)."""
        return self.request('POST', url, data=data, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        """Send a PUT request (see :meth:`request`)."""
        return self.request('PUT', url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        """Send a PATCH request (see :meth:`request`)."""
        return self.request('PATCH', url, data=data, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        """Send a DELETE request (see :meth:`request`)."""
        return self.request('DELETE', url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        params: Optional[Dict[str, Any]] = None,
        data: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Any = None,
        stream: bool = False,
        allow_redirects: bool = True,
        retry: Optional[RetryPolicy] = None,
        json: Any = None,
        auth: Any = None,
        verify: Union[bool, str, None] = None,
        cert: Any = None,
        proxies: Optional[Dict[str, str]] = None,
        credential_origin: Optional[str] = None,
    ) -> Response:
        """Send a request and return the answer (errors are not raised here).

        Parameters
        ----------
        method: str
            HTTP method.
        url: str
            Absolute http(s) URL.
        params: Union[Dict[str, Any], None], optional
            Query parameters (see :func:`build_query_string`).
        data: Any, optional
            Body: bytes, str, a form mapping, a file object, an iterable of byte chunks
            (sent with chunked transfer coding unless it has a ``length``) or a
            callable returning such an iterable (which can be replayed on retry).
        headers: Union[Mapping[str, str], None], optional
            Header fields added to the session's.
        timeout: Union[float, Tuple[float, float], None], optional
            Seconds to connect and to wait for each read, or a (connect, read) pair.
        stream: bool, optional
            Leave the body unread; read it with :meth:`Response.iter_content`,
            :meth:`Response.read1` or :attr:`Response.content`.
        allow_redirects: bool, optional
            Follow redirects.
        retry: Union[RetryPolicy, None], optional
            Retry policy for this request (default: the session's).
        json: Any, optional
            Object sent as a JSON body.
        auth, verify, cert, proxies: optional
            Override the session's attributes of the same names for this request.
        credential_origin: Union[str, None], optional
            A URL of the server the session's credentials (``auth``, ``params`` and the
            credential fields of ``headers``, see :attr:`credential_origins`) are meant
            for, such as a client's base URL: they are sent only if ``url`` has its
            origin or one of :attr:`credential_origins`.  ``None`` (default) takes
            ``url`` itself.  What this call gives (``headers``, ``auth``, ``params``)
            is always sent.

        Returns
        -------
        Response
            The final answer.

        Raises
        ------
        TransportError
            If the connection fails; :class:`Timeout` if it times out.

        """
        if json is not None and data is None:
            data = _json_dumps(json)
            headers = {'Content-Type': 'application/json', **(headers or {})}
        trusted = _trusted(url, credential_origin, self.credential_origins)
        if self.params and trusted:
            params = _merged_params(self.params, params)
        prepared = self.prepare_request(
            method, _with_query(url, params), headers, data, auth, credential_origin, trusted
        )
        timeout = self.timeout if timeout is None else timeout
        options = _SendOptions(
            timeout,
            retry or self.retry,
            _tls_settings(
                self.verify if verify is None else verify, self.cert if cert is None else cert
            ),
            _merged_proxies(self.proxies, proxies),
        )
        response = self._send_following_redirects(prepared, options, allow_redirects)
        if self.hooks.get('response') or prepared.hooks.get('response'):
            response = self._run_hooks(response, prepared, options, stream)
        if not stream:
            response.content  # noqa: B018 - reads the body and frees the connection
        return response

    def _run_hooks(
        self, response: Response, prepared: PreparedRequest, options: '_SendOptions', stream: bool
    ) -> Response:
        """Call the session's response hooks, then those that the auth registered; the
        answer's ``connection`` lets a hook send a request again, as in requests."""
        for hook in self.hooks.get('response', []):
            response = hook(response, timeout=options.timeout, stream=stream) or response
        for hook in prepared.hooks.get('response', []):
            if response.connection is None:
                response.connection = _HookConnection(self, options)
            try:
                response = hook(response, timeout=options.timeout, stream=stream) or response
            except AttributeError as error:
                raise TypeError(
                    f'the response hook that {prepared._hook_owner or "the auth"} registered '
                    f'needs a part of requests that dicomweb_client.Session does not have '
                    f'({error}); pass the client a requests.Session (session=...) instead, '
                    'or use an auth that only sets header fields'
                ) from error
        return response

    def prepare_request(
        self,
        method: str,
        url: str,
        headers: Optional[Mapping[str, str]] = None,
        data: Any = None,
        auth: Any = None,
        credential_origin: Optional[str] = None,
        trusted: Optional[bool] = None,
    ) -> PreparedRequest:
        """Merge the session's headers and auth into a :class:`PreparedRequest`.

        Only the fields of :attr:`headers` that are not credentials go with it (and not
        :attr:`auth`) unless ``url`` is trusted with the credentials meant for
        ``credential_origin`` (see :meth:`request`); ``trusted`` is that answer, when
        known already.
        """
        if trusted is None:
            trusted = _trusted(url, credential_origin, self.credential_origins)
        merged = (
            self.headers.copy()
            if trusted
            else CaseInsensitiveDict(
                {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() in _UNSCOPED_HEADERS
                }
            )
        )
        for key, value in (headers or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        prepared = PreparedRequest(method.upper(), url, merged, data)
        if auth is not None:
            auth = self._request_auth(auth)
        elif trusted:
            auth = self.auth
        if auth is None and '@' not in url:
            auth = self._netrc_auth(url, merged)
            if auth is None:
                return prepared
        return self._apply_auth(prepared, auth)

    def _netrc_auth(self, url: str, headers: CaseInsensitiveDict) -> Optional[Tuple[str, str]]:
        """(login, password) for the host of ``url`` from the netrc file, as requests
        does while ``trust_env`` is true: ``$NETRC``, else ``~/.netrc`` (``~/_netrc`` on
        Windows); never over an ``Authorization`` field set by hand.  The file is read
        once per session."""
        if not self.trust_env or 'Authorization' in headers:
            return None
        if self._netrc_hosts is None:
            self._netrc_hosts = _read_netrc()
        if not self._netrc_hosts:
            return None
        host = urllib.parse.urlsplit(url).hostname or ''
        return self._netrc_hosts.get(host) or self._netrc_hosts.get('default')

    def _request_auth(self, auth: Any) -> Any:
        """The auth to use for an ``auth`` given to one request: a requests digest auth
        is replaced by a twin, the same one each time it is given (so that its nonce is
        reused)."""
        if not _is_requests_digest_auth(auth):
            return auth
        known = self._digest_twins.get(id(auth))
        if known is None or known[0] is not auth:
            known = (auth, _native_auth(auth))
            _remember(self._digest_twins, id(auth), known)
        return known[1]

    @staticmethod
    def _apply_auth(prepared: PreparedRequest, auth: Any) -> PreparedRequest:
        if auth is None:
            user, password = _credentials_in_url(prepared.url)
            if user is None:
                return prepared
            auth = (user, password)
        if isinstance(auth, tuple) and len(auth) == 2:
            auth = BasicAuth(*auth)
        prepared = auth(prepared) or prepared
        if prepared.hooks.get('response'):
            prepared._hook_owner = f'{type(auth).__module__}.{type(auth).__qualname__}'
        return prepared

    # -- redirects and retries -----------------------------------------------------------

    def _send_following_redirects(
        self, prepared: PreparedRequest, options: '_SendOptions', allow_redirects: bool
    ) -> Response:
        history: List[Response] = []  # redirects and answered challenges, oldest first
        response = self._send_authenticated(prepared, options, history)
        redirects = 0
        while allow_redirects and response.is_redirect:
            if redirects >= self.max_redirects:
                response.close()
                raise _compatible(TransportError)(
                    f'more than {self.max_redirects} redirects from {history[0].url}'
                )
            following = self._redirected_request(prepared, response)
            if following is None:
                break
            response.close()
            history.append(response)
            redirects += 1
            prepared = following
            response = self._send_authenticated(prepared, options, history)
        response.history = history
        return response

    def _send_authenticated(
        self, prepared: PreparedRequest, options: '_SendOptions', history: List[Response]
    ) -> Response:
        """Send (with retries); a 401 challenge that the request's authenticator can
        answer is answered and the request sent again, if its body can be sent again.
        Answered 401s are added to ``history``."""
        body = _NO_BODY if prepared.body is None else _Body(prepared.body)
        response = self._send_with_retries(prepared, options, body)
        authenticator = prepared.authenticator
        answered = 0
        while response.status_code == 401 and authenticator is not None and body.replayable:
            field = authenticator.respond(response, answered)
            if field is None:
                break
            _drain(response)
            history.append(response)
            prepared = prepared.copy()
            prepared.headers['Authorization'] = field
            answered += 1
            response = self._send_with_retries(prepared, options, body)
        return response

    def _redirected_request(
        self, prepared: PreparedRequest, response: Response
    ) -> Optional[PreparedRequest]:
        """The request a redirect asks for; credentials are not sent to another origin."""
        location = urllib.parse.urljoin(prepared.url, response.headers['Location'])
        following = prepared.copy()
        following.url = location
        keeps_body = response.status_code in (307, 308)
        if not keeps_body and prepared.method != 'HEAD':
            following.method = 'GET'
            following.body = None
            for name in ('Content-Type', 'Content-Length', 'Transfer-Encoding'):
                following.headers.pop(name, None)
        elif prepared.body is not None and not _Body(prepared.body).replayable:
            return None
        old, new = urllib.parse.urlsplit(prepared.url), urllib.parse.urlsplit(location)
        if (old.hostname, old.port) != (new.hostname, new.port) or (
            old.scheme == 'https' and new.scheme != 'https'
        ):
            # even to one of credential_origins: the server, not the user, chose it; the
            # session's other credential fields (X-Api-Key, ...) go too
            for name in _CREDENTIAL_HEADERS + _scoped_header_names(self.headers):
                following.headers.pop(name, None)
            following.authenticator = None  # answers no challenge of another origin
        elif following.authenticator is not None:  # its answer names the old URL
            following.headers.pop('Authorization', None)
            following = following.authenticator(following) or following
        return following

    def _send_with_retries(
        self, prepared: PreparedRequest, options: '_SendOptions', body: Optional[_Body] = None
    ) -> Response:
        if body is None:
            body = _NO_BODY if prepared.body is None else _Body(prepared.body)
        return _send_retrying(
            functools.partial(self._send_once, prepared, body, options),
            options.retry,
            body.replayable,
            prepared.method,
            prepared.url,
        )

    # -- one exchange over one connection ------------------------------------------------

    def _send_once(
        self, prepared: PreparedRequest, body: _Body, options: '_SendOptions'
    ) -> Response:
        """Send once, with the cookies that apply; keep the cookies the answer sets."""
        cookies = self.cookies
        if cookies and 'Cookie' not in prepared.headers:  # a field given by hand wins
            prepared = _with_cookies(prepared, cookies)
        response = self._send_on_a_connection(prepared, body, options)
        if response.raw.sets_cookies and cookies is not None:  # type: ignore[attr-defined]
            cookies.extract_cookies(response.raw, _cookie_request(prepared.url))
        return response

    def _send_on_a_connection(
        self, prepared: PreparedRequest, body: _Body, options: '_SendOptions'
    ) -> Response:
        """Send once; a pooled connection that turns out dead is replaced once."""
        origin = self._origin(prepared.url, options)
        timeout = options.timeout
        connection = self._pool.get(origin)
        if connection is not None:
            try:
                return self._exchange(origin, connection, prepared, body, timeout)
            except StaleConnectionError as error:
                if prepared.method not in _REPEATABLE_METHODS or not body.replayable:
                    raise _compatible(TransportError)(
                        f'connection to {_redact(prepared.url)} was closed by the server before it '
                        f'answered {prepared.method}; not repeated because the request '
                        'may have taken effect'
                    ) from error.__cause__
                logger.debug('pooled connection was closed by the server; reconnecting')
        connection = self._connect(origin, timeout)
        try:
            return self._exchange(origin, connection, prepared, body, timeout)
        except StaleConnectionError as error:
            raise _transport_error(error.__cause__ or error, _redact(prepared.url)) from error

    def _exchange(
        self,
        origin: _Origin,
        connection: '_Connection',
        prepared: PreparedRequest,
        body: _Body,
        timeout: Any,
    ) -> Response:
        """Write the request and read the status line and headers of the answer."""
        _, read_timeout = _split_timeout(timeout)
        headers = prepared.headers
        payload: Any = None
        extra: Dict[str, str] = {}
        if body is not _NO_BODY:
            payload, extra = _framed_payload(body, headers)
        if origin.proxy and origin.scheme == 'http':
            extra.update(_proxy_auth_headers(origin.proxy))
        started = time.monotonic()
        try:
            head = _request_head(
                prepared.method,
                prepared.url,
                origin,
                {**headers, **extra} if extra else headers,
                prepared.body is not None,
                self._heads_sent,
            )
            connection.set_timeout(read_timeout)
            raw = self._send_and_read_head(connection, prepared.method, head, payload)
        except _STALE_CONNECTION_ERRORS as error:
            connection.close()
            raise StaleConnectionError(str(error)) from error
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise _transport_error(error, _redact(prepared.url)) from error
        except BaseException:
            connection.close()
            raise

        def release(reusable: bool) -> None:
            if reusable and (raw.spare == 0 or not connection.has_leftover()):
                self._pool.put(origin, connection)
            else:
                connection.close()

        response = Response(raw, prepared, release)
        response.elapsed = datetime.timedelta(seconds=time.monotonic() - started)
        response.max_body_size = self.max_body_size
        response.max_decoding_ratio = self.max_decoding_ratio
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                '%s %s -> %d (%.3f s)',
                prepared.method,
                _redact(prepared.url),
                response.status_code,
                response.elapsed.total_seconds(),
            )
        return response

    @staticmethod
    def _send_and_read_head(
        connection: '_Connection', method: str, head: bytes, payload: Any
    ) -> '_HTTPResponse':
        """Send a request and read the head of its answer.

        A server may answer before it has read the whole body (401, 413, ...) and close
        the connection; sending then fails.  The answer it sent first is still read and
        returned, so that the caller learns the server's status and reason rather than
        only that the connection was reset.
        """
        try:
            connection.send_request(head, payload)
        except _SEND_CUT_ERRORS as send_error:
            early = _HTTPResponse(connection, method)
            try:
                early.begin()
            except (OSError, http.client.HTTPException):
                raise send_error from None
            early.will_close = True
            return early
        raw = _HTTPResponse(connection, method)
        raw.begin()
        return raw

    def _connect(self, origin: _Origin, timeout: Any) -> _Connection:
        """Open a new connection to ``origin`` (through its proxy, if any)."""
        connect_timeout, _ = _split_timeout(timeout)
        host, port = origin.host, origin.port
        if origin.proxy:
            proxy = urllib.parse.urlsplit(origin.proxy)
            host, port = proxy.hostname or '', proxy.port or 80
        if origin.scheme == 'https':
            assert origin.tls is not None  # _new_origin sets it for every https origin
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=connect_timeout, context=self._ssl_context(origin.tls)
            )
            if origin.proxy:
                connection.set_tunnel(
                    origin.host, origin.port, headers=_proxy_auth_headers(origin.proxy)
                )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=connect_timeout)
        try:
            connection.connect()
        except ssl.SSLError as error:
            connection.close()
            raise _transport_error(
                error, f'{origin.scheme}://{origin.host}:{origin.port}'
            ) from error
        except OSError as error:
            connection.close()
            where = f'{origin.scheme}://{origin.host}:{origin.port}'
            if origin.proxy:
                where += f' via proxy {_redact(origin.proxy)}'
            if isinstance(error, (socket.timeout, TimeoutError)):
                raise _compatible(Timeout)(f'timed out connecting to {where}') from error
            raise _connect_failure(error, where, host) from error
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(connection, self._heads_read)

    def _origin(self, url: str, options: '_SendOptions') -> _Origin:
        """Where ``url`` is sent with these options (remembered per scheme and host)."""
        pieces = url.split('/', 3)  # scheme, '', host and port, path
        key = (
            pieces[0],
            pieces[2] if len(pieces) > 2 else '',
            options.proxies,
            options.tls,
            self.trust_env,
        )
        origin = self._origins.get(key)
        if origin is None:
            origin = self._new_origin(url, options)
            _remember(self._origins, key, origin)
        return origin

    def _new_origin(self, url: str, options: '_SendOptions') -> _Origin:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ValueError(f'cannot send a request to {url!r}: not an http(s) URL')
        port = parts.port or (443 if parts.scheme == 'https' else 80)
        return _Origin(
            parts.scheme,
            parts.hostname,
            port,
            self._choose_proxy(parts.scheme, parts.hostname, dict(options.proxies)),
            self._choose_tls(options.tls) if parts.scheme == 'https' else None,
        )

    def _choose_tls(self, tls: Tuple[Any, Any]) -> Tuple[Any, Any]:
        """The TLS settings of an origin: with default verification and ``trust_env``,
        a CA bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (as requests
        reads them) replaces the system's CAs.  Read once per origin, like proxies; a
        bundle that does not exist fails the request (an ``OSError`` in requests too)."""
        verify, cert = tls
        if verify is True and self.trust_env:
            for variable in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'):
                if os.environ.get(variable):
                    return _existing_ca_bundle(
                        os.environ[variable], f'the CA bundle that {variable} names'
                    ), cert
        return _existing_ca_bundle(verify), cert

    def _choose_proxy(self, scheme: str, host: str, given: Dict[str, str]) -> Optional[str]:
        """The proxy URL for a host, or ``None`` (environment variables apply too).

        Called once per origin: reading the environment costs more than a small request
        on loopback.
        """
        proxies: Dict[str, str] = {}
        if self.trust_env:
            proxies.update((k, v) for k, v in urllib.request.getproxies().items() if k != 'no')
        proxies.update(given)
        if not proxies or (self.trust_env and urllib.request.proxy_bypass(host)):
            return None
        for key in (f'{scheme}://{host}', scheme, 'all'):
            if proxies.get(key):
                proxy = proxies[key]
                return proxy if '://' in proxy else f'http://{proxy}'
        return None

    def _ssl_context(self, tls: Tuple[Any, Any]) -> ssl.SSLContext:
        with self._ssl_lock:
            context = self._ssl_contexts.get(tls)
            if context is None:
                context = _make_ssl_context(*tls)
                _remember(self._ssl_contexts, tls, context)
            return context


# -- Foreign session: a requests.Session behind the Session interface -------------------


def _adds_nothing(request: Any) -> Any:
    """An auth for requests that adds no credentials (it stands in for the session's)."""
    return request


class _ForeignResponse(Response):
    """A ``requests.Response`` seen through the :class:`Response` interface."""

    def __init__(self, answer: Any, method: str) -> None:  # noqa: D107
        self._answer = answer
        self._chunks: Optional[Iterator[bytes]] = None
        self.raw = answer.raw
        self.status_code = answer.status_code
        self.reason = answer.reason or _reason_phrase(answer.status_code)
        self.headers = answer.headers
        self.url = _redact(answer.url)
        self.request = PreparedRequest(method, answer.url, CaseInsensitiveDict())
        self.history = []
        self.elapsed = answer.elapsed
        self._content = None
        self._error = None
        self._released = False
        self._coding = self._decoder = None  # requests undoes Content-Encoding itself

    @property
    def content(self) -> bytes:
        """bytes: the whole body."""
        return self._answer.content

    def read1(self, size: int) -> bytes:
        """Return the next piece of the body (``b''`` at the end)."""
        if self._chunks is None:
            self._chunks = self._answer.iter_content(size)
        return next(self._chunks, b'')

    def readinto1(self, view: memoryview) -> int:
        """Read the next piece of the body into ``view`` (0 at the end)."""
        return _readinto_from_read1(self.read1)(view)

    def close(self) -> None:
        """Close the underlying answer."""
        self._answer.close()


class _ForeignSession:
    """Lets a ``requests.Session`` (or a subclass such as google-auth's
    ``AuthorizedSession``) stand in for a :class:`Session`, for code written for the
    established package.  Retries follow the client's policy; bodies are streamed.
    """

    def __init__(self, session: Any) -> None:
        self.wrapped = session
        #: as :attr:`Session.credential_origins`, for the wrapped session's credentials
        self.credential_origins: Set[str] = set()

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__') or 'wrapped' not in self.__dict__:  # e.g. while unpickling
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def request(
        self,
        method: str,
        url: str,
        params: Optional[Dict[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        data: Any = None,
        timeout: Any = None,
        stream: bool = True,
        retry: Optional[RetryPolicy] = None,
        credential_origin: Optional[str] = None,
    ) -> Response:
        """Send through the wrapped session; same contract as :meth:`Session.request`.

        Toward an origin not trusted with the credentials, the wrapped session's
        credential header fields are unset for the request and its ``auth`` replaced by
        one that adds nothing; credentials that a subclass adds in its own ``request``
        (google-auth's ``AuthorizedSession``) are beyond reach.
        """
        body = _Body(data)  # streamed bodies go out chunked: requests frames them itself
        fields: Dict[str, Optional[str]] = dict(headers or {})
        extra: Dict[str, Any] = {}
        if not _trusted(url, credential_origin, self.__dict__.get('credential_origins', ())):
            extra = self._withheld(fields)
        target = _with_query(url, params)

        def send() -> Response:
            answer = self.wrapped.request(
                method,
                target,
                data=body.payload(),
                headers=fields,
                timeout=timeout,
                stream=True,
                **extra,
            )
            return _ForeignResponse(answer, method)

        return _send_retrying(
            send, _NO_RETRIES if retry is None else retry, body.replayable, method, target
        )

    def _withheld(self, fields: Dict[str, Optional[str]]) -> Dict[str, Any]:
        """Unset, in ``fields``, the wrapped session's credential header fields (requests
        leaves out fields whose value is ``None``), and return the keyword arguments
        that keep its ``auth``, netrc credentials and ``params`` out too."""
        for name in _scoped_header_names(getattr(self.wrapped, 'headers', None) or {}):
            fields.setdefault(name, None)
        params = getattr(self.wrapped, 'params', None) or {}
        return {'auth': _adds_nothing, 'params': {name: None for name in params}}


# -- Factories: create_session and friends (the session_utils module) -------------------


def create_session() -> Session:
    """Return a new :class:`Session` without credentials.

    Returns
    -------
    Session
        The session.

    """
    return Session()


def create_session_from_auth(auth: Callable) -> Session:
    """Return a session that authenticates every request with ``auth``.

    Parameters
    ----------
    auth: Callable
        Any callable that takes a :class:`PreparedRequest`, sets header fields on it and
        returns it, such as :class:`BasicAuth`, :class:`BearerAuth`,
        :class:`HTTPDigestAuth` or an instance of ``requests.auth.AuthBase``; a (user,
        password) pair also works.  A ``requests.auth.HTTPDigestAuth`` is replaced by
        this module's :class:`HTTPDigestAuth` with the same credentials.

    Returns
    -------
    Session
        The session.

    """
    session = Session()
    session.auth = auth
    return session


def create_session_from_user_pass(username: str, password: str) -> Session:
    """Return a session that uses HTTP basic authentication.

    Parameters
    ----------
    username: str
        User name.
    password: str
        Password.

    Returns
    -------
    Session
        The session.

    """
    return create_session_from_auth(BasicAuth(username, password))


def add_certs_to_session(
    session: Session, ca_bundle: Optional[str] = None, cert: Optional[str] = None
) -> Session:
    """Set the CA bundle that verifies the server and the client certificate.

    Parameters
    ----------
    session: Session
        The session to change (it is changed in place and returned).
    ca_bundle: Union[str, None], optional
        Path of a PEM file (or folder) of CA certificates.
    cert: Union[str, None], optional
        Path of a PEM file with the client certificate and its key.

    Returns
    -------
    Session
        The same session.

    Raises
    ------
    FileNotFoundError
        If ``ca_bundle`` does not exist (as the established package, which raises an
        ``OSError`` here, this is checked at once rather than at the first request).

    """
    if ca_bundle is not None:
        session.verify = os.fspath(_existing_ca_bundle(ca_bundle))
    if cert is not None:
        session.cert = os.fspath(cert)
    return session


# ---------------------------------------------------------------------------------------
# Multipart bodies: a streaming reader and a streaming writer
# ---------------------------------------------------------------------------------------

_BOUNDARY_PATTERN = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_MAX_PART_HEADER_SIZE = 1 << 16


def _content_type(value: str) -> Message:
    """Parse a Content-Type field value with the stdlib email helpers."""
    message = Message()
    message['Content-Type'] = value or ''
    return message


def _boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart Content-Type, checked against RFC 2046."""
    boundary = _content_type(content_type).get_param('boundary')
    if not isinstance(boundary, str) or not _BOUNDARY_PATTERN.fullmatch(boundary):
        raise MultipartError(
            f'multipart answer without a valid boundary: Content-Type {content_type!r}'
        )
    return boundary.encode('ascii')


#: bytes a multipart window (:class:`_Window`) starts with
_WINDOW_START = 64 * 1024


class _Window:
    """A growable byte buffer over a stream: bytes arrive at the end, leave from the start.

    Reads go straight into the buffer (``readinto1``), so each byte is copied once on the
    way in and once more when a part is handed out.  With ``parts_kept``, large parts are
    handed out through :func:`_kept_copy`.
    """

    def __init__(
        self, readinto1: Callable[[memoryview], int], chunk_size: int, parts_kept: bool = False
    ) -> None:
        self._readinto1 = readinto1
        self._chunk_size = chunk_size
        self._parts_kept = parts_kept
        self.buf = bytearray(min(2 * chunk_size, _WINDOW_START))
        self.start = 0
        self.end = 0

    def __len__(self) -> int:
        return self.end - self.start

    def read_more(self) -> bool:
        """Read what the stream has (at most one chunk); ``False`` at its end.

        The window starts small and doubles while reads need more room than half of
        it, up to two chunks, so a small answer never pays for zeroing two chunks.
        """
        if len(self.buf) - self.end < min(self._chunk_size, len(self.buf) // 2):
            self._make_room()
        with memoryview(self.buf) as view:
            count = self._readinto1(view[self.end : self.end + self._chunk_size])
        self.end += count
        return count > 0

    def _make_room(self) -> None:
        held = self.end - self.start
        if self.start and held <= len(self.buf) // 2:
            self.buf[:held] = self.buf[self.start : self.end]
            self.start, self.end = 0, held
        else:
            self.buf.extend(bytes(len(self.buf)))

    def find(self, needle: bytes, offset: int = 0) -> int:
        """Position of ``needle`` at or after ``offset`` (relative to the start), or -1."""
        index = self.buf.find(needle, self.start + offset, self.end)
        return index - self.start if index >= 0 else -1

    def peek(self, size: int) -> bytes:
        """The first ``size`` bytes, left in place."""
        return bytes(self.buf[self.start : self.start + size])

    def take(self, size: int) -> bytes:
        """Remove and return the first ``size`` bytes."""
        with memoryview(self.buf) as view, view[self.start : self.start + size] as taken:
            if self._parts_kept and size >= _KEPT_COPY_MIN:
                data = _kept_copy(taken)
            else:
                data = bytes(taken)
        self.skip(size)
        return data

    def skip(self, size: int) -> None:
        """Drop the first ``size`` bytes; a small rest moves to the front (cheap)."""
        self.start += size
        held = self.end - self.start
        if held <= self._chunk_size and self.start > self._chunk_size:
            self.buf[:held] = self.buf[self.start : self.end]
            self.start, self.end = 0, held


def _kept_copy(view: memoryview) -> bytes:
    """``bytes(view)``, with the copy's memory mapped in by one system call first.

    A part the caller keeps (in a list, say) needs new memory, and Linux maps new memory
    in one 4 KiB page at a time, on first touch; for large parts that costs more than the
    copy itself.  ``madvise(MADV_POPULATE_WRITE)`` maps all pages of the new object at
    once (on the benchmark machine a 400 MiB frame list came in about a third faster).
    The object is allocated zeroed (untouched memory), populated, filled through a
    :class:`io.BytesIO` view and handed out by ``getvalue()``, which returns the very
    object it wraps when sizes match (CPython), so nothing is copied twice.  Elsewhere,
    or on kernels before 5.14, the pages are simply faulted in by the copy.
    """
    holder = io.BytesIO(bytes(len(view)))
    with holder.getbuffer() as target:
        _populate_pages(target)
        target[:] = view
    return holder.getvalue()


class _PagePopulator:
    """Maps in every whole page of a writable buffer with one ``madvise`` call.

    libc's ``madvise`` is loaded through ctypes on first use, on Linux only; where it
    cannot be loaded or the kernel refuses ``MADV_POPULATE_WRITE`` (before Linux 5.14),
    calls do nothing from then on and pages are faulted in as they are touched.
    """

    _MADV_POPULATE_WRITE = 23  # <linux/mman.h>

    def __init__(self) -> None:
        self._madvise: Any = None
        self._ctypes: Any = None
        self._enabled = sys.platform.startswith('linux')

    def __call__(self, buffer: memoryview) -> None:
        if (
            len(buffer) < mmap.PAGESIZE
            or not self._enabled
            or (self._madvise is None and not self._load())
        ):
            return
        pointer = self._ctypes.c_char.from_buffer(buffer)  # exports buffer while alive
        address = self._ctypes.addressof(pointer)
        del pointer
        page = mmap.PAGESIZE
        first = -(-address // page) * page
        last = (address + len(buffer)) // page * page
        if (
            last > first
            and self._madvise(first, last - first, self._MADV_POPULATE_WRITE)
            and self._ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS)
        ):
            self._enabled = False  # a kernel without it: stop asking

    def _load(self) -> bool:
        try:
            import ctypes

            madvise = ctypes.CDLL(None, use_errno=True).madvise
        except (ImportError, OSError, AttributeError):
            self._enabled = False
            return False
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
        self._ctypes, self._madvise = ctypes, madvise
        return True


_populate_pages = _PagePopulator()
_KEPT_COPY_MIN = 1 << 18  # smaller parts come from the allocator's heap, mapped already


def _readinto_from_read1(read1: Callable[[int], bytes]) -> Callable[[memoryview], int]:
    """Adapt a ``read1(n) -> bytes`` source to ``readinto1(view) -> int``."""

    def readinto1(view: memoryview) -> int:
        data = read1(len(view))
        view[: len(data)] = data
        return len(data)

    return readinto1


class MultipartReader:
    """Yield the parts of a ``multipart/related`` body as they arrive.

    The body is scanned for the boundary incrementally with ``bytes.find`` over a sliding
    window, so only the part being read is held in memory.  A body that ends before the
    closing delimiter, or has anything but padding after a boundary, or malformed part
    headers, or a part whose ``Content-Length`` is not the number of bytes before the
    next delimiter, raises :class:`MultipartError` rather than yielding a partial or
    wrong result.  The delimiter alone decides where a part ends: RFC 2046 (which
    PS3.18 follows) forbids it inside a payload, so a declared length never lets the
    reader step over one.

    Parameters
    ----------
    source: Union[Callable[[int], bytes], Any]
        Source of the body: an object with ``readinto1(memoryview) -> int`` (such as a
        :class:`Response`), or a ``read1(n) -> bytes`` callable; both return 0 bytes only
        at the end of the body.
    boundary: bytes
        The boundary, without the leading dashes.
    chunk_size: int, optional
        Most bytes asked for per read.
    parts_kept: bool, optional
        The caller keeps every part (collects them in a list, say) rather than dropping
        each before asking for the next: large parts then get memory that is mapped in
        at once, which is faster on Linux (see :func:`_kept_copy`).
    max_part_size: Union[int, None], optional
        Most bytes of one part (and of the preamble); a longer one raises
        :class:`BodyTooLargeError` once that many bytes are held without its end, so
        memory stays bounded by the limit.  ``None``: no limit.
    url: Union[str, None], optional
        URL of the answer, for error messages (by default ``source.url``, if any).

    """

    def __init__(
        self,
        source: Any,
        boundary: bytes,
        chunk_size: int = 1 << 20,
        *,
        parts_kept: bool = False,
        max_part_size: Optional[int] = None,
        url: Optional[str] = None,
    ) -> None:
        readinto1 = getattr(source, 'readinto1', None)
        if not callable(readinto1):
            readinto1 = _readinto_from_read1(source)
        self._window = _Window(readinto1, max(int(chunk_size), 1024), parts_kept)
        self._delimiter = b'\r\n--' + boundary
        self._max_part_size = max_part_size
        self._url = url or str(getattr(source, 'url', '') or 'the server')

    def __iter__(self) -> Iterator[Tuple[Message, bytes]]:
        window, delimiter = self._window, self._delimiter
        # a CRLF in front lets a boundary at the very start match the delimiter
        window.buf[:2] = b'\r\n'
        window.end = 2
        window.skip(self._find(delimiter, 'the first boundary') + len(delimiter))
        number = 0
        while True:
            self._fill(2, 'the rest of a boundary line')
            if window.peek(2) == b'--':
                self._drain()
                return
            self._skip_padding()
            number += 1
            headers = self._read_headers()
            body = window.take(self._part_size(headers, number))
            window.skip(len(delimiter))
            yield headers, body

    def _more(self, what: str) -> None:
        if not self._window.read_more():
            raise MultipartError(f'multipart body is truncated: it ended before {what}')

    def _fill(self, size: int, what: str) -> None:
        while len(self._window) < size:
            self._more(what)

    def _find(self, needle: bytes, what: str, limit: Optional[int] = None) -> int:
        window, scan_from = self._window, 0
        while True:
            index = window.find(needle, scan_from)
            if index >= 0:
                return index
            if limit is not None and len(window) > limit:
                raise MultipartError(f'multipart body is malformed: no {what} within {limit} bytes')
            self._check_part_size(len(window) - len(needle))
            scan_from = max(len(window) - len(needle) + 1, 0)
            self._more(what)

    def _check_part_size(self, size: int) -> None:
        """Refuse a part (or preamble) known to be longer than ``size`` bytes, when
        ``size`` reaches the limit."""
        limit = self._max_part_size
        if limit is not None and size >= limit:
            raise _body_too_large(
                self._url, limit, f'a part of its multipart body is larger than {limit} bytes'
            )

    def _skip_padding(self) -> None:
        end = self._find(b'\r\n', 'the end of a boundary line', limit=1024)
        padding = self._window.take(end + 2)[:-2]
        if padding.strip(b' \t'):
            raise MultipartError(
                f'multipart body is malformed: unexpected bytes after a boundary: {padding[:40]!r}'
            )

    def _read_headers(self) -> Message:
        self._fill(2, 'the part headers')
        if self._window.peek(2) == b'\r\n':
            self._window.skip(2)
            return Message()
        end = self._find(b'\r\n\r\n', 'the end of the part headers', limit=_MAX_PART_HEADER_SIZE)
        block = self._window.take(end + 4)[:-2]
        headers = email.parser.BytesHeaderParser().parsebytes(block)
        if headers.defects or headers.get_payload():
            raise MultipartError(f'multipart body is malformed: bad part headers {block[:200]!r}')
        return headers

    def _part_size(self, headers: Message, number: int) -> int:
        """The size of part ``number``: its bytes up to the next delimiter.

        The delimiter decides where a part ends (RFC 2046 5.1.1, which PS3.18 follows:
        it never occurs in a payload); a ``Content-Length`` the part declares must agree.
        """
        declared = _declared_length(headers, number) if len(headers) else None
        size = self._find(self._delimiter, 'the end of a part')
        if declared is not None and declared != size:
            raise MultipartError(
                f'multipart body is malformed: part {number} declares '
                f'Content-Length {declared} but holds {size} bytes '
                f'before the next boundary'
            )
        return size

    def _drain(self) -> None:
        window = self._window
        window.start = window.end = 0
        while window.read_more():
            window.start = window.end = 0


def _declared_length(headers: Message, number: int) -> Optional[int]:
    """The Content-Length that part ``number`` declares, ``None`` if it declares none.

    Parameters
    ----------
    headers: email.message.Message
        The part's header fields.
    number: int
        The part's position in the body (1 for the first), for the error message.

    Returns
    -------
    Union[int, None]
        The declared length in bytes.

    Raises
    ------
    MultipartError
        If the field is not a decimal number, or is given twice with different values.

    """
    values = [str(value) for value in headers.get_all('Content-Length') or ()]
    if not values:
        return None
    text = values[0].strip()
    if not (text.isascii() and text.isdigit()) or any(
        value.strip() != text for value in values[1:]
    ):
        raise MultipartError(
            f'multipart body is malformed: part {number} declares '
            f'Content-Length {", ".join(values)!r}, not a length in bytes'
        )
    return int(text)


def _single_part(response: Response, acceptable: Sequence[str]) -> Iterator[Tuple[Message, bytes]]:
    """Yield a non-multipart answer as one part, if its media type was asked for."""
    media_type = response.content_type
    if not any(_media_type_matches(pattern, media_type) for pattern in acceptable):
        raise MultipartError(
            f'expected a multipart/related answer from {response.url}, '
            f'got Content-Type '
            f'{response.headers.get("Content-Type", "(none)")!r}'
        )
    headers = Message()
    headers['Content-Type'] = response.headers.get('Content-Type', media_type)
    yield headers, response.content


def _media_type_matches(pattern: str, media_type: str) -> bool:
    if pattern in ('*', '*/*') or pattern == media_type:
        return True
    return pattern.endswith('/*') and media_type.startswith(pattern[:-1])


def _iter_parts(
    response: Response, acceptable: Sequence[str], chunk_size: int, parts_kept: bool = False
) -> Iterator[Tuple[Message, bytes]]:
    """Yield (headers, body) of each part of an answer; closes the answer at the end."""
    try:
        if response.status_code == HTTPStatus.NO_CONTENT:
            return
        content_type = response.headers.get('Content-Type', '')
        parsed = _content_type(content_type)
        if parsed.get_content_maintype() != 'multipart':
            yield from _single_part(response, acceptable)
        elif parsed.get_param('boundary') is None:
            yield from _parts_without_boundary(response, content_type, chunk_size, parts_kept)
        else:
            yield from MultipartReader(
                response,
                _boundary_of(content_type),
                chunk_size,
                parts_kept=parts_kept,
                max_part_size=_part_limit(response),
            )
    finally:
        response.close()


def _part_limit(response: Response) -> Optional[int]:
    """The most bytes one part of ``response`` may have: its ``max_body_size``."""
    limit = getattr(response, 'max_body_size', None)
    return limit if isinstance(limit, int) else None


def _parts_without_boundary(
    response: Response, content_type: str, chunk_size: int, parts_kept: bool
) -> Iterator[Tuple[Message, bytes]]:
    """The parts of a multipart answer whose Content-Type names no boundary.

    When the body starts with a delimiter line (``--boundary`` and CRLF), that boundary
    is used to split it.  Otherwise the whole body is the one part, which is what the
    established package returns for such answers (some servers send one frame so).
    """
    head = _read_first_line(response)
    boundary = _boundary_of_delimiter_line(head)
    if boundary is not None:
        logger.debug(
            'multipart answer from %s names no boundary; using %r from its body',
            response.url,
            boundary,
        )
        yield from MultipartReader(
            _prefixed_read1(head, response.read1),
            boundary,
            chunk_size,
            parts_kept=parts_kept,
            max_part_size=_part_limit(response),
            url=response.url,
        )
        return
    rest = iter(functools.partial(response.read1, max(chunk_size, 1024)), b'')
    headers = Message()
    headers['Content-Type'] = content_type
    yield (
        headers,
        _joined_within(itertools.chain((head,), rest), _part_limit(response), response.url),
    )


def _read_first_line(response: Response, limit: int = 1024) -> bytes:
    """Read the start of a body: up to its first CRLF, ``limit`` bytes or its end."""
    head = b''
    while b'\r\n' not in head and len(head) < limit:
        data = response.read1(limit - len(head))
        if not data:
            break
        head += data
    return head


def _boundary_of_delimiter_line(head: bytes) -> Optional[bytes]:
    """The boundary of a first line ``--boundary`` (transport padding allowed), or None."""
    line, found, _ = head.partition(b'\r\n')
    if not found or not line.startswith(b'--'):
        return None
    candidate = line[2:].rstrip(b' \t')
    try:
        text = candidate.decode('ascii')
    except UnicodeDecodeError:
        return None
    return candidate if _BOUNDARY_PATTERN.fullmatch(text) else None


def _prefixed_read1(prefix: bytes, read1: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """A ``read1`` that returns ``prefix`` (bytes already read) before reading on."""
    pending = [prefix] if prefix else []

    def read(size: int) -> bytes:
        if pending:
            data = pending.pop()
            if len(data) > size:
                pending.append(data[size:])
                data = data[:size]
            return data
        return read1(size)

    return read


class _PartSource:
    """One part of a STOW-RS body: a dataset, bytes, a file path or a file object."""

    def __init__(self, item: Any) -> None:
        self.item = item
        self.size: Optional[int] = None
        if isinstance(item, (bytes, bytearray, memoryview)):
            self.size = memoryview(item).nbytes
        elif isinstance(item, (str, os.PathLike)):
            info = os.stat(item)
            if stat.S_ISDIR(info.st_mode):
                raise ValueError(
                    f'{os.fspath(item)!r} is a folder: pass the paths of the '
                    f'files in it, e.g. sorted(pathlib.Path(folder).rglob('
                    f'"*.dcm"))'
                )
            self.size = info.st_size
        elif hasattr(item, 'read'):
            self._start, self.size = _remaining_size(item)
            if self._start is None:
                raise TypeError('file objects to store must be seekable')
        elif not isinstance(item, pydicom.Dataset):
            raise TypeError(
                f'cannot store {type(item).__name__}: pass pydicom Datasets, '
                'bytes of Part 10 files, file paths or binary file objects'
            )
        elif not _encoding_is_known(item):
            uid = item.get('SOPInstanceUID', '(no SOP Instance UID)')
            raise ValueError(
                f'dataset {uid} has no Transfer Syntax UID in its file meta '
                f'information, so it cannot be encoded: set '
                f'dataset.file_meta.TransferSyntaxUID (for instance to '
                f'pydicom.uid.ExplicitVRLittleEndian) before storing it'
            )

    def chunks(
        self, chunk_size: int, scratch: Optional[io.BytesIO] = None
    ) -> Iterator[Union[bytes, bytearray, memoryview]]:
        """Yield the bytes of the part.

        With ``scratch``, a dataset is encoded into that buffer (reused from part to part,
        so its memory is not allocated and faulted in again for every instance) and
        handed out as a view that is valid only until the next item is asked for.
        """
        item = self.item
        if isinstance(item, pydicom.Dataset) and scratch is None:
            buffer = io.BytesIO()
            _write_part_dataset(buffer, item)
            yield buffer.getvalue()
        elif isinstance(item, pydicom.Dataset) and scratch is not None:
            scratch.seek(0)
            _write_part_dataset(scratch, item)
            with scratch.getbuffer() as view, view[: scratch.tell()] as encoded:
                yield encoded
        elif isinstance(item, (bytes, bytearray, memoryview)):
            yield bytes(item) if isinstance(item, memoryview) else item
        elif isinstance(item, (str, os.PathLike)):
            with open(item, 'rb') as fileobj:
                yield from _read_chunks(fileobj, chunk_size)
        else:
            item.seek(self._start)
            yield from _read_chunks(item, chunk_size)


def _new_boundary() -> str:
    """A fresh multipart boundary: 32 random hex digits (128 bits, as random as a UUID)."""
    return os.urandom(16).hex()


class MultipartBody:
    """A replayable, streamed ``multipart/related`` request body.

    Calling the object returns a fresh iterator of byte chunks, so a request can be
    retried.  ``length`` is the exact size when every part's size is known up front (bytes,
    files), else ``None`` and the body goes out with chunked transfer coding.

    Parameters
    ----------
    parts: Sequence[Any]
        Part payloads: pydicom Datasets, bytes, file paths or seekable binary file objects.
    media_type: str
        Media type of every part.
    chunk_size: int, optional
        Bytes read from files per chunk.

    """

    replayable = True

    def __init__(self, parts: Sequence[Any], media_type: str, chunk_size: int = 1 << 20) -> None:
        self.parts = [_PartSource(part) for part in parts]
        self.media_type = media_type
        self.boundary = _new_boundary()
        self.chunk_size = chunk_size
        self._part_header = (f'--{self.boundary}\r\nContent-Type: {media_type}\r\n\r\n').encode(
            'ascii'
        )
        self._closing = f'--{self.boundary}--\r\n'.encode('ascii')

    @property
    def content_type(self) -> str:
        """str: value of the request's Content-Type field."""
        return f'multipart/related; type="{self.media_type}"; boundary={self.boundary}'

    @property
    def length(self) -> Optional[int]:
        """Union[int, None]: size of the body in bytes, if known without encoding."""
        sizes = [part.size for part in self.parts]
        if any(size is None for size in sizes):
            return None
        per_part = len(self._part_header) + 2
        return sum(sizes) + per_part * len(sizes) + len(self._closing)  # type: ignore

    def __call__(self) -> Iterator[Union[bytes, bytearray]]:
        return self._chunks(None)

    def transient_chunks(self) -> Iterator[Union[bytes, bytearray, memoryview]]:
        """Like calling the body, but a chunk may be a view that is only valid until the
        next one is asked for; for senders that write each chunk at once (faster)."""
        return self._chunks(io.BytesIO())

    def _chunks(self, scratch: Optional[io.BytesIO]) -> Iterator[Any]:
        for part in self.parts:
            yield self._part_header
            yield from part.chunks(self.chunk_size, scratch)
            yield b'\r\n'
        yield self._closing


def _encode_dataset(dataset: Dataset) -> bytes:
    """Encode a dataset as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    _write_dataset(buffer, dataset)
    return buffer.getvalue()


def _write_dataset(fileobj: Any, dataset: Dataset) -> None:
    """Write a dataset as a DICOM Part 10 file at the position of ``fileobj``."""
    _dcmwrite(fileobj, dataset, enforce_file_format=True)


def _dcmwrite(
    fileobj: Any,
    dataset: Dataset,
    enforce_file_format: bool,
    encoding: Optional[Tuple[bool, bool]] = None,
) -> None:
    """``pydicom.dcmwrite`` with pydicom 3's arguments, on pydicom 3 and 2 alike.

    ``enforce_file_format`` is pydicom 3's (pydicom 2 has its opposite,
    ``write_like_original``); ``encoding``, if given, is the (implicit VR, little endian)
    encoding to write, which pydicom 2 takes from the dataset instead.  Which pydicom it is
    is told by the signature of ``dcmwrite``, not by trying: a ``TypeError`` it raises (a
    value it cannot write) is never mistaken for pydicom 2 and always propagates.
    """
    if _dcmwrite_is_pydicom_3(pydicom.dcmwrite):
        options = (
            {} if encoding is None else {'implicit_vr': encoding[0], 'little_endian': encoding[1]}
        )
        pydicom.dcmwrite(fileobj, dataset, enforce_file_format=enforce_file_format, **options)
        return
    if encoding is not None:
        dataset.is_implicit_VR, dataset.is_little_endian = encoding
    pydicom.dcmwrite(fileobj, dataset, write_like_original=not enforce_file_format)


#: the ``dcmwrite`` last looked at, and whether it is pydicom 3's (one tuple: thread-safe)
_DCMWRITE_SIGNATURE: List[Tuple[Any, bool]] = [(None, True)]


def _dcmwrite_is_pydicom_3(function: Any) -> bool:
    """Whether ``function`` (``pydicom.dcmwrite``) takes ``enforce_file_format``, as from
    pydicom 3 (read from its signature once, again only if the function is replaced)."""
    known, modern = _DCMWRITE_SIGNATURE[0]
    if known is function:
        return modern
    import inspect  # imported here: only the first dataset written needs it

    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read: take it for the current one
        modern = True
    else:
        modern = any(
            parameter.name == 'enforce_file_format'
            or parameter.kind is inspect.Parameter.VAR_KEYWORD
            for parameter in parameters
        )
    _DCMWRITE_SIGNATURE[0] = (function, modern)
    return modern


def _write_part_dataset(fileobj: Any, dataset: Dataset) -> None:
    """Write a dataset given to ``store_instances`` at the position of ``fileobj``.

    A dataset whose File Meta Information can be completed (it names the transfer
    syntax, and the SOP Class and Instance UIDs are in the meta or the dataset) becomes
    a Part 10 file.  Any other is written as it is, meta elements and all, which is what
    the established package sends for every dataset.
    """
    if _file_meta_can_be_completed(dataset):
        _write_dataset(fileobj, dataset)
        return
    _dcmwrite(fileobj, dataset, enforce_file_format=False)


def _file_meta_can_be_completed(dataset: Dataset) -> bool:
    """Whether pydicom can write ``dataset`` as a Part 10 file (its meta filled in)."""
    meta = getattr(dataset, 'file_meta', None) or pydicom.Dataset()
    return bool(meta.get('TransferSyntaxUID')) and all(
        meta.get(meta_keyword) or dataset.get(keyword)
        for meta_keyword, keyword in (
            ('MediaStorageSOPClassUID', 'SOPClassUID'),
            ('MediaStorageSOPInstanceUID', 'SOPInstanceUID'),
        )
    )


def _encoding_is_known(dataset: Dataset) -> bool:
    """Whether pydicom knows how to encode ``dataset``.

    That is the case when its file meta names a transfer syntax, when the (deprecated)
    ``is_implicit_VR`` and ``is_little_endian`` flags are set, or when it was decoded
    from bytes (its original encoding).
    """
    if 'TransferSyntaxUID' in (getattr(dataset, 'file_meta', None) or ()):
        return True
    flags = (getattr(dataset, 'is_implicit_VR', None), getattr(dataset, 'is_little_endian', None))
    original = getattr(dataset, 'original_encoding', (None, None))
    return None not in flags or None not in original


def _decode_dataset(data: bytes) -> Dataset:
    """Decode a DICOM Part 10 file (or a bare dataset) from bytes."""
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except pydicom.errors.InvalidDicomError as error:
        try:
            dataset: Optional[Dataset] = pydicom.dcmread(io.BytesIO(data), force=True)
        except Exception:  # noqa: BLE001 - any failure means the part is not DICOM
            dataset = None
        if dataset is None or 'SOPInstanceUID' not in dataset:  # not a bare data set
            raise pydicom.errors.InvalidDicomError(
                f'a part of {len(data)} bytes is not a DICOM data set: {error}'
            ) from None
        return dataset


# ---------------------------------------------------------------------------------------
# Content negotiation: which media types and transfer syntaxes each resource can have
# ---------------------------------------------------------------------------------------

_EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1'

# media types of pixel data and bulk data (PS3.18 8.7.3), with the transfer syntaxes each
# can carry; the first is the default
_BULKDATA_MEDIA_TYPES: Dict[str, Tuple[str, ...]] = {
    'application/octet-stream': (
        _EXPLICIT_VR_LITTLE_ENDIAN,
        '1.2.840.10008.1.2',
        '1.2.840.10008.1.2.1.99',
        '1.2.840.10008.1.2.2',
    ),
    'image/jpeg': (
        '1.2.840.10008.1.2.4.50',
        '1.2.840.10008.1.2.4.51',
        '1.2.840.10008.1.2.4.57',
        '1.2.840.10008.1.2.4.70',
    ),
    'image/dicom-rle': ('1.2.840.10008.1.2.5',),
    'image/x-dicom-rle': ('1.2.840.10008.1.2.5',),
    'image/jls': ('1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81'),
    'image/x-jls': ('1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81'),
    'image/jp2': ('1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91'),
    'image/jpx': ('1.2.840.10008.1.2.4.92', '1.2.840.10008.1.2.4.93'),
    'image/jphc': ('1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202', '1.2.840.10008.1.2.4.203'),
    'image/jxl': ('1.2.840.10008.1.2.4.110', '1.2.840.10008.1.2.4.111', '1.2.840.10008.1.2.4.112'),
    'video/mpeg2': ('1.2.840.10008.1.2.4.100', '1.2.840.10008.1.2.4.101'),
    'video/mpeg': ('1.2.840.10008.1.2.4.100', '1.2.840.10008.1.2.4.101'),
    'video/mp4': (
        '1.2.840.10008.1.2.4.102',
        '1.2.840.10008.1.2.4.103',
        '1.2.840.10008.1.2.4.104',
        '1.2.840.10008.1.2.4.105',
        '1.2.840.10008.1.2.4.106',
    ),
    'video/H265': ('1.2.840.10008.1.2.4.107', '1.2.840.10008.1.2.4.108'),
}
#: Transfer syntaxes an instance can be asked for in (PS3.18 Table 8.7.3-2 and the newer
#: ones): Explicit VR Little Endian, Deflated, RLE, JPEG, JPEG-LS, JPEG 2000, MPEG, HEVC,
#: JPEG XL and HTJ2K.
_INSTANCE_SYNTAXES = frozenset(
    {
        '1.2.840.10008.1.2.1',
        '1.2.840.10008.1.2.1.99',
        '1.2.840.10008.1.2.5',
        *(
            f'1.2.840.10008.1.2.4.{n}'
            for n in (
                50,
                51,
                57,
                70,
                80,
                81,
                90,
                91,
                92,
                93,
                100,
                101,
                102,
                103,
                104,
                105,
                106,
                107,
                108,
                110,
                111,
                112,
                201,
                202,
                203,
            )
        ),
    }
)
_BULKDATA_WILDCARDS = ('*/*', 'image/*', 'video/*', 'application/*')
_RENDERED_MEDIA_TYPES = (
    'image/jpeg',
    'image/jp2',
    'image/gif',
    'image/png',
    'video/gif',
    'video/mp4',
    'video/h265',
    'text/html',
    'text/plain',
    'text/xml',
    'text/rtf',
    'application/pdf',
    'image/*',
    '*/*',
)
_RENDERED_FRAME_MEDIA_TYPES = (
    'image/jpeg',
    'image/jp2',
    'image/gif',
    'image/png',
    'image/*',
    '*/*',
)
_THUMBNAIL_MEDIA_TYPES = ('image/jpeg', 'image/gif', 'image/png', 'image/jp2', 'image/*', '*/*')


@dataclass(frozen=True)
class _Resource:
    """What a kind of resource can be asked for in, and what is asked when not told."""

    name: str
    default: Tuple[Tuple[str, Optional[str]], ...]
    multipart: bool
    media_types: Tuple[str, ...] = ()

    def allows(self, media_type: str, transfer_syntax: Optional[str]) -> None:
        """Raise ``ValueError`` unless the pair can be asked for."""
        if self.name == 'instances':
            if media_type != 'application/dicom':
                raise ValueError(
                    f'media type {media_type!r} is not available for instances (only '
                    '"application/dicom"); use retrieve_instance_frames() or '
                    'retrieve_bulkdata() for pixel data'
                )
            if transfer_syntax not in (None, '*'):
                _check_uid(transfer_syntax, 'transfer syntax UID')
                if transfer_syntax not in _INSTANCE_SYNTAXES:
                    raise ValueError(
                        f'transfer syntax {transfer_syntax!r} is not one PS3.18 defines for '
                        '"application/dicom" (Implicit VR Little Endian, for one, is not '
                        'used in DICOMweb); ask for "*" to take what the server has'
                    )
            return
        if self.name in ('frames', 'bulkdata'):
            self._allows_bulkdata(media_type, transfer_syntax)
            return
        if media_type not in self.media_types:
            raise ValueError(
                f'media type {media_type!r} is not available for '
                f'{self.name}; choose from {", ".join(self.media_types)}'
            )
        if transfer_syntax is not None:
            raise ValueError(
                f'{self.name} take no transfer syntax, got {transfer_syntax!r} for {media_type!r}'
            )

    def _allows_bulkdata(self, media_type: str, transfer_syntax: Optional[str]) -> None:
        if media_type in _BULKDATA_WILDCARDS:
            if transfer_syntax not in (None, '*'):
                raise ValueError(
                    f'wildcard media type {media_type!r} needs no transfer '
                    f'syntax or "*", got {transfer_syntax!r}'
                )
            return
        syntaxes = _BULKDATA_MEDIA_TYPES.get(media_type)
        if syntaxes is None:
            raise ValueError(
                f'media type {media_type!r} is not available for {self.name}; choose from '
                f'{", ".join(list(_BULKDATA_MEDIA_TYPES) + list(_BULKDATA_WILDCARDS))}'
            )
        if transfer_syntax not in (None, '*') and transfer_syntax not in syntaxes:
            raise ValueError(
                f'transfer syntax {transfer_syntax!r} cannot be sent as '
                f'{media_type!r}; it carries {", ".join(syntaxes)}'
            )


_RESOURCES = {
    'instances': _Resource('instances', (('application/dicom', None),), True),
    'frames': _Resource('frames', (('application/octet-stream', None),), True),
    'bulkdata': _Resource('bulkdata', (('application/octet-stream', None),), True),
    'rendered': _Resource('rendered', (('image/jpeg', None),), False, _RENDERED_MEDIA_TYPES),
    'rendered frames': _Resource(
        'rendered frames', (('image/jpeg', None),), False, _RENDERED_FRAME_MEDIA_TYPES
    ),
    'thumbnails': _Resource('thumbnails', (('image/jpeg', None),), False, _THUMBNAIL_MEDIA_TYPES),
    'XML metadata': _Resource(
        'XML metadata', (('application/dicom+xml', None),), True, ('application/dicom+xml',)
    ),
}


def _normalize_media_types(media_types: Any) -> Tuple[Tuple[str, Optional[str]], ...]:
    """Media types as (media type, transfer syntax or None) pairs; checks their shape."""
    if isinstance(media_types, str):
        media_types = (media_types,)
    if not isinstance(media_types, (tuple, list)):
        raise TypeError(f'media_types must be a tuple, not {media_types!r}')
    if not media_types:
        raise ValueError('media_types must name at least one media type')
    pairs = []
    for item in media_types:
        if isinstance(item, str):
            item = (item,)
        if (
            not isinstance(item, (tuple, list))
            or len(item) not in (1, 2)
            or not all(isinstance(value, str) for value in item)
        ):
            raise TypeError(
                f'each of media_types must be a media type or a (media type, '
                f'transfer syntax UID) pair, not {item!r}'
            )
        media_type = item[0].strip()
        if media_type.count('/') != 1:
            raise ValueError(f'{media_type!r} in media_types is not a media type')
        pairs.append((media_type, item[1].strip() if len(item) == 2 else None))
    return tuple(pairs)


def _require_plain_media_types(name: str, media_types: Any) -> None:
    """Raise ``TypeError`` if an item of ``media_types`` is not a string.

    Rendered images and thumbnails have no transfer syntax, so they are asked for by
    media type alone; the established package raises ``TypeError`` for a (media type,
    transfer syntax) pair there, and so does this module.
    """
    if not isinstance(media_types, (tuple, list)):
        return
    for item in media_types:
        if not isinstance(item, str):
            raise TypeError(
                f'{name} are asked for by media type alone (a string), not '
                f'{item!r}: transfer syntaxes do not apply to them'
            )


def _accept(resource: str, media_types: Optional[MediaTypes]) -> Tuple[str, List[str]]:
    """The Accept field value for a resource, and the media types it names.

    Raises ``ValueError`` for media types or transfer syntaxes the resource cannot have,
    and ``TypeError`` for a (media type, transfer syntax) pair where only media types
    apply (rendered images, thumbnails).
    """
    kind = _RESOURCES[resource]
    if media_types is not None and not kind.multipart:
        _require_plain_media_types(kind.name, media_types)
    pairs = kind.default if media_types is None else _normalize_media_types(media_types)
    for media_type, transfer_syntax in pairs:
        kind.allows(media_type, transfer_syntax)
    if not kind.multipart:
        return ', '.join(media_type for media_type, _ in pairs), [m for m, _ in pairs]
    values = []
    for media_type, transfer_syntax in pairs:
        value = f'multipart/related; type="{media_type}"'
        if transfer_syntax is not None:
            value += f'; transfer-syntax={transfer_syntax}'
        values.append(value)
    return ', '.join(values), [media_type for media_type, _ in pairs]


# DICOM XML (PS3.19 Native DICOM Model) to DICOM JSON (PS3.18 Annex F)

_NUMERIC_VRS = frozenset({'DS', 'FL', 'FD', 'IS', 'SL', 'SS', 'SV', 'UL', 'US', 'UV'})
_NAME_COMPONENTS = ('FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix')


def _local_name(element: Any) -> str:
    return element.tag.rsplit('}', 1)[-1]


def _children(element: Any, name: str) -> List[Any]:
    children = [child for child in element if _local_name(child) == name]
    return sorted(children, key=lambda child: int(child.get('number', '0')))


def _xml_to_dicom_json(data: bytes) -> Dict[str, dict]:
    """Convert one Native DICOM Model XML document into a DICOM JSON object."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise ValueError(f'metadata is not well-formed XML: {error}') from None
    return _xml_attributes(root)


def _xml_attributes(element: Any) -> Dict[str, dict]:
    result: Dict[str, dict] = {}
    for attribute in _children(element, 'DicomAttribute'):
        tag, vr = attribute.get('tag', '').upper(), attribute.get('vr', 'UN')
        entry: Dict[str, Any] = {'vr': vr}
        bulk = _children(attribute, 'BulkData')
        inline = _children(attribute, 'InlineBinary')
        if bulk:
            entry['BulkDataURI'] = bulk[0].get('uri') or bulk[0].get('uuid')
        elif inline:
            entry['InlineBinary'] = (inline[0].text or '').strip()
        elif vr == 'SQ':
            entry['Value'] = [_xml_attributes(item) for item in _children(attribute, 'Item')]
        elif vr == 'PN':
            entry['Value'] = [_xml_person_name(name) for name in _children(attribute, 'PersonName')]
        else:
            entry['Value'] = [
                _xml_value(value.text or '', vr) for value in _children(attribute, 'Value')
            ]
        if entry.get('Value') == []:
            del entry['Value']
        result[tag] = entry
    return result


def _xml_value(text: str, vr: str) -> Any:
    if vr not in _NUMERIC_VRS:
        return text
    number = float(text)
    return int(number) if vr in ('IS', 'SL', 'SS', 'SV', 'UL', 'US', 'UV') else number


def _xml_person_name(element: Any) -> Dict[str, str]:
    name = {}
    for group in ('Alphabetic', 'Ideographic', 'Phonetic'):
        found = _children(element, group)
        if found:
            parts = [
                ''.join(child.text or '' for child in _children(found[0], component))
                for component in _NAME_COMPONENTS
            ]
            name[group] = '^'.join(parts).rstrip('^')
    return name


# ---------------------------------------------------------------------------------------
# The client protocol
# ---------------------------------------------------------------------------------------


@runtime_checkable
class DICOMClient(Protocol):
    """What every DICOM client offers, whether it talks to a server or reads a folder.

    The methods are those of :class:`DICOMwebClient`; see there for their description.
    The protocol is runtime checkable: ``isinstance(client, DICOMClient)`` tells whether
    an object has all of its attributes and methods.

    It declares the methods of the established package's protocol and no more, so objects
    written against that protocol still pass the ``isinstance`` check.  The thumbnail
    methods (``retrieve_study_thumbnail``, ``retrieve_series_thumbnail``,
    ``retrieve_instance_thumbnail`` and ``retrieve_instance_frames_thumbnail``) are
    therefore not part of it, although :class:`DICOMwebClient` and
    :class:`DICOMfileClient` both have them, with the same parameters.
    """

    base_url: str
    protocol: Optional[str]
    scheme: str
    url_prefix: str
    qido_url_prefix: Optional[str] = None
    wado_url_prefix: Optional[str] = None
    stow_url_prefix: Optional[str] = None
    delete_url_prefix: Optional[str] = None

    def search_for_studies(
        self,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
    ) -> List[Dict[str, dict]]:
        """Search for studies."""

    def search_for_series(
        self,
        study_instance_uid: Optional[str] = None,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
    ) -> List[Dict[str, dict]]:
        """Search for series."""

    def search_for_instances(
        self,
        study_instance_uid: Optional[str] = None,
        series_instance_uid: Optional[str] = None,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
    ) -> List[Dict[str, dict]]:
        """Search for instances."""

    def retrieve_bulkdata(
        self,
        url: str,
        media_types: Optional[MediaTypes] = None,
        byte_range: Optional[Tuple[int, int]] = None,
    ) -> List[bytes]:
        """Retrieve bulk data at a URL."""

    def iter_bulkdata(
        self,
        url: str,
        media_types: Optional[MediaTypes] = None,
        byte_range: Optional[Tuple[int, int]] = None,
    ) -> Iterator[bytes]:
        """Iterate over bulk data at a URL."""

    def retrieve_study_metadata(self, study_instance_uid: str) -> List[Dict[str, dict]]:
        """Retrieve the metadata of every instance of a study."""

    def retrieve_series_metadata(
        self, study_instance_uid: str, series_instance_uid: str
    ) -> List[Dict[str, dict]]:
        """Retrieve the metadata of every instance of a series."""

    def retrieve_instance_metadata(
        self, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str
    ) -> Dict[str, dict]:
        """Retrieve the metadata of an instance."""

    def retrieve_study(
        self, study_instance_uid: str, media_types: Optional[MediaTypes] = None
    ) -> List[Dataset]:
        """Retrieve the instances of a study."""

    def iter_study(
        self, study_instance_uid: str, media_types: Optional[MediaTypes] = None
    ) -> Iterator[Dataset]:
        """Iterate over the instances of a study."""

    def retrieve_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
    ) -> List[Dataset]:
        """Retrieve the instances of a series."""

    def iter_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
    ) -> Iterator[Dataset]:
        """Iterate over the instances of a series."""

    def retrieve_instance(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
    ) -> Dataset:
        """Retrieve an instance."""

    def retrieve_instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes] = None,
    ) -> List[bytes]:
        """Retrieve frames of an instance."""

    def iter_instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes] = None,
    ) -> Iterator[bytes]:
        """Iterate over frames of an instance."""

    def retrieve_instance_rendered(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve an instance rendered by the server."""

    def retrieve_series_rendered(
        self,
        study_instance_uid,
        series_instance_uid,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve a series rendered by the server."""

    def retrieve_instance_frames_rendered(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve frames rendered by the server."""

    def store_instances(
        self, datasets: Sequence[Dataset], study_instance_uid: Optional[str] = None
    ) -> Dataset:
        """Store instances."""

    def delete_study(self, study_instance_uid: str) -> None:
        """Delete a study."""

    def delete_series(self, study_instance_uid: str, series_instance_uid: str) -> None:
        """Delete a series."""

    def delete_instance(
        self, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str
    ) -> None:
        """Delete an instance."""


# ---------------------------------------------------------------------------------------
# The web client
# ---------------------------------------------------------------------------------------

_DICOM_JSON = 'application/dicom+json'
#: what searches and JSON metadata accept: DICOM JSON, or plain JSON from servers that
#: label it so (the same value as the established package sends)
_JSON_ACCEPT = f'{_DICOM_JSON}, application/json'
#: request fields for JSON answers (never changed: requests copy them)
_JSON_AS_IS = types.MappingProxyType({'Accept': _JSON_ACCEPT})
_JSON_MAYBE_COMPRESSED = types.MappingProxyType(
    {'Accept': _JSON_ACCEPT, 'Accept-Encoding': 'gzip, deflate'}
)
_DICOM_XML = 'application/dicom+xml'


class _Transaction(enum.Enum):
    """The DICOMweb services, as the established package's private URL helpers name them
    (``dicomweb_client.web._Transaction``, which downstream code imports)."""

    STORE = 'store'
    SEARCH = 'search'
    RETRIEVE = 'retrieve'
    DELETE = 'delete'


#: the ``*_url_prefix`` attribute (``qido`` for ``qido_url_prefix``) of each service
_PREFIX_OF_TRANSACTION = {
    _Transaction.SEARCH: 'qido',
    _Transaction.RETRIEVE: 'wado',
    _Transaction.STORE: 'stow',
    _Transaction.DELETE: 'delete',
}

#: the multipart hooks of the client that downstream code overrides or replaces
_PART_HOOKS = ('_decode_multipart_message', '_extract_part_content')
#: resources whose answers the established package splits with those hooks
_HOOKED_RESOURCES = frozenset({'instances', 'frames', 'bulkdata'})
#: what lies between two delimiters without being a part (nothing, the closing "--")
_NOT_PARTS = frozenset({b'', b'--', b'\r\n'})


class _ReplacingHeaders(http.client.HTTPMessage):
    """Header fields of an answer where ``headers[name] = value`` replaces the field.

    An ``email.message.Message`` adds a second field of that name instead, so that code
    written for ``requests`` (whose headers are a dict) would keep reading the old value.
    """

    def __setitem__(self, name: str, value: Any) -> None:
        del self[name]  # every field of that name; nothing if there is none
        super().__setitem__(name, value)


def _requests_like(response: Response) -> Response:
    """Make ``response`` behave as a ``requests.Response`` where downstream code relies
    on it: assigning a header field replaces it, and ``response.request.headers`` has
    the fields that were sent (also for a wrapped ``requests`` session)."""
    headers = response.headers
    if type(headers) is http.client.HTTPMessage:
        headers.__class__ = _ReplacingHeaders  # same object, raw.headers included
    sent = getattr(getattr(getattr(response, '_answer', None), 'request', None), 'headers', None)
    request = getattr(response, 'request', None)
    if sent and request is not None and not request.headers:
        request.headers.update(sent)
    return response


def _multipart_pieces(chunks: Iterable[bytes], boundary: bytes) -> Iterator[bytes]:
    """Cut a multipart body at every CRLF ``--boundary``, as the established package
    does before it calls ``_extract_part_content``.

    Yields the bytes between one delimiter and the next (the first piece from the start
    of the body, so with the opening boundary line), each still holding its part header
    lines, and finally whatever follows the last delimiter (``--`` and CRLF, normally).
    """
    delimiter = b'\r\n--' + boundary
    held = bytearray()
    for chunk in chunks:
        scan_from = max(0, len(held) - len(delimiter) + 1)  # a delimiter may straddle
        held += chunk
        start = 0
        while True:
            found = held.find(delimiter, max(start, scan_from))
            if found < 0:
                break
            yield bytes(held[start:found])
            start = found + len(delimiter)
        del held[:start]
    yield bytes(held)


def _unread_body(response: Response, stream: bool) -> Any:
    """What a :class:`MultipartReader` reads ``response``'s body from: the answer itself
    when streaming and still unread, else its whole content."""
    if stream and getattr(response, '_content', None) is None:
        return response
    return io.BytesIO(response.content)


class DICOMwebClient:
    """Search, retrieve, store and delete DICOM objects on a DICOMweb server.

    Parameters
    ----------
    url: str
        URL of the DICOMweb service: scheme, host, optional port and path prefix, e.g.
        ``http://127.0.0.1:8042/dicom-web``.
    session: Union[Session, None], optional
        Session that sends the requests (see the ``session_utils`` functions for sessions
        with credentials); a new one by default.
    qido_url_prefix: Union[str, None], optional
        Path segment added after ``url`` for searches (QIDO-RS).
    wado_url_prefix: Union[str, None], optional
        Path segment added after ``url`` for retrievals (WADO-RS).
    stow_url_prefix: Union[str, None], optional
        Path segment added after ``url`` for stores (STOW-RS).
    delete_url_prefix: Union[str, None], optional
        Path segment added after ``url`` for deletions.
    proxies: Union[Dict[str, str], None], optional
        Proxy URLs by scheme (``{'https': 'http://proxy:3128'}``); set on the session.
    headers: Union[Dict[str, str], None], optional
        Header fields sent with every request, e.g. ``Authorization``; set on the session.
    callback: Union[Callable, None], optional
        Called with every :class:`Response`; may return a replacement.
    chunk_size: int, optional
        Bytes per read or write when streaming bodies (``iter_*`` and
        ``store_instances``).
    permissive_uid: bool, optional
        Accept UIDs that break the standard's syntax (see :class:`URI`).
    timeout: Union[float, Tuple[float, float]], optional
        Seconds to wait when connecting and for each read, or a (connect, read) pair.
    credential_origins: Union[Iterable[str], None], optional
        More origins (``https://host:port``) that may receive the credentials, i.e.
        the session's ``auth``, ``params`` and header fields such as ``Authorization``
        or ``X-Api-Key`` (all but ``User-Agent``, ``Accept`` and the like); added to
        ``Session.credential_origins``.  By default they go only to the origin of
        ``url``: bulk data URIs on other servers are fetched without them; ``['*']``
        sends them everywhere, as the established package did.

    Attributes
    ----------
    base_url: str
        URL of the service.
    scheme: str
        ``http`` or ``https`` (also as ``protocol``).
    host: str
        Host name or address of the server.
    port: int
        Port of the server.
    url_prefix: str
        Path of ``base_url``.
    max_body_size: Union[int, None]
        Most bytes of an answer the client reads whole into memory (JSON, metadata,
        a non-streamed retrieval of one object), decoded, and of one part of a
        multipart answer, streamed or not; past it :class:`BodyTooLargeError` is
        raised.  ``None``: no limit.  By default the session's
        (:data:`DEFAULT_MAX_BODY_SIZE`, 4 GiB, for a :class:`Session`); setting it here
        changes only this client.
    max_decoding_ratio: Union[float, None]
        Most decoded bytes per compressed byte of a compressed answer (checked once
        16 MiB have been decoded); past it :class:`BodyTooLargeError` is raised, as
        for a decompression bomb.  ``None``: no limit.  By default the session's
        (:data:`DEFAULT_MAX_DECODING_RATIO`, 200); setting it changes only this client.

    Warning
    -------
    ``headers``, ``proxies`` and ``credential_origins`` change the session passed in; do
    not reuse it elsewhere if that matters.

    """

    def __init__(
        self,
        url: str,
        session: Optional[Session] = None,
        qido_url_prefix: Optional[str] = None,
        wado_url_prefix: Optional[str] = None,
        stow_url_prefix: Optional[str] = None,
        delete_url_prefix: Optional[str] = None,
        proxies: Optional[Dict[str, str]] = None,
        headers: Optional[Dict[str, str]] = None,
        callback: Optional[Callable] = None,
        chunk_size: int = 10**6,
        permissive_uid: bool = False,
        timeout: Union[float, tuple] = 20,
        *,
        credential_origins: Optional[Iterable[str]] = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f'url must be a string, not {type(url).__name__}')
        self.base_url = url.rstrip('/')
        _check_base_url(self.base_url)
        parts = urllib.parse.urlsplit(self.base_url)
        self.scheme = self.protocol = parts.scheme
        self.host = parts.hostname or ''
        self.port = parts.port or (443 if parts.scheme == 'https' else 80)
        self.url_prefix = parts.path
        self.qido_url_prefix = _clean_prefix(qido_url_prefix, 'qido_url_prefix')
        self.wado_url_prefix = _clean_prefix(wado_url_prefix, 'wado_url_prefix')
        self.stow_url_prefix = _clean_prefix(stow_url_prefix, 'stow_url_prefix')
        self.delete_url_prefix = _clean_prefix(delete_url_prefix, 'delete_url_prefix')
        trusted_origins = _checked_origins(credential_origins)
        self._owns_session = session is None
        if session is None:
            session = create_session()
        if proxies:
            session.proxies = dict(proxies)
        if headers:
            session.headers.update(headers)
        if not isinstance(session, Session):
            if not callable(getattr(session, 'request', None)):
                raise TypeError(
                    f'session must be a dicomweb_client.Session (see the '
                    f'session_utils functions), not {type(session).__name__}'
                )
            session = _ForeignSession(session)
        session.credential_origins.update(trusted_origins)
        self._session = session
        self._callback = callback
        self._permissive_uid = bool(permissive_uid)
        self._timeout = timeout
        self.set_chunk_size(chunk_size)
        self.set_http_retry_params()

    def __repr__(self) -> str:
        return f'DICOMwebClient({self.base_url!r})'

    def __enter__(self) -> 'DICOMwebClient':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the idle connections of the session the client made for itself.

        A session passed to the constructor belongs to the caller and is left open.
        The client stays usable: a later request opens a new connection.
        """
        if self._owns_session:
            self._session.close()

    # -- settings ------------------------------------------------------------------------

    @property
    def max_body_size(self) -> Optional[int]:  # described under Attributes
        return self._body_limit('max_body_size')

    @max_body_size.setter
    def max_body_size(self, value: Optional[int]) -> None:
        self._set_body_limit('max_body_size', value)

    @property
    def max_decoding_ratio(self) -> Optional[float]:  # described under Attributes
        return self._body_limit('max_decoding_ratio')

    @max_decoding_ratio.setter
    def max_decoding_ratio(self, value: Optional[float]) -> None:
        self._set_body_limit('max_decoding_ratio', value)

    def _body_limit(self, name: str) -> Any:
        """The limit ``name`` set on this client, else its session's, else the default."""
        if '_' + name in vars(self):
            return vars(self)['_' + name]
        value = getattr(self._session, name, Response)  # a requests session has none
        return (
            value if value is None or isinstance(value, (int, float)) else getattr(Response, name)
        )

    def _set_body_limit(self, name: str, value: Any) -> None:
        """Set the limit ``name`` for this client: a positive number or ``None``."""
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
        ):
            raise ValueError(f'{name} must be a positive number or None, got {value!r}')
        vars(self)['_' + name] = value

    def set_chunk_size(self, chunk_size: int) -> None:
        """Set how many bytes are read or written per chunk when streaming.

        Parameters
        ----------
        chunk_size: int
            Bytes per chunk; small values cost many system calls.

        """
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f'chunk_size must be a positive integer, got {chunk_size!r}')
        self._chunk_size = chunk_size

    def set_http_retry_params(
        self,
        retry: bool = True,
        max_attempts: int = 5,
        wait_exponential_multiplier: int = 1000,
        retriable_error_codes: Tuple[HTTPStatus, ...] = DEFAULT_RETRIABLE_STATUSES,
        *,
        connect_budget: float = 1.0,
    ) -> None:
        """Choose whether and how requests are repeated when the server is busy or failing.

        A retried request waits ``wait_exponential_multiplier * 2**n`` milliseconds
        before its n-th repetition, or as long as the server's ``Retry-After`` field
        says (up to a minute).  Requests whose body cannot be sent again are not retried.
        A server that cannot be reached at all (connection refused, network
        unreachable) is tried again only while the waits add up to ``connect_budget``
        seconds, so that a server that is down is reported within about a second; a
        host name that does not exist is reported at once.  Each retry is logged as a
        warning on the ``dicomweb_client.retry`` logger as it is decided.

        Parameters
        ----------
        retry: bool, optional
            Whether to retry at all; ``False`` ignores the other arguments.
        max_attempts: int, optional
            Most attempts per request, the first included.
        wait_exponential_multiplier: int, optional
            Milliseconds multiplied by ``2**n`` to give the n-th wait.
        retriable_error_codes: Tuple[http.HTTPStatus, ...], optional
            Status codes that are retried.
        connect_budget: float, optional
            Most seconds, in all, spent waiting to reconnect to a server that cannot be
            reached; 0 reports it at once, and 30 with the other defaults repeats the
            established package's four retries over 30 seconds.

        Note
        ----
        With retries on, an answer that still has a retriable status after the last
        attempt raises :class:`RetryError` (an :class:`HTTPError`); with them off, every
        error status raises a plain :class:`HTTPError`.  A server that cannot be
        reached raises :class:`TransportError` (a ``requests.ConnectionError`` too,
        when requests is installed) naming the server and the cause.

        """
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f'max_attempts must be a positive integer, got {max_attempts!r}')
        if wait_exponential_multiplier < 0:
            raise ValueError('wait_exponential_multiplier must not be negative')
        _check_seconds(connect_budget, 'connect_budget')
        self._retry = RetryPolicy(
            max_attempts=max_attempts if retry else 1,
            wait_exponential_multiplier=wait_exponential_multiplier,
            retriable_statuses=frozenset(int(code) for code in retriable_error_codes)
            if retry
            else frozenset(),
            connect_budget=float(connect_budget),
        )

    lookup_keyword = staticmethod(lookup_keyword)
    lookup_tag = staticmethod(lookup_tag)

    # -- the one request path ------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        params: Optional[Dict[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        data: Any = None,
        stream: bool = False,
    ) -> Response:
        """Send a request, run the callback and raise :class:`HTTPError` on failure."""
        response = self._session.request(
            method,
            url,
            params=params,
            headers=headers,
            data=data,
            timeout=self._timeout,
            stream=True,
            retry=self._retry,
            credential_origin=self.base_url,
        )
        _requests_like(response)
        response.max_body_size = self.max_body_size
        response.max_decoding_ratio = self.max_decoding_ratio
        if self._callback is not None:
            response = self._callback(response) or response
        self._raise_for_status(response)
        if not stream:
            response.content  # noqa: B018 - reads the body and frees the connection
        return response

    def _raise_for_status(self, response: Response) -> None:
        """Raise :class:`RetryError` if retries gave up, else as ``raise_for_status``."""
        status = response.status_code
        if status >= 400 and status in self._retry.retriable_statuses:
            method = getattr(getattr(response, 'request', None), 'method', '') or ''
            raise _compatible(RetryError)(
                status, method, response.url, _server_message(response), response
            )
        response.raise_for_status()

    def _http_get(
        self,
        url: str,
        params: Optional[Dict[str, Any]] = None,
        headers: Optional[Dict[str, str]] = None,
        stream: bool = False,
    ) -> Response:
        """Send a GET request through the client's session and retry policy.

        Kept for downstream code that calls the established package's private helper
        (mercure, ADIT, large_image); the client's own methods do not use it.

        Parameters
        ----------
        url: str
            Full URL of the resource.
        params: Union[Dict[str, Any], None], optional
            Query parameters (encoded as by :func:`build_query_string`).
        headers: Union[Dict[str, str], None], optional
            Header fields added to the session's for this request, e.g. ``Accept``.
        stream: bool, optional
            Leave the body unread, for ``iter_content`` or ``_decode_multipart_message``;
            close the answer (or use it in a ``with`` block) when done.

        Returns
        -------
        Response
            The answer, readable as a ``requests.Response``.

        Raises
        ------
        HTTPError
            If the status code is 400 or above (``RetryError`` once retries gave up).

        """
        response = self._request('GET', url, params=params, headers=headers, stream=stream)
        warning = response.headers.get('Warning')
        if warning:
            logger.warning('server warning for %s: %s', url, warning)
        return response

    def _url(
        self,
        service: str,
        study_instance_uid: Optional[str] = None,
        series_instance_uid: Optional[str] = None,
        sop_instance_uid: Optional[str] = None,
        frame_numbers: Optional[Sequence[int]] = None,
        suffix: Optional[str] = None,
    ) -> str:
        """The URL of a resource of a service; UIDs and frame numbers are checked first."""
        for value, name in (
            (study_instance_uid, 'study_instance_uid'),
            (series_instance_uid, 'series_instance_uid'),
            (sop_instance_uid, 'sop_instance_uid'),
        ):
            if value is not None:
                _check_uid(value, name, self._permissive_uid)
        if frame_numbers is not None:
            frame_numbers = _check_frame_numbers(frame_numbers)
        prefix = getattr(self, f'{service}_url_prefix')
        base = f'{self.base_url}/{prefix}' if prefix else self.base_url
        return base + _resource_path(
            study_instance_uid, series_instance_uid, sop_instance_uid, frame_numbers, suffix
        )

    # -- URL helpers of the established package, kept for downstream code -------------

    def _get_transaction_url(self, transaction: _Transaction) -> str:
        """URL of a service: ``base_url`` and the service's URL prefix, if any.

        Parameters
        ----------
        transaction: _Transaction
            The service.

        Returns
        -------
        str
            URL of the service.

        """
        if not isinstance(transaction, _Transaction):
            raise ValueError(
                f'unknown DICOMweb service {transaction!r}; use a member of '
                'dicomweb_client.web._Transaction'
            )
        return self._url(_PREFIX_OF_TRANSACTION[transaction])

    def _get_studies_url(
        self, transaction: _Transaction, study_instance_uid: Optional[str] = None
    ) -> str:
        """URL of all studies of a service, or of one study.

        Parameters
        ----------
        transaction: _Transaction
            The service.
        study_instance_uid: Union[str, None], optional
            Study Instance UID.

        Returns
        -------
        str
            ``.../studies`` or ``.../studies/{study}``.

        """
        return self._resource_url(transaction, '/studies', study_instance_uid)

    def _get_series_url(
        self,
        transaction: _Transaction,
        study_instance_uid: Optional[str] = None,
        series_instance_uid: Optional[str] = None,
    ) -> str:
        """URL of series, as the established package builds it.

        Without a study UID the URL is ``.../series`` and a series UID is ignored (with
        a warning in the log).

        Parameters
        ----------
        transaction: _Transaction
            The service.
        study_instance_uid: Union[str, None], optional
            Study Instance UID.
        series_instance_uid: Union[str, None], optional
            Series Instance UID.

        Returns
        -------
        str
            ``.../studies/{study}/series[/{series}]`` or ``.../series``.

        """
        if study_instance_uid is None:
            _warn_ignored(series_instance_uid, 'series UID', 'study UID')
            return self._resource_url(transaction, '/series')
        return self._resource_url(
            self._get_studies_url(transaction, study_instance_uid), '/series', series_instance_uid
        )

    def _get_instances_url(
        self,
        transaction: _Transaction,
        study_instance_uid: Optional[str] = None,
        series_instance_uid: Optional[str] = None,
        sop_instance_uid: Optional[str] = None,
    ) -> str:
        """URL of instances, as the established package builds it.

        A SOP Instance UID counts only with both a study and a series UID, and a series
        UID only with a study UID; ignored UIDs are named in a logged warning.

        Parameters
        ----------
        transaction: _Transaction
            The service.
        study_instance_uid: Union[str, None], optional
            Study Instance UID.
        series_instance_uid: Union[str, None], optional
            Series Instance UID.
        sop_instance_uid: Union[str, None], optional
            SOP Instance UID.

        Returns
        -------
        str
            ``.../studies/{study}/series/{series}/instances[/{sop}]``,
            ``.../studies/{study}/instances`` or ``.../instances``.

        """
        if study_instance_uid is not None and series_instance_uid is not None:
            parent = self._get_series_url(transaction, study_instance_uid, series_instance_uid)
            return self._resource_url(parent, '/instances', sop_instance_uid)
        if study_instance_uid is not None:
            _warn_ignored(sop_instance_uid, 'SOP Instance UID', 'Series Instance UID')
            return self._get_studies_url(transaction, study_instance_uid) + '/instances'
        _warn_ignored(sop_instance_uid, 'SOP Instance UID', 'Study/Series Instance UID')
        return self._resource_url(transaction, '/instances')

    def _resource_url(
        self, parent: Union[_Transaction, str], collection: str, uid: Optional[str] = None
    ) -> str:
        """``parent`` (a service or a URL) with ``collection`` and an optional UID added.

        The UID must stay one path segment (as in permissive mode); the established
        package's helpers accept non-conformant UIDs, so these do too.
        """
        if isinstance(parent, _Transaction):
            parent = self._get_transaction_url(parent)
        url = parent + collection
        if uid is not None:
            url += '/' + _check_uid(uid, 'UID', permissive=True)
        return url

    def _get_json(self, url: str, params: Optional[Dict[str, Any]] = None) -> Any:
        response = self._request('GET', url, params=params, headers=self._json_headers())
        warning = response.headers.get('Warning')
        if warning:
            logger.warning('server warning for %s: %s', url, warning)
        content = response.content
        if (
            response.status_code == 204
            or not content
            or (content[:1].isspace() and not content.strip())
        ):
            return []
        try:
            return _json_loads(content)
        except ValueError as error:
            raise _compatible(JSONDecodeError)(url, error) from None

    def _json_headers(self) -> Mapping[str, str]:
        """Request fields for a JSON answer: it may come compressed (JSON shrinks several
        times over), unless the session sets Accept-Encoding or decodes by itself."""
        session = self._session
        if isinstance(session, Session) and 'Accept-Encoding' not in session.headers:
            return _JSON_MAYBE_COMPRESSED
        return _JSON_AS_IS

    def _stream_parts(
        self,
        url: str,
        resource: str,
        media_types: Optional[MediaTypes],
        params: Optional[Dict[str, Any]] = None,
        headers: Optional[Dict[str, str]] = None,
        parts_kept: bool = False,
    ) -> Iterator[bytes]:
        """Send the request now; return a generator over the bodies of its parts
        (``parts_kept``: the caller keeps them all, see :class:`MultipartReader`)."""
        accept, names = _accept(resource, media_types)
        response = self._request(
            'GET', url, params=params, headers={'Accept': accept, **(headers or {})}, stream=True
        )
        if resource in _HOOKED_RESOURCES and self._hooks_apply(resource, response):
            return self._hooked_parts(response, stream=not parts_kept)
        return (body for _, body in _iter_parts(response, names, self._chunk_size, parts_kept))

    # -- multipart hooks of the established package, kept for downstream code ---------

    @classmethod
    def _extract_part_content(cls, part: bytes) -> Optional[bytes]:
        """The body of one piece of a multipart message, or ``None`` if it is no part.

        :meth:`_decode_multipart_message` calls this with each piece between two
        delimiters (see :func:`_multipart_pieces`): the part's header lines, a blank
        line and its body.  Downstream code replaces it (ADIT keeps the header lines to
        read each part's Content-Disposition); the client then splits answers with it.

        Parameters
        ----------
        part: bytes
            One piece of the message, header lines included.

        Returns
        -------
        Union[bytes, None]
            What follows the first blank line; ``None`` for the empty pieces around
            the delimiters and for the closing ``--``.

        Raises
        ------
        MultipartError
            If the piece has no blank line after its headers (a ``ValueError``, as the
            established package raises).

        """
        if part in _NOT_PARTS or part[:4] == b'--\r\n':
            return None
        head, blank, body = bytes(part).partition(b'\r\n\r\n')
        if not blank:
            raise MultipartError(
                f'a part of a multipart message has no blank line after '
                f'its header lines: {head[:80]!r}'
            )
        return body

    def _decode_multipart_message(self, response: Response, stream: bool) -> Iterator[bytes]:
        """Yield the part bodies of a ``multipart/related`` answer, then close it.

        The hook downstream code overrides (MONAI Label rewrites
        ``response.headers['content-type']`` first) or calls with its own answers
        (ADIT, on one from :meth:`_http_get`); the client's retrievals go through it
        whenever it or :meth:`_extract_part_content` is overridden.

        Parameters
        ----------
        response: Response
            The answer; its Content-Type is read when iteration starts.
        stream: bool
            Read the body piece by piece as it arrives rather than as a whole first.

        Returns
        -------
        Iterator[bytes]
            The part bodies; the whole body when the Content-Type names no boundary.

        Raises
        ------
        MultipartError
            If the answer is not ``multipart/related`` or its body is malformed.

        """
        content_type = response.headers.get('Content-Type') or ''
        parsed = _content_type(content_type)
        if parsed.get_content_type() != 'multipart/related':
            raise MultipartError(
                f'expected a multipart/related answer from '
                f'{response.url}, got Content-Type {content_type!r}'
            )
        boundary = parsed.get_param('boundary')
        with response:
            if not isinstance(boundary, str):
                yield response.content  # one part, as some servers send a single frame
            elif self._replaced('_extract_part_content') or not _BOUNDARY_PATTERN.fullmatch(
                boundary
            ):
                yield from self._extracted_parts(response, boundary.encode('latin-1'), stream)
            else:
                reader = MultipartReader(
                    _unread_body(response, stream),
                    boundary.encode('ascii'),
                    self._chunk_size,
                    max_part_size=_part_limit(response),
                    url=str(getattr(response, 'url', '')),
                )
                yield from (body for _, body in reader)

    def _extracted_parts(
        self, response: Response, boundary: bytes, stream: bool
    ) -> Iterator[bytes]:
        """The part bodies as :meth:`_extract_part_content` finds them in the pieces."""
        chunks = response.iter_content(self._chunk_size) if stream else (response.content,)
        for piece in _multipart_pieces(chunks, boundary):
            body = self._extract_part_content(piece)
            if body is not None:
                yield body

    def _replaced(self, hook: str) -> bool:
        """Whether the multipart ``hook`` is not this class's own: overridden in a
        subclass, assigned to the instance, or patched on the class.  The client's own
        method assigned back to the instance (ADIT restores it so) is not a replacement."""
        if hook in vars(self):
            own = _OWN_PART_HOOKS[hook]
            assigned = vars(self)[hook]
            return getattr(assigned, '__func__', assigned) is not getattr(own, '__func__', own)
        for klass in type(self).__mro__:
            if hook in vars(klass):
                return vars(klass)[hook] is not _OWN_PART_HOOKS[hook]
        return True

    def _hooks_apply(self, resource: str, response: Response) -> bool:
        """Whether an answer goes through the (overridden) multipart hooks: the
        established package passes every non-empty answer to them but an instance sent
        as a bare ``application/dicom`` body."""
        if not any(self._replaced(hook) for hook in _PART_HOOKS):
            return False
        if response.status_code == HTTPStatus.NO_CONTENT:
            return False
        return resource != 'instances' or not (
            response.headers.get('Content-Type') or ''
        ).startswith('application/dicom')

    def _hooked_parts(self, response: Response, stream: bool) -> Iterator[bytes]:
        """The part bodies as the overridden hooks give them; the answer is closed."""
        try:
            yield from self._decode_multipart_message(response, stream)
        finally:
            response.close()

    # -- QIDO-RS ------------------------------------------------------------------------

    def _search(
        self,
        url: str,
        fuzzymatching: Optional[bool],
        limit: Optional[int],
        offset: Optional[int],
        fields: Optional[Sequence[str]],
        search_filters: Optional[Dict[str, Any]],
        get_remaining: bool,
        additional_params: Optional[Dict[str, Any]],
    ) -> List[Dict[str, dict]]:
        params = parse_query_parameters(fuzzymatching, limit, offset, fields, search_filters)
        params.update(additional_params or {})
        if not get_remaining:
            return self._search_page(url, params)
        results: List[Dict[str, dict]] = []
        start = params.get('offset', 0)
        previous_first = None
        while True:
            page_params = dict(params)
            page_params['offset'] = start + len(results)  # 0 too, as the established
            # package sends it; a limit is the size of each page
            page = self._search_page(url, page_params)
            if page and results and page[0] == previous_first:
                raise ValueError(
                    f'the server at {url} sent the same results again for a '
                    'higher offset; it seems to ignore "offset", so '
                    'get_remaining cannot page through its results'
                )
            results.extend(page)
            if not page:
                return results
            previous_first = page[0]

    def _search_page(self, url: str, params: Dict[str, Any]) -> List[Dict[str, dict]]:
        """One page of results.  A search of the whole archive that finds no such service
        (404) or gets something other than DICOM JSON most likely went to a URL that is
        not the DICOMweb root; the error then says so."""
        try:
            return _json_list(self._get_json(url, params), url)
        except (HTTPError, ValueError) as error:
            root = self._url('qido')
            if url.rpartition('/')[0] != root or getattr(error, 'status_code', 404) != 404:
                raise
            hint = (
                f'no DICOMweb search service answers at {_redact(root)}; check the '
                f'URL the client was given: Orthanc, for one, serves DICOMweb under '
                f'/dicom-web'
            )
            if isinstance(error, JSONDecodeError):
                raise _compatible(JSONDecodeError)(error.url, error.error, hint) from None
            if not isinstance(error, HTTPError):
                raise ValueError(f'{error} ({hint})') from None
            message = f'{error.message} ({hint})' if error.message else hint
            raise _compatible(HTTPError)(
                error.status_code, error.method, error.url, message, error.response
            ) from None

    def search_for_studies(
        self,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> List[Dict[str, dict]]:
        """Search for studies (QIDO-RS).

        Parameters
        ----------
        fuzzymatching: Union[bool, None], optional
            Ask the server for fuzzy matching of person names.
        limit: Union[int, None], optional
            Most results wanted.
        offset: Union[int, None], optional
            Results to skip.
        fields: Union[Sequence[str], None], optional
            Attributes (keywords or tags, or ``'all'``) to include in the results.
        search_filters: Union[Dict[str, Any], None], optional
            Matching attributes (keyword or tag) and values, e.g. ``{'PatientID': 'A*'}``;
            wildcards ``*`` and ``?``, date ranges like ``'20200101-20201231'`` and lists
            (sent as repeated parameters) are passed to the server.
        get_remaining: bool, optional
            Keep asking with increasing offsets until the server has no more results
            (for servers that cap the number of results per answer).
        additional_params: Union[Dict[str, Any], None], optional
            Extra query parameters.

        Returns
        -------
        List[Dict[str, dict]]
            Matching studies in DICOM JSON.

        """
        url = self._url('qido') + '/studies'
        return self._search(
            url,
            fuzzymatching,
            limit,
            offset,
            fields,
            search_filters,
            get_remaining,
            additional_params,
        )

    def search_for_series(
        self,
        study_instance_uid: Optional[str] = None,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> List[Dict[str, dict]]:
        """Search for series, of one study or of all (QIDO-RS).

        Parameters are those of :meth:`search_for_studies`, plus ``study_instance_uid``.

        Returns
        -------
        List[Dict[str, dict]]
            Matching series in DICOM JSON.

        """
        url = self._url('qido', study_instance_uid) + '/series'
        return self._search(
            url,
            fuzzymatching,
            limit,
            offset,
            fields,
            search_filters,
            get_remaining,
            additional_params,
        )

    def search_for_instances(
        self,
        study_instance_uid: Optional[str] = None,
        series_instance_uid: Optional[str] = None,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> List[Dict[str, dict]]:
        """Search for instances, of a study, a series or all (QIDO-RS).

        Parameters are those of :meth:`search_for_studies`, plus the UIDs.  A series UID
        without a study UID becomes a ``SeriesInstanceUID`` filter.

        Returns
        -------
        List[Dict[str, dict]]
            Matching instances in DICOM JSON.

        """
        if series_instance_uid is not None and study_instance_uid is None:
            _check_uid(series_instance_uid, 'series_instance_uid', self._permissive_uid)
            search_filters = {**(search_filters or {}), 'SeriesInstanceUID': series_instance_uid}
            series_instance_uid = None
        url = self._url('qido', study_instance_uid, series_instance_uid) + '/instances'
        return self._search(
            url,
            fuzzymatching,
            limit,
            offset,
            fields,
            search_filters,
            get_remaining,
            additional_params,
        )

    # -- WADO-RS: instances ---------------------------------------------------------------

    def _iter_instances(
        self,
        url: str,
        media_types: Optional[MediaTypes],
        additional_params: Optional[Dict[str, Any]],
    ) -> Iterator[Dataset]:
        parts = self._stream_parts(url, 'instances', media_types, additional_params)
        return (_decode_dataset(body) for body in parts)

    def _iter_instances_in_parallel(
        self,
        study_instance_uid: str,
        series_instance_uid: Optional[str],
        media_types: Optional[MediaTypes],
        additional_params: Optional[Dict[str, Any]],
        workers: int,
    ) -> Iterator[Dataset]:
        """List the instances with QIDO-RS, then fetch each on a pool of threads."""
        _accept('instances', media_types)
        session = self._session
        if isinstance(session, Session) and session.pool_maxsize < workers:
            session.pool_maxsize = workers  # else threads close and reopen connections
        found = self.search_for_instances(
            study_instance_uid,
            series_instance_uid,
            fields=['SeriesInstanceUID'],
            get_remaining=True,
        )
        keys = [
            (study_instance_uid, _first_value(item, '0020000E'), _first_value(item, '00080018'))
            for item in found
        ]
        return _ordered_map(
            lambda key: self.retrieve_instance(
                *key, media_types=media_types, additional_params=additional_params
            ),
            keys,
            workers,
        )

    def iter_study(
        self,
        study_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        workers: Optional[int] = None,
    ) -> Iterator[Dataset]:
        """Yield the instances of a study as they arrive (WADO-RS).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types with optional transfer syntax UIDs, e.g.
            ``(('application/dicom', '*'),)`` for the stored transfer syntax; by default
            the server sends Explicit VR Little Endian.
        additional_params: Union[Dict[str, Any], None], optional
            Extra query parameters.
        workers: Union[int, None], optional
            Opt-in parallel retrieval: list the instances with a search (QIDO-RS), then
            fetch them one request each over up to ``workers`` pooled connections.  Faster
            on servers with latency; instances still come in search order.

        Returns
        -------
        Iterator[pydicom.dataset.Dataset]
            The instances.

        """
        url = self._url('wado', study_instance_uid)
        if workers is not None and _parallel(workers):
            return self._iter_instances_in_parallel(
                study_instance_uid, None, media_types, additional_params, workers
            )
        return self._iter_instances(url, media_types, additional_params)

    def retrieve_study(
        self,
        study_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        workers: Optional[int] = None,
    ) -> List[Dataset]:
        """Retrieve the instances of a study (see :meth:`iter_study`).

        Returns
        -------
        List[pydicom.dataset.Dataset]
            The instances.

        """
        return list(
            self.iter_study(study_instance_uid, media_types, additional_params, workers=workers)
        )

    def iter_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        workers: Optional[int] = None,
    ) -> Iterator[Dataset]:
        """Yield the instances of a series as they arrive (see :meth:`iter_study`).

        Returns
        -------
        Iterator[pydicom.dataset.Dataset]
            The instances.

        """
        url = self._url('wado', study_instance_uid, series_instance_uid)
        if workers is not None and _parallel(workers):
            return self._iter_instances_in_parallel(
                study_instance_uid, series_instance_uid, media_types, additional_params, workers
            )
        return self._iter_instances(url, media_types, additional_params)

    def retrieve_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        workers: Optional[int] = None,
    ) -> List[Dataset]:
        """Retrieve the instances of a series (see :meth:`iter_study`).

        Returns
        -------
        List[pydicom.dataset.Dataset]
            The instances.

        """
        return list(
            self.iter_series(
                study_instance_uid,
                series_instance_uid,
                media_types,
                additional_params,
                workers=workers,
            )
        )

    def retrieve_instance(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> Dataset:
        """Retrieve one instance (see :meth:`iter_study` for ``media_types``).

        Returns
        -------
        pydicom.dataset.Dataset
            The instance.

        Raises
        ------
        MultipartError
            If the answer does not hold exactly one instance.

        """
        return _decode_dataset(
            self.retrieve_instance_file(
                study_instance_uid,
                series_instance_uid,
                sop_instance_uid,
                media_types,
                additional_params,
            )
        )

    def retrieve_instance_file(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve one instance as the server sent it: a DICOM file, byte for byte.

        Saving these bytes keeps the file exactly as the server holds it (nothing is
        decoded and encoded again, and it is quicker than :meth:`retrieve_instance`).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        series_instance_uid: str
            Series Instance UID.
        sop_instance_uid: str
            SOP Instance UID.
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types and transfer syntaxes, as for :meth:`retrieve_instance`.
        additional_params: Union[Dict[str, Any], None], optional
            Extra query parameters.

        Returns
        -------
        bytes
            The instance's part of the answer (normally a Part 10 file).

        Raises
        ------
        MultipartError
            If the answer holds another number of parts than one.

        """
        url = self._url('wado', study_instance_uid, series_instance_uid, sop_instance_uid)
        parts = list(self._stream_parts(url, 'instances', media_types, additional_params))
        if len(parts) != 1:
            raise MultipartError(f'expected one instance from {url}, got {len(parts)}')
        return parts[0]

    # -- WADO-RS: metadata ---------------------------------------------------------------

    def _get_metadata(
        self, url: str, params: Optional[Dict[str, Any]], media_type: str
    ) -> List[Dict[str, dict]]:
        if media_type == _DICOM_JSON:
            return _json_list(self._get_json(url, params), url)
        if media_type != _DICOM_XML:
            raise ValueError(
                f'media_type must be {_DICOM_JSON!r} or {_DICOM_XML!r}, not {media_type!r}'
            )
        parts = self._stream_parts(url, 'XML metadata', None, params)
        return [_xml_to_dicom_json(part) for part in parts]

    def retrieve_study_metadata(
        self,
        study_instance_uid: str,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        media_type: str = _DICOM_JSON,
    ) -> List[Dict[str, dict]]:
        """Retrieve the metadata of every instance of a study, in DICOM JSON.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        additional_params: Union[Dict[str, Any], None], optional
            Extra query parameters.
        media_type: str, optional
            What to ask the server for: ``application/dicom+json`` (default) or
            ``application/dicom+xml`` (converted to DICOM JSON here, for servers that
            offer only XML).

        Returns
        -------
        List[Dict[str, dict]]
            One item per instance; bulk data appear as ``BulkDataURI`` references.

        """
        url = self._url('wado', study_instance_uid, suffix='metadata')
        return self._get_metadata(url, additional_params, media_type)

    def retrieve_series_metadata(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        media_type: str = _DICOM_JSON,
    ) -> List[Dict[str, dict]]:
        """Retrieve the metadata of every instance of a series, in DICOM JSON.

        See :meth:`retrieve_study_metadata` for ``media_type``.

        Returns
        -------
        List[Dict[str, dict]]
            One item per instance.

        """
        url = self._url('wado', study_instance_uid, series_instance_uid, suffix='metadata')
        return self._get_metadata(url, additional_params, media_type)

    def retrieve_instance_metadata(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        media_type: str = _DICOM_JSON,
    ) -> Dict[str, dict]:
        """Retrieve the metadata of one instance, in DICOM JSON.

        See :meth:`retrieve_study_metadata` for ``media_type``.

        Returns
        -------
        Dict[str, dict]
            The metadata.

        """
        url = self._url(
            'wado', study_instance_uid, series_instance_uid, sop_instance_uid, suffix='metadata'
        )
        items = self._get_metadata(url, additional_params, media_type)
        if not items:
            raise NoMetadataError(f'expected the metadata of one instance from {url}, got none')
        if len(items) > 1:  # the first is used, as by the established package
            logger.warning(
                'expected the metadata of one instance from %s, got %d items; the first is used',
                url,
                len(items),
            )
        return items[0]

    # -- WADO-RS: frames and bulk data ---------------------------------------------------

    def iter_instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes] = None,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        workers: Optional[int] = None,
    ) -> Iterator[bytes]:
        """Yield frames of an instance as they arrive (WADO-RS).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        series_instance_uid: str
            Series Instance UID.
        sop_instance_uid: str
            SOP Instance UID.
        frame_numbers: Sequence[int]
            Frame numbers, counting from 1.
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types with optional transfer syntax UIDs, e.g.
            ``('image/jpeg',)`` or ``(('image/jp2', '1.2.840.10008.1.2.4.90'),)``;
            by default uncompressed ``application/octet-stream``.
        additional_params: Union[Dict[str, Any], None], optional
            Extra query parameters.
        workers: Union[int, None], optional
            Opt-in parallel retrieval: split the frame list into up to ``workers``
            requests sent over as many pooled connections; frames still come in order.

        Returns
        -------
        Iterator[bytes]
            One item per frame, in the order asked for.

        Raises
        ------
        MultipartError
            If the server sends another number of frames than asked for.

        """
        return self._instance_frames(
            study_instance_uid,
            series_instance_uid,
            sop_instance_uid,
            frame_numbers,
            media_types,
            additional_params,
            workers,
            parts_kept=False,
        )

    def _instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes],
        additional_params: Optional[Dict[str, Any]],
        workers: Optional[int],
        parts_kept: bool,
    ) -> Iterator[bytes]:
        frame_numbers = _check_frame_numbers(frame_numbers)
        url = self._url(
            'wado', study_instance_uid, series_instance_uid, sop_instance_uid, frame_numbers
        )
        if workers is not None and _parallel(workers) and len(frame_numbers) > 1:
            _accept('frames', media_types)
            size = -(-len(frame_numbers) // workers)
            groups = [frame_numbers[i : i + size] for i in range(0, len(frame_numbers), size)]
            batches = _ordered_map(
                lambda group: self.retrieve_instance_frames(
                    study_instance_uid,
                    series_instance_uid,
                    sop_instance_uid,
                    group,
                    media_types,
                    additional_params,
                ),
                groups,
                workers,
            )
            return (frame for batch in batches for frame in batch)
        parts = self._stream_parts(
            url, 'frames', media_types, additional_params, parts_kept=parts_kept
        )
        return _counted(parts, len(frame_numbers), f'frames from {url}')

    def retrieve_instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes] = None,
        additional_params: Optional[Dict[str, Any]] = None,
        *,
        workers: Optional[int] = None,
    ) -> List[bytes]:
        """Retrieve frames of an instance (see :meth:`iter_instance_frames`).

        Returns
        -------
        List[bytes]
            One item per frame, in the order asked for.

        """
        return list(
            self._instance_frames(
                study_instance_uid,
                series_instance_uid,
                sop_instance_uid,
                frame_numbers,
                media_types,
                additional_params,
                workers,
                parts_kept=True,
            )
        )

    def iter_bulkdata(
        self,
        url: str,
        media_types: Optional[MediaTypes] = None,
        byte_range: Optional[Tuple[int, int]] = None,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> Iterator[bytes]:
        """Yield the bulk data at a URL (a ``BulkDataURI`` from metadata) as it arrives.

        Parameters
        ----------
        url: str
            URL of the bulk data; a relative URL is taken relative to the service.
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types with optional transfer syntax UIDs.
        byte_range: Union[Tuple[int, int], None], optional
            First and last byte wanted (inclusive), sent as a ``Range`` field.
        additional_params: Union[Dict[str, Any], None], optional
            Extra query parameters.

        Returns
        -------
        Iterator[bytes]
            Bulk data items.

        """
        return self._bulkdata(url, media_types, byte_range, additional_params, parts_kept=False)

    def _bulkdata(
        self,
        url: str,
        media_types: Optional[MediaTypes],
        byte_range: Optional[Tuple[int, int]],
        additional_params: Optional[Dict[str, Any]],
        parts_kept: bool,
    ) -> Iterator[bytes]:
        headers = {'Range': _byte_range(byte_range)} if byte_range is not None else None
        return self._stream_parts(
            self._bulkdata_url(url), 'bulkdata', media_types, additional_params, headers, parts_kept
        )

    def retrieve_bulkdata(
        self,
        url: str,
        media_types: Optional[MediaTypes] = None,
        byte_range: Optional[Tuple[int, int]] = None,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> List[bytes]:
        """Retrieve the bulk data at a URL (see :meth:`iter_bulkdata`).

        Returns
        -------
        List[bytes]
            Bulk data items.

        """
        return list(
            self._bulkdata(url, media_types, byte_range, additional_params, parts_kept=True)
        )

    def _bulkdata_url(self, url: str) -> str:
        if not isinstance(url, str) or not url:
            raise TypeError(f'url must be a non-empty string, not {url!r}')
        if urllib.parse.urlsplit(url).scheme:
            return url
        return urllib.parse.urljoin(self.base_url + '/', url.lstrip('/'))

    # -- WADO-RS: rendered and thumbnails ------------------------------------------------

    def _get_image(
        self,
        url: str,
        resource: str,
        media_types: Optional[MediaTypes],
        params: Optional[Dict[str, Any]],
    ) -> bytes:
        accept, _ = _accept(resource, media_types)
        return self._request('GET', url, params=params, headers={'Accept': accept}).content

    def retrieve_instance_rendered(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve an instance rendered by the server (e.g. as JPEG or PNG).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        series_instance_uid: str
            Series Instance UID.
        sop_instance_uid: str
            SOP Instance UID.
        media_types: Union[Tuple[str, ...], None], optional
            Acceptable media types, e.g. ``('image/png',)``; ``image/jpeg`` by default.
        params: Union[Dict[str, Any], None], optional
            Rendering parameters, e.g. ``{'quality': 95}`` or ``{'viewport': '64,64'}``.

        Returns
        -------
        bytes
            The rendered image (or document).

        """
        url = self._url(
            'wado', study_instance_uid, series_instance_uid, sop_instance_uid, suffix='rendered'
        )
        return self._get_image(url, 'rendered', media_types, params)

    def retrieve_series_rendered(
        self,
        study_instance_uid,
        series_instance_uid,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve a series rendered by the server (see :meth:`retrieve_instance_rendered`).

        Returns
        -------
        bytes
            The rendered representation.

        """
        url = self._url('wado', study_instance_uid, series_instance_uid, suffix='rendered')
        return self._get_image(url, 'rendered', media_types, params)

    def retrieve_instance_frames_rendered(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve frames rendered by the server (see :meth:`retrieve_instance_rendered`).

        Returns
        -------
        bytes
            The rendered frames.

        """
        url = self._url(
            'wado',
            study_instance_uid,
            series_instance_uid,
            sop_instance_uid,
            frame_numbers,
            suffix='rendered',
        )
        return self._get_image(url, 'rendered frames', media_types, params)

    def retrieve_study_thumbnail(
        self,
        study_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve a small image that represents a study.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        media_types: Union[Tuple[str, ...], None], optional
            Acceptable image media types; ``image/jpeg`` by default.
        params: Union[Dict[str, Any], None], optional
            Parameters such as ``{'viewport': '64,64'}``.

        Returns
        -------
        bytes
            The image.

        """
        url = self._url('wado', study_instance_uid, suffix='thumbnail')
        return self._get_image(url, 'thumbnails', media_types, params)

    def retrieve_series_thumbnail(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve a small image that represents a series (see study thumbnails).

        Returns
        -------
        bytes
            The image.

        """
        url = self._url('wado', study_instance_uid, series_instance_uid, suffix='thumbnail')
        return self._get_image(url, 'thumbnails', media_types, params)

    def retrieve_instance_thumbnail(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve a small image that represents an instance (see study thumbnails).

        Returns
        -------
        bytes
            The image.

        """
        url = self._url(
            'wado', study_instance_uid, series_instance_uid, sop_instance_uid, suffix='thumbnail'
        )
        return self._get_image(url, 'thumbnails', media_types, params)

    def retrieve_instance_frames_thumbnail(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Retrieve a small image of frames of an instance (see study thumbnails).

        Returns
        -------
        bytes
            The image.

        """
        url = self._url(
            'wado',
            study_instance_uid,
            series_instance_uid,
            sop_instance_uid,
            frame_numbers,
            suffix='thumbnail',
        )
        return self._get_image(url, 'thumbnails', media_types, params)

    # -- STOW-RS and deletion ------------------------------------------------------------

    def store_instances(
        self,
        datasets: Sequence[Dataset],
        study_instance_uid: Optional[str] = None,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> Dataset:
        """Store instances on the server (STOW-RS), streaming them one by one.

        Parameters
        ----------
        datasets: Sequence[Union[pydicom.dataset.Dataset, str, os.PathLike, bytes, BinaryIO]]
            Instances to store: datasets, or Part 10 files as paths, bytes or seekable
            binary file objects (these are streamed from disk, never loaded whole).
            An empty sequence still sends a request, whose body has no parts.
        study_instance_uid: Union[str, None], optional
            Study the instances must belong to.
        additional_params: Union[Dict[str, Any], None], optional
            Extra query parameters.

        Returns
        -------
        pydicom.dataset.Dataset
            The server's report: ``ReferencedSOPSequence`` for stored instances and
            ``FailedSOPSequence`` for refused ones (a warning is logged for these).

        Raises
        ------
        HTTPError
            If the server refuses the request (e.g. 409 when no instance was stored).

        """
        if isinstance(datasets, (pydicom.Dataset, str, bytes, os.PathLike)):
            raise TypeError('datasets must be a sequence of instances, not a single one')
        parts = list(datasets)  # none: sent all the same, as the established package does
        url = self._url('stow') + '/studies'
        if study_instance_uid is not None:
            url = self._url('stow', study_instance_uid)
        body = MultipartBody(parts, 'application/dicom', self._chunk_size)
        response = self._request(
            'POST',
            url,
            params=additional_params,
            data=body,
            headers={'Content-Type': body.content_type, 'Accept': _DICOM_JSON},
        )
        return _store_report(response)

    def delete_study(
        self, study_instance_uid: str, additional_params: Optional[Dict[str, Any]] = None
    ) -> None:
        """Delete a study (not part of the standard; not every server allows it).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        additional_params: Union[Dict[str, Any], None], optional
            Extra query parameters.

        """
        _require_uids(study_instance_uid=study_instance_uid)
        self._request('DELETE', self._url('delete', study_instance_uid), params=additional_params)

    def delete_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Delete a series (not part of the standard; see :meth:`delete_study`)."""
        _require_uids(
            study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid
        )
        self._request(
            'DELETE',
            self._url('delete', study_instance_uid, series_instance_uid),
            params=additional_params,
        )

    def delete_instance(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        additional_params: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Delete an instance (not part of the standard; see :meth:`delete_study`)."""
        _require_uids(
            study_instance_uid=study_instance_uid,
            series_instance_uid=series_instance_uid,
            sop_instance_uid=sop_instance_uid,
        )
        self._request(
            'DELETE',
            self._url('delete', study_instance_uid, series_instance_uid, sop_instance_uid),
            params=additional_params,
        )


#: the client's own multipart hooks, to tell overridden or patched ones from them
_OWN_PART_HOOKS = {hook: vars(DICOMwebClient)[hook] for hook in _PART_HOOKS}


def _warn_ignored(uid: Optional[str], what: str, missing: str) -> None:
    """Log that a URL helper leaves ``uid`` out because the ``missing`` UID is ``None``."""
    if uid is not None:
        logger.warning('%s is ignored because %s is undefined', what, missing)


def _require_uids(**uids: Optional[str]) -> None:
    """Raise ``ValueError`` naming the first UID that is ``None`` (a delete without it
    would name a whole level above the one meant)."""
    for name, value in uids.items():
        if value is None:
            raise ValueError(f'{name} is required to delete it, got None')


def _parallel(workers: Optional[int]) -> bool:
    """Whether ``workers`` asks for parallel retrieval (checks its value)."""
    if workers is None:
        return False
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f'workers must be a positive integer, got {workers!r}')
    return workers > 1


def _ordered_map(
    function: Callable[[_T], _R], items: Sequence[_T], workers: int, ordered: bool = True
) -> Iterator[_R]:
    """Run ``function`` over ``items`` on ``workers`` threads; yield results in order.

    At most ``2 * workers`` results wait to be consumed, so memory stays bounded; closing
    the iterator early cancels the calls not yet started.  Unless ``ordered``, results are
    yielded as they are ready, so that one slow call does not hold up the threads once
    ``2 * workers`` calls wait behind it (the command line's downloads, whose calls write
    files and return nothing, want that).
    """
    import concurrent.futures  # imported here: only parallel retrieval needs it

    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix='dicomweb')
    pending: collections.deque = collections.deque()

    def next_result() -> _R:
        if ordered:
            return pending.popleft().result()
        done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        future = next(future for future in pending if future in done)
        pending.remove(future)
        return future.result()

    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                yield next_result()
        while pending:
            yield next_result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


def _first_value(item: Dict[str, dict], tag: str) -> Any:
    """The first value of an attribute of a DICOM JSON object; raises if missing."""
    try:
        return item[tag]['Value'][0]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f'a search result lacks attribute {tag}: {item!r}') from None


class NoMetadataError(ValueError, IndexError):
    """The server sent no metadata for an instance.

    Also an ``IndexError``, which the established package raises then.
    """


def _clean_prefix(prefix: Optional[str], name: str = 'url_prefix') -> Optional[str]:
    """The path segment of a ``*_url_prefix`` argument without slashes around it.

    ``None`` stays ``None``; an empty string is refused with ``ValueError`` (as by the
    established package), since it means neither "no prefix" nor a prefix.
    """
    if prefix is None:
        return None
    if prefix == '':
        raise ValueError(f'{name} must not be an empty string; pass None for no prefix')
    return prefix.strip('/') or None


def _checked_origins(origins: Optional[Iterable[str]]) -> List[str]:
    """The ``credential_origins`` argument as a list, after checking each entry.

    Parameters
    ----------
    origins: Union[Iterable[str], None]
        URLs of origins (``https://host:port``), or ``'*'`` for every origin.

    Returns
    -------
    List[str]
        The entries (none for ``None``).

    Raises
    ------
    TypeError
        If ``origins`` is a single string rather than a collection of them.
    ValueError
        If an entry is not an http(s) URL (nor ``'*'``).

    """
    if origins is None:
        return []
    if isinstance(origins, str):
        raise TypeError(
            f'credential_origins must be a collection of URLs, not a string; write [{origins!r}]'
        )
    checked = list(origins)
    for origin in checked:
        if origin != '*':
            try:
                _origin_of(origin if isinstance(origin, str) else repr(origin))
            except ValueError as error:
                raise ValueError(f'credential_origins: {error}') from None
    return checked


def _check_seconds(value: Any, name: str) -> None:
    """Refuse ``value`` unless it is a finite number of seconds, 0 or more.

    Parameters
    ----------
    value: Any
        The argument given.
    name: str
        Its name, for the error message.

    Raises
    ------
    ValueError
        If it is not such a number.

    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value < float('inf')
    ):
        raise ValueError(f'{name} must be a number of seconds, 0 or more, got {value!r}')


def _json_list(value: Any, url: str) -> List[Dict[str, dict]]:
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list) or not all(map(isinstance, value, itertools.repeat(dict))):
        raise ValueError(f'the answer from {url} is not a DICOM JSON array')
    return value


def _counted(items: Iterator[bytes], expected: int, what: str) -> Iterator[bytes]:
    """Pass items through, raising if their number differs from ``expected``."""
    count = 0
    for item in items:
        count += 1
        if count > expected:
            raise MultipartError(f'expected {expected} {what}, got more')
        yield item
    if count != expected:
        raise MultipartError(f'expected {expected} {what}, got {count}')


def _byte_range(byte_range: Tuple[int, int]) -> str:
    """The ``Range`` field value for an inclusive (first, last) byte range."""
    try:
        first, last = byte_range
    except (TypeError, ValueError):
        raise TypeError(f'byte_range must be a (first, last) pair, not {byte_range!r}') from None
    if (
        not isinstance(first, int)
        or first < 0
        or (last is not None and (not isinstance(last, int) or last < first))
    ):
        raise ValueError(
            f'byte_range must be two byte offsets with first <= last, got {byte_range!r}'
        )
    return f'bytes={first}-{"" if last is None else last}'


def _store_report(response: Response) -> Dataset:
    """The STOW-RS answer as a dataset; logs the instances the server refused."""
    if response.status_code == HTTPStatus.NO_CONTENT or not response.content.strip():
        return pydicom.Dataset()
    if response.content_type not in (_DICOM_JSON, 'application/json'):
        logger.warning(
            'store answer from %s is %s, not DICOM JSON; ignored',
            response.url,
            response.content_type,
        )
        return pydicom.Dataset()
    report = pydicom.Dataset.from_json(json.loads(response.content))
    failed = report.get('FailedSOPSequence')
    if failed:
        logger.warning(
            'the server refused %d of the instances sent to %s', len(failed), response.url
        )
    return report


# ---------------------------------------------------------------------------------------
# File client: the same API on a folder of DICOM Part 10 files, indexed with sqlite3
# ---------------------------------------------------------------------------------------

_STUDY, _SERIES, _INSTANCE = 0, 1, 2
_IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2'
# transfer syntaxes the header reader leaves to pydicom: deflated and big endian
_PYDICOM_SYNTAXES = frozenset({'1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2'})
_NATIVE_SYNTAXES = frozenset(
    {
        _IMPLICIT_VR_LITTLE_ENDIAN,
        _EXPLICIT_VR_LITTLE_ENDIAN,
        '1.2.840.10008.1.2.1.99',
        '1.2.840.10008.1.2.2',
    }
)
_INDEX_SCHEMA_VERSION = '4'
_INDEX_FILE_NAME = '.dicomweb_client.sqlite'
_PRIVATE_PREFIX = '.dwc-'  # temporary and to-be-deleted files written by the client
_BULK_DATA_THRESHOLD = 1024  # binary values longer than this become BulkDataURIs
_INDEX_BATCH_SIZE = 1000  # files per committed transaction while indexing
_POOL_THRESHOLD = 1500  # files to parse before a process pool pays off (forked workers)
_SPAWN_POOL_THRESHOLD = 20000  # the same for spawned workers, which start slowly
_POOL_CHUNK_SIZE = 250


@dataclass(frozen=True)
class _Column:
    """An attribute kept in its own index column (all others stay in the stored JSON)."""

    keyword: str
    tag: str
    vr: str
    level: int
    multiple: bool = False  # may hold several values: matched on the stored JSON

    @property
    def sql(self) -> str:
        return f'"{self.keyword}"'


_COLUMNS: Tuple[_Column, ...] = (
    _Column('SpecificCharacterSet', '00080005', 'CS', _STUDY, multiple=True),
    _Column('StudyDate', '00080020', 'DA', _STUDY),
    _Column('StudyTime', '00080030', 'TM', _STUDY),
    _Column('AccessionNumber', '00080050', 'SH', _STUDY),
    _Column('ReferringPhysicianName', '00080090', 'PN', _STUDY),
    _Column('TimezoneOffsetFromUTC', '00080201', 'SH', _STUDY),
    _Column('PatientName', '00100010', 'PN', _STUDY),
    _Column('PatientID', '00100020', 'LO', _STUDY),
    _Column('IssuerOfPatientID', '00100021', 'LO', _STUDY),
    _Column('PatientBirthDate', '00100030', 'DA', _STUDY),
    _Column('PatientSex', '00100040', 'CS', _STUDY),
    _Column('StudyInstanceUID', '0020000D', 'UI', _STUDY),
    _Column('StudyID', '00200010', 'SH', _STUDY),
    _Column('StudyDescription', '00081030', 'LO', _STUDY),
    _Column('Modality', '00080060', 'CS', _SERIES),
    _Column('SeriesInstanceUID', '0020000E', 'UI', _SERIES),
    _Column('SeriesNumber', '00200011', 'IS', _SERIES),
    _Column('SeriesDescription', '0008103E', 'LO', _SERIES),
    _Column('PerformedProcedureStepStartDate', '00400244', 'DA', _SERIES),
    _Column('PerformedProcedureStepStartTime', '00400245', 'TM', _SERIES),
    _Column('SOPClassUID', '00080016', 'UI', _INSTANCE),
    _Column('SOPInstanceUID', '00080018', 'UI', _INSTANCE),
    _Column('InstanceNumber', '00200013', 'IS', _INSTANCE),
    _Column('Rows', '00280010', 'US', _INSTANCE),
    _Column('Columns', '00280011', 'US', _INSTANCE),
    _Column('BitsAllocated', '00280100', 'US', _INSTANCE),
    _Column('NumberOfFrames', '00280008', 'IS', _INSTANCE),
    _Column('SamplesPerPixel', '00280002', 'US', _INSTANCE),
)
_COLUMNS_BY_TAG = {column.tag: column for column in _COLUMNS}
_NUMERIC_COLUMN_VRS = frozenset({'IS', 'US'})
_FOLDED_COLUMNS = tuple(column for column in _COLUMNS if column.vr == 'PN')
# columns of an instance row besides the attribute columns, in insertion order
_RECORD_FIELDS = (
    'transfer_syntax',
    'pixel_tag',
    'pixel_vr',
    'pixel_offset',
    'pixel_length',
    'metadata',
)
_RECORD_COLUMNS = (
    _RECORD_FIELDS
    + tuple(column.keyword for column in _COLUMNS)
    + tuple(f'{column.keyword}_fold' for column in _FOLDED_COLUMNS)
)
_FOLDED_POSITIONS = tuple(_COLUMNS.index(column) for column in _FOLDED_COLUMNS)
#: the preset dictionary of the compressed metadata kept in the index: the way the column
#: attributes and common values start in DICOM JSON, so that even one instance's metadata
#: compresses well (a change of the columns changes the schema version, so an index is
#: never read with another dictionary than it was written with)
_METADATA_DICTIONARY = '}]},'.join(
    [
        '"BulkDataURI":"bulkdata/',
        '{"Alphabetic":"',
        '"1.2.840.10008.5.1.4.1.1.',
        '"1.2.840.10008.1.2',
        '"ISO_IR 100"',
        '"1.2.826.0.1.3680043.',
    ]
    + [
        f'"{column.tag}":{{"vr":"{column.vr}","Value":['
        + ('' if column.vr in _NUMERIC_COLUMN_VRS else '"')
        for column in sorted(_COLUMNS, key=lambda column: column.tag, reverse=True)
    ]
).encode('ascii')
# where the UIDs are in a record (see _index_record)
_RECORD_STUDY, _RECORD_SERIES, _RECORD_SOP = (
    len(_RECORD_FIELDS) + [column.keyword for column in _COLUMNS].index(keyword)
    for keyword in ('StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID')
)

# attributes answered from aggregates: keyword -> (VR, level)
_COMPUTED = {
    'ModalitiesInStudy': ('CS', _STUDY),
    'NumberOfStudyRelatedSeries': ('IS', _STUDY),
    'NumberOfStudyRelatedInstances': ('IS', _STUDY),
    'NumberOfSeriesRelatedInstances': ('IS', _SERIES),
    'AvailableTransferSyntaxUID': ('UI', _INSTANCE),
    'RetrieveURL': ('UR', _STUDY),
}
_COMPUTED_BY_TAG = {
    '00080061': 'ModalitiesInStudy',
    '00201206': 'NumberOfStudyRelatedSeries',
    '00201208': 'NumberOfStudyRelatedInstances',
    '00201209': 'NumberOfSeriesRelatedInstances',
    '00083002': 'AvailableTransferSyntaxUID',
    '00081190': 'RetrieveURL',
}
# aggregate columns: keyword -> (table, column, key column)
_AGGREGATES = {
    'ModalitiesInStudy': ('studies', 'modalities', 'StudyInstanceUID'),
    'NumberOfStudyRelatedSeries': ('studies', 'n_series', 'StudyInstanceUID'),
    'NumberOfStudyRelatedInstances': ('studies', 'n_instances', 'StudyInstanceUID'),
    'NumberOfSeriesRelatedInstances': ('series', 'n_instances', 'SeriesInstanceUID'),
}

# what a search answers at each level (PS3.18 Tables 10.6.3-3 to 10.6.3-5): keyword ->
# whether the attribute is always there (empty when unknown, like a Type 2 return key)
# rather than only when known; a series or instance search also answers the attributes
# of the levels above that its resource is not scoped to (PS3.18 10.6.3.3)
_RESULT_ATTRIBUTES: Dict[int, Tuple[Tuple[str, bool], ...]] = {
    _STUDY: (
        ('StudyDate', True),
        ('StudyTime', True),
        ('AccessionNumber', True),
        ('ModalitiesInStudy', True),
        ('ReferringPhysicianName', True),
        ('PatientName', True),
        ('PatientID', True),
        ('PatientBirthDate', True),
        ('PatientSex', True),
        ('StudyInstanceUID', True),
        ('StudyID', True),
        ('NumberOfStudyRelatedSeries', True),
        ('NumberOfStudyRelatedInstances', True),
    ),
    _SERIES: (
        ('Modality', True),
        ('SeriesDescription', False),
        ('SeriesInstanceUID', True),
        ('SeriesNumber', True),
        ('NumberOfSeriesRelatedInstances', True),
        ('PerformedProcedureStepStartDate', False),
        ('PerformedProcedureStepStartTime', False),
    ),
    _INSTANCE: (
        ('SOPClassUID', True),
        ('SOPInstanceUID', True),
        ('InstanceNumber', True),
        ('Rows', True),
        ('Columns', True),
        ('BitsAllocated', True),
        ('NumberOfFrames', True),
    ),
}
# answered at every level when known (besides the Retrieve URL)
_RESULT_ATTRIBUTES_IF_KNOWN = ('SpecificCharacterSet', 'TimezoneOffsetFromUTC')

# attributes of the patient and study (besides group 0010) and of the series, which decide
# where a filter on an attribute without index column is evaluated and what
# includefield=all returns at each level
_STUDY_KEYWORDS = frozenset(
    {
        'StudyInstanceUID',
        'StudyDate',
        'StudyTime',
        'ReferringPhysicianName',
        'StudyID',
        'AccessionNumber',
        'IssuerOfAccessionNumberSequence',
        'StudyDescription',
        'PhysiciansOfRecord',
        'NameOfPhysiciansReadingStudy',
        'ProcedureCodeSequence',
        'ReferencedStudySequence',
        'RequestingServiceCodeSequence',
        'AdmittingDiagnosesDescription',
        'ReasonForPerformedProcedureCodeSequence',
        'TimezoneOffsetFromUTC',
        'SpecificCharacterSet',
        'StudyIDIssuer',
        'OtherStudyNumbers',
    }
)
_SERIES_KEYWORDS = frozenset(
    {
        'Modality',
        'SeriesInstanceUID',
        'SeriesNumber',
        'SeriesDescription',
        'SeriesDate',
        'SeriesTime',
        'Laterality',
        'BodyPartExamined',
        'ProtocolName',
        'OperatorsName',
        'PerformingPhysicianName',
        'PatientPosition',
        'PerformedProcedureStepStartDate',
        'PerformedProcedureStepStartTime',
        'PerformedProcedureStepID',
        'PerformedProcedureStepDescription',
        'RequestAttributesSequence',
        'SeriesDescriptionCodeSequence',
        'Manufacturer',
        'InstitutionName',
        'InstitutionAddress',
        'StationName',
        'InstitutionalDepartmentName',
        'ManufacturerModelName',
        'DeviceSerialNumber',
        'SoftwareVersions',
        'FrameOfReferenceUID',
        'PositionReferenceIndicator',
        'AnatomicalOrientationType',
        'SmallestPixelValueInSeries',
        'LargestPixelValueInSeries',
    }
)


def _level_of(tag: str) -> int:
    """The information model level an attribute (eight hex digit tag) belongs to."""
    column = _COLUMNS_BY_TAG.get(tag)
    if column is not None:
        return column.level
    if tag.startswith('0010'):
        return _STUDY
    keyword = _keyword_for_tag(int(tag, 16))
    if keyword in _STUDY_KEYWORDS:
        return _STUDY
    if keyword in _SERIES_KEYWORDS:
        return _SERIES
    return _INSTANCE


# -- errors --------------------------------------------------------------------------------


class FileClientNotFoundError(HTTPError, FileNotFoundError):
    """The archive holds no such study, series, instance or bulk data (like HTTP 404)."""


class ArchiveNotFoundError(FileNotFoundError, sqlite3.OperationalError):
    """The folder a :class:`DICOMfileClient` is opened on does not exist (and it was not
    asked to create it).  It is also the ``sqlite3.OperationalError`` the established
    package raises there."""


class OutsideArchiveError(FileNotFoundError):
    """Symbolic links lead an indexed path out of the archive: it is not read there."""


class FileClientReadOnlyError(HTTPError, PermissionError):
    """The client was opened with ``readonly=True`` (like HTTP 403)."""


class FileClientStoreError(HTTPError, ValueError):
    """No instance of a store request could be stored (like HTTP 409)."""


class FileClientValueError(OSError, ValueError):
    """An argument with a value the file client cannot use (the established package
    raises an ``OSError`` for it)."""


class FileClientTypeError(OSError, TypeError):
    """An argument of a type the file client does not take (the established package
    raises an ``OSError`` for it)."""


class FileClientMissingUIDError(OSError, TypeError, ValueError):
    """A UID a deletion needs is ``None`` (the established package raises ``ValueError``
    there, other methods here ``TypeError`` for a UID that is no string)."""


class FileClientNotAcceptableError(HTTPError, ValueError):
    """No acceptable media type or transfer syntax can be made of the data (like HTTP 406)."""


def _file_error(error_class: type, status: int, method: str, url: str, message: str) -> HTTPError:
    """An error that is both an :class:`HTTPError` and a Python built-in error (and
    ``requests``' HTTPError when the program has imported it, as the established file
    client raises)."""
    error = _compatible(error_class)(status, method, url, message)
    error.args = (message,)
    return error


_Method = TypeVar('_Method', bound=Callable[..., Any])


def _as_request_errors(method: _Method) -> _Method:
    """Raise the ``ValueError`` and ``TypeError`` of a public method as ``OSError`` too.

    The established package reports every failure of its file client as an HTTP error
    (an ``OSError``); here such errors are ``OSError`` as well and keep their built-in
    class, so ``except ValueError`` and ``except OSError`` both work.  They are not
    :class:`HTTPError`: those stand for what a server would answer (404, 406, ...).

    Parameters
    ----------
    method: Callable
        A public method of :class:`DICOMfileClient`.

    Returns
    -------
    Callable
        The method, raising the converted errors (chained to the original ones).

    """

    @functools.wraps(method)
    def wrapper(self: 'DICOMfileClient', *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OSError:
            raise
        except TypeError as error:
            raise FileClientTypeError(str(error)) from error
        except ValueError as error:
            raise FileClientValueError(str(error)) from error

    return cast(_Method, wrapper)


# -- reading the header of a Part 10 file into DICOM JSON -----------------------------------

_UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM_TAG, _ITEM_END_TAG, _SEQUENCE_END_TAG = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA_TAG = 0x7FE00010
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, _PIXEL_DATA_TAG})
_PIXEL_TAG_VRS = {0x7FE00008: 'OF', 0x7FE00009: 'OD'}
_KNOWN_VRS = (
    'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV '
    'TM UC UI UL UN UR US UT UV'
).split()
_VR_BY_BYTES = {vr.encode('ascii'): vr for vr in _KNOWN_VRS}
_KNOWN_VR_SET = frozenset(_KNOWN_VRS)
_LONG_VRS = frozenset('OB OD OF OL OV OW SQ SV UC UN UR UT UV'.split())
_BINARY_VRS = frozenset('OB OD OF OL OV OW UN'.split())
_NUMBER_FORMATS = {
    'US': ('H', 2),
    'SS': ('h', 2),
    'UL': ('I', 4),
    'SL': ('i', 4),
    'FL': ('f', 4),
    'FD': ('d', 8),
    'SV': ('q', 8),
    'UV': ('Q', 8),
}
_SINGLE_TEXT_VRS = frozenset({'LT', 'ST', 'UT', 'UR'})
_CHARSET_VRS = frozenset({'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT'})
_AMBIGUOUS_VRS = {'OB or OW': 'OW', 'US or OW': 'OW', 'US or SS or OW': 'OW'}
_TAG_STRUCT = struct.Struct('<HH')
_UINT16 = struct.Struct('<H')
_UINT32 = struct.Struct('<I')
_ITEM_STRUCT = struct.Struct('<HHI')
_HEADER_CHUNK = 1 << 16


class _NeedMore(Exception):
    """The header goes on beyond the bytes read so far."""


class _Unsupported(Exception):
    """The fast header reader cannot decode this file; pydicom reads it instead."""


class _NotIndexable(Exception):
    """The file is not a DICOM Part 10 instance the index can hold."""


@dataclass
class _Header:
    """What indexing keeps of a file: its metadata, transfer syntax and pixel data place."""

    metadata: Dict[str, dict]
    transfer_syntax: str
    pixel_tag: Optional[int] = None
    pixel_vr: Optional[str] = None
    pixel_offset: Optional[int] = None  # file offset of the pixel data value
    pixel_length: Optional[int] = None  # its length, -1 when encapsulated (undefined)


_VR_CACHE: Dict[Tuple[int, str], str] = {}


def _implicit_vr(tag: int, creator: str, pixel_representation: int) -> str:
    """The VR of an element in Implicit VR encoding, from pydicom's data dictionaries."""
    vr = _VR_CACHE.get((tag, creator))
    if vr is None:
        group, element = tag >> 16, tag & 0xFFFF
        if element == 0:
            vr = 'UL'
        elif group % 2 and 0x10 <= element <= 0xFF:
            vr = 'LO'
        elif group % 2:
            vr = 'UN'
            if creator:
                with contextlib.suppress(KeyError):
                    vr = pydicom.datadict.private_dictionary_VR(tag, creator)
        else:
            try:
                vr = pydicom.datadict.dictionary_VR(tag)
            except KeyError:
                vr = 'UN'
        vr = _AMBIGUOUS_VRS.get(vr, vr)
        _VR_CACHE[(tag, creator)] = vr
    if vr == 'US or SS':
        return 'SS' if pixel_representation == 1 else 'US'
    return vr if vr in _KNOWN_VR_SET else 'UN'


def _encoding_of(terms: Sequence[str]) -> str:
    """The Python codec of a Specific Character Set the fast reader can decode."""
    names = {term.strip() for term in terms} - {''}
    if not names or names == {'ISO_IR 6'}:
        return 'latin_1'
    if len(names) == 1:
        name = names.pop()
        codec = pydicom.charset.python_encoding.get(name)
        if codec and not name.startswith('ISO 2022'):
            return codec
    raise _Unsupported(f'character set {sorted(names)}')


def _person_name_json(text: str) -> Dict[str, str]:
    if '=' not in text:
        return {'Alphabetic': text} if text else {}
    groups = text.split('=')
    return {
        name: group
        for name, group in zip(('Alphabetic', 'Ideographic', 'Phonetic'), groups)
        if group
    }


def _number(text: str, integer: bool) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        try:
            return int(float(text)) if integer else text
        except ValueError:
            return text


class _HeaderReader:
    """Decode a data set, up to its pixel data, into DICOM JSON (PS3.18 Annex F).

    Handles little endian data sets, explicit or implicit VR, with single-byte or UTF-8
    character sets; raises :class:`_Unsupported` for anything else (pydicom reads those).
    Binary values longer than the bulk data threshold become ``BulkDataURI`` entries
    holding a path relative to the instance (``bulkdata/<tag>[/<item>/<tag>...]``).
    """

    def __init__(self, buffer: bytes, complete: bool, implicit: bool) -> None:
        self.buffer = buffer
        self.complete = complete
        self.implicit = implicit
        self.encoding = 'latin_1'
        self.pixel_representation = 0
        self.pixel: Optional[Tuple[int, str, int, int]] = None

    def need(self, end: int) -> None:
        """Raise unless the buffer reaches ``end``."""
        if end > len(self.buffer):
            raise _Unsupported('truncated data set') if self.complete else _NeedMore()

    def read(self, position: int, end: Optional[int], path: str) -> Tuple[Dict[str, dict], int]:
        """Read the elements from ``position`` up to ``end`` (or an item delimiter)."""
        buffer, top = self.buffer, not path
        result: Dict[str, dict] = {}
        creators: Dict[int, str] = {}
        size = len(buffer)
        while end is None or position < end:
            if position + 8 > size:
                if top and position >= size and self.complete:
                    break
                self.need(position + 8)
            group, number = _TAG_STRUCT.unpack_from(buffer, position)
            tag = group << 16 | number
            if tag == _ITEM_END_TAG and not top:
                return result, position + 8
            if top and tag in _PIXEL_TAGS:
                self.note_pixel_data(tag, position)
                break
            vr, length, position = self.element_header(tag, position, creators)
            key = f'{tag:08X}'
            if vr == 'SQ':
                items, position = self.read_sequence(position, length, f'{path}{key}/')
                result[key] = {'vr': 'SQ', 'Value': items} if items else {'vr': 'SQ'}
                continue
            if length == _UNDEFINED_LENGTH:
                raise _Unsupported(f'undefined length of {key}')
            if position + length > size:
                self.need(position + length)
            value = buffer[position : position + length]
            position += length
            result[key] = self.element(tag, vr, value, path + key)
            if group % 2 and 0x10 <= number <= 0xFF:
                creators[number] = result[key].get('Value', [''])[0]
        return result, position

    def element_header(
        self, tag: int, position: int, creators: Dict[int, str]
    ) -> Tuple[str, int, int]:
        """The VR and length of an element, and where its value starts."""
        buffer = self.buffer
        vr: Optional[str]
        if self.implicit:
            length = _UINT32.unpack_from(buffer, position + 4)[0]
            creator = creators.get((tag & 0xFFFF) >> 8, '') if tag >> 16 & 1 else ''
            vr = _implicit_vr(tag, creator, self.pixel_representation)
            if length == _UNDEFINED_LENGTH:
                vr = 'SQ'
            return vr, length, position + 8
        vr = _VR_BY_BYTES.get(buffer[position + 4 : position + 6])
        if vr is None:
            raise _Unsupported(f'unknown VR at offset {position}')
        if vr in _LONG_VRS:
            if position + 12 > len(buffer):
                self.need(position + 12)
            length = _UINT32.unpack_from(buffer, position + 8)[0]
            if vr == 'UN':
                vr = self.known_vr(tag, length)
            return vr, length, position + 12
        return vr, _UINT16.unpack_from(buffer, position + 6)[0], position + 8

    def known_vr(self, tag: int, length: int) -> str:
        """The dictionary VR of a public element sent as UN (as pydicom replaces it)."""
        vr = 'UN' if tag >> 16 & 1 else _implicit_vr(tag, '', self.pixel_representation)
        if length == _UNDEFINED_LENGTH or vr == 'SQ':
            raise _Unsupported('sequence of unknown VR')
        return vr

    def read_sequence(self, position: int, length: int, path: str) -> Tuple[list, int]:
        """Read the items of a sequence."""
        end = None if length == _UNDEFINED_LENGTH else position + length
        items: List[Dict[str, dict]] = []
        while end is None or position < end:
            self.need(position + 8)
            group, number, item_length = _ITEM_STRUCT.unpack_from(self.buffer, position)
            tag = group << 16 | number
            if tag == _SEQUENCE_END_TAG:
                return items, position + 8
            if tag != _ITEM_TAG:
                raise _Unsupported(f'no item in a sequence at offset {position}')
            position += 8
            item_end = None if item_length == _UNDEFINED_LENGTH else position + item_length
            item, position = self.read(position, item_end, f'{path}{len(items)}/')
            items.append(item)
        return items, position

    def element(self, tag: int, vr: str, value: bytes, path: str) -> Dict[str, Any]:
        """One element in DICOM JSON."""
        if not value:
            return {'vr': vr}
        number_format = _NUMBER_FORMATS.get(vr)
        if number_format is not None:
            code, size = number_format
            numbers = list(struct.unpack_from(f'<{len(value) // size}{code}', value))
            if tag == 0x00280103:
                self.pixel_representation = numbers[0]
            return {'vr': vr, 'Value': numbers}
        if vr in _BINARY_VRS:
            if len(value) > _BULK_DATA_THRESHOLD:
                return {'vr': vr, 'BulkDataURI': f'bulkdata/{path}'}
            return {'vr': vr, 'InlineBinary': base64.b64encode(value).decode('ascii')}
        if vr == 'AT':
            pairs = struct.unpack_from(f'<{len(value) // 2}H', value)
            return {
                'vr': vr,
                'Value': [f'{pairs[i]:04X}{pairs[i + 1]:04X}' for i in range(0, len(pairs) - 1, 2)],
            }
        return self.text_element(tag, vr, value, path)

    def text_element(self, tag: int, vr: str, value: bytes, path: str) -> Dict[str, Any]:
        """A string element in DICOM JSON."""
        try:
            text = value.decode(self.encoding if vr in _CHARSET_VRS else 'latin_1')
        except (UnicodeDecodeError, LookupError):
            raise _Unsupported(f'{vr} value not in {self.encoding}') from None
        text = text.rstrip(' \x00') if vr != 'UR' else text.rstrip()
        if not text:
            return {'vr': vr}
        if vr in _SINGLE_TEXT_VRS:
            return {'vr': vr, 'Value': [text]}
        parts = text.split('\\')
        if tag == 0x00080005:
            encoding = _encoding_of(parts)
            if path != '00080005' and encoding != self.encoding:
                raise _Unsupported('character set changes within the data set')
            self.encoding = encoding
        if vr == 'PN':
            return {'vr': vr, 'Value': [_person_name_json(part) for part in parts]}
        if vr in ('DS', 'IS'):
            return {'vr': vr, 'Value': [_number(part, vr == 'IS') for part in parts]}
        if vr == 'AE':
            parts = [part.strip() for part in parts]
        return {'vr': vr, 'Value': parts}

    def note_pixel_data(self, tag: int, position: int) -> None:
        """Remember where the pixel data element is; reading stops there."""
        self.need(position + 12)
        if self.implicit:
            length = _UINT32.unpack_from(self.buffer, position + 4)[0]
            self.pixel = (tag, _PIXEL_TAG_VRS.get(tag, 'OW'), position + 8, length)
            return
        vr = _VR_BY_BYTES.get(self.buffer[position + 4 : position + 6], 'OB')
        length = _UINT32.unpack_from(self.buffer, position + 8)[0]
        self.pixel = (tag, vr, position + 12, length)


def _read_file_meta(buffer: bytes, complete: bool) -> Tuple[int, str]:
    """Skip the preamble and File Meta Information; return where the data set starts."""
    if len(buffer) < 132 or buffer[128:132] != b'DICM':
        raise _NotIndexable('not a DICOM Part 10 file (no "DICM" prefix)')
    reader = _HeaderReader(buffer, complete, False)
    position, transfer_syntax = 132, None
    while True:
        reader.need(position + 8)
        group, number = _TAG_STRUCT.unpack_from(buffer, position)
        if group != 2:
            break
        vr, length, start = reader.element_header(group << 16 | number, position, {})
        reader.need(start + length)
        if number == 0x0010:
            transfer_syntax = buffer[start : start + length].decode('latin_1').rstrip(' \x00')
        position = start + length
    if not transfer_syntax:
        raise _Unsupported('no transfer syntax in the file meta information')
    return position, transfer_syntax


def _parse_part10(buffer: bytes, complete: bool) -> _Header:
    """Read a Part 10 file (or its beginning) with the fast header reader."""
    position, transfer_syntax = _read_file_meta(buffer, complete)
    if transfer_syntax in _PYDICOM_SYNTAXES:
        raise _Unsupported(f'transfer syntax {transfer_syntax}')
    reader = _HeaderReader(buffer, complete, transfer_syntax == _IMPLICIT_VR_LITTLE_ENDIAN)
    metadata, _ = reader.read(position, None, '')
    header = _Header(metadata, transfer_syntax)
    if reader.pixel is not None:
        tag, vr, offset, length = reader.pixel
        if reader.implicit and tag == _PIXEL_DATA_TAG:
            bits = metadata.get('00280100', {}).get('Value', [16])[0]
            vr = 'OB' if isinstance(bits, int) and bits <= 8 else 'OW'
        encapsulated = length == _UNDEFINED_LENGTH
        header.pixel_tag, header.pixel_vr, header.pixel_offset = tag, vr, offset
        header.pixel_length = -1 if encapsulated else length
    return header


def _bulk_data_placeholder(element: Any) -> str:
    return f'bulkdata/{element.tag:08X}'


def _parse_with_pydicom(source: Union[str, bytes]) -> _Header:
    """Read a file pydicom's way (deflated, big endian, unusual character sets...)."""
    handle = open(source, 'rb') if isinstance(source, str) else io.BytesIO(source)
    with handle:
        try:
            dataset = pydicom.dcmread(handle, defer_size=_BULK_DATA_THRESHOLD)
        except pydicom.errors.InvalidDicomError as error:
            raise _NotIndexable(f'not a DICOM Part 10 file ({error})') from None
        transfer_syntax = str(dataset.file_meta.get('TransferSyntaxUID', ''))
        header = _Header({}, transfer_syntax or _EXPLICIT_VR_LITTLE_ENDIAN)
        for tag in sorted(_PIXEL_TAGS):
            if tag in dataset:
                header.pixel_tag, header.pixel_vr = tag, dataset[tag].VR
        for tag in [tag for tag in dataset.keys() if tag >= 0x7FE00008]:
            del dataset[tag]  # pixel data and what follows (trailing padding)
        header.metadata = dataset.to_json_dict(
            _BULK_DATA_THRESHOLD, _bulk_data_placeholder, suppress_invalid_tags=True
        )
    return header


def _read_header(path: str) -> Tuple[int, int, _Header]:
    """Size, modification time and header of a file; raises :class:`_NotIndexable`."""
    with open(path, 'rb') as handle:
        status = os.fstat(handle.fileno())
        buffer = handle.read(_HEADER_CHUNK)
        complete = len(buffer) < _HEADER_CHUNK
        try:
            try:
                header = _parse_part10(buffer, complete)
            except _NeedMore:
                header = _parse_part10(buffer + handle.read(), True)
        except (_Unsupported, struct.error):
            header = _parse_with_pydicom(path)
    return status.st_size, status.st_mtime_ns, header


def _parse_buffer(data: bytes) -> _Header:
    """The header of a Part 10 file held in memory."""
    try:
        return _parse_part10(data, True)
    except (_Unsupported, struct.error):
        return _parse_with_pydicom(data)


def _json_first_value(metadata: Dict[str, dict], tag: str) -> Any:
    values = metadata.get(tag, {}).get('Value')
    return values[0] if values else None


def _person_name_text(value: Any) -> str:
    if isinstance(value, dict):
        return '='.join(
            value.get(group, '') for group in ('Alphabetic', 'Ideographic', 'Phonetic')
        ).rstrip('=')
    return '' if value is None else str(value)


def _column_value(column: _Column, element: Optional[dict]) -> Any:
    """The index column value of an element: text joined by backslashes, or an integer."""
    if element is None:
        return None
    values = element.get('Value')
    if column.vr in _NUMERIC_COLUMN_VRS:
        try:
            return int(values[0]) if values else None
        except (TypeError, ValueError):
            return None
    if not values:
        return ''
    if column.vr == 'PN':
        return '\\'.join(_person_name_text(value) for value in values)
    text = '\\'.join('' if value is None else str(value) for value in values)
    return text.replace('.', '') if column.vr == 'DA' else text


def _index_record(header: _Header) -> tuple:
    """The values of an instance row (see ``_RECORD_COLUMNS``); raises if UIDs lack."""
    metadata = header.metadata
    for keyword, tag in (
        ('StudyInstanceUID', '0020000D'),
        ('SeriesInstanceUID', '0020000E'),
        ('SOPInstanceUID', '00080018'),
    ):
        value = _json_first_value(metadata, tag)
        if not isinstance(value, str) or not value:
            raise _NotIndexable(f'no {keyword}')
    values = [_column_value(column, metadata.get(column.tag)) for column in _COLUMNS]
    folded = [
        None if values[position] is None else values[position].casefold()
        for position in _FOLDED_POSITIONS
    ]
    try:
        text = json.dumps(metadata, separators=(',', ':'), allow_nan=False, default=str)
    except ValueError:  # NaN or infinity, which JSON cannot hold
        text = json.dumps(_finite(metadata), separators=(',', ':'), default=str)
    return (
        header.transfer_syntax,
        header.pixel_tag,
        header.pixel_vr,
        header.pixel_offset,
        header.pixel_length,
        _pack_metadata(text),
        *values,
        *folded,
    )


def _pack_metadata(text: str) -> bytes:
    """Metadata (DICOM JSON text) compressed as the index keeps it: a fifth to a tenth
    of its size, with :data:`_METADATA_DICTIONARY`."""
    packer = zlib.compressobj(6, zdict=_METADATA_DICTIONARY)
    return packer.compress(text.encode('utf-8', 'surrogatepass')) + packer.flush()


def _unpack_metadata(blob: bytes) -> str:
    """The DICOM JSON text of metadata kept in the index (see :func:`_pack_metadata`)."""
    unpacker = zlib.decompressobj(zdict=_METADATA_DICTIONARY)
    return (unpacker.decompress(blob) + unpacker.flush()).decode('utf-8', 'surrogatepass')


class _ElementReader:
    """The SQL function ``_dwc_element(metadata, tag)``: the DICOM JSON (text) of one
    top-level element of compressed metadata, or NULL.

    It keeps the last document it unpacked, since a row is asked for several elements in
    a row (one per criterion or returned attribute that is no column).
    """

    def __init__(self) -> None:
        self.blob: Optional[bytes] = None
        self.document: Dict[str, Any] = {}

    def __call__(self, blob: Optional[bytes], tag: str) -> Optional[str]:
        element = self.element(blob, tag)
        return None if element is None else json.dumps(element)

    def element(self, blob: Optional[bytes], tag: str) -> Optional[Dict[str, Any]]:
        """The element ``tag`` of compressed metadata, or ``None``."""
        if blob is None:
            return None
        if blob != self.blob:
            self.document = json.loads(_unpack_metadata(blob))
            self.blob = blob
        return self.document.get(tag)


def _finite(value: Any) -> Any:
    """DICOM JSON with NaN and infinite numbers replaced by ``None``."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, float) and value - value != 0:
        return None
    return value


class _FileRecord(NamedTuple):
    """What reading one file gave: its state, and its index record or why it has none.

    A tuple, so that worker processes send it back cheaply.
    """

    path: str  # relative to the archive
    size: Optional[int]  # None: the file could not be read at all
    mtime_ns: Optional[int]
    record: Optional[tuple]  # the values of _RECORD_COLUMNS; None: not indexable
    problem: Optional[str]  # why there is no record


def _read_records(root: str, paths: Sequence[str]) -> List[_FileRecord]:
    """The :class:`_FileRecord` of each file of ``paths`` that still exists.

    Runs in worker processes too, so it takes and returns only plain values.  What
    pydicom warns about while reading a file (a VR that does not match, say) is logged
    for that file at debug level rather than printed: the file is indexed or skipped
    all the same, and skipped files are logged.
    """
    results: List[_FileRecord] = []
    for relative in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            result = _read_record(root, relative)
        for warning in caught:
            logger.debug('%s: pydicom warns: %s', relative, warning.message)
        if result is not None:
            results.append(result)
    return results


def _read_record(root: str, relative: str) -> Optional[_FileRecord]:
    """The index record of one file (see :func:`_read_records`); ``None`` if it is gone."""
    path = os.path.join(root, *relative.split('/'))
    size: Optional[int]
    mtime: Optional[int]
    try:
        size, mtime, header = _read_header(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        return _FileRecord(relative, None, None, None, f'unreadable ({error})')
    except Exception as error:  # noqa: BLE001 - any damage makes a file unindexable
        size, mtime = _size_and_mtime(path)
        return _FileRecord(relative, size, mtime, None, str(error) or type(error).__name__)
    try:
        return _FileRecord(relative, size, mtime, _index_record(header), None)
    except (_NotIndexable, ValueError, TypeError) as error:
        return _FileRecord(relative, size, mtime, None, str(error))


def _size_and_mtime(path: str) -> Tuple[Optional[int], Optional[int]]:
    try:
        status = os.stat(path)
    except OSError:
        return None, None
    return status.st_size, status.st_mtime_ns


# -- search: matching keys compiled to SQL and to a test on DICOM JSON ----------------------

_DATE_PATTERN = re.compile(r'\d{8}')
_TIME_PATTERN = re.compile(r'(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?')
_DATETIME_PATTERN = re.compile(
    r'(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?'
    r'(?:[+-]\d{4})?'
)
_WILDCARD_VRS = frozenset({'AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UR', 'UT'})
_RANGE_VRS = frozenset({'DA', 'TM', 'DT'})


def _normalized_time(text: str, upper: bool = False) -> Optional[str]:
    """A TM value as ``HHMMSS.FFFFFF``; missing parts are lowest (or highest if ``upper``)."""
    match = _TIME_PATTERN.fullmatch(text.strip().replace(':', ''))
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes or 0) > 59 or int(seconds or 0) > 60:
        return None
    fill = '59' if upper else '00'
    fraction = (fraction or '').ljust(6, '9' if upper and fraction is None else '0')
    return f'{hours}{minutes or fill}{seconds or fill}.{fraction}'


def _normalized_datetime(text: str, upper: bool = False) -> Optional[str]:
    """A DT value as ``YYYYMMDDHHMMSS.FFFFFF`` (offsets ignored), filled like TM."""
    match = _DATETIME_PATTERN.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hours, minutes, seconds, fraction = match.groups()
    fills = ('12', '31', '23', '59', '59') if upper else ('01', '01', '00', '00', '00')
    parts = [part or fill for part, fill in zip((month, day, hours, minutes, seconds), fills)]
    fraction = (fraction or '').ljust(6, '9' if upper and fraction is None else '0')
    return f'{year}{"".join(parts)}.{fraction}'


def _sql_time(value: Optional[str]) -> Optional[str]:
    """SQL function: a stored TM value normalized for comparison."""
    return None if value is None else _normalized_time(value)


def _glob_escape(text: str) -> str:
    """Text as a GLOB pattern where ``*`` and ``?`` are wildcards and all else is literal."""
    return text.replace('[', '[[]')


def _glob_regex(pattern: str) -> 're.Pattern[str]':
    """A regular expression matching exactly what ``GLOB pattern`` matches."""
    parts = ('.*' if char == '*' else '.' if char == '?' else re.escape(char) for char in pattern)
    return re.compile(''.join(parts), re.DOTALL)


def _filter_texts(value: Any, vr: str, name: str) -> List[str]:
    """The values of a matching key as strings (a list or a backslash list means "any");
    ``None``, like an empty value, asks for universal matching."""
    if value is None:
        return ['']
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        items = [value]
    texts: List[str] = []
    for item in items:
        if (
            isinstance(item, bool)
            or not isinstance(item, (str, int, float))
            and not hasattr(item, 'strftime')
        ):
            raise TypeError(
                f'search_filters[{name!r}] must be a string, number, date or a '
                f'list of them, not {item!r}'
            )
        if hasattr(item, 'strftime'):
            item = _date_text(item, vr)
        text = str(item)
        if vr == 'UI':
            texts.extend(part.strip() for part in re.split(r'[\\,]', text))
        elif vr in _SINGLE_TEXT_VRS:
            texts.append(text)
        else:
            texts.extend(text.split('\\'))
    return texts


def _date_text(value: Any, vr: str) -> str:
    has_date, has_time = hasattr(value, 'year'), hasattr(value, 'hour')
    if vr == 'TM' or not has_date:
        return value.strftime('%H%M%S')
    if vr == 'DT' and has_time:
        return value.strftime('%Y%m%d%H%M%S')
    return value.strftime('%Y%m%d')


class _Test:
    """One value of a matching key: an SQL condition on a column, or a Python test."""

    def sql(self, expression: str, folded: Optional[str]) -> Tuple[str, list]:
        raise NotImplementedError

    def matches(self, value: Any) -> bool:
        raise NotImplementedError


class _EmptyTest(_Test):
    """``""``: the attribute is absent or empty."""

    def sql(self, expression: str, folded: Optional[str]) -> Tuple[str, list]:
        return f"({expression} IS NULL OR {expression} = '')", []

    def matches(self, value: Any) -> bool:
        return value in (None, '', {})


class _TextTest(_Test):
    """Single value matching, or wildcard matching when the value holds ``*`` or ``?``
    (for the VRs where wildcards are allowed)."""

    def __init__(self, text: str, wildcards: bool = True) -> None:
        self.text = text
        self.wildcard = wildcards and ('*' in text or '?' in text)
        self.regex = _glob_regex(text) if self.wildcard else None

    def sql(self, expression: str, folded: Optional[str]) -> Tuple[str, list]:
        if self.wildcard:
            return f'{expression} GLOB ?', [_glob_escape(self.text)]
        return f'{expression} = ?', [self.text]

    def matches(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return bool(self.regex.fullmatch(value)) if self.regex else value == self.text


class _NameTest(_Test):
    """Person name matching: case-insensitive, on the whole name or its first group.

    With fuzzy matching, the value (wildcards allowed) may also match the beginning of
    any name component, e.g. ``jan`` matches ``Doe^Jane``.
    """

    def __init__(self, text: str, fuzzy: bool) -> None:
        self.text = text.casefold()
        self.fuzzy = fuzzy
        pattern = _glob_escape(self.text)
        self.patterns = [pattern, pattern + '=*']
        if fuzzy:
            spaced = pattern.replace('^', ' ')
            self.patterns.append('* ' + spaced + '*')
        raw = [self.text, self.text + '=*']
        if fuzzy:
            raw.append('* ' + self.text.replace('^', ' ') + '*')
        self.regexes = [_glob_regex(text) for text in raw]

    def sql(self, expression: str, folded: Optional[str]) -> Tuple[str, list]:
        column = folded or expression
        conditions = [f'{column} GLOB ?', f'{column} GLOB ?']
        if self.fuzzy:
            conditions.append(f"(' ' || replace(replace({column}, '^', ' '), '=', ' ')) GLOB ?")
        return '(' + ' OR '.join(conditions) + ')', list(self.patterns)

    def matches(self, value: Any) -> bool:
        name = _person_name_text(value).casefold()
        if self.regexes[0].fullmatch(name) or self.regexes[1].fullmatch(name):
            return True
        if self.fuzzy:
            spaced = ' ' + name.replace('^', ' ').replace('=', ' ')
            return bool(self.regexes[2].fullmatch(spaced))
        return False


class _RangeTest(_Test):
    """Range matching (``low-high``, ``-high``, ``low-``) or single value matching of
    dates, times and date-times; times compare normalized (``1200`` equals ``120000``)."""

    def __init__(self, text: str, vr: str, name: str) -> None:
        self.vr = vr
        offset = re.fullmatch(r'[^-]+[+-]\d{4}', text) if vr == 'DT' else None
        self.single = '-' not in text or offset is not None
        low, _, high = (text, '', text) if self.single else text.partition('-')
        if not (low or high):
            raise ValueError(f'search_filters[{name!r}]: {text!r} is not a {vr} range')
        self.low = self._bound(low, False, name) if low else None
        self.high = self._bound(high, not self.single, name) if high else None

    def _bound(self, text: str, upper: bool, name: str) -> str:
        if self.vr == 'DA':
            text = text.strip().replace('.', '')
            if not _DATE_PATTERN.fullmatch(text):
                raise ValueError(
                    f'search_filters[{name!r}]: {text!r} is not a date '
                    '(YYYYMMDD) or a date range (YYYYMMDD-YYYYMMDD)'
                )
            return text
        normalize = _normalized_time if self.vr == 'TM' else _normalized_datetime
        value = normalize(text, upper)
        if value is None:
            raise ValueError(
                f'search_filters[{name!r}]: {text!r} is not a valid {self.vr} value or range'
            )
        return value

    def sql(self, expression: str, folded: Optional[str]) -> Tuple[str, list]:
        if self.vr == 'TM':
            expression = f'_dwc_time({expression})'
        if self.single:
            return f'{expression} = ?', [self.low]
        conditions, params = [f"{expression} != ''"], []
        if self.low is not None:
            conditions.append(f'{expression} >= ?')
            params.append(self.low)
        if self.high is not None:
            conditions.append(f'{expression} <= ?')
            params.append(self.high)
        return '(' + ' AND '.join(conditions) + ')', params

    def matches(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        if self.vr == 'DA':
            normalized: Optional[str] = value.strip().replace('.', '')
        elif self.vr == 'TM':
            normalized = _normalized_time(value)
        else:
            normalized = _normalized_datetime(value)
        if normalized is None:
            return False
        if self.single:
            return normalized == self.low
        return (self.low is None or normalized >= self.low) and (
            self.high is None or normalized <= self.high
        )


class _NumberTest(_Test):
    """Single value matching of a number."""

    def __init__(self, text: str, vr: str, name: str) -> None:
        try:
            self.number: Union[int, float] = float(text) if vr in ('DS', 'FL', 'FD') else int(text)
        except ValueError:
            raise ValueError(f'search_filters[{name!r}]: {text!r} is not a number') from None

    def sql(self, expression: str, folded: Optional[str]) -> Tuple[str, list]:
        return f'{expression} = ?', [self.number]

    def matches(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return value == self.number


class _Criterion:
    """One matching key of a search: an attribute (path of tags) and the values it may have.

    ``tests`` is empty for universal matching (``*`` or an empty value), which only asks
    for the attribute to be returned.
    """

    def __init__(self, name: str, value: Any, fuzzy: bool) -> None:
        self.name = name
        self.path = [_tag_of(step) for step in name.split('.')]
        self.vr = _vr_of(self.path[-1])
        self.tests: List[_Test] = []
        texts = _filter_texts(value, self.vr, name)
        if any(not text.strip().strip('*') for text in texts):
            return  # empty or only "*": universal matching
        self.tests = [self._test(text, fuzzy) for text in texts]

    def _test(self, text: str, fuzzy: bool) -> _Test:
        if text == '""':
            return _EmptyTest()
        if self.vr in _RANGE_VRS:
            return _RangeTest(text.strip(), self.vr, self.name)
        if self.vr in _NUMERIC_VRS:
            return _NumberTest(text.strip(), self.vr, self.name)
        if self.vr == 'PN':
            return _NameTest(text.strip(), fuzzy)
        if self.vr in _SINGLE_TEXT_VRS:
            return _TextTest(text.rstrip(' '))
        return _TextTest(text.strip(), self.vr in _WILDCARD_VRS)

    @property
    def top_tag(self) -> str:
        return self.path[0]

    def sql(self, expression: str, folded: Optional[str] = None) -> Tuple[str, list]:
        """The condition on an index column (or another SQL expression)."""
        fragments, params = [], []
        for test in self.tests:
            fragment, values = test.sql(expression, folded)
            fragments.append(fragment)
            params.extend(values)
        return '(' + ' OR '.join(fragments) + ')', params

    def matches_element(self, element: Optional[dict], depth: int = 1) -> bool:
        """Whether a DICOM JSON element (of ``path[depth - 1]``) matches."""
        if element is None:
            return any(isinstance(test, _EmptyTest) for test in self.tests)
        values = element.get('Value') or []
        if depth < len(self.path):
            key = self.path[depth]
            return any(
                isinstance(item, dict) and self.matches_element(item.get(key), depth + 1)
                for item in values
            )
        if not values:
            return any(test.matches(None) for test in self.tests)
        return any(test.matches(value) for value in values for test in self.tests)


def _tag_of(step: str) -> str:
    if re.fullmatch(r'[0-9A-Fa-f]{8}', step):
        return step.upper()
    return lookup_tag(step)


def _vr_of(tag: str) -> str:
    computed = _COMPUTED_BY_TAG.get(tag)
    if computed is not None:
        return _COMPUTED[computed][0]
    try:
        vr = pydicom.datadict.dictionary_VR(int(tag, 16))
    except KeyError:
        return 'UN'
    return {'US or SS': 'US', 'OB or OW': 'OW'}.get(vr, vr)


# -- search answers -----------------------------------------------------------------------


def _element_maker(vr: str) -> Callable[[Any], dict]:
    """A function making the DICOM JSON element of an index column value of a VR."""
    if vr == 'PN':

        def make_name(value: str) -> dict:
            if value == '':
                return {'vr': vr}
            return {'vr': vr, 'Value': [_person_name_json(part) for part in value.split('\\')]}

        return make_name

    def make(value: Union[str, int]) -> dict:
        if value.__class__ is int:
            return {'vr': vr, 'Value': [value]}
        if value == '':
            return {'vr': vr}
        return {'vr': vr, 'Value': cast(str, value).split('\\')}

    return make


# -- rendering ------------------------------------------------------------------------------

_PILLOW_FORMATS = {
    'image/jpeg': 'JPEG',
    'image/png': 'PNG',
    'image/gif': 'GIF',
    'image/jp2': 'JPEG2000',
}


def _image_module(name: str, purpose: str = 'rendering images') -> Any:
    """Import numpy or a Pillow module for image features, with a clear error if absent."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        package = 'numpy' if name.startswith('numpy') else 'Pillow'
        raise ImportError(
            f'{purpose} needs {package}, which is not installed: pip install numpy Pillow'
        ) from error


def _pixel_array(dataset: Dataset, index: Optional[int] = None) -> Any:
    """Decoded pixels (of one frame if ``index`` is given); needs numpy."""
    _image_module('numpy', 'decoding pixel data')
    pixels = getattr(pydicom, 'pixels', None)  # pydicom 3
    if pixels is not None:
        return pixels.pixel_array(dataset, index=index)
    array = dataset.pixel_array  # pydicom 2 decodes every frame
    if index is None or int(dataset.get('NumberOfFrames', 1) or 1) == 1:
        return array
    return array[index]


def _pack_bits(array: Any) -> bytes:
    """1-bit pixels packed eight to a byte, as Pixel Data holds them."""
    pixels = getattr(pydicom, 'pixels', None)  # pydicom 3
    if pixels is not None:
        return pixels.pack_bits(array)
    from pydicom.pixel_data_handlers.numpy_handler import (  # type: ignore[attr-defined]
        pack_bits,
    )  # pydicom 2

    return pack_bits(array)


def _encapsulated_frame(
    source: Any, index: int, frames: int, extended: Optional[Tuple[Any, Any]] = None
) -> bytes:
    """Frame ``index`` (from 0) of encapsulated Pixel Data, from its value or from a file
    positioned at its value (pydicom 3 reads only that frame; pydicom 2 reads the rest of
    the file and walks the fragments)."""
    get_frame = getattr(pydicom.encaps, 'get_frame', None)
    if get_frame is not None:
        return get_frame(source, index, extended_offsets=extended, number_of_frames=frames)
    data = source if isinstance(source, (bytes, bytearray)) else source.read()
    found = next(
        itertools.islice(pydicom.encaps.generate_pixel_data_frame(data, frames), index, None), None
    )
    if found is None:
        raise ValueError(f'the encapsulated Pixel Data holds no frame {index + 1}')
    return found


def _pillow_can_write(media_type: str) -> bool:
    if media_type != 'image/jp2':
        return True
    features = _image_module('PIL.features')
    return bool(features.check('jpg_2000'))


def _render_media_type(names: Sequence[str], pdf: bool) -> str:
    """The first acceptable media type that rendering can produce."""
    for name in names:
        if name in ('image/*', '*/*'):
            return 'image/jpeg'
        if name == 'application/pdf' and pdf:
            return name
        if name in _PILLOW_FORMATS and _pillow_can_write(name):
            return name
    raise ValueError(
        f'cannot render as {", ".join(names)}: the file client renders '
        'image/jpeg, image/png, image/gif'
        + (', image/jp2' if _pillow_can_write('image/jp2') else '')
        + (' and application/pdf' if pdf else '')
    )


def _render_params(params: Optional[Dict[str, Any]], media_type: str) -> Dict[str, Any]:
    """Check rendering parameters: ``quality``, ``viewport`` and ``window``."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TypeError(f'params must be a dict, not {params!r}')
    checked: Dict[str, Any] = {}
    if params.get('quality') is not None:
        quality = params['quality']
        try:
            quality = int(quality)
        except (TypeError, ValueError):
            raise ValueError(f'params["quality"] must be an integer, not {quality!r}') from None
        if not 1 <= quality <= 100:
            raise ValueError(f'params["quality"] must be between 1 and 100, got {quality}')
        checked['quality'] = quality
    if params.get('viewport') is not None:
        checked['viewport'] = _numbers_param(params['viewport'], 'viewport', (2, 6))
        if any(size <= 0 for size in checked['viewport'][:2]):
            raise ValueError('params["viewport"] must give a positive width and height')
    if params.get('window') is not None:
        window = params['window']
        if isinstance(window, str):
            window = window.split(',')[:2]
        checked['window'] = _numbers_param(window, 'window', (2,))
    return checked


def _numbers_param(value: Any, name: str, counts: Tuple[int, ...]) -> Tuple[float, ...]:
    items = value.split(',') if isinstance(value, str) else value
    try:
        numbers = tuple(float(item) for item in items)
    except (TypeError, ValueError):
        raise ValueError(
            f'params[{name!r}] must be comma separated numbers, not {value!r}'
        ) from None
    if len(numbers) not in counts:
        raise ValueError(
            f'params[{name!r}] must hold {" or ".join(map(str, counts))} numbers, not {value!r}'
        )
    return numbers


def _display_pixels(array: Any, dataset: Dataset, window: Optional[Tuple[float, ...]]) -> Any:
    """Pixels of one frame as 8-bit grey or RGB: modality LUT, then VOI window."""
    numpy = _image_module('numpy')
    samples = int(dataset.get('SamplesPerPixel', 1) or 1)
    if samples > 1:
        if array.dtype != numpy.uint8:
            peak = float(array.max()) or 1.0
            array = numpy.clip(array.astype(numpy.float64) * (255.0 / peak), 0, 255)
        return array.astype(numpy.uint8)
    values = array.astype(numpy.float64)
    slope = float(dataset.get('RescaleSlope', 1) or 1)
    intercept = float(dataset.get('RescaleIntercept', 0) or 0)
    values = values * slope + intercept
    if window is None:
        window = _dataset_window(dataset)
    if window is not None and window[1] >= 1:
        center, width = window[0], window[1]
        scaled = ((values - (center - 0.5)) / max(width - 1, 1) + 0.5) * 255.0
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
    scaled = numpy.clip(scaled, 0, 255)
    if str(dataset.get('PhotometricInterpretation', '')).strip() == 'MONOCHROME1':
        scaled = 255 - scaled
    return numpy.rint(scaled).astype(numpy.uint8)


def _dataset_window(dataset: Dataset) -> Optional[Tuple[float, float]]:
    center, width = dataset.get('WindowCenter'), dataset.get('WindowWidth')
    if center is None or width is None:
        return None
    try:
        center = (
            center[0] if isinstance(center, Sequence) and not isinstance(center, str) else center
        )
        width = width[0] if isinstance(width, Sequence) and not isinstance(width, str) else width
        return float(center), float(width)
    except (TypeError, ValueError, IndexError):
        return None


def _encode_images(images: Sequence[Any], media_type: str, options: Dict[str, Any]) -> bytes:
    """Encode 8-bit frames with Pillow (several frames only as an animated GIF)."""
    image_module = _image_module('PIL.Image')
    pictures = [image_module.fromarray(image) for image in images]
    viewport = options.get('viewport')
    if viewport is not None:
        pictures = [_fit_viewport(picture, viewport) for picture in pictures]
    buffer = io.BytesIO()
    file_format = _PILLOW_FORMATS[media_type]
    if file_format == 'JPEG':
        pictures[0].save(buffer, 'JPEG', quality=options.get('quality', 95))
    elif file_format == 'GIF' and len(pictures) > 1:
        pictures[0].save(
            buffer, 'GIF', save_all=True, append_images=pictures[1:], duration=100, loop=0
        )
    elif file_format == 'JPEG2000' and 'quality' in options:
        pictures[0].save(
            buffer, 'JPEG2000', quality_mode='dB', quality_layers=[20 + options['quality'] * 0.3]
        )
    else:
        pictures[0].save(buffer, file_format)
    return buffer.getvalue()


def _fit_viewport(picture: Any, viewport: Tuple[float, ...]) -> Any:
    """Crop to the source rectangle (if given) and scale to fit within the viewport."""
    if len(viewport) == 6:
        left, top, width, height = viewport[2:]
        picture = picture.crop((int(left), int(top), int(left + width), int(top + height)))
    scale = min(viewport[0] / picture.width, viewport[1] / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size)


# -- storing --------------------------------------------------------------------------------


def _with_file_meta(dataset: Dataset) -> Dataset:
    """The dataset, or a shallow copy with the File Meta Information a Part 10 file needs."""
    meta = getattr(dataset, 'file_meta', None)
    if meta is not None and 'TransferSyntaxUID' in meta:
        return dataset
    copy = pydicom.Dataset(dataset)
    copy.preamble = getattr(dataset, 'preamble', None)
    copy.file_meta = pydicom.dataset.FileMetaDataset(meta or pydicom.Dataset())
    pixels = dataset.get('PixelData')
    if isinstance(pixels, bytes) and pixels[:4] == b'\xfe\xff\x00\xe0':
        raise ValueError(
            'the dataset holds encapsulated pixel data but its file_meta names no TransferSyntaxUID'
        )
    encoding = getattr(dataset, 'original_encoding', (False, True))
    copy.file_meta.TransferSyntaxUID = pydicom.uid.UID(
        _IMPLICIT_VR_LITTLE_ENDIAN if encoding == (True, True) else _EXPLICIT_VR_LITTLE_ENDIAN
    )
    return copy


def _payload(item: Any) -> bytes:
    """A Part 10 file of an item given to ``store_instances``."""
    if isinstance(item, (bytes, bytearray, memoryview)):  # first: pydicom is not imported
        data = bytes(item)
    elif isinstance(item, pydicom.Dataset):
        return _encode_dataset(_with_file_meta(item))
    elif isinstance(item, (str, os.PathLike)):
        with open(item, 'rb') as handle:
            data = handle.read()
    else:
        data = item.read()
    if data[128:132] == b'DICM':
        return data
    return _encode_dataset(_with_file_meta(_decode_dataset(data)))


def _unsafe_uids(metadata: Dict[str, dict]) -> Optional[str]:
    """Why the UIDs of an instance cannot name its folders and file, or ``None``."""
    for keyword, tag in (
        ('StudyInstanceUID', '0020000D'),
        ('SeriesInstanceUID', '0020000E'),
        ('SOPInstanceUID', '00080018'),
    ):
        values = metadata.get(tag, {}).get('Value') or []
        if len(values) != 1 or not isinstance(values[0], str):
            return f'{keyword} must hold exactly one UID, not {values!r}'
        try:
            _check_uid(values[0], keyword)
        except ValueError:
            return (
                f'{keyword} {values[0]!r} is not a valid DICOM UID (digits separated by '
                'dots, at most 64 characters), so it cannot name a folder or file'
            )
    return None


def _store_arguments(datasets: Any, study_instance_uid: Optional[str]) -> List[Any]:
    """Check the arguments of ``store_instances``; return the instances as a list."""
    if isinstance(datasets, (pydicom.Dataset, str, bytes, os.PathLike)) or not isinstance(
        datasets, Iterable
    ):
        raise TypeError('datasets must be a sequence of instances, not a single one')
    items = list(datasets)
    if not items:
        raise ValueError('datasets must hold at least one instance')
    for item in items:
        if not isinstance(
            item, (pydicom.Dataset, bytes, bytearray, memoryview, str, os.PathLike)
        ) and not hasattr(item, 'read'):
            raise TypeError(f'datasets must hold datasets or Part 10 files, not {item!r}')
    if study_instance_uid is not None:
        _check_uid(study_instance_uid, 'study_instance_uid')
    return items


_TEMPORARY_PREFIX = _PRIVATE_PREFIX + 'tmp-'  # files being written by _write_atomically


def _write_atomically(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write a file under a temporary name in its folder, then rename it into place.

    The data is on disk (fsync) before the file gets its name, so a file with the name is
    complete even after a crash; ``mode`` is its permission bits.  Also used by the
    command line (with the mode a new file gets from the umask).
    """
    folder = os.path.dirname(path)
    try:
        handle, temporary = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, dir=folder)
    except FileNotFoundError:  # the folder is made only when missing (two system calls saved)
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, dir=folder)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _store_item(
    sop_class: Optional[str],
    sop_instance: Optional[str],
    reason: Optional[int] = None,
    url: Optional[str] = None,
) -> Dataset:
    item = pydicom.Dataset()
    if sop_class:
        item.ReferencedSOPClassUID = sop_class
    if sop_instance:
        item.ReferencedSOPInstanceUID = sop_instance
    if reason is not None:
        item.FailureReason = reason
    if url is not None:
        item.RetrieveURL = url
    return item


# -- the archive's files: paths that stay inside it, moving files aside ----------------------


class _ArchiveFiles:
    """The folder of an archive: turning index paths into files that stay inside it,
    and the file operations of storing and deleting (moving aside, removing folders).

    Parameters
    ----------
    root: str
        The absolute archive folder.
    readonly: bool
        Whether files may be removed (the leftovers of interrupted operations).

    """

    def __init__(self, root: str, readonly: bool) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)  # what files must resolve into
        self.readonly = readonly

    def absolute(self, relative: str) -> str:
        """The file of a relative index path, which must stay inside the archive.

        Checked each time a file is read, written or moved: a path that symbolic links
        (put there after the file was indexed, say) lead out of the archive raises
        :class:`OutsideArchiveError`, a :class:`FileNotFoundError`, so it is served as gone.
        """
        path = os.path.normpath(os.path.join(self.root, *relative.split('/')))
        if os.path.commonpath([path, self.root]) != self.root:
            raise ValueError(f'{relative!r} lies outside the archive')
        if self._links_lead_out(path):
            logger.warning(
                'refused %s: symbolic links lead it to %s, outside the archive %s',
                path,
                os.path.realpath(path),
                self.root,
            )
            raise OutsideArchiveError(
                errno.ENOENT, 'a symbolic link leads out of the archive', path
            )
        return path

    def _links_lead_out(self, path: str) -> bool:
        """Whether symbolic links below the root lead ``path`` out of the archive.

        The steps of ``path`` (normalized, inside the root) below the root are looked at
        with ``lstat``, about half the cost of :func:`os.path.realpath`, which also
        resolves every folder above the root; only when one is a link is the whole path
        resolved.  A missing step ends the walk: there is nothing to follow (a store
        creates it as a plain folder or file).  The root itself is trusted.
        """
        current = self.root
        for step in path[len(self.root) :].strip(os.sep).split(os.sep):
            current = os.path.join(current, step)
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                return False
            if stat.S_ISLNK(mode):
                return not self.inside(os.path.realpath(path))
        return False

    def inside(self, real_path: str) -> bool:
        """Whether a resolved path (see :func:`os.path.realpath`) lies in the archive."""
        root = self.real_root
        return real_path == root or real_path.startswith(root.rstrip(os.sep) + os.sep)

    def skip_symlink(self, path: str) -> None:
        """Leave a symbolic link out of the index, with a warning if it leads outside.

        Links are never followed: a target inside the archive is indexed under its own
        path when the scan gets there (so once), one outside is not indexed at all, and
        a loop of links is never entered.

        Parameters
        ----------
        path: str
            The link.

        """
        target = os.path.realpath(path)
        if self.inside(target):
            logger.debug('not following %s: its target %s is indexed where it is', path, target)
        else:
            logger.warning(
                'skipped %s: a symbolic link to %s, outside the archive %s', path, target, self.root
            )

    def clean_private_file(self, entry: os.DirEntry) -> None:
        """Remove what an interrupted delete (after a minute) or store (an hour) left."""
        if self.readonly:
            return
        with contextlib.suppress(OSError):
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
            if age > (60 if entry.name.startswith(_PRIVATE_PREFIX + 'del-') else 3600):
                os.unlink(entry.path)

    def move_aside(self, relative: str, moved: List[Tuple[str, str]]) -> None:
        try:
            original = self.absolute(relative)
        except OutsideArchiveError:
            return  # nothing outside the archive is touched; the row goes all the same
        folder, name = os.path.split(original)
        aside = os.path.join(folder, f'{_PRIVATE_PREFIX}del-{os.getpid()}-{name}')
        try:
            os.replace(original, aside)
        except FileNotFoundError:
            return
        moved.append((original, aside))
        with contextlib.suppress(OSError):
            os.utime(aside)  # its age tells other processes whether it was left behind

    def remove_empty_folders(self, folder: str) -> None:
        while folder != self.root and folder.startswith(self.root + os.sep):
            try:
                os.rmdir(folder)
            except OSError:
                return
            folder = os.path.dirname(folder)


# -- the index database ---------------------------------------------------------------------

#: clients that write the index, each while it has it open (see :class:`_IndexHandle`)
_WRITERS_TABLE = (
    'CREATE TABLE IF NOT EXISTS writers (token TEXT PRIMARY KEY, host TEXT, '
    'pid INTEGER, identity TEXT)'
)


def _schema() -> List[str]:
    """Statements that create the (private) index schema."""
    columns = ', '.join(
        f'{column.sql} {"INTEGER" if column.vr in _NUMERIC_COLUMN_VRS else "TEXT"}'
        for column in _COLUMNS
    )
    folded = ', '.join(f'"{column.keyword}_fold" TEXT' for column in _FOLDED_COLUMNS)
    return [
        'CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)',
        _WRITERS_TABLE,
        'CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, '
        'mtime_ns INTEGER, sop TEXT, problem TEXT)',
        'CREATE INDEX IF NOT EXISTS files_sop ON files (sop)',
        'CREATE TABLE IF NOT EXISTS instances (id INTEGER PRIMARY KEY, path TEXT NOT NULL '
        'UNIQUE, transfer_syntax TEXT, pixel_tag INTEGER, pixel_vr TEXT, pixel_offset INTEGER, '
        f'pixel_length INTEGER, metadata BLOB NOT NULL, {columns}, {folded})',
        'CREATE UNIQUE INDEX IF NOT EXISTS instances_sop ON instances ("SOPInstanceUID")',
        'CREATE INDEX IF NOT EXISTS instances_order ON instances ("StudyInstanceUID", '
        '"SeriesInstanceUID", "InstanceNumber")',
        'CREATE INDEX IF NOT EXISTS instances_series ON instances ("SeriesInstanceUID")',
        'CREATE INDEX IF NOT EXISTS instances_patient ON instances ("PatientID")',
        'CREATE INDEX IF NOT EXISTS instances_accession ON instances ("AccessionNumber")',
        'CREATE TABLE IF NOT EXISTS studies ("StudyInstanceUID" TEXT PRIMARY KEY, rep INTEGER, '
        'n_series INTEGER, n_instances INTEGER, modalities TEXT)',
        'CREATE TABLE IF NOT EXISTS series ("SeriesInstanceUID" TEXT PRIMARY KEY, '
        '"StudyInstanceUID" TEXT, rep INTEGER, n_instances INTEGER, "Modality" TEXT)',
        'CREATE INDEX IF NOT EXISTS series_study ON series ("StudyInstanceUID")',
        # a search on an instance attribute (PatientID, say) finds the instances by their
        # index, then the studies and series they represent by these
        'CREATE INDEX IF NOT EXISTS studies_rep ON studies (rep)',
        'CREATE INDEX IF NOT EXISTS series_rep ON series (rep)',
    ]


_AGGREGATE_STATEMENTS = (
    'DELETE FROM studies WHERE "StudyInstanceUID" IN (SELECT uid FROM temp.dirty_studies)',
    'INSERT INTO studies SELECT "StudyInstanceUID", MIN(id), COUNT(DISTINCT '
    '"SeriesInstanceUID"), COUNT(*), NULL FROM instances WHERE "StudyInstanceUID" IN '
    '(SELECT uid FROM temp.dirty_studies) GROUP BY "StudyInstanceUID"',
    'DELETE FROM series WHERE "SeriesInstanceUID" IN (SELECT uid FROM temp.dirty_series)',
    'INSERT OR REPLACE INTO series SELECT "SeriesInstanceUID", "StudyInstanceUID", MIN(id), '
    'COUNT(*), "Modality" FROM instances WHERE "SeriesInstanceUID" IN '
    '(SELECT uid FROM temp.dirty_series) GROUP BY "SeriesInstanceUID"',
    "UPDATE studies SET modalities = (SELECT group_concat(m, '\\') FROM (SELECT DISTINCT "
    '"Modality" AS m FROM series WHERE series."StudyInstanceUID" = studies."StudyInstanceUID" '
    "AND \"Modality\" IS NOT NULL AND \"Modality\" != '' ORDER BY m)) WHERE "
    '"StudyInstanceUID" IN (SELECT uid FROM temp.dirty_studies)',
    'DELETE FROM temp.dirty_studies',
    'DELETE FROM temp.dirty_series',
)


def _intact(connection: sqlite3.Connection) -> bool:
    """Whether SQLite's quick integrity check finds the index file sound.

    It reads the whole file, so it runs only when a writer did not close the index
    (see :func:`_unclosed_writers`) or when asked to (``update_db``, ``recreate_db``).
    """
    try:
        rows = connection.execute('PRAGMA quick_check').fetchall()
    except sqlite3.DatabaseError:
        return False
    return rows == [('ok',)]


def _process_identity(pid: int) -> Optional[str]:
    """What tells a running process from a later one given the same ID: its start time
    on Linux (from ``/proc``); ``None`` where the system does not say."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as handle:
            fields = handle.read().rsplit(b')', 1)[1].split()
        return fields[19].decode('ascii')
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def _process_alive(pid: int, identity: Optional[str]) -> bool:
    """Whether the process that registered as ``pid`` (with ``identity``) still runs.

    Where neither ``/proc`` nor signals tell (Windows), every process counts as alive.
    """
    if identity is not None:
        return _process_identity(pid) == identity
    if os.name == 'nt':
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _unclosed_writers(connection: sqlite3.Connection) -> Optional[List[str]]:
    """Tokens of writers that registered in the index and died without closing it.

    Every writable client registers in the ``writers`` table when it opens the index
    and leaves it when it closes, so a row of a process that no longer runs (on this
    host) means a writer was killed: only then is the whole file checked.  Writers on
    other hosts count as alive.

    Returns
    -------
    Union[List[str], None]
        The tokens; ``None`` when the index has no such table (it was written by another
        version) and must be checked.

    Raises
    ------
    sqlite3.DatabaseError
        If the file is not a readable SQLite database.

    """
    try:
        rows = connection.execute('SELECT token, host, pid, identity FROM writers').fetchall()
    except sqlite3.OperationalError as error:
        if 'no such table' not in str(error):
            raise
        empty = connection.execute('SELECT count(*) FROM sqlite_master').fetchone()[0] == 0
        return [] if empty else None
    host = socket.gethostname()
    return [
        token
        for token, row_host, pid, identity in rows
        if row_host == host and not _process_alive(pid, identity)
    ]


def _sound(connection: sqlite3.Connection, check: bool = False) -> bool:
    """Whether the index can be trusted: every writer closed it (or the integrity
    check, run then or when ``check`` asks for it, finds it sound)."""
    unclosed = _unclosed_writers(connection)
    if unclosed == [] and not check:
        return True
    reason = (
        'asked for'
        if check
        else 'a writer did not close it'
        if unclosed
        else 'it predates writer registration'
    )
    logger.info('checking the integrity of the index (%s)', reason)
    return _intact(connection)


class _IndexHandle:
    """A client's connection to its index, and its registration as a writer there.

    A client registers as a writer (in the ``writers`` table) before its first write,
    switching the index to write-ahead logging so that others read on while it writes,
    and leaves when it closes; a registration left by a process that no longer runs
    tells the next client to check the file (see :func:`_unclosed_writers`).  Clients
    that only read register nothing, so opening an index is cheap.

    Closing (explicitly, when the client is collected, or when the process exits)
    switches the index back to a rollback journal when no one else has it open, so no
    ``-wal``/``-shm`` files stay beside it.

    Parameters
    ----------
    connection: sqlite3.Connection
        The open connection.
    shared_file: bool
        Whether it is a read-write connection to an index file (not one in memory,
        not a read-only one).

    """

    def __init__(self, connection: sqlite3.Connection, shared_file: bool) -> None:
        self.connection = connection
        self.shared_file = shared_file
        self.owner = os.getpid()
        self.token: Optional[str] = None

    def start_writing(self) -> None:
        """Register as a writer, once, before the first write (outside transactions)."""
        if self.token is not None or not self.shared_file:
            return
        connection = self.connection
        self._use_write_ahead_log()
        connection.execute(_WRITERS_TABLE)
        token = os.urandom(16).hex()
        connection.execute(
            'INSERT INTO writers VALUES (?, ?, ?, ?)',
            (token, socket.gethostname(), self.owner, _process_identity(self.owner)),
        )
        self.token = token

    def _use_write_ahead_log(self, patience: float = 60.0) -> None:
        """Switch the index to write-ahead logging, waiting while others hold it.

        SQLite does not wait by itself here: a switch that meets another client's
        read or switch fails at once as "locked", so it is tried again, a little later
        each time, for up to ``patience`` seconds (the busy timeout of other statements).
        """
        deadline = time.monotonic() + patience
        pause = 0.001
        while True:
            try:
                self.connection.execute('PRAGMA journal_mode=WAL')
                return
            except sqlite3.OperationalError as error:
                if 'locked' not in str(error) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def close(self) -> None:
        """Leave the index (in the process that opened it; a forked copy does nothing)."""
        if os.getpid() != self.owner:
            return
        connection = self.connection
        if self.token is not None:
            with contextlib.suppress(sqlite3.DatabaseError):
                connection.execute('DELETE FROM writers WHERE token = ?', (self.token,))
        if self.shared_file:
            # fails at once (no waiting) while other clients have the index open
            with contextlib.suppress(sqlite3.DatabaseError):
                connection.execute('PRAGMA busy_timeout=0')
                if connection.execute('PRAGMA journal_mode').fetchone()[0] == 'wal':
                    connection.execute('PRAGMA journal_mode=DELETE')
        connection.close()


def _batches(items: Iterable[_T], size: int) -> Iterator[List[_T]]:
    """Lists of ``size`` consecutive items (the last one shorter)."""
    iterator = iter(items)
    while True:
        batch = list(itertools.islice(iterator, size))
        if not batch:
            return
        yield batch


def _sql_match(
    criteria: Dict[int, _Criterion],
    reader: _ElementReader,
    blob: Optional[bytes],
    tag: str,
    key: int,
) -> bool:
    """SQL function ``_dwc_match(metadata, tag, key)``: whether element ``tag`` of
    compressed metadata matches criterion ``key``."""
    return criteria[key].matches_element(reader.element(blob, tag))


def _default_cache_dir() -> str:
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'dicomweb_client')


def _pool_context() -> Tuple[Any, int]:
    """How to start worker processes, and from how many files on that pays off.

    Forking is fast but unsafe while other threads run (they may hold locks); then
    workers are spawned, which costs a second or so.
    """
    import multiprocessing  # imported here: only indexing in worker processes needs it

    if 'fork' in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context('fork'), _POOL_THRESHOLD
    return multiprocessing.get_context('spawn'), _SPAWN_POOL_THRESHOLD


@contextlib.contextmanager
def _exclusive_file_lock(path: Optional[str], wait: bool = True) -> Iterator[bool]:
    """Hold an advisory lock on the file ``path`` (where the platform has ``fcntl``),
    which exists only while someone holds or waits for it.

    Yields whether the lock is held: without ``wait``, ``False`` when another process
    holds it.  The holder removes the file before letting go; a waiter that then gets
    the lock of the removed file sees that the path no longer names it, and tries again
    on the file that path names now.
    """
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield True
        return
    while True:
        with open(path, 'a+b') as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            if not _names_open_file(path, handle):
                continue  # its holder removed it meanwhile
            try:
                yield True
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return


def _names_open_file(path: str, handle: IO[bytes]) -> bool:
    """Whether ``path`` still names the file open as ``handle``."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


@dataclass
class _Stored:
    """Where an instance is kept: its index row, relative file path and pixel data place."""

    id: int
    path: str
    study: str
    series: str
    sop: str
    transfer_syntax: str
    pixel_tag: Optional[int]
    pixel_vr: Optional[str]
    pixel_offset: Optional[int]
    pixel_length: Optional[int]
    rows: Optional[int]
    columns: Optional[int]
    bits: Optional[int]
    frames: Optional[int]
    samples: Optional[int]
    size: Optional[int]
    mtime_ns: Optional[int]
    metadata: bytes  # compressed (see _unpack_metadata)


_STORED_COLUMNS = (
    'r.id, r.path, r."StudyInstanceUID", r."SeriesInstanceUID", '
    'r."SOPInstanceUID", r.transfer_syntax, r.pixel_tag, r.pixel_vr, '
    'r.pixel_offset, r.pixel_length, r."Rows", r."Columns", r."BitsAllocated", '
    'r."NumberOfFrames", r."SamplesPerPixel", f.size, f.mtime_ns, r.metadata'
)
_STORED_ORDER = 'r."SeriesNumber", r."SeriesInstanceUID", r."InstanceNumber", r."SOPInstanceUID"'


@dataclass(frozen=True)
class _Accepted:
    """An instance of a store request that passed the checks: its file and its UIDs."""

    data: bytes
    header: _Header
    uids: Tuple[str, str, str]  # study, series, SOP instance


@dataclass(frozen=True)
class _Written:
    """A file a store request wrote: its index path, what it holds, its state on disk."""

    path: str
    header: _Header
    uids: Tuple[str, str, str]  # study, series, SOP instance
    sop_class: Optional[str]
    state: Tuple[int, int]  # (size, mtime_ns), as the index keeps them


class _ArchiveIndex:
    """The index of an archive folder in SQLite: where it lives, its connection and the
    lock that serializes its use in the process, its schema, and keeping it up to date
    with the files (walking the folder, reading new files, forgetting removed ones).

    Opening it builds, checks or updates the index as asked (see :meth:`_open`).  The
    matching criteria of running searches are registered here, where the SQL function
    ``_dwc_match`` finds them.

    Parameters
    ----------
    files: _ArchiveFiles
        The archive folder.
    db_path: Union[str, None]
        The index file (see :meth:`location`), or ``None`` to keep the index in memory.
    update_db: bool
        Bring the index up to date with the files (after checking its integrity).
    recreate_db: bool
        Build the index from scratch.

    """

    def __init__(
        self, files: _ArchiveFiles, db_path: Optional[str], update_db: bool, recreate_db: bool
    ) -> None:
        self.files = files
        self.readonly = files.readonly
        self.db_path = db_path
        self.lock = threading.RLock()
        self.criteria: Dict[int, _Criterion] = {}
        self.keys = itertools.count()
        self.handle = self._open(update_db, recreate_db)
        self.connection = self.handle.connection

    @staticmethod
    def location(
        files: _ArchiveFiles, db_dir: Union[pathlib.Path, str, None], rebuilding: bool
    ) -> str:
        """The index file: in ``db_dir``, beside the archive, or in the user cache folder.

        A read-only client only ever reads the index beside the archive; one that must
        build or update its index does so in the cache folder.
        """
        digest = hashlib.sha256(files.root.encode('utf-8', 'surrogateescape')).hexdigest()
        name = f'dicomweb_client_{digest[:16]}.sqlite'
        if db_dir is not None:
            folder = os.path.abspath(os.fspath(db_dir))
            os.makedirs(folder, exist_ok=True)
            return os.path.join(folder, name)
        beside = os.path.join(files.root, _INDEX_FILE_NAME)
        if files.readonly:
            if os.path.exists(beside) and not rebuilding:
                return beside
        elif os.path.exists(beside) or os.access(files.root, os.W_OK):
            return beside
        return _ArchiveIndex._cache_path(name)

    @staticmethod
    def _cache_path(name: str) -> str:
        folder = _default_cache_dir()
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, name)

    def _open(self, update_db: bool, recreate_db: bool) -> _IndexHandle:
        """Open (and build, check or update when needed) the index.

        Opening an index that every writer closed costs the same at any size: the
        integrity check, which reads the whole file, runs only after a writer was killed
        or when ``update_db`` or ``recreate_db`` ask for it.
        """
        if self.db_path is None:
            self.handle = _IndexHandle(self._connect(read_only=False), shared_file=False)
            self.update(self.handle.connection)
            return self.handle
        if self.readonly and not (update_db or recreate_db) and os.path.exists(self.db_path):
            connection = self._connect_complete_read_only()
            if connection is not None:
                self.handle = _IndexHandle(connection, shared_file=False)
                return self.handle
            if os.path.dirname(self.db_path) == self.files.root:  # never rebuild it in there
                logger.warning(
                    'the index %s is damaged or incomplete; a read-only client '
                    'builds its own in the cache folder',
                    self.db_path,
                )
                self.db_path = self._cache_path(os.path.basename(self.db_path))
        self._open_writable(update_db, recreate_db)
        if self.readonly:
            self.handle.close()
            self.handle = _IndexHandle(self._connect(read_only=True), shared_file=False)
        return self.handle

    def _connect_complete_read_only(self) -> Optional[sqlite3.Connection]:
        """A read-only connection to a sound, complete index of this version, or ``None``."""
        with contextlib.suppress(sqlite3.DatabaseError):
            connection = self._connect(read_only=True)
            if (
                self._meta(connection, 'state') == 'complete'
                and self._meta(connection, 'schema') == _INDEX_SCHEMA_VERSION
                and _sound(connection)
            ):
                return connection
            connection.close()
        return None

    def _open_writable(self, update_db: bool, recreate_db: bool) -> _IndexHandle:
        """Open the index for writing (see :class:`_IndexHandle`), built or updated as needed."""
        assert self.db_path is not None
        exists = os.path.exists(self.db_path)
        connection, replaced = self._connect_writable(check=update_db or recreate_db)
        self.handle = handle = _IndexHandle(connection, shared_file=True)
        fresh = (
            recreate_db
            or not exists
            or replaced
            or self._meta(connection, 'schema') != _INDEX_SCHEMA_VERSION
        )
        if fresh:
            self._create_tables(connection)
        if fresh or update_db:
            self.update(connection)
        elif self._meta(connection, 'state') != 'complete':  # an update was interrupted
            self.update(connection, wait=False)
        return handle

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        if self.db_path is None:
            connection = sqlite3.connect(':memory:', isolation_level=None, check_same_thread=False)
        elif read_only:
            uri = pathlib.Path(self.db_path).as_uri() + '?mode=ro'
            try:
                connection = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False, timeout=60
                )
                connection.execute('SELECT count(*) FROM sqlite_master').fetchone()
            except sqlite3.OperationalError:  # WAL files cannot be made: read the file as is
                connection = sqlite3.connect(
                    uri + '&immutable=1', uri=True, isolation_level=None, check_same_thread=False
                )
        else:
            connection = sqlite3.connect(
                self.db_path, isolation_level=None, check_same_thread=False, timeout=60
            )
            connection.execute('PRAGMA synchronous=NORMAL')  # writes use WAL (see _IndexHandle)
        connection.execute('PRAGMA busy_timeout=60000')
        # temporary tables and sorts spill to files: in memory, dropping the tables of a
        # large index (recreate_db) took memory in proportion to it
        connection.execute('PRAGMA cache_size=-16384')
        self._add_functions(connection)
        if not read_only:
            connection.execute(
                'CREATE TEMP TABLE IF NOT EXISTS dirty_studies (uid TEXT PRIMARY KEY)'
            )
            connection.execute(
                'CREATE TEMP TABLE IF NOT EXISTS dirty_series (uid TEXT PRIMARY KEY)'
            )
        return connection

    def _add_functions(self, connection: sqlite3.Connection) -> None:
        connection.create_function('_dwc_time', 1, _sql_time, deterministic=True)
        # the function holds the criteria, not the client, so the client can be collected
        reader = _ElementReader()
        connection.create_function('_dwc_element', 2, reader, deterministic=True)
        connection.create_function(
            '_dwc_match', 3, functools.partial(_sql_match, self.criteria, reader)
        )

    @staticmethod
    def _meta(connection: sqlite3.Connection, key: str) -> Optional[str]:
        try:
            row = connection.execute('SELECT value FROM meta WHERE key = ?', (key,)).fetchone()
        except sqlite3.DatabaseError:
            return None
        return row[0] if row else None

    def _connect_writable(self, check: bool) -> Tuple[sqlite3.Connection, bool]:
        """A writable connection, and whether a damaged index file had to be replaced.

        The file is checked when a writer did not close it, or when ``check`` says so;
        the registrations of writers that died are dropped once it is found sound.
        """
        try:
            connection = self._connect(read_only=False)
            if not _sound(connection, check):
                connection.close()
                raise sqlite3.DatabaseError('integrity check failed')
            dead = _unclosed_writers(connection)
            if dead:
                connection.executemany(
                    'DELETE FROM writers WHERE token = ?', [(token,) for token in dead]
                )
            return connection, False
        except sqlite3.DatabaseError as error:
            if self.db_path is None or 'locked' in str(error) or 'busy' in str(error):
                raise
            logger.warning('replacing the damaged index %s: %s', self.db_path, error)
        for suffix in ('', '-wal', '-shm', '-journal'):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.db_path + suffix)
        return self._connect(read_only=False), True

    def _create_tables(self, connection: sqlite3.Connection) -> None:
        with self.transaction(connection):
            for table in ('meta', 'files', 'instances', 'studies', 'series'):
                connection.execute(f'DROP TABLE IF EXISTS {table}')
            for statement in _schema():
                connection.execute(statement)
            connection.executemany(
                'INSERT INTO meta VALUES (?, ?)',
                [('schema', _INDEX_SCHEMA_VERSION), ('root', self.files.root), ('state', 'new')],
            )

    @contextlib.contextmanager
    def transaction(
        self, connection: Optional[sqlite3.Connection] = None
    ) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``) that rolls back on any error."""
        connection = connection or self.connection
        with self.lock:
            self.handle.start_writing()
            connection.execute('BEGIN IMMEDIATE')
            try:
                yield connection
                connection.execute('COMMIT')
            except BaseException:
                connection.execute('ROLLBACK')
                raise

    def update(self, connection: sqlite3.Connection, wait: bool = True) -> None:
        """Index new and changed files and forget removed ones, in committed batches.

        The folder tree is walked in the order of the index's paths and compared with
        the index range by range, so memory stays the same whatever the archive's size.
        One process updates at a time; without ``wait`` nothing is done while another
        process updates (its readers use the index as it is meanwhile).
        """
        if self.db_path is None:
            for statement in _schema():
                connection.execute(statement)
        lock_path = None if self.db_path is None else self.db_path + '.lock'
        with self.lock, _exclusive_file_lock(lock_path, wait) as locked:
            if not locked:
                logger.info('the index %s is being updated by another process', self.db_path)
                return
            started = time.perf_counter()
            with self.transaction(connection):
                connection.execute("INSERT OR REPLACE INTO meta VALUES ('state', 'updating')")
            forgotten: List[int] = []
            added = self._index_files(connection, self._files_to_read(connection, forgotten))
            with self.transaction(connection):
                connection.execute("INSERT OR REPLACE INTO meta VALUES ('state', 'complete')")
                connection.execute(
                    'INSERT OR REPLACE INTO meta VALUES (?, ?)', ('root', self.files.root)
                )
            logger.info(
                'index of %s: %d files indexed, %d forgotten in %.2f s',
                self.files.root,
                added,
                sum(forgotten),
                time.perf_counter() - started,
            )

    def _files_to_read(self, connection: sqlite3.Connection, forgotten: List[int]) -> Iterator[str]:
        """Paths of new and changed files, forgetting changed and removed ones on the way.

        The walk (in path order) is cut into batches; each is compared with the indexed
        files of its path range: those not on disk are forgotten (their number appended
        to ``forgotten``), changed ones forgotten and read again.
        """
        low: Optional[str] = None
        for batch in _batches(self._walk(), _INDEX_BATCH_SIZE):
            high = batch[-1][0]
            yield from self._compare_range(connection, dict(batch), low, high, forgotten)
            low = high
        yield from self._compare_range(connection, {}, low, None, forgotten)

    def _compare_range(
        self,
        connection: sqlite3.Connection,
        on_disk: Dict[str, Tuple[int, int]],
        low: Optional[str],
        high: Optional[str],
        forgotten: List[int],
    ) -> List[str]:
        """Compare the files found in a path range with the index; return those to read.

        Indexed files of the range ``(low, high]`` (open ends for ``None``) are read a page
        at a time; the rows of files gone or changed are dropped at once.
        """
        unchanged: Set[str] = set()
        reread: List[str] = []
        for page in self._indexed_pages(connection, low, high):
            stale = []
            for path, size, mtime in page:
                state = on_disk.get(path)
                if state == (size, mtime):
                    unchanged.add(path)
                else:
                    stale.append(path)
                    forgotten.append(state is None)
            reread += self._forget(connection, stale)
        fresh = [path for path in on_disk if path not in unchanged]
        return sorted(set(fresh + reread))

    @staticmethod
    def _indexed_pages(
        connection: sqlite3.Connection, low: Optional[str], high: Optional[str]
    ) -> Iterator[List[tuple]]:
        """Pages of ``(path, size, mtime_ns)`` of indexed files in the range ``(low, high]``,
        each fetched whole before the caller changes anything.

        Only the bounds that are set go into the query, so that SQLite searches the
        primary key index for them (``? IS NULL OR path > ?`` would make it scan the
        table from its start for every page).
        """
        while True:
            bounds = [('path > ?', low), ('path <= ?', high)]
            conditions = [condition for condition, value in bounds if value is not None]
            where = f'WHERE {" AND ".join(conditions)} ' if conditions else ''
            page = connection.execute(
                f'SELECT path, size, mtime_ns FROM files {where}ORDER BY path LIMIT ?',
                [value for _, value in bounds if value is not None] + [_INDEX_BATCH_SIZE],
            ).fetchall()
            if not page:
                return
            yield page
            low = page[-1][0]

    def _walk(self) -> Iterator[Tuple[str, Tuple[int, int]]]:
        """``(relative path, (size, mtime_ns))`` of every candidate file below the root,
        in the order SQLite sorts the paths (code points), folder by folder."""
        index_dir = None if self.db_path is None else os.path.dirname(self.db_path)
        visited: Set[Tuple[int, int]] = set()  # folders, should bind mounts make loops
        pending = [iter(self._folder_entries(self.files.root, '', index_dir, visited))]
        while pending:
            entry = next(pending[-1], None)
            if entry is None:
                pending.pop()
            elif entry[1] is None:  # a folder: walked before what sorts after it
                pending.append(
                    iter(
                        self._folder_entries(
                            os.path.join(self.files.root, *entry[0].split('/')),
                            entry[0] + '/',
                            index_dir,
                            visited,
                        )
                    )
                )
            else:
                yield entry[0], entry[1]

    def _folder_entries(
        self, folder: str, prefix: str, index_dir: Optional[str], visited: Set[Tuple[int, int]]
    ) -> List[Tuple[str, Optional[Tuple[int, int]]]]:
        """The candidate files (with their state) and sub-folders (state ``None``) of
        one folder as relative paths, sorted as the walk yields them: a folder sorts as
        its name followed by ``/``, i.e. as the paths below it do."""
        try:
            status = os.stat(folder)
            if (status.st_dev, status.st_ino) in visited:
                return []
            visited.add((status.st_dev, status.st_ino))
            with os.scandir(folder) as scan:
                entries = list(scan)
        except OSError as error:
            logger.warning('cannot read folder %s: %s', folder, error)
            return []
        found = [self._scan_entry(entry, prefix, index_dir) for entry in entries]
        return sorted(
            (item for item in found if item is not None),
            key=lambda item: item[0] if item[1] is not None else item[0] + '/',
        )

    def _scan_entry(
        self, entry: os.DirEntry, prefix: str, index_dir: Optional[str]
    ) -> Optional[Tuple[str, Optional[Tuple[int, int]]]]:
        """A file with its ``(size, mtime_ns)``, a folder with ``None``, or ``None``."""
        name = entry.name
        if (
            name.startswith(_INDEX_FILE_NAME)
            or name.startswith('dicomweb_client_')
            and (os.path.dirname(entry.path) == index_dir)
        ):
            return None
        if name.startswith(_PRIVATE_PREFIX):
            self.files.clean_private_file(entry)
            return None
        try:
            if entry.is_symlink():
                self.files.skip_symlink(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                return prefix + name, None
            elif entry.is_file(follow_symlinks=False):
                status = entry.stat(follow_symlinks=False)
                return prefix + name, (status.st_size, status.st_mtime_ns)
        except OSError as error:
            logger.warning('cannot read %s: %s', entry.path, error)
        return None

    def _forget(self, connection: sqlite3.Connection, paths: Sequence[str]) -> List[str]:
        """Drop the rows of files; return files to re-read (duplicates of dropped ones)."""
        reread: List[str] = []
        for start in range(0, len(paths), _INDEX_BATCH_SIZE):
            batch = paths[start : start + _INDEX_BATCH_SIZE]
            with self.transaction(connection):
                sops = self.delete_rows(connection, batch)
                reread += self._orphaned_duplicates(connection, sops)
        return reread

    @staticmethod
    def _orphaned_duplicates(connection: sqlite3.Connection, sops: Sequence[str]) -> List[str]:
        """Files of SOP instances that lost their indexed file: they are indexed anew."""
        paths: List[str] = []
        for sop in sops:
            if connection.execute(
                'SELECT 1 FROM instances WHERE "SOPInstanceUID" = ?', (sop,)
            ).fetchone():
                continue
            rows = connection.execute('SELECT path FROM files WHERE sop = ?', (sop,)).fetchall()
            paths += [path for (path,) in rows]
            connection.executemany('DELETE FROM files WHERE path = ?', rows)
        return paths

    @staticmethod
    def delete_rows(connection: sqlite3.Connection, paths: Sequence[str]) -> List[str]:
        """Delete file and instance rows (marking aggregates dirty); return SOP UIDs."""
        sops = []
        for path in paths:
            row = connection.execute(
                'SELECT "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID" FROM '
                'instances WHERE path = ?',
                (path,),
            ).fetchone()
            if row is not None:
                connection.execute('INSERT OR IGNORE INTO temp.dirty_studies VALUES (?)', (row[0],))
                connection.execute('INSERT OR IGNORE INTO temp.dirty_series VALUES (?)', (row[1],))
                connection.execute('DELETE FROM instances WHERE path = ?', (path,))
                sops.append(row[2])
            connection.execute('DELETE FROM files WHERE path = ?', (path,))
        for statement in _AGGREGATE_STATEMENTS:
            connection.execute(statement)
        return sops

    def _index_files(self, connection: sqlite3.Connection, paths: Iterable[str]) -> int:
        """Read and index files (in worker processes when there are many)."""
        added = 0
        batch: List[_FileRecord] = []
        for results in self._read_in_chunks(paths):
            batch += results
            if len(batch) >= _INDEX_BATCH_SIZE:
                added += self._insert_records(connection, batch)
                batch = []
        if batch:
            added += self._insert_records(connection, batch)
        return added

    def _read_in_chunks(self, paths: Iterable[str]) -> Iterator[List[_FileRecord]]:
        """Index records of files, chunk by chunk, read in worker processes when many.

        Only a few chunks per worker are read ahead of the caller, so memory does not
        grow with the number of files.
        """
        chunks = _batches(paths, _POOL_CHUNK_SIZE)
        workers = min(os.cpu_count() or 1, 8)
        context, threshold = _pool_context()
        first = list(itertools.islice(chunks, -(-threshold // _POOL_CHUNK_SIZE)))
        if workers < 2 or sum(map(len, first)) < threshold:
            for chunk in itertools.chain(first, chunks):
                yield _read_records(self.files.root, chunk)
            return
        import concurrent.futures  # imported here: only indexing in worker processes needs it

        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            ahead: Deque[concurrent.futures.Future] = collections.deque()
            for chunk in itertools.chain(first, chunks):
                ahead.append(pool.submit(_read_records, self.files.root, chunk))
                if len(ahead) >= 2 * workers:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()

    def _insert_records(self, connection: sqlite3.Connection, results: List[_FileRecord]) -> int:
        """Insert the records of one batch in one transaction; return how many were new."""
        with self.transaction(connection):
            return self._insert_batch(connection, results)

    def _insert_batch(self, connection: sqlite3.Connection, results: List[_FileRecord]) -> int:
        """Insert records (in the open transaction) and refresh the aggregates.

        A record whose SOP instance is indexed already (a copy of a file) is only noted
        as a file, with a warning; it is indexed if the indexed file goes away.
        """
        columns = ', '.join(f'"{name}"' for name in _RECORD_COLUMNS)
        marks = ', '.join('?' * (len(_RECORD_COLUMNS) + 1))
        records = [(item.path, *item.record) for item in results if item.record is not None]
        files = []
        for item in results:
            if item.record is None and item.size is not None:
                logger.warning('skipping %s: %s', item.path, item.problem)
            if item.size is not None:
                sop = item.record[_RECORD_SOP] if item.record is not None else None
                files.append((item.path, item.size, item.mtime_ns, sop, item.problem))
        before = connection.total_changes
        connection.executemany(
            f'INSERT OR IGNORE INTO instances (path, {columns}) VALUES ({marks})', records
        )
        added = connection.total_changes - before
        if added < len(records):
            self._warn_duplicates(connection, records)
        connection.executemany('INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)', files)
        connection.executemany(
            'INSERT OR IGNORE INTO temp.dirty_studies VALUES (?)',
            {(record[_RECORD_STUDY + 1],) for record in records},
        )
        connection.executemany(
            'INSERT OR IGNORE INTO temp.dirty_series VALUES (?)',
            {(record[_RECORD_SERIES + 1],) for record in records},
        )
        for statement in _AGGREGATE_STATEMENTS:
            connection.execute(statement)
        return added

    @staticmethod
    def _warn_duplicates(connection: sqlite3.Connection, records: List[tuple]) -> None:
        for record in records:
            row = connection.execute(
                'SELECT path FROM instances WHERE "SOPInstanceUID" = ?', (record[_RECORD_SOP + 1],)
            ).fetchone()
            if row is not None and row[0] != record[0]:
                logger.warning(
                    'skipping %s: SOP instance %s is indexed from %s',
                    record[0],
                    record[_RECORD_SOP + 1],
                    row[0],
                )

    def stored(
        self, study: str, series: Optional[str] = None, sop: Optional[str] = None
    ) -> List[_Stored]:
        """Where the instances of a study, series (``series``) or instance (``sop`` too)
        are kept, in the order retrievals give them."""
        conditions, values = ['r."StudyInstanceUID" = ?'], [study]
        for value, column in ((series, 'SeriesInstanceUID'), (sop, 'SOPInstanceUID')):
            if value is not None:
                conditions.append(f'r."{column}" = ?')
                values.append(value)
        with self.lock:
            rows = self.connection.execute(
                f'SELECT {_STORED_COLUMNS} FROM instances r LEFT JOIN files f ON f.path = '
                f'r.path WHERE {" AND ".join(conditions)} ORDER BY {_STORED_ORDER}',
                values,
            ).fetchall()
        return [_Stored(*row) for row in rows]

    def register(self, criterion: _Criterion) -> int:
        key = next(self.keys)
        self.criteria[key] = criterion
        return key

    @staticmethod
    def paths_of(connection: sqlite3.Connection, sops: List[str]) -> List[str]:
        paths: List[str] = []
        for sop in sops:
            paths += [
                path
                for (path,) in connection.execute('SELECT path FROM files WHERE sop = ?', (sop,))
            ]
        return paths

    def index_stored(self, written: List[_Written]) -> None:
        """Index stored files in one transaction, replacing what held the same instances
        before; files that held them elsewhere are removed afterwards."""
        replaced: List[str] = []
        with self.transaction() as connection:
            for item in written:
                rows = connection.execute(
                    'SELECT path FROM files WHERE sop = ? OR path = ?', (item.uids[2], item.path)
                ).fetchall()
                replaced += [path for (path,) in rows if path != item.path]
                self.delete_rows(connection, [path for (path,) in rows])
            self._insert_batch(
                connection,
                [
                    _FileRecord(item.path, *item.state, _index_record(item.header), None)
                    for item in written
                ],
            )
        for relative in replaced:
            with contextlib.suppress(OSError, ValueError):
                os.unlink(self.files.absolute(relative))


# -- frames, bulk data and rendered images, read from the files -----------------------------


@dataclasses.dataclass(frozen=True)
class _ArchiveAddress:
    """The URLs of an archive's resources and the 404 errors that name them."""

    base_url: str

    def url(self, study: str, series: Optional[str] = None, sop: Optional[str] = None) -> str:
        """The URL of a study, series or instance of the archive."""
        url = f'{self.base_url}/studies/{study}'
        if series is not None:
            url += f'/series/{series}'
        if sop is not None:
            url += f'/instances/{sop}'
        return url

    def not_found(self, what: str, url: str) -> HTTPError:
        """The error for something the archive does not hold."""
        return _file_error(
            FileClientNotFoundError,
            404,
            'GET',
            url,
            f'{what} not found in the archive {self.base_url}',
        )

    def file_gone(self, stored: _Stored) -> HTTPError:
        """The error for an indexed instance whose file is no longer there."""
        return self.not_found(
            f'file {stored.path} of instance {stored.sop}',
            self.url(stored.study, stored.series, stored.sop),
        )


class _InstancePixels:
    """Frames, bulk data and rendered images of indexed instances, read from their files.

    Frames stored natively or encapsulated are read straight from the file at the place
    the index recorded (re-read when the file changed since); decoding, rendering and
    nested bulk data go through pydicom.

    Parameters
    ----------
    files: _ArchiveFiles
        The archive's files.
    address: _ArchiveAddress
        The archive's URLs, for error messages.

    """

    def __init__(self, files: _ArchiveFiles, address: _ArchiveAddress) -> None:
        self.files = files
        self.address = address

    def check_frames(self, stored: _Stored, numbers: Sequence[int]) -> None:
        if stored.pixel_tag is None:
            raise ValueError(f'instance {stored.sop} has no pixel data, hence no frames')
        count = stored.frames or 1
        beyond = [number for number in numbers if number > count]
        if beyond:
            raise ValueError(
                f'frame_numbers {beyond} exceed the {count} frame(s) of instance {stored.sop}'
            )

    def frame_mode(self, stored: _Stored, media_types: Optional[MediaTypes]) -> str:
        """``'stored'`` (bytes as stored) or ``'decoded'`` (uncompressed) frames."""
        pairs = (
            _normalize_media_types(media_types)
            if media_types is not None
            else (('application/octet-stream', None),)
        )
        syntax = stored.transfer_syntax
        native = syntax in _NATIVE_SYNTAXES
        for media_type, wanted in pairs:
            if media_type in _BULKDATA_WILDCARDS:
                return 'decoded' if syntax == '1.2.840.10008.1.2.2' else 'stored'
            if media_type == 'application/octet-stream':
                return 'stored' if native and syntax != '1.2.840.10008.1.2.2' else 'decoded'
            if (
                not native
                and syntax in _BULKDATA_MEDIA_TYPES.get(media_type, ())
                and (wanted in (None, '*', syntax))
            ):
                return 'stored'
        asked = ', '.join(media_type for media_type, _ in pairs)
        raise _file_error(
            FileClientNotAcceptableError,
            406,
            'GET',
            self.address.url(stored.study, stored.series, stored.sop) + '/frames',
            f'frames of instance {stored.sop} (stored as {syntax}) are not available as '
            f'{asked}; ask for application/octet-stream (uncompressed) or the media type of '
            'the stored transfer syntax',
        )

    def current(self, stored: _Stored) -> Tuple[str, _Stored]:
        """The file of an instance, and its pixel data place re-read if the file changed."""
        try:
            path = self.files.absolute(stored.path)
        except OutsideArchiveError:
            raise self.address.file_gone(stored) from None
        size, mtime = _size_and_mtime(path)
        if size is None:
            raise self.address.file_gone(stored)
        if (size, mtime) != (stored.size, stored.mtime_ns):
            _, _, header = _read_header(path)
            stored = _Stored(
                **{
                    **stored.__dict__,
                    'pixel_offset': header.pixel_offset,
                    'pixel_length': header.pixel_length,
                    'transfer_syntax': header.transfer_syntax,
                }
            )
        return path, stored

    def frame(self, stored: _Stored, number: int, mode: str) -> bytes:
        """One frame, read straight from the file where possible."""
        path, stored = self.current(stored)
        if (
            mode == 'decoded'
            or stored.pixel_offset is None
            or '"7FE00001"' in _unpack_metadata(stored.metadata)
        ):
            return self.decoded_frame(path, stored, number, mode)
        with open(path, 'rb') as handle:
            if stored.pixel_length == -1:
                handle.seek(stored.pixel_offset)
                return _encapsulated_frame(handle, number - 1, stored.frames or 1)
            size = _frame_size(stored)
            if size is None:
                return self.decoded_frame(path, stored, number, mode)
            handle.seek(stored.pixel_offset + (number - 1) * size)
            return handle.read(size)

    @staticmethod
    def decoded_frame(path: str, stored: _Stored, number: int, mode: str) -> bytes:
        dataset = pydicom.dcmread(path)
        if mode == 'stored' and dataset.file_meta.TransferSyntaxUID.is_encapsulated:
            extended = None
            if 'ExtendedOffsetTable' in dataset:
                extended = (dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths)
            return _encapsulated_frame(dataset.PixelData, number - 1, stored.frames or 1, extended)
        array = _pixel_array(dataset, number - 1)
        if int(dataset.get('BitsAllocated', 8)) == 1:
            return _pack_bits(array)
        return array.astype(array.dtype.newbyteorder('<')).tobytes()

    def bulkdata(
        self, stored: _Stored, steps: List[str], media_types: Optional[MediaTypes]
    ) -> List[bytes]:
        if steps[0] == 'frames':
            numbers = [int(part) for part in steps[1].split(',') if part.isdigit()]
            self.check_frames(stored, _check_frame_numbers(numbers))
            mode = self.frame_mode(stored, media_types)
            return [self.frame(stored, number, mode) for number in numbers]
        tags = steps[1::2]
        if (
            len(tags) == 1
            and stored.pixel_tag is not None
            and tags[0].upper() == (f'{stored.pixel_tag:08X}')
        ):
            return self.pixel_bulkdata(stored, media_types)
        if media_types is not None and all(
            media_type not in _BULKDATA_WILDCARDS + ('application/octet-stream',)
            for media_type, _ in _normalize_media_types(media_types)
        ):
            raise ValueError(
                'bulk data other than pixel data are only available as application/octet-stream'
            )
        return [self.element_bytes(stored, steps[1:])]

    def pixel_bulkdata(self, stored: _Stored, media_types: Optional[MediaTypes]) -> List[bytes]:
        mode = self.frame_mode(stored, media_types)
        path, stored = self.current(stored)
        if stored.pixel_length == -1 or mode == 'decoded' or stored.pixel_offset is None:
            return [
                self.frame(stored, number, mode) for number in range(1, (stored.frames or 1) + 1)
            ]
        with open(path, 'rb') as handle:
            handle.seek(stored.pixel_offset)
            return [handle.read(stored.pixel_length)]

    def element_bytes(self, stored: _Stored, steps: List[str]) -> bytes:
        """The value of a (possibly nested) binary element of an instance."""
        url = (
            self.address.url(stored.study, stored.series, stored.sop)
            + '/bulkdata/'
            + '/'.join(steps)
        )
        path, _ = self.current(stored)
        node: Any = pydicom.dcmread(path, stop_before_pixels=True)
        try:
            for index, step in enumerate(steps):
                node = node[int(step)] if index % 2 else node[int(step, 16)].value
        except (KeyError, IndexError, ValueError):
            raise self.address.not_found('bulk data', url) from None
        if not isinstance(node, (bytes, bytearray)):
            raise self.address.not_found('binary bulk data', url)
        return bytes(node)

    #: width and height of the box a thumbnail is shrunk into when no viewport is given
    THUMBNAIL_BOX = 128

    @staticmethod
    def first_image(stored: List[_Stored], what: str) -> _Stored:
        """The first of the instances that has pixel data (what a thumbnail shows)."""
        for item in stored:
            if item.pixel_tag is not None:
                return item
        raise ValueError(f'{what} holds no images, so it has no thumbnail')

    def thumbnail(
        self, stored: _Stored, number: int, names: List[str], params: Optional[Dict[str, Any]]
    ) -> bytes:
        """One frame rendered, shrunk into the default box unless a viewport is given."""
        wants_default = params is None or (
            isinstance(params, dict) and params.get('viewport') is None
        )
        if wants_default and stored.rows and stored.columns:
            box = self.THUMBNAIL_BOX
            params = {
                **(params or {}),
                'viewport': (min(stored.columns, box), min(stored.rows, box)),
            }
        return self.render([stored], [number], names, params)

    def render(
        self,
        stored: List[_Stored],
        numbers: List[int],
        names: List[str],
        params: Optional[Dict[str, Any]],
    ) -> bytes:
        pdf = len(stored) == 1 and '"00420011"' in _unpack_metadata(stored[0].metadata)
        try:
            media_type = _render_media_type(names, pdf)
        except ValueError as error:
            raise _file_error(
                FileClientNotAcceptableError,
                406,
                'GET',
                self.address.url(stored[0].study, stored[0].series, stored[0].sop),
                str(error),
            ) from None
        options = _render_params(params, media_type)
        if media_type == 'application/pdf':
            return self.element_bytes(stored[0], ['00420011'])
        if len(stored) > 1 and media_type != 'image/gif':
            stored, numbers = stored[:1], numbers[:1]
        images = []
        for item, number in zip(stored, numbers):
            if item.pixel_tag is None:
                raise ValueError(f'instance {item.sop} has no pixel data to render')
            path, _ = self.current(item)
            dataset = pydicom.dcmread(path)
            array = _pixel_array(dataset, number - 1)
            images.append(_display_pixels(array, dataset, options.get('window')))
        return _encode_images(images, media_type, options)


# -- the client -----------------------------------------------------------------------------


class DICOMfileClient:
    """Search, retrieve, store and delete DICOM Part 10 files in a folder, DICOMweb style.

    The folder (and its sub-folders) may hold files in any layout; an index kept in an
    SQLite database makes searches fast.  The index lives beside the archive (a hidden
    file in the folder) unless ``db_dir`` says otherwise, or in a user cache folder when
    the archive cannot be written; several processes may read it while one updates it.
    Stored instances are written to ``<study UID>/<series UID>/<SOP instance UID>.dcm``.

    Parameters
    ----------
    url: str
        ``file://`` URL of the folder, e.g. ``file:///data/dicom``.
    update_db: bool, optional
        Bring the index up to date: index new and changed files (size or modification
        time differ) and forget removed ones, after checking the integrity of the whole
        index file (a damaged one is rebuilt).  Without it an existing index is used as
        it is, which costs the same at any size (the file is checked only when a writer
        was killed before closing it); a missing index is built, and one whose building
        was interrupted is completed.
    recreate_db: bool, optional
        Build the index from scratch.
    in_memory: bool, optional
        Keep the index in memory only (rebuilt every time, never written to disk).
    db_dir: Union[pathlib.Path, str, None], optional
        Folder of the index file; by default the archive folder.
    readonly: bool, optional
        Refuse to store or delete, and open an existing index read-only.
    create_folder: bool, optional
        Create the archive folder if it does not exist (for a new archive to store
        instances in); without it a missing folder raises :class:`ArchiveNotFoundError`,
        so a mistyped path is reported instead of giving an empty archive.

    Raises
    ------
    ArchiveNotFoundError
        If the folder does not exist and ``create_folder`` is not set (also a
        ``FileNotFoundError``).

    Attributes
    ----------
    base_url: str
        ``file://`` URL of the archive folder.
    scheme: str
        ``file``.
    protocol: None
        There is no network protocol.
    url_prefix: str
        Path of the archive folder.

    Note
    ----
    Files that are not DICOM Part 10 files are skipped with a logged warning.  The index
    schema is private and may change; an index of another version is rebuilt.

    """

    lookup_keyword = staticmethod(lookup_keyword)
    lookup_tag = staticmethod(lookup_tag)

    def __init__(
        self,
        url: str,
        update_db: bool = False,
        recreate_db: bool = False,
        in_memory: bool = False,
        db_dir: Union[pathlib.Path, str, None] = None,
        readonly: bool = False,
        create_folder: bool = False,
    ) -> None:
        for name, flag in (
            ('update_db', update_db),
            ('recreate_db', recreate_db),
            ('in_memory', in_memory),
            ('readonly', readonly),
            ('create_folder', create_folder),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f'{name} must be True or False, not {flag!r}')
        if db_dir is not None and not isinstance(db_dir, (str, os.PathLike)):
            raise TypeError(f'db_dir must be a path, not {db_dir!r}')
        if readonly and create_folder:
            raise ValueError('a read-only client cannot create its archive folder')
        self._files = _ArchiveFiles(_root_of(url, create=create_folder), readonly)
        self.base_url = pathlib.Path(self._files.root).as_uri().rstrip('/')
        self._address = _ArchiveAddress(self.base_url)
        self._pixels = _InstancePixels(self._files, self._address)
        self.scheme = 'file'
        self.protocol: Optional[str] = None
        self.url_prefix = urllib.parse.urlsplit(self.base_url).path
        self.qido_url_prefix: Optional[str] = None
        self.wado_url_prefix: Optional[str] = None
        self.stow_url_prefix: Optional[str] = None
        self.delete_url_prefix: Optional[str] = None
        self._readonly = readonly
        db_path = (
            None
            if in_memory
            else _ArchiveIndex.location(self._files, db_dir, rebuilding=update_db or recreate_db)
        )
        self._index = _ArchiveIndex(self._files, db_path, update_db, recreate_db)
        import multiprocessing.util  # its finalizers also run in worker processes

        self._closer = multiprocessing.util.Finalize(
            self, self._index.handle.close, exitpriority=10
        )
        self._reopening = {'in_memory': in_memory, 'db_dir': db_dir, 'readonly': readonly}

    def __repr__(self) -> str:
        return f'DICOMfileClient({self.base_url!r})'

    def __getstate__(self) -> Dict[str, Any]:
        """What it takes to open the same archive again: a pickled client (sent to the
        worker processes of a data loader, say) opens its own connection to the index
        as it is, or indexes the folder anew if the index was kept in memory."""
        return {'url': self.base_url, **self._reopening}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        DICOMfileClient.__init__(self, **state)

    def __enter__(self) -> 'DICOMfileClient':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the index database (the client cannot be used afterwards).

        A client that is not closed is closed when it is garbage collected or when the
        process exits (worker processes of :mod:`multiprocessing` included).  The last
        one to close an index leaves no ``-wal``/``-shm`` files beside it.
        """
        with self._index.lock:
            self._closer()

    @staticmethod
    def _require_uids(**uids: Optional[str]) -> None:
        """Refuse a deletion whose UIDs include ``None``.

        Parameters
        ----------
        **uids: Union[str, None]
            The UID arguments of the deletion, by name.

        Raises
        ------
        TypeError
            If one is ``None`` (the error is also a ``ValueError`` and an ``OSError``).

        """
        for name, value in uids.items():
            if value is None:
                raise FileClientMissingUIDError(f'{name} is required, not None')

    def _check_writable(self, method: str, action: str) -> None:
        if self._readonly:
            raise _file_error(
                FileClientReadOnlyError,
                403,
                method,
                self.base_url,
                f'{action} refused: the client was opened with readonly=True '
                f'and does not change the archive {self.base_url}',
            )

    # -- searching ----------------------------------------------------------------------------

    def search_for_studies(
        self,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
    ) -> List[Dict[str, dict]]:
        """Search for studies.

        Parameters
        ----------
        fuzzymatching: Union[bool, None], optional
            Also match person names whose components start with the value
            (person names always match case-insensitively).
        limit: Union[int, None], optional
            Most results wanted.
        offset: Union[int, None], optional
            Results to skip.
        fields: Union[Sequence[str], None], optional
            More attributes (keywords or tags, or ``'all'``) to include in the results.
        search_filters: Union[Dict[str, Any], None], optional
            Matching attributes (keyword, tag or dotted sequence path) and values: single
            values, wildcards ``*`` and ``?``, lists (any of them), date and time ranges
            (``'20200101-20201231'``, ``'-20201231'``), ``'""'`` for empty values.  Any
            attribute works; those without index column are matched on the stored
            metadata.
        get_remaining: bool, optional
            Accepted for compatibility: all results are always returned.

        Returns
        -------
        List[Dict[str, dict]]
            Matching studies in DICOM JSON.

        """
        return self._search(_STUDY, fuzzymatching, limit, offset, fields, search_filters)

    def search_for_series(
        self,
        study_instance_uid: Optional[str] = None,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
    ) -> List[Dict[str, dict]]:
        """Search for series, of one study or of all (see :meth:`search_for_studies`).

        Returns
        -------
        List[Dict[str, dict]]
            Matching series in DICOM JSON.

        """
        return self._search(
            _SERIES, fuzzymatching, limit, offset, fields, search_filters, study_instance_uid
        )

    def search_for_instances(
        self,
        study_instance_uid: Optional[str] = None,
        series_instance_uid: Optional[str] = None,
        fuzzymatching: Optional[bool] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
        search_filters: Optional[Dict[str, Any]] = None,
        get_remaining: bool = False,
    ) -> List[Dict[str, dict]]:
        """Search for instances, of a study, a series or all (see :meth:`search_for_studies`).

        Returns
        -------
        List[Dict[str, dict]]
            Matching instances in DICOM JSON.

        """
        return self._search(
            _INSTANCE,
            fuzzymatching,
            limit,
            offset,
            fields,
            search_filters,
            study_instance_uid,
            series_instance_uid,
        )

    def _search(
        self,
        level: int,
        fuzzymatching: Optional[bool],
        limit: Optional[int],
        offset: Optional[int],
        fields: Optional[Sequence[str]],
        search_filters: Optional[Dict[str, Any]],
        study: Optional[str] = None,
        series: Optional[str] = None,
    ) -> List[Dict[str, dict]]:
        if search_filters is not None and not isinstance(search_filters, dict):
            raise TypeError(f'search_filters must be a dict, not {search_filters!r}')
        params = parse_query_parameters(fuzzymatching, limit, offset, fields, search_filters)
        for value, name in ((study, 'study_instance_uid'), (series, 'series_instance_uid')):
            if value is not None:
                _check_uid(value, name, permissive=True)
        fuzzy = params.pop('fuzzymatching', 'false') == 'true'
        includes = params.pop('includefield', [])
        limit, offset = params.pop('limit', None), params.pop('offset', None)
        criteria = [_Criterion(name, value, fuzzy) for name, value in params.items()]
        query = _SearchQuery(
            self._index,
            self._address.url,
            level,
            criteria,
            includes,
            _result_levels(level, study, series),
        )
        if study is not None:
            query.where('r."StudyInstanceUID" = ?', [study])
        if series is not None:
            query.where('r."SeriesInstanceUID" = ?', [series])
        return [query.answer(row) for row in query.rows(criteria, limit, offset)]

    # -- retrieving instances ---------------------------------------------------------------

    def _stored(
        self,
        study: str,
        series: Optional[str] = None,
        sop: Optional[str] = None,
        names: Tuple[str, ...] = ('study_instance_uid', 'series_instance_uid', 'sop_instance_uid'),
    ) -> List[_Stored]:
        """The instances of a study, series or instance; raises when there are none."""
        for value, name in zip((study, series, sop), names):
            if value is not None or name == names[0]:
                _check_uid(value, name, permissive=True)
        stored = self._index.stored(study, series, sop)
        if not stored:
            what = 'instance' if sop is not None else 'series' if series is not None else 'study'
            raise self._address.not_found(
                f'{what} {sop or series or study}', self._address.url(study, series, sop)
            )
        return stored

    def _instance_syntaxes(self, media_types: Optional[MediaTypes]) -> List[Optional[str]]:
        """Acceptable transfer syntaxes of instances, in order (``None``: as stored)."""
        _accept('instances', media_types)
        if media_types is None:
            return [None]
        return [
            None if syntax in (None, '*') else syntax
            for _, syntax in _normalize_media_types(media_types)
        ]

    def _load(self, stored: _Stored, syntaxes: List[Optional[str]]) -> Dataset:
        """Read an instance and give it the first acceptable transfer syntax."""
        try:
            dataset = pydicom.dcmread(self._files.absolute(stored.path))
        except FileNotFoundError:
            raise self._address.file_gone(stored) from None
        stored_syntax = str(dataset.file_meta.get('TransferSyntaxUID', stored.transfer_syntax))
        problems = []
        for syntax in syntaxes:
            if syntax is None or syntax == stored_syntax:
                return dataset
            if syntax == _EXPLICIT_VR_LITTLE_ENDIAN:
                try:
                    return _as_explicit_little_endian(dataset, stored_syntax)
                except Exception as error:  # noqa: BLE001 - decoders raise anything
                    problems.append(str(error))
        raise _file_error(
            FileClientNotAcceptableError,
            406,
            'GET',
            self._address.url(stored.study, stored.series, stored.sop),
            f'instance {stored.sop} is stored as {stored_syntax} and cannot be converted to '
            f'{", ".join(str(s) for s in syntaxes)}'
            + (f' ({"; ".join(problems)})' if problems else ''),
        )

    def iter_study(
        self, study_instance_uid: str, media_types: Optional[MediaTypes] = None
    ) -> Iterator[Dataset]:
        """Iterate over the instances of a study, reading one file at a time.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types and transfer syntaxes: by default, or with
            ``('application/dicom', '*')``, instances come as stored;
            ``(('application/dicom', '1.2.840.10008.1.2.1'),)`` converts them to Explicit
            VR Little Endian (decompressing pixel data when needed).

        Returns
        -------
        Iterator[pydicom.dataset.Dataset]
            Instances.

        """
        syntaxes = self._instance_syntaxes(media_types)
        stored = self._stored(study_instance_uid)
        return (self._load(item, syntaxes) for item in stored)

    def retrieve_study(
        self, study_instance_uid: str, media_types: Optional[MediaTypes] = None
    ) -> List[Dataset]:
        """Retrieve all instances of a study (see :meth:`iter_study`).

        Returns
        -------
        List[pydicom.dataset.Dataset]
            Instances.

        """
        return list(self.iter_study(study_instance_uid, media_types))

    def iter_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
    ) -> Iterator[Dataset]:
        """Iterate over the instances of a series (see :meth:`iter_study`).

        Returns
        -------
        Iterator[pydicom.dataset.Dataset]
            Instances.

        """
        syntaxes = self._instance_syntaxes(media_types)
        _check_uid(series_instance_uid, 'series_instance_uid', permissive=True)
        stored = self._stored(study_instance_uid, series_instance_uid)
        return (self._load(item, syntaxes) for item in stored)

    def retrieve_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
    ) -> List[Dataset]:
        """Retrieve all instances of a series (see :meth:`iter_study`).

        Returns
        -------
        List[pydicom.dataset.Dataset]
            Instances.

        """
        return list(self.iter_series(study_instance_uid, series_instance_uid, media_types))

    def retrieve_instance(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
    ) -> Dataset:
        """Retrieve an instance (see :meth:`iter_study` for ``media_types``).

        Returns
        -------
        pydicom.dataset.Dataset
            The instance.

        """
        syntaxes = self._instance_syntaxes(media_types)
        return self._load(
            self._one(study_instance_uid, series_instance_uid, sop_instance_uid), syntaxes
        )

    def retrieve_instance_file(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
    ) -> bytes:
        """Retrieve one instance as a DICOM file: the stored file byte for byte when its
        transfer syntax is acceptable, otherwise the converted data set written as a file.

        Parameters are those of :meth:`retrieve_instance`.

        Returns
        -------
        bytes
            A Part 10 file.

        """
        syntaxes = self._instance_syntaxes(media_types)
        stored = self._one(study_instance_uid, series_instance_uid, sop_instance_uid)
        if syntaxes[0] not in (None, stored.transfer_syntax):
            return _encode_dataset(self._load(stored, syntaxes))
        try:
            with open(self._files.absolute(stored.path), 'rb') as handle:
                return handle.read()
        except FileNotFoundError:
            raise self._address.file_gone(stored) from None

    def _one(self, study: str, series: str, sop: str) -> _Stored:
        _check_uid(series, 'series_instance_uid', permissive=True)
        _check_uid(sop, 'sop_instance_uid', permissive=True)
        return self._stored(study, series, sop)[0]

    # -- metadata ---------------------------------------------------------------------------

    def _metadata(self, stored: _Stored) -> Dict[str, dict]:
        """The DICOM JSON of an instance with absolute ``BulkDataURI`` values."""
        prefix = self._address.url(stored.study, stored.series, stored.sop) + '/'
        text = _unpack_metadata(stored.metadata).replace(
            '"BulkDataURI":"bulkdata/', '"BulkDataURI":' + json.dumps(prefix)[:-1] + 'bulkdata/'
        )
        metadata = json.loads(text)
        if stored.pixel_tag is not None:
            tag = f'{stored.pixel_tag:08X}'
            metadata[tag] = {
                'vr': stored.pixel_vr or 'OW',
                'BulkDataURI': f'{prefix}bulkdata/{tag}',
            }
        return metadata

    def retrieve_study_metadata(self, study_instance_uid: str) -> List[Dict[str, dict]]:
        """Retrieve the metadata of every instance of a study.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.

        Returns
        -------
        List[Dict[str, dict]]
            DICOM JSON of each instance; bulk data (pixel data and binary values longer
            than 1024 bytes) are ``BulkDataURI`` references for :meth:`retrieve_bulkdata`.

        """
        return [self._metadata(item) for item in self._stored(study_instance_uid)]

    def retrieve_series_metadata(
        self, study_instance_uid: str, series_instance_uid: str
    ) -> List[Dict[str, dict]]:
        """Retrieve the metadata of every instance of a series.

        Returns
        -------
        List[Dict[str, dict]]
            DICOM JSON of each instance.

        """
        _check_uid(series_instance_uid, 'series_instance_uid', permissive=True)
        return [
            self._metadata(item) for item in self._stored(study_instance_uid, series_instance_uid)
        ]

    def retrieve_instance_metadata(
        self, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str
    ) -> Dict[str, dict]:
        """Retrieve the metadata of an instance.

        Returns
        -------
        Dict[str, dict]
            DICOM JSON of the instance.

        """
        return self._metadata(self._one(study_instance_uid, series_instance_uid, sop_instance_uid))

    # -- frames and bulk data ----------------------------------------------------------------

    def iter_instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: List[int],
        media_types: Optional[MediaTypes] = None,
    ) -> Iterator[bytes]:
        """Iterate over frames of an image instance.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        series_instance_uid: str
            Series Instance UID.
        sop_instance_uid: str
            SOP Instance UID.
        frame_numbers: List[int]
            Frame numbers, counting from 1.
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types and transfer syntaxes.  By default frames come
            uncompressed (``application/octet-stream``; compressed frames are decoded);
            the media type of the stored transfer syntax (e.g. ``image/jpeg`` or
            ``image/dicom-rle``) or a wildcard gives the frames as stored.

        Returns
        -------
        Iterator[bytes]
            Frames, in the order asked for.

        """
        numbers = _check_frame_numbers(frame_numbers)
        _accept('frames', media_types)
        stored = self._one(study_instance_uid, series_instance_uid, sop_instance_uid)
        mode = self._pixels.frame_mode(stored, media_types)
        self._pixels.check_frames(stored, numbers)
        return (self._pixels.frame(stored, number, mode) for number in numbers)

    def retrieve_instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: List[int],
        media_types: Optional[MediaTypes] = None,
    ) -> List[bytes]:
        """Retrieve frames of an image instance (see :meth:`iter_instance_frames`).

        Returns
        -------
        List[bytes]
            Frames, in the order asked for.

        """
        return list(
            self.iter_instance_frames(
                study_instance_uid,
                series_instance_uid,
                sop_instance_uid,
                frame_numbers,
                media_types,
            )
        )

    def iter_bulkdata(
        self,
        url: str,
        media_types: Optional[MediaTypes] = None,
        byte_range: Optional[Tuple[int, int]] = None,
    ) -> Iterator[bytes]:
        """Iterate over the bulk data at a URL (a ``BulkDataURI`` of the metadata).

        Parameters
        ----------
        url: str
            Location of the bulk data: ``<instance URL>/bulkdata/<tag>[/<item>/<tag>...]``
            or ``<instance URL>/frames/<numbers>``.
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types and transfer syntaxes (as for frames).
        byte_range: Union[Tuple[int, int], None], optional
            First and last byte wanted (inclusive; last may be ``None`` for the end).

        Returns
        -------
        Iterator[bytes]
            Bulk data items: one per frame for encapsulated pixel data, else one.

        Raises
        ------
        IOError
            When the archive holds no bulk data at ``url``.

        """
        if byte_range is not None:
            _byte_range(byte_range)
        _accept('bulkdata', media_types)
        stored, steps = self._parse_bulkdata_url(url)
        items = self._pixels.bulkdata(stored, steps, media_types)
        if byte_range is None:
            return iter(items)
        first, last = byte_range
        return iter([item[first : None if last is None else last + 1] for item in items])

    def retrieve_bulkdata(
        self,
        url: str,
        media_types: Optional[MediaTypes] = None,
        byte_range: Optional[Tuple[int, int]] = None,
    ) -> List[bytes]:
        """Retrieve the bulk data at a URL (see :meth:`iter_bulkdata`).

        Returns
        -------
        List[bytes]
            Bulk data items.

        Raises
        ------
        IOError
            When the archive holds no bulk data at ``url``.

        """
        return list(self.iter_bulkdata(url, media_types, byte_range))

    def _parse_bulkdata_url(self, url: str) -> Tuple[_Stored, List[str]]:
        if not isinstance(url, str):
            raise TypeError(f'url must be a string, not {url!r}')
        if not url:
            raise ValueError('url must not be empty: pass a BulkDataURI of the metadata')
        prefix = self.base_url + '/studies/'
        if not url.startswith(prefix):
            raise ValueError(f'url {url!r} is not a bulk data URL of {self.base_url}')
        segments = urllib.parse.unquote(url[len(prefix) - len('studies/') :]).split('/')
        if (
            len(segments) < 8
            or segments[0::2][:3] != ['studies', 'series', 'instances']
            or segments[6] not in ('bulkdata', 'frames')
        ):
            raise ValueError(
                f'url {url!r} is not a bulk data URL: expected '
                '<base>/studies/<uid>/series/<uid>/instances/<uid>/bulkdata/<tag>'
            )
        stored = self._one(segments[1], segments[3], segments[5])
        return stored, segments[6:]

    # -- rendering ----------------------------------------------------------------------------

    def retrieve_instance_rendered(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Render an instance as an image (its first frame) with numpy and Pillow.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        series_instance_uid: str
            Series Instance UID.
        sop_instance_uid: str
            SOP Instance UID.
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types: ``image/jpeg`` (default), ``image/png``,
            ``image/gif``, ``image/jp2`` (when Pillow writes JPEG 2000), and
            ``application/pdf`` for encapsulated PDF documents.
        params: Union[Dict[str, Any], None], optional
            ``quality`` (1-100, JPEG), ``viewport`` (``'width,height'``, optionally
            followed by the source rectangle ``x,y,width,height``) and ``window``
            (``'center,width'``; by default the dataset's first window, else the
            pixel value range).

        Returns
        -------
        bytes
            The rendered image.

        """
        _, names = _accept('rendered', media_types)
        stored = self._one(study_instance_uid, series_instance_uid, sop_instance_uid)
        return self._pixels.render([stored], [1], names, params)

    def retrieve_series_rendered(
        self,
        study_instance_uid,
        series_instance_uid,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Render a series: its first image, or every image as an animated ``image/gif``.

        See :meth:`retrieve_instance_rendered` for the parameters.

        Returns
        -------
        bytes
            The rendered series.

        """
        _, names = _accept('rendered', media_types)
        _check_uid(series_instance_uid, 'series_instance_uid', permissive=True)
        stored = [
            item
            for item in self._stored(study_instance_uid, series_instance_uid)
            if item.pixel_tag is not None
        ]
        if not stored:
            raise ValueError(f'series {series_instance_uid} holds no images')
        return self._pixels.render(stored, [1] * len(stored), names, params)

    def retrieve_instance_frames_rendered(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: List[int],
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, str]] = None,
    ) -> bytes:
        """Render frames of an instance (several frames only as animated ``image/gif``).

        See :meth:`retrieve_instance_rendered` for the parameters.

        Returns
        -------
        bytes
            The rendered frames.

        """
        numbers = _check_frame_numbers(frame_numbers)
        _, names = _accept('rendered frames', media_types)
        stored = self._one(study_instance_uid, series_instance_uid, sop_instance_uid)
        self._pixels.check_frames(stored, numbers)
        return self._pixels.render([stored] * len(numbers), list(numbers), names, params)

    def retrieve_study_thumbnail(
        self,
        study_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Render a small still image that stands for a study.

        The image shown is the first frame of the study's first image: series come in
        the order in which :meth:`search_for_series` lists them (Series Number, then
        UID), instances within a series as :meth:`search_for_instances` lists them
        (Instance Number, then UID), and instances without pixel data (documents,
        structured reports) are passed over.  Unless ``params`` gives a ``viewport``, the
        image is shrunk to fit into 128 x 128 pixels with its aspect ratio kept; an image
        that already fits keeps its size.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        media_types: Union[Tuple[str, ...], None], optional
            Acceptable media types: ``image/jpeg`` (default), ``image/png``,
            ``image/gif`` (one still image), ``image/jp2`` (when Pillow writes JPEG
            2000), ``image/*`` or ``*/*`` (both give JPEG).
        params: Union[Dict[str, Any], None], optional
            ``quality`` and ``window`` as for :meth:`retrieve_instance_rendered`, and
            ``viewport``, which replaces the default size: the image is then scaled to
            fit it (up or down), as a rendered image is.

        Returns
        -------
        bytes
            The thumbnail.

        Raises
        ------
        ValueError
            If a UID cannot name a resource, a parameter is wrong, or the study holds no
            image.
        HTTPError
            With status 404 (also a ``FileNotFoundError``) if the study is not in the
            archive, or 406 (also a ``ValueError``) if no acceptable media type can be
            made.

        """
        self._check_thumbnail_uids(study_instance_uid=study_instance_uid)
        _, names = _accept('thumbnails', media_types)
        stored = self._pixels.first_image(
            self._stored(study_instance_uid), f'study {study_instance_uid}'
        )
        return self._pixels.thumbnail(stored, 1, names, params)

    def retrieve_series_thumbnail(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Render a small still image that stands for a series: its first image.

        The image is the first frame of the first instance with pixel data, in the order
        of :meth:`search_for_instances`; see :meth:`retrieve_study_thumbnail` for the
        default size, the parameters and the errors.

        Returns
        -------
        bytes
            The thumbnail.

        """
        self._check_thumbnail_uids(
            study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid
        )
        _, names = _accept('thumbnails', media_types)
        stored = self._pixels.first_image(
            self._stored(study_instance_uid, series_instance_uid), f'series {series_instance_uid}'
        )
        return self._pixels.thumbnail(stored, 1, names, params)

    def retrieve_instance_thumbnail(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Render a small still image of an instance: its first frame.

        See :meth:`retrieve_study_thumbnail` for the default size, the parameters and the
        errors; an instance without pixel data raises ``ValueError``.

        Returns
        -------
        bytes
            The thumbnail.

        """
        self._check_thumbnail_uids(
            study_instance_uid=study_instance_uid,
            series_instance_uid=series_instance_uid,
            sop_instance_uid=sop_instance_uid,
        )
        _, names = _accept('thumbnails', media_types)
        stored = self._one(study_instance_uid, series_instance_uid, sop_instance_uid)
        return self._pixels.thumbnail(stored, 1, names, params)

    def retrieve_instance_frames_thumbnail(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: Optional[MediaTypes] = None,
        params: Optional[Dict[str, Any]] = None,
    ) -> bytes:
        """Render a small still image of frames of an instance: the first one asked for.

        Every frame number must exist in the instance, but only the first is shown (a
        thumbnail is never animated).  See :meth:`retrieve_study_thumbnail` for the
        default size, the parameters and the errors.

        Returns
        -------
        bytes
            The thumbnail.

        """
        self._check_thumbnail_uids(
            study_instance_uid=study_instance_uid,
            series_instance_uid=series_instance_uid,
            sop_instance_uid=sop_instance_uid,
        )
        numbers = _check_frame_numbers(frame_numbers)
        _, names = _accept('thumbnails', media_types)
        stored = self._one(study_instance_uid, series_instance_uid, sop_instance_uid)
        self._pixels.check_frames(stored, numbers)
        return self._pixels.thumbnail(stored, numbers[0], names, params)

    @staticmethod
    def _check_thumbnail_uids(**uids: str) -> None:
        """Check the UIDs of a thumbnail request before anything is looked up."""
        for name, value in uids.items():
            _check_uid(value, name, permissive=True)

    # -- storing and deleting ----------------------------------------------------------------

    def store_instances(
        self, datasets: Sequence[Dataset], study_instance_uid: Optional[str] = None
    ) -> Dataset:
        """Store instances as files ``<study UID>/<series UID>/<SOP instance UID>.dcm``.

        Each file is written under a temporary name and renamed into place, so readers
        never see a partial file; an instance stored before is replaced, not duplicated.

        Parameters
        ----------
        datasets: Sequence[Union[pydicom.dataset.Dataset, bytes, str, os.PathLike]]
            Instances: datasets, or Part 10 files as bytes, paths or binary file objects.
        study_instance_uid: Union[str, None], optional
            Study the instances must belong to.

        Returns
        -------
        pydicom.dataset.Dataset
            Report with ``ReferencedSOPSequence`` (stored instances) and
            ``FailedSOPSequence`` (refused ones, with a ``FailureReason``).

        Raises
        ------
        PermissionError
            If the client is read-only.
        ValueError
            If no instance could be stored (the error is also an ``HTTPError`` 409).

        """
        self._check_writable('POST', 'store_instances')
        items = _store_arguments(datasets, study_instance_uid)
        report = pydicom.Dataset()
        report.ReferencedSOPSequence = []
        report.FailedSOPSequence = []
        accepted = [self._prepare(item, study_instance_uid, report) for item in items]
        written = self._write_files([entry for entry in accepted if entry is not None], report)
        written = list({entry.path: entry for entry in written}.values())  # the last copy wins
        if written:
            self._index.index_stored(written)
        return self._store_report(report, written, len(items))

    def _store_report(self, report: Dataset, written: List[_Written], total: int) -> Dataset:
        """Complete the report of a store request; raise if nothing was stored."""
        for item in written:
            report.ReferencedSOPSequence.append(
                _store_item(item.sop_class, item.uids[2], url=self._address.url(*item.uids))
            )
        failed = report.FailedSOPSequence
        if not written:
            raise _file_error(
                FileClientStoreError,
                409,
                'POST',
                self.base_url,
                'no instance was stored: '
                + '; '.join(
                    f'{item.get("ReferencedSOPInstanceUID", "?")}: reason {item.FailureReason:#06x}'
                    for item in failed
                ),
            )
        report.RetrieveURL = self._address.url(written[0].uids[0])
        if failed:
            logger.warning(
                '%d of %d instances were not stored in %s', len(failed), total, self.base_url
            )
        else:
            del report.FailedSOPSequence
        return report

    def _prepare(self, item: Any, study: Optional[str], report: Dataset) -> Optional[_Accepted]:
        """Encode and check one instance; note a failure in the report."""
        try:
            data = _payload(item)
            header = _parse_buffer(data)
        except Exception as error:  # noqa: BLE001 - whatever the decoder says, it failed
            logger.warning('cannot store an instance: %s', error)
            report.FailedSOPSequence.append(_store_item(None, None, 0xC000))
            return None
        metadata = header.metadata
        uids = tuple(
            _json_first_value(metadata, tag) for tag in ('0020000D', '0020000E', '00080018')
        )
        sop_class = _json_first_value(metadata, '00080016')
        problem = _unsafe_uids(metadata)
        if problem:
            logger.warning('cannot store instance %s: %s', uids[2], problem)
            report.FailedSOPSequence.append(
                _store_item(sop_class, uids[2] if isinstance(uids[2], str) else None, 0xA900)
            )
            return None
        if study is not None and uids[0] != study:
            logger.warning(
                'cannot store instance %s: it belongs to study %s, not %s', uids[2], uids[0], study
            )
            report.FailedSOPSequence.append(_store_item(sop_class, uids[2], 0xA900))
            return None
        return _Accepted(data, header, uids)  # type: ignore[arg-type]

    def _write_files(self, entries: List[_Accepted], report: Dataset) -> List[_Written]:
        """Write the files atomically; note those that cannot be written in the report."""
        written = []
        for entry in entries:
            uids = entry.uids
            relative = '/'.join((uids[0], uids[1], uids[2] + '.dcm'))
            sop_class = _json_first_value(entry.header.metadata, '00080016')
            try:
                path = self._files.absolute(relative)
                _write_atomically(path, entry.data)
                status = os.stat(path)
            except (OSError, ValueError) as error:
                logger.warning('cannot write instance %s: %s', uids[2], error)
                report.FailedSOPSequence.append(_store_item(sop_class, uids[2], 0xA700))
                continue
            written.append(
                _Written(
                    relative, entry.header, uids, sop_class, (status.st_size, status.st_mtime_ns)
                )
            )
        return written

    def delete_study(self, study_instance_uid: str) -> None:
        """Delete all instances of a study (files and index rows).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.

        """
        self._require_uids(study_instance_uid=study_instance_uid)
        self._check_writable('DELETE', 'delete_study')
        self._delete(self._stored(study_instance_uid))

    def delete_series(self, study_instance_uid: str, series_instance_uid: str) -> None:
        """Delete all instances of a series (files and index rows).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        series_instance_uid: str
            Series Instance UID.

        """
        self._require_uids(
            study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid
        )
        self._check_writable('DELETE', 'delete_series')
        _check_uid(series_instance_uid, 'series_instance_uid', permissive=True)
        self._delete(self._stored(study_instance_uid, series_instance_uid))

    def delete_instance(
        self, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str
    ) -> None:
        """Delete an instance (its files and index rows).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID.
        series_instance_uid: str
            Series Instance UID.
        sop_instance_uid: str
            SOP Instance UID.

        """
        self._require_uids(
            study_instance_uid=study_instance_uid,
            series_instance_uid=series_instance_uid,
            sop_instance_uid=sop_instance_uid,
        )
        self._check_writable('DELETE', 'delete_instance')
        self._delete([self._one(study_instance_uid, series_instance_uid, sop_instance_uid)])

    def _delete(self, stored: List[_Stored]) -> None:
        """Remove files and rows together: files are renamed aside, rows deleted and
        committed, then the renamed files removed; a failure renames them back."""
        moved: List[Tuple[str, str]] = []
        with self._index.lock:
            try:
                with self._index.transaction() as connection:
                    paths = self._index.paths_of(connection, [item.sop for item in stored])
                    for relative in paths:
                        self._files.move_aside(relative, moved)
                    self._index.delete_rows(connection, paths)
            except BaseException:
                for original, aside in reversed(moved):
                    with contextlib.suppress(OSError):
                        os.replace(aside, original)
                raise
        for original, aside in moved:
            with contextlib.suppress(OSError):
                os.unlink(aside)
            self._files.remove_empty_folders(os.path.dirname(original))


# the public methods whose argument errors are also HTTP errors (see _as_request_errors)
_REQUEST_METHODS = (
    'search_for_studies',
    'search_for_series',
    'search_for_instances',
    'iter_study',
    'retrieve_study',
    'iter_series',
    'retrieve_series',
    'retrieve_instance',
    'retrieve_instance_file',
    'retrieve_study_metadata',
    'retrieve_series_metadata',
    'retrieve_instance_metadata',
    'iter_instance_frames',
    'retrieve_instance_frames',
    'iter_bulkdata',
    'retrieve_bulkdata',
    'retrieve_instance_rendered',
    'retrieve_series_rendered',
    'retrieve_instance_frames_rendered',
    'retrieve_study_thumbnail',
    'retrieve_series_thumbnail',
    'retrieve_instance_thumbnail',
    'retrieve_instance_frames_thumbnail',
    'store_instances',
    'delete_study',
    'delete_series',
    'delete_instance',
)
for _name in _REQUEST_METHODS:
    setattr(DICOMfileClient, _name, _as_request_errors(getattr(DICOMfileClient, _name)))
del _name


def _root_of(url: str, create: bool) -> str:
    """The absolute folder of a ``file://`` URL (created if missing and ``create``)."""
    if not isinstance(url, str):
        raise TypeError(f'url must be a string, not {url!r}')
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != 'file':
        raise ValueError(f'url {url!r} must use the file scheme (file:///path/to/folder)')
    if parts.netloc not in ('', 'localhost') or parts.query or parts.fragment:
        raise ValueError(
            f'url {url!r} must be a local file URL without host, query or '
            'fragment (file:///path/to/folder)'
        )
    path = urllib.request.url2pathname(parts.path)
    if not path or not os.path.isabs(path):
        raise ValueError(f'url {url!r} must name an absolute path')
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f'url {url!r} names a file, not a folder')
    if not create and not os.path.isdir(path):
        raise ArchiveNotFoundError(
            errno.ENOENT, 'there is no archive folder (pass create_folder=True to create one)', path
        )
    os.makedirs(path, exist_ok=True)
    return path


def _frame_size(stored: _Stored) -> Optional[int]:
    """Bytes per native frame, or ``None`` when frames do not start on byte boundaries."""
    if stored.rows is None or stored.columns is None or stored.bits is None:
        return None
    bits = stored.rows * stored.columns * (stored.samples or 1) * stored.bits
    return bits // 8 if bits % 8 == 0 else None


def _as_explicit_little_endian(dataset: Dataset, stored_syntax: str) -> Dataset:
    """The dataset in Explicit VR Little Endian (decompressing its pixel data if needed)."""
    if stored_syntax in (_IMPLICIT_VR_LITTLE_ENDIAN, _EXPLICIT_VR_LITTLE_ENDIAN):
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.UID(_EXPLICIT_VR_LITTLE_ENDIAN)
        return dataset
    if stored_syntax in _NATIVE_SYNTAXES:
        return _decode_dataset(_reencoded(dataset))
    _image_module('numpy', 'decompressing pixel data')
    if hasattr(pydicom, 'pixels'):  # pydicom 3 would make a new SOP Instance UID by default
        dataset.decompress(generate_instance_uid=False)
    else:  # pydicom 2 keeps the UID (and takes no such argument)
        dataset.decompress()
    return dataset


def _reencoded(dataset: Dataset) -> bytes:
    """A deflated or big endian dataset written as Explicit VR Little Endian."""
    if 'PixelData' in dataset and dataset.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.2':
        array = _pixel_array(dataset)
        dataset.PixelData = array.astype(array.dtype.newbyteorder('<')).tobytes()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.UID(_EXPLICIT_VR_LITTLE_ENDIAN)
    buffer = io.BytesIO()
    _dcmwrite(buffer, dataset, enforce_file_format=True, encoding=(False, True))
    return buffer.getvalue()


def _matched_in_column(column: _Column, criterion: _Criterion) -> bool:
    """Whether a matching key is compared with its index column (one value, no sequence
    path); otherwise it is matched on the stored metadata."""
    return not column.multiple and len(criterion.path) == 1


class _SearchQuery:
    """An SQL query for one search level, and how to turn its rows into DICOM JSON.

    ``r`` is the instance row of the answer (the representative instance of a study or
    series); ``s`` and ``se`` are the study and series aggregate rows.  A row starts with
    the study, series and SOP instance UIDs; every further selected expression has a slot
    ``(tag, VR, kind)``: kind ``column`` is an index column value, ``json`` an element of
    the stored JSON and ``url`` the RetrieveURL (made here).  ``levels`` are the levels
    whose attributes the answers hold (see :func:`_result_levels`); ``required`` the
    tags answered even without a value.
    """

    def __init__(
        self,
        index: _ArchiveIndex,
        url_of: Callable[..., str],
        level: int,
        criteria: List[_Criterion],
        includes: Sequence[str],
        levels: Sequence[int],
    ) -> None:
        self.index = index
        self.url_of = url_of  # the RetrieveURL of (study, series, SOP) UIDs
        self.level = level
        self.levels = frozenset(levels)
        self.select = [f'r."{keyword}"' for keyword in _URL_KEYWORDS]
        self.slots: List[Tuple[str, str, str]] = []
        self.required: 'set[str]' = set()
        self.conditions: List[str] = []
        self.params: List[Any] = []
        self.all_fields = 'all' in includes
        self.makers: Optional[List[Callable[[Any], dict]]] = None
        self.url: Optional[str] = None
        self.source, self.order = _SEARCH_SOURCES[level]
        for result_level in sorted(self.levels):
            for keyword, required in _RESULT_ATTRIBUTES[result_level]:
                self.add_attribute(keyword, required)
        for keyword in _RESULT_ATTRIBUTES_IF_KNOWN:
            self.add_returned(lookup_tag(keyword), required=False)
        self.add_computed('RetrieveURL')
        wanted = [(name, False) for name in includes if name != 'all']
        wanted += [(criterion.name, True) for criterion in criteria]
        for name, matching in wanted:
            tag = _tag_of(name.split('.')[0])
            if self.answers(tag, matching):
                self.add_returned(tag)
        if self.all_fields:
            self.select.append('r.metadata')

    def add(self, tag: str, vr: str, kind: str, expression: str) -> None:
        if all(slot[0] != tag for slot in self.slots):
            self.slots.append((tag, vr, kind))
            self.select.append(expression)

    def add_attribute(self, keyword: str, required: bool) -> None:
        """Return an attribute of the answers at one level (see ``_RESULT_ATTRIBUTES``).

        Parameters
        ----------
        keyword: str
            Keyword of an index column or of an attribute computed from the aggregates.
        required: bool
            Answer it without a value (``{"vr": ...}``) when it has none.

        """
        tag = lookup_tag(keyword)
        if keyword in _COMPUTED:
            self.add_computed(keyword)
        else:
            column = _COLUMNS_BY_TAG[tag]
            self.add(tag, column.vr, 'column', _column_expression(column, 'r'))
        if required:
            self.required.add(tag)

    def add_computed(self, keyword: str) -> None:
        """Return an attribute computed from the aggregates (or the row) too."""
        vr = _COMPUTED[keyword][0]
        if keyword == 'RetrieveURL':
            self.add(lookup_tag(keyword), vr, 'url', 'NULL')
        elif keyword == 'AvailableTransferSyntaxUID':
            if self.level == _INSTANCE:
                self.add(lookup_tag(keyword), vr, 'column', 'r.transfer_syntax')
        elif not (keyword == 'NumberOfSeriesRelatedInstances' and self.level == _STUDY):
            self.add(lookup_tag(keyword), vr, 'column', self.aggregate(keyword))

    def aggregate(self, keyword: str) -> str:
        table, column, key = _AGGREGATES[keyword]
        if table == 'studies' and self.level == _STUDY:
            return f's.{column}'
        if table == 'series' and self.level == _SERIES:
            return f'se.{column}'
        return f'(SELECT z.{column} FROM {table} z WHERE z."{key}" = r."{key}")'

    def add_returned(self, tag: str, required: bool = True) -> None:
        """Return an attribute asked for by ``fields`` or used as a matching key.

        Parameters
        ----------
        tag: str
            Eight hex digit tag.
        required: bool, optional
            Answer it without a value when it has none, as a C-FIND SCP answers a
            return key (PS3.18 8.3.4.3: an included field is universally matched).

        """
        if tag in _COMPUTED_BY_TAG:
            self.add_computed(_COMPUTED_BY_TAG[tag])
            return
        column = _COLUMNS_BY_TAG.get(tag)
        if column is not None and not column.multiple:
            self.add(tag, column.vr, 'column', _column_expression(column, 'r'))
        else:
            self.add(tag, _vr_of(tag), 'json', f"_dwc_element(r.metadata, '{tag}')")
        if required:
            self.required.add(tag)

    def answers(self, tag: str, matching: bool) -> bool:
        """Whether the answers hold an attribute that is asked for (PS3.18 10.6.3.3).

        Parameters
        ----------
        tag: str
            Eight hex digit tag of an included field or of a matching key.
        matching: bool
            A matching key: only those of the levels answered come back; an included
            field may be of any level up to the one searched for.

        Returns
        -------
        bool
            Whether to answer it (private attributes always).

        """
        if int(tag[:4], 16) % 2:
            return True
        level = _answer_level(tag)
        return level in self.levels if matching else level <= self.level

    def where(self, condition: str, params: List[Any]) -> None:
        self.conditions.append(condition)
        self.params.extend(params)

    def add_criterion(self, criterion: _Criterion) -> List[int]:
        """Add the condition of a matching key; return keys of registered criteria."""
        if not criterion.tests:
            return []
        tag = criterion.top_tag
        if tag in _COMPUTED_BY_TAG:
            self.computed_condition(criterion, _COMPUTED_BY_TAG[tag])
            return []
        column = _COLUMNS_BY_TAG.get(tag)
        level = column.level if column is not None else _level_of(tag)
        keys: List[int] = []
        if column is not None and _matched_in_column(column, criterion):
            folded = f'x."{column.keyword}_fold"' if column.vr == 'PN' else None
            condition, params = criterion.sql(_column_expression(column, 'x'), folded)
        else:
            key = self.index.register(criterion)
            keys.append(key)
            condition = f"_dwc_match(x.metadata, '{tag}', ?)"
            params = [key]
        if level <= self.level or self.level == _INSTANCE:
            self.where(condition.replace('x.', 'r.'), params)
        else:
            key_column = 'StudyInstanceUID' if self.level == _STUDY else 'SeriesInstanceUID'
            self.where(
                f'EXISTS (SELECT 1 FROM instances x WHERE x."{key_column}" = '
                f'r."{key_column}" AND {condition})',
                params,
            )
        return keys

    def computed_condition(self, criterion: _Criterion, keyword: str) -> None:
        if keyword == 'ModalitiesInStudy':
            condition, params = criterion.sql('y."Modality"')
            self.where(
                'EXISTS (SELECT 1 FROM series y WHERE y."StudyInstanceUID" = '
                f'r."StudyInstanceUID" AND {condition})',
                params,
            )
        elif keyword in _AGGREGATES:
            condition, params = criterion.sql(self.aggregate(keyword))
            self.where(condition, params)
        elif keyword == 'AvailableTransferSyntaxUID':
            condition, params = criterion.sql('r.transfer_syntax')
            self.where(condition, params)

    def run(self, limit: Optional[int], offset: Optional[int]) -> List[tuple]:
        sql = f'SELECT {", ".join(self.select)} FROM {self.source}'
        if self.conditions:
            sql += ' WHERE ' + ' AND '.join(self.conditions)
        sql += f' ORDER BY {self.order}'
        params = list(self.params)
        if limit is not None or offset:
            sql += ' LIMIT ? OFFSET ?'
            params += [-1 if limit is None else limit, offset or 0]
        return self.index.connection.execute(sql, params).fetchall()

    def rows(
        self, criteria: List[_Criterion], limit: Optional[int], offset: Optional[int]
    ) -> List[tuple]:
        """Add the matching keys and run the query; the criteria matched on the stored
        metadata are registered in the index only while it runs."""
        with self.index.lock:
            keys: List[int] = []
            try:
                for criterion in criteria:
                    keys += self.add_criterion(criterion)
                return self.run(limit, offset)
            finally:
                for key in keys:
                    self.index.criteria.pop(key, None)

    def answer(self, row: tuple) -> Dict[str, dict]:
        """The DICOM JSON of one result row."""
        if self.makers is None:
            self.makers = [
                json.loads if kind == 'json' else _element_maker(vr) for _, vr, kind in self.slots
            ]
            self.url = next((tag for tag, _, kind in self.slots if kind == 'url'), None)
        result: Dict[str, dict] = {}
        if self.all_fields:
            metadata = json.loads(_unpack_metadata(row[-1]))
            result.update(
                (tag, element)
                for tag, element in metadata.items()
                if 'BulkDataURI' not in element and _level_of(tag) in self.levels
            )
        uids, values = row[: len(_URL_KEYWORDS)], row[len(_URL_KEYWORDS) :]
        for (tag, vr, _), make, value in zip(self.slots, self.makers, values):
            if value is not None:
                result[tag] = make(value)
            elif tag in self.required and tag not in result:
                result[tag] = {'vr': vr}
        if self.url is not None:
            result[self.url] = {'vr': 'UR', 'Value': [self.url_of(*uids[: self.level + 1])]}
        return dict(sorted(result.items()))


# the UIDs that start every search row: they make the Retrieve URL of an answer
_URL_KEYWORDS = ('StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID')


def _column_expression(column: _Column, alias: str) -> str:
    """The SQL value of an index column of the instance row ``alias``.

    An image without Number of Frames has one frame (PS3.3 C.7.6.6), so its value is 1.
    """
    if column.keyword == 'NumberOfFrames':
        return (
            f'CASE WHEN {alias}.pixel_tag IS NULL THEN {alias}."NumberOfFrames" '
            f'ELSE COALESCE({alias}."NumberOfFrames", 1) END'
        )
    return f'{alias}.{column.sql}'


def _answer_level(tag: str) -> int:
    """The level an attribute (eight hex digit tag) is answered at.

    Parameters
    ----------
    tag: str
        Tag of a requested or matching attribute.

    Returns
    -------
    int
        Its level: searches for a higher level do not answer it.

    """
    computed = _COMPUTED_BY_TAG.get(tag)
    if computed is not None:
        return _COMPUTED[computed][1]
    return _level_of(tag)


def _result_levels(level: int, study: Optional[str], series: Optional[str]) -> Tuple[int, ...]:
    """The levels whose attributes the answers of a search hold (PS3.18 10.6.3.3).

    Parameters
    ----------
    level: int
        Level searched for.
    study: Union[str, None]
        Study the search is scoped to.
    series: Union[str, None]
        Series the search is scoped to (only with a study; without one it is a filter).

    Returns
    -------
    Tuple[int, ...]
        The level itself and those above it that the search is not scoped to.

    """
    if study is None:
        return tuple(range(_STUDY, level + 1))
    if level == _INSTANCE and series is None:
        return (_SERIES, _INSTANCE)
    return (level,)


_SEARCH_SOURCES = {
    _STUDY: (
        'studies s JOIN instances r ON r.id = s.rep',
        'r."StudyDate", r."StudyTime", s."StudyInstanceUID"',
    ),
    _SERIES: (
        'series se JOIN instances r ON r.id = se.rep',
        'r."StudyDate", r."StudyInstanceUID", r."SeriesNumber", se."SeriesInstanceUID"',
    ),
    _INSTANCE: (
        'instances r',
        'r."StudyInstanceUID", r."SeriesInstanceUID", r."InstanceNumber", r."SOPInstanceUID"',
    ),
}


# ---------------------------------------------------------------------------------------
# Cohorts: a manifest in, a folder of complete files out
# ---------------------------------------------------------------------------------------

# -- manifests: lists of studies, series and instances ----------------------------------

#: the manifest's column names (CSV) and DICOM JSON tags, by level
_MANIFEST_COLUMNS = ('StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID')
_MANIFEST_TAGS = ('0020000D', '0020000E', '00080018')
_MANIFEST_SEPARATORS = re.compile(r'[\s,/]+')


@dataclasses.dataclass(frozen=True)
class CohortItem:
    """One line of a cohort manifest: a study, a series or an instance.

    Parameters
    ----------
    study: str
        The Study Instance UID.
    series: Union[str, None], optional
        The Series Instance UID, for a series or an instance.
    sop: Union[str, None], optional
        The SOP Instance UID, for an instance (which then needs ``series`` too).

    Raises
    ------
    ValueError
        If ``sop`` is given without ``series``.

    """

    study: str
    series: Optional[str] = None
    sop: Optional[str] = None

    def __post_init__(self) -> None:
        if self.sop is not None and self.series is None:
            raise ValueError('an instance needs its Series Instance UID as well')

    @property
    def level(self) -> str:
        """``'study'``, ``'series'`` or ``'instance'``."""
        if self.sop is not None:
            return 'instance'
        return 'study' if self.series is None else 'series'

    def __str__(self) -> str:
        return '/'.join(uid for uid in (self.study, self.series, self.sop) if uid is not None)

    def shard(self, count: int) -> int:
        """Which of ``count`` shares of a cohort (counting from 0) the item belongs to.

        The share is decided by the item's study and series (a study item's by its study
        alone), so that the items of one series always fall in the same share, and it is
        the same on every machine and in every run.

        Parameters
        ----------
        count: int
            The number of shares.

        Returns
        -------
        int
            From ``0`` to ``count - 1``.

        """
        key = self.study if self.series is None else f'{self.study}/{self.series}'
        return zlib.crc32(key.encode('utf-8')) % count


def read_manifest(
    lines: Iterable[Union[str, bytes]], permissive: bool = False
) -> Iterator[CohortItem]:
    """Read a cohort manifest: the studies, series and instances to download.

    The first line that is not blank or a comment decides the format of the manifest:

    * UIDs, one item per line: a study, ``study series`` or ``study series instance``,
      the UIDs separated by ``/``, white space or commas (``#`` starts a comment);
    * CSV whose header names some of the columns ``StudyInstanceUID``,
      ``SeriesInstanceUID`` and ``SOPInstanceUID`` in any order (others are ignored;
      a row with an empty series cell is a study, with an empty instance cell a series);
    * DICOM JSON as the command line's ``search`` prints it: an array of objects on one
      line, or one object per line; tags 0020000D, 0020000E and 00080018 are read.

    Blank lines and lines starting with ``#`` are skipped.  The lines are read one at a
    time as the items are asked for, so a manifest of any length takes little memory.

    Parameters
    ----------
    lines: Iterable[Union[str, bytes]]
        The lines of the manifest, for example an open file (text or binary, UTF-8).
    permissive: bool, optional
        Accept non-conformant UIDs that can still be one URL path segment (as the
        clients' ``permissive_uid`` does).

    Yields
    ------
    CohortItem
        One item per line (per object of a JSON array), in the manifest's order.

    Raises
    ------
    ValueError
        If a line cannot be read or holds an invalid UID; the message starts with
        ``line N:``.  The items of the lines before it have been yielded by then.

    Examples
    --------
    >>> [str(item) for item in read_manifest(['1.2.3', '# a comment', '1.2.3/4.5'])]
    ['1.2.3', '1.2.3/4.5']

    """
    columns: Optional[List[Optional[int]]] = None  # CSV: the column of each level
    kind = None
    for number, line in enumerate(lines, start=1):
        text = line.decode('utf-8') if isinstance(line, bytes) else line
        if number == 1:
            text = text.lstrip('\ufeff')
        text = text.strip()
        if not text or text.startswith('#'):
            continue
        try:
            if kind is None:
                kind = _manifest_kind(text)
                if kind == 'csv':
                    columns = _manifest_header(text)
                    continue
            if kind == 'json':
                items = _manifest_json(text)
            elif kind == 'csv':
                items = [_manifest_row(text, cast(List[Optional[int]], columns))]
            else:
                items = [_manifest_words(text)]
            for uids in items:
                yield _cohort_item(uids, permissive)
        except ValueError as error:
            raise ValueError(f'line {number}: {error}') from None


def _manifest_kind(text: str) -> str:
    """The format of a manifest whose first line is ``text``: json, csv or uids."""
    if text[0] in '[{':
        return 'json'
    import csv  # imported here: only manifests need it

    names = {cell.strip().lower() for cell in next(csv.reader([text]))}
    return 'csv' if names & {name.lower() for name in _MANIFEST_COLUMNS} else 'uids'


def _manifest_header(text: str) -> List[Optional[int]]:
    import csv

    names = [cell.strip().lower() for cell in next(csv.reader([text]))]
    columns = [
        names.index(name.lower()) if name.lower() in names else None for name in _MANIFEST_COLUMNS
    ]
    if columns[0] is None:
        raise ValueError('the CSV header names no StudyInstanceUID column')
    if columns[2] is not None and columns[1] is None:
        raise ValueError(
            'the CSV header names a SOPInstanceUID column but no SeriesInstanceUID column'
        )
    return columns


def _manifest_row(text: str, columns: List[Optional[int]]) -> List[Optional[str]]:
    import csv

    cells = next(csv.reader([text]))
    uids: List[Optional[str]] = []
    for column in columns:
        cell = cells[column].strip() if column is not None and column < len(cells) else ''
        uids.append(cell or None)
    return uids


def _manifest_words(text: str) -> List[Optional[str]]:
    words = [word for word in _MANIFEST_SEPARATORS.split(text.partition('#')[0]) if word]
    if len(words) > 3:
        raise ValueError(
            f'{len(words)} UIDs where a study, series and instance UID are the most: {text!r}'
        )
    return list(words) + [None] * (3 - len(words))


def _manifest_json(text: str) -> List[List[Optional[str]]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f'not JSON ({error.msg}); a JSON manifest holds an array on one line or an '
            'object per line'
        ) from None
    objects = value if isinstance(value, list) else [value]
    result = []
    for item in objects:
        if not isinstance(item, dict):
            raise ValueError(f'a DICOM JSON object was expected, not {item!r}')
        uids: List[Optional[str]] = []
        for tag in _MANIFEST_TAGS:
            try:
                uid = _first_value(item, tag)
            except ValueError:
                uid = None
            uids.append(uid)
        result.append(uids)
    return result


def _cohort_item(uids: Sequence[Optional[str]], permissive: bool) -> CohortItem:
    study, series, sop = uids
    if study is None:
        raise ValueError('no Study Instance UID')
    if sop is not None and series is None:
        raise ValueError('an instance without its Series Instance UID')
    for uid, name in zip(uids, _MANIFEST_COLUMNS):
        if uid is not None:
            if not isinstance(uid, str):
                raise ValueError(f'{name} {uid!r} is not a string')
            _check_uid(uid, name, permissive)
    return CohortItem(study, series, sop)


# -- downloading a cohort ---------------------------------------------------------------

#: what a listed or given UID must look like to name a folder or file as it is
_FILE_NAME_UID = re.compile(r'[0-9A-Za-z][0-9A-Za-z._-]{0,127}')
#: folders whose leftovers a cohort download has removed lately (see _CohortRun.clean)
_CLEANED_FOLDERS_KEPT = 1024


def _file_name_uid(uid: Any) -> Optional[str]:
    """``uid`` if it can name a file or folder as it is (no path tricks), else ``None``."""
    if isinstance(uid, str) and _FILE_NAME_UID.fullmatch(uid) and '..' not in uid:
        return uid
    return None


def _new_file_mode() -> int:
    """The permission bits ``open`` gives a new file: 0o666 less the umask.

    Linux tells the umask in ``/proc/self/status``; elsewhere it can only be read by
    setting it, which briefly puts the most private mask in force for every thread of
    the process, so there this is best called before threads start.
    """
    with contextlib.suppress(OSError, ValueError):
        with open('/proc/self/status', encoding='ascii', errors='replace') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return 0o666 & ~int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


def _describe_error(error: BaseException) -> str:
    """One line saying what went wrong: status, request and the server's message for an
    HTTP error, else the error's own text."""
    if isinstance(error, HTTPError):
        phrase = _reason_phrase(error.status_code)
        text = f'{error.status_code} {phrase} from {error.method} {error.url}'
        message = ' '.join((error.message or '').split())
        if message and message != phrase:
            text += f': {message}'
        return text
    if isinstance(error, (RequestException, ValueError, OSError)):
        return ' '.join(str(error).split()) or type(error).__name__
    return ' '.join(f'{type(error).__name__}: {error}'.split())


@dataclasses.dataclass
class CohortItemResult:
    """What became of one item of a cohort download (see :func:`download_cohort`).

    Parameters
    ----------
    item: CohortItem
        The study, series or instance of the manifest.
    downloaded: int
        Files fetched for it in this run.
    present: int
        Files that were already there (complete: files only get their names when
        complete) and were not fetched again.
    failed: int
        Instances that could not be fetched or saved.
    nbytes: int
        Bytes of its files, fetched and present.
    error: Union[str, None]
        What went wrong first, one line; ``None`` if nothing did.

    """

    item: CohortItem
    downloaded: int = 0
    present: int = 0
    failed: int = 0
    nbytes: int = 0
    error: Optional[str] = None

    @property
    def status(self) -> str:
        """``'ok'`` when every instance of the item is on disk, else ``'failed'``."""
        return 'ok' if self.error is None and not self.failed else 'failed'

    @property
    def files(self) -> int:
        """Files of the item on disk: downloaded and present."""
        return self.downloaded + self.present

    def as_report(self) -> Dict[str, Any]:
        """The item as one JSON-ready line of a report (the command line's ``--report``)."""
        return {
            'item': str(self.item),
            'files': self.files,
            'bytes': self.nbytes,
            'downloaded': self.downloaded,
            'present': self.present,
            'failed': self.failed,
            'status': self.status,
            'error': self.error,
        }


@dataclasses.dataclass
class CohortTotals:
    """Running totals of a cohort download; its final state is what
    :func:`download_cohort` returns.

    Parameters
    ----------
    items: int
        Items started (taken from the manifest).
    items_total: Union[int, None]
        Items the download holds, when known (given, or once the manifest is read).
    items_listed: int
        Items whose instances are known (listed by the server, or named by the item).
    items_ok: int
        Items finished with every instance on disk.
    items_failed: int
        Items finished with something missing.
    listed: int
        Instances known so far.
    downloaded: int
        Instances fetched.
    present: int
        Instances already on disk.
    failed: int
        Instances that failed.
    nbytes: int
        Bytes fetched.
    present_bytes: int
        Bytes of the files already on disk.
    elapsed: float
        Seconds since the download started.

    """

    items: int = 0
    items_total: Optional[int] = None
    items_listed: int = 0
    items_ok: int = 0
    items_failed: int = 0
    listed: int = 0
    downloaded: int = 0
    present: int = 0
    failed: int = 0
    nbytes: int = 0
    present_bytes: int = 0
    elapsed: float = 0.0

    @property
    def finished(self) -> int:
        """Instances dealt with: downloaded, present or failed."""
        return self.downloaded + self.present + self.failed

    @property
    def rate(self) -> float:
        """Bytes fetched per second."""
        return self.nbytes / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> Optional[float]:
        """Seconds still to go, estimated from the instances per item listed so far and
        the pace of the fetches; ``None`` while there is no basis for a guess."""
        if self.items_total is None or not self.items_listed or not self.downloaded:
            return None
        expected = self.listed * max(self.items_total, self.items_listed) / self.items_listed
        pace = self.downloaded / self.elapsed if self.elapsed > 0 else 0.0
        return max(expected - self.finished, 0.0) / pace if pace else None


@dataclasses.dataclass
class _CohortFile:
    """One instance of a cohort item to fetch: its UIDs and the file it goes to."""

    study: str
    series: str
    sop: str
    path: str


class _ItemState:
    """An item of a cohort download while it is under way."""

    def __init__(self, item: CohortItem) -> None:
        self.result = CohortItemResult(item)
        self.listed = False  # its instances are known (and queued)
        self.pending = 0  # its instances queued or being fetched

    @property
    def done(self) -> bool:
        return self.listed and not self.pending

    def fail(self, message: str) -> None:
        if self.result.error is None:
            self.result.error = message


class _InlinePool:
    """Runs each submitted call at once, in the calling thread (a file client is not
    shared between threads, and one worker needs no thread)."""

    def submit(self, function: Callable[..., Any], *args: Any) -> Any:
        import concurrent.futures

        future: Any = concurrent.futures.Future()
        try:
            future.set_result(function(*args))
        except Exception as error:  # noqa: BLE001 - handed to the caller with the future
            future.set_exception(error)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Nothing runs in the background, so there is nothing to wait for."""


class _CohortRun:
    """One run of :func:`download_cohort`: lists the items' instances and fetches them
    with one pool of threads, so that the instances of every item share the workers.

    The calling thread takes the next item from the manifest only while fewer than
    ``2 * workers`` instances wait and no listing is under way, keeps ``2 * workers``
    fetches under way and at most :attr:`MAX_WAITING_RESULTS` finished items waiting for
    an earlier one, so memory stays bounded whatever the manifest's length.  Results and
    callbacks all happen in the calling thread, in the manifest's order.
    """

    MAX_WAITING_RESULTS = 10_000

    def __init__(
        self,
        client: Any,
        folder: str,
        workers: int,
        media_types: Optional[MediaTypes],
        on_item: Optional[Callable[[CohortItemResult], None]],
        on_progress: Optional[Callable[[CohortTotals], None]],
        on_error: Optional[Callable[[str, BaseException], None]],
    ) -> None:
        self.client = client
        self.folder = folder
        self.workers = workers
        self.options = {} if media_types is None else {'media_types': media_types}
        self.on_item = on_item
        self.on_progress = on_progress
        self.on_error = on_error
        self.mode = _new_file_mode()  # before any worker thread starts
        file_client = isinstance(client, DICOMfileClient)
        self.where = 'the archive holds' if file_client else 'the server listed'
        self.totals = CohortTotals()
        self.started = time.monotonic()
        self.wall_start = time.time()
        self.order: Deque[_ItemState] = collections.deque()  # started, not yet reported
        self.waiting: Deque[Tuple[_ItemState, _CohortFile]] = collections.deque()
        self.calls: Dict[Any, Tuple[_ItemState, Optional[_CohortFile]]] = {}
        self.finished: 'queue.SimpleQueue[Any]' = queue.SimpleQueue()  # calls that ended
        self.listings = 0  # listing calls under way
        self.cleaned: 'collections.OrderedDict[str, None]' = collections.OrderedDict()
        self.cleaning = threading.Lock()

    # -- the loop -----------------------------------------------------------------------

    def run(self, items: Iterator[CohortItem], total_items: Optional[int]) -> CohortTotals:
        import concurrent.futures

        self.totals.items_total = total_items
        inline = self.workers == 1 or isinstance(self.client, DICOMfileClient)
        pool: Any = (
            _InlinePool()
            if inline
            else concurrent.futures.ThreadPoolExecutor(self.workers, 'dicomweb-cohort')
        )
        try:
            more = True
            while True:
                more = self.fill(pool, items, more)
                if not self.calls:
                    break
                self.settle(self.finished.get())
                while not self.finished.empty():  # and whatever else finished meanwhile
                    self.settle(self.finished.get())
                self.report()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self.report()
        return self.totals

    def fill(self, pool: Any, items: Iterator[CohortItem], more: bool) -> bool:
        """Start calls until ``2 * workers`` fetches are under way; ``False`` once the
        manifest has no more items.

        The next item is taken while fewer than ``2 * workers`` instances wait and no
        listing is under way, so the next series is listed while the last instances of
        the one before are fetched, and what waits stays bounded.
        """
        while True:
            if (
                more
                and not self.listings
                and len(self.waiting) < 2 * self.workers
                and len(self.order) < self.MAX_WAITING_RESULTS
            ):
                item = next(items, None)
                if item is None:
                    self.totals.items_total = self.totals.items
                    more = False
                else:
                    self.start(pool, item)
            elif self.waiting and len(self.calls) < 2 * self.workers:
                state, file = self.waiting.popleft()
                self.submit(pool, self.fetch, file, state, file)
            else:
                return more

    def start(self, pool: Any, item: CohortItem) -> None:
        """Take an item: its one file is known, or a call lists its instances."""
        state = _ItemState(item)
        self.order.append(state)
        self.totals.items += 1
        unsafe = next(
            (
                uid
                for uid in (item.study, item.series, item.sop)
                if uid is not None and _file_name_uid(uid) is None
            ),
            None,
        )
        if unsafe is not None:
            self.item_failed(state, ValueError(f'UID {unsafe!r} cannot name a folder or file'))
        elif item.sop is None:
            self.listings += 1
            self.submit(pool, self.plan, item, state, None)
        else:
            assert item.series is not None  # an instance item always has its series
            path = os.path.join(self.folder, item.study, item.series, f'{item.sop}.dcm')
            self.clean(os.path.dirname(path), {os.path.basename(path)})
            self.queue(state, [_CohortFile(item.study, item.series, item.sop, path)], [])

    def submit(
        self,
        pool: Any,
        work: Callable[[Any], Any],
        argument: Any,
        state: _ItemState,
        file: Optional[_CohortFile],
    ) -> None:
        """Start a call; when it ends, it is put on :attr:`finished` (in the worker)."""
        call = pool.submit(work, argument)
        self.calls[call] = (state, file)
        call.add_done_callback(self.finished.put)

    def settle(self, call: Any) -> None:
        """Count a finished call: a listing queues its files, a fetch counts one."""
        state, file = self.calls.pop(call)
        error = call.exception()
        if file is None:
            self.listings -= 1
            if error is not None:
                self.item_failed(state, error)
            else:
                files, refused = call.result()
                self.queue(state, files, refused)
            return
        state.pending -= 1
        if error is not None:
            self.file_failed(state, file.sop, error)
            return
        size, present = call.result()
        state.result.nbytes += size
        if present:
            state.result.present += 1
            self.totals.present += 1
            self.totals.present_bytes += size
        else:
            state.result.downloaded += 1
            self.totals.downloaded += 1
            self.totals.nbytes += size

    def queue(
        self, state: _ItemState, files: List[_CohortFile], refused: List[BaseException]
    ) -> None:
        """Queue the files of a listed item (each fetch sees whether its file is there
        already); each listed instance that cannot be fetched counts as failed."""
        state.listed = True
        self.totals.items_listed += 1
        self.totals.listed += len(files) + len(refused)
        for error in refused:
            self.file_failed(state, '', error)
        if not files and not refused:
            level = state.result.item.level
            self.item_failed(state, ValueError(f'{self.where} no instances of the {level}'))
            return
        state.pending += len(files)
        self.waiting.extend((state, file) for file in files)

    def report(self) -> None:
        """Hand on the finished items at the head of the manifest, and the totals."""
        while self.order and self.order[0].done:
            result = self.order.popleft().result
            if result.status == 'ok':
                self.totals.items_ok += 1
            else:
                self.totals.items_failed += 1
            if self.on_item is not None:
                self.on_item(result)
        self.totals.elapsed = time.monotonic() - self.started
        if self.on_progress is not None:
            self.on_progress(self.totals)

    # -- failures -----------------------------------------------------------------------

    def item_failed(self, state: _ItemState, error: BaseException) -> None:
        state.listed = True
        text = _describe_error(error)
        state.fail(text)
        self.complain(f'{state.result.item}: {text}', error)

    def file_failed(self, state: _ItemState, sop: str, error: BaseException) -> None:
        """Count an instance that failed; ``sop`` is empty for one the server listed
        without a UID that can name its file."""
        text = _describe_error(error)
        message = f'instance {sop}: {text}' if sop else text
        state.result.failed += 1
        self.totals.failed += 1
        state.fail(message)
        self.complain(message, error)

    def complain(self, message: str, error: BaseException) -> None:
        if self.on_error is not None:
            self.on_error(message, error)
        else:
            logger.warning('cohort download: %s', message)

    # -- what the workers do ------------------------------------------------------------

    def plan(self, item: CohortItem) -> Tuple[List[_CohortFile], List[BaseException]]:
        """The files of a study or series item, listed by the client (all pages), and the
        listed UIDs that cannot name a file or folder (with why)."""
        if item.series is not None:
            series_uids = [item.series]
            refused: List[BaseException] = []
        else:
            listed = self.client.search_for_series(
                study_instance_uid=item.study, get_remaining=True
            )
            series_uids, refused = _listed_names(listed, '0020000E', 'a series')
        files: List[_CohortFile] = []
        for series in dict.fromkeys(series_uids):
            found = self.client.search_for_instances(
                study_instance_uid=item.study, series_instance_uid=series, get_remaining=True
            )
            sops, wrong = _listed_names(found, '00080018', 'an instance')
            refused += wrong
            folder = os.path.join(self.folder, item.study, series)
            self.clean(folder, {f'{sop}.dcm' for sop in sops})
            files += [
                _CohortFile(item.study, series, sop, os.path.join(folder, f'{sop}.dcm'))
                for sop in dict.fromkeys(sops)
            ]
        return files, refused

    def fetch(self, file: _CohortFile) -> Tuple[int, bool]:
        """The size of an instance's file and whether it was there already; if it was
        not, the instance is fetched and written, byte for byte as it came."""
        size, _ = _size_and_mtime(file.path)
        if size:  # an empty file is no file
            return size, True
        data = _payload(
            self.client.retrieve_instance_file(file.study, file.series, file.sop, **self.options)
        )
        _write_atomically(file.path, data, self.mode)
        return len(data), False

    def clean(self, folder: str, names: Set[str]) -> None:
        """Remove what an interrupted run left in ``folder``: temporary files of the atomic
        write older than this run, and ``<name>.part`` files of the ``names`` to come
        (what earlier versions of the command line wrote).  Files being written by this
        run are younger than it, so they are never touched; a folder is looked at once
        (while it is among the last :data:`_CLEANED_FOLDERS_KEPT`)."""
        with self.cleaning:
            if folder in self.cleaned:
                self.cleaned.move_to_end(folder)
                return
            self.cleaned[folder] = None
            if len(self.cleaned) > _CLEANED_FOLDERS_KEPT:
                self.cleaned.popitem(last=False)
        try:
            entries = list(os.scandir(folder))
        except OSError:  # not made yet: nothing was left there
            return
        parts = {name + '.part' for name in names}
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.name in parts or (
                    entry.name.startswith(_TEMPORARY_PREFIX)
                    and entry.stat(follow_symlinks=False).st_mtime < self.wall_start
                ):
                    if entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)


def _listed_names(
    listed: Iterable[Dict[str, Any]], tag: str, what: str
) -> Tuple[List[str], List[BaseException]]:
    """The UIDs ``tag`` of search results that can name a file or folder, and for the
    others the error that says why."""
    names: List[str] = []
    refused: List[BaseException] = []
    for item in listed:
        try:
            uid = _first_value(item, tag)
        except ValueError as error:
            refused.append(error)
            continue
        if _file_name_uid(uid) is None:
            name = 'a folder' if what == 'a series' else 'a file'
            refused.append(
                ValueError(f'the server listed {what} UID that cannot be {name} name: {uid!r}')
            )
        else:
            names.append(uid)
    return names, refused


def download_cohort(
    client: Any,
    items: Iterable[CohortItem],
    output_dir: Union[str, os.PathLike],
    workers: int = 4,
    media_types: Optional[MediaTypes] = None,
    shard: Optional[Tuple[int, int]] = None,
    on_item: Optional[Callable[[CohortItemResult], None]] = None,
    on_progress: Optional[Callable[[CohortTotals], None]] = None,
    on_error: Optional[Callable[[str, BaseException], None]] = None,
    total_items: Optional[int] = None,
) -> CohortTotals:
    """Download every instance of a cohort to ``<output_dir>/<study>/<series>/<sop>.dcm``.

    The instances of study and series items are listed with QIDO-RS (every page), then
    all instances of all items are fetched one request each by ``workers`` threads that
    share the client.  Each file keeps the bytes the server sent and is written under a
    temporary name, on disk, then renamed, so a file with its name is complete whenever
    the process is stopped; files already there are not fetched again and leftovers of a
    stopped run are removed, so running the same manifest again fetches only what is
    missing or failed.  An item or instance that fails is reported and the rest go on.

    Parameters
    ----------
    client: Union[DICOMwebClient, DICOMfileClient]
        Where the instances come from (a file client fetches in the calling thread).
    items: Iterable[CohortItem]
        The cohort, e.g. :func:`read_manifest` of a file; read as it is needed.
    output_dir: Union[str, os.PathLike]
        The folder to download to (made with the first file, if missing).
    workers: int, optional
        Instances fetched at a time.
    media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
        Acceptable media types and transfer syntaxes of the instances.
    shard: Union[Tuple[int, int], None], optional
        ``(K, N)``: download only the K-th (from 1) of N shares of the cohort
        (:meth:`CohortItem.shard`), so that N machines or processes can share it.
    on_item: Union[Callable[[CohortItemResult], None], None], optional
        Called with the result of each item, in the order of ``items``.
    on_progress: Union[Callable[[CohortTotals], None], None], optional
        Called with the running totals whenever something finished.
    on_error: Union[Callable[[str, BaseException], None], None], optional
        Called with a line saying what failed and the error; by default that line is
        logged as a warning.
    total_items: Union[int, None], optional
        How many items ``items`` holds, if known, for the estimate of the time left.

    Returns
    -------
    CohortTotals
        What was downloaded, found present and failed.

    Raises
    ------
    ValueError
        If ``workers`` or ``shard`` is wrong, or ``items`` raises it (a manifest line
        that cannot be read): the instances under way are finished first.

    Examples
    --------
    >>> with open('cohort.csv', 'rb') as manifest:  # doctest: +SKIP
    ...     totals = download_cohort(client, read_manifest(manifest), 'cohort', workers=8)

    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f'workers must be a positive integer, not {workers!r}')
    if media_types is not None:
        _normalize_media_types(media_types)
    selected = iter(items)
    if shard is not None:
        index, count = _check_shard(shard)
        selected = (item for item in selected if _in_shard(item, (index, count)))
    folder = os.fspath(output_dir)
    run = _CohortRun(client, folder, workers, media_types, on_item, on_progress, on_error)
    return run.run(selected, total_items)


def _in_shard(item: CohortItem, shard: Tuple[int, int]) -> bool:
    """Whether ``item`` belongs to share ``(K, N)`` (K from 1) of a cohort."""
    index, count = shard
    return item.shard(count) == index - 1


def _check_shard(shard: Any) -> Tuple[int, int]:
    """``(K, N)`` with ``1 <= K <= N``, else ``ValueError``."""
    try:
        index, count = shard
    except (TypeError, ValueError):
        raise ValueError(f'shard must be a pair (K, N), not {shard!r}') from None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (index, count)) or not (
        1 <= index <= count
    ):
        raise ValueError(f'shard must be (K, N) with 1 <= K <= N, not {shard!r}')
    return index, count


# ---------------------------------------------------------------------------------------
# Google Cloud Healthcare API
# ---------------------------------------------------------------------------------------

_GCP_HOST = 'https://healthcare.googleapis.com/v1'
# IDs the Healthcare API allows: word characters and "-" for projects and locations, and
# also "." for datasets and DICOM stores
_GCP_NAME = r'[\w-]+'
_GCP_DOTTED_NAME = r'[\w.-]+'
_GCP_ID_PATTERNS = {
    'project_id': re.compile(_GCP_NAME),
    'location': re.compile(_GCP_NAME),
    'dataset_id': re.compile(_GCP_DOTTED_NAME),
    'dicom_store_id': re.compile(_GCP_DOTTED_NAME),
}
# one final newline is tolerated after the URL, as the established package does
_GCP_URL_PATTERN = re.compile(
    rf'https://healthcare\.googleapis\.com/v1/projects/(?P<project_id>{_GCP_NAME})'
    rf'/locations/(?P<location>{_GCP_NAME})/datasets/(?P<dataset_id>{_GCP_DOTTED_NAME})'
    rf'/dicomStores/(?P<dicom_store_id>{_GCP_DOTTED_NAME})/dicomWeb\n?'
)
_GCP_SCOPES = ('https://www.googleapis.com/auth/cloud-platform',)


@dataclass(frozen=True)
class GoogleCloudHealthcareURL:
    """The DICOMweb service URL of a DICOM store in the Google Cloud Healthcare API (v1).

    ``str()`` gives ``https://healthcare.googleapis.com/v1/projects/{project_id}/
    locations/{location}/datasets/{dataset_id}/dicomStores/{dicom_store_id}/dicomWeb``.

    Attributes
    ----------
    project_id: str
        Google Cloud project holding the dataset.
    location: str
        Region of the dataset, e.g. ``us-central1``.
    dataset_id: str
        Dataset holding the DICOM store.
    dicom_store_id: str
        The DICOM store.

    Raises
    ------
    ValueError
        If an ID has characters the Healthcare API does not allow: project and location
        IDs consist of letters, digits, ``_`` and ``-``; dataset and DICOM store IDs may
        also have ``.``.
    TypeError
        If an ID is not a string.

    """

    project_id: str
    location: str
    dataset_id: str
    dicom_store_id: str

    def __post_init__(self) -> None:
        for name, pattern in _GCP_ID_PATTERNS.items():
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f'{name} must be a string, not {type(value).__name__}')
            if pattern.fullmatch(value) is None:
                raise ValueError(
                    f'{name} {value!r} is not a valid Google Cloud ID: it '
                    f'must match the regular expression {pattern.pattern}'
                )

    def __str__(self) -> str:
        return (
            f'{_GCP_HOST}/projects/{self.project_id}/locations/{self.location}'
            f'/datasets/{self.dataset_id}/dicomStores/{self.dicom_store_id}/dicomWeb'
        )

    @classmethod
    def from_string(cls, base_url: str) -> 'GoogleCloudHealthcareURL':
        """Parse the service URL of a DICOM store.

        Parameters
        ----------
        base_url: str
            The URL, in the form shown in the class description.

        Returns
        -------
        GoogleCloudHealthcareURL
            The parsed URL.

        Raises
        ------
        ValueError
            If ``base_url`` is not such a URL.

        """
        match = _GCP_URL_PATTERN.fullmatch(base_url) if isinstance(base_url, str) else None
        if match is None:
            raise ValueError(
                f'{base_url!r} is not the DICOMweb URL of a Google Cloud '
                f'DICOM store ({_GCP_HOST}/projects/P/locations/L/datasets/D'
                '/dicomStores/S/dicomWeb)'
            )
        return cls(**match.groupdict())


def _import_google_auth() -> Any:
    try:
        import google.auth
        import google.auth.transport
    except ImportError as error:
        raise ImportError(
            'Google Cloud credentials need the google-auth package: pip install google-auth'
        ) from error
    return google.auth


class _GoogleCredentialsAuth:
    """Auth callable that refreshes Google credentials and sends their token."""

    def __init__(self, credentials: Any) -> None:
        google_auth = _import_google_auth()
        self.credentials = credentials
        self._transport = _google_transport_request(google_auth.transport)
        self._lock = threading.Lock()

    def __getstate__(self) -> Dict[str, Any]:
        return {'credentials': self.credentials}  # the transport and lock are made anew

    def __setstate__(self, state: Dict[str, Any]) -> None:
        _GoogleCredentialsAuth.__init__(self, state['credentials'])

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        headers: Dict[str, str] = {}
        with self._lock:
            self.credentials.before_request(self._transport, request.method, request.url, headers)
        request.headers.update(headers)
        return request


def _google_transport_request(transport: Any) -> Any:
    """A ``google.auth.transport.Request`` that sends token requests with a Session."""

    class _Answer(transport.Response):
        def __init__(self, response: Response) -> None:
            self._response = response

        @property
        def status(self) -> int:
            return self._response.status_code

        @property
        def headers(self) -> Dict[str, str]:
            return dict(self._response.headers.items())

        @property
        def data(self) -> bytes:
            return self._response.content

    class _Request(transport.Request):
        def __init__(self) -> None:
            self.session = Session()

        def __call__(
            self,
            url: str,
            method: str = 'GET',
            body: Any = None,
            headers: Optional[Dict[str, str]] = None,
            timeout: Any = None,
            **kwargs: Any,
        ) -> Any:
            try:
                response = self.session.request(
                    method, url, data=body, headers=headers, timeout=timeout or 120
                )
            except RequestException as error:
                import google.auth.exceptions

                raise google.auth.exceptions.TransportError(error) from error
            return _Answer(response)

    return _Request()


def create_session_from_gcp_credentials(google_credentials: Optional[Any] = None) -> Session:
    """Return a session authorized with Google Cloud credentials (needs google-auth).

    Parameters
    ----------
    google_credentials: Any, optional
        Credentials from google-auth; by default those that ``google.auth.default()``
        finds, with the cloud-platform scope.

    Returns
    -------
    Session
        A session whose requests carry a fresh access token.

    Raises
    ------
    ImportError
        If google-auth is not installed.

    """
    google_auth = _import_google_auth()
    if google_credentials is None:
        google_credentials, _ = google_auth.default(scopes=list(_GCP_SCOPES))
    return create_session_from_auth(_GoogleCredentialsAuth(google_credentials))


# ---------------------------------------------------------------------------------------
# Module aliases: the import paths of the established package, served from this file
# ---------------------------------------------------------------------------------------


def _cli_main(args: Any) -> int:
    """Run the command line interface (``dicomweb_client_cli.main``).

    ``args`` is a list of strings or the namespace parsed by :func:`_cli_get_parser`.
    """
    import dicomweb_client_cli

    return dicomweb_client_cli.main(args)


def _cli_get_parser() -> Any:
    """Return the argument parser of the command line interface."""
    import dicomweb_client_cli

    return dicomweb_client_cli.build_parser()


def _cli_console_main() -> None:
    """Run the command line interface with ``sys.argv`` and exit with its code."""
    import dicomweb_client_cli

    dicomweb_client_cli._console_main()


_ALIASES: Dict[str, Tuple[str, ...]] = {
    'api': (
        'DICOMClient',
        'DICOMfileClient',
        'DICOMwebClient',
        'HTTPError',
        'Session',
        'URI',
        'URISuffix',
        'URIType',
        'build_query_string',
        'parse_query_parameters',
        'lookup_keyword',
        'lookup_tag',
        'GoogleCloudHealthcareURL',
    ),
    'uri': ('URI', 'URISuffix', 'URIType', 'build_query_string', 'parse_query_parameters'),
    'web': ('DICOMwebClient', '_Transaction', 'build_query_string', 'parse_query_parameters'),
    'file': ('DICOMfileClient', 'build_query_string', 'parse_query_parameters'),
    'session_utils': (
        'Session',
        'create_session',
        'create_session_from_auth',
        'create_session_from_user_pass',
        'add_certs_to_session',
        'create_session_from_gcp_credentials',
    ),
    'log': ('configure_logging',),
    'protocol': ('DICOMClient',),
    'cli': (),
    'ext': (),
    'ext.gcp': (),
    'ext.gcp.uri': ('GoogleCloudHealthcareURL',),
    'ext.gcp.session_utils': ('create_session_from_gcp_credentials',),
}


def _register_aliases() -> None:
    """Register ``dicomweb_client.api`` and friends as modules backed by this file."""
    this = sys.modules[__name__]
    this.__path__ = []  # type: ignore[attr-defined]  # lets "import a.b" find aliases
    namespace = vars(this)
    for name, members in _ALIASES.items():
        full_name = f'{__name__}.{name}'
        module = types.ModuleType(full_name, f'Alias of {__name__} (same objects).')
        module.__dict__.update({member: namespace[member] for member in members})
        if name == 'cli':
            module.main = _cli_main  # type: ignore[attr-defined]
            module._get_parser = _cli_get_parser  # type: ignore[attr-defined]
            module._main = _cli_console_main  # type: ignore[attr-defined]
        sys.modules[full_name] = module
        parent_name, _, leaf = full_name.rpartition('.')
        setattr(sys.modules[parent_name], leaf, module)


_register_aliases()
