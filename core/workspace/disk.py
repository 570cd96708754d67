"""How much disk a workspace takes, and where: its database, the cached passage vectors inside
it, the fine-tuned models with their checkpoints, and everything else under RAGTUNE_HOME."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from core.workspace.store import Store
from core.workspace.wording import trimmed

PARTS = ("database", "models", "cached vectors", "other")


def human_bytes(n: float) -> str:
    """SI units, as disk makers and file managers count: 1 kB = 1000 bytes, 1 MB = 10⁶ bytes;
    at most one decimal and none that is zero ("384 MB", "1.5 GB"), as ``trimmed`` writes it.

    Example::

        >>> human_bytes(384_000_000), human_bytes(1_536_000_000), human_bytes(999)
        ('384 MB', '1.5 GB', '999 B')
    """
    for unit in ("B", "kB", "MB", "GB"):
        if round(n, 1) < 1000:
            return f"{trimmed(n, 0 if unit == 'B' else 1)} {unit}"
        n /= 1000
    return f"{trimmed(n)} TB"


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (links not followed); 0 if it is no folder."""
    if not path.is_dir():
        return 0
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


@dataclass
class WorkspaceSize:
    database: int  # the SQLite files, without the cached vectors
    models: int  # fine-tuning runs: models and checkpoints
    cached_vectors: int  # passage vectors kept in the database to skip re-encoding
    other: int

    @property
    def total(self) -> int:
        return self.database + self.models + self.cached_vectors + self.other

    def parts(self) -> dict[str, int]:
        return dict(zip(PARTS, (self.database, self.models, self.cached_vectors, self.other)))

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, **asdict(self)}

    def summary(self) -> str:
        return (f"{human_bytes(self.total)} ("
                + ", ".join(f"{name} {human_bytes(n)}" for name, n in self.parts().items()) + ")")


def workspace_size(store: Store) -> WorkspaceSize:
    """The workspace's bytes on disk, split by what holds them.

    Cached vectors live in the database; their share is the pages of their table, so the
    database part is the SQLite files (with the write-ahead log) less those.
    """
    total = folder_bytes(store.home)
    sqlite = sum(p.lstat().st_size for p in store.home.glob(store.path.name + "*") if p.is_file())
    models = folder_bytes(store.files / "jobs")
    vectors = min(store.vector_table_bytes(), sqlite)
    return WorkspaceSize(sqlite - vectors, models, vectors, max(total - sqlite - models, 0))
