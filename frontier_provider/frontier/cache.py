"""The Frontier result cache: an answer the service already gave is read back, not asked for again.

The nightly close reruns the open period every night; most entities' ledgers
have not moved since the night before, and their analysis would come back the
same. The cache keeps each remote answer under staging, addressed by what
decides it, so an unchanged request is answered from staging with no remote
call, and any change to what the service reads is a new request.

**Key.** ``sha256`` over the canonical JSON (sorted keys, no whitespace, UTF-8) of
``{"format", "operation", "service", "model_version", "request_sha256"}``:

* ``request_sha256`` is the sha256 of the canonical request: the request as
  the contract reads it, validated by the operation's request model
  (:data:`~frontier_provider.frontier.contract.OPERATIONS`) and dumped with the
  fields the caller set, money as exact decimal strings (``"1234.50"`` and
  ``"1234.5"`` are different requests: a miss, never a wrong answer). Keys the
  contract ignores do not reach the service's computation and do not reach the
  key: the staged statements document's ``entity``, ``lines``,
  ``close_status`` and above all ``as_of`` (when the ledger was read, new every
  night). Every figure, previous period, name or calendar the service reads is
  in it.
* ``service`` is the base URL without credentials (``https://host:port/path``);
* ``model_version`` is the version of the model that answers (see
  :class:`FrontierResultCache`): a new model is a new key space.

**Entries.** ``<staging root>/frontier_cache/<operation>/<key[:2]>/<key>.json``,
written atomically through :class:`~frontier_provider.storage.Staging` (a local
folder or ``s3://`` / ``gs://``; only object-storage path operations are used),
holding the response document and the key's inputs: format, key, operation,
service, model version, the request's own sha256 and ``created_at``. A
response is only stored after a 200 answer.

**Reading.** An entry is a hit only when it parses, names the same inputs as
the key, and its response validates against the operation's response model
with the same model version. Anything else (missing, unreadable, truncated,
edited, another format) is a miss: logged with the entry's location when the
entry exists, never an exception and never an answer that was not the
service's. The call that follows overwrites a bad entry.

**Not cached.** The embedded engine: it computes in-process from the package's
own model (:mod:`frontier_provider.analysis`), so there is no remote call to
save (``FrontierHook.result_cache`` returns None for it). Requests the
contract refuses (the service answers 422; nothing is stored). Entries are
never evicted: the cache grows by one small
file per distinct request (about 5 KB per entity and period, and per change of
its figures); delete ``frontier_cache/`` or give the bucket a lifecycle rule on
that prefix to bound it. Deleting it is always safe: the next run asks again.

The close stages, per entity and period, whether its analysis came from the
cache: :func:`stage_cache_use`, counted by :func:`cache_use_counts` for the
period report.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pydantic

from frontier_provider.frontier.client import canonical_json
from frontier_provider.frontier.contract import OPERATIONS

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from frontier_provider.storage import Staging

log = logging.getLogger(__name__)

CACHE_DATASET = "frontier_cache"
"""The folder of the cache entries under the staging root."""
CACHE_USE = "frontier_cache_use"
"""The dataset that says, per period and entity, whether the staged analysis came from the cache."""
ENTRY_FORMAT = 1
"""The entry layout and key derivation; another format is another key space."""
HIT, MISS, OFF = "hit", "miss", "off"
CACHE_STATUSES = (HIT, MISS, OFF)
KEY_PREFIX_LENGTH = 12
"""How much of a key the logs show: enough to find the entry."""

_Response = TypeVar("_Response", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class CacheOutcome(Generic[_Response]):
    """One answer and where it came from.

    :param response: the service's answer (stored earlier, or just received)
    :param status: :data:`HIT` (read from the cache, no call), :data:`MISS` (called, then stored) or
        :data:`OFF` (called; no cache in use)
    :param key: the request's key; None when off or when the request is not cacheable
    :param location: the entry's URL; None when nothing was read or stored
    :param created_at: when a hit's entry was stored
    """

    response: _Response
    status: str
    key: str | None = None
    location: str | None = None
    created_at: str | None = None

    @property
    def key_prefix(self) -> str:
        return self.key[:KEY_PREFIX_LENGTH] if self.key else "-"

    def describe(self) -> str:
        """For the task log: ``Frontier cache hit 3fa2c1d09e6b: no analysis call; ...``."""
        head = f"Frontier cache {self.status} {self.key_prefix}"
        model = f"model {_model_version(self.response)}"
        if self.status == HIT:
            return (
                f"{head}: no analysis call; the answer of {model} stored {self.created_at} at {self.location}"
            )
        if self.status == MISS:
            where = f"stored at {self.location}" if self.location else "not stored"
            return f"{head}: answered by the service ({model}), {where}"
        return f"{head}: answered without the cache ({model})"


class FrontierResultCache:
    """Frontier answers under the staging root, by the key of their request (see the module).

    :param staging: the staging area the entries live in
    :param service: the base URL of the Frontier service; credentials in it are left out of the key
    :param model_version: the version of the model the service runs: the connection's pin, or
        what the service's profile says
    """

    def __init__(self, staging: Staging, *, service: str, model_version: str) -> None:
        if not model_version:
            raise ValueError("a Frontier result cache needs the model version the service runs")
        self.staging = staging
        self.service = service_identity(service)
        self.model_version = model_version

    def answer(
        self, operation: str, request: Mapping[str, Any], call: Callable[[], _Response]
    ) -> CacheOutcome[_Response]:
        """The answer to ``request``: from its entry when there is a valid one, else from ``call``, stored.

        :param operation: a name of :data:`~frontier_provider.frontier.contract.OPERATIONS`
        :param request: the request body, as it is sent
        :param call: asks the service; called at most once, and only on a miss
        """
        canonical = canonical_request(operation, request)
        if canonical is None:
            # The service refuses it (422) and that error is the one to see; nothing to store.
            log.warning(
                "Frontier cache: the %s request does not validate against the contract: not cached",
                operation,
            )
            return CacheOutcome(call(), MISS)
        key = self._key(operation, canonical, self.model_version)
        path = self.entry_path(operation, key)
        found = self._read(operation, key, path)
        if found is not None:
            response, created_at = found
            return CacheOutcome(response, HIT, key, str(path), created_at)
        response = call()
        stored = self._store(operation, canonical, response)
        return CacheOutcome(response, MISS, key, str(stored) if stored is not None else None)

    def key(self, operation: str, request: Mapping[str, Any]) -> str | None:
        """The key of ``request`` at this cache's model version; None when the contract refuses it.

        :param operation: a name of :data:`~frontier_provider.frontier.contract.OPERATIONS`
        :param request: the request body
        """
        canonical = canonical_request(operation, request)
        return None if canonical is None else self._key(operation, canonical, self.model_version)

    def entry_path(self, operation: str, key: str) -> ObjectStoragePath:
        """``<root>/frontier_cache/<operation>/<key[:2]>/<key>.json``: two hex digits fan the folders out."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown Frontier operation {operation!r}: one of {sorted(OPERATIONS)}")
        return self.staging.root / CACHE_DATASET / operation / key[:2] / f"{key}.json"

    # -- helpers --

    def _key(self, operation: str, canonical: bytes, model_version: str) -> str:
        inputs = {
            "format": ENTRY_FORMAT,
            "operation": operation,
            "service": self.service,
            "model_version": model_version,
            "request_sha256": _sha256(canonical),
        }
        return _sha256(canonical_json(inputs))

    def _read(
        self, operation: str, key: str, path: ObjectStoragePath
    ) -> tuple[pydantic.BaseModel, str | None] | None:
        """The entry's response and when it was stored; None (a miss) for anything but a valid entry."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warning(
                "Frontier cache: entry %s cannot be read (%s: %s): a miss", path, type(error).__name__, error
            )
            return None
        try:
            return self._parsed(operation, key, data)
        except _CorruptEntry as corrupt:
            log.warning(
                "Frontier cache: entry %s is not usable (%s): a miss; the call overwrites it", path, corrupt
            )
            return None

    def _parsed(self, operation: str, key: str, data: bytes) -> tuple[pydantic.BaseModel, str | None]:
        try:
            entry = json.loads(data)
        except ValueError as error:
            raise _CorruptEntry(f"not JSON: {error}") from None
        if not isinstance(entry, dict):
            raise _CorruptEntry(f"a JSON {type(entry).__name__}, not an object")
        expected = {
            "format": ENTRY_FORMAT,
            "key": key,
            "operation": operation,
            "service": self.service,
            "model_version": self.model_version,
        }
        differing = sorted(name for name, value in expected.items() if entry.get(name) != value)
        if differing:
            raise _CorruptEntry(f"its {', '.join(differing)} differ from the request's")
        try:
            response = OPERATIONS[operation].response.model_validate(entry.get("response"))
        except pydantic.ValidationError as error:
            raise _CorruptEntry(
                f"the response is not a {OPERATIONS[operation].response.__name__} "
                f"({error.error_count()} problem(s))"
            ) from None
        if _model_version(response) != self.model_version:
            raise _CorruptEntry(f"the response is of model version {_model_version(response)!r}")
        created_at = entry.get("created_at")
        return response, created_at if isinstance(created_at, str) else None

    def _store(
        self, operation: str, canonical: bytes, response: pydantic.BaseModel
    ) -> ObjectStoragePath | None:
        """Store a 200 answer under the key of the model version that produced it; None if it could not be.

        A version other than this cache's means the connection's ``model_version`` pin is stale: the
        answer is stored under its own version, never under the pinned one, and the pin should change.
        """
        version = _model_version(response) or self.model_version
        if version != self.model_version:
            log.warning(
                "Frontier cache: the service answered %s with model version %s, not %s: stored under "
                "%s; update the connection's model_version extra, or remove it to ask the service",
                operation,
                version,
                self.model_version,
                version,
            )
        key = self._key(operation, canonical, version)
        path = self.entry_path(operation, key)
        entry = {
            "format": ENTRY_FORMAT,
            "key": key,
            "operation": operation,
            "service": self.service,
            "model_version": version,
            "request_sha256": _sha256(canonical),
            "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "response": response.model_dump(mode="json"),
        }
        try:
            return self.staging.write_json(path, entry)
        except (OSError, ValueError) as error:
            # The answer is good and goes on; only the next run pays for the lost entry.
            log.warning(
                "Frontier cache: could not store entry %s (%s: %s): the next run asks the service again",
                path,
                type(error).__name__,
                error,
            )
            return None


def canonical_request(operation: str, request: Mapping[str, Any]) -> bytes | None:
    """The request as the contract reads it, as canonical JSON bytes; None when the contract refuses it.

    :param operation: a name of :data:`~frontier_provider.frontier.contract.OPERATIONS`
    :param request: the request body
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown Frontier operation {operation!r}: one of {sorted(OPERATIONS)}")
    try:
        model = OPERATIONS[operation].request.model_validate(request)
    except pydantic.ValidationError:
        return None
    # Only what the caller set: a field left to its default and one sent with the default's value
    # can be read differently (the fiscal calendar of a previous period), so they are different keys.
    return canonical_json(model.model_dump(mode="json", exclude_unset=True))


def service_identity(base_url: str) -> str:
    """``scheme://host[:port][/path]`` of a base URL, lower-cased, without credentials or a trailing ``/``.

    :param base_url: the service's base URL
    """
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def cache_enabled(value: Any) -> bool:
    """The connection's ``cache`` extra: on unless it says false; absent or empty is on.

    :param value: the extra as the connection holds it (a JSON boolean or text)
    :raises ValueError: a value that is neither true nor false
    """
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "on", "yes", "1"):
        return True
    if text in ("false", "off", "no", "0"):
        return False
    raise ValueError(f"extra cache={value!r} is neither true nor false")


# -- what the close records --


def stage_cache_use(staging: Staging, period: str, entity: str, outcome: CacheOutcome) -> ObjectStoragePath:
    """Record whether the entity's staged analysis of ``period`` came from the cache.

    ``frontier_cache_use/period=<period>/entity=<entity>.json``, replaced by every analyze of the
    entity and period; the period report counts them (:func:`cache_use_counts`).

    :param staging: the staging area
    :param period: the fiscal period analysed
    :param entity: the entity analysed
    :param outcome: the analyze call's outcome
    """
    record = {
        "entity": entity,
        "period": period,
        "frontier_cache": outcome.status,
        "key": outcome.key,
        "entry": outcome.location,
    }
    return staging.write_json(staging.file(CACHE_USE, period, entity, ".json"), record)


def cache_use_counts(staging: Staging, period: str, entities: Iterable[str]) -> dict[str, int]:
    """How many of the entities' latest analyses of ``period`` were cache hits, misses, or made with it off.

    An entity without a record (not analysed since the cache existed) is not counted; a record that
    cannot be read is left out with a warning naming it: these are counts, not figures.

    :param staging: the staging area
    :param period: the fiscal period
    :param entities: the entities to count
    """
    counts = dict.fromkeys(CACHE_STATUSES, 0)
    for entity in entities:
        path = staging.file(CACHE_USE, period, entity, ".json")
        try:
            status = json.loads(path.read_bytes()).get("frontier_cache")
        except FileNotFoundError:
            continue
        except (OSError, ValueError, AttributeError) as error:
            log.warning("Frontier cache use record %s cannot be read (%s): not counted", path, error)
            continue
        if status in counts:
            counts[status] += 1
        else:
            log.warning("Frontier cache use record %s says %r: not counted", path, status)
    return counts


class _CorruptEntry(ValueError):
    """An entry that is there but cannot answer the request; the message says why."""


def _model_version(response: pydantic.BaseModel) -> str | None:
    model = getattr(response, "model", None)
    return getattr(model, "version", None)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
