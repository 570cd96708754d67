"""The command line, run as a user runs it: a subprocess on a workspace folder."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import PARAGRAPHS, ROOT, pdf_bytes


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAGTUNE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def last_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_ingest_pairs_split_and_export_from_the_shell(tmp_path):
    home = tmp_path / "ws"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "plants.md").write_text("# Plants\n\n" + "\n\n".join(PARAGRAPHS))
    (docs / "report.pdf").write_bytes(pdf_bytes(["Roots anchor the plant and take up water. "
                                                 "Root hairs widen the surface for absorption."]))
    out = last_json(cli(home, "corpus", "ingest", str(docs), "--corpus", "bio", "--chunk-size", "64",
                        "--overlap", "0", "--json"))
    assert out["documents"] == 2 and out["chunks"] >= 2
    pairs_file = tmp_path / "qa.jsonl"
    pd.DataFrame({"anchor": ["What do stomata do?"], "positive": [PARAGRAPHS[2]]}).to_json(
        pairs_file, orient="records", lines=True)
    imported = last_json(cli(home, "pairs", "import", str(pairs_file), "--corpus", "bio", "--json"))
    assert imported["pairs"] == 1
    generated = last_json(cli(home, "pairs", "generate", "--corpus", "bio", "--json"))
    split = last_json(cli(home, "pairs", "split", str(generated["pair_set_id"]),
                          "--test-fraction", "0.3", "--json"))
    assert split["train"] > 0 and split["test"] > 0
    counts = last_json(cli(home, "pairs", "export", str(generated["pair_set_id"]), "--beir",
                           str(tmp_path / "beir"), "--json"))
    assert (tmp_path / "beir" / "qrels" / "test.tsv").is_file()
    # The exported folder imports again as a labelled corpus.
    again = last_json(cli(home, "corpus", "ingest", str(tmp_path / "beir"), "--corpus", "bio-beir", "--json"))
    assert again["chunks"] == counts["corpus"] and len(again["pair_sets"]) == 2
    # So does the folder zipped, as a file manager zips it (inside one top folder).
    archive = shutil.make_archive(str(tmp_path / "bio-beir"), "zip", tmp_path, "beir")
    zipped = last_json(cli(home, "corpus", "ingest", archive, "--corpus", "bio-zip", "--json"))
    assert zipped["chunks"] == counts["corpus"] and len(zipped["pair_sets"]) == 2


def test_errors_are_one_line_on_stderr_with_a_nonzero_exit(tmp_path):
    bad = tmp_path / "photo.txt"
    bad.write_bytes(b"\x00\x01binary")
    for args in (["corpus", "ingest", str(bad)], ["corpus", "ingest", str(tmp_path / "missing.pdf")],
                 ["pairs", "split", "99"], ["pairs", "generate", "--corpus", "nope"]):
        result = cli(tmp_path / "ws", *args)
        assert result.returncode == 1
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_every_command_has_help(tmp_path):
    for args in (["--help"], ["corpus", "ingest", "--help"], ["pairs", "import", "--help"], ["runs", "--help"]):
        result = cli(tmp_path, *args)
        assert result.returncode == 0 and "usage:" in result.stdout
