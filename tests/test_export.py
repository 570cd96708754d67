"""Model export: the zip loads back and embeds identically; snippets run; results files; Hub."""
import json
import zipfile

import numpy as np
import pytest

from core.cli import main
from core.using import export, runs
from core.workspace import models
from core.workspace.store import WorkspaceError
from tests.test_runs import trained  # noqa: F401  (fixture)


@pytest.mark.slow
def test_exported_zip_loads_back_with_the_same_embeddings(trained, tmp_path, capsys):  # noqa: F811
    from sentence_transformers import SentenceTransformer
    run = next(r for r in runs.list_runs(trained) if r.kind == "fine-tune")
    target = tmp_path / "out.zip"
    assert main(["runs", "export", run.id, "--zip", str(target), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["zip"] == str(target)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "unzipped")
    root = f"ragtune-{run.id}"
    assert {f"{root}/README.md", f"{root}/ragtune.json", f"{root}/modules.json"} <= set(names)
    loaded = SentenceTransformer(str(tmp_path / "unzipped" / root), device="cpu")
    texts = ["How do I open a file?", "Return the absolute value of a number."]
    original = models.load(run.model_path).encode(texts)
    np.testing.assert_allclose(loaded.encode(texts), original, atol=1e-6)
    # The snippet people paste loads the same folder at the chosen size.
    [snippet] = [s for s in export.snippets(str(tmp_path / "unzipped" / root), 64)
                 if s.library == "sentence-transformers"]
    exec(snippet.code, {})
    assert "truncate_dim" in next(s.code for s in export.snippets("m", 64) if s.library == "LangChain")


def test_export_refuses_what_is_not_a_fine_tuned_model(trained, tmp_path, capsys):  # noqa: F811
    assert main(["runs", "export", "e999", "--zip", str(tmp_path / "x.zip")]) == 1
    assert "no run 'e999'" in capsys.readouterr().err
    baseline = next(r for r in runs.list_runs(trained) if r.kind == "evaluation")
    with pytest.raises(WorkspaceError, match="not a fine-tuning run"):
        export.export_model(trained, baseline.id, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_results_files_hold_every_dimension(trained):  # noqa: F811
    all_runs = runs.list_runs(trained)
    csv = export.results_csv(all_runs).splitlines()
    assert csv[0].startswith("run,name,kind,model,pair set,corpus,dim,ndcg@10")
    assert len(csv) == 1 + 5 * len(all_runs)
    assert [r["id"] for r in json.loads(export.results_json(all_runs))["runs"]] == [r.id for r in all_runs]


def test_push_to_hub_explains_a_missing_token_or_network(trained, monkeypatch):  # noqa: F811
    run = next(r for r in runs.list_runs(trained) if r.kind == "fine-tune")
    with pytest.raises(WorkspaceError, match="no Hugging Face token"):
        export.push_to_hub(trained, run.id, "me/model", "  ")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.hub_reachable.cache_clear()
    with pytest.raises(WorkspaceError, match="not reachable"):
        export.push_to_hub(trained, run.id, "me/model", "hf_secret")
    models.hub_reachable.cache_clear()


def test_a_model_missing_its_weights_is_not_exported(store, tmp_path, capsys):
    from core.training import jobs
    from tests.test_export_targets import model_run
    run_id = model_run(store)
    job_id = int(run_id[1:])
    folder = jobs.job_dir(store, job_id) / "model"
    target = tmp_path / "out.zip"
    assert main(["runs", "export", f"j{job_id}", "--zip", str(target)]) == 0  # whole: it exports
    capsys.readouterr()
    target.unlink()
    (folder / "model.safetensors").unlink()  # the weights are gone
    assert main(["runs", "export", f"j{job_id}", "--zip", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "does not load" in err, err
    assert not target.exists() and not list(tmp_path.glob("*.partial"))
    with pytest.raises(WorkspaceError, match="does not load"):
        export.model_zip_bytes(store, f"j{job_id}")
