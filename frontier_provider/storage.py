"""The staging area: where close tasks hand data to each other.

Large data never travels through XCom. Each task writes its outputs under a
staging root, an ``ObjectStoragePath`` (a local folder by default, ``s3://``
or ``gs://`` when workers run on many machines), in a layout keyed by dataset,
period and entity::

    <root>/gl_balances/period=2024-12/entity=SAP-1000/part-0.parquet
    <root>/trial_balance/period=2024-12/entity=SAP-1000.parquet
    <root>/statements/period=2024-12/entity=SAP-1000.json
    <root>/analysis/period=2024-12/entity=SAP-1000.json

A file that covers the whole period, or a whole batch of it, rather than one
entity is named without ``entity=``, so no reader takes it for an entity's::

    <root>/tableau/period=2024-12/frontier_analysis.hyper
    <root>/salesforce_writeback/period=2024-12/salesforce_writeback.json
    <root>/customer_portfolio/period=2024-12/as-of-2024-12-30.json

Every write goes to a temporary name first and is then renamed over the final
name, so a reader never sees half a file and a rerun replaces exactly its own
outputs.

When workers run on several machines, the root is on object storage that all of
them reach, with the Airflow connection of the store as the user part of the URL:
``FRONTIER_STAGING_ROOT=s3://<conn_id>@<bucket>/<prefix>`` (the ``s3`` extra
installs the amazon provider and s3fs). Paths keep their connection when they go
through XCom as text (``str(path)``, then :func:`staged_path`), and a connection
that does not exist fails the task naming it, rather than letting the store fall
back to whatever credentials the machine has.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from frontier_provider.failures import Category

if TYPE_CHECKING:
    import pyarrow as pa

STAGING_ROOT_ENV = "FRONTIER_STAGING_ROOT"
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SUFFIX_PATTERN = re.compile(r"^(\.[A-Za-z0-9]+)+$")
_TMP_PREFIX = ".tmp-"
# Connections of staging roots already found in this process (a task checks its root's once).
_FOUND_CONNECTIONS: set[str] = set()


class StagingConfigurationError(ValueError):
    """The staging root cannot be used as configured; the message says what to set."""

    category = Category.CONFIGURATION


def default_staging_root() -> str:
    """``$FRONTIER_STAGING_ROOT``, else ``$AIRFLOW_HOME/frontier-staging``."""
    configured = os.environ.get(STAGING_ROOT_ENV)
    if configured:
        return configured
    airflow_home = os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))
    return str(Path(airflow_home) / "frontier-staging")


def validate_key(kind: str, value: str) -> str:
    """Refuse dataset, period and entity names that could escape the staging layout."""
    if not isinstance(value, str) or not _KEY_PATTERN.match(value):
        raise ValueError(f"invalid {kind} {value!r} for a staging path: use letters, digits, '.', '_', '-'")
    return value


def staged_path(location: str | os.PathLike) -> ObjectStoragePath:
    """The one way to turn a staged file's location into a path: an object-storage URL as it is, a local
    path as a ``file://`` URL written verbatim.

    ``Path.as_uri()`` would percent-encode the ``=`` of ``period=2024-12`` and point at a file that does
    not exist.

    :param location: a URL (``s3://...``, ``file://...``) or a local path, as tasks pass them in XCom.
    """
    return ObjectStoragePath(_as_url(location))


class Staging:
    """Read and write one run's datasets under a staging root.

    :param root: a local path or an object-storage URL; defaults to ``default_staging_root()``.
    """

    def __init__(self, root: str | os.PathLike | ObjectStoragePath | None = None) -> None:
        root = root if root is not None else default_staging_root()
        self.root = root if isinstance(root, ObjectStoragePath) else ObjectStoragePath(_as_url(root))
        _require_connection(self.root)

    # -- layout --
    def partition(self, dataset: str, period: str) -> ObjectStoragePath:
        """The folder of one dataset for one period: ``<root>/<dataset>/period=<period>``."""
        return self.root / validate_key("dataset", dataset) / f"period={validate_key('period', period)}"

    def file(self, dataset: str, period: str, entity: str, suffix: str) -> ObjectStoragePath:
        """``<root>/<dataset>/period=<period>/entity=<entity><suffix>``."""
        return self.partition(dataset, period) / f"entity={validate_key('entity', entity)}{suffix}"

    def period_file(self, dataset: str, period: str, name: str, suffix: str) -> ObjectStoragePath:
        """``<root>/<dataset>/period=<period>/<name><suffix>``: a file of the whole period or batch.

        :param dataset: the dataset folder, e.g. ``tableau``
        :param period: the fiscal period, ``YYYY-MM``
        :param name: what the file holds, e.g. ``frontier_analysis`` or a batch ``as-of-2024-12-30``
        :param suffix: the file type, e.g. ``.hyper``
        """
        if not _SUFFIX_PATTERN.match(suffix):
            raise ValueError(f"invalid suffix {suffix!r} for a staging path: use '.' and letters or digits")
        return self.partition(dataset, period) / f"{validate_key('file name', name)}{suffix}"

    def directory(self, dataset: str, period: str, entity: str) -> ObjectStoragePath:
        """``<root>/<dataset>/period=<period>/entity=<entity>/`` for multi-part datasets."""
        return self.file(dataset, period, entity, "")

    # -- writes --
    def write_bytes(self, path: ObjectStoragePath, data: bytes) -> ObjectStoragePath:
        """Write ``data`` to ``path`` atomically."""
        with self._atomic(path) as tmp:
            tmp.write_bytes(data)
        return path

    def write_json(self, path: ObjectStoragePath, document: Any) -> ObjectStoragePath:
        """Write a JSON document with sorted keys, so equal content gives equal bytes."""
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        return self.write_bytes(path, (text + "\n").encode("utf-8"))

    def write_parquet(self, path: ObjectStoragePath, table: pa.Table) -> ObjectStoragePath:
        """Write one Arrow table as a Parquet file atomically."""
        return self.write_parquet_batches(path, table.schema, table.to_batches())

    def write_parquet_batches(
        self, path: ObjectStoragePath, schema: pa.Schema, batches: Iterable[pa.RecordBatch]
    ) -> ObjectStoragePath:
        """Stream record batches into one Parquet file, atomically, without holding them all in memory."""
        import pyarrow.parquet as pq  # imported when used: DAG files import this module

        with self._atomic(path) as tmp:
            local = self.local_path(tmp)
            with _open_sink(tmp, local) as sink, pq.ParquetWriter(sink, schema, compression="zstd") as writer:
                for batch in batches:
                    writer.write_batch(batch)
        return path

    def replace_directory(self, directory: ObjectStoragePath, keep: Iterable[ObjectStoragePath]) -> list[str]:
        """Delete files in ``directory`` that a rerun did not write again; return their names."""
        keep_names = {p.name for p in keep}
        removed = []
        if directory.exists():
            for child in directory.iterdir():
                if child.name not in keep_names:
                    child.unlink()
                    removed.append(child.name)
        return sorted(removed)

    @contextmanager
    def _atomic(self, path: ObjectStoragePath) -> Iterator[ObjectStoragePath]:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}-{path.name}"
        try:
            yield tmp
            tmp.rename(path)
        finally:
            if tmp.exists():
                tmp.unlink()

    # -- reads --
    def read_json(self, path: ObjectStoragePath) -> Any:
        return json.loads(path.read_bytes())

    def read_parquet(self, path: ObjectStoragePath, columns: list[str] | None = None) -> pa.Table:
        """Read a Parquet file, or every part of a multi-part directory, as one table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if path.is_dir():
            parts = sorted(
                (p for p in path.iterdir() if p.name.endswith(".parquet") and not p.name.startswith(".")),
                key=lambda p: p.name,
            )
            tables = [self.read_parquet(p, columns) for p in parts]
            if not tables:
                raise FileNotFoundError(f"no Parquet parts under {path}")
            return pa.concat_tables(tables)
        local = self.local_path(path)
        # A native path or buffer, never a Python file object: Arrow's reader threads calling back
        # into Python can abort the interpreter at exit.
        source = str(local) if local is not None else pa.BufferReader(path.read_bytes())
        return pq.read_table(source, columns=columns)

    def relative_name(self, path: ObjectStoragePath) -> str:
        """``path`` relative to the root, as the layout names it: ``analysis/period=2024-12/entity=X.json``.

        The same text for a local and an object-storage root (``relative_to`` gives a relative
        object-storage path that cannot even be printed).

        :raises ValueError: ``path`` is not under the root.
        """
        root = self.root.path.rstrip("/")
        if not path.path.startswith(root + "/"):
            raise ValueError(f"{path} is not under the staging root {self.root}")
        return path.path[len(root) + 1 :]

    def local_path(self, path: ObjectStoragePath) -> Path | None:
        """The local filesystem path of ``path`` when the staging root is local, else None."""
        return Path(path.path) if path.protocol in ("", "file", "local") else None


@contextmanager
def _open_sink(path: ObjectStoragePath, local: Path | None) -> Iterator[Any]:
    if local is not None:
        yield str(local)
    else:
        with path.open("wb") as sink:
            yield sink


def _require_connection(root: ObjectStoragePath) -> None:
    """Fail when the root names an Airflow connection that does not exist.

    Without it the object store's filesystem would log a warning and go on with the machine's own
    credentials (an AWS profile, an instance role), staging wherever those point.
    """
    conn_id = root.conn_id
    if conn_id is None or conn_id in _FOUND_CONNECTIONS:
        return
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException as err:
        raise StagingConfigurationError(
            f"the staging root {root} names the Airflow connection {conn_id!r}, which does not exist: "
            f"create it (e.g. an 'aws' connection for s3://) or fix ${STAGING_ROOT_ENV}"
        ) from err
    _FOUND_CONNECTIONS.add(conn_id)


def _as_url(root: str | os.PathLike) -> str:
    text = os.fspath(root)
    if "://" in text:
        return text
    return "file://" + str(Path(text).expanduser().resolve())
