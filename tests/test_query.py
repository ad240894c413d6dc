"""Tests of the query helpers: ``build_query_string``, ``parse_query_parameters``,
``lookup_keyword`` and ``lookup_tag`` (also as ``DICOMwebClient`` static methods).
"""

from __future__ import annotations

import datetime
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.datadict import keyword_dict
from pydicom.tag import BaseTag, Tag

import dicomweb_client
from dicomweb_client import (
    DICOMwebClient,
    build_query_string,
    lookup_keyword,
    lookup_tag,
    parse_query_parameters,
)


def pairs(query: str) -> list[tuple[str, str]]:
    """Decode a query string built by build_query_string into (key, value) pairs."""
    assert query.startswith('?')
    return urllib.parse.parse_qsl(query[1:], keep_blank_values=True, strict_parsing=True)


# -- build_query_string -------------------------------------------------------------------


@pytest.mark.parametrize('params', [None, {}])
def test_no_parameters_give_an_empty_string(params) -> None:
    assert build_query_string(params) == ''
    assert build_query_string() == ''


def test_single_parameter() -> None:
    assert build_query_string({'PatientID': 'ABC123'}) == '?PatientID=ABC123'


def test_parameters_keep_their_order() -> None:
    query = build_query_string({'limit': 10, 'offset': 20, 'PatientID': 'X'})
    assert query == '?limit=10&offset=20&PatientID=X'


@pytest.mark.parametrize('values', [['a', 'b', 'c'], ('a', 'b', 'c')])
def test_list_values_repeat_the_key(values) -> None:
    query = build_query_string({'includefield': values, 'limit': 1})
    assert query == '?includefield=a&includefield=b&includefield=c&limit=1'


def test_set_values_repeat_the_key() -> None:
    query = build_query_string({'includefield': {'x', 'y'}})
    assert sorted(pairs(query)) == [('includefield', 'x'), ('includefield', 'y')]


def test_an_empty_list_contributes_nothing() -> None:
    assert build_query_string({'includefield': []}) == ''
    assert build_query_string({'includefield': [], 'limit': 2}) == '?limit=2'


@pytest.mark.parametrize(
    'value',
    [
        'Doe^John',
        'a b',
        'a&b=c',
        '50%',
        'x#y',
        'a+b',
        'é/ü',
        '*Smith*',
        '20200101-20201231',
        'a?b',
        '',
    ],
)
def test_values_are_url_quoted(value: str) -> None:
    query = build_query_string({'PatientName': value})
    raw_value = query[len('?PatientName=') :]
    for character in ' &#=+':
        assert character not in raw_value
    assert pairs(query) == [('PatientName', value)]


@pytest.mark.parametrize('value', ['*Smith*', 'Sm?th', '1.2.3,1.2.4', 'Doe^John'])
def test_qido_syntax_characters_are_sent_as_they_are(value: str) -> None:
    # wildcards, list commas and name separators must reach servers that compare raw
    # query values (Orthanc 1.10) unchanged
    assert build_query_string({'PatientName': value}) == f'?PatientName={value}'


def test_space_and_ampersand_are_encoded() -> None:
    query = build_query_string({'PatientName': 'x y&z'})
    assert query == '?PatientName=x%20y%26z'


def test_numbers_are_rendered_as_text() -> None:
    assert build_query_string({'limit': 5, 'offset': 0}) == '?limit=5&offset=0'


@pytest.mark.parametrize('value, text', [(True, 'true'), (False, 'false')])
def test_booleans_are_lowercase(value: bool, text: str) -> None:
    assert build_query_string({'fuzzymatching': value}) == f'?fuzzymatching={text}'


def test_dates_and_times_use_the_dicom_form() -> None:
    query = build_query_string(
        {
            'StudyDate': datetime.date(2024, 1, 2),
            'StudyTime': datetime.time(13, 4, 5),
            'AcquisitionDateTime': datetime.datetime(2024, 1, 2, 13, 4, 5),
        }
    )
    assert pairs(query) == [
        ('StudyDate', '20240102'),
        ('StudyTime', '130405'),
        ('AcquisitionDateTime', '20240102130405'),
    ]


@given(
    st.dictionaries(
        st.from_regex(r'[A-Za-z][A-Za-z0-9]{0,15}', fullmatch=True),
        st.one_of(st.text(max_size=20), st.lists(st.text(max_size=10), min_size=1, max_size=4)),
        min_size=1,
        max_size=5,
    )
)
def test_property_query_string_decodes_to_the_parameters(params: dict) -> None:
    expected = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            expected.append((key, item))
    assert pairs(build_query_string(params)) == expected


# -- parse_query_parameters: limit, offset, fuzzymatching -------------------------------


def test_no_arguments_give_no_parameters() -> None:
    assert parse_query_parameters() == {}
    assert parse_query_parameters(None, None, None, None, None) == {}


@pytest.mark.parametrize('name', ['limit', 'offset'])
@pytest.mark.parametrize('value', [0, 1, 25, 10**9])
def test_limit_and_offset_accept_non_negative_integers(name: str, value: int) -> None:
    assert parse_query_parameters(**{name: value}) == {name: value}


@pytest.mark.parametrize('name', ['limit', 'offset'])
@pytest.mark.parametrize('value', [1.0, '5', b'5', [5], True])
def test_limit_and_offset_must_be_integers(name: str, value) -> None:
    with pytest.raises(TypeError):
        parse_query_parameters(**{name: value})


@pytest.mark.parametrize('name', ['limit', 'offset'])
@pytest.mark.parametrize('value', [-1, -100])
def test_limit_and_offset_must_not_be_negative(name: str, value: int) -> None:
    with pytest.raises(ValueError):
        parse_query_parameters(**{name: value})


@pytest.mark.parametrize('value, text', [(True, 'true'), (False, 'false')])
def test_fuzzymatching_becomes_true_or_false(value: bool, text: str) -> None:
    assert parse_query_parameters(fuzzymatching=value) == {'fuzzymatching': text}


@pytest.mark.parametrize('value', ['true', 1, 0])
def test_fuzzymatching_must_be_a_boolean(value) -> None:
    with pytest.raises(TypeError):
        parse_query_parameters(fuzzymatching=value)


# -- parse_query_parameters: fields -------------------------------------------------------


def test_fields_become_a_sorted_unique_includefield_list() -> None:
    result = parse_query_parameters(
        fields=['StudyDate', 'PatientID', 'StudyDate', 'AccessionNumber']
    )
    assert result == {'includefield': ['AccessionNumber', 'PatientID', 'StudyDate']}
    assert isinstance(result['includefield'], list)


def test_fields_accept_tags_all_and_sequence_paths() -> None:
    fields = [
        'all',
        '00100020',
        '0020000D',
        'ReferencedSeriesSequence.SeriesInstanceUID',
        '00081115.0020000E',
    ]
    result = parse_query_parameters(fields=fields)
    assert result == {'includefield': sorted(set(fields))}


def test_fields_accept_any_iterable() -> None:
    result = parse_query_parameters(fields=(name for name in ['PatientID', 'PatientName']))
    assert result == {'includefield': ['PatientID', 'PatientName']}


def test_a_single_field_may_be_given_as_a_string() -> None:
    assert parse_query_parameters(fields='PatientID') == {'includefield': ['PatientID']}


@pytest.mark.parametrize(
    'field',
    ['NoSuchKeyword', 'patientid', '0010002', '0010002G', 'PatientID.NoSuchKeyword', '(0010,0020)'],
)
def test_unknown_field_raises_value_error_naming_fields(field: str) -> None:
    with pytest.raises(ValueError, match='fields'):
        parse_query_parameters(fields=['PatientID', field])


@pytest.mark.parametrize(
    'name', ['', 'PatientName.', '.PatientName', 'ReferencedSeriesSequence..SeriesInstanceUID']
)
@pytest.mark.parametrize('argument', ['fields', 'search_filters'])
def test_empty_attribute_names_are_rejected(name: str, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        if argument == 'fields':
            parse_query_parameters(fields=[name])
        else:
            parse_query_parameters(search_filters={name: 'x'})


# -- parse_query_parameters: search filters ----------------------------------------------


def test_search_filters_by_keyword_pass_through() -> None:
    filters = {
        'PatientID': 'ABC',
        'StudyDate': '20200101-20201231',
        'ModalitiesInStudy': ['CT', 'MR'],
    }
    assert parse_query_parameters(search_filters=filters) == filters


def test_search_filters_by_tag_pass_through() -> None:
    filters = {'00100020': 'ABC', '0020000d': '1.2.3', '0020000D': '4.5.6'}
    assert parse_query_parameters(search_filters=filters) == filters


def test_search_filters_by_sequence_path_pass_through() -> None:
    filters = {
        'ReferencedSeriesSequence.SeriesInstanceUID': '1.2',
        '00081115.0020000E': '3.4',
        'RequestAttributesSequence.00401001': 'R1',
    }
    assert parse_query_parameters(search_filters=filters) == filters


def test_search_filter_values_are_not_changed() -> None:
    value = object()
    assert parse_query_parameters(search_filters={'PatientID': value})['PatientID'] is value


@pytest.mark.parametrize(
    'key', ['NoSuchKeyword', 'patientID', '001000200', 'GGGGGGGG', 'ReferencedSeriesSequence.Nope']
)
def test_unknown_search_filter_raises_value_error_naming_search_filters(key: str) -> None:
    with pytest.raises(ValueError, match='search_filters'):
        parse_query_parameters(search_filters={key: 'x'})


@pytest.mark.parametrize('key', ['limit', 'offset', 'fuzzymatching', 'includefield'])
def test_reserved_names_are_not_search_filters(key: str) -> None:
    with pytest.raises(ValueError):
        parse_query_parameters(search_filters={key: '1'})


def test_result_is_sorted_by_key() -> None:
    result = parse_query_parameters(
        fuzzymatching=True,
        limit=10,
        offset=5,
        fields=['StudyDate', 'PatientID'],
        search_filters={'StudyDate': '2020', 'AccessionNumber': 'A1', '00100020': 'P'},
    )
    assert list(result) == sorted(result)
    assert result == {
        '00100020': 'P',
        'AccessionNumber': 'A1',
        'StudyDate': '2020',
        'fuzzymatching': 'true',
        'includefield': ['PatientID', 'StudyDate'],
        'limit': 10,
        'offset': 5,
    }


def test_parsed_parameters_feed_build_query_string() -> None:
    params = parse_query_parameters(
        limit=2, fields=['PatientID', 'StudyDate'], search_filters={'PatientName': 'Doe^J*'}
    )
    assert pairs(build_query_string(params)) == [
        ('PatientName', 'Doe^J*'),
        ('includefield', 'PatientID'),
        ('includefield', 'StudyDate'),
        ('limit', '2'),
    ]


@given(st.lists(st.sampled_from(sorted(k for k in keyword_dict if k)), max_size=10))
def test_property_includefield_is_sorted_and_unique(fields: list) -> None:
    result = parse_query_parameters(fields=fields)
    assert result['includefield'] == sorted(set(fields))


# -- lookup_keyword / lookup_tag ------------------------------------------------------------


@pytest.mark.parametrize(
    'tag',
    [
        '00100010',
        '00100010'.lower(),
        0x00100010,
        (0x0010, 0x0010),
        Tag(0x00100010),
        Tag('PatientName'),
        BaseTag(0x00100010),
    ],
)
def test_lookup_keyword_accepts_every_tag_form(tag) -> None:
    assert lookup_keyword(tag) == 'PatientName'


@pytest.mark.parametrize(
    'tag, keyword',
    [
        ('0020000D', 'StudyInstanceUID'),
        ('0020000d', 'StudyInstanceUID'),
        ('0020000E', 'SeriesInstanceUID'),
        ('00080018', 'SOPInstanceUID'),
        ('7FE00010', 'PixelData'),
        (0x00280010, 'Rows'),
        ((0x0008, 0x0060), 'Modality'),
    ],
)
def test_lookup_keyword(tag, keyword: str) -> None:
    assert lookup_keyword(tag) == keyword


@pytest.mark.parametrize(
    'tag', ['00091001', 0x00091001, (0x0009, 0x1001), Tag(0x00111010), 'FFFFFFFF']
)
def test_lookup_keyword_of_an_unknown_tag_raises_key_error(tag) -> None:
    with pytest.raises(KeyError):
        lookup_keyword(tag)


@pytest.mark.parametrize(
    'keyword, tag',
    [
        ('PatientName', '00100010'),
        ('StudyInstanceUID', '0020000D'),
        ('SeriesInstanceUID', '0020000E'),
        ('SOPInstanceUID', '00080018'),
        ('PixelData', '7FE00010'),
        ('Rows', '00280010'),
    ],
)
def test_lookup_tag(keyword: str, tag: str) -> None:
    assert lookup_tag(keyword) == tag


@pytest.mark.parametrize('keyword', ['NoSuchKeyword', 'patientname', 'PatientName '])
def test_lookup_tag_of_an_unknown_keyword_raises_key_error(keyword: str) -> None:
    with pytest.raises(KeyError):
        lookup_tag(keyword)


def test_lookup_tag_of_the_empty_keyword_raises_key_error() -> None:
    with pytest.raises(KeyError):
        lookup_tag('')


@given(st.sampled_from(sorted(k for k in keyword_dict if k)))
def test_property_lookup_tag_and_keyword_are_inverse(keyword: str) -> None:
    tag = lookup_tag(keyword)
    assert len(tag) == 8
    assert tag == tag.upper()
    int(tag, 16)
    assert lookup_keyword(tag) == keyword
    assert lookup_keyword(int(tag, 16)) == keyword


def test_lookups_are_static_methods_of_the_client() -> None:
    assert DICOMwebClient.lookup_keyword is lookup_keyword
    assert DICOMwebClient.lookup_tag is lookup_tag
    assert DICOMwebClient.lookup_keyword('00100020') == 'PatientID'
    assert DICOMwebClient.lookup_tag('PatientID') == '00100020'


def test_lookups_work_on_a_client_instance() -> None:
    client = DICOMwebClient('http://127.0.0.1:9/dicom-web')
    assert client.lookup_keyword((0x0010, 0x0020)) == 'PatientID'
    assert client.lookup_tag('PatientID') == '00100020'
    with pytest.raises(KeyError):
        client.lookup_tag('NoSuchKeyword')


def test_lookups_are_served_by_the_api_alias() -> None:
    import dicomweb_client.api as api

    assert api.lookup_keyword is dicomweb_client.lookup_keyword
    assert api.DICOMwebClient.lookup_tag('Modality') == '00080060'
