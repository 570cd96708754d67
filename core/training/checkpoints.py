"""Checkpoints and saved models: what a save costs, which checkpoint a stopped run resumes from (and
the plan saved with it), and writing a model folder so it is never half there.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from core.training.plan import Plan
from core.workspace.errors import WorkspaceError, explain_out_of_room, is_out_of_room

RESUME_ONLY = ("optimizer.pt", "scheduler.pt")  # what only the checkpoint resumed from needs


PLAN_FILE = "ragtune_plan.json"  # the re-planned plan, saved with each checkpoint for a resume


CHECKPOINT_PRICE = 10  # a checkpoint's time, in timed ``torch.save``s of the bare weights


def checkpoint_seconds(model, folder: Path) -> float:
    """What one save will take before the first is timed: the bare weights written once, timed,
    times ``CHECKPOINT_PRICE``. A checkpoint also writes the model's folder and AdamW's two
    moments, and the best one is read back at the end: on the loaded 2-core machine the bare
    weights took 0.23 s, ``save_pretrained`` 0.6 s and an AdamW-state-sized save 3.4 s, and a
    2-minute run spent 16 s on a checkpoint and reading it back where it had priced 4."""
    import torch
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / "save-probe.pt"
    started = time.perf_counter()
    try:
        torch.save(model.state_dict(), probe)
    # No room (torch says so for a file-size limit with a RuntimeError) is reported in words
    # where a checkpoint is written, not by this probe.
    except (OSError, RuntimeError):
        return 0.0
    finally:
        seconds = time.perf_counter() - started
        probe.unlink(missing_ok=True)
    return CHECKPOINT_PRICE * seconds


def resumable_plan(folder: Path) -> Plan | None:
    """The plan saved with the newest complete checkpoint: a resumed run keeps the epochs and
    pairs its first process re-planned, so its sampler and schedule line up with the checkpoint."""
    found = drop_incomplete_checkpoints(folder)
    if not found or not (found[-1] / PLAN_FILE).is_file():
        return None
    return Plan(**json.loads((found[-1] / PLAN_FILE).read_text()))


def checkpoint_step(path: Path) -> int:
    return int(path.name.rpartition("-")[2])


def drop_incomplete_checkpoints(folder: Path) -> list[Path]:
    """Delete the checkpoints in ``folder`` that were cut short (a full disk, a killed process)
    and return the others, oldest first: the trainer writes ``trainer_state.json`` last, so a
    checkpoint without it is incomplete, and resuming from it would fail."""
    found = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir()), key=checkpoint_step)
    for path in found:
        if not (path / "trainer_state.json").is_file():
            shutil.rmtree(path, ignore_errors=True)
    return [p for p in found if p.exists()]


def slim_checkpoints(folder: Path) -> None:
    """Keep the optimizer state in the newest checkpoint alone, the one a resume starts from;
    the trainer keeps at most one other (the best epoch's), whose weights are all that is used
    of it, and the optimizer state would double its size."""
    for path in drop_incomplete_checkpoints(folder)[:-1]:
        for name in RESUME_ONLY:
            (path / name).unlink(missing_ok=True)


def save_model(model, path: Path, details: dict) -> None:
    """Save ``model`` with ragtune's ``details`` (ragtune.json) into a sibling folder and move it
    into place only when complete, so ``path`` never holds half a model.

    Args:
        model: the SentenceTransformer to save.
        path: the model folder; one saved there before is replaced.
        details: what ragtune records about the run.
    """
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        model.save(str(partial))
        (partial / "ragtune.json").write_text(json.dumps(details, indent=2))
    except Exception as error:
        shutil.rmtree(partial, ignore_errors=True)
        if is_out_of_room(error):
            raise WorkspaceError(explain_out_of_room("the fine-tuned model", path.parent)) from error
        raise
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
