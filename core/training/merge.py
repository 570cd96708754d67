"""Merge a fine-tuned model back with its base: θ(α) = (1 − α)·θ_base + α·θ_tuned.

Fine-tuning on one corpus can cost retrieval elsewhere. Interpolating the weights of the tuned
model with those of the model it started from (WiSE-FT, Wortsman et al., CVPR 2022; for
embedding models LM-Cocktail, Xiao et al., 2023) keeps most of the in-domain gain and recovers
most of what was lost outside it, at no training cost: α = 0 is the base model, α = 1 the
fine-tuned one.

Only the layers the two models share are interpolated, so both must have the same architecture
(the same modules, parameter names and shapes). A fine-tuned run may have a corpus-fitted
rotation folded in after training (``core.training.rotate``: a ``Dense`` and a ``Normalize``
appended to the model); it is not part of the training, so the merge leaves it out of the
interpolation and applies it after the merged layers, as the run does.

The merged model is saved as a normal sentence-transformers folder with a ``ragtune.json`` that
records α and both models.

Example::

    model = merged("all-MiniLM-L6-v2", "workspace/files/jobs/3/model", 0.5)   # a SentenceTransformer
    save_merged("all-MiniLM-L6-v2", "workspace/files/jobs/3/model", 0.5, Path("merged"))
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

from core.workspace import models
from core.workspace.errors import WorkspaceError

log = logging.getLogger(__name__)
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the grid a fine-tune scores (core.training.forgetting)
TUNED_FOLDER = "tuned"  # beside a run's model: its trained weights, once a merge took their place


def tuned_path(model_path: Path) -> Path:
    """Where a run's trained weights are: ``tuned`` beside its model where a merge was kept,
    else the model itself."""
    beside = Path(model_path).with_name(TUNED_FOLDER)
    return beside if beside.is_dir() else Path(model_path)


def check_alpha(alpha) -> float:
    """α as a float in [0, 1], or one line saying what is wrong with it."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise WorkspaceError(f"alpha must be a number from 0 (the base model) to 1 (the "
                             f"fine-tuned one), not {alpha!r}") from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise WorkspaceError(f"alpha must be from 0 (the base model) to 1 (the fine-tuned one), "
                             f"not {alpha}")
    return value


def _is_rotation(modules: list) -> bool:
    """Whether extra modules after the shared ones are a folded rotation: Dense then Normalize."""
    names = [type(m).__name__ for m in modules]
    return names == ["Dense", "Normalize"]


def shared_modules(base, tuned, base_name: str, tuned_name: str) -> int:
    """How many leading modules the two models share, refused in one line where the two do not
    have one architecture: different modules, parameter names or shapes."""
    differ = (f"{base_name} and {tuned_name} have different architectures, so their weights "
              "cannot be interpolated; merge a fine-tuned model with the model it was trained from")
    n = len(base)
    if len(tuned) < n or (len(tuned) > n and not _is_rotation(list(tuned)[n:])):
        raise WorkspaceError(differ)
    for b, t in zip(list(base)[:n], list(tuned)[:n]):
        if type(b) is not type(t):
            raise WorkspaceError(differ)
        bs, ts = b.state_dict(), t.state_dict()
        if bs.keys() != ts.keys() or any(bs[k].shape != ts[k].shape for k in bs):
            raise WorkspaceError(differ)
    return n


def interpolate(base, tuned, alpha: float, base_name: str = "the base model",
                tuned_name: str = "the fine-tuned model"):
    """``tuned`` with its shared layers set to ``(1 − α)·base + α·tuned`` (changed in place and
    returned); a folded rotation after them is kept as it is, so it applies after the merge.

    The formula, not ``base + α·(tuned − base)``, so α = 0 and α = 1 give each model's weights
    exactly. Integer buffers (position ids) are the same in both and are left alone.
    """
    import torch
    alpha = check_alpha(alpha)
    n = shared_modules(base, tuned, base_name, tuned_name)
    with torch.no_grad():
        for b, t in zip(list(base)[:n], list(tuned)[:n]):
            merged = {}
            base_state = b.state_dict()
            for key, value in t.state_dict().items():
                if value.is_floating_point():
                    other = base_state[key].to(value.device, value.dtype)
                    merged[key] = (1.0 - alpha) * other + alpha * value
            t.load_state_dict(merged, strict=False)
    return tuned


def _load(name: str | None, role: str, device: str | None):
    try:
        return models.load_fresh(name, device)
    except WorkspaceError as e:
        raise WorkspaceError(f"{role} {name or models.DEFAULT_MODEL} cannot be loaded: {e}") from None


def merged(base_name: str | None, tuned_path: str | Path, alpha: float, device: str | None = None):
    """The interpolated model, in memory on ``device`` (by default the one models use); nothing
    is written."""
    alpha = check_alpha(alpha)
    base = _load(base_name, "the base model", "cpu")  # read once, on the CPU, whatever the device
    tuned = _load(str(tuned_path), "the fine-tuned model", device)
    return interpolate(base, tuned, alpha, base_name or models.DEFAULT_MODEL, str(tuned_path))


def save_merged(base_name: str | None, tuned_path: str | Path, alpha: float, out: Path,
                details: dict | None = None) -> Path:
    """Save θ(α) to ``out`` as a sentence-transformers folder (replaced atomically); every
    check runs before anything is written."""
    from core.training.checkpoints import save_model
    model = merged(base_name, tuned_path, alpha, "cpu")
    save_model(model, Path(out), {**(details or {}), "merge": {
        "alpha": check_alpha(alpha), "base_model": base_name or models.DEFAULT_MODEL,
        "tuned_model": str(tuned_path)}})
    log.info("saved the merge at alpha %.2f of %s and %s to %s", alpha, base_name, tuned_path, out)
    return Path(out)
