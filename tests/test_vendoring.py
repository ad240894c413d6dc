"""Vendoring: the two module files work on their own next to a bare pydicom.

A virtual environment is made once per session (no pip, pydicom copied in) and the files
``dicomweb_client.py`` and ``dicomweb_client_cli.py`` are copied into an otherwise empty
folder. Code then runs from that folder (``python -c`` with the folder as working directory,
as a user's own script next to the vendored module would) and searches, retrieves and
stores against the recording server and a ``file://`` folder. The environment has no
requests, urllib3, numpy, Pillow or google-auth, so this shows the module needs none of
them, and that image features then fail with an ImportError naming what is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import dicom_data
from helpers import PROJECT_ROOT, check
from isolated_python import (
    OPTIONAL_IMPORTS,
    VenvUnavailable,
    add_pydicom,
    clean_env,
    make_venv,
)
from recording_server import RecordingServer, Response, multipart_response

MODULES = ("dicomweb_client.py", "dicomweb_client_cli.py")
DICOM_JSON = "application/dicom+json"


@dataclass
class Vendored:
    python: Path
    site_packages: Path
    folder: Path

    def run(self, script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``script`` (``-c``) with the vendor folder as working directory."""
        command = [str(self.python), "-E", "-B", "-c", textwrap.dedent(script), *args]
        return subprocess.run(
            command,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
        )

    def run_file(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run one of the vendored files as a script."""
        command = [str(self.python), "-E", "-B", name, *args]
        return subprocess.run(
            command,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
        )


@pytest.fixture(scope="session")
def vendored(tmp_path_factory: pytest.TempPathFactory) -> Vendored:
    base = tmp_path_factory.mktemp("vendoring")
    try:
        python = make_venv(base / "venv")
    except VenvUnavailable as error:
        pytest.skip(f"cannot create a virtual environment here: {error}")
    site_packages = add_pydicom(python)
    folder = base / "project"
    folder.mkdir()
    for name in MODULES:
        shutil.copy2(PROJECT_ROOT / name, folder / name)
    return Vendored(python, site_packages, folder)


def test_environment_holds_pydicom_and_nothing_else(vendored: Vendored) -> None:
    script = """
        import importlib.util, json, sys
        found = [name for name in json.loads(sys.argv[1])
                 if importlib.util.find_spec(name) is not None]
        print(json.dumps({'found': found, 'prefix': sys.prefix,
                          'base_prefix': sys.base_prefix}))
    """
    report = json.loads(check(vendored.run(script, json.dumps(OPTIONAL_IMPORTS))))
    assert report["found"] == []
    assert report["prefix"] != report["base_prefix"]
    installed = sorted(p.name for p in vendored.site_packages.iterdir())
    assert [name for name in installed if not name.startswith("pydicom")] == []
    assert sorted(p.name for p in vendored.folder.iterdir()) == sorted(MODULES)


WEB_SCRIPT = """
    import json, sys
    import pydicom
    import dicomweb_client
    from dicomweb_client import DICOMwebClient

    args = json.loads(sys.argv[1])
    assert dicomweb_client.__file__.endswith('dicomweb_client.py')
    client = DICOMwebClient(url=args['url'])
    study, series, sop = args['study'], args['series'], args['sop']
    studies = client.search_for_studies(search_filters={'PatientID': 'P1'}, limit=5)
    metadata = client.retrieve_instance_metadata(study, series, sop)
    frames = client.retrieve_instance_frames(study, series, sop, [1])
    instance = client.retrieve_instance(study, series, sop)
    report = client.store_instances([pydicom.dcmread(args['file'])])
    loaded = sorted(name for name in json.loads(sys.argv[2]) if name in sys.modules)
    print(json.dumps({
        'studies': [item['0020000D']['Value'][0] for item in studies],
        'metadata_sop': metadata['00080018']['Value'][0],
        'frame_sizes': [len(frame) for frame in frames],
        'frame_ok': frames[0] == bytes.fromhex(args['frame']),
        'instance_sop': instance.SOPInstanceUID,
        'report_type': type(report).__name__,
        'loaded': loaded,
    }))
"""


def test_web_client_without_optional_packages(vendored: Vendored, tmp_path: Path) -> None:
    ds = dicom_data.make_instance(rows=4, columns=4)
    (path,) = dicom_data.write_files([ds], tmp_path)
    study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    instance_path = f"/studies/{study}/series/{series}/instances/{sop}"
    frame = dicom_data.frame_bytes(ds, 1)
    study_item = {"0020000D": {"vr": "UI", "Value": [study]}}

    with RecordingServer() as server:
        server.add(
            "GET",
            "/studies",
            Response(body=json.dumps([study_item]).encode(), content_type=DICOM_JSON),
        )
        server.add(
            "GET",
            instance_path + "/metadata",
            Response(body=json.dumps([ds.to_json_dict()]).encode(), content_type=DICOM_JSON),
        )
        server.add(
            "GET",
            instance_path + "/frames/1",
            multipart_response([frame], "application/octet-stream"),
        )
        server.add("GET", instance_path, multipart_response([dicom_data.to_bytes(ds)]))
        server.add("POST", "/studies", Response(status=200, body=b""))
        args = {
            "url": server.url,
            "study": study,
            "series": series,
            "sop": sop,
            "file": str(path),
            "frame": frame.hex(),
        }
        out = check(vendored.run(WEB_SCRIPT, json.dumps(args), json.dumps(OPTIONAL_IMPORTS)))
        requests = list(server.requests)

    result = json.loads(out)
    assert result == {
        "studies": [study],
        "metadata_sop": sop,
        "frame_sizes": [len(frame)],
        "frame_ok": True,
        "instance_sop": sop,
        "report_type": "Dataset",
        "loaded": [],
    }
    assert [(r.method, r.path) for r in requests] == [
        ("GET", "/studies"),
        ("GET", instance_path + "/metadata"),
        ("GET", instance_path + "/frames/1"),
        ("GET", instance_path),
        ("POST", "/studies"),
    ]
    assert requests[0].query.get("PatientID") == ["P1"]
    store = requests[-1]
    assert (store.header("Content-Type") or "").startswith("multipart/related")
    assert sop.encode() in store.body


FILE_SCRIPT = """
    import json, sys
    import pydicom
    from dicomweb_client import DICOMfileClient

    args = json.loads(sys.argv[1])
    client = DICOMfileClient(args['url'])
    client.store_instances([pydicom.dcmread(path) for path in args['files']])
    study, series, sop = args['study'], args['series'], args['sop']
    studies = client.search_for_studies(search_filters={'PatientID': 'P2'})
    instances = client.search_for_instances(study)
    instance = client.retrieve_instance(study, series, sop)
    metadata = client.retrieve_instance_metadata(study, series, sop)
    frames = client.retrieve_instance_frames(study, series, sop, [1])
    try:
        client.retrieve_instance_rendered(study, series, sop)
    except ImportError as error:
        rendered = 'ImportError: ' + str(error)
    else:
        rendered = 'no error'
    loaded = sorted(name for name in json.loads(sys.argv[2]) if name in sys.modules)
    print(json.dumps({
        'studies': [item['0020000D']['Value'][0] for item in studies],
        'instances': sorted(item['00080018']['Value'][0] for item in instances),
        'instance_sop': instance.SOPInstanceUID,
        'metadata_sop': metadata['00080018']['Value'][0],
        'frame_ok': frames == [bytes.fromhex(args['frame'])],
        'rendered': rendered,
        'loaded': loaded,
    }))
"""


@pytest.fixture(scope="module")
def stored_folder(vendored: Vendored, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A file:// folder filled by the vendored file client (store_instances)."""
    base = tmp_path_factory.mktemp("vendored-files")
    datasets = dicom_data.make_study(n_series=1, n_instances=2, patient_id="P2")
    sources = dicom_data.write_files(datasets, base / "sources")
    folder = base / "archive"
    folder.mkdir()
    ds = datasets[0]
    args = {
        "url": folder.as_uri(),
        "files": [str(p) for p in sources],
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "sop": ds.SOPInstanceUID,
        "frame": dicom_data.frame_bytes(ds, 1).hex(),
    }
    out = check(vendored.run(FILE_SCRIPT, json.dumps(args), json.dumps(OPTIONAL_IMPORTS)))
    return {"folder": folder, "datasets": datasets, "result": json.loads(out)}


def test_file_client_without_optional_packages(stored_folder: dict) -> None:
    datasets, result = stored_folder["datasets"], stored_folder["result"]
    ds = datasets[0]
    assert result["studies"] == [ds.StudyInstanceUID]
    assert result["instances"] == sorted(d.SOPInstanceUID for d in datasets)
    assert result["instance_sop"] == ds.SOPInstanceUID
    assert result["metadata_sop"] == ds.SOPInstanceUID
    assert result["frame_ok"] is True
    assert result["loaded"] == []


def test_rendering_names_the_missing_package(stored_folder: dict) -> None:
    rendered = stored_folder["result"]["rendered"]
    assert rendered.startswith("ImportError: "), rendered
    assert "numpy" in rendered.lower() or "pillow" in rendered.lower(), rendered


def test_rendering_error_gives_the_install_hint(stored_folder: dict) -> None:
    rendered = stored_folder["result"]["rendered"]
    assert "pip install numpy Pillow" in rendered, rendered
    assert "[image]" not in rendered, rendered  # a vendored copy has no extras


def test_vendored_cli_searches_a_file_url(vendored: Vendored, stored_folder: dict) -> None:
    url = stored_folder["folder"].as_uri()
    study = stored_folder["datasets"][0].StudyInstanceUID
    out = check(
        vendored.run_file(
            "dicomweb_client_cli.py", "--url", url, "--no-progress", "search", "studies"
        )
    )
    assert study in out
    help_text = check(vendored.run_file("dicomweb_client_cli.py", "--help"))
    assert "--url" in help_text
