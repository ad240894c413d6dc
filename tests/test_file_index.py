"""The file client's index over its life: opening, checking, closing, leaving no files.

Opening an index that every writer closed must not read the whole file (its cost would
grow with the archive); a writer that was killed leaves a registration that makes the
next client check the file.  Whatever way a client ends (``close()``, ``with``, garbage
collection, interpreter exit, a worker process ending), nothing but the index file stays
beside the archive.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest

import dicomweb_client as dwc
from dicom_data import make_archive, write_files
from helpers import PROJECT_ROOT, TESTS_DIR, run_python

INDEX_NAME = '.dicomweb_client.sqlite'
CHECKING = 'checking the integrity of the index'


def leftovers(root: Path) -> List[str]:
    """Files beside the index that should not outlive the clients: -wal, -shm, locks."""
    return sorted(
        path.name
        for path in root.iterdir()
        if path.name.startswith(INDEX_NAME) and path.name != INDEX_NAME
    )


def query(root: Path, sql: str) -> List[tuple]:
    """Rows of a query on the index, through a connection closed at once (``with`` on a
    connection would only commit, and an open one keeps the index in WAL mode)."""
    uri = f'{(root / INDEX_NAME).as_uri()}?mode=ro'
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        return connection.execute(sql).fetchall()


def writers(root: Path) -> List[tuple]:
    return query(root, 'SELECT host, pid FROM writers')


def journal_mode(root: Path) -> str:
    return query(root, 'PRAGMA journal_mode')[0][0]


# -- checking the index only when it may be damaged ------------------------------------------


def test_reopening_a_cleanly_closed_index_reads_no_more_than_it_needs(
    archive_folder: Path, caplog
) -> None:
    with caplog.at_level(logging.INFO, logger='dicomweb_client'):
        for _ in range(3):
            with dwc.DICOMfileClient(archive_folder.as_uri()) as client:
                assert len(client.search_for_series()) == 6
            with dwc.DICOMfileClient(archive_folder.as_uri(), readonly=True) as client:
                assert len(client.search_for_series()) == 6
    assert CHECKING not in caplog.text


def test_a_client_that_only_reads_registers_nothing(archive_folder: Path) -> None:
    with dwc.DICOMfileClient(archive_folder.as_uri()) as client:
        client.search_for_instances()
        assert writers(archive_folder) == []
        assert journal_mode(archive_folder) == 'delete'
        assert leftovers(archive_folder) == []


def test_a_writer_registers_while_open(archive_folder: Path) -> None:
    client = dwc.DICOMfileClient(archive_folder.as_uri())
    client.store_instances(make_archive(1, 1, 1, rows=4, columns=4))
    assert [pid for _, pid in writers(archive_folder)] == [__import__('os').getpid()]
    client.close()
    assert writers(archive_folder) == []
    assert journal_mode(archive_folder) == 'delete'


def test_update_db_asks_for_the_check(archive_folder: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger='dicomweb_client'):
        dwc.DICOMfileClient(archive_folder.as_uri(), update_db=True).close()
    assert f'{CHECKING} (asked for)' in caplog.text


def test_a_killed_writer_makes_the_next_client_check(archive_folder: Path, caplog) -> None:
    code = (
        f'import dicomweb_client as dwc, os, signal\n'
        f'client = dwc.DICOMfileClient({archive_folder.as_uri()!r}, update_db=True)\n'
        f'os.kill(os.getpid(), signal.SIGKILL)'
    )
    process = run_python(code)
    assert process.returncode == -signal.SIGKILL
    assert len(writers(archive_folder)) == 1  # it never left
    with caplog.at_level(logging.INFO, logger='dicomweb_client'):
        with dwc.DICOMfileClient(archive_folder.as_uri()) as client:
            assert len(client.search_for_instances()) == 12
    assert f'{CHECKING} (a writer did not close it)' in caplog.text
    assert writers(archive_folder) == []  # the dead registration was dropped
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='dicomweb_client'):
        dwc.DICOMfileClient(archive_folder.as_uri()).close()
    assert CHECKING not in caplog.text  # once is enough


def test_a_read_only_client_checks_after_a_killed_writer_too(archive_folder: Path, caplog) -> None:
    code = (
        f'import dicomweb_client as dwc, os\n'
        f'client = dwc.DICOMfileClient({archive_folder.as_uri()!r}, update_db=True)\n'
        f'os._exit(0)'
    )  # no finalizers, no atexit: as if killed
    run_python(code, check=True)
    with caplog.at_level(logging.INFO, logger='dicomweb_client'):
        with dwc.DICOMfileClient(archive_folder.as_uri(), readonly=True) as client:
            assert len(client.search_for_instances()) == 12
    assert f'{CHECKING} (a writer did not close it)' in caplog.text


def test_a_registration_is_dead_when_its_process_id_was_reused() -> None:
    import os

    own = dwc._process_identity(os.getpid())
    assert own is not None  # Linux: the start time from /proc
    assert dwc._process_alive(os.getpid(), own)
    assert not dwc._process_alive(os.getpid(), str(int(own) + 1))
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    assert not dwc._process_alive(child.pid, None) or dwc._process_identity(child.pid)


def test_an_index_of_the_previous_version_is_checked_and_rebuilt(
    archive_folder: Path, caplog
) -> None:
    with sqlite3.connect(archive_folder / INDEX_NAME) as connection:
        connection.execute('DROP TABLE writers')
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    with caplog.at_level(logging.INFO, logger='dicomweb_client'):
        with dwc.DICOMfileClient(archive_folder.as_uri()) as client:
            assert len(client.search_for_instances()) == 12
    assert f'{CHECKING} (it predates writer registration)' in caplog.text
    assert writers(archive_folder) == []


# -- nothing left beside the archive ----------------------------------------------------------


def test_close_and_with_leave_only_the_index(archive_folder: Path) -> None:
    client = dwc.DICOMfileClient(archive_folder.as_uri(), update_db=True)
    client.store_instances(make_archive(1, 1, 1, rows=4, columns=4))
    client.close()
    assert leftovers(archive_folder) == []
    with dwc.DICOMfileClient(archive_folder.as_uri(), recreate_db=True) as client:
        assert len(client.search_for_instances()) == 13
    assert leftovers(archive_folder) == []


def test_the_last_of_several_clients_cleans_up(archive_folder: Path) -> None:
    writer = dwc.DICOMfileClient(archive_folder.as_uri())
    reader = dwc.DICOMfileClient(archive_folder.as_uri())
    reader.search_for_studies()
    writer.store_instances(make_archive(1, 1, 1, rows=4, columns=4))
    reader.search_for_studies()  # reads through the write-ahead log now
    writer.close()  # the other one still reads: the index stays in WAL mode
    assert len(reader.search_for_instances()) == 13
    reader.close()
    assert leftovers(archive_folder) == []
    assert journal_mode(archive_folder) == 'delete'


def test_interpreter_exit_without_close_leaves_only_the_index(archive_folder: Path) -> None:
    code = (
        f'import dicomweb_client as dwc\n'
        f'from dicom_data import make_archive\n'
        f'client = dwc.DICOMfileClient({archive_folder.as_uri()!r})\n'
        f'client.store_instances(make_archive(1, 1, 1, rows=4, columns=4))\n'
        f'reader = dwc.DICOMfileClient({archive_folder.as_uri()!r}, readonly=True)\n'
        f'print(len(reader.search_for_instances()))'
    )
    code = f'import sys\nsys.path.insert(0, {str(TESTS_DIR)!r})\n{code}'
    assert run_python(code, check=True).stdout.strip() == '13'
    assert leftovers(archive_folder) == []
    assert writers(archive_folder) == []


def _store_in_worker(url: str) -> int:
    client = dwc.DICOMfileClient(url)
    client.store_instances(make_archive(1, 1, 1, rows=4, columns=4))
    return len(client.search_for_instances())  # the client is never closed


@pytest.mark.parametrize('method', ['fork', 'spawn'])
def test_worker_processes_leave_only_the_index(archive_folder: Path, method: str) -> None:
    pool = multiprocessing.get_context(method).Pool(2)
    counts = pool.map(_store_in_worker, [archive_folder.as_uri()] * 2)
    pool.close()  # the workers end as workers do (leaving the pool with terminate() kills
    pool.join()  # them, and a killed writer leaves its registration for the next check)
    assert sorted(counts)[-1] == 14
    assert leftovers(archive_folder) == []
    assert writers(archive_folder) == []


def test_a_forked_copy_does_not_close_its_parents_index(archive_folder: Path) -> None:
    client = dwc.DICOMfileClient(archive_folder.as_uri())
    client.store_instances(make_archive(1, 1, 1, rows=4, columns=4))
    process = multiprocessing.get_context('fork').Process(target=client.close)
    process.start()
    process.join()
    assert process.exitcode == 0
    assert len(writers(archive_folder)) == 1  # still registered: the parent still writes
    client.store_instances(make_archive(1, 1, 1, rows=4, columns=4))
    client.close()
    assert writers(archive_folder) == [] and leftovers(archive_folder) == []


def test_garbage_collection_closes_a_client(archive_folder: Path) -> None:
    import gc

    client = dwc.DICOMfileClient(archive_folder.as_uri())
    client.store_instances(make_archive(1, 1, 1, rows=4, columns=4))
    del client
    gc.collect()
    assert writers(archive_folder) == [] and leftovers(archive_folder) == []


# -- the update lock -----------------------------------------------------------------------


def test_the_update_lock_excludes_and_leaves_no_file(tmp_path: Path) -> None:
    path = str(tmp_path / 'index.lock')
    inside = []
    most = []

    def hold() -> None:
        for _ in range(30):
            with dwc._exclusive_file_lock(path) as locked:
                assert locked
                inside.append(1)
                most.append(len(inside))
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(most) == 1 and len(most) == 120
    assert not (tmp_path / 'index.lock').exists()


def test_the_update_lock_without_waiting(tmp_path: Path) -> None:
    path = str(tmp_path / 'index.lock')
    with dwc._exclusive_file_lock(path) as first:
        assert first
        with dwc._exclusive_file_lock(path, wait=False) as second:
            assert not second
    assert not (tmp_path / 'index.lock').exists()


# -- updating range by range -----------------------------------------------------------------


def _sops(client: dwc.DICOMfileClient) -> set:
    return {item['00080018']['Value'][0] for item in client.search_for_instances()}


@pytest.mark.parametrize('batch', [1, 2, 3, 1000])
def test_updates_compare_the_tree_with_the_index_range_by_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, batch: int
) -> None:
    """New, changed, removed and moved files in nested folders whose names sort around
    ``/`` (``a``, ``a-b``, ``a.b``, ``a/…``), with batches and pages of a few rows, so
    that every boundary between ranges falls somewhere interesting."""
    monkeypatch.setattr(dwc, '_INDEX_BATCH_SIZE', batch)
    root = tmp_path / 'archive'
    datasets = make_archive(2, 2, 3, rows=4, columns=4)
    folders = ['a', 'a-b', 'a.b', 'a/b', 'a/b/c', 'b', '']
    placed = {}
    for number, ds in enumerate(datasets):
        folder = root / folders[number % len(folders)]
        placed[ds.SOPInstanceUID] = write_files([ds], folder)[0]
    with dwc.DICOMfileClient(root.as_uri()) as client:
        assert _sops(client) == set(placed)
    expected = set(placed)
    gone = [sop for sop in sorted(placed)[:3]]
    for sop in gone:  # removed
        placed.pop(sop).unlink()
        expected.discard(sop)
    moved_sop = sorted(placed)[0]  # moved into another folder
    target = root / 'a' / 'moved.dcm'
    placed[moved_sop].rename(target)
    placed[moved_sop] = target
    changed = make_archive(1, 1, 1, rows=4, columns=4)[0]  # a file replaced by another
    replaced_sop = sorted(placed)[-1]
    write_files([changed], tmp_path / 'new')[0].replace(placed.pop(replaced_sop))
    expected = (expected - {replaced_sop}) | {changed.SOPInstanceUID}
    extra = make_archive(1, 1, 2, rows=4, columns=4)  # new files in a new folder
    write_files(extra, root / 'a' / 'b' / 'new')
    expected |= {ds.SOPInstanceUID for ds in extra}
    with dwc.DICOMfileClient(root.as_uri(), update_db=True) as client:
        assert _sops(client) == expected
    with dwc.DICOMfileClient(root.as_uri(), in_memory=True) as truth:
        assert _sops(truth) == expected
    uri = f'{(root / INDEX_NAME).as_uri()}?mode=ro'
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        indexed = [path for (path,) in connection.execute('SELECT path FROM files')]
    on_disk = sorted(str(path.relative_to(root)) for path in root.rglob('*.dcm'))
    assert sorted(indexed) == on_disk
    with caplog.at_level(logging.INFO, logger='dicomweb_client'):
        dwc.DICOMfileClient(root.as_uri(), update_db=True).close()
    # nothing changed: the walk and the index agree on the order of every path
    assert ': 0 files indexed, 0 forgotten in' in caplog.text


# -- the first command a new user runs ------------------------------------------------------


def test_the_first_command_of_the_readme_shows_its_result_and_nothing_else() -> None:
    """README's first command indexes the files pydicom ships (some broken on purpose):
    the result on standard output, no warnings from pydicom or the client on stderr."""
    readme = PROJECT_ROOT / 'README.md'
    if not readme.exists():
        pytest.skip(f'{readme} is not there')
    line = next(
        line
        for line in readme.read_text().splitlines()
        if line.startswith("pip install '.[test]' && python -c ")
    )
    code = line.split(' && python -c ', 1)[1]
    assert code[0] == code[-1] == '"'
    process = subprocess.run(
        [sys.executable, '-c', code[1:-1]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip().endswith(' studies') and process.stdout.count('\n') == 1
    assert process.stderr == ''
