"""The real all-mpnet-base-v2 weights on the GPU device, whose calls carry at most 64 MiB each.

The installed weights (438 MB in float32, their SHA256 checked against the upstream file's at
install) are written here in float16 (219 MB) and split into parts of at most ``MAX_PART``
bytes, each in its own folder with a manifest naming every part's SHA256 and the whole float16
file's. Each part travels in its own device call and is staged into a folder outside the working
tree that lasts while the machine stays warm; the GPU check then joins the staged parts, checks
the float16 file's SHA256 against the manifest, and restores the weights to float32 in a model
folder that ragtune reads as the installed model (``RAGTUNE_HOME``). The restored file is not
byte-identical to the upstream one (float16 keeps 11 significant bits), so what is verified is
the chain: upstream hash at install → upstream hash again at prepare → float16 hash at restore.
benchmarks/gpu_check.sh does the same for the bundled MiniLM in one piece.

    python benchmarks/gpu_weights.py prepare MODEL_FOLDER .gpucheck-mpnet   # here
    python benchmarks/gpu_weights.py stage .gpucheck-mpnet/2 ~/.ragtune-gpucheck   # each call
    python benchmarks/gpu_weights.py restore ~/.ragtune-gpucheck HOME/models/all-mpnet-base-v2
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from pathlib import Path

WEIGHTS = "model.safetensors"
HALF = "model.fp16.safetensors"
MANIFEST = "manifest.json"
FILES = "files"  # the model's other files (config, tokenizer), carried with part 1
MAX_PART = 56 * 2**20  # + the 2.4 MB working tree + part 1's 0.7 MB of files, under 64 MiB
CHUNK = 2**20


class Refused(Exception):
    """A part or the joined weights are not what prepare wrote: one line saying which."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def prepare(source: Path, out: Path, expected_sha256: str, max_part: int = MAX_PART) -> dict:
    """Write ``out/1`` … ``out/N``: the float16 weights of the model folder ``source`` in slices
    of at most ``max_part`` bytes, part 1 with the model's other files, a manifest in each.

    Args:
        source: an installed model folder; its ``model.safetensors`` must hash to
            ``expected_sha256`` (the upstream file's), else nothing is written.
        out: the folder of parts, replaced whole.
        expected_sha256: the published SHA256 of the float32 weights.
        max_part: the largest slice in bytes; slices are as even as this allows.

    Example:
        >>> prepare(Path("workspace/models/all-mpnet-base-v2"), Path(".gpucheck-mpnet"),
        ...         models.MPNET.weights_sha256)["fp16_bytes"]   # doctest: +SKIP
        218995748
    """
    import torch
    from safetensors.torch import load_file, save_file
    found = sha256(source / WEIGHTS)
    if found != expected_sha256:
        raise Refused(f"{source / WEIGHTS} hashes to {found[:12]}…, not the published "
                      f"{expected_sha256[:12]}…; install the model again")
    shutil.rmtree(out, ignore_errors=True)
    (out / "1" / FILES).mkdir(parents=True)
    half = {name: tensor.half() for name, tensor in load_file(source / WEIGHTS).items()}
    if not all(torch.isfinite(t).all() for t in half.values()):  # a weight past float16's range
        raise Refused(f"{source / WEIGHTS} has weights float16 cannot hold; carry it otherwise")
    joined = out / HALF
    save_file(half, joined, metadata={"format": "pt"})
    for path in source.rglob("*"):
        if path.is_file() and path.suffix not in (".safetensors", ".bin"):
            target = out / "1" / FILES / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    size = joined.stat().st_size
    count = math.ceil(size / max_part)
    step = math.ceil(size / count)
    manifest = {"upstream_sha256": expected_sha256, "fp16_sha256": sha256(joined),
                "fp16_bytes": size, "parts": []}
    with joined.open("rb") as f:
        for n in range(1, count + 1):
            part = out / str(n) / f"part-{n}"
            part.parent.mkdir(exist_ok=True)
            part.write_bytes(f.read(step))
            manifest["parts"].append({"bytes": part.stat().st_size, "sha256": sha256(part)})
    joined.unlink()
    for n in range(1, count + 1):
        (out / str(n) / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def stage(part_folder: Path, staged: Path) -> list[int]:
    """Copy one carried part into ``staged``, checking its SHA256; returns the parts staged so
    far. Parts of an earlier prepare (another float16 hash) are dropped first."""
    manifest = json.loads((part_folder / MANIFEST).read_text(encoding="utf-8"))
    n = int(part_folder.name)
    old = staged / MANIFEST
    if old.is_file() and json.loads(old.read_text(encoding="utf-8"))["fp16_sha256"] != manifest["fp16_sha256"]:
        shutil.rmtree(staged)
    staged.mkdir(parents=True, exist_ok=True)
    part = part_folder / f"part-{n}"
    if sha256(part) != manifest["parts"][n - 1]["sha256"]:
        raise Refused(f"part {n} ({part}) does not match its SHA256 in the manifest; run "
                      "`bash benchmarks/gpu_check.sh prepare` again")
    shutil.copy2(part, staged / part.name)
    if (part_folder / FILES).is_dir():
        shutil.copytree(part_folder / FILES, staged / FILES, dirs_exist_ok=True)
    (staged / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return staged_parts(staged, manifest)


def staged_parts(staged: Path, manifest: dict) -> list[int]:
    return [n for n in range(1, len(manifest["parts"]) + 1)
            if (staged / f"part-{n}").is_file()]


def restore(staged: Path, model: Path) -> str:
    """Join the staged parts, check the float16 file's SHA256, and write the model folder
    ``model`` with float32 weights and an install record saying where they came from.
    Raises ``Refused`` when a part is missing or the joined file differs from prepare's;
    ``model`` is then left as it was. Returns the float16 SHA256 it verified."""
    from safetensors.torch import load_file, save_file
    if not (staged / MANIFEST).is_file():
        raise Refused(f"no parts staged in {staged}")
    manifest = json.loads((staged / MANIFEST).read_text(encoding="utf-8"))
    count = len(manifest["parts"])
    missing = sorted(set(range(1, count + 1)) - set(staged_parts(staged, manifest)))
    if missing or not (staged / FILES).is_dir():
        missing = missing or [1]  # part 1 brings the model's other files
        raise Refused(f"not staged: part{'s' * (len(missing) > 1)} "
                      f"{', '.join(map(str, missing))} of {count}")
    joined = staged / HALF
    digest = hashlib.sha256()
    with joined.open("wb") as out:
        for n in range(1, count + 1):
            with (staged / f"part-{n}").open("rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
                    out.write(block)
    try:
        if digest.hexdigest() != manifest["fp16_sha256"]:
            raise Refused(f"the joined float16 weights hash to {digest.hexdigest()[:12]}…, not "
                          f"{manifest['fp16_sha256'][:12]}… as prepared: a staged part is damaged")
        building = model.with_name(model.name + ".partial")
        shutil.rmtree(building, ignore_errors=True)
        shutil.copytree(staged / FILES, building)
        save_file({k: v.float() for k, v in load_file(joined).items()}, building / WEIGHTS,
                  metadata={"format": "pt"})
        (building / "ragtune-install.json").write_text(json.dumps(
            {"name": model.name, "source": "restored to float32 from float16 parts joined and "
             "checked by benchmarks/gpu_weights.py", **{k: manifest[k] for k in
                                                        ("upstream_sha256", "fp16_sha256")}},
            indent=1), encoding="utf-8")
        shutil.rmtree(model, ignore_errors=True)
        building.rename(model)
    finally:
        joined.unlink()
    return manifest["fp16_sha256"]


def main(argv: list[str]) -> int:
    verb, *paths = argv
    try:
        if verb == "prepare":
            from core.workspace import models
            done = prepare(Path(paths[0]), Path(paths[1]), models.MPNET.weights_sha256)
            print(f"all-mpnet-base-v2 in float16: {done['fp16_bytes'] / 2**20:.1f} MiB in "
                  f"{len(done['parts'])} parts, SHA256 {done['fp16_sha256'][:12]}…")
        elif verb == "stage":
            if not (Path(paths[0]) / MANIFEST).is_file():
                raise Refused(f"{paths[0]} was not carried: name it in the call's carry list")
            manifest = json.loads((Path(paths[0]) / MANIFEST).read_text(encoding="utf-8"))
            have = stage(Path(paths[0]), Path(paths[1]))
            print(f"staged part {Path(paths[0]).name}: parts {','.join(map(str, have))} of "
                  f"{len(manifest['parts'])} are in {paths[1]}")
        elif verb == "restore":
            print(f"float16 SHA256 {restore(Path(paths[0]), Path(paths[1]))} verified")
        else:
            raise Refused(f"unknown verb {verb}: prepare, stage or restore")
    except (Refused, OSError, KeyError, ValueError) as e:
        print(f"{type(e).__name__}: {e}" if not isinstance(e, Refused) else str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main(sys.argv[1:]))
