"""The Python examples of the documentation, run against a real Orthanc.

Every ```python block of the pages in ``PAGES`` is one test, named after its page, its
position on the page, the line it starts on and its first line of code, so that a
failing example is easy to find.  An example runs on its own, in a fresh namespace,
inside a per-test working folder (so ``"image.dcm"`` or ``"downloads"`` name files below
pytest's temporary folder).  Before it runs:

- The addresses it names are replaced by the test's own (``point_at_test_servers``):
  DICOMweb services by the test Orthanc, ``file://`` archives by a copy of a folder
  archive holding the same instances, and absolute file paths (certificates) by files in
  the temporary folder.  Any other URL must be listed in ``NOT_CONTACTED``.
- Every name it uses without defining is bound to a real value: the reader's own values
  (``PLACEHOLDERS``: UIDs, a token, ...) and names that an earlier example on the same
  page defines (imports are taken from that example, other values from ``CONTEXT``).
  A name that is neither makes the test fail: the page would not run as written.

``HANDLING`` lists the examples that need something else, each with its reason:
examples that are not run here (they are still compiled and their names checked), and
examples whose outcome on Orthanc is what the text describes (an error status), and
examples whose effect is checked.  Three further tests check what the text around the
frame and delete examples says about Orthanc and the folder archive.

The data (generated with pydicom and numpy, stored through Orthanc's REST API): a study
of an 8-bit, 100-frame image (``sop_uid``) and 16-bit CT images, for patient ``ABC123``,
whose Study Instance UID is the one recipes.md spells out; and two more studies of other
patients.
"""

from __future__ import annotations

import ast
import builtins
import copy
import importlib.util
import io
import logging
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from pydicom.dataset import Dataset

import dicom_data
from dicomweb_client import DICOMfileClient, DICOMwebClient, HTTPError, create_session
from helpers import PROJECT_ROOT

#: the pages whose ```python blocks are run (relative to the project folder)
PAGES = ("README.md", "docs/index.md", "docs/quickstart.md", "docs/usage.md", "docs/recipes.md")

#: the study the examples work on; recipes.md names this UID literally
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
#: a SOP Instance UID that is on no server of the test
ABSENT_UID = "1.2.826.0.1.3680043.8.498.99999"

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


# -- the examples ------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    page: str  # relative to the project folder
    index: int  # 1-based, among the page's Python blocks
    line: int  # line of the page that holds the first line of code
    code: str

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.code.splitlines() if line.strip()), "")

    @property
    def id(self) -> str:
        slug = re.sub(r"\W+", "_", self.first_line).strip("_")[:40]
        return f"{Path(self.page).name}#{self.index:02d}-L{self.line}-{slug}"

    def compiled(self, code: Optional[str] = None) -> Any:
        """The code (by default the page's), compiled so that tracebacks name the page's
        own line numbers."""
        padding = "\n" * (self.line - 1)
        return compile(padding + (self.code if code is None else code), self.page, "exec")


def python_blocks(page: str) -> list[Example]:
    """The ```python fenced blocks of ``page``, in order."""
    lines = (PROJECT_ROOT / page).read_text(encoding="utf-8").splitlines()
    examples: list[Example] = []
    number = 0
    while number < len(lines):
        if lines[number].strip() == "```python":
            start = number + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            assert end < len(lines), f"{page}:{number + 1}: ```python block is never closed"
            examples.append(
                Example(page, len(examples) + 1, start + 1, "\n".join(lines[start:end]) + "\n")
            )
            number = end
        number += 1
    return examples


EXAMPLES = [example for page in PAGES for example in python_blocks(page)]


# -- what is special about some examples --------------------------------------------------


@dataclass(frozen=True)
class Handling:
    """How one example is run, and why that differs from the default."""

    reason: str
    not_run: bool = False  # only compiled, names checked, imports run
    needs: tuple[str, ...] = ()  # modules without which it is not run
    on_files: bool = False  # ``client`` is a DICOMfileClient
    raises: Optional[int] = None  # HTTP status that Orthanc answers
    bind: Mapping[str, Callable[[Scene], Any]] = field(default_factory=dict)
    #: called with the scene, the example's namespace and what it printed
    check: Optional[Callable[[Scene, dict, str], None]] = None


def _printed(text: str) -> Callable[[Scene, dict, str], None]:
    def check(scene: Scene, namespace: dict, output: str) -> None:
        assert text in output

    return check


def _wrote_the_study(scene: Scene, namespace: dict, output: str) -> None:
    written = sorted(path.name for path in (scene.folder / "work" / "downloads").iterdir())
    assert written == sorted(
        f"{ds.SOPInstanceUID}.dcm" for ds in scene.data.stored if ds.StudyInstanceUID == STUDY_UID
    )


def _same_as_json(scene: Scene, namespace: dict, output: str) -> None:
    study_uid, series_uid, _ = scene.data.ids()
    as_json = scene.web_client().retrieve_series_metadata(study_uid, series_uid)
    assert len(namespace["items"]) == len(as_json)
    for from_xml, from_json in zip(namespace["items"], as_json):
        assert from_xml["00080018"] == from_json["00080018"]
        assert from_xml["00280008"]["Value"] == from_json["00280008"]["Value"]


def _written_under_uids(scene: Scene, namespace: dict, output: str) -> None:
    ds = namespace["dataset"]
    path = (
        scene.archive_folder
        / ds.StudyInstanceUID
        / ds.SeriesInstanceUID
        / f"{ds.SOPInstanceUID}.dcm"
    )
    assert path.is_file()


def _stored_the_folder(scene: Scene, namespace: dict, output: str) -> None:
    batch = [ds for name, ds in scene.data.files.items() if name.startswith("study/")]
    found = scene.web_client().search_for_instances(batch[0].StudyInstanceUID)
    assert len(found) == len(batch)


#: (page, text found in exactly one of its examples) -> handling of that example
HANDLING: dict[tuple[str, str], Handling] = {
    ("docs/usage.md", "create_session_from_gcp_credentials()"): Handling(
        "Google Cloud: needs application default credentials and a Healthcare API DICOM "
        "store (tests/test_gcp.py covers the session and URL helpers)",
        not_run=True,
    ),
    ("docs/recipes.md", "torch.utils.data"): Handling(
        "needs PyTorch, which the test extra does not install", needs=("torch",)
    ),
    ("docs/usage.md", "client.retrieve_study_thumbnail(study_uid)"): Handling(
        "Orthanc's DICOMweb plugin has no thumbnails: the text says it answers 404", raises=404
    ),
    ("docs/usage.md", "client.delete_study(study_uid)"): Handling(
        "Orthanc has no DICOMweb DELETE (the text says 405, see "
        "test_orthanc_refuses_delete_as_the_guide_says); run on DICOMfileClient, which the "
        "text names as a client that deletes; its series has two instances, so that "
        "the series outlives the deleted instance",
        on_files=True,
        bind={
            "series_uid": lambda scene: scene.data.ids(scene.data.ct[0])[1],
            "sop_uid": lambda scene: scene.data.ids(scene.data.ct[0])[2],
        },
    ),
    ("docs/usage.md", "except HTTPError as error:"): Handling(
        "asks for an instance that is not on the server, so that the except branch runs",
        bind={"sop_uid": lambda scene: ABSENT_UID},
        check=_printed("not on this server:"),
    ),
    ("docs/usage.md", 'media_type="application/dicom+xml"'): Handling(
        "checked: the XML answer gives the dictionaries that JSON gives", check=_same_as_json
    ),
    ("docs/quickstart.md", "archive.store_instances([dataset])"): Handling(
        "checked: the file is written as <study>/<series>/<sop>.dcm", check=_written_under_uids
    ),
    ("docs/usage.md", "archive.store_instances([dataset])"): Handling(
        "checked: the file is written as <study>/<series>/<sop>.dcm", check=_written_under_uids
    ),
    ("docs/recipes.md", 'os.makedirs("downloads"'): Handling(
        "checked: it writes every instance of the study", check=_wrote_the_study
    ),
    ("docs/recipes.md", 'Path("study").rglob'): Handling(
        "checked: the server then holds the folder's instances", check=_stored_the_folder
    ),
}

#: URLs that examples name but never contact here, so they are not rewritten
NOT_CONTACTED = {
    "https://bulk.example.org": "only named as a further origin for credentials",
    "http://proxy.internal:3128": "an https proxy; the test server is plain http",
    "http://proxy.hospital.example:3128": "an https proxy; the test server is plain http",
}


def handling_of(example: Example) -> Handling:
    found = [
        handling
        for (page, text), handling in HANDLING.items()
        if page == example.page and text in example.code
    ]
    assert len(found) <= 1, f"{example.id}: more than one HANDLING entry matches"
    return found[0] if found else Handling("")


# -- the data and the scene an example runs in -------------------------------------------


@dataclass
class Data:
    """What the module fixture stored in Orthanc and wrote as a folder archive."""

    image: Dataset  # 8-bit, 100 frames of 32 x 32: sop_uid
    image16: Dataset  # 16-bit, 3 frames, same study
    ct: list[Dataset]  # two 16-bit CT images of one series, same study
    stored: list[Dataset]  # everything on the server and in the folder archive
    archive: Path  # the folder archive (copied for each test)
    files: dict[str, Dataset]  # working folder files: relative path -> dataset

    def ids(self, ds: Optional[Dataset] = None) -> tuple[str, str, str]:
        ds = self.image if ds is None else ds
        return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def _build_data(folder: Path) -> Data:
    patient = {
        "patient_id": "ABC123",
        "patient_name": "Doe^Jane",
        "study_uid": STUDY_UID,
        "study_description": "Examples",
    }
    image = dicom_data.make_instance(
        frames=100,
        rows=32,
        columns=32,
        bits=8,
        modality="OT",
        series_number=1,
        series_description="BYTES8",
        seed=1,
        **patient,
    )
    image16 = dicom_data.make_instance(
        frames=3,
        bits=16,
        modality="OT",
        series_number=2,
        series_description="WORDS16",
        seed=2,
        **patient,
    )
    ct = dicom_data.make_study(1, 2, modality="CT", seed=3, **patient)
    for ds in ct:
        ds.SeriesNumber = 3
    others = dicom_data.make_archive(n_studies=2, n_series=2, n_instances=1, seed=10)
    stored = [image, image16, *ct, *others]
    archive = folder / "archive"
    dicom_data.write_files(stored, archive)

    # files the examples read from their working folder; stored only by the examples
    single = dicom_data.make_study(1, 3, patient_id="STORE1", seed=20)
    batch = dicom_data.make_study(2, 2, patient_id="STORE2", seed=30)
    files = {"image.dcm": single[0], "a.dcm": single[1], "b.dcm": single[2]}
    for ds in batch:
        files[f"study/{ds.SeriesNumber}/{ds.SOPInstanceUID}.dcm"] = ds
    return Data(image=image, image16=image16, ct=ct, stored=stored, archive=archive, files=files)


@pytest.fixture(scope="module")
def docs_data(orthanc: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    """Orthanc holding exactly the examples' data (through its REST API)."""
    orthanc.reset()
    data = _build_data(tmp_path_factory.mktemp("docs-data"))
    orthanc.upload(dicom_data.to_bytes(ds) for ds in data.stored)
    yield data
    orthanc.reset()


class Scene:
    """The servers, data and working folder of one example; closes what it opened."""

    def __init__(self, request: pytest.FixtureRequest, data: Data, folder: Path) -> None:
        self.request = request
        self.data = data
        self.folder = folder
        self.orthanc_url: str = request.getfixturevalue("orthanc").url
        self.handled: list[Any] = []
        self._archive: Optional[Path] = None
        self._opened: list[Any] = []

    @property
    def archive_folder(self) -> Path:
        """A copy of the folder archive, made on first use."""
        if self._archive is None:
            self._archive = self.folder / "archive"
            shutil.copytree(self.data.archive, self._archive)
        return self._archive

    @property
    def archive_made(self) -> bool:
        return self._archive is not None

    @property
    def file_url(self) -> str:
        return self.archive_folder.as_uri()

    def web_client(self) -> DICOMwebClient:
        return self._keep(DICOMwebClient(self.orthanc_url))

    def file_client(self) -> DICOMfileClient:
        return self._keep(DICOMfileClient(self.file_url))

    def pem_file(self, name: str) -> Path:
        """A PEM file with a real (self-signed) certificate and its key, which serves as
        a CA bundle and as a client certificate alike."""
        certfile, keyfile = self.request.getfixturevalue("tls_certificate")
        path = self.folder / "certificates" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(Path(certfile).read_text() + Path(keyfile).read_text())
        return path

    def _keep(self, client: Any) -> Any:
        self._opened.append(client)
        return client

    def close(self, namespace: Mapping[str, Any]) -> None:
        for value in [*self._opened, *namespace.values()]:
            if isinstance(value, (DICOMwebClient, DICOMfileClient)):
                value.close()


def _metadata(scene: Scene) -> dict:
    return scene.web_client().retrieve_instance_metadata(*scene.data.ids())


#: names the pages use as the reader's own values -> (what they stand for, test value)
PLACEHOLDERS: dict[str, tuple[str, Callable[[Scene], Any]]] = {
    "study_uid": ("a Study Instance UID", lambda scene: scene.data.ids()[0]),
    "series_uid": ("a Series Instance UID", lambda scene: scene.data.ids()[1]),
    "sop_uid": (
        "a SOP Instance UID: the 8-bit image of 100 frames (baseline JPEG needs "
        "8 bits, the parallel example asks for 100 frames)",
        lambda scene: scene.data.ids()[2],
    ),
    "token": ("a bearer token (the test Orthanc checks none)", lambda scene: "token-123"),
    "url": ("the DICOMweb base URL of the reader's server", lambda scene: scene.orthanc_url),
    "handle": ("the reader's function for each dataset", lambda scene: scene.handled.append),
}

#: names an earlier example on the page defines (other than by import) -> test value
CONTEXT: dict[str, tuple[str, Callable[[Scene], Any]]] = {
    "client": ("a client for the server", lambda scene: scene.web_client()),
    "session": ("a session", lambda scene: create_session()),
    "dataset": (
        "a dataset: the image that sop_uid names",
        lambda scene: copy.deepcopy(scene.data.image),
    ),
    "instance_meta": ("that image's metadata", _metadata),
    "uri": (
        "the BulkDataURI of its Pixel Data",
        lambda scene: _metadata(scene)["7FE00010"]["BulkDataURI"],
    ),
    "archive": ("a DICOMfileClient on the folder archive", lambda scene: scene.file_client()),
}


# -- names ------------------------------------------------------------------------------


def _names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names the code reads but never binds, names it binds) - scopes are not told
    apart, which is enough for examples."""
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound - set(dir(builtins)), bound


def _imports(tree: ast.Module) -> dict[str, ast.stmt]:
    """Top-level import statements of the code, by the name each one binds."""
    found: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                single = copy.copy(node)
                single.names = [alias]
                found[(alias.asname or alias.name).split(".")[0]] = single
    return found


def _module_of(statement: ast.stmt) -> str:
    """The top-level package that an import statement (of one name) imports from."""
    if isinstance(statement, ast.ImportFrom):
        return (statement.module or "").split(".")[0]
    assert isinstance(statement, ast.Import)
    return statement.names[0].name.split(".")[0]


def _run_imports(statements: list[ast.stmt]) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    if statements:
        exec(compile(ast.Module(body=statements, type_ignores=[]), "<imports>", "exec"), namespace)
    namespace.pop("__builtins__", None)
    return namespace


@dataclass
class NamePlan:
    """Where each name that an example uses without defining comes from."""

    placeholders: list[str]
    imports: dict[str, ast.stmt]
    context: list[str]


def plan_names(example: Example) -> NamePlan:
    """Fail unless every name the example reads is a placeholder or defined by an
    earlier example on its page."""
    free, _ = _names(ast.parse(example.code))
    imported: dict[str, ast.stmt] = {}
    defined: set[str] = set()
    for earlier in EXAMPLES:
        if earlier.page == example.page and earlier.index < example.index:
            tree = ast.parse(earlier.code)
            defined |= _names(tree)[1]
            imported.update(_imports(tree))
    plan = NamePlan([], {}, [])
    for name in sorted(free):
        if name in PLACEHOLDERS:
            plan.placeholders.append(name)
        elif name in imported:
            plan.imports[name] = imported[name]
        elif name in defined and name in CONTEXT:
            plan.context.append(name)
        elif name in defined:
            pytest.fail(
                f"{example.id}: no test value for {name!r}, which an earlier "
                "example defines; add it to CONTEXT"
            )
        else:
            pytest.fail(
                f"{example.id}: uses {name!r}, which neither this example nor an "
                f"earlier one on {example.page} defines"
            )
    return plan


# -- addresses --------------------------------------------------------------------------

_SERVICE_URL = re.compile(
    r"""(["'])(?:https?://[^"'\s]+/dicom-web|https://dicomcloud\.azurewebsites\.net)\1"""
)
_FILE_URL = re.compile(r"""(["'])file://[^"']*\1""")
_ABSOLUTE_PATH = re.compile(r"""(["'])(/[^"'\s]+)\1""")


def point_at_test_servers(code: str, scene: Scene) -> str:
    """The example's code with the addresses it names replaced by the test's own:
    DICOMweb service URLs by the test Orthanc's, ``file://`` URLs by the folder archive's,
    absolute paths (certificates and CA bundles) by files in the temporary folder."""
    code = _SERVICE_URL.sub(lambda match: repr(scene.orthanc_url), code)
    code = _FILE_URL.sub(lambda match: repr(scene.file_url), code)
    return _ABSOLUTE_PATH.sub(
        lambda match: repr(str(scene.pem_file(Path(match.group(2)).name))), code
    )


def check_addresses(example: Example, code: str, scene: Scene) -> None:
    """Fail if the rewritten code still names a server, or a path outside the test."""
    allowed = {scene.orthanc_url, *NOT_CONTACTED}
    if scene.archive_made:
        allowed.add(scene.file_url)
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if "://" in text and text not in allowed:
                pytest.fail(
                    f"{example.id}: names {text!r}; rewrite it in "
                    "point_at_test_servers or list it in NOT_CONTACTED"
                )
            if text.startswith("/") and not Path(text).is_relative_to(scene.folder):
                pytest.fail(f"{example.id}: names the absolute path {text!r}")


# -- running ----------------------------------------------------------------------------


@pytest.fixture
def _logging_restored() -> Iterator[None]:
    """Undo what an example does to the package logger (``configure_logging``)."""
    logger = logging.getLogger("dicomweb_client")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def test_every_handling_entry_names_one_example() -> None:
    for (page, text), handling in HANDLING.items():
        matches = [e.id for e in EXAMPLES if e.page == page and text in e.code]
        assert len(matches) == 1, f"HANDLING entry {(page, text)} matches {matches}"
        assert handling.reason


def test_the_pages_have_examples() -> None:
    for page in ("docs/quickstart.md", "docs/usage.md", "docs/recipes.md"):
        assert python_blocks(page), f"{page} has no ```python block"


@pytest.mark.orthanc
@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_example(
    example: Example,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    _logging_restored: None,
) -> None:
    handling = handling_of(example)
    example.compiled()
    plan = plan_names(example)
    missing = [name for name in handling.needs if importlib.util.find_spec(name) is None]
    if handling.not_run or missing:
        own = [
            statement
            for statement in _imports(ast.parse(example.code)).values()
            if _module_of(statement) not in handling.needs
        ]
        _run_imports(own)  # what it imports exists
        pytest.skip(f"not run: {handling.reason}")

    data: Data = request.getfixturevalue("docs_data")
    work = tmp_path / "work"
    for relative, ds in data.files.items():
        (work / relative).parent.mkdir(parents=True, exist_ok=True)
        dicom_data.write_part10(work / relative, ds)
    monkeypatch.chdir(work)
    scene = Scene(request, data, tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    try:
        code = point_at_test_servers(example.code, scene)
        namespace.update(_run_imports(list(plan.imports.values())))
        for name in plan.placeholders:
            namespace[name] = PLACEHOLDERS[name][1](scene)
        for name in plan.context:
            if name == "client" and handling.on_files:
                namespace[name] = scene.file_client()
            else:
                namespace[name] = CONTEXT[name][1](scene)
        for name, value in handling.bind.items():
            namespace[name] = value(scene)
        check_addresses(example, code, scene)
        compiled = example.compiled(code)
        if handling.raises is not None:
            with pytest.raises(HTTPError) as info:
                exec(compiled, namespace)
            assert info.value.status_code == handling.raises
        else:
            exec(compiled, namespace)
        if handling.check is not None:
            handling.check(scene, namespace, capsys.readouterr().out)
    finally:
        scene.close(namespace)


# -- the sentences around the examples ---------------------------------------------------


@pytest.fixture
def orthanc_client(orthanc: Any) -> Iterator[DICOMwebClient]:
    with DICOMwebClient(orthanc.url) as opened:
        yield opened


def test_baseline_jpeg_frames_need_8_bit_pixels(
    docs_data: Data, orthanc_client: DICOMwebClient
) -> None:
    """usage.md: baseline JPEG for an 8-bit image (Pillow decodes it); Orthanc answers
    500 for a 16-bit one, which JPEG Lossless serves (Pillow cannot read that)."""
    PIL_Image = pytest.importorskip("PIL.Image")
    baseline = (("image/jpeg", JPEG_BASELINE),)
    jpeg = orthanc_client.retrieve_instance_frames(
        *docs_data.ids(), frame_numbers=[1], media_types=baseline
    )
    pixels = np.array(PIL_Image.open(io.BytesIO(jpeg[0])))
    assert pixels.shape == (32, 32)
    with pytest.raises(HTTPError) as info:
        orthanc_client.retrieve_instance_frames(
            *docs_data.ids(docs_data.image16), frame_numbers=[1], media_types=baseline
        )
    assert info.value.status_code == 500
    lossless = orthanc_client.retrieve_instance_frames(
        *docs_data.ids(docs_data.image16),
        frame_numbers=[1],
        media_types=(("image/jpeg", JPEG_LOSSLESS_SV1),),
    )
    assert lossless[0].startswith(b"\xff\xd8")
    with pytest.raises(OSError):
        PIL_Image.open(io.BytesIO(lossless[0])).load()


def test_deleting_what_is_gone_raises_404(docs_data: Data, tmp_path: Path) -> None:
    """usage.md: deleting a series after its study raises HTTPError 404."""
    shutil.copytree(docs_data.archive, tmp_path / "archive")
    with DICOMfileClient((tmp_path / "archive").as_uri()) as archive:
        study_uid, series_uid, _ = docs_data.ids()
        archive.delete_study(study_uid)
        with pytest.raises(HTTPError) as info:
            archive.delete_series(study_uid, series_uid)
        assert info.value.status_code == 404


def test_orthanc_refuses_delete_as_the_guide_says(
    docs_data: Data, orthanc_client: DICOMwebClient
) -> None:
    with pytest.raises(HTTPError) as info:
        orthanc_client.delete_instance(*docs_data.ids())
    assert info.value.status_code == 405
    assert orthanc_client.retrieve_instance_metadata(*docs_data.ids())  # still there
