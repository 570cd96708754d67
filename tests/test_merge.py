"""Merging a fine-tuned model with its base (θ(α) = (1 − α)·θ_base + α·θ_tuned): the ends give
each model's vectors, a folded rotation applies after the merge, and bad input is one line with
nothing written."""
import json
import re
import shutil

import numpy as np
import pytest

from core.cli import main
from core.documents.beir import load_demo
from core.training import jobs
from core.training.merge import check_alpha, merged, save_merged
from core.training.rotate import fit, save_rotated
from core.workspace import models
from core.workspace.errors import WorkspaceError

TEXTS = ["Alabama: Geography", "the cat sat on the mat",
         "How do I interpolate two models' weights?", "Albedo is the fraction of light reflected."]


def vectors(model) -> np.ndarray:
    return model.encode(TEXTS, convert_to_numpy=True)


def test_alpha_zero_gives_the_base_vectors_and_one_the_tuned_vectors(tuned):
    base = vectors(models.load_fresh(None, "cpu"))
    trained = vectors(models.load_fresh(str(tuned), "cpu"))
    assert not np.allclose(base, trained, atol=1e-3)  # the two really differ
    np.testing.assert_allclose(vectors(merged(None, tuned, 0.0, "cpu")), base, atol=1e-6)
    np.testing.assert_allclose(vectors(merged(None, tuned, 1.0, "cpu")), trained, atol=1e-6)
    middle = vectors(merged(None, tuned, 0.5, "cpu"))
    assert not np.allclose(middle, base, atol=1e-3) and not np.allclose(middle, trained, atol=1e-3)


def test_a_folded_rotation_is_applied_after_the_merge(tuned, tmp_path):
    trained = models.load_fresh(str(tuned), "cpu")
    rotation = fit(trained.encode(TEXTS * 40, convert_to_numpy=True), "rotation")
    rotated = save_rotated(str(tuned), rotation, tmp_path / "rotated", {})
    base = vectors(models.load_fresh(None, "cpu"))
    np.testing.assert_allclose(vectors(merged(None, rotated, 0.0, "cpu")), rotation.apply(base), atol=1e-5)
    np.testing.assert_allclose(vectors(merged(None, rotated, 1.0, "cpu")),
                               rotation.apply(vectors(trained)), atol=1e-5)


def test_the_merge_is_a_sentence_transformers_folder_that_records_alpha(tuned, tmp_path):
    out = save_merged(None, tuned, 0.25, tmp_path / "merged")
    card = json.loads((out / "ragtune.json").read_text())
    assert card["merge"]["alpha"] == 0.25 and card["merge"]["tuned_model"] == str(tuned)
    from sentence_transformers import SentenceTransformer
    np.testing.assert_allclose(vectors(SentenceTransformer(str(out), device="cpu")),
                               vectors(merged(None, tuned, 0.25, "cpu")), atol=1e-6)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), float("inf"), "half", None])
def test_an_alpha_outside_zero_to_one_is_one_line(alpha):
    with pytest.raises(WorkspaceError, match="alpha must be") as error:
        check_alpha(alpha)
    assert "\n" not in str(error.value)


def tiny_bert(folder):
    """A model of another architecture (2 layers of width 32), offline: random weights and the
    bundled model's tokenizer."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel
    source = models.resolve(None)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64)).save_pretrained(folder / "hf")
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(folder / "hf")
    word = Transformer(str(folder / "hf"))
    SentenceTransformer(modules=[word, Pooling(32)], device="cpu").save(str(folder / "st"))
    return folder / "st"


@pytest.mark.parametrize("case", ["alpha", "nan", "missing base", "other architecture"])
def test_bad_input_is_one_line_and_writes_nothing(tuned, tmp_path, case):
    out = tmp_path / "out"
    base, alpha, expected = None, 0.5, ""
    if case == "alpha":
        alpha, expected = 2, "alpha must be"
    elif case == "nan":
        alpha, expected = float("nan"), "alpha must be"
    elif case == "missing base":
        base, expected = str(tmp_path / "gone"), "base model .* cannot be loaded"
    else:
        base, expected = str(tiny_bert(tmp_path)), "different architectures"
    with pytest.raises(WorkspaceError, match=expected) as error:
        save_merged(base, tuned, alpha, out)
    assert "\n" not in str(error.value)
    assert not out.exists() and not out.with_name("out.partial").exists()


def finished_run(store, pair_set_id, model_path, base=None) -> str:
    """A fine-tuning job in the workspace as one that succeeded leaves it: its config and the
    model folder it handed back."""
    job_id = jobs.submit(store, "train", {"pair_set_id": pair_set_id,
                                          **({"model": str(base)} if base else {})})
    jobs.claim(store, job_id)
    jobs.finish(store, job_id, {"model_path": str(model_path), "kept": 1})
    return f"j{job_id}"


def test_the_cli_merges_a_run_and_refuses_bad_input_in_one_line(store, count, tuned, tmp_path, capsys):
    _, pair_set_id = load_demo(store, count, limit=40)
    run = finished_run(store, pair_set_id, tuned)
    out = tmp_path / "half"
    assert main(["merge", run, "--alpha", "0.5", "--out", str(out), "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["alpha"] == 0.5 and said["path"] == str(out) and (out / "modules.json").is_file()
    np.testing.assert_allclose(vectors(models.load_fresh(str(out), "cpu")),
                               vectors(merged(None, tuned, 0.5, "cpu")), atol=1e-6)
    assert main(["merge", run, "--alpha", "0.25"]) == 0  # by default beside the run's model
    assert (tuned.with_name("merged-0.25") / "ragtune.json").is_file()
    capsys.readouterr()
    other = finished_run(store, pair_set_id, tiny_bert(tmp_path))
    gone = shutil.copytree(models.resolve(None), tmp_path / "base copy")
    orphan = finished_run(store, pair_set_id, tuned, base=gone)
    shutil.rmtree(gone)  # the model the run was trained from is deleted after it finished
    for argv, expected in ((["merge", run, "--alpha", "nan"], "alpha must be"),
                           (["merge", run, "--alpha", "1.01"], "alpha must be"),
                           (["merge", "j99", "--alpha", "0.5"], "no run"),
                           (["merge", run, "--alpha", "0.5", "--base", other], "different architectures"),
                           (["merge", orphan, "--alpha", "0.5"], "base model .* cannot be loaded")):
        target = tmp_path / "nothing"
        assert main([*argv, "--out", str(target)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("error: ")
        assert re.search(expected, err), err
        assert not target.exists()
