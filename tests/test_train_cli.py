"""`python -m core train` from files, alone and as a 2-process CPU run under torchrun (gloo)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.beir import export_beir, load_demo
from core.pairs import export_jsonl
from tests.conftest import ROOT


@pytest.fixture
def files(store, count, tmp_path):
    _, pair_set_id = load_demo(store, count, limit=60)
    pairs = tmp_path / "train.jsonl"
    pairs.write_text(export_jsonl(store, pair_set_id, "train"))
    export_beir(store, pair_set_id, tmp_path / "beir")
    return pairs, tmp_path / "beir"


def run(args, tmp_path, launcher=(sys.executable, "-m", "core")):
    env = {**os.environ, "RAGTUNE_HOME": str(tmp_path / "ws")}
    result = subprocess.run([*launcher, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_train_from_files_reports_both_models_and_timings(files, tmp_path):
    pairs, beir = files
    out = run(["train", "--pairs", str(pairs), "--eval", str(beir), "--epochs", "1",
               "--batch-size", "8", "--max-pairs", "32", "--max-seq-length", "64",
               "--dims", "384,64", "--output", str(tmp_path / "model"), "--json"], tmp_path)
    assert set(out["baseline"]) == set(out["finetuned"]) == {"384", "64"}
    assert set(out["seconds"]) == {"baseline_eval", "train", "final_eval", "total"}
    assert Path(out["model_path"], "model.safetensors").is_file()


def test_the_same_run_works_on_two_processes_with_torchrun(files, tmp_path):
    pairs, beir = files
    torchrun = Path(sys.executable).with_name("torchrun")
    out = run(["--nproc_per_node", "2", "-m", "core", "train", "--pairs", str(pairs), "--eval",
               str(beir), "--epochs", "1", "--batch-size", "4", "--max-pairs", "16",
               "--max-seq-length", "64", "--dims", "384,64", "--output", str(tmp_path / "ddp"),
               "--json"], tmp_path, launcher=(str(torchrun),))
    assert out["finetuned"]["64"]["ndcg@10"] > 0
    assert Path(out["model_path"], "model.safetensors").is_file()


def test_train_errors_are_one_line(tmp_path):
    env = {**os.environ, "RAGTUNE_HOME": str(tmp_path / "ws")}
    result = subprocess.run([sys.executable, "-m", "core", "train", "--pairs", "nope.jsonl",
                             "--eval", "nowhere"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
