"""The general reference set ragtune ships: it loads, it is the same bytes on every machine (its
SHA256 is checked), and a changed or missing file is one line, never a different set."""
import gzip
import json
import shutil

import pytest

from core.documents import general
from core.workspace.errors import WorkspaceError


def test_the_general_set_loads_as_shipped():
    data = general.load()
    assert data.sha256 == general.SHA256
    assert len(data.queries) == 400 and len(data.passages) > 3000
    assert all(p in data.passages for ids in data.relevant.values() for p in ids)
    assert set(data.relevant) == set(data.queries)
    # Every query names its article: a title and a section heading, written by people.
    assert all(q.split(": ", 1)[0] in data.articles.values() for q in data.queries.values())
    retrieval = data.retrieval_set()
    assert len(retrieval.queries) == 400 and len(retrieval.corpus) == len(data.passages)
    assert general.DATA.stat().st_size < 2_000_000
    assert general.LICENSE.is_file() and "CC BY-SA" in general.LICENSE.read_text()


def test_a_smaller_slice_keeps_every_relevant_passage_of_its_queries():
    data = general.load().retrieval_set(max_queries=50, max_passages=600)
    assert len(data.queries) == 50 and len(data.corpus) <= 600
    kept = set(data.corpus_ids)
    assert all(data.relevant[q] <= kept for q in data.query_ids)
    assert data.corpus_ids == general.load().retrieval_set(max_queries=50, max_passages=600).corpus_ids


def test_a_changed_set_is_refused_in_one_line(tmp_path):
    changed = tmp_path / "general_set.json.gz"
    content = json.loads(gzip.decompress(general.DATA.read_bytes()))
    content["queries"]["q001"] += " (edited)"
    changed.write_bytes(gzip.compress(json.dumps(content).encode()))
    for path, expected in ((changed, "is not the one ragtune ships"),
                           (tmp_path / "missing.json.gz", "cannot be read")):
        with pytest.raises(WorkspaceError, match=expected) as error:
            general.load(path)
        assert "\n" not in str(error.value)
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(general.DATA.read_bytes()[:1000])
    with pytest.raises(WorkspaceError, match="is not the one ragtune ships"):
        general.load(broken)


def test_the_same_json_packed_by_another_zlib_still_loads(tmp_path):
    """The hash is of the JSON, so a rebuild on a machine whose zlib packs it differently is the
    same set."""
    repacked = tmp_path / "general_set.json.gz"
    repacked.write_bytes(gzip.compress(gzip.decompress(general.DATA.read_bytes()), compresslevel=1))
    assert repacked.read_bytes() != general.DATA.read_bytes()
    assert general.load(repacked).sha256 == general.SHA256
    shutil.copy(general.DATA, tmp_path / "copy.json.gz")
    assert general.load(tmp_path / "copy.json.gz").queries == general.load().queries
