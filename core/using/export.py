"""Hand a fine-tuned model and its results to whoever builds the RAG system.

The model leaves as a zip of its sentence-transformers folder (weights, tokenizer, the model
card README.md and ragtune.json saying how it was trained), which
``SentenceTransformer(folder)`` loads as it is. Results leave as CSV or JSON. The snippets show
the three usual ways to load it at a chosen Matryoshka dimension. Pushing to the Hugging Face
Hub is optional: the token is used for that one call and never written anywhere.
"""
from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.measuring.evaluate import METRICS
from core.using.runs import MODEL_RUNS, Run, get_run
from core.workspace.errors import WorkspaceError
from core.workspace.outputs import check_file_target, output_file
from core.workspace.store import Store

log = logging.getLogger(__name__)
# Weights hardly compress; storing them keeps a 90 MB zip from taking seconds of CPU.
_STORED_SUFFIXES = {".safetensors", ".bin", ".pt", ".onnx"}


def model_folder(store: Store, run_id: str) -> tuple[Run, Path]:
    """The run and the folder of the model it produced."""
    run = get_run(store, run_id)
    if run.kind not in MODEL_RUNS:
        raise WorkspaceError(f"run {run.id} is an evaluation of {run.model}, not a fine-tuning "
                             "run; pick a fine-tune or documents-only run (python -m core runs list)")
    if not run.model_path:
        raise WorkspaceError(f"run {run.id} has no saved model ({run.state}); export a run "
                             "that finished")
    folder = Path(run.model_path)
    check_loads(run, folder)
    return run, folder


def check_loads(run: Run, folder: Path) -> None:
    """Load the model as whoever receives it will, so a folder missing its weights (or with
    broken ones) is refused before anything is written or uploaded."""
    from sentence_transformers import SentenceTransformer
    try:
        SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    except Exception as e:  # transformers raises OSError, ValueError, safetensors' own errors…
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise WorkspaceError(f"the model of run {run.id} in {folder} does not load ({first}); "
                             "nothing was written: resume or re-run the job to save it again"
                             ) from None


def zip_name(run: Run) -> str:
    return f"ragtune-{run.id}"


def write_zip(folder: Path, target: io.BufferedIOBase | Path | str, root: str) -> int:
    """Zip a model folder under the top-level folder ``root``; returns the number of files."""
    files = sorted(f for f in folder.rglob("*") if f.is_file())
    with zipfile.ZipFile(target, "w") as archive:
        for f in files:
            method = zipfile.ZIP_STORED if f.suffix in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
            archive.write(f, f"{root}/{f.relative_to(folder).as_posix()}", compress_type=method)
    return len(files)


def model_zip_bytes(store: Store, run_id: str) -> tuple[str, bytes]:
    """(file name, zip bytes) of a fine-tuned model, for a download button."""
    run, folder = model_folder(store, run_id)
    buffer = io.BytesIO()
    write_zip(folder, buffer, zip_name(run))
    return f"{zip_name(run)}.zip", buffer.getvalue()


def export_model(store: Store, run_id: str, output: Path) -> int:
    """Write a fine-tuned model as a zip file; returns the number of files in it."""
    check_file_target(output, "model.zip")  # before the model is loaded to check it
    run, folder = model_folder(store, run_id)
    with output_file(output, "model.zip") as partial:  # a half-written zip never looks finished
        return write_zip(folder, partial, zip_name(run))


# -- results -------------------------------------------------------------------------------
def results_csv(runs: list[Run]) -> str:
    """One row per run and dimension with every metric, for spreadsheets; a fine-tune's merge α
    and its general-set NDCG@10 at full size repeat on each of its rows."""
    import pandas as pd
    rows = [{"run": r.id, "name": r.name, "kind": r.kind, "model": r.model,
             "pair set": r.pair_set, "corpus": r.corpus, "dim": d,
             **{m: metrics[m] for m in METRICS if m in metrics},
             "alpha": r.alpha, "general ndcg@10": r.general}
            for r in runs for d, metrics in sorted(r.metrics.items(), reverse=True)]
    return pd.DataFrame(rows).to_csv(index=False)


def results_json(runs: list[Run]) -> str:
    return json.dumps({"runs": [r.to_json() for r in runs]}, indent=2)


# -- snippets ------------------------------------------------------------------------------
@dataclass
class Snippet:
    library: str
    install: str
    code: str


def snippets(path: str, dim: int, query_prompt: str | None = None,
             document_prompt: str | None = None) -> list[Snippet]:
    """Ready-to-paste code loading the model at ``dim`` dimensions, encoding questions and
    passages with the model's own prompts (``models.role_prompt``) as ragtune measured it.

    Truncated vectors are not unit length, so each snippet normalises them: cosine and dot
    product then agree, whichever the vector store uses.
    """
    where = json.dumps(path)
    prompts = {"prompt": query_prompt}, {"prompt": document_prompt}
    query_kwargs, document_kwargs = ({k: v for k, v in p.items() if v} for p in prompts)
    instructions = "".join(f", {name}={json.dumps(p)}" for name, p in
                           (("query_instruction", query_prompt), ("text_instruction", document_prompt)) if p)
    return [
        Snippet("sentence-transformers", "pip install sentence-transformers",
                "from sentence_transformers import SentenceTransformer\n\n"
                f"model = SentenceTransformer({where}, truncate_dim={dim})\n"
                "# encode_query / encode_document add the prompts the model was configured with\n"
                "passages = model.encode_document([\"your passage\"], normalize_embeddings=True)\n"
                "question = model.encode_query([\"your question\"], normalize_embeddings=True)\n"
                f"assert passages.shape[1] == question.shape[1] == {dim}"),
        Snippet("LangChain", "pip install langchain-huggingface",
                "from langchain_huggingface import HuggingFaceEmbeddings\n\n"
                f"embeddings = HuggingFaceEmbeddings(\n    model_name={where},\n"
                f"    model_kwargs={{\"truncate_dim\": {dim}}},\n"
                f"    encode_kwargs={ {'normalize_embeddings': True, **document_kwargs}!r},\n"
                f"    query_encode_kwargs={ {'normalize_embeddings': True, **query_kwargs}!r},\n)\n"
                "vector = embeddings.embed_query(\"your question\")"),
        Snippet("LlamaIndex", "pip install llama-index-embeddings-huggingface",
                "from llama_index.embeddings.huggingface import HuggingFaceEmbedding\n\n"
                "# extra keyword arguments go to SentenceTransformer, truncate_dim among them\n"
                f"embed_model = HuggingFaceEmbedding(model_name={where}, truncate_dim={dim}"
                f"{instructions})\n"
                "vector = embed_model.get_query_embedding(\"your question\")"),
    ]


# -- Hugging Face Hub ------------------------------------------------------------------------
def push_to_hub(store: Store, run_id: str, repo_id: str, token: str, private: bool = True) -> str:
    """Upload a fine-tuned model folder to the Hub; returns the model's URL.

    The token is passed to this one upload and kept nowhere.
    """
    from core.workspace import models
    _, folder = model_folder(store, run_id)
    if not token.strip():
        raise WorkspaceError("no Hugging Face token given; paste a write token to push")
    if "/" not in repo_id.strip() or repo_id.count("/") > 1:
        raise WorkspaceError(f"{repo_id!r} is not a Hub repository id; use user/model-name")
    if not models.hub_reachable():
        raise WorkspaceError("the Hugging Face Hub is not reachable from here (offline); "
                             "download the zip and upload it from a connected machine")
    from huggingface_hub import HfApi
    api = HfApi(token=token.strip())
    try:
        api.create_repo(repo_id.strip(), private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id.strip(),
                          commit_message="Upload a model fine-tuned with ragtune")
    except Exception as e:  # the hub client raises many types: auth, permissions, network
        raise WorkspaceError(f"the Hub refused the upload ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:150] if str(e) else ''}); check the "
                             "token has write access and the repository name") from None
    return f"https://huggingface.co/{repo_id.strip()}"
