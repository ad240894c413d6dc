"""wsidicom (imi-bigpicture/wsidicom, from PyPI) reads a slide from Orthanc through this
module exactly as it reads the same files from disk.

wsidicom's web source (``wsidicom/web/wsidicom_web_client.py`` in wsidicom 0.36) calls
``search_for_instances`` with a list of series UIDs and ``AvailableTransferSyntaxUID`` as
a field, ``retrieve_instance_metadata`` and ``iter_instance_frames`` with an
``(image/jpeg, JPEG Baseline)`` media type, and reads ``HTTPError.response.status_code``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import downstream_env
from downstream_env import HERE, run_in
from wsi_data import SERIES, STUDY, write_slide


@pytest.fixture(scope="session")
def downstream_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wsidicom from PyPI installed next to this module."""
    return downstream_env.downstream_python(tmp_path_factory)


@pytest.fixture
def slide_on_orthanc(orthanc_clean, tmp_path: Path) -> tuple[str, Path]:
    """The generated slide's files on disk, and uploaded to Orthanc."""
    folder = tmp_path / "slide"
    paths = write_slide(folder)
    orthanc_clean.upload(path.read_bytes() for path in paths)
    return orthanc_clean.url, folder


def test_wsidicom_reads_a_slide_from_orthanc_as_from_disk(
    downstream_python: Path, slide_on_orthanc: tuple[str, Path]
) -> None:
    url, folder = slide_on_orthanc
    report = run_in(downstream_python, HERE / "wsidicom_check.py", url, STUDY, SERIES, str(folder))
    assert Path(report["module"]).name == "dicomweb_client.py"  # this module, not theirs
    assert report["levels"] == [[256, 192, 256, 192], [128, 96, 128, 96], [64, 48, 64, 48]]
    assert report["tiles_compared"] == 17
    assert report["tiles_equal"] == report["tiles_compared"]
    assert report["regions"] == [True, True, True, True]
    assert report["thumbnail"] is True
