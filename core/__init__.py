"""ragtune's logic: everything the pages and the CLI do, with no Streamlit in it."""
import os

# Progress bars from the model libraries would spam logs and pages; ragtune reports its own.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
