"""benchmarks/gpu_weights.py on a tiny fake model folder: weights split into float16 parts,
staged one at a time, joined and restored only when every part is there and unchanged."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmarks import gpu_weights as gw


@pytest.fixture
def parts(tmp_path):
    """A model folder of one 3 KB weights file and two small files, prepared in 3 parts."""
    source = tmp_path / "model"
    (source / "1_Pooling").mkdir(parents=True)
    torch.manual_seed(0)
    weights = {"a": torch.randn(20, 30), "b": torch.randn(17)}
    save_file(weights, source / gw.WEIGHTS, metadata={"format": "pt"})
    (source / "config.json").write_text("{}")
    (source / "1_Pooling" / "config.json").write_text('{"word_embedding_dimension": 30}')
    manifest = gw.prepare(source, tmp_path / "carried", gw.sha256(source / gw.WEIGHTS), max_part=600)
    return tmp_path / "carried", weights, manifest


def test_parts_staged_one_by_one_restore_the_weights_in_float32(parts, tmp_path):
    carried, weights, manifest = parts
    count = len(manifest["parts"])
    assert count == 3 and sorted(p.name for p in carried.iterdir()) == ["1", "2", "3"]
    assert all(p["bytes"] <= 600 for p in manifest["parts"])
    staged = tmp_path / "staged"
    assert gw.stage(carried / "2", staged) == [2]  # any order: each call brings one
    with pytest.raises(gw.Refused, match="not staged: parts 1, 3 of 3"):
        gw.restore(staged, tmp_path / "home" / "mpnet")
    assert gw.stage(carried / "1", staged) == [1, 2]
    assert gw.stage(carried / "3", staged) == [1, 2, 3]
    model = tmp_path / "home" / "mpnet"
    assert gw.restore(staged, model) == manifest["fp16_sha256"]
    restored = load_file(model / gw.WEIGHTS)
    assert all(restored[k].dtype == torch.float32 for k in weights)
    assert all(torch.equal(restored[k], weights[k].half().float()) for k in weights)
    assert (model / "1_Pooling" / "config.json").is_file()
    record = json.loads((model / "ragtune-install.json").read_text())
    assert record["fp16_sha256"] == manifest["fp16_sha256"]
    assert not (staged / gw.HALF).exists()  # the joined file is not left behind


def test_a_damaged_part_is_refused_when_staged_and_when_joined(parts, tmp_path):
    carried, _, _ = parts
    staged = tmp_path / "staged"
    for n in (1, 2, 3):
        gw.stage(carried / str(n), staged)
    part = carried / "2" / "part-2"
    damaged = bytearray(part.read_bytes())
    damaged[100] ^= 1
    part.write_bytes(bytes(damaged))
    with pytest.raises(gw.Refused, match=r"part 2 .* does not match its SHA256"):
        gw.stage(carried / "2", tmp_path / "other")
    (staged / "part-2").write_bytes(bytes(damaged))  # damaged after staging: the join catches it
    model = tmp_path / "home" / "mpnet"
    with pytest.raises(gw.Refused, match="a staged part is damaged"):
        gw.restore(staged, model)
    assert not model.exists() and not (staged / gw.HALF).exists()


def test_weights_that_are_not_the_published_ones_are_not_prepared(tmp_path):
    source = tmp_path / "model"
    source.mkdir()
    save_file({"a": torch.zeros(3)}, source / gw.WEIGHTS)
    with pytest.raises(gw.Refused, match="not the published"):
        gw.prepare(source, tmp_path / "carried", "0" * 64)
    assert not (tmp_path / "carried").exists()
