"""The pictures of the documentation cannot go stale.

``docs/make_pictures.py`` makes them from a real run: a small archive of DICOM files, a
frame rendered by ``DICOMfileClient`` and a ``dicomweb_client`` session on that archive.
These tests run the same code in pytest's temporary folders and compare the session with
the text committed beside the picture (``docs/images/cli-session.txt``).  When the
command's output changes, run ``python docs/make_pictures.py`` and commit what it writes.
"""

from __future__ import annotations

import difflib
import importlib.util
import io
import struct
from pathlib import Path
from types import ModuleType

import pytest

from helpers import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
IMAGES = DOCS / "images"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header chunk (no Pillow needed)."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, "a PNG file starts with its IHDR chunk"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def make_pictures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pictures", DOCS / "make_pictures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pictures")


@pytest.fixture(scope="module")
def transcript(make_pictures: ModuleType, workdir: Path) -> str:
    """What the documented command-line session prints now."""
    return make_pictures.transcript(workdir)


def test_committed_transcript_is_what_the_command_prints_now(transcript: str) -> None:
    committed = (IMAGES / "cli-session.txt").read_text(encoding="utf-8")
    if transcript != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                transcript.splitlines(keepends=True),
                "docs/images/cli-session.txt (committed)",
                "what the command prints now",
            )
        )
        pytest.fail(
            "the CLI picture is out of date; run `python docs/make_pictures.py` "
            f"and commit docs/images/:\n{diff}"
        )


def test_transcript_shows_each_command_and_no_temporary_path(
    make_pictures: ModuleType, transcript: str, workdir: Path
) -> None:
    commands = [line for line in transcript.splitlines() if line.startswith("$ ")]
    assert len(commands) == len(make_pictures.SESSION)
    assert all(line.startswith("$ dicomweb_client --url file:///data/dicom ") for line in commands)
    assert str(workdir) not in transcript
    assert "2 studies" in transcript and "5 downloaded" in transcript


def test_committed_pictures_are_small_png_files() -> None:
    for name in ("frame.png", "cli-session.png"):
        data = (IMAGES / name).read_bytes()
        width, height = _png_size(data)
        assert 100 <= width <= 2000 and 100 <= height <= 2000, (name, width, height)
        assert len(data) < 80_000, f"{name} is {len(data)} bytes"


def test_pictures_are_made_as_png(
    make_pictures: ModuleType, transcript: str, workdir: Path
) -> None:
    pytest.importorskip("numpy")
    image_module = pytest.importorskip("PIL.Image")

    frame = make_pictures.render_frame(workdir)
    with image_module.open(io.BytesIO(frame)) as picture:
        assert picture.format == "PNG"
        assert picture.size == (256, 256)
        low, high = picture.convert("L").getextrema()
        assert low < 20 and high > 235, "the window should reach black and white"

    terminal = make_pictures.draw_terminal(transcript)
    with image_module.open(io.BytesIO(terminal)) as picture:
        assert picture.format == "PNG"
        width, height = picture.size
        picture.verify()
    longest = max(len(line) for line in transcript.splitlines())
    assert width > 5 * longest and height > 10 * len(transcript.splitlines())
    assert len(terminal) < 80_000
