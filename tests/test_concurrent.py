"""Several processes writing one workspace at once, as a team and its jobs do: no writer starves
another, and two loads of the same thing end with it loaded once."""
import json
import os
import subprocess
import sys

from core.beir import DEMO_CORPUS
from core.store import Store
from tests.conftest import ROOT


def test_two_demo_loads_at_once_on_a_fresh_workspace_both_succeed(home):
    # Two `make run` at once: the second used to fail with "no chunks left".
    env = {**os.environ, "RAGTUNE_HOME": str(home)}
    loads = [subprocess.Popen([sys.executable, "-m", "core", "demo", "--limit", "40", "--json"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in loads]
    assert [rc for rc, _, _ in results] == [0, 0], [err for _, _, err in results]
    said = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
    assert said[0] == said[1]
    store = Store(home)
    assert [c.name for c in store.corpora()] == [DEMO_CORPUS] and len(store.pair_sets()) == 1
