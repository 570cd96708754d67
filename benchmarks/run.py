"""Run every benchmark; each prints ratios measured side by side in this one run."""
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for name in sys.argv[1:] or ["eval_speed", "train_speed"]:
    print(f"== {name}")
    runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")
