"""Tests of the module aliases, the optional dependencies and the Google Cloud helpers.

``dicomweb_client.py`` registers the import paths of the established package
(``dicomweb_client.api``, ``.uri``, ``.web``, ``.file``, ``.session_utils``, ``.log``,
``.protocol``, ``.cli``, ``.ext.gcp.uri``, ``.ext.gcp.session_utils``).  They must
import, hand out the very objects of the top-level module, and work with only the
standard library and pydicom.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dicomweb_client
from dicomweb_client import GoogleCloudHealthcareURL
from helpers import API_SIGNATURES, PROJECT_ROOT, blocker, run_python


def _reference() -> dict:
    """The API listing of the established package, in ../shared beside the checkout where
    there is one: the tests that read it are marked ``shared_reference`` and skip elsewhere
    (test_oracle.py checks the behaviour anyway)."""
    return json.loads(API_SIGNATURES.read_text())


# alias -> names it must hand out (those of the established package's public API)
ALIASES = {
    'dicomweb_client.api': ['DICOMClient', 'DICOMwebClient'],
    'dicomweb_client.uri': [
        'URI',
        'URISuffix',
        'URIType',
        'build_query_string',
        'parse_query_parameters',
    ],
    'dicomweb_client.session_utils': [
        'add_certs_to_session',
        'create_session',
        'create_session_from_auth',
        'create_session_from_gcp_credentials',
        'create_session_from_user_pass',
    ],
    # the modules of the two clients; downstream code imports the client classes and
    # the private _Transaction from them (see tests/test_downstream_hooks.py)
    'dicomweb_client.web': ['DICOMwebClient', '_Transaction', 'build_query_string'],
    'dicomweb_client.file': ['DICOMfileClient'],
    'dicomweb_client.log': ['configure_logging'],
    'dicomweb_client.protocol': ['DICOMClient'],
    'dicomweb_client.cli': [],
    'dicomweb_client.ext.gcp.uri': ['GoogleCloudHealthcareURL'],
    'dicomweb_client.ext.gcp.session_utils': ['create_session_from_gcp_credentials'],
}

GCP_URL = (
    'https://healthcare.googleapis.com/v1/projects/my-project/locations/us-central1'
    '/datasets/my-dataset/dicomStores/my-store/dicomWeb'
)


# -- the aliases in this interpreter ---------------------------------------------------------


@pytest.mark.parametrize('module_name', sorted(ALIASES))
def test_alias_imports_and_hands_out_the_top_level_objects(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sys.modules[module_name] is module
    for name in ALIASES[module_name]:
        assert getattr(module, name) is getattr(dicomweb_client, name), name


@pytest.mark.parametrize('module_name', sorted(ALIASES))
def test_alias_is_reachable_as_an_attribute_chain(module_name: str) -> None:
    importlib.import_module(module_name)
    target = dicomweb_client
    for part in module_name.split('.')[1:]:
        target = getattr(target, part)
    assert target is sys.modules[module_name]


def test_import_statements() -> None:
    import dicomweb_client.api
    import dicomweb_client.cli
    import dicomweb_client.ext.gcp.session_utils
    import dicomweb_client.ext.gcp.uri
    import dicomweb_client.log
    import dicomweb_client.protocol
    import dicomweb_client.session_utils
    import dicomweb_client.uri
    from dicomweb_client.api import DICOMwebClient
    from dicomweb_client.ext.gcp import session_utils as gcp_session_utils
    from dicomweb_client.ext.gcp import uri as gcp_uri
    from dicomweb_client.ext.gcp.session_utils import create_session_from_gcp_credentials
    from dicomweb_client.ext.gcp.uri import GoogleCloudHealthcareURL as GcpUrl
    from dicomweb_client.log import configure_logging
    from dicomweb_client.protocol import DICOMClient
    from dicomweb_client.session_utils import (
        add_certs_to_session,
        create_session,
        create_session_from_auth,
        create_session_from_user_pass,
    )
    from dicomweb_client.uri import (
        URI,
        URISuffix,
        URIType,
        build_query_string,
        parse_query_parameters,
    )

    top = dicomweb_client
    assert DICOMwebClient is top.DICOMwebClient is dicomweb_client.api.DICOMwebClient
    assert DICOMClient is top.DICOMClient is dicomweb_client.api.DICOMClient
    assert (URI, URISuffix, URIType) == (top.URI, top.URISuffix, top.URIType)
    assert build_query_string is top.build_query_string
    assert parse_query_parameters is top.parse_query_parameters
    assert configure_logging is top.configure_logging
    assert create_session is top.create_session
    assert create_session_from_auth is top.create_session_from_auth
    assert create_session_from_user_pass is top.create_session_from_user_pass
    assert add_certs_to_session is top.add_certs_to_session
    assert create_session_from_gcp_credentials is top.create_session_from_gcp_credentials
    assert GcpUrl is top.GoogleCloudHealthcareURL
    assert gcp_uri is dicomweb_client.ext.gcp.uri
    assert gcp_session_utils is dicomweb_client.ext.gcp.session_utils
    assert callable(dicomweb_client.cli.main)


@pytest.mark.shared_reference
def test_reference_names_are_served() -> None:
    """Each name of the reference API listing exists under its module path.

    ``DICOMfileClient`` (a client for local folders) is outside this web client's scope.
    """
    reference = _reference()
    missing = []
    for module_name, members in reference.items():
        module = importlib.import_module(module_name)
        for name in members:
            if name == 'DICOMfileClient':
                continue
            if not hasattr(module, name):
                missing.append(f'{module_name}.{name}')
    assert missing == []


def _parameter_names(signature: str) -> list[str]:
    """Parameter names of a signature string such as '(self, a: int = 1, *, b=None)'."""
    inner = signature[signature.index('(') + 1 : signature.rindex(')')]
    names, depth, current = [], 0, ''
    for character in inner + ',':
        if character in '([{':
            depth += 1
        elif character in ')]}':
            depth -= 1
        if character == ',' and depth == 0:
            name = current.split(':')[0].split('=')[0].strip()
            if name and name not in ('self', 'cls', '*', '/'):
                names.append(name)
            current = ''
        else:
            current += character
    return names


def _reference_callables():
    if not API_SIGNATURES.is_file():  # read while collecting: the marker skips the test
        return
    reference = _reference()
    for module_name, members in reference.items():
        if module_name == 'dicomweb_client.cli':
            continue
        for name, entry in members.items():
            if name == 'DICOMfileClient':
                continue
            if entry['kind'] == 'function':
                yield f'{module_name}.{name}', (module_name, name, None), entry['signature']
            else:
                for member, signature in entry['members'].items():
                    if signature == 'property' or member == '__init__' and name in ('DICOMClient',):
                        continue
                    yield (f'{module_name}.{name}.{member}', (module_name, name, member), signature)


@pytest.mark.shared_reference
@pytest.mark.parametrize(
    'path, signature',
    [pytest.param(where, signature, id=label) for label, where, signature in _reference_callables()]
    or [pytest.param(None, None, id='no-reference-listing')],
)
def test_parameters_match_the_reference(path: tuple, signature: str) -> None:
    module_name, name, member = path
    target = getattr(importlib.import_module(module_name), name)
    if member is not None:
        target = getattr(target, member)
    actual = [
        parameter
        for parameter in inspect.signature(target).parameters
        if parameter not in ('self', 'cls')
    ]
    expected = _parameter_names(signature)
    assert actual[: len(expected)] == expected


def test_cli_main_is_the_entry_point_of_the_command_line_tool() -> None:
    import dicomweb_client.cli

    assert list(inspect.signature(dicomweb_client.cli.main).parameters) == ['args']


# -- protocol ----------------------------------------------------------------------------------


def _protocol_methods() -> list[str]:
    from dicomweb_client.protocol import DICOMClient

    return sorted(
        name
        for name, value in vars(DICOMClient).items()
        if callable(value) and not name.startswith('_')
    )


@pytest.mark.shared_reference
def test_protocol_declares_the_reference_methods() -> None:
    reference = _reference()
    expected = sorted(
        name
        for name in reference['dicomweb_client.protocol']['DICOMClient']['members']
        if not name.startswith('_')
    )
    assert _protocol_methods() == expected


@pytest.mark.parametrize('name', _protocol_methods())
def test_web_client_has_every_protocol_method(name: str) -> None:
    from dicomweb_client.protocol import DICOMClient

    method = getattr(dicomweb_client.DICOMwebClient, name, None)
    assert callable(method), name
    declared = list(inspect.signature(getattr(DICOMClient, name)).parameters)
    offered = list(inspect.signature(method).parameters)
    assert offered[: len(declared)] == declared


def test_protocol_is_a_typing_protocol() -> None:
    from typing import Protocol

    from dicomweb_client.protocol import DICOMClient

    assert Protocol in DICOMClient.__mro__ or getattr(DICOMClient, '_is_protocol', False)


def test_both_clients_are_instances_of_the_runtime_checkable_protocol(tmp_path: Path) -> None:
    from dicomweb_client.protocol import DICOMClient

    web_client = dicomweb_client.DICOMwebClient('http://127.0.0.1:9/dicom-web')
    file_client = dicomweb_client.DICOMfileClient(tmp_path.as_uri())
    assert isinstance(web_client, DICOMClient)
    assert isinstance(file_client, DICOMClient)
    assert isinstance(web_client, dicomweb_client.api.DICOMClient)
    assert not isinstance(object(), DICOMClient)


def test_version_is_a_string() -> None:
    assert isinstance(dicomweb_client.__version__, str)
    assert dicomweb_client.__version__
    assert dicomweb_client.__version__[0].isdigit()


# -- optional dependencies ---------------------------------------------------------------------

ALL_IMPORTS = '''
    import dicomweb_client
    import dicomweb_client.api
    import dicomweb_client.uri
    import dicomweb_client.session_utils
    import dicomweb_client.log
    import dicomweb_client.protocol
    import dicomweb_client.cli
    import dicomweb_client.ext.gcp.uri
    import dicomweb_client.ext.gcp.session_utils
    from dicomweb_client.api import DICOMwebClient, DICOMClient
    from dicomweb_client.uri import URI, URISuffix, URIType, build_query_string
    from dicomweb_client.uri import parse_query_parameters
    from dicomweb_client.session_utils import create_session, create_session_from_auth
    from dicomweb_client.session_utils import create_session_from_user_pass
    from dicomweb_client.session_utils import add_certs_to_session
    from dicomweb_client.session_utils import create_session_from_gcp_credentials
    from dicomweb_client.log import configure_logging
    from dicomweb_client.protocol import DICOMClient as Protocol
    from dicomweb_client.ext.gcp.uri import GoogleCloudHealthcareURL
    from dicomweb_client.ext.gcp.session_utils import create_session_from_gcp_credentials as g
    assert DICOMwebClient is dicomweb_client.DICOMwebClient
    assert g is create_session_from_gcp_credentials
'''


def test_everything_works_without_requests_urllib3_and_retrying() -> None:
    code = (
        blocker('requests', 'urllib3', 'retrying')
        + textwrap.dedent(ALL_IMPORTS)
        + textwrap.dedent('''
        client = DICOMwebClient('http://127.0.0.1:9/dicom-web',
                                qido_url_prefix='qido', headers={'X-Test': '1'})
        client = DICOMwebClient('https://example.org/dicom-web',
                                session=create_session_from_user_pass('user', 'secret'))
        client.set_http_retry_params(retry=False)
        client.set_chunk_size(4096)
        uri = URI.from_string('https://example.org/dicom-web/studies/1.2/series/3')
        assert uri.type is URIType.SERIES
        assert build_query_string(parse_query_parameters(limit=1)) == '?limit=1'
        configure_logging(0)
        leaked = sorted(name for name in sys.modules
                        if name.partition('.')[0] in BLOCKED)
        assert not leaked, leaked
        print('ok')
    ''')
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'


def test_importing_never_loads_google() -> None:
    # (requests is not checked here: pydicom itself imports it when it is installed; the
    # test above shows that dicomweb_client does not need it.)
    code = textwrap.dedent(ALL_IMPORTS) + textwrap.dedent('''
        import sys
        GoogleCloudHealthcareURL.from_string(str(GoogleCloudHealthcareURL('p', 'l', 'd', 's')))
        DICOMwebClient('http://127.0.0.1:9/dicom-web')
        print(sorted(name for name in sys.modules if name.partition('.')[0] == 'google'))
    ''')
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'


@pytest.mark.parametrize(
    'module_name',
    ['dicomweb_client', 'dicomweb_client.session_utils', 'dicomweb_client.ext.gcp.session_utils'],
)
@pytest.mark.parametrize('credentials', ['', 'object()'])
def test_gcp_session_needs_google_auth(module_name: str, credentials: str) -> None:
    code = blocker('google') + textwrap.dedent(f'''
        import importlib
        module = importlib.import_module({module_name!r})
        try:
            module.create_session_from_gcp_credentials({credentials})
        except ImportError as error:
            print('ImportError:', error)
        else:
            print('no error')
    ''')
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('ImportError:'), result.stdout
    assert 'google-auth' in result.stdout


# -- GoogleCloudHealthcareURL --------------------------------------------------------------------


def test_gcp_url_str() -> None:
    url = GoogleCloudHealthcareURL('my-project', 'us-central1', 'my-dataset', 'my-store')
    assert str(url) == GCP_URL


def test_gcp_url_fields_by_keyword() -> None:
    url = GoogleCloudHealthcareURL(project_id='P', location='L', dataset_id='D', dicom_store_id='S')
    assert (url.project_id, url.location, url.dataset_id, url.dicom_store_id) == (
        'P',
        'L',
        'D',
        'S',
    )
    assert str(url) == (
        'https://healthcare.googleapis.com/v1/projects/P/locations/L'
        '/datasets/D/dicomStores/S/dicomWeb'
    )


def test_gcp_url_from_string() -> None:
    url = GoogleCloudHealthcareURL.from_string(GCP_URL)
    assert url == GoogleCloudHealthcareURL('my-project', 'us-central1', 'my-dataset', 'my-store')
    assert str(url) == GCP_URL


def test_gcp_url_is_usable_as_a_client_url() -> None:
    client = dicomweb_client.DICOMwebClient(str(GoogleCloudHealthcareURL('p', 'l', 'd', 's')))
    assert client.base_url.endswith('/dicomStores/s/dicomWeb')
    assert dicomweb_client.URI.from_string(f'{GCP_URL}/studies/1.2').base_url == GCP_URL


@given(
    st.lists(
        st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789-_', min_size=1, max_size=30),
        min_size=2,
        max_size=2,
    ),
    st.lists(
        st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789-_.', min_size=1, max_size=30),
        min_size=2,
        max_size=2,
    ),
)
def test_property_gcp_url_round_trip(undotted: list, dotted: list) -> None:
    url = GoogleCloudHealthcareURL(*undotted, *dotted)
    assert GoogleCloudHealthcareURL.from_string(str(url)) == url
    assert str(GoogleCloudHealthcareURL.from_string(str(url))) == str(url)


@pytest.mark.parametrize(
    'text',
    [
        '',
        'not a url',
        GCP_URL.replace('https://', 'http://'),
        GCP_URL.replace('/v1/', '/v1beta1/'),
        GCP_URL.replace('healthcare.googleapis.com', 'example.org'),
        GCP_URL + '/',
        GCP_URL + '/studies/1.2',
        GCP_URL[: -len('/dicomWeb')],
        GCP_URL.replace('/dicomWeb', '/dicomweb'),
        GCP_URL.replace('/projects/', '/project/'),
        GCP_URL.replace('/locations/', '/regions/'),
        GCP_URL.replace('/datasets/', '/dataset/'),
        GCP_URL.replace('/dicomStores/', '/fhirStores/'),
        GCP_URL.replace('/my-project/', '//'),
        GCP_URL.replace('/us-central1/', '/a/b/'),
        'https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/dicomWeb',
    ],
)
def test_gcp_url_from_string_rejects_other_urls(text: str) -> None:
    with pytest.raises(ValueError):
        GoogleCloudHealthcareURL.from_string(text)


@pytest.mark.parametrize('field', ['project_id', 'location', 'dataset_id', 'dicom_store_id'])
@pytest.mark.parametrize('value', ['', 'a/b', '/', 'trailing/'])
def test_gcp_url_rejects_empty_or_slash_containing_fields(field: str, value: str) -> None:
    fields = {'project_id': 'p', 'location': 'l', 'dataset_id': 'd', 'dicom_store_id': 's'}
    fields[field] = value
    with pytest.raises(ValueError):
        GoogleCloudHealthcareURL(**fields)


GCP_FIELDS = ('project_id', 'location', 'dataset_id', 'dicom_store_id')


def _gcp_fields(field: str, value: object) -> dict:
    fields: dict = {'project_id': 'p', 'location': 'l', 'dataset_id': 'd', 'dicom_store_id': 's'}
    fields[field] = value
    return fields


@pytest.mark.parametrize('field', GCP_FIELDS)
@pytest.mark.parametrize(
    'value', ['a b', ' a', 'a\n', 'a:b', 'a%20', 'a@b', 'a?', 'a+b', 'a\u200bb']
)
def test_gcp_url_rejects_ids_the_healthcare_api_forbids(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        GoogleCloudHealthcareURL(**_gcp_fields(field, value))
    text = str(GoogleCloudHealthcareURL('p', 'l', 'd', 's')).replace(
        {'project_id': '/p/', 'location': '/l/', 'dataset_id': '/d/', 'dicom_store_id': '/s/'}[
            field
        ],
        f'/{value}/',
    )
    with pytest.raises(ValueError):
        GoogleCloudHealthcareURL.from_string(text)


@pytest.mark.parametrize(
    'field, allowed',
    [('project_id', False), ('location', False), ('dataset_id', True), ('dicom_store_id', True)],
)
def test_gcp_url_allows_dots_only_in_dataset_and_store_ids(field: str, allowed: bool) -> None:
    fields = _gcp_fields(field, 'a.b')
    if allowed:
        url = GoogleCloudHealthcareURL(**fields)
        assert GoogleCloudHealthcareURL.from_string(str(url)) == url
        return
    with pytest.raises(ValueError):
        GoogleCloudHealthcareURL(**fields)
    with pytest.raises(ValueError):
        GoogleCloudHealthcareURL.from_string(
            GCP_URL.replace('/my-project/' if field == 'project_id' else '/us-central1/', '/a.b/')
        )


@pytest.mark.parametrize('value', ['my_project-1', 'Projekt-ü', 'A_B'])
def test_gcp_url_accepts_word_characters_and_dashes(value: str) -> None:
    url = GoogleCloudHealthcareURL(value, value, value + '.x', value + '.y')
    assert GoogleCloudHealthcareURL.from_string(str(url)) == url


@pytest.mark.parametrize('field', GCP_FIELDS)
@pytest.mark.parametrize('value', [None, 1, b'p'])
def test_gcp_url_rejects_ids_that_are_not_strings_with_type_error(
    field: str, value: object
) -> None:
    with pytest.raises(TypeError):
        GoogleCloudHealthcareURL(**_gcp_fields(field, value))


def test_gcp_url_from_string_takes_the_url_as_it_is() -> None:
    """Surrounding blanks are refused; one final newline is tolerated (as there)."""
    for text in (' ' + GCP_URL, GCP_URL + ' ', GCP_URL + '\n\n', '\n' + GCP_URL):
        with pytest.raises(ValueError):
            GoogleCloudHealthcareURL.from_string(text)
    assert str(GoogleCloudHealthcareURL.from_string(GCP_URL + '\n')) == GCP_URL


def test_gcp_url_is_the_same_class_under_the_ext_alias() -> None:
    from dicomweb_client.ext.gcp.uri import GoogleCloudHealthcareURL as aliased

    assert aliased is GoogleCloudHealthcareURL
    assert aliased.from_string(GCP_URL) == GoogleCloudHealthcareURL.from_string(GCP_URL)


# -- public names of the errors a caller meets ------------------------------------------------

#: exceptions used for control flow inside the module; none reaches a caller
INTERNAL_EXCEPTIONS = {'_NeedMore', '_Unsupported', '_NotIndexable'}


def _module_exceptions() -> dict:
    return {
        name: value
        for name, value in vars(dicomweb_client).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == 'dicomweb_client'
    }


def test_every_error_a_caller_can_meet_has_a_public_documented_name() -> None:
    errors = _module_exceptions()
    assert {name for name in errors if name.startswith('_')} == INTERNAL_EXCEPTIONS
    public = {name for name in errors if not name.startswith('_')}
    assert public <= set(dicomweb_client.__all__)
    api_page = PROJECT_ROOT / 'docs' / 'api.rst'
    if api_page.exists():  # an installed copy has no docs beside it
        documented = api_page.read_text(encoding='utf-8')
        assert not {name for name in public if f'dicomweb_client.{name}\n' not in documented}, (
            'not in docs/api.rst'
        )


def test_a_refused_connection_is_reported_under_a_public_name() -> None:
    code = '''
        import socket, dicomweb_client
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        client = dicomweb_client.DICOMwebClient(f'http://127.0.0.1:{port}')
        client.set_http_retry_params(retry=False)
        client.search_for_studies()
    '''
    result = run_python(code)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith('dicomweb_client.ConnectFailedError: cannot connect to '), last_line


def test_a_missing_instance_of_a_folder_is_reported_under_a_public_name(tmp_path: Path) -> None:
    code = f'''
        import dicomweb_client
        client = dicomweb_client.DICOMfileClient({tmp_path.as_uri()!r})
        client.retrieve_study_metadata('1.2.3')
    '''
    last_line = run_python(code).stderr.strip().splitlines()[-1]
    assert last_line.startswith('dicomweb_client.FileClientNotFoundError: '), last_line
