"""A small generated whole-slide image: VL Whole Slide Microscopy Image Storage instances
(TILED_FULL, JPEG baseline tiles) for a pyramid of levels, plus a thumbnail image.

Built with pydicom, numpy and Pillow only; every value is deterministic (the UIDs come
from a fixed root) so that the same slide is made each time.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import JPEGBaseline8Bit, VLWholeSlideMicroscopyImageStorage

ROOT = "1.2.826.0.1.3680043.8.498.77"
STUDY = f"{ROOT}.1"
SERIES = f"{ROOT}.1.1"
FRAME_OF_REFERENCE = f"{ROOT}.9"
TILE = 64
BASE_SIZE = (256, 192)  # columns, rows of the full-resolution level
PIXEL_SPACING_MM = 0.0005


def slide_pixels(columns: int, rows: int) -> np.ndarray:
    """An RGB test pattern with structure at every scale (gradients and a grid)."""
    y, x = np.mgrid[0:rows, 0:columns]
    image = np.zeros((rows, columns, 3), dtype=np.uint8)
    image[..., 0] = (x * 255 // max(columns - 1, 1)).astype(np.uint8)
    image[..., 1] = (y * 255 // max(rows - 1, 1)).astype(np.uint8)
    image[..., 2] = np.where(((x // 16) + (y // 16)) % 2 == 0, 200, 40).astype(np.uint8)
    return image


def _jpeg(tile: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(tile, "RGB").save(buffer, format="JPEG", quality=90, subsampling=0)
    return buffer.getvalue()


def _tiles(image: np.ndarray) -> list[bytes]:
    """JPEG tiles of ``image`` in row-major order, the edge tiles padded with white."""
    rows, columns = image.shape[:2]
    tiles = []
    for top in range(0, rows, TILE):
        for left in range(0, columns, TILE):
            tile = np.full((TILE, TILE, 3), 255, dtype=np.uint8)
            part = image[top : top + TILE, left : left + TILE]
            tile[: part.shape[0], : part.shape[1]] = part
            tiles.append(_jpeg(tile))
    return tiles


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _common(ds: Dataset, number: int) -> None:
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    ds.SOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.SOPInstanceUID = f"{ROOT}.1.1.{number}"
    ds.Modality = "SM"
    ds.PatientName = "Slide^Test"
    ds.PatientID = "WSI1"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = "WSI0001"
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.Manufacturer = "tests"
    ds.ContentDate = "20240101"
    ds.ContentTime = "120000"
    ds.FrameOfReferenceUID = FRAME_OF_REFERENCE
    ds.PositionReferenceIndicator = "SLIDE_CORNER"
    ds.ContainerIdentifier = "SLIDE-1"
    ds.IssuerOfTheContainerIdentifierSequence = Sequence([])
    ds.ContainerTypeCodeSequence = Sequence([_code("433466003", "SCT", "Microscope slide")])
    specimen = Dataset()
    specimen.SpecimenIdentifier = "SPECIMEN-1"
    specimen.SpecimenUID = f"{ROOT}.8"
    specimen.IssuerOfTheSpecimenIdentifierSequence = Sequence([])
    specimen.SpecimenPreparationSequence = Sequence([])
    ds.SpecimenDescriptionSequence = Sequence([specimen])
    ds.AcquisitionDateTime = "20240101120000"
    ds.VolumetricProperties = "VOLUME"
    ds.SpecimenLabelInImage = "NO"
    ds.BurnedInAnnotation = "NO"
    ds.FocusMethod = "AUTO"
    ds.ExtendedDepthOfField = "NO"
    optical_path = Dataset()
    optical_path.OpticalPathIdentifier = "0"
    optical_path.IlluminationColorCodeSequence = Sequence(
        [_code("414298005", "SCT", "Full Spectrum")]
    )
    optical_path.IlluminationTypeCodeSequence = Sequence(
        [_code("111744", "DCM", "Brightfield illumination")]
    )
    ds.OpticalPathSequence = Sequence([optical_path])
    ds.NumberOfOpticalPaths = 1
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = 10
    ds.LossyImageCompressionMethod = "ISO_10918_1"


def _geometry(ds: Dataset, columns: int, rows: int, spacing: float) -> None:
    ds.Rows = TILE
    ds.Columns = TILE
    ds.TotalPixelMatrixColumns = columns
    ds.TotalPixelMatrixRows = rows
    ds.NumberOfFrames = -(-columns // TILE) * -(-rows // TILE)
    ds.ImagedVolumeWidth = columns * spacing
    ds.ImagedVolumeHeight = rows * spacing
    ds.ImagedVolumeDepth = 0.001
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem = 20.0
    origin.YOffsetInSlideCoordinateSystem = 40.0
    ds.TotalPixelMatrixOriginSequence = Sequence([origin])
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    measures = Dataset()
    measures.PixelSpacing = [spacing, spacing]
    measures.SliceThickness = 0.001
    measures.SpacingBetweenSlices = 0.001
    frame_type = Dataset()
    frame_type.FrameType = list(ds.ImageType)
    optical = Dataset()
    optical.OpticalPathIdentifier = "0"
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
    shared.OpticalPathIdentificationSequence = Sequence([optical])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])


def make_level(number: int, image: np.ndarray, spacing: float, flavor: str) -> Dataset:
    """One instance: a pyramid level (``VOLUME``) or the ``THUMBNAIL`` image."""
    rows, columns = image.shape[:2]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}.1.1.{number}"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    derived = number > 1
    ds.ImageType = (
        ["DERIVED", "PRIMARY", flavor, "RESAMPLED"]
        if derived
        else ["ORIGINAL", "PRIMARY", flavor, "NONE"]
    )
    _common(ds, number)
    _geometry(ds, columns, rows, spacing)
    ds.PixelData = encapsulate(_tiles(image))
    ds["PixelData"].VR = "OB"
    return ds


def make_slide() -> list[Dataset]:
    """Three pyramid levels (full size, 1/2, 1/4) and a thumbnail."""
    columns, rows = BASE_SIZE
    base = slide_pixels(columns, rows)
    datasets = []
    for level in range(3):
        factor = 2**level
        image = base[::factor, ::factor]
        datasets.append(
            make_level(level + 1, np.ascontiguousarray(image), PIXEL_SPACING_MM * factor, "VOLUME")
        )
    thumbnail = np.ascontiguousarray(base[::8, ::8])
    datasets.append(make_level(4, thumbnail, PIXEL_SPACING_MM * 8, "THUMBNAIL"))
    return datasets


def write_slide(folder: Path) -> list[Path]:
    """Write the slide's instances as Part 10 files; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in make_slide():
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths
