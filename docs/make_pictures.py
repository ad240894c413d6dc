"""Make the pictures in the documentation from a real run, so they show what the code does.

Run from anywhere in a checkout::

    python docs/make_pictures.py            # writes into docs/images/
    python docs/make_pictures.py --out DIR  # somewhere else

It writes three files:

``frame.png``
    A CT slice, rendered by ``DICOMfileClient.retrieve_instance_rendered`` (PNG).
``cli-session.txt``
    A short ``dicomweb_client`` session on a folder archive: each command line followed
    by what the command printed.
``cli-session.png``
    That text drawn as a terminal window.

The DICOM files are made here (a head phantom built from ellipses, pydicom only) in a
temporary folder that is removed afterwards.  The commands run in a fresh Python process
(``python -m dicomweb_client_cli``) from this checkout, with that folder as the working
directory.  Their folder archive lives at a temporary path, which the transcript shows as
``/data/dicom``; nothing else in the text is changed.

Run it again whenever the command's output changes (for example the table layout):
``tests/test_docs_pictures.py`` fails while ``cli-session.txt`` differs from what the
command prints now.  The transcript needs only pydicom; the two PNG files also need numpy
and Pillow (``pip install -e '.[image]'``).
"""

from __future__ import annotations

import argparse
import array
import io
import math
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "images"

#: How the archive folder appears in the transcript, whatever its real temporary path.
SHOWN_ARCHIVE = "/data/dicom"
#: the width of the terminal the session is shown in (tables are fitted to it)
TERMINAL_COLUMNS = 100

#: The session: arguments after ``dicomweb_client --url URL``.
SESSION = (
    ("search", "studies", "--output", "table"),
    ("search", "series", "--study", "2.25.1001", "--output", "table"),
    ("retrieve", "studies", "--study", "2.25.1001", "full", "--output-dir", "downloads"),
    ("retrieve", "studies", "--study", "2.25.1001", "full", "--output-dir", "downloads"),
)

#: The instance drawn into frame.png: (study, series, instance).
RENDERED = ("2.25.1001", "2.25.1001.1", "2.25.1001.1.2")

# -- DICOM data -------------------------------------------------------------------------------

# A head phantom in the manner of Shepp and Logan: ellipses (centre x, centre y, half axes
# a and b, angle in degrees, value added in HU) on a field -1 .. 1, with y pointing up.
_HEAD = (
    (0.0, 0.0, 0.69, 0.92, 0.0, 1800.0),  # skull: air -1000 -> bone 800
    (0.0, -0.0184, 0.6624, 0.874, 0.0, -770.0),  # brain: 30
    (0.22, 0.0, 0.11, 0.31, -18.0, -25.0),  # ventricles: 5
    (-0.22, 0.0, 0.16, 0.41, 18.0, -25.0),
    (0.0, 0.35, 0.21, 0.25, 0.0, 20.0),
    (0.0, 0.1, 0.046, 0.046, 0.0, 20.0),
    (0.0, -0.1, 0.046, 0.046, 0.0, 20.0),
    (-0.08, -0.605, 0.046, 0.023, 0.0, 20.0),
    (0.0, -0.605, 0.023, 0.023, 0.0, 20.0),
    (0.06, -0.605, 0.023, 0.046, 0.0, 20.0),
)
_AIR = -1000.0
_INTERCEPT = -1024  # stored value = HU + 1024


def _phantom_rows(size: int, scale: float, squash: float) -> bytes:
    """Unsigned 16-bit pixels (little endian) of one slice, row by row.

    Each row is filled span by span: for every ellipse the columns it covers on that row
    follow from a quadratic, so no pixel is tested against every ellipse.
    """
    pixels = array.array("H")
    for row in range(size):
        y = 1.0 - (2.0 * row + 1.0) / size  # pixel centre, y up
        values = [_AIR] * size
        for x0, y0, a, b, degrees, value in _HEAD:
            a, b = a * scale, b * scale * squash
            y0 = y0 * squash
            cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
            dy = y - y0
            qa = (cos / a) ** 2 + (sin / b) ** 2
            qb = 2.0 * dy * sin * cos * (1.0 / a**2 - 1.0 / b**2)
            qc = dy * dy * ((sin / a) ** 2 + (cos / b) ** 2) - 1.0
            disc = qb * qb - 4.0 * qa * qc
            if disc < 0:
                continue
            root = math.sqrt(disc)
            left = x0 + (-qb - root) / (2.0 * qa)
            right = x0 + (-qb + root) / (2.0 * qa)
            first = max(0, math.ceil((left + 1.0) * size / 2.0 - 0.5))
            last = min(size - 1, math.floor((right + 1.0) * size / 2.0 - 0.5))
            for column in range(first, last + 1):
                values[column] += value
        pixels.extend(int(round(v)) - _INTERCEPT for v in values)
    if sys.byteorder != "little":
        pixels.byteswap()
    return pixels.tobytes()


def _cine_frames(size: int, frames: int) -> bytes:
    """8-bit frames of a bright disc that moves from left to right."""
    data = bytearray()
    radius = size / 6.0
    for frame in range(frames):
        cx = size * (0.25 + 0.5 * frame / max(1, frames - 1))
        cy = size / 2.0
        for row in range(size):
            for column in range(size):
                inside = (column + 0.5 - cx) ** 2 + (row + 0.5 - cy) ** 2 <= radius**2
                data.append(220 if inside else 20)
    return bytes(data)


def _base(sop_class: str, sop_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    return ds


def _set_study(ds: Dataset, study: dict) -> None:
    for keyword, value in study.items():
        setattr(ds, keyword, value)
    ds.StudyTime = "120000"
    ds.ReferringPhysicianName = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""


def _ct_slice(
    study: dict, series_uid: str, series_number: int, description: str, number: int, size: int
) -> Dataset:
    sop_uid = f"{series_uid}.{number}"
    ds = _base(CTImageStorage, sop_uid)
    _set_study(ds, study)
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SliceThickness = 5
    ds.PixelSpacing = [0.9, 0.9]
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = _INTERCEPT
    ds.RescaleSlope = 1
    ds.WindowCenter = 40
    ds.WindowWidth = 100
    coronal = description == "Coronal"
    ds.PixelData = _phantom_rows(
        size, scale=1.0 - 0.04 * (number - 1), squash=0.8 if coronal else 1.0
    )
    ds["PixelData"].VR = "OW"
    return ds


def _cine(study: dict, size: int, frames: int) -> Dataset:
    ds = _base(MultiFrameGrayscaleByteSecondaryCaptureImageStorage, "2.25.2002.1.1")
    _set_study(ds, study)
    ds.Modality = "OT"
    ds.SeriesInstanceUID = "2.25.2002.1"
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Cine"
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = 100.0
    ds.PixelData = _cine_frames(size, frames)
    ds["PixelData"].VR = "OB"
    return ds


def make_datasets(size: int = 256) -> list:
    """The archive of the pictures: the two studies that docs/cli.md describes."""
    jane = {
        "PatientName": "Doe^Jane",
        "PatientID": "P1",
        "StudyInstanceUID": "2.25.1001",
        "StudyDate": "20240101",
        "AccessionNumber": "ACC0001",
        "StudyID": "1",
        "StudyDescription": "Head",
    }
    richard = {
        "PatientName": "Roe^Richard",
        "PatientID": "P2",
        "StudyInstanceUID": "2.25.2002",
        "StudyDate": "20240315",
        "AccessionNumber": "ACC0002",
        "StudyID": "2",
        "StudyDescription": "Follow-up",
    }
    datasets = [_ct_slice(jane, "2.25.1001.1", 1, "Axial", n, size) for n in (1, 2, 3)]
    datasets += [_ct_slice(jane, "2.25.1001.2", 2, "Coronal", n, size) for n in (1, 2)]
    datasets.append(_cine(richard, 64, 4))
    return datasets


def _write_part10(path: Path, ds: Dataset) -> None:
    _library()._dcmwrite(path, ds, enforce_file_format=True)  # pydicom 3 and 2


def _library():
    """This checkout's ``dicomweb_client`` module, as the commands of the session use."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import dicomweb_client

    return dicomweb_client


def make_archive(folder: Path) -> Path:
    """Write the data sets as ``<SOPInstanceUID>.dcm`` files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for ds in make_datasets():
        _write_part10(folder / f"{ds.SOPInstanceUID}.dcm", ds)
    return folder


# -- the command line session -----------------------------------------------------------------


def _environment() -> dict:
    """The environment of the commands: this checkout's modules come first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # tables as a terminal of the picture's width shows them, whatever the caller's is
    env["COLUMNS"] = str(TERMINAL_COLUMNS)
    return env


def transcript(workdir: Path) -> str:
    """Run the session in ``workdir`` and return what a terminal would have shown.

    Each command line is written as ``$ dicomweb_client ...``, followed by its standard
    output (and standard error, if it printed anything there).  A command that fails
    raises ``RuntimeError``: a picture of a failure is not what the docs want.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    archive = make_archive(workdir / "dicom")
    real_url = archive.resolve().as_uri()
    shown_url = "file://" + SHOWN_ARCHIVE
    env = _environment()
    lines = []
    for arguments in SESSION:
        command = ["--url", real_url, *arguments]
        shown = shlex.join(["dicomweb_client", "--url", shown_url, *arguments])
        result = subprocess.run(
            [sys.executable, "-m", "dicomweb_client_cli", *command],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{shown} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        output = (result.stdout + result.stderr).replace(real_url, shown_url)
        output = output.replace(str(archive.resolve()), SHOWN_ARCHIVE)
        lines.append(f"$ {shown}\n")
        lines.append(output if output.endswith("\n") or not output else output + "\n")
    return "".join(lines)


# -- pictures (numpy and Pillow) -------------------------------------------------------------


def render_frame(workdir: Path) -> bytes:
    """A CT slice of the archive, as the library renders it (PNG bytes)."""
    DICOMfileClient = _library().DICOMfileClient
    archive = workdir / "dicom"
    if not archive.is_dir():
        make_archive(archive)
    with DICOMfileClient(archive.resolve().as_uri(), update_db=True) as client:
        return client.retrieve_instance_rendered(*RENDERED, media_types=("image/png",))


_FONT_FOLDER = Path("/usr/share/fonts/truetype/dejavu")
_BACKGROUND = (30, 32, 36)
_TITLE_BAR = (52, 55, 61)
_TEXT = (214, 218, 224)
_PROMPT = (126, 198, 153)
_COMMAND = (255, 255, 255)
_DOTS = ((237, 106, 94), (245, 191, 79), (98, 197, 84))


def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    if (_FONT_FOLDER / name).exists():
        return ImageFont.truetype(str(_FONT_FOLDER / name), size)
    try:
        return ImageFont.load_default(size=size)  # Pillow 10.1 and newer
    except TypeError:
        return ImageFont.load_default()


def draw_terminal(text: str, title: str = "dicomweb_client", font_size: int = 14) -> bytes:
    """``text`` drawn in a monospace font on a dark terminal window (PNG bytes).

    Lines that start with ``$ `` are command lines: the prompt is drawn green and the
    command bold.  The window is as wide as the longest line; nothing is wrapped.
    """
    from PIL import Image, ImageDraw

    regular, bold = _font(font_size), _font(font_size, bold=True)
    lines = text.rstrip("\n").split("\n")
    advance = max(regular.getlength("M"), bold.getlength("M"))
    line_height = round(font_size * 1.45)
    pad, bar = 18, 30
    width = int(pad * 2 + advance * max(len(line) for line in lines)) + 1
    height = bar + pad * 2 + line_height * len(lines)

    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=10, fill=_BACKGROUND)
    draw.rounded_rectangle((0, 0, width - 1, bar + 10), radius=10, fill=_TITLE_BAR)
    draw.rectangle((0, bar, width - 1, bar + 10), fill=_BACKGROUND)
    for index, colour in enumerate(_DOTS):
        x = 18 + index * 20
        draw.ellipse((x - 6, bar / 2 - 6, x + 6, bar / 2 + 6), fill=colour)
    draw.text((width / 2, bar / 2), title, font=regular, fill=(170, 174, 182), anchor="mm")

    y = bar + pad
    for line in lines:
        if line.startswith("$ "):
            draw.text((pad, y), "$", font=bold, fill=_PROMPT)
            draw.text((pad + 2 * advance, y), line[2:], font=bold, fill=_COMMAND)
        else:
            draw.text((pad, y), line, font=regular, fill=_TEXT)
        y += line_height

    # A palette of a few dozen colours keeps the file small; text edges stay smooth.
    small = image.quantize(colors=48, method=Image.Quantize.MEDIANCUT, dither=Image.NONE)
    buffer = io.BytesIO()
    small.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


# -- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder for the files (default: docs/images)"
    )
    parser.add_argument(
        "--text-only",
        action="store_true",
        help="write cli-session.txt only (needs neither numpy nor Pillow)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dicomweb-pictures-") as temporary:
        workdir = Path(temporary)
        text = transcript(workdir)
        outputs = {"cli-session.txt": text.encode("utf-8")}
        if not args.text_only:
            outputs["frame.png"] = render_frame(workdir)
            outputs["cli-session.png"] = draw_terminal(text)
    for name, data in outputs.items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
