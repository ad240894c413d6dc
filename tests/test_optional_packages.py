"""Image features name the missing package when numpy or Pillow is not installed."""

import textwrap

import dicom_data
from helpers import blocker, run_python

SCRIPT = textwrap.dedent('''
    import dicomweb_client
    client = dicomweb_client.DICOMfileClient({url!r}, in_memory=True)
    try:
        client.retrieve_instance_rendered({study!r}, {series!r}, {sop!r})
    except ImportError as error:
        print('ImportError:', error)
''')


def test_rendering_without_pillow_says_so(tmp_path):
    ds = dicom_data.make_instance(rows=8, columns=8)
    dicom_data.write_files([ds], tmp_path)
    script = blocker('PIL') + SCRIPT.format(
        url=tmp_path.as_uri(),
        study=ds.StudyInstanceUID,
        series=ds.SeriesInstanceUID,
        sop=ds.SOPInstanceUID,
    )
    result = run_python(script, timeout=60)
    assert 'ImportError:' in result.stdout, result.stderr
    assert 'Pillow' in result.stdout and 'pip install' in result.stdout
