"""Exports write whole files or nothing, and only where a file belongs: a device, pipe or
folder given as the target is refused in one line and left as it was (``--zip /dev/full``
reported "14 files written" and replaced the device node); a write that runs out of room (a
real file-size limit, RLIMIT_FSIZE, in a subprocess) names the file it could not write and
leaves no partial file or folder behind."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.documents.pairs import import_pairs
from core.training import jobs
from core.using import export, label
from core.workspace import models
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store
from tests.conftest import ROOT
from tests.test_faults import fails_in_one_line, file_size_limit
from tests.test_references import notes  # noqa: F401

PASSAGES = [f"Passage {i} tells how plant number {i} grows: " + "leaves and roots, " * 20
            for i in range(60)]
LIMIT = 20_000  # bytes: each export below is larger; the workspace is only read


@pytest.fixture
def plants(notes) -> tuple[Store, int]:  # noqa: F811
    """Corpus 1 with a split pair set of 60 long passages and 60 labelled questions."""
    pair_set_id = import_pairs(notes, 1, "plants", [(f"How does plant {i} grow?", p)
                                                     for i, p in enumerate(PASSAGES)]).pair_set_id
    notes.db.execute("UPDATE pairs SET split = 'test'")
    label.add_questions(notes, 1, [f"How does plant {i} grow?" for i in range(60)])
    chunks = {r["text"]: r["id"] for r in notes.chunks(1)}
    for question, passage in zip(label.questions(notes, 1), PASSAGES):
        label.set_label(notes, question.id, chunks[passage], label.RELEVANT)
        label.decide(notes, question.id, "labelled")
    notes.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the exports below only read it
    return notes, pair_set_id


def model_run(store: Store) -> str:
    """A finished fine-tune run whose model is a copy of the bundled one (no training)."""
    job_id = store.db.execute(
        "INSERT INTO jobs (kind, state, config, created, started, finished, result) VALUES "
        "('train', 'succeeded', '{}', 1, 1, 2, '{}')").lastrowid
    folder = jobs.job_dir(store, job_id) / "model"
    shutil.copytree(models.resolve(None), folder)
    store.db.execute("UPDATE jobs SET result = ? WHERE id = ?",
                     (json.dumps({"model_path": str(folder)}), job_id))
    return f"j{job_id}"


def cli(home: Path, *args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    """The CLI in its own process, with a short timeout: a write to a pipe used to block."""
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT,
                          env={**os.environ, "RAGTUNE_HOME": str(home)}, capture_output=True,
                          text=True, timeout=120,
                          preexec_fn=file_size_limit(limit) if limit else None)


# (command, the file or folder it writes, as a template)
EXPORTS = [(["pairs", "export", "{set}", "--output", "{out}"], "pairs.jsonl"),
           (["pairs", "export", "{set}", "--beir", "{out}"], "beir"),
           (["label", "export", "--corpus", "notes", "--output", "{out}"], "labels.jsonl")]


def argv(command: list[str], pair_set_id: int, out: Path) -> list[str]:
    return [a.format(set=pair_set_id, out=out) for a in command]


def left_behind(folder: Path, before: set[Path]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p not in before)


@pytest.mark.parametrize("command,name", EXPORTS, ids=[" ".join(c[:2]) for c, _ in EXPORTS])
def test_an_export_that_runs_out_of_room_names_its_file_and_leaves_nothing(plants, tmp_path,
                                                                           command, name):
    store, pair_set_id = plants
    out = tmp_path / "out"
    out.mkdir()
    assert cli(store.home, *argv(command, pair_set_id, out / name)).returncode == 0  # it fits
    shutil.rmtree(out)
    out.mkdir()
    last = fails_in_one_line(cli(store.home, *argv(command, pair_set_id, out / name), limit=LIMIT),
                             "could not write", "free some disk space")
    assert f"{name} to {out}" in last, last  # the file and its folder, not the working directory
    assert left_behind(out, set()) == []


@pytest.mark.parametrize("command,name", EXPORTS, ids=[" ".join(c[:2]) for c, _ in EXPORTS])
def test_an_export_onto_a_pipe_is_refused_and_the_pipe_kept(plants, tmp_path, command, name):
    store, pair_set_id = plants
    pipe = tmp_path / name
    os.mkfifo(pipe)
    before = set(tmp_path.rglob("*"))
    last = fails_in_one_line(cli(store.home, *argv(command, pair_set_id, pipe)), str(pipe),
                             "a device, pipe or socket")
    assert stat.S_ISFIFO(pipe.lstat().st_mode), last
    assert left_behind(tmp_path, before) == []


def test_a_file_export_onto_a_folder_is_refused(plants, tmp_path, capsys):
    _, pair_set_id = plants
    assert main(["pairs", "export", str(pair_set_id), "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "is a folder; give a file name such as pairs.jsonl" in err, err
    (tmp_path / "beir").write_text("notes")
    assert main(["pairs", "export", str(pair_set_id), "--beir", str(tmp_path / "beir")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "beir").read_text() == "notes"


def test_a_model_zip_onto_a_pipe_is_refused_and_one_that_does_not_fit_leaves_nothing(
        notes, tmp_path):  # noqa: F811
    run_id = model_run(notes)
    pipe = tmp_path / "model.zip"
    os.mkfifo(pipe)
    with pytest.raises(WorkspaceError, match="is a device, pipe or socket"):
        export.export_model(notes, run_id, pipe)
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    out = tmp_path / "out"
    last = fails_in_one_line(cli(notes.home, "runs", "export", run_id, "--zip",
                                 str(out / "model.zip"), limit=2_000_000),
                             "could not write model.zip to", "free some disk space")
    assert str(out) in last and left_behind(out, set()) == [], last


def test_a_device_is_refused_before_anything_is_written(plants, capsys):
    from core.workspace.outputs import check_file_target
    _, pair_set_id = plants
    with pytest.raises(WorkspaceError, match="/dev/full is a device, pipe or socket"):
        check_file_target(Path("/dev/full"), "model.zip")  # what export model checks first
    assert main(["pairs", "export", str(pair_set_id), "--output", "/dev/full"]) == 1
    assert "/dev/full is a device, pipe or socket" in capsys.readouterr().err
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)


def test_an_export_written_whole_replaces_a_regular_file_and_a_failed_one_keeps_it(tmp_path):
    from core.workspace.outputs import output_file
    target = tmp_path / "pairs.jsonl"
    target.write_text("old")
    with pytest.raises(RuntimeError), output_file(target, "pairs.jsonl") as partial:
        partial.write_text("half")
        raise RuntimeError("cut short")
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]
    with output_file(target, "pairs.jsonl") as partial:
        partial.write_text("new")
    assert target.read_text() == "new" and sorted(tmp_path.iterdir()) == [target]
