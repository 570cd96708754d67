"""One current corpus and one current pair set per browser session: whatever page a person
picks them on, every other page shows the same, and a default shown is not a choice made."""
import pytest
from streamlit.testing.v1 import AppTest

from core.deciding.workflow import current_choice
from core.documents.corpus import Document, ingest
from core.documents.pairs import import_pairs, split
from core.workspace.store import Store
from tests.conftest import PARAGRAPHS, ROOT

APP = str(ROOT / "app.py")


def corpus(store: Store, count, name: str) -> int:
    return ingest(store, name, [Document(f"{name}.txt", "text", "\n\n".join(PARAGRAPHS))],
                  count).corpus_id


def split_pair_set(store: Store, corpus_id: int, name: str) -> int:
    rows = [(f"{name} question {i} about {p.split()[0]}?", p) for i, p in
            enumerate(PARAGRAPHS * 4)]
    pair_set_id = import_pairs(store, corpus_id, name, rows).pair_set_id
    split(store, pair_set_id, 0.3)
    return pair_set_id


def shown(at: AppTest, label: str) -> list:
    return [s.value for s in at.selectbox if s.label == label]


def test_current_choice_is_the_remembered_then_the_preferred_then_the_newest():
    assert current_choice([1, 2, 3], 1) == 1
    assert current_choice([1, 2, 3], 9, preferred=2) == 2
    assert current_choice([1, 2, 3], None, preferred=9) == 3
    with pytest.raises(ValueError):
        current_choice([], None)


def test_a_corpus_picked_on_one_page_is_the_corpus_of_every_page(home, count):
    store = Store(home)
    corpus(store, count, "alpha")
    corpus(store, count, "beta")  # the newest: every page starts on it
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/finetune.py").run()
    assert shown(at, "Corpus") == ["beta", "beta"]
    # The documents-only section's selector, above the new job's: both follow it at once.
    at.selectbox(key="tune_corpus").select("alpha").run()
    assert not at.exception
    assert shown(at, "Corpus") == ["alpha", "alpha"]
    for path in ("views/label.py", "views/pairs.py", "views/corpus.py", "views/finetune.py"):
        at.switch_page(path).run()
        assert not at.exception, path
        assert set(shown(at, "Corpus")) == {"alpha"}, path
    at.switch_page("views/corpus.py").run()
    at.selectbox(key="corpus").select("beta").run()
    assert shown(at, "Add documents to") == ["beta"]  # above it on the page, and still in step
    at.switch_page("views/search.py").run()
    assert shown(at, "Corpus") == ["beta"]


def test_a_pair_set_picked_on_one_page_stays_picked_on_the_others(home, count):
    store = Store(home)
    corpus_id = corpus(store, count, "alpha")
    older = split_pair_set(store, corpus_id, "older")
    newer = split_pair_set(store, corpus_id, "newer")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/results.py").run()
    assert shown(at, "Pair set") == [newer]
    at.selectbox(key="pair_set").select(older).run()
    for path in ("views/pairs.py", "views/finetune.py", "views/results.py"):
        at.switch_page(path).run()
        assert not at.exception, path
        assert shown(at, "Pair set") == [older], path
