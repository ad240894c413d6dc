"""Read a whole-slide image with wsidicom twice, from Orthanc through dicomweb_client and
from the same files on disk, and report whether every pixel agrees (one JSON object on
stdout).  Runs inside the downstream virtualenv, where wsidicom is installed next to this
project's dicomweb_client module.

Usage: python wsidicom_check.py DICOMWEB_URL STUDY_UID SERIES_UID FOLDER
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from pydicom.uid import JPEGBaseline8Bit


def _equal(first: object, second: object) -> bool:
    return bool(np.array_equal(np.asarray(first), np.asarray(second)))


def compare(web: object, disk: object) -> dict:
    """Every tile of every level, some regions and the thumbnail, web against disk."""
    report: dict = {"levels": [], "regions": [], "tiles_compared": 0, "tiles_equal": 0}
    for web_level, disk_level in zip(web.levels, disk.levels):  # type: ignore[attr-defined]
        size = web_level.size
        report["levels"].append(
            [size.width, size.height, disk_level.size.width, disk_level.size.height]
        )
        tiles = web_level.default_instance.image_data.tiled_size
        for y in range(tiles.height):
            for x in range(tiles.width):
                level = web_level.level
                same = _equal(web.read_tile(level, (x, y)), disk.read_tile(level, (x, y)))
                report["tiles_compared"] += 1
                report["tiles_equal"] += int(same)
    for location, level, size in (
        ((0, 0), 0, (256, 192)),
        ((10, 20), 0, (100, 70)),
        ((5, 5), 1, (60, 50)),
        ((0, 0), 2, (64, 48)),
    ):
        report["regions"].append(
            _equal(web.read_region(location, level, size), disk.read_region(location, level, size))
        )
    report["thumbnail"] = _equal(web.read_thumbnail((40, 40)), disk.read_thumbnail((40, 40)))
    return report


def main(argv: list[str]) -> int:
    url, study, series, folder = argv
    import dicomweb_client
    from dicomweb_client.api import DICOMwebClient
    from wsidicom import WsiDicom, WsiDicomWebClient

    client = WsiDicomWebClient(DICOMwebClient(url))
    with (
        WsiDicom.open_web(client, study, series, requested_transfer_syntax=JPEGBaseline8Bit) as web,
        WsiDicom.open(Path(folder)) as disk,
    ):
        report = compare(web, disk)
    report["module"] = dicomweb_client.__file__
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
