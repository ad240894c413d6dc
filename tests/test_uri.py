"""Tests of the URI section of dicomweb_client: ``URI``, ``URISuffix`` and ``URIType``.

The expected behaviour is the documented one of ``dicomweb_client.uri`` in the established
package (see the reference API docs): construction rules, string form, levels, parents,
the ``*_uri`` helpers, ``update`` and ``from_string``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomweb_client import URI, URISuffix, URIType

BASE = 'https://dicom.example.org/dicom-web'
STUDY = '1.2.826.0.1.3680043.8.498.1'
SERIES = '1.2.826.0.1.3680043.8.498.2'
INSTANCE = '1.2.826.0.1.3680043.8.498.3'

STUDY_PATH = f'{BASE}/studies/{STUDY}'
SERIES_PATH = f'{STUDY_PATH}/series/{SERIES}'
INSTANCE_PATH = f'{SERIES_PATH}/instances/{INSTANCE}'


# -- enums -------------------------------------------------------------------------------


def test_uri_suffix_values() -> None:
    assert {member.name: member.value for member in URISuffix} == {
        'METADATA': 'metadata',
        'RENDERED': 'rendered',
        'THUMBNAIL': 'thumbnail',
    }


def test_uri_type_values() -> None:
    assert {member.name: member.value for member in URIType} == {
        'SERVICE': 'service',
        'STUDY': 'study',
        'SERIES': 'series',
        'INSTANCE': 'instance',
        'FRAME': 'frame',
    }


def test_enums_can_be_looked_up_by_value() -> None:
    assert URISuffix('rendered') is URISuffix.RENDERED
    assert URIType('frame') is URIType.FRAME


# -- construction: accepted arguments ------------------------------------------------------


@pytest.mark.parametrize(
    'base_url',
    [
        'http://localhost',
        'https://localhost',
        'http://127.0.0.1:8042/dicom-web',
        'https://dicom.example.org/a/b/c/dicomWeb',
        'HTTPS://dicom.example.org/dicom-web',
    ],
)
def test_accepts_http_and_https_base_urls(base_url: str) -> None:
    uri = URI(base_url)
    assert uri.base_url == base_url
    assert str(uri) == base_url


def test_service_uri_properties() -> None:
    uri = URI(BASE)
    assert uri.base_url == BASE
    assert uri.study_instance_uid is None
    assert uri.series_instance_uid is None
    assert uri.sop_instance_uid is None
    assert uri.frames is None
    assert uri.suffix is None
    assert uri.permissive is False
    assert uri.type is URIType.SERVICE


def test_frame_uri_properties() -> None:
    uri = URI(BASE, STUDY, SERIES, INSTANCE, [1, 3, 7], URISuffix.RENDERED, permissive=False)
    assert uri.base_url == BASE
    assert uri.study_instance_uid == STUDY
    assert uri.series_instance_uid == SERIES
    assert uri.sop_instance_uid == INSTANCE
    assert uri.frames == (1, 3, 7)
    assert isinstance(uri.frames, tuple)
    assert uri.suffix is URISuffix.RENDERED
    assert uri.type is URIType.FRAME


def test_keyword_arguments_match_the_documented_names() -> None:
    uri = URI(
        base_url=BASE,
        study_instance_uid=STUDY,
        series_instance_uid=SERIES,
        sop_instance_uid=INSTANCE,
        frames=(2,),
        suffix=URISuffix.THUMBNAIL,
        permissive=True,
    )
    assert str(uri) == f'{INSTANCE_PATH}/frames/2/thumbnail'
    assert uri.permissive is True


def test_frames_accept_any_iterable_of_ints() -> None:
    assert URI(BASE, STUDY, SERIES, INSTANCE, range(1, 4)).frames == (1, 2, 3)
    assert URI(BASE, STUDY, SERIES, INSTANCE, (5,)).frames == (5,)


def test_frames_are_not_shared_with_the_callers_list() -> None:
    frames = [1, 2]
    uri = URI(BASE, STUDY, SERIES, INSTANCE, frames)
    frames.append(3)
    assert uri.frames == (1, 2)


def test_uid_of_64_characters_is_accepted() -> None:
    uid = '1.' + '2' * 62
    assert len(uid) == 64
    assert URI(BASE, uid).study_instance_uid == uid


@pytest.mark.parametrize('uid', ['0', '1', '1.2', '1.2.3.4.5.6.7.8.9', '2.25.' + '9' * 39])
def test_conformant_uids_are_accepted(uid: str) -> None:
    uri = URI(BASE, uid, uid, uid)
    assert uri.sop_instance_uid == uid


def test_the_suffix_may_be_given_as_its_value() -> None:
    assert URI(BASE, STUDY, suffix='metadata').suffix is URISuffix.METADATA


# -- construction: validation ------------------------------------------------------------


@pytest.mark.parametrize(
    'base_url',
    [
        f'{BASE}/',
        'https://dicom.example.org/',
        'http://localhost:8042//',
    ],
)
def test_trailing_slash_is_rejected(base_url: str) -> None:
    with pytest.raises(ValueError):
        URI(base_url)


@pytest.mark.parametrize(
    'base_url',
    [
        'ftp://dicom.example.org/dicom-web',
        'file:///tmp/dicom-web',
        'ws://dicom.example.org/dicom-web',
        'dicom.example.org/dicom-web',
        '/dicom-web',
        '',
    ],
)
def test_non_http_base_url_is_rejected(base_url: str) -> None:
    with pytest.raises(ValueError):
        URI(base_url)


def test_series_without_study_is_rejected() -> None:
    with pytest.raises(ValueError):
        URI(BASE, series_instance_uid=SERIES)


@pytest.mark.parametrize('study, series', [(None, SERIES), (STUDY, None), (None, None)])
def test_instance_without_its_parents_is_rejected(study, series) -> None:
    with pytest.raises(ValueError):
        URI(BASE, study, series, INSTANCE)


@pytest.mark.parametrize(
    'study, series, instance',
    [
        (None, None, None),
        (STUDY, None, None),
        (STUDY, SERIES, None),
    ],
)
def test_frames_without_instance_are_rejected(study, series, instance) -> None:
    with pytest.raises(ValueError):
        URI(BASE, study, series, instance, frames=[1])


@pytest.mark.parametrize('frames', [[], ()])
def test_empty_frames_are_rejected(frames) -> None:
    with pytest.raises(ValueError):
        URI(BASE, STUDY, SERIES, INSTANCE, frames)


@pytest.mark.parametrize('frames', [[0], [-1], [0, 1], [1, 2, -3]])
def test_non_positive_frames_are_rejected(frames) -> None:
    with pytest.raises(ValueError):
        URI(BASE, STUDY, SERIES, INSTANCE, frames)


@pytest.mark.parametrize('frames', [[2, 1], [1, 3, 2], [1, 1], [1, 2, 2, 3], [5, 5]])
def test_non_ascending_or_duplicate_frames_are_rejected(frames) -> None:
    with pytest.raises(ValueError):
        URI(BASE, STUDY, SERIES, INSTANCE, frames)


def test_metadata_suffix_with_frames_is_rejected() -> None:
    with pytest.raises(ValueError):
        URI(BASE, STUDY, SERIES, INSTANCE, [1], URISuffix.METADATA)


@pytest.mark.parametrize('suffix', list(URISuffix))
def test_suffix_without_study_is_rejected(suffix: URISuffix) -> None:
    with pytest.raises(ValueError):
        URI(BASE, suffix=suffix)


def test_unknown_suffix_is_rejected() -> None:
    with pytest.raises(ValueError):
        URI(BASE, STUDY, suffix='pixeldata')


@pytest.mark.parametrize(
    'uid',
    [
        '',
        '.',
        '1.',
        '.1',
        '1..2',
        '1.2.a',
        'abc',
        '1,2',
        '1-2',
        '1 2',
        ' 1.2',
        '1.2 ',
        '1/2',
        '1@2',
        '1.2.3\t',
        '+1',
        '\u0661.2',
    ],
)
@pytest.mark.parametrize('position', ['study', 'series', 'instance'])
def test_malformed_uids_are_rejected(uid: str, position: str) -> None:
    uids = {'study': STUDY, 'series': SERIES, 'instance': INSTANCE}
    uids[position] = uid
    with pytest.raises(ValueError):
        URI(BASE, uids['study'], uids['series'], uids['instance'])


@pytest.mark.parametrize('uid, permissive', [('1.2\n', False), ('abc\n', True)])
def test_uid_with_trailing_newline_is_rejected(uid: str, permissive: bool) -> None:
    with pytest.raises(ValueError):
        URI(BASE, uid, permissive=permissive)


@pytest.mark.parametrize('position', ['study', 'series', 'instance'])
def test_uids_longer_than_64_characters_are_rejected(position: str) -> None:
    long_uid = '1.' + '2' * 63
    assert len(long_uid) == 65
    uids = {'study': STUDY, 'series': SERIES, 'instance': INSTANCE}
    uids[position] = long_uid
    with pytest.raises(ValueError):
        URI(BASE, uids['study'], uids['series'], uids['instance'])


@pytest.mark.parametrize('uid', ['abc', 'ABC.def-123_x', '1.2.3a', '1..2', 'x~y:z', '.1.'])
def test_permissive_accepts_non_conformant_uids(uid: str) -> None:
    uri = URI(BASE, uid, uid, uid, permissive=True)
    assert uri.permissive is True
    assert str(uri) == f'{BASE}/studies/{uid}/series/{uid}/instances/{uid}'


@pytest.mark.parametrize(
    'uid',
    [
        'a/b',
        '/',
        'a@b',
        '@',
        'a b',
        ' ',
        'a\tb',
        'a\nb',
        'a\rb',
        '',
        'ab ',
    ],
)
def test_permissive_still_rejects_slash_at_and_whitespace(uid: str) -> None:
    with pytest.raises(ValueError):
        URI(BASE, uid, permissive=True)
    with pytest.raises(ValueError):
        URI(BASE, STUDY, uid, permissive=True)
    with pytest.raises(ValueError):
        URI(BASE, STUDY, SERIES, uid, permissive=True)


def test_non_conformant_uid_is_rejected_without_permissive() -> None:
    with pytest.raises(ValueError):
        URI(BASE, 'abc')
    with pytest.raises(ValueError):
        URI(BASE, 'abc', permissive=False)


# -- string form -------------------------------------------------------------------------


@pytest.mark.parametrize(
    'uri, expected',
    [
        (URI(BASE), BASE),
        (URI(BASE, STUDY), STUDY_PATH),
        (URI(BASE, STUDY, suffix=URISuffix.METADATA), f'{STUDY_PATH}/metadata'),
        (URI(BASE, STUDY, suffix=URISuffix.RENDERED), f'{STUDY_PATH}/rendered'),
        (URI(BASE, STUDY, suffix=URISuffix.THUMBNAIL), f'{STUDY_PATH}/thumbnail'),
        (URI(BASE, STUDY, SERIES), SERIES_PATH),
        (URI(BASE, STUDY, SERIES, suffix=URISuffix.METADATA), f'{SERIES_PATH}/metadata'),
        (URI(BASE, STUDY, SERIES, suffix=URISuffix.RENDERED), f'{SERIES_PATH}/rendered'),
        (URI(BASE, STUDY, SERIES, suffix=URISuffix.THUMBNAIL), f'{SERIES_PATH}/thumbnail'),
        (URI(BASE, STUDY, SERIES, INSTANCE), INSTANCE_PATH),
        (
            URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.METADATA),
            f'{INSTANCE_PATH}/metadata',
        ),
        (
            URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.RENDERED),
            f'{INSTANCE_PATH}/rendered',
        ),
        (
            URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.THUMBNAIL),
            f'{INSTANCE_PATH}/thumbnail',
        ),
        (URI(BASE, STUDY, SERIES, INSTANCE, [1]), f'{INSTANCE_PATH}/frames/1'),
        (URI(BASE, STUDY, SERIES, INSTANCE, [1, 2, 10]), f'{INSTANCE_PATH}/frames/1,2,10'),
        (
            URI(BASE, STUDY, SERIES, INSTANCE, [4, 5], URISuffix.RENDERED),
            f'{INSTANCE_PATH}/frames/4,5/rendered',
        ),
        (
            URI(BASE, STUDY, SERIES, INSTANCE, [4], URISuffix.THUMBNAIL),
            f'{INSTANCE_PATH}/frames/4/thumbnail',
        ),
    ],
    ids=lambda value: str(value).replace(BASE, '<base>') if isinstance(value, str) else None,
)
def test_str(uri: URI, expected: str) -> None:
    assert str(uri) == expected


def test_str_of_service_with_port_and_no_path() -> None:
    assert str(URI('http://127.0.0.1:8042', '1.2')) == 'http://127.0.0.1:8042/studies/1.2'


def test_repr_names_every_part_by_keyword() -> None:
    """The same text as the established package's repr."""
    uri = URI(BASE, STUDY, SERIES, INSTANCE, [1, 2], URISuffix.RENDERED)
    assert repr(uri) == (
        f"dicomweb_client.URI(base_url={BASE!r}, study_instance_uid={STUDY!r}, "
        f"series_instance_uid={SERIES!r}, sop_instance_uid={INSTANCE!r}, "
        "frames=(1, 2), suffix=<URISuffix.RENDERED: 'rendered'>)"
    )
    assert repr(URI(BASE)) == (
        f"dicomweb_client.URI(base_url={BASE!r}, study_instance_uid=None, "
        "series_instance_uid=None, sop_instance_uid=None, frames=None, suffix=None)"
    )
    assert repr(URI(BASE, 'study-a', permissive=True)).endswith(
        "frames=None, suffix=None)"
    )  # permissive is not named there either


@pytest.mark.parametrize(
    'uri',
    [
        URI(BASE),
        URI(BASE, STUDY, suffix=URISuffix.METADATA),
        URI(BASE, STUDY, SERIES, INSTANCE, [3, 4], URISuffix.THUMBNAIL),
    ],
    ids=str,
)
def test_hash_is_the_hash_of_the_parts(uri: URI) -> None:
    assert hash(uri) == hash(
        (
            uri.base_url,
            uri.study_instance_uid,
            uri.series_instance_uid,
            uri.sop_instance_uid,
            uri.frames,
            uri.suffix,
        )
    )


def test_uris_with_the_same_text_but_other_parts_differ() -> None:
    """Equality follows the parts, so that equal URIs always hash alike."""
    assert URI(BASE + '/studies/' + STUDY) != URI(BASE, STUDY)
    assert str(URI(BASE + '/studies/' + STUDY)) == str(URI(BASE, STUDY))


# -- equality, hashing, immutability -------------------------------------------------------


def test_equal_uris_compare_and_hash_equal() -> None:
    first = URI(BASE, STUDY, SERIES, INSTANCE, [1, 2])
    second = URI(BASE, STUDY, SERIES, INSTANCE, (1, 2))
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


def test_different_uris_are_not_equal() -> None:
    assert URI(BASE, STUDY) != URI(BASE, SERIES)
    assert URI(BASE, STUDY) != URI(BASE, STUDY, suffix=URISuffix.METADATA)
    assert URI(BASE, STUDY) != URI('http://other.example.org', STUDY)


def test_uri_is_not_equal_to_other_types() -> None:
    assert URI(BASE) != BASE
    assert URI(BASE) != object()


@pytest.mark.parametrize(
    'name',
    [
        'base_url',
        'study_instance_uid',
        'series_instance_uid',
        'sop_instance_uid',
        'frames',
        'suffix',
        'permissive',
        'type',
        'parent',
    ],
)
def test_properties_are_read_only(name: str) -> None:
    uri = URI(BASE, STUDY, SERIES, INSTANCE, [1])
    with pytest.raises(AttributeError):
        setattr(uri, name, None)


# -- type ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'uri, expected',
    [
        (URI(BASE), URIType.SERVICE),
        (URI(BASE, STUDY), URIType.STUDY),
        (URI(BASE, STUDY, suffix=URISuffix.METADATA), URIType.STUDY),
        (URI(BASE, STUDY, SERIES), URIType.SERIES),
        (URI(BASE, STUDY, SERIES, suffix=URISuffix.RENDERED), URIType.SERIES),
        (URI(BASE, STUDY, SERIES, INSTANCE), URIType.INSTANCE),
        (URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.THUMBNAIL), URIType.INSTANCE),
        (URI(BASE, STUDY, SERIES, INSTANCE, [1]), URIType.FRAME),
        (URI(BASE, STUDY, SERIES, INSTANCE, [1], URISuffix.RENDERED), URIType.FRAME),
    ],
)
def test_type(uri: URI, expected: URIType) -> None:
    assert uri.type is expected


# -- parent -------------------------------------------------------------------------------

# The table of the reference documentation: (current, suffixed) -> parent.
PARENTS = [
    ('service', URI(BASE), URI(BASE)),
    ('study', URI(BASE, STUDY), URI(BASE)),
    ('study+suffix', URI(BASE, STUDY, suffix=URISuffix.METADATA), URI(BASE, STUDY)),
    ('series', URI(BASE, STUDY, SERIES), URI(BASE, STUDY)),
    (
        'series+suffix',
        URI(BASE, STUDY, SERIES, suffix=URISuffix.RENDERED),
        URI(BASE, STUDY, SERIES),
    ),
    ('instance', URI(BASE, STUDY, SERIES, INSTANCE), URI(BASE, STUDY, SERIES)),
    (
        'instance+suffix',
        URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.THUMBNAIL),
        URI(BASE, STUDY, SERIES, INSTANCE),
    ),
    ('frame', URI(BASE, STUDY, SERIES, INSTANCE, [1, 2]), URI(BASE, STUDY, SERIES, INSTANCE)),
    (
        'frame+suffix',
        URI(BASE, STUDY, SERIES, INSTANCE, [1, 2], URISuffix.RENDERED),
        URI(BASE, STUDY, SERIES, INSTANCE, [1, 2]),
    ),
]


@pytest.mark.parametrize(
    'uri, expected', [row[1:] for row in PARENTS], ids=[row[0] for row in PARENTS]
)
def test_parent(uri: URI, expected: URI) -> None:
    parent = uri.parent
    assert isinstance(parent, URI)
    assert parent == expected
    assert str(parent) == str(expected)
    assert parent.suffix is None


def test_walking_up_the_parents_ends_at_the_service() -> None:
    uri = URI(BASE, STUDY, SERIES, INSTANCE, [3], URISuffix.THUMBNAIL)
    types = [uri.type]
    for _ in range(6):
        uri = uri.parent
        types.append(uri.type)
    assert types == [
        URIType.FRAME,
        URIType.FRAME,
        URIType.INSTANCE,
        URIType.SERIES,
        URIType.STUDY,
        URIType.SERVICE,
        URIType.SERVICE,
    ]
    assert uri == URI(BASE)


def test_parent_keeps_permissive() -> None:
    uri = URI(BASE, 'study-a', 'series-b', permissive=True)
    assert uri.parent == URI(BASE, 'study-a', permissive=True)
    assert uri.parent.permissive is True


# -- base_uri / study_uri / series_uri / instance_uri / frame_uri ---------------------------


def test_sub_uris_of_a_suffixed_frame_uri() -> None:
    uri = URI(BASE, STUDY, SERIES, INSTANCE, [2, 4], URISuffix.RENDERED)
    assert uri.base_uri() == URI(BASE)
    assert uri.study_uri() == URI(BASE, STUDY)
    assert uri.series_uri() == URI(BASE, STUDY, SERIES)
    assert uri.instance_uri() == URI(BASE, STUDY, SERIES, INSTANCE)
    assert uri.frame_uri() == URI(BASE, STUDY, SERIES, INSTANCE, [2, 4])
    for method, level in (
        (uri.base_uri, URIType.SERVICE),
        (uri.study_uri, URIType.STUDY),
        (uri.series_uri, URIType.SERIES),
        (uri.instance_uri, URIType.INSTANCE),
        (uri.frame_uri, URIType.FRAME),
    ):
        result = method()
        assert result.type is level
        assert result.suffix is None


def test_sub_uris_drop_the_suffix() -> None:
    uri = URI(BASE, STUDY, suffix=URISuffix.METADATA)
    assert uri.study_uri() == URI(BASE, STUDY)
    assert str(uri.study_uri()) == STUDY_PATH
    assert uri.base_uri() == URI(BASE)


def test_base_uri_of_the_service_is_itself() -> None:
    assert URI(BASE).base_uri() == URI(BASE)


@pytest.mark.parametrize(
    'uri, method',
    [
        (URI(BASE), 'study_uri'),
        (URI(BASE), 'series_uri'),
        (URI(BASE), 'instance_uri'),
        (URI(BASE), 'frame_uri'),
        (URI(BASE, STUDY), 'series_uri'),
        (URI(BASE, STUDY, suffix=URISuffix.METADATA), 'series_uri'),
        (URI(BASE, STUDY), 'instance_uri'),
        (URI(BASE, STUDY), 'frame_uri'),
        (URI(BASE, STUDY, SERIES), 'instance_uri'),
        (URI(BASE, STUDY, SERIES), 'frame_uri'),
        (URI(BASE, STUDY, SERIES, INSTANCE), 'frame_uri'),
        (URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.RENDERED), 'frame_uri'),
    ],
)
def test_sub_uri_of_a_missing_level_raises(uri: URI, method: str) -> None:
    with pytest.raises(ValueError):
        getattr(uri, method)()


def test_sub_uris_keep_permissive() -> None:
    uri = URI(BASE, 'st', 'se', 'in', [1], permissive=True)
    for method in (uri.base_uri, uri.study_uri, uri.series_uri, uri.instance_uri, uri.frame_uri):
        assert method().permissive is True


# -- update -------------------------------------------------------------------------------


def test_update_without_arguments_gives_an_equal_copy() -> None:
    uri = URI(BASE, STUDY, SERIES, INSTANCE, [1], URISuffix.RENDERED)
    copy = uri.update()
    assert copy == uri
    assert copy is not uri


@pytest.mark.parametrize(
    'changes, expected',
    [
        (
            {'base_url': 'http://other.example.org:8080'},
            URI('http://other.example.org:8080', STUDY, SERIES),
        ),
        ({'study_instance_uid': '9.8.7'}, URI(BASE, '9.8.7', SERIES)),
        ({'series_instance_uid': '9.8.7'}, URI(BASE, STUDY, '9.8.7')),
        ({'sop_instance_uid': INSTANCE}, URI(BASE, STUDY, SERIES, INSTANCE)),
        (
            {'sop_instance_uid': INSTANCE, 'frames': [3, 4]},
            URI(BASE, STUDY, SERIES, INSTANCE, [3, 4]),
        ),
        ({'suffix': URISuffix.METADATA}, URI(BASE, STUDY, SERIES, suffix=URISuffix.METADATA)),
        (
            {'study_instance_uid': 'a', 'series_instance_uid': 'b', 'permissive': True},
            URI(BASE, 'a', 'b', permissive=True),
        ),
    ],
)
def test_update_replaces_the_given_parts(changes: dict, expected: URI) -> None:
    uri = URI(BASE, STUDY, SERIES)
    updated = uri.update(**changes)
    assert updated == expected
    assert str(updated) == str(expected)
    assert uri == URI(BASE, STUDY, SERIES), 'the original must not change'


def test_update_replaces_frames_and_suffix_of_a_frame_uri() -> None:
    uri = URI(BASE, STUDY, SERIES, INSTANCE, [1, 2])
    assert uri.update(frames=[7]).frames == (7,)
    updated = uri.update(suffix=URISuffix.THUMBNAIL)
    assert str(updated) == f'{INSTANCE_PATH}/frames/1,2/thumbnail'


@pytest.mark.parametrize(
    'uri, changes',
    [
        (URI(BASE, STUDY), {'sop_instance_uid': INSTANCE}),
        (URI(BASE), {'series_instance_uid': SERIES}),
        (URI(BASE, STUDY, SERIES), {'frames': [1]}),
        (URI(BASE, STUDY, SERIES, INSTANCE), {'frames': [2, 1]}),
        (URI(BASE, STUDY, SERIES, INSTANCE), {'frames': []}),
        (URI(BASE, STUDY, SERIES, INSTANCE), {'frames': [0]}),
        (URI(BASE, STUDY, SERIES, INSTANCE, [1]), {'suffix': URISuffix.METADATA}),
        (URI(BASE), {'suffix': URISuffix.RENDERED}),
        (URI(BASE, STUDY), {'study_instance_uid': 'not-a-uid'}),
        (URI(BASE, STUDY), {'study_instance_uid': '1.' + '2' * 63}),
        (URI(BASE, STUDY), {'base_url': 'ftp://dicom.example.org'}),
        (URI(BASE, STUDY), {'base_url': f'{BASE}/'}),
        (URI(BASE, STUDY), {'series_instance_uid': 'a/b', 'permissive': True}),
    ],
)
def test_update_to_an_invalid_uri_raises(uri: URI, changes: dict) -> None:
    with pytest.raises(ValueError):
        uri.update(**changes)


# -- from_string --------------------------------------------------------------------------

FORMS = [
    (BASE, URI(BASE)),
    (STUDY_PATH, URI(BASE, STUDY)),
    (f'{STUDY_PATH}/metadata', URI(BASE, STUDY, suffix=URISuffix.METADATA)),
    (f'{STUDY_PATH}/rendered', URI(BASE, STUDY, suffix=URISuffix.RENDERED)),
    (f'{STUDY_PATH}/thumbnail', URI(BASE, STUDY, suffix=URISuffix.THUMBNAIL)),
    (SERIES_PATH, URI(BASE, STUDY, SERIES)),
    (f'{SERIES_PATH}/metadata', URI(BASE, STUDY, SERIES, suffix=URISuffix.METADATA)),
    (f'{SERIES_PATH}/rendered', URI(BASE, STUDY, SERIES, suffix=URISuffix.RENDERED)),
    (f'{SERIES_PATH}/thumbnail', URI(BASE, STUDY, SERIES, suffix=URISuffix.THUMBNAIL)),
    (INSTANCE_PATH, URI(BASE, STUDY, SERIES, INSTANCE)),
    (f'{INSTANCE_PATH}/metadata', URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.METADATA)),
    (f'{INSTANCE_PATH}/rendered', URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.RENDERED)),
    (f'{INSTANCE_PATH}/thumbnail', URI(BASE, STUDY, SERIES, INSTANCE, suffix=URISuffix.THUMBNAIL)),
    (f'{INSTANCE_PATH}/frames/1', URI(BASE, STUDY, SERIES, INSTANCE, [1])),
    (f'{INSTANCE_PATH}/frames/1,2,30', URI(BASE, STUDY, SERIES, INSTANCE, [1, 2, 30])),
    (
        f'{INSTANCE_PATH}/frames/3,4/rendered',
        URI(BASE, STUDY, SERIES, INSTANCE, [3, 4], URISuffix.RENDERED),
    ),
    (
        f'{INSTANCE_PATH}/frames/5/thumbnail',
        URI(BASE, STUDY, SERIES, INSTANCE, [5], URISuffix.THUMBNAIL),
    ),
    ('http://127.0.0.1:8042', URI('http://127.0.0.1:8042')),
    ('http://127.0.0.1:8042/studies/1.2', URI('http://127.0.0.1:8042', '1.2')),
    (
        'https://h.example.org/a/b/c/studies/1/series/2',
        URI('https://h.example.org/a/b/c', '1', '2'),
    ),
]


def _short(value: object) -> str | None:
    return (
        str(value).replace(BASE, '<base>').replace(INSTANCE_PATH, '<instance>')
        if isinstance(value, str)
        else None
    )


@pytest.mark.parametrize('text, expected', FORMS, ids=_short)
def test_from_string_parses_every_documented_form(text: str, expected: URI) -> None:
    uri = URI.from_string(text)
    assert uri == expected
    assert uri.base_url == expected.base_url
    assert uri.study_instance_uid == expected.study_instance_uid
    assert uri.series_instance_uid == expected.series_instance_uid
    assert uri.sop_instance_uid == expected.sop_instance_uid
    assert uri.frames == expected.frames
    assert uri.suffix is expected.suffix
    assert uri.type is expected.type
    assert uri.permissive is False
    assert str(uri) == text


@pytest.mark.parametrize('text, expected', FORMS, ids=_short)
def test_from_string_accepts_the_matching_uri_type(text: str, expected: URI) -> None:
    assert URI.from_string(text, uri_type=expected.type) == expected
    assert URI.from_string(text, expected.type) == expected


@pytest.mark.parametrize('text, expected', FORMS, ids=_short)
def test_from_string_rejects_every_other_uri_type(text: str, expected: URI) -> None:
    for uri_type in URIType:
        if uri_type is not expected.type:
            with pytest.raises(ValueError):
                URI.from_string(text, uri_type=uri_type)


@pytest.mark.parametrize('uri', [expected for _, expected in FORMS], ids=_short)
def test_round_trip_through_str(uri: URI) -> None:
    assert URI.from_string(str(uri)) == uri


def test_from_string_permissive() -> None:
    text = f'{BASE}/studies/study-a/series/series_b/instances/inst.c/frames/2/rendered'
    with pytest.raises(ValueError):
        URI.from_string(text)
    uri = URI.from_string(text, permissive=True)
    assert uri.permissive is True
    assert (uri.study_instance_uid, uri.series_instance_uid, uri.sop_instance_uid) == (
        'study-a',
        'series_b',
        'inst.c',
    )
    assert uri.frames == (2,)
    assert uri.suffix is URISuffix.RENDERED
    assert uri == URI(
        BASE, 'study-a', 'series_b', 'inst.c', [2], URISuffix.RENDERED, permissive=True
    )


def test_round_trip_of_a_permissive_uri() -> None:
    uri = URI(BASE, 'A1', 'b-2', 'c_3', [1, 9], URISuffix.THUMBNAIL, permissive=True)
    assert URI.from_string(str(uri), permissive=True) == uri


@pytest.mark.parametrize(
    'text',
    [
        '',
        'not a uri',
        'dicom.example.org/dicom-web/studies/1.2',
        'ftp://dicom.example.org/dicom-web/studies/1.2',
        'https:///studies/1.2',
        f'{BASE}/',
        f'{BASE}/studies/',
        f'{STUDY_PATH}/',
        f'{BASE}/studies//series/1',
        f'{STUDY_PATH}/series',
        f'{STUDY_PATH}/series/',
        f'{STUDY_PATH}/instances/{INSTANCE}',
        f'{SERIES_PATH}/frames/1',
        f'{STUDY_PATH}/frames/1',
        f'{SERIES_PATH}/instances',
        f'{INSTANCE_PATH}/frames',
        f'{INSTANCE_PATH}/frames/',
        f'{INSTANCE_PATH}/frames/a',
        f'{INSTANCE_PATH}/frames/1,,2',
        f'{INSTANCE_PATH}/frames/1,',
        f'{INSTANCE_PATH}/frames/,1',
        f'{INSTANCE_PATH}/frames/1.5',
        f'{INSTANCE_PATH}/frames/2,1',
        f'{INSTANCE_PATH}/frames/1,1',
        f'{INSTANCE_PATH}/frames/0',
        f'{INSTANCE_PATH}/frames/-1',
        f'{INSTANCE_PATH}/frames/1/metadata',
        f'{INSTANCE_PATH}/frames/1/frames/2',
        f'{INSTANCE_PATH}/bulkdata/1',
        f'{INSTANCE_PATH}/extra',
        f'{STUDY_PATH}/bogus',
        f'{STUDY_PATH}/metadata/metadata',
        f'{STUDY_PATH}/rendered/thumbnail',
        f'{STUDY_PATH}/metadata/series/{SERIES}',
        f'{BASE}/metadata',
        f'{BASE}/rendered',
        f'{BASE}/thumbnail',
        f'{BASE}/studies/abc',
        f'{BASE}/studies/{"1" * 65}',
        f'{STUDY_PATH}/series/a@b',
    ],
)
def test_from_string_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        URI.from_string(text)


@pytest.mark.parametrize('frames', ['1_0', '+1', '\u0663'])
def test_from_string_rejects_frame_numbers_that_are_not_ascii_digits(frames: str) -> None:
    with pytest.raises(ValueError):
        URI.from_string(f'{INSTANCE_PATH}/frames/{frames}')


@pytest.mark.parametrize('text', [f'{STUDY_PATH}?includefield=all', f'{SERIES_PATH}#top'])
def test_from_string_does_not_silently_drop_query_or_fragment(text: str) -> None:
    try:
        uri = URI.from_string(text)
    except ValueError:
        return
    assert str(uri) == text


def test_from_string_rejects_query_on_a_service_url() -> None:
    with pytest.raises(ValueError):
        URI.from_string(f'{BASE}?limit=1')


@pytest.mark.parametrize('uid', ['a?b', 'a#b'])
def test_every_constructible_permissive_uri_round_trips(uid: str) -> None:
    try:
        uri = URI(BASE, STUDY, uid, permissive=True)
    except ValueError:
        return  # refusing such UIDs up front is also acceptable
    assert URI.from_string(str(uri), permissive=True) == uri


def test_from_string_uri_type_may_be_given_as_its_value() -> None:
    assert URI.from_string(SERIES_PATH, uri_type=URIType('series')).type is URIType.SERIES


# -- property tests ------------------------------------------------------------------------

_components = st.integers(min_value=0, max_value=10**12).map(str)
strict_uids = (
    st.lists(_components, min_size=1, max_size=12).map('.'.join).filter(lambda uid: len(uid) <= 64)
)
permissive_uids = st.text(
    alphabet='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~',
    min_size=1,
    max_size=80,
).filter(lambda uid: uid not in ('.', '..'))
frame_lists = st.lists(
    st.integers(min_value=1, max_value=10**6), min_size=1, max_size=20, unique=True
).map(sorted)
base_urls = st.builds(
    lambda scheme, host, port, path: f'{scheme}://{host}{port}{path}',
    st.sampled_from(['http', 'https']),
    st.sampled_from(['localhost', '127.0.0.1', 'dicom.example.org', '[::1]']),
    st.sampled_from(['', ':80', ':8042', ':65535']),
    st.sampled_from(['', '/dicom-web', '/dicomweb/v1', '/a/b/c/dicomWeb', '/wado-rs']),
)


@st.composite
def uris(draw: st.DrawFn, uids: st.SearchStrategy[str], permissive: bool) -> URI:
    level = draw(st.sampled_from(list(URIType)))
    depth = [URIType.SERVICE, URIType.STUDY, URIType.SERIES, URIType.INSTANCE, URIType.FRAME].index(
        level
    )
    parts = [draw(uids) if depth > index else None for index in range(3)]
    frames = draw(frame_lists) if level is URIType.FRAME else None
    suffixes: list = [None]
    if level is not URIType.SERVICE:
        suffixes += [URISuffix.RENDERED, URISuffix.THUMBNAIL]
        if level is not URIType.FRAME:
            suffixes.append(URISuffix.METADATA)
    suffix = draw(st.sampled_from(suffixes))
    return URI(draw(base_urls), *parts, frames=frames, suffix=suffix, permissive=permissive)


@settings(max_examples=300)
@given(uri=uris(strict_uids, permissive=False))
def test_property_strict_round_trip(uri: URI) -> None:
    text = str(uri)
    parsed = URI.from_string(text)
    assert parsed == uri
    assert str(parsed) == text
    assert parsed.type is uri.type
    assert parsed.frames == uri.frames
    assert parsed.suffix is uri.suffix
    assert URI.from_string(text, uri_type=uri.type) == uri


@settings(max_examples=200)
@given(uri=uris(permissive_uids, permissive=True))
def test_property_permissive_round_trip(uri: URI) -> None:
    parsed = URI.from_string(str(uri), permissive=True)
    assert parsed == uri
    assert (parsed.study_instance_uid, parsed.series_instance_uid, parsed.sop_instance_uid) == (
        uri.study_instance_uid,
        uri.series_instance_uid,
        uri.sop_instance_uid,
    )


@given(uid=strict_uids, frames=frame_lists)
def test_property_parent_chain_of_a_frame_uri(uid: str, frames: list) -> None:
    uri = URI(BASE, uid, uid, uid, frames)
    assert uri.parent == uri.instance_uri()
    assert uri.parent.parent == uri.series_uri()
    assert uri.parent.parent.parent == uri.study_uri()
    assert uri.parent.parent.parent.parent == uri.base_uri() == URI(BASE)


@given(frames=st.lists(st.integers(min_value=-5, max_value=50), min_size=1, max_size=8))
def test_property_frames_are_accepted_only_if_positive_and_strictly_ascending(frames: list) -> None:
    valid = all(number > 0 for number in frames) and all(
        later > earlier for earlier, later in zip(frames, frames[1:])
    )
    if valid:
        assert URI(BASE, STUDY, SERIES, INSTANCE, frames).frames == tuple(frames)
    else:
        with pytest.raises(ValueError):
            URI(BASE, STUDY, SERIES, INSTANCE, frames)
