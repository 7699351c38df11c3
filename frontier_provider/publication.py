"""What the close has published, so a preliminary run never replaces final figures.

Every publishing target (Tableau, Salesforce) records, per period and entity,
the close status, as-of time and manifest digest of the figures it last
published, at ``<root>/published_<target>/period=YYYY-PP/entity=<id>.json``.
Before sending, a publishing task checks the figures it is about to send
against those records and against the close manifests:

- every figure it sends equals its entity's close manifest (entity set,
  statement totals, close status, as-of), or nothing is sent
  (:func:`frontier_provider.manifest.verify_against_manifests`);
- an entity whose figures were published ``final`` for the period is not
  overwritten by ``preliminary`` figures: it is left out, named in the log and
  in the task's summary (:func:`held_back`).

A record is written only after the target confirmed the write, so a failed or
dry run records nothing. Nothing here imports Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from frontier_provider.ledger.controls import FINAL, PRELIMINARY
from frontier_provider.manifest import verify_against_manifests

if TYPE_CHECKING:
    from frontier_provider.manifest import Manifest
    from frontier_provider.storage import Staging

TARGETS = ("tableau", "tableau_flux", "salesforce")


@dataclass(frozen=True)
class Publication:
    """Figures of one entity and period as a target last received them.

    :param entity: the entity id.
    :param period: the fiscal period, ``YYYY-PP``.
    :param close_status: "final" or "preliminary".
    :param as_of: when the close read the ledger, UTC ISO-8601.
    :param manifest_sha256: the digest of the close manifest the figures were verified against.
    """

    entity: str
    period: str
    close_status: str
    as_of: str
    manifest_sha256: str

    @classmethod
    def of(cls, manifest: Manifest) -> Publication:
        return cls(
            entity=manifest.entity,
            period=manifest.period,
            close_status=manifest.close_status,
            as_of=manifest.as_of,
            manifest_sha256=manifest.manifest_sha256,
        )


def published(staging: Staging, target: str, period: str, entities: Iterable[str]) -> dict[str, Publication]:
    """The last publication to ``target`` of each entity's figures for ``period``; absent if never published.

    :param staging: the staging area of the close.
    :param target: one of ``TARGETS``: "tableau", "tableau_flux" (the flux datasource), "salesforce".
    :param period: the fiscal period.
    :param entities: the entity ids to look up.
    """
    found = {}
    for entity in entities:
        path = _path(staging, target, period, entity)
        if path.exists():
            found[entity] = Publication(**json.loads(path.read_bytes()))
    return found


def record_published(staging: Staging, target: str, publications: Iterable[Publication]) -> None:
    """Record what ``target`` confirmed it received; call only after the write succeeded.

    :param staging: the staging area of the close.
    :param target: one of ``TARGETS``: "tableau", "tableau_flux" (the flux datasource), "salesforce".
    :param publications: one per (period, entity) written.
    """
    for publication in publications:
        staging.write_json(
            _path(staging, target, publication.period, publication.entity), asdict(publication)
        )


def held_back(to_send: Mapping[str, str], previous: Mapping[str, Publication]) -> list[str]:
    """The entities whose ``preliminary`` figures must not replace the ``final`` ones already published.

    :param to_send: entity -> close status of the figures about to be sent.
    :param previous: the entities' last publications (:func:`published`).
    """
    return sorted(
        entity
        for entity, status in to_send.items()
        if status == PRELIMINARY and entity in previous and previous[entity].close_status == FINAL
    )


def check_against_close(
    figures: Mapping[str, Mapping[str, Any]],
    manifests: Mapping[str, Manifest],
    previous: Mapping[str, Publication],
) -> list[str]:
    """The close's rule before sending: figures equal their manifests; preliminary never replaces final.

    Returns the entities to hold back (:func:`held_back`).

    :param figures: by entity, what is about to be sent, with its ``close_status``
        (:func:`frontier_provider.manifest.verify_against_manifests`).
    :param manifests: the period's close manifests, by entity.
    :param previous: the entities' last publications to the target (:func:`published`).
    :raises ManifestMismatchError: a figure differs from its manifest, or an entity has none.
    """
    verify_against_manifests(manifests, figures)
    return held_back({entity: figure["close_status"] for entity, figure in figures.items()}, previous)


def held_back_message(
    target: str, period: str, entities: Iterable[str], previous: Mapping[str, Publication]
) -> str:
    """The log line that names each entity left out and why."""
    named = ", ".join(f"{entity} (final as of {previous[entity].as_of})" for entity in entities)
    return (
        f"{target}: not sending the preliminary figures of period {period} for {named}: their final "
        "figures are published and a preliminary run never replaces final ones"
    )


def _path(staging: Staging, target: str, period: str, entity: str):
    if target not in TARGETS:
        raise ValueError(f"unknown publishing target {target!r}; known: {TARGETS}")
    return staging.file(f"published_{target}", period, entity, ".json")
