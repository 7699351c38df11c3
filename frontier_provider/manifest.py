"""The close manifest: control totals and file digests of one entity's close for one period.

A manifest is written at the end of an entity's close, once every stage has
staged its output, at ``<root>/manifest/period=YYYY-PP/entity=<id>.json``. It
holds what a controller needs to trust, and to trace, the figures that are
published::

    entity, period, source, currency        whose books, from where
    extract_rows                            GL rows the extract staged
    trial_balance {debit_total, credit_total}
                                            the trial balance's debit and credit
                                            columns (closing balances, ledger currency)
    statements {revenue, net_income, total_assets, total_liabilities, shareholders_equity}
    close_status, as_of                     how final the figures are, and when the
                                            ledger was read (``period_status``)
    files {relative staged path: sha256}    every staged file of the close: the
                                            extract, trial balance, statements and
                                            analysis, and when staged, the
                                            comparatives and the flux review
    manifest_sha256                         sha256 over the canonical manifest
                                            without this key

Money is written as exact decimal strings. The canonical form is the JSON text
with sorted keys, no whitespace, UTF-8: the same manifest always has the same
digest, and any change to it changes the digest.

Publishing steps call :func:`verify_against_manifests` with the figures they
are about to send; a figure that differs from its manifest, by any amount, or
an entity without a manifest, stops them before anything leaves.

Nothing here imports Airflow's task machinery; the staging area is reached
through :class:`~frontier_provider.storage.Staging`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from frontier_provider.failures import Category
from frontier_provider.ledger.controls import FINAL, PRELIMINARY

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from frontier_provider.storage import Staging

# The staged datasets of a close: the one definition of their names, used by the close operators too.
MANIFEST = "manifest"
PERIOD_STATUS = "period_status"
GL_BALANCES = "gl_balances"
# Beside an SAP extract's balances: how they were read (frontier_provider.sources.sap).
EXTRACT_RECORD_NAME = "_extract.json"
TRIAL_BALANCE = "trial_balance"
STATEMENTS = "statements"
ANALYSIS = "analysis"
# The statements of the periods a close compares with (prior period, same period of the prior year,
# prior fiscal year-end), read from the ledger by the close; and the flux (variance) review.
COMPARATIVES = "comparatives"
FLUX = "flux"
CLOSE_STATUSES = (FINAL, PRELIMINARY)
#: The statement totals a manifest records, and the statement each is read from.
STATEMENT_TOTALS: Mapping[str, str] = {
    "revenue": "income_statement",
    "net_income": "income_statement",
    "total_assets": "balance_sheet",
    "total_liabilities": "balance_sheet",
    "shareholders_equity": "balance_sheet",
}
#: Text fields a publisher's figures may carry besides the statement totals.
_TEXT_FIGURES = ("close_status", "as_of")


class ManifestError(ValueError):
    """A manifest cannot be built or read; the message says which file to restage."""

    category = Category.DATA


class ManifestMismatchError(ManifestError):
    """Figures about to be published differ from the close manifest, or an entity has none.

    :param mismatches: ``(entity, field, sent, manifest value)`` for each difference; for an
        entity without a manifest, field, sent and manifest value are None.
    :param period: the fiscal period the figures belong to, for the message.
    """

    def __init__(self, mismatches: Iterable[tuple[str, str | None, Any, Any]], period: str | None) -> None:
        self.mismatches = tuple(mismatches)
        for_period = f" for period {period}" if period else ""
        problems = []
        for entity, figure, sent, recorded in self.mismatches:
            if figure is None:
                problems.append(f"entity {entity} has no close manifest{for_period}")
            else:
                problems.append(f"entity {entity} {figure}: sending {sent}, manifest says {recorded}")
        super().__init__(
            f"refusing to publish{for_period}: the figures differ from the close manifest: "
            f"{'; '.join(problems)}. The staged outputs changed after the manifest was written, or "
            f"an entity was not closed: rerun the close for the period (it restages the outputs and "
            f"writes the manifest again) before publishing."
        )


@dataclass(frozen=True)
class Manifest:
    """The control totals and file digests of one entity's close for one period.

    :param entity: the entity id.
    :param period: the fiscal period, ``YYYY-PP``.
    :param source: "oracle_ebs" or "sap".
    :param currency: the ledger currency of the totals.
    :param extract_rows: GL rows staged by the extract.
    :param debit_total: the trial balance's debit column: debit closing balances added up.
    :param credit_total: the trial balance's credit column, as a positive amount.
    :param statements: the statement totals (``STATEMENT_TOTALS``).
    :param close_status: "final" or "preliminary".
    :param as_of: when the extract read the ledger, UTC ISO-8601.
    :param files: sha256 of every staged file, keyed by its path under the staging root.
    """

    entity: str
    period: str
    source: str
    currency: str
    extract_rows: int
    debit_total: Decimal
    credit_total: Decimal
    statements: Mapping[str, Decimal]
    close_status: str
    as_of: str
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def manifest_sha256(self) -> str:
        return _sha256(_canonical(self._content()))

    def to_document(self) -> dict[str, Any]:
        """The manifest JSON, with its own digest."""
        return {**self._content(), "manifest_sha256": self.manifest_sha256}

    @classmethod
    def from_document(cls, document: Any, *, where: str = "manifest") -> Manifest:
        """Read a manifest JSON document, checking its digest.

        :param document: the parsed JSON.
        :param where: where it came from, for messages.
        :raises ManifestError: a key is missing or malformed, or the digest does not match the content.
        """
        if not isinstance(document, dict):
            raise ManifestError(f"{where}: a manifest is a JSON object")
        content = {key: value for key, value in document.items() if key != "manifest_sha256"}
        if document.get("manifest_sha256") != _sha256(_canonical(content)):
            raise ManifestError(
                f"{where}: manifest_sha256 does not match the manifest's content: the file was edited "
                f"or damaged after it was written; rerun the close's manifest task for this period"
            )
        try:
            manifest = cls(
                entity=content["entity"],
                period=content["period"],
                source=content["source"],
                currency=content["currency"],
                extract_rows=content["extract_rows"],
                debit_total=_decimal(content["trial_balance"]["debit_total"]),
                credit_total=_decimal(content["trial_balance"]["credit_total"]),
                statements={name: _decimal(content["statements"][name]) for name in STATEMENT_TOTALS},
                close_status=content["close_status"],
                as_of=content["as_of"],
                files=dict(content["files"]),
            )
        except (KeyError, TypeError, InvalidOperation) as err:
            raise ManifestError(f"{where}: not a close manifest ({type(err).__name__}: {err})") from None
        if manifest.to_document() != document:
            raise ManifestError(
                f"{where}: not a close manifest: it has keys or values this version does not write"
            )
        return manifest

    def tableau_columns(self) -> dict[str, Any]:
        """The manifest as flat columns of a Tableau row, so that every published row names its manifest."""
        return {
            "Close_Status": self.close_status,
            "As_Of": self.as_of,
            "Manifest_Sha256": self.manifest_sha256,
            "Extract_Rows": self.extract_rows,
            "TB_Debit_Total": self.debit_total,
            "TB_Credit_Total": self.credit_total,
            "Source": self.source,
        }

    def _content(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "period": self.period,
            "source": self.source,
            "currency": self.currency,
            "extract_rows": self.extract_rows,
            "trial_balance": {
                "debit_total": _money(self.debit_total),
                "credit_total": _money(self.credit_total),
            },
            "statements": {name: _money(self.statements[name]) for name in STATEMENT_TOTALS},
            "close_status": self.close_status,
            "as_of": self.as_of,
            "files": dict(sorted(self.files.items())),
        }


def build_manifest(staging: Staging, period: str, entity: str) -> Manifest:
    """Build the manifest of one entity's close from what is staged for it.

    Each file is read once: its digest and its figures come from the same bytes. The close
    status travels from ``period_status`` through the statements into the analysis; a
    document that disagrees with the period status was built from an older extract. The
    comparatives document and the flux data of the entity are digested when they are
    staged; periods closed before the close staged them have none.

    :param staging: the staging area of the close.
    :param period: the fiscal period, ``YYYY-PP``.
    :param entity: the entity id.
    :raises ManifestError: a stage's output is missing, or the documents disagree on the close status.
    """
    files: dict[str, str] = {}

    def read(path: ObjectStoragePath, stage: str) -> bytes:
        if not path.exists():
            raise ManifestError(
                f"manifest {entity} {period}: {path} is missing; rerun the {stage} task for this period"
            )
        data = path.read_bytes()
        files[staging.relative_name(path)] = _sha256(data)
        return data

    status = json.loads(read(staging.file(PERIOD_STATUS, period, entity, ".json"), "extract"))
    if status.get("close_status") not in CLOSE_STATUSES or not isinstance(status.get("as_of"), str):
        raise ManifestError(
            f"manifest {entity} {period}: the period status has close_status "
            f"{status.get('close_status')!r} and as_of {status.get('as_of')!r}; expected one of "
            f"{', '.join(CLOSE_STATUSES)} and a UTC time; rerun the extract task for this period"
        )
    extract_rows = sum(_parquet_rows(read(part, "extract")) for part in _gl_parts(staging, period, entity))
    statements = json.loads(read(staging.file(STATEMENTS, period, entity, ".json"), "statements"))
    analysis = json.loads(read(staging.file(ANALYSIS, period, entity, ".json"), "analyze"))
    for optional, stage in (
        # How an SAP extract read the balances (rolled forward from which period, with which digests).
        (extract_record_path(staging, period, entity), "extract"),
        (staging.file(COMPARATIVES, period, entity, ".json"), "comparatives"),
        (staging.file(FLUX, period, entity, ".parquet"), "flux"),
    ):
        if optional.exists():
            read(optional, stage)
    for document, stage in ((statements, "statements"), (analysis, "analyze")):
        stale = [key for key in _TEXT_FIGURES if document.get(key) != status.get(key)]
        if stale:
            raise ManifestError(
                f"manifest {entity} {period}: the {stage} document's {', '.join(stale)} "
                f"({', '.join(repr(document.get(key)) for key in stale)}) differ from the period status "
                f"({', '.join(repr(status.get(key)) for key in stale)}): it was built from an earlier "
                f"extract; rerun the statements and analyze tasks for this period"
            )
    currency = statements["currency"]
    debit_total, credit_total = _trial_balance_columns(
        read(staging.file(TRIAL_BALANCE, period, entity, ".parquet"), "trial_balance"), currency
    )
    figures = statements["financial_statements"]
    return Manifest(
        entity=entity,
        period=period,
        source=status["source"],
        currency=currency,
        extract_rows=extract_rows,
        debit_total=debit_total,
        credit_total=credit_total,
        statements={name: _decimal(figures[part][name]) for name, part in STATEMENT_TOTALS.items()},
        close_status=status["close_status"],
        as_of=status["as_of"],
        files=files,
    )


def stage_manifest(staging: Staging, manifest: Manifest) -> ObjectStoragePath:
    """Write the manifest under ``manifest/period=.../entity=....json``, replacing an earlier one.

    :param staging: the staging area of the close.
    :param manifest: the manifest to write.
    """
    return staging.write_json(
        manifest_path(staging, manifest.period, manifest.entity), manifest.to_document()
    )


def manifest_path(staging: Staging, period: str, entity: str) -> ObjectStoragePath:
    """Where the manifest of one entity's close for a period is staged."""
    return staging.file(MANIFEST, period, entity, ".json")


def read_manifests(staging: Staging, period: str, entities: Iterable[str]) -> dict[str, Manifest]:
    """The staged manifests of a period's entities; an entity without one is left out.

    :param staging: the staging area of the close.
    :param period: the fiscal period, ``YYYY-PP``.
    :param entities: the entity ids to read.
    :raises ManifestError: a manifest is damaged or edited (its digest does not match).
    """
    manifests = {}
    for entity in entities:
        path = manifest_path(staging, period, entity)
        if path.exists():
            manifests[entity] = Manifest.from_document(json.loads(path.read_bytes()), where=str(path))
    return manifests


def verify_against_manifests(
    manifests: Mapping[str, Manifest], figures: Mapping[str, Mapping[str, Any]]
) -> None:
    """Refuse to publish figures that differ from the close manifests.

    Every entity sent must have a manifest, and each figure sent must equal the manifest's
    exactly: amounts as decimals, compared without rounding ("100.0" equals "100.00", and
    "100.001" does not); ``close_status`` and ``as_of`` as text. A figure given as None is
    one the publisher does not send, and is not compared.

    :param manifests: the manifests of the period, by entity (``read_manifests``).
    :param figures: by entity, what is about to be sent, e.g.
        ``{"EBS-US01": {"revenue": Decimal("350000.00"), "net_income": ..., "total_assets": ...,
        "close_status": "final"}}``.
    :raises ManifestMismatchError: naming every entity, field, sent and manifest value that differ,
        and every entity without a manifest.
    :raises ValueError: a figure the manifest does not record, or an amount that is not exact.
    """
    mismatches: list[tuple[str, str | None, Any, Any]] = []
    for entity in sorted(figures):
        manifest = manifests.get(entity)
        if manifest is None:
            mismatches.append((entity, None, None, None))
            continue
        for name, sent in sorted(figures[entity].items()):
            if sent is None:
                continue
            if name in STATEMENT_TOTALS:
                recorded = manifest.statements[name]
                if _exact_amount(sent, entity, name) != recorded:
                    mismatches.append((entity, name, sent, _money(recorded)))
            elif name in _TEXT_FIGURES:
                recorded = getattr(manifest, name)
                if sent != recorded:
                    mismatches.append((entity, name, sent, recorded))
            else:
                raise ValueError(
                    f"figure {name!r} of entity {entity} is not in the close manifest; it records "
                    f"{', '.join((*STATEMENT_TOTALS, *_TEXT_FIGURES))}"
                )
    if mismatches:
        periods = {manifest.period for manifest in manifests.values()}
        raise ManifestMismatchError(mismatches, periods.pop() if len(periods) == 1 else None)


# -- helpers -------------------------------------------------------------------------------------------------


def extract_record_path(staging: Staging, period: str, entity: str) -> ObjectStoragePath:
    """``gl_balances/period=YYYY-MM/entity=<id>/_extract.json``: the record an SAP extract stages."""
    return staging.directory(GL_BALANCES, period, entity) / EXTRACT_RECORD_NAME


def _gl_parts(staging: Staging, period: str, entity: str) -> list[ObjectStoragePath]:
    folder = staging.directory(GL_BALANCES, period, entity)
    parts = (
        sorted(
            (p for p in folder.iterdir() if p.name.endswith(".parquet") and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        if folder.exists()
        else []
    )
    if not parts:
        raise ManifestError(
            f"manifest {entity} {period}: no GL balance parts under {folder}; rerun the extract task "
            f"for this period"
        )
    return parts


def _parquet_rows(data: bytes) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_metadata(pa.BufferReader(data)).num_rows


def _trial_balance_columns(data: bytes, currency: str) -> tuple[Decimal, Decimal]:
    """The debit and credit columns of a trial balance: its debit and credit closing balances added up."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data), columns=["currency", "closing_balance"])
    debit = credit = Decimal(0)
    for row in table.to_pylist():
        if row["currency"] != currency:
            continue
        if row["closing_balance"] > 0:
            debit += row["closing_balance"]
        else:
            credit -= row["closing_balance"]
    return debit, credit


def _exact_amount(value: Any, entity: str, name: str) -> Decimal:
    # A float has already lost the exact amount: comparing it would prove nothing.
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise ValueError(
        f"figure {name} of entity {entity} is {value!r} ({type(value).__name__}); send amounts as "
        f"Decimal or decimal strings to compare them with the manifest exactly"
    )


def _decimal(text: Any) -> Decimal:
    if not isinstance(text, str):
        raise TypeError(f"an amount must be a decimal string, not {text!r}")
    return Decimal(text)


def _money(amount: Decimal) -> str:
    from frontier_provider.ledger.statements import format_money

    return format_money(amount)


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


RELEASE = "release"


def stage_release(staging: Staging, manifest: Manifest, *, released: str) -> ObjectStoragePath:
    """Record that a close released an entity's figures for publishing, under ``release/``.

    The sign-off writes it once the figures may be published: no sign-off was needed, or a
    controller approved. It names the manifest it released, so a later close of the same period
    that changes the figures is not released until its own sign-off. What consolidates the
    entity (the group close) reads only released figures.

    :param staging: the staging area of the close.
    :param manifest: the entity's close manifest of the period.
    :param released: how, in words, e.g. "no sign-off needed" or "approved by controller@example.com".
    """
    return staging.write_json(
        staging.file(RELEASE, manifest.period, manifest.entity, ".json"),
        {
            "entity": manifest.entity,
            "period": manifest.period,
            "manifest_sha256": manifest.manifest_sha256,
            "close_status": manifest.close_status,
            "released": released,
        },
    )


def released_manifests(staging: Staging, period: str, entities: Iterable[str]) -> dict[str, Manifest | str]:
    """Each entity's close manifest of the period when its figures were released, else why not.

    :returns: per entity, its :class:`Manifest` when the release names that very manifest, else a
        reason in words (no close manifest; not released: sign-off pending or rejected; released
        figures replaced by a later close).
    :raises ManifestError: a manifest is damaged or edited.
    """
    entities = list(entities)
    manifests = read_manifests(staging, period, entities)
    found: dict[str, Manifest | str] = {}
    for entity in entities:
        manifest = manifests.get(entity)
        if manifest is None:
            found[entity] = f"{entity} has no close manifest for {period}"
            continue
        location = staging.file(RELEASE, period, entity, ".json")
        release = json.loads(location.read_bytes()) if location.exists() else None
        if release is None:
            found[entity] = (
                f"{entity}'s close of {period} has not released its figures (its sign-off is pending or "
                "was rejected)"
            )
        elif release.get("manifest_sha256") != manifest.manifest_sha256:
            found[entity] = (
                f"{entity}'s figures of {period} were closed again after their release; the new close "
                "has not released them yet (its sign-off is pending or was rejected)"
            )
        else:
            found[entity] = manifest
    return found
