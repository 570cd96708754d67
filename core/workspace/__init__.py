"""The workspace: the SQLite store (the one source of truth), its errors, disk and file rules,
the words numbers are written in, and the embedding models it can load. The lowest layer:
it imports nothing else from core."""
