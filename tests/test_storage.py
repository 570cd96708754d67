"""The storage table: sizes by arithmetic, scores equal to a direct computation."""
import math

import numpy as np

from core.measuring import storage
from core.measuring.evaluate import RetrievalSet, encode, load_evaluations
from core.workspace import models
from tests.test_runs import trained  # noqa: F401  (fixture)


def ndcg_at_10(scores: np.ndarray, data: RetrievalSet) -> float:
    """Binary-relevance NDCG@10, ties broken by corpus id as text (the evaluator's order)."""
    total = 0.0
    for row, qid in zip(scores, data.query_ids):
        ranked = sorted(range(len(row)), key=lambda i: (-row[i], data.corpus_ids[i]))[:10]
        rel = data.relevant[qid]
        dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(ranked) if data.corpus_ids[i] in rel)
        total += dcg / sum(1 / math.log2(r + 2) for r in range(min(len(rel), 10)))
    return total / len(scores)


def test_storage_table_matches_a_direct_computation(trained):  # noqa: F811
    [pair_set] = trained.pair_sets()
    stages = []
    table = storage.measure(trained, pair_set.id, models.DEFAULT_MODEL, [384, 64],
                            progress=lambda stage, fraction: stages.append(stage))
    got = {(o.dim, o.precision): o for o in table.options}
    assert len(got) == 6
    data = RetrievalSet.from_pair_set(trained, pair_set.id)
    # Every stage with its count; the passages' vectors are cached, so not encoded again.
    assert stages == [f"encoding queries: 0 of {len(data.queries)}",
                      f"encoding queries: {len(data.queries)} of {len(data.queries)}",
                      *(f"quantising and scoring: {i} of 6 options" for i in range(1, 7))]
    model = models.load()
    corpus, queries = encode(model, data.corpus), encode(model, data.queries)
    n = len(data.corpus)
    # float32 at full size is what the stored baseline measured
    baseline = next(e for e in load_evaluations(trained, pair_set.id) if e.label == "baseline")
    assert math.isclose(got[384, "float32"].ndcg, baseline.metrics[384]["ndcg@10"], abs_tol=1e-6)
    c64 = corpus[:, :64] / np.linalg.norm(corpus[:, :64], axis=1, keepdims=True)
    q64 = queries[:, :64] / np.linalg.norm(queries[:, :64], axis=1, keepdims=True)
    # binary: Hamming distance on the signs, smaller is better
    hamming = ((q64[:, None, :] > 0) != (c64[None, :, :] > 0)).sum(axis=2)
    assert math.isclose(got[64, "binary"].ndcg, ndcg_at_10(-hamming.astype(float), data), abs_tol=1e-9)
    # int8: per-dimension ranges from the corpus, 256 levels, cosine of the codes
    low, high = c64.min(axis=0), c64.max(axis=0)
    step = (high - low) / 255

    def codes(x):
        return np.clip(np.floor((x - low) / step), 0, 255) - 128

    qc, cc = codes(q64), codes(c64)
    cosine = (qc / np.linalg.norm(qc, axis=1, keepdims=True)) @ (cc / np.linalg.norm(cc, axis=1, keepdims=True)).T
    assert math.isclose(got[64, "int8"].ndcg, ndcg_at_10(cosine, data), abs_tol=1e-6)
    # sizes: 4, 1 and 1/8 bytes per number
    assert got[384, "float32"].bytes == n * 384 * 4 and got[64, "int8"].bytes == n * 64
    assert got[64, "binary"].bytes == n * 8 and got[64, "int8"].smaller == 24
    assert math.isclose(got[64, "int8"].kept, got[64, "int8"].ndcg / got[384, "float32"].ndcg)


def test_headline_names_the_smallest_index_that_keeps_the_score():
    def option(dim, precision, ndcg):
        size = storage.vector_bytes(dim, precision) * 1000
        return storage.StorageOption(dim, precision, size, ndcg, 1536_000 / size, ndcg / 0.5)
    table = storage.StorageTable("m", 1000, [option(384, "float32", 0.5), option(64, "int8", 0.485),
                                             option(64, "binary", 0.40), option(128, "int8", 0.49)])
    assert table.headline().startswith("64-d int8: 24× smaller, 97.0% of the score (64 kB for "
                                       "1,000 passages instead of 1.5 MB)")
    worse = storage.StorageTable("m", 1000, [option(384, "float32", 0.5), option(64, "binary", 0.3)])
    assert worse.headline().startswith("No smaller index keeps 95%")


def test_shares_are_cut_not_rounded_across_the_rule_and_int8_above_float32_is_called_noise():
    def option(dim, precision, ndcg):
        size = storage.vector_bytes(dim, precision) * 1_000_000
        return storage.StorageOption(dim, precision, size, ndcg, 1536e6 / size, ndcg / 0.5)
    near = option(64, "int8", 0.4749)  # 94.98% of the full score
    assert near.row()["of full score"] == "94.9%" and near.row()["keeps ≥ 95%"] == "no"
    table = storage.StorageTable("m", 1_000_000, [option(384, "float32", 0.5), near,
                                                  option(256, "float32", 0.49),
                                                  option(256, "int8", 0.495)], 40, 591)
    assert table.headline().startswith("256-d int8: 6× smaller, 99.0% of the score (256 MB for "
                                       "1,000,000 passages instead of 1.5 GB)")
    assert table.caption().startswith("Sizes are for 1,000,000 passages")
    assert "591 passages" in table.caption() and "1 MB = 10⁶ bytes" in table.caption()
    [note] = table.notes()
    assert note.startswith("At 256 dims int8 scores 0.4950 against float32's 0.4900") and "noise" in note


def test_the_table_and_headline_write_each_number_one_way():
    """A 1.5× saving is "1.5×" in the headline too (a whole-number format made it "2×"), sizes
    carry no ".0", and every NDCG@10 has four decimals, trailing zeros kept."""
    def option(dim, precision, ndcg):
        size = storage.vector_bytes(dim, precision) * 1_000_000
        return storage.StorageOption(dim, precision, size, ndcg, 1536e6 / size, ndcg / 0.5)
    full, smaller = option(384, "float32", 0.5), option(256, "float32", 0.529)
    table = storage.StorageTable("m", 1_000_000, [full, smaller, option(384, "binary", 0.2)])
    assert table.headline().startswith("256-d float32: 1.5× smaller, 105.8% of the score "
                                       "(1 GB for 1,000,000 passages instead of 1.5 GB)")
    rows = [o.row() for o in table.options]
    assert [r["smaller"] for r in rows] == ["1×", "1.5×", "32×"]
    assert [r["index size"] for r in rows] == ["1.5 GB", "1 GB", "48 MB"]
    assert [r["NDCG@10"] for r in rows] == ["0.5000", "0.5290", "0.2000"]
