"""Which models a browser user may name: the bundled one, hub IDs, models in the workspace and
folders under RAGTUNE_DATA_ROOT; anything else is refused without saying whether it exists."""
import json
from pathlib import Path

import pytest

from core.workspace import models
from core.workspace.store import WorkspaceError


def model_folder(path: Path) -> Path:
    """A folder shaped like a sentence-transformers model (enough for the name check)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.hub_reachable.cache_clear()
    yield
    models.hub_reachable.cache_clear()


def refusal(name: str, home: Path) -> str:
    with pytest.raises(WorkspaceError) as error:
        models.browser_model(name, home)
    return str(error.value).replace(repr(name[:200]), "NAME")


def test_allowed_names(home, tmp_path, monkeypatch):
    assert models.browser_model("", home) == models.DEFAULT_MODEL
    assert models.browser_model("bundled", home) == "bundled"
    tuned = model_folder(home / "files" / "jobs" / "3" / "model")
    assert models.browser_model(str(tuned), home) == str(tuned.resolve())
    data = model_folder(tmp_path / "data" / "team-model")
    monkeypatch.setenv(models.DATA_ROOT_ENV, str(tmp_path / "data"))
    assert models.browser_model(str(data), home) == str(data.resolve())
    assert models.resolve(models.browser_model(str(data), home)) == data.resolve()


def test_paths_outside_the_roots_are_refused_alike_whether_or_not_they_exist(home, tmp_path):
    outside = model_folder(tmp_path / "elsewhere" / "model")  # a real model, outside the roots
    home.mkdir(parents=True, exist_ok=True)
    (home / "link").symlink_to(outside)  # a link out of the workspace is outside too
    names = ["/etc", "/etc/passwd", "/no/such/folder", str(outside), str(tmp_path / "missing"),
             str(home / "link"), str(home / ".." / "elsewhere" / "model"), "../../etc",
             "~/models", "a\x00b", "C:\\models\\bert", "./core", "/"]
    messages = {refusal(n, home) for n in names}
    assert len(messages) == 1, messages
    [message] = messages
    assert "cannot be loaded from the browser" in message and "\n" not in message
    assert models.resolve(str(outside)) == outside.resolve()  # the command line takes any folder


def test_without_a_data_root_its_folder_is_outside(home, tmp_path, monkeypatch):
    data = model_folder(tmp_path / "data" / "m")
    monkeypatch.delenv(models.DATA_ROOT_ENV, raising=False)
    assert "cannot be loaded from the browser" in refusal(str(data), home)


def test_hub_ids_go_to_the_hub_never_to_a_local_folder_of_that_name(home, offline):
    # core/training exists relative to the server's folder; zz/nothing does not: same answer
    assert Path("core/training").is_dir()
    assert refusal("core/training", home).replace("core/training", "X") == \
        refusal("zz/nothing", home).replace("zz/nothing", "X")
    assert "not available offline" in refusal("zz/nothing", home)


def test_inside_the_workspace_the_usual_messages_apply(home):
    (home / "files" / "empty").mkdir(parents=True)
    assert "not a sentence-transformers model" in refusal(str(home / "files" / "empty"), home)
    assert "does not exist" in refusal(str(home / "files" / "gone"), home)
