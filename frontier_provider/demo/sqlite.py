"""Writing the demo's SQLite files: whole or not at all."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path


def write_sqlite(path: Path, write: Callable[[sqlite3.Connection], None]) -> None:
    """Build a database under a temporary name with ``write``, then replace ``path`` with it.

    A reader never sees a half-written file, and a rebuild gives a fresh file rather
    than adding tables to the old one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    database = sqlite3.connect(partial)
    try:
        with database:
            write(database)
    finally:
        database.close()
    os.replace(partial, path)
