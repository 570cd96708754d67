"""The runs list, its CLI, per-question comparisons, rename and delete, and the Runs and Home
pages, on one tiny fine-tuning run made through ``python -m core finetune``."""
import functools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main
from core.deciding.compare import compare_evaluations
from core.documents.beir import load_demo
from core.documents.pairs import import_pairs, split
from core.measuring.evaluate import METRICS, EvalResult, RetrievalSet, evaluate_named, load_evaluations, save
from core.training import jobs
from core.training.forgetting import kept_general
from core.training.merge import ALPHAS
from core.using import export, label, runs, search
from core.workspace.store import Store, WorkspaceError
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


@functools.lru_cache(maxsize=1)
def trained_home() -> Path:
    """A workspace with the demo cut to 40 docstrings and one 1-epoch fine-tuning run made by
    the CLI; built once per test process and shared read-only (copy it to change it)."""
    home = Path(tempfile.mkdtemp(prefix="ragtune-trained-")) / "ws"
    before = os.environ.get("RAGTUNE_HOME")
    os.environ["RAGTUNE_HOME"] = str(home)
    try:
        from core.workspace import models
        _, pair_set_id = load_demo(Store(home), models.token_counter(), limit=40)
        code = main(["finetune", "--pairs", str(pair_set_id), "--epochs", "1", "--batch-size", "8",
                     "--max-seq-length", "64", "--max-pairs", "16", "--json"])
        assert code == 0
    finally:
        if before is None:
            os.environ.pop("RAGTUNE_HOME", None)
        else:
            os.environ["RAGTUNE_HOME"] = before
    return home


@pytest.fixture
def trained(monkeypatch) -> Store:
    home = trained_home()
    monkeypatch.setenv("RAGTUNE_HOME", str(home))
    return Store(home)


@pytest.fixture
def trained_copy(tmp_path, monkeypatch) -> Store:
    home = tmp_path / "ws"
    shutil.copytree(trained_home(), home)
    monkeypatch.setenv("RAGTUNE_HOME", str(home))
    return Store(home)


def page(path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(path)
    return at.run()


@pytest.mark.slow
def test_finetune_cli_stores_a_job_and_runs_cli_lists_both_runs(trained, capsys):
    [job] = jobs.all_jobs(trained)
    assert job.state == "succeeded" and job.config["epochs"] == 1 and job.config["batch_size"] == 8
    assert main(["runs", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"]
    by_id = {r["id"]: r for r in listing}
    assert set(by_id) == {f"j{job.id}", f"e{job.result['baseline_evaluation']}"}
    tuned = by_id[f"j{job.id}"]
    assert tuned["kind"] == "fine-tune" and tuned["model"] == "all-MiniLM-L6-v2"
    assert tuned["model_path"] == job.result["model_path"]
    assert tuned["metrics"] == job.result["finetuned"]  # per dimension, as the job stored them
    baseline = by_id[f"e{job.result['baseline_evaluation']}"]
    assert baseline["kind"] == "evaluation" and list(baseline["metrics"]) == ["384", "256", "128", "64", "32"]
    assert main(["runs", "list"]) == 0
    assert f"j{job.id}\tfine-tune\tsucceeded" in capsys.readouterr().out


def test_a_fine_tuned_model_has_one_name_whoever_measures_it(trained_copy):
    """The job names its model's evaluation; people's questions measuring the same model later
    (label.judge_models) must name it alike, or Results shows one model as two."""
    [job] = jobs.all_jobs(trained_copy)
    trained_on = trained_copy.pair_set(job.config["pair_set_id"])
    # On the questions its job measured it on, it is not measured (and listed) a second time.
    assert label.judge_models(trained_copy, trained_on.id) == []
    rows = [(p["query"], p["positive"]) for p in trained_copy.pairs(trained_on.id)]
    other = import_pairs(trained_copy, trained_on.corpus_id, "the same, asked again", rows).pair_set_id
    split(trained_copy, other)
    base, tuned = label.judge_models(trained_copy, other)
    names = {e.id: e.label for e in load_evaluations(trained_copy)}
    assert names[base] == "baseline"
    assert names[tuned] == names[job.result["finetuned_evaluation"]] == f"fine-tuned (job {job.id})"
    assert runs.get_run(trained_copy, f"j{job.id}").name == names[tuned]


def test_results_write_each_number_one_way_and_colour_only_real_changes(trained):
    """Scores with four decimals in every row (the table widget wrote 0.4000 as "0.4"), each
    difference in the digits of the sentence above it, and a bar green or red only where the
    bootstrap tells the change from noise, grey as its verdict says elsewhere."""
    at = page("views/results.py")
    assert not at.exception
    tests = compare_evaluations(*load_evaluations(trained))
    verdicts = at.dataframe[0].value
    assert verdicts["difference"].tolist() == [d.change() for d in tests.values()]
    assert verdicts["95% interval"].tolist() == [d.interval() for d in tests.values()]
    assert all(re.fullmatch(r"[+-]\d\.\d{3}", c) for c in verdicts["difference"])
    for table in at.dataframe[1:3]:
        formats = json.loads(table.proto.columns)
        assert {m: formats[m]["type_config"]["format"] for m in METRICS} == dict.fromkeys(METRICS, "%.4f")
    [bars] = [json.loads(c.proto.spec)["data"][0] for c in at.get("plotly_chart")
              if json.loads(c.proto.spec)["data"][0]["type"] == "bar"]
    grey = [c == "#757575" for c in bars["marker"]["color"]]
    assert grey == [not tests[int(dim)].significant for dim in bars["x"]] and any(grey)


def test_the_jobs_table_gives_each_jobs_settings_as_the_runs_table_does(trained_copy):
    """A job whose epochs the plan decides showed "None" under "epochs"; now one line of the
    settings it ran or will run with, the same line as in Runs."""
    [done] = jobs.all_jobs(trained_copy)
    waiting = jobs.submit(trained_copy, "train", {"pair_set_id": done.config["pair_set_id"],
                                                  "batch_size": 8})
    jobs.cancel(trained_copy, waiting)
    assert jobs.get(trained_copy, waiting).config.get("epochs") is None
    at = page("views/finetune.py")
    assert not at.exception
    [table] = [d.value for d in at.dataframe if "job" in d.value.columns]
    settings = dict(zip(table["job"], table["settings"]))
    assert settings == {j.id: runs.job_settings(j) for j in jobs.all_jobs(trained_copy)}
    assert settings[done.id] == runs.get_run(trained_copy, f"j{done.id}").config
    assert "None" not in " ".join(settings.values()) and "8 batch" in settings[waiting]


def test_a_fine_tune_carries_its_general_cost_and_alpha_to_runs_exports_and_its_card(trained):
    [job] = jobs.all_jobs(trained)
    check = job.result["general"]
    assert job.result["alpha"] == check["kept_alpha"] in ALPHAS
    assert {p["alpha"] for p in check["grid"]} >= {0.0, 0.5, 1.0}
    assert set(check["differences"]) == set(job.result["finetuned"]) and job.result["seconds"]["general"] > 0
    run = runs.get_run(trained, f"j{job.id}")
    assert run.alpha == check["kept_alpha"] and run.general == kept_general(check) is not None
    assert {"alpha", "general ndcg@10"} <= set(export.results_csv([run]).splitlines()[0].split(","))
    assert json.loads(export.results_json([run]))["runs"][0]["general_ndcg@10"] == run.general
    assert "## Outside the corpus" in (Path(job.result["model_path"]) / "README.md").read_text()


def test_the_live_charts_count_steps_and_epochs_in_whole_numbers(trained):
    """Plotly's own ticks put the before-training point between epoch "-1" and "0.5"."""
    at = page("views/finetune.py")
    assert not at.exception
    layouts = {spec["layout"]["title"]["text"]: spec["layout"]["xaxis"] for spec in
               (json.loads(c.proto.spec) for c in at.get("plotly_chart"))}
    # The merges with the base are charted against α, a share from 0 to 1, not a count.
    merged = {t: layouts.pop(t) for t in list(layouts) if t.startswith("Merged with the base")}
    assert all(axis["range"] == [-0.05, 1.05] for axis in merged.values())
    assert {t.split(" ")[0] for t in layouts} == {"Training", "NDCG@10"}
    for axis in layouts.values():
        assert axis["tick0"] == 0 and axis["dtick"] >= 1 and float(axis["dtick"]).is_integer()
        assert axis["range"][0] < 0 < axis["range"][1]


def test_wins_and_losses_follow_the_stored_ranks(trained_copy):
    store = trained_copy
    base = next(r for r in runs.list_runs(store) if r.kind == "evaluation")
    stored = runs.evaluation_of(store, base).details["per_query"]["64"]
    qids = sorted(stored)
    # A second measurement of the same questions: the first question moves to rank 1, the
    # second drops out of the top 100, the rest stay where they were.
    moved = {q: tuple(v) for q, v in stored.items()}
    moved[qids[0]] = (1, "x")
    moved[qids[1]] = (0, "x")
    other = EvalResult("other", 47, len(qids), [64], 1.0, {64: {"ndcg@10": 0.5}}, {64: moved})
    save(store, other, base.pair_set_id, "other")
    b = next(r for r in runs.list_runs(store) if r.name == "other")
    outcomes = {c.query_id: c.outcome for c in runs.wins_and_losses(store, base, b, 64)}
    assert outcomes[qids[0]] == ("tie" if stored[qids[0]][0] == 1 else "win")
    assert outcomes[qids[1]] == ("tie" if stored[qids[1]][0] == 0 else "loss")
    assert all(outcomes[q] == "tie" for q in qids[2:])
    with pytest.raises(WorkspaceError, match="not measured at 128"):
        runs.wins_and_losses(store, base, b, 128)


def test_deleting_a_fine_tune_run_removes_its_model_evaluations_and_cached_vectors(trained_copy):
    store = trained_copy
    run = next(r for r in runs.list_runs(store) if r.kind == "fine-tune")
    search.corpus_index(store, store.pair_set(run.pair_set_id).corpus_id, run.model_path, 64)
    prefix = runs._model_cache_prefix(run)  # searching cached the model's passage vectors
    assert store.query("SELECT 1 FROM embeddings WHERE model_key LIKE ?", [prefix + "%"])
    report = runs.delete_run(store, run.id)
    assert report.runs == [run.id]
    assert not jobs.job_dir(store, run.job_id).exists()
    assert not store.query("SELECT 1 FROM evaluations WHERE id = ?", [run.evaluation_id])
    assert not store.query("SELECT 1 FROM embeddings WHERE model_key LIKE ?", [prefix + "%"])
    assert [r.kind for r in runs.list_runs(store)] == ["evaluation"]  # the standalone baseline stays
    with pytest.raises(WorkspaceError, match="no run"):
        runs.delete_run(store, run.id)


def test_delete_corpus_refuses_while_a_job_waits_then_removes_everything(store, count):
    corpus_id, pair_set_id = load_demo(store, count, limit=40)
    result = evaluate_named(None, RetrievalSet.from_pair_set(store, pair_set_id), [64], store)
    save(store, result, pair_set_id, "baseline")
    assert store.query("SELECT COUNT(*) FROM embeddings")[0][0] > 0
    job_id = jobs.submit(store, "train", {"pair_set_id": pair_set_id, "epochs": 1, "batch_size": 8})
    plan = runs.plan_delete_corpus(store, corpus_id)
    assert plan.pair_sets == 1 and plan.chunks > 0 and len(plan.runs) == 2 and plan.bytes > 0
    with pytest.raises(WorkspaceError, match="cancel it"):
        runs.delete_corpus(store, corpus_id)
    assert store.corpora()  # nothing was lost
    jobs.cancel(store, job_id)
    assert len(runs.list_runs(store)) == 1  # canceled before it ran: no run
    runs.delete_corpus(store, corpus_id)
    assert not store.corpora() and not runs.list_runs(store) and not jobs.all_jobs(store)
    assert store.query("SELECT COUNT(*) FROM embeddings")[0][0] == 0


def test_rename_checks_names(store, count):
    corpus_id, pair_set_id = load_demo(store, count, limit=10)
    other = store.create_pair_set(corpus_id, "other", "import", {})
    with pytest.raises(WorkspaceError, match="already has a pair set named 'other'"):
        runs.rename_pair_set(store, pair_set_id, " other ")
    runs.rename_pair_set(store, pair_set_id, "summaries")
    assert store.pair_set(pair_set_id).name == "summaries" and store.pair_set(other).name == "other"
    with pytest.raises(WorkspaceError, match="is blank"):
        runs.rename_corpus(store, corpus_id, "  ")
    for bad in ("evil\u202eexe.pdf", "two\nlines"):  # the upload name rule, on renames too
        with pytest.raises(WorkspaceError, match="direction-override"):
            runs.rename_corpus(store, corpus_id, bad)
        with pytest.raises(WorkspaceError, match="direction-override"):
            runs.rename_pair_set(store, pair_set_id, bad)
    runs.rename_corpus(store, corpus_id, "stdlib")
    assert store.corpus(corpus_id).name == "stdlib"


def test_the_pages_one_table_renames_and_deletes_by_kind(store, count):
    corpus_id, pair_set_id = load_demo(store, count, limit=10)
    runs.rename(store, "pair set", pair_set_id, "summaries")
    assert store.pair_set(pair_set_id).name == "summaries"
    assert "summaries" in runs.plan_delete(store, "pair set", pair_set_id).summary()
    with pytest.raises(WorkspaceError, match="pick one of run, pair set, corpus"):
        runs.delete(store, "Corpus", corpus_id)  # the page's radio label, not a kind
    runs.delete(store, "corpus", corpus_id)
    assert not store.corpora()


def test_runs_page_lists_compares_measures_storage_and_exports(trained):
    at = page("views/runs.py")
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["kind"]) == {"fine-tune", "evaluation"} and "ndcg@10 64d" in table.columns
    # The scores lead, after what names the run, so a wide table never hides them off-screen.
    shown = list(at.dataframe[0].proto.column_order)
    assert shown[:3] == ["id", "name", "ndcg@10 384d"] and shown.index("ndcg@10 64d") < shown.index("model")
    assert any("ranks the right passage higher than" in m.value for m in at.markdown)
    assert any("95% interval" in m.value and "questions" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Measure storage options").click().run()
    assert not at.exception
    assert "× smaller" in at.success[0].value or "No smaller index" in at.success[0].value
    next(b for b in at.button if b.label == "Prepare the model zip").click().run()
    assert not at.exception
    assert any(d.label.startswith("Download ragtune-j") for d in at.get("download_button"))
    assert any("truncate_dim=128" in c.value for c in at.code)


def test_home_shows_the_flow_and_the_next_action(trained):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert "1 corpus · 1 pair set (1 split) · 0 jobs running" in at.caption[0].value
    assert at.button[0].label == "Next: Label real questions to check the gain"


@pytest.mark.slow
def test_finetune_cli_cancels_cleanly_on_ctrl_c(trained_copy):
    import signal
    import subprocess
    import sys
    import time
    store = trained_copy
    [pair_set] = store.pair_sets()
    # Started as a terminal starts it: a test run launched in the background of a shell ignores
    # SIGINT, and a child would inherit that and never see the Ctrl-C.
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "finetune", "--pairs", str(pair_set.id), "--epochs", "4",
         "--batch-size", "8", "--max-seq-length", "64", "--max-pairs", "16"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    # once the job reports a status of its own, the CLI is waiting on it
    while not any(j.state == "running" and j.status != "Starting" for j in jobs.all_jobs(store)):
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 130, err
    assert "canceled" in err.splitlines()[-1] and "Traceback" not in err
    newest = jobs.all_jobs(store)[0]
    assert newest.state == "canceled" and newest.cancel_requested
    assert any(r.id == f"j{newest.id}" and r.state == "canceled" for r in runs.list_runs(store))
