"""Bad input at every entry point: each is refused with one line (a WorkspaceError, or for the
CLI one stderr line and a non-zero exit) and leaves the workspace exactly as it was."""
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from core.documents import corpus as corpus_module
from core.documents.beir import import_beir, load_demo, parse_beir, upload_files
from core.documents.corpus import ChunkSettings, Document, ingest, load_file
from core.documents.pairs import import_pairs, read_pairs_file
from core.training import jobs
from core.workspace.store import Store, WorkspaceError
from tests.conftest import PARAGRAPHS, ROOT, docx_bytes, pdf_bytes

TEXT = "\n\n".join(PARAGRAPHS)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, count) -> Store:
    """A workspace with a corpus, a split pair set and an unsplit one, shared by the module:
    every test checks it is left unchanged, so sharing it is safe."""
    home = tmp_path_factory.mktemp("bad") / "ws"
    store = Store(home)
    load_demo(store, count, limit=40)
    corpus_id = ingest(store, "bio", [Document("bio.txt", "text", TEXT)], count,
                       ChunkSettings(64, 0)).corpus_id
    import_pairs(store, corpus_id, "unsplit", [(f"What about part {i}?", p)
                                               for i, p in enumerate(PARAGRAPHS)])
    return store


def snapshot(store: Store) -> str:
    """A hash of every database row and of every file under the workspace's files folder."""
    h = hashlib.sha256()
    for line in store.db.iterdump():
        h.update(line.encode())
    for path in sorted(store.files.rglob("*")):
        h.update(str(path.relative_to(store.files)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def unchanged(workspace):
    before = snapshot(workspace)
    yield workspace
    assert snapshot(workspace) == before, "the workspace changed"


def one_line(error: Exception) -> str:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def zipped_garbage() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("word/document.xml", "<not really word")
    return buffer.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


# -- uploads: core.documents.corpus.load_file, then ingest as the page does --------------------------
UPLOADS = [
    ("empty", "notes.txt", b""),
    ("only whitespace", "notes.md", b" \n\t\n "),
    ("binary", "photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20),
    ("latin-1, not UTF-8", "notes.txt", "Schöne Grüße aus Köln".encode("latin-1")),
    ("UTF-16 without a byte-order mark", "notes.txt", TEXT.encode("utf-16-le")),
    ("truncated PDF", "report.pdf", pdf_bytes(PARAGRAPHS)[:300]),
    ("truncated Word file", "memo.docx", docx_bytes(PARAGRAPHS)[:500]),
    ("zip that is no Word file", "memo.docx", zipped_garbage()),
    ("unsupported type", "setup.exe", b"MZ\x90\x00"),
    ("no extension", "README", b"text"),
    ("path traversal", "../../etc/passwd.txt", b"root:x:0:0"),
    ("windows path", "..\\..\\boot.txt", b"boot"),
    ("hidden file", ".env.txt", b"SECRET=1"),
    ("NUL in the name", "a\x00.txt", b"text"),
    ("empty name", "", b"text"),
    ("table without a text column", "t.csv", b"a,b\n1,2\n"),
    ("table with only empty text", "t.csv", b"id,text\n1,\n2,\n"),
    ("JSON Lines that is not JSON", "t.jsonl", b'{"text": "a"\n{oops'),
    ("truncated Parquet", "t.parquet",
     parquet_bytes(pd.DataFrame({"text": PARAGRAPHS}))[:100]),
    ("HTML with only a script", "page.html", b"<html><script>alert(1)</script></html>"),
    ("huge-ish: over the size limit", "big.txt", b"word " * 500),
]


@pytest.mark.parametrize("what,name,data", UPLOADS, ids=[u[0] for u in UPLOADS])
def test_bad_uploads_are_refused(unchanged, count, monkeypatch, what, name, data):
    monkeypatch.setattr(corpus_module, "MAX_FILE_BYTES", 2000)  # the real limit, scaled down
    with pytest.raises(WorkspaceError) as error:
        ingest(unchanged, "new-corpus", load_file(name, data), count)
    one_line(error.value)


def test_utf16_text_with_a_byte_order_mark_is_read_as_text():
    for encoding in ("utf-16", "utf-32"):
        [doc] = load_file("notes.txt", TEXT.encode(encoding))
        assert doc.text == TEXT


# -- pair files: core.documents.pairs.read_pairs_file, then import ----------------------------------
PAIR_FILES = [
    ("empty", "qa.csv", b""),
    ("binary", "qa.csv", b"\x00\x01\x02\xff" * 50),
    ("header only", "qa.csv", b"query,positive\n"),
    ("no usable columns", "qa.csv", b"a,b\nx,y\n"),
    ("cells all empty", "qa.csv", b"query,positive\n,\n ,\n"),
    ("JSON Lines cut mid-line", "qa.jsonl", b'{"query": "a?", "positive": "b"}\n{"query": "c'),
    ("JSON Lines of arrays", "qa.jsonl", b"[1, 2]\n[3, 4]\n"),
    ("nulls where text belongs", "qa.jsonl", b'{"query": null, "positive": null}\n'),
    ("truncated Parquet", "qa.parquet",
     parquet_bytes(pd.DataFrame({"query": ["a?"], "positive": ["b"]}))[:60]),
    ("Parquet with other columns", "qa.parquet",
     parquet_bytes(pd.DataFrame({"x": [1, 2], "y": [3.0, 4.0]}))),
    ("unsupported type", "qa.xlsx", b"PK\x03\x04"),
    ("path traversal", "../../qa.csv", b"query,positive\na?,b\n"),
    ("unicode path", "\u202e..\\vsc.csv", b"query,positive\na?,b\n"),
    ("huge-ish: over the size limit", "qa.csv", b"query,positive\n" + b"a?,b\n" * 500),
]


@pytest.mark.parametrize("what,name,data", PAIR_FILES, ids=[p[0] for p in PAIR_FILES])
def test_bad_pair_files_are_refused(unchanged, monkeypatch, what, name, data):
    monkeypatch.setattr(corpus_module, "MAX_FILE_BYTES", 2000)
    corpus_id = unchanged.corpus("bio").id
    with pytest.raises(WorkspaceError) as error:
        import_pairs(unchanged, corpus_id, "new set", read_pairs_file(name, data))
    one_line(error.value)


# -- BEIR folders --------------------------------------------------------------------------
GOOD_CORPUS = "".join(json.dumps({"_id": f"d{i}", "text": p}) + "\n" for i, p in enumerate(PARAGRAPHS))
GOOD_QUERIES = '{"_id": "q1", "text": "What do stomata do?"}\n'
GOOD_QRELS = "query-id\tcorpus-id\tscore\nq1\td2\t1\n"


def beir(**files: str | bytes | None) -> dict[str, str | bytes | None]:
    """A BEIR folder's files, the good ones replaced by any given (None: leave the file out)."""
    return {"corpus.jsonl": GOOD_CORPUS, "queries.jsonl": GOOD_QUERIES,
            "qrels/test.tsv": GOOD_QRELS, **files}


BEIR_FOLDERS = [
    ("no corpus.jsonl", beir(**{"corpus.jsonl": None})),
    ("no queries.jsonl", beir(**{"queries.jsonl": None})),
    ("no qrels", beir(**{"qrels/test.tsv": None})),
    ("empty corpus", beir(**{"corpus.jsonl": ""})),
    ("corpus line not JSON", beir(**{"corpus.jsonl": GOOD_CORPUS + "{broken\n"})),
    ("corpus line not an object", beir(**{"corpus.jsonl": "[1, 2]\n"})),
    ("corpus line without _id", beir(**{"corpus.jsonl": '{"text": "no id"}\n'})),
    ("text that is an object", beir(**{"corpus.jsonl": '{"_id": "a", "text": {"x": 1}}\n'})),
    ("corpus not UTF-8", beir(**{"corpus.jsonl": '{"_id": "a", "text": "Köln"}\n'.encode("latin-1")})),
    ("repeated query id", beir(**{"queries.jsonl": GOOD_QUERIES * 2})),
    ("score that is no number", beir(**{"qrels/test.tsv": GOOD_QRELS + "q1\td1\thigh\n"})),
    ("qrels with two columns", beir(**{"qrels/test.tsv": GOOD_QRELS + "q1\td1\n"})),
    ("qrels naming no passage", beir(**{"qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\tzz\t1\n"})),
    ("corpus.jsonl a link to /etc/passwd", beir(**{"corpus.jsonl": Path("/etc/passwd")})),
]


@pytest.mark.parametrize("what,files", BEIR_FOLDERS, ids=[b[0] for b in BEIR_FOLDERS])
def test_bad_beir_folders_are_refused(unchanged, count, tmp_path, what, files):
    for relative, content in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            path.symlink_to(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif content is not None:
            path.write_bytes(content)
    with pytest.raises(WorkspaceError) as error:
        import_beir(unchanged, tmp_path, "beir-corpus", count)
    one_line(error.value)


def test_a_bad_qrels_score_names_the_file_and_line(unchanged, count, tmp_path):
    for relative, content in beir(**{"qrels/test.tsv": GOOD_QRELS + "q1\td1\thigh\n"}).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content)
    with pytest.raises(WorkspaceError, match=r"test\.tsv line 3: the score 'high'"):
        import_beir(unchanged, tmp_path, "beir-corpus", count)


# -- BEIR uploads: a zip of the folder or its files, read in memory ------------------------
def zipped(files: dict[str, str | bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buffer.getvalue()


def good_beir_zip(top: str = "scifact/") -> bytes:
    return zipped({top + name: content for name, content in beir().items()})


def patched(data: bytes, edit) -> bytes:
    """A zip with its (single) entry's local and central headers edited in place."""
    data = bytearray(data)
    edit(data, data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02"))
    return bytes(data)


def encrypted(data: bytes) -> bytes:
    """Mark the entry as encrypted, as a password-protected zip does (zipfile cannot write one)."""
    def edit(d, local, central):
        d[local + 6] |= 1
        d[central + 8] |= 1
    return patched(data, edit)


def understated(data: bytes) -> bytes:
    """Declare a smaller uncompressed size than the entry really has."""
    def edit(d, local, central):
        d[local + 22:local + 26] = d[central + 24:central + 28] = (10).to_bytes(4, "little")
    return patched(data, edit)


BIG_CORPUS = "".join(json.dumps({"_id": f"d{i}", "text": "word " * 40}) + "\n" for i in range(30))
BEIR_UPLOADS = [
    ("nothing uploaded", []),
    ("not a zip", [("scifact.zip", b"this is plain text, not a zip archive")]),
    ("empty file named .zip", [("scifact.zip", b"")]),
    ("truncated zip", [("scifact.zip", good_beir_zip()[:200])]),
    ("empty zip", [("scifact.zip", zipped({}))]),
    ("zip without queries.jsonl",
     [("s.zip", zipped({"s/corpus.jsonl": GOOD_CORPUS, "s/qrels/test.tsv": GOOD_QRELS}))]),
    ("zip without qrels",
     [("s.zip", zipped({"corpus.jsonl": GOOD_CORPUS, "queries.jsonl": GOOD_QUERIES}))]),
    ("password-protected zip", [("s.zip", encrypted(zipped({"corpus.jsonl": GOOD_CORPUS})))]),
    ("declared size smaller than the content",
     [("s.zip", understated(zipped({"corpus.jsonl": GOOD_CORPUS})))]),
    ("zip bomb: unpacks over the limit",
     [("s.zip", zipped({**beir(), "corpus.jsonl": BIG_CORPUS}))]),
    ("entry climbing out with ..", [("s.zip", zipped({"../corpus.jsonl": GOOD_CORPUS, **beir()}))]),
    ("absolute entry name", [("s.zip", zipped({"/etc/corpus.jsonl": GOOD_CORPUS}))]),
    ("windows entry climbing out", [("s.zip", zipped({"..\\..\\corpus.jsonl": GOOD_CORPUS}))]),
    ("two BEIR folders in one zip",
     [("s.zip", zipped({**{"a/" + k: v for k, v in beir().items()},
                        **{"b/" + k: v for k, v in beir().items()}}))]),
    ("folder nested too deep", [("s.zip", zipped({"a/b/" + k: v for k, v in beir().items()}))]),
    ("bad score inside the zip",
     [("s.zip", zipped(beir(**{"qrels/test.tsv": GOOD_QRELS + "q1\td1\thigh\n"})))]),
    ("corpus not UTF-8 inside the zip",
     [("s.zip", zipped(beir(**{"corpus.jsonl": '{"_id": "a", "text": "Köln"}\n'.encode("latin-1")})))]),
    ("zip and loose files together", [("s.zip", good_beir_zip()), ("queries.jsonl", GOOD_QUERIES.encode())]),
    ("loose file that is no BEIR file", [("corpus.jsonl", GOOD_CORPUS.encode()),
                                         ("passwords.txt", b"secret")]),
    ("loose file with a path for a name", [("../corpus.jsonl", GOOD_CORPUS.encode())]),
    ("loose files without qrels", [("corpus.jsonl", GOOD_CORPUS.encode()),
                                   ("queries.jsonl", GOOD_QUERIES.encode())]),
    ("the same file twice", [("corpus.jsonl", b"{}"), ("corpus.jsonl", b"{}")]),
]


@pytest.mark.parametrize("what,uploads", BEIR_UPLOADS, ids=[b[0] for b in BEIR_UPLOADS])
def test_bad_beir_uploads_are_refused(unchanged, count, monkeypatch, what, uploads):
    monkeypatch.setattr(corpus_module, "MAX_FILE_BYTES", 4000)  # the real limit, scaled down
    with pytest.raises(WorkspaceError) as error:
        files = upload_files(uploads)
        import_beir(unchanged, parse_beir(files, "the upload"), "beir-upload", count)
    one_line(error.value)


def test_randomly_damaged_zips_are_refused_in_one_line():
    """Bytes flipped, cut out or inserted anywhere in a good zip: parsed or refused, never a
    traceback (zipfile raises many types for damaged data)."""
    import random
    rng = random.Random(7)
    good = good_beir_zip()
    for _ in range(1000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            if rng.random() < 0.6:
                data[at] = rng.randrange(256)
            elif rng.random() < 0.5:
                del data[at:at + rng.randint(1, 20)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 8))
        try:
            parse_beir(upload_files([("damaged.zip", bytes(data))]), "the upload")
        except WorkspaceError as error:
            one_line(error)


@pytest.mark.parametrize("uploads", [
    [("scifact.zip", zipped({**{"scifact/" + k: v for k, v in beir().items()},
                             "__MACOSX/scifact/._corpus.jsonl": b"\x00\x05",
                             "scifact/.DS_Store": b"\x00", "scifact/notes.txt": "ignored"}))],
    [("flat.zip", zipped(beir(), zipfile.ZIP_STORED))],
    [("corpus.jsonl", GOOD_CORPUS.encode()), ("queries.jsonl", GOOD_QUERIES.encode()),
     ("test.tsv", GOOD_QRELS.encode())],
], ids=["zip of a folder made on a Mac", "zip of the files", "loose files"])
def test_a_beir_upload_is_imported_like_the_folder(store, count, uploads):
    data = parse_beir(upload_files(uploads), "the upload")
    assert data.summary() == "passages: 3 · queries: 1 · relevance labels: 1 in test"
    report, [pair_set_id] = import_beir(store, data, "scifact", count)
    assert report.documents == 3
    [pair] = store.pairs(pair_set_id)
    assert pair["query"] == "What do stomata do?" and pair["positive"].startswith("Stomata")


# -- job configs: core.training.jobs.submit ----------------------------------------------------------
def demo_set(store: Store) -> int:
    return store.pair_sets(store.corpus("python-stdlib-docs").id)[0].id


JOB_CONFIGS = [
    ("unknown kind", "bake", lambda s: {}),
    ("not an object", "train", lambda s: [1, 2]),
    ("unknown setting", "train", lambda s: {"pair_set_id": demo_set(s), "epoch": 1}),
    ("no pair set", "train", lambda s: {}),
    ("missing pair set", "train", lambda s: {"pair_set_id": 999}),
    ("pair set id as text", "train", lambda s: {"pair_set_id": "1"}),
    ("unsplit pair set", "train",
     lambda s: {"pair_set_id": s.pair_sets(s.corpus("bio").id)[0].id}),
    ("batch size as text", "train", lambda s: {"pair_set_id": demo_set(s), "batch_size": "big"}),
    ("zero epochs", "train", lambda s: {"pair_set_id": demo_set(s), "epochs": 0}),
    ("dims not numbers", "train", lambda s: {"pair_set_id": demo_set(s), "dims": ["a"]}),
    ("dims above the model", "train", lambda s: {"pair_set_id": demo_set(s), "dims": [4096]}),
    ("unknown loss", "train", lambda s: {"pair_set_id": demo_set(s), "loss": "triplet"}),
    ("resume smuggled in", "train", lambda s: {"pair_set_id": demo_set(s), "resume": True}),
]


@pytest.mark.parametrize("what,kind,config", JOB_CONFIGS, ids=[j[0] for j in JOB_CONFIGS])
def test_bad_job_configs_are_refused_before_anything_is_queued(unchanged, what, kind, config):
    with pytest.raises(WorkspaceError) as error:
        jobs.submit(unchanged, kind, config(unchanged))
    one_line(error.value)


# -- the command line ------------------------------------------------------------------------
def cli(store: Store, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAGTUNE_HOME": str(store.home)}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def write(path: Path, content: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


CLI_CASES = [
    ("split of a missing pair set", lambda t, s: ["pairs", "split", "999"], "no pair set 999"),
    ("export of a missing pair set",
     lambda t, s: ["pairs", "export", "999", "--output", str(t / "out.jsonl")], "no pair set 999"),
    ("export of a split that is empty",
     lambda t, s: ["pairs", "export", str(s.pair_sets(s.corpus("bio").id)[0].id), "--split",
                   "test", "--output", str(t / "out.jsonl")], "has no test pairs"),
    ("test fraction leaving nothing to train",
     lambda t, s: ["pairs", "split", str(s.pair_sets(s.corpus("bio").id)[0].id),
                   "--test-fraction", "0.999"], "leaves none of the 3 pairs for training"),
    ("test fraction out of range",
     lambda t, s: ["pairs", "split", "1", "--test-fraction", "1.5"], "between 0 and 1"),
    ("negative questions per chunk",
     lambda t, s: ["pairs", "generate", "--corpus", "bio", "--per-chunk", "-1"], "--per-chunk"),
    ("split of a pair set id beyond 64 bits", lambda t, s: ["pairs", "split", "9" * 30],
     "out of range; use 1 to 2**63-1"),
    ("export of a pair set id beyond 64 bits",
     lambda t, s: ["pairs", "export", "9" * 30, "--output", str(t / "out.jsonl")], "out of range"),
    ("split with a negative seed", lambda t, s: ["pairs", "split", "1", "--seed", "-1"],
     "--seed: -1 is out of range"),
    ("generate with a seed beyond 2**32",
     lambda t, s: ["pairs", "generate", "--corpus", "bio", "--seed", str(2**32)], "out of range"),
    ("split with a test fraction that is not a number",
     lambda t, s: ["pairs", "split", "1", "--test-fraction", "nan"], "between 0 and 1"),
    ("zero concurrency",
     lambda t, s: ["pairs", "generate", "--corpus", "bio", "--method", "llm",
                   "--concurrency", "0"], "concurrency"),
    ("generate for a missing corpus",
     lambda t, s: ["pairs", "generate", "--corpus", "nope"], "no corpus 'nope'"),
    ("pairs list of a missing corpus",
     lambda t, s: ["pairs", "list", "--corpus", "nope"], "no corpus 'nope'"),
    ("ingest of a missing path", lambda t, s: ["corpus", "ingest", str(t / "missing.pdf")], "does not exist"),
    ("ingest of a binary file",
     lambda t, s: ["corpus", "ingest", write(t / "photo.txt", b"\x00\x01binary")], "binary"),
    ("ingest with a tiny chunk size",
     lambda t, s: ["corpus", "ingest", write(t / "a.txt", TEXT), "--chunk-size", "5"], "out of range"),
    ("ingest of a BEIR folder with a bad score",
     lambda t, s: ["corpus", "ingest", str(Path(write(t / "b" / "corpus.jsonl", GOOD_CORPUS)).parent),
                   "--corpus", "b"] if write(t / "b" / "queries.jsonl", GOOD_QUERIES)
     and write(t / "b" / "qrels" / "test.tsv", GOOD_QRELS + "q1\td1\thigh\n") else [],
     "test.tsv line 3"),
    ("import of a pairs file without columns",
     lambda t, s: ["pairs", "import", write(t / "qa.csv", "a,b\nx,y\n"), "--corpus", "bio"],
     "no query column"),
    ("BEIR export of a missing pair set",
     lambda t, s: ["pairs", "export", "999", "--beir", str(t / "beir")], "no pair set 999"),
]


@pytest.mark.parametrize("what,args,message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_cli_arguments_fail_in_one_line(unchanged, tmp_path, what, args, message):
    before = set(tmp_path.rglob("*"))
    result = cli(unchanged, *args(tmp_path, unchanged))
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not {p for p in set(tmp_path.rglob("*")) - before if p.suffix == ".jsonl"
                and "out" in p.name}, "an output file was written"


def test_the_pairs_list_the_errors_point_at_exists(unchanged):
    split_set = demo_set(unchanged)
    listing = json.loads(cli(unchanged, "pairs", "list", "--json").stdout.splitlines()[-1])
    by_id = {s["id"]: s for s in listing["pair_sets"]}
    assert by_id[split_set]["corpus"] == "python-stdlib-docs"
    assert set(by_id[split_set]["split"]) == {"train", "test"}
    bio = json.loads(cli(unchanged, "pairs", "list", "--corpus", "bio", "--json")
                     .stdout.splitlines()[-1])
    assert [s["name"] for s in bio["pair_sets"]] == ["unsplit"]
    everything = json.loads(cli(unchanged, "list", "--json").stdout.splitlines()[-1])
    assert {c["name"] for c in everything["corpora"]} == {"python-stdlib-docs", "bio"}
    assert len(everything["pair_sets"]) == 2 and everything["jobs"] == []
    text = cli(unchanged, "list").stdout
    assert "pair set" in text and "unsplit" in text


def test_two_ingests_of_the_same_new_corpus_one_wins_one_is_told(home, count):
    import threading
    first_inside, release = threading.Event(), threading.Event()

    def slow_count(texts):
        """The real counter, pausing the first ingest inside its transaction."""
        first_inside.set()
        release.wait(30)
        return count(texts)

    outcome = {}

    def ingest_as(who: str, text: str, counter) -> None:
        try:
            outcome[who] = ingest(Store(home), "same", [Document(f"{who}.md", "text", text)],
                                  counter).chunks
        except WorkspaceError as error:
            outcome[who] = one_line(error)

    thread = threading.Thread(target=ingest_as, args=("first", PARAGRAPHS[0], slow_count))
    thread.start()
    assert first_inside.wait(30)
    # The second ingest also sees no corpus "same" yet; whichever stores second is told.
    threading.Timer(0.5, release.set).start()
    ingest_as("second", PARAGRAPHS[1], count)
    thread.join(30)
    assert sorted(map(str, outcome.values()))[0] == "1", outcome
    assert sum("already exists" in str(v) for v in outcome.values()) == 1, outcome
    assert [c.name for c in Store(home).corpora()] == ["same"]
    assert len(Store(home).chunks(Store(home).corpus("same").id)) == 1


# -- model folders ---------------------------------------------------------------------------
def copy_model(tmp_path: Path) -> Path:
    import shutil

    from core.workspace import models
    folder = tmp_path / "model"
    shutil.copytree(models.resolve(None), folder)
    return folder


MODEL_DAMAGE = [
    ("config.json missing", lambda f: (f / "config.json").unlink(), "no config.json"),
    ("config.json not JSON", lambda f: (f / "config.json").write_text("{oops"), "not a valid JSON"),
    ("config.json a list", lambda f: (f / "config.json").write_text("[1]"), "not a valid JSON"),
    ("weights missing", lambda f: (f / "model.safetensors").unlink(), "no weights"),
    ("weights truncated", lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64),
     "could not load model"),
]


@pytest.mark.parametrize("what,damage,message", MODEL_DAMAGE, ids=[m[0] for m in MODEL_DAMAGE])
def test_a_damaged_model_folder_is_one_line(tmp_path, what, damage, message):
    from core.workspace import models
    folder = copy_model(tmp_path)
    damage(folder)
    with pytest.raises(WorkspaceError, match=message) as error:
        models.load(str(folder))
    one_line(error.value)


def test_pickled_weights_load_only_when_the_server_allows_them(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from core.workspace import models
    folder = copy_model(tmp_path)
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")
    weights.unlink()
    monkeypatch.delenv(models.ALLOW_PICKLE, raising=False)
    with pytest.raises(WorkspaceError, match=r"only \*\.bin weights") as error:
        models.load(str(folder))
    assert models.ALLOW_PICKLE in one_line(error.value)
    monkeypatch.setenv(models.ALLOW_PICKLE, "1")
    pickled = models.load_fresh(str(folder), "cpu").encode(["a pickled model"])
    assert pickled == pytest.approx(models.load_fresh(None, "cpu").encode(["a pickled model"]),
                                    abs=1e-6)


def test_a_model_saved_again_into_the_same_folder_is_reloaded(tmp_path):
    from core.workspace import models
    folder = copy_model(tmp_path)
    first = models.load(str(folder))
    assert models.load(str(folder)) is first  # cached while the folder is unchanged
    first.save(str(folder))  # a new fine-tuning run writing the same output folder
    assert models.load(str(folder)) is not first


# -- an LLM that fails ----------------------------------------------------------------------
@pytest.fixture
def llm_corpus(home, count):
    store = Store(home)
    docs = [Document(f"d{i}.txt", "text", p) for i, p in enumerate(PARAGRAPHS)]
    return store, ingest(store, "plants", docs, count, ChunkSettings(64, 0)).corpus_id


def test_an_llm_failing_every_request_stores_nothing(llm_corpus):
    from core.documents.llm import LLMConfig, generate_llm
    from tests.llm_server import FakeLLM
    store, corpus_id = llm_corpus
    before = snapshot(store)
    server = FakeLLM(fail_first=1000, status=503)
    try:
        with pytest.raises(WorkspaceError, match="no answer"):
            generate_llm(store, corpus_id, "llm", LLMConfig(server.url, "m", max_retries=0))
    finally:
        server.close()
    with pytest.raises(WorkspaceError, match="is the server running"):  # nothing listens there
        generate_llm(store, corpus_id, "llm", LLMConfig(server.url, "m", max_retries=0))
    assert snapshot(store) == before and store.pair_sets(corpus_id) == []


def test_an_llm_failing_some_requests_reports_them(llm_corpus):
    from core.documents.llm import LLMConfig, generate_llm
    from tests.llm_server import FakeLLM
    store, corpus_id = llm_corpus
    server = FakeLLM(fail_first=1, status=503)
    try:  # one worker, no retries: the first chunk fails, the others succeed
        report = generate_llm(store, corpus_id, "llm",
                              LLMConfig(server.url, "m", concurrency=1, max_retries=0))
    finally:
        server.close()
    chunks = len(store.chunks(corpus_id))
    assert (report.done, report.failed) == (chunks - 1, 1)
    assert "HTTP 503" in report.first_error and "1 chunks failed" in report.summary()
    assert len({p["chunk_id"] for p in store.pairs(report.pair_set_id)}) == chunks - 1


def test_the_cli_exits_non_zero_when_llm_requests_failed(home, llm_corpus):
    from tests.llm_server import FakeLLM
    store, _ = llm_corpus
    server = FakeLLM(fail_first=4, status=503)  # the first chunk's request and its 3 retries
    try:
        result = cli(store, "pairs", "generate", "--corpus", "plants", "--method", "llm",
                     "--base-url", server.url, "--concurrency", "1", "--json")
    finally:
        server.close()
    assert result.returncode == 1 and "1 chunks failed" in result.stderr.splitlines()[-1]
    assert json.loads(result.stdout.splitlines()[-1])["pairs"] > 0  # what was made is kept


# -- pages: user text is shown as text; deleting asks first ---------------------------------
EVIL = "![i](http://127.0.0.1:8999/x)"


def test_escape_shows_markdown_and_html_as_text():
    from views.common import escape
    for text in (EVIL, "<img src=x onerror=alert(1)>", "**bold** _it_ `code` $x$ :smile:"):
        escaped = escape(text)
        assert not re.search(r"(?<!\\)[!\[\]()<>*_`$:]", escaped), escaped  # each one escaped
        assert escaped.replace("\\", "") == text  # nothing lost


def test_pages_show_user_names_as_text_not_markdown(home, count):
    from streamlit.testing.v1 import AppTest
    store = Store(home)
    corpus_id = ingest(store, EVIL, [Document(EVIL, "text", TEXT)], count).corpus_id
    import_pairs(store, corpus_id, EVIL, [(EVIL, PARAGRAPHS[0]), ("What else?", PARAGRAPHS[1])])
    for path in ("views/corpus.py", "views/pairs.py"):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.switch_page(path).run()
        assert not at.exception
        shown = [e.value for e in (*at.markdown, *at.caption, *at.warning, *at.success)]
        shown += [b.label for b in at.button] + [e.label for e in at.expander]
        assert shown and not [s for s in shown if "![i](" in str(s)], shown


def test_deleting_a_pair_set_asks_first(home, count):
    from streamlit.testing.v1 import AppTest
    store = Store(home)
    load_demo(store, count, limit=40)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("views/pairs.py").run()
    delete = next(b for b in at.button if b.label == "Delete this pair set")
    delete.click().run()
    assert len(store.pair_sets()) == 1  # not yet
    assert any("cannot be undone" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Yes, delete it").click().run()
    assert not at.exception and store.pair_sets() == []
