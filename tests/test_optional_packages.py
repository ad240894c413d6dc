"""Image features name the missing package when numpy or Pillow is not installed."""
import subprocess
import sys
import textwrap
from pathlib import Path

import dicom_data

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent('''
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {blocked!r}:
                raise ImportError('blocked: ' + name)
    sys.meta_path.insert(0, Block())
    sys.path.insert(0, {root!r})
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
    script = SCRIPT.format(blocked=('PIL',), root=str(ROOT), url=tmp_path.as_uri(),
                           study=ds.StudyInstanceUID, series=ds.SeriesInstanceUID,
                           sop=ds.SOPInstanceUID)
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=60)
    assert 'ImportError:' in result.stdout, result.stderr
    assert 'Pillow' in result.stdout and 'pip install' in result.stdout
