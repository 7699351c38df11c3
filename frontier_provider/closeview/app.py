"""The Close view's FastAPI app: one page and the JSON it reads, behind Airflow's login.

    GET /                              the page (HTML); its script and styles are under /static/
    GET /api/matrix?periods=P1,P2      the period x entity matrix (every staged period when not given)
    GET /api/entity/<id>?period=P      one entity in one period (the latest staged when not given):
                                       its cell, its trend over the last 24 periods, the period's
                                       statements, ratios, recommendations and flux variances

Every route but ``/static/`` (the page's code, no figures) asks Airflow who calls,
with :func:`airflow.api_fastapi.core_api.security.get_user` (the ``_token`` cookie the
UI sets at login, or an ``Authorization: Bearer`` token), and lets through only users
whom the auth manager lets read every close DAG (:data:`CLOSE_DAG_IDS`): the view shows
what they stage. Without a login the answer is 401, without that access 403.

Figures come from the staging area through :mod:`frontier_provider.reporting.overview`,
money as exact decimal strings; the entities' order is the entities file's
(:func:`frontier_provider.dag_defaults.load_entities`).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import get_user
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontier_provider.closeview.page import render_page
from frontier_provider.config import EntityConfigError
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError
from frontier_provider.reporting.overview import (
    CLOSE_DAG_IDS,
    KEY_RATIOS,
    TREND_PERIODS,
    PictureError,
    read_entity_period,
    read_picture,
    staged_periods,
    trend_periods,
)
from frontier_provider.storage import Staging

if TYPE_CHECKING:
    from frontier_provider.reporting.overview import CloseCell, ClosePicture, Failure

STATIC_DIR = Path(__file__).parent / "static"
# Only this origin: the page's script, styles, icon and JSON; no inline code, no other host.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)


def create_close_view_app() -> FastAPI:
    """The Close view's app; ``plugins/frontier_close_view.py`` mounts it at ``/frontier-close``."""
    app = FastAPI(
        title="Frontier Close view",
        description=__doc__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(_router)
    app.add_exception_handler(StarletteHTTPException, _refusal)
    app.add_exception_handler(PictureError, _unreadable)
    app.middleware("http")(_not_stored)
    return app


# --- who may look ------------------------------------------------------------------------------


def auth_manager() -> BaseAuthManager:
    """The api-server's auth manager (a dependency, so a test can hand in its own)."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def close_reader(
    user: Annotated[BaseUser, Depends(get_user)],
    manager: Annotated[BaseAuthManager, Depends(auth_manager)],
) -> BaseUser:
    """The calling user, when the auth manager lets them read every close DAG; else 403."""
    refused = unreadable_close_dags(manager, user)
    if refused:
        raise HTTPException(
            status_code=403,
            detail=(
                f"{user.get_name()} may not read the DAGs {', '.join(refused)}: the Close view shows "
                "what the close DAGs stage, so it needs read access to all of "
                f"{', '.join(CLOSE_DAG_IDS)}; ask an Airflow admin for it"
            ),
        )
    return user


def unreadable_close_dags(manager: BaseAuthManager, user: BaseUser) -> list[str]:
    """The close DAGs that ``user`` may not read, in :data:`CLOSE_DAG_IDS` order."""
    return [
        dag_id
        for dag_id in CLOSE_DAG_IDS
        if not manager.is_authorized_dag(
            method="GET", user=user, details=DagDetails(id=dag_id, team_name=_team_name(dag_id))
        )
    ]


def _team_name(dag_id: str) -> str | None:
    """The team owning a DAG's bundle; teams exist only in Airflow's multi-team mode."""
    from airflow.configuration import conf

    if not conf.getboolean("core", "multi_team", fallback=False):
        return None
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(dag_id)


CloseReader = Annotated[BaseUser, Depends(close_reader)]


# --- routes ------------------------------------------------------------------------------------

_router = APIRouter()


@_router.get("/", response_class=HTMLResponse)
def close_page(request: Request, reader: CloseReader) -> HTMLResponse:
    """The view: a shell its script fills from ``/api/``."""
    return _page(render_page(request.scope.get("root_path", "")))


@_router.get("/api/matrix")
def close_matrix(
    reader: CloseReader,
    periods: Annotated[
        str | None, Query(description="comma-separated fiscal periods YYYY-MM; every staged period if empty")
    ] = None,
) -> dict[str, Any]:
    """Every entity's close in each period: status, health score, rating, risk, a failed task's link."""
    picture = read_picture(Staging(), entities=configured_entities(), periods=_requested_periods(periods))
    return matrix_document(picture)


@_router.get("/api/entity/{entity}")
def entity_close(
    entity: str,
    reader: CloseReader,
    period: Annotated[
        str | None, Query(description="fiscal period YYYY-MM; the latest staged if empty")
    ] = None,
) -> dict[str, Any]:
    """One entity: its close in ``period``, its trend over the last 24 periods, the period's detail."""
    staging = Staging()
    staged = staged_periods(staging)
    period = _period(period) if period else _latest_period(staged)
    if period not in staged:
        raise HTTPException(
            status_code=404,
            detail=f"nothing is staged for period {period}; staged periods: {', '.join(staged) or 'none'}",
        )
    shown = sorted({*trend_periods(period, TREND_PERIODS), period}, key=FiscalPeriod.parse)
    picture = read_picture(staging, entities=configured_entities(), periods=shown)
    if entity not in picture.entities:
        raise HTTPException(
            status_code=404,
            detail=f"no entity {entity!r} in the entities file or staged for {shown[0]} .. {shown[-1]}; "
            f"known entities: {', '.join(picture.entities) or 'none'}",
        )
    cell = picture.cell(entity, period)
    return {
        "entity": entity,
        "period": period,
        "key_ratios": list(KEY_RATIOS),
        "cell": cell_document(cell),
        "trend": [cell_document(item) for item in picture.trend(entity, period, TREND_PERIODS)],
        "detail": read_entity_period(staging, entity, period).as_dict(),
    }


# --- documents ---------------------------------------------------------------------------------


def matrix_document(picture: ClosePicture) -> dict[str, Any]:
    """The matrix as JSON: periods ascending, entities in the configured order, one row per period."""
    return {
        "periods": list(picture.periods),
        "entities": list(picture.entities),
        "key_ratios": list(KEY_RATIOS),
        "period_failures": {
            period: [{**failure.as_dict(), "failure_url": failure_url(failure)} for failure in failures]
            for period, failures in picture.period_failures.items()
        },
        "rows": [
            {
                "period": period,
                "cells": [cell_document(picture.cell(entity, period)) for entity in picture.entities],
            }
            for period in picture.periods
        ],
    }


def cell_document(cell: CloseCell) -> dict[str, Any]:
    """A cell's JSON, with ``failure_url``: where the failing task's log is, for a failed close."""
    return {**cell.as_dict(), "failure_url": failure_url(cell.failure) if cell.failure else None}


def failure_url(failure: Failure) -> str:
    """The failing task instance's log in the Airflow UI: the alert's own link, else its grid path."""
    if failure.log_url:
        return failure.log_url
    mapped = f"/mapped/{failure.map_index}" if failure.map_index >= 0 else ""
    return (
        f"/dags/{quote(failure.dag_id, safe='')}/runs/{quote(failure.run_id, safe='')}"
        f"/tasks/{quote(failure.task_id, safe='')}{mapped}"
    )


def configured_entities() -> list[str]:
    """The entities file's entity ids, in its order; a broken file is a 500 that names it."""
    from frontier_provider.dag_defaults import load_entities

    try:
        return [entity.id for entity in load_entities().entities]
    except (EntityConfigError, OSError) as err:
        raise HTTPException(status_code=500, detail=f"the entities file cannot be read: {err}") from err


def _requested_periods(periods: str | None) -> list[str] | None:
    if not periods or not periods.strip():
        return None
    return [_period(text) for text in periods.split(",") if text.strip()]


def _period(text: str) -> str:
    try:
        return str(FiscalPeriod.parse(text))
    except InvalidPeriodError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err


def _latest_period(staged: list[str]) -> str:
    if not staged:
        raise HTTPException(status_code=404, detail="nothing is staged yet: no close has run")
    return staged[-1]


def _page(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        body, status_code=status_code, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY}
    )


async def _not_stored(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Figures are for the signed-in user only: no cache keeps them; the page's code may be cached."""
    response = await call_next(request)
    if "/static/" not in request.url.path:
        response.headers["Cache-Control"] = "no-store"
    return response


async def _unreadable(request: Request, error: Exception) -> Response:
    """A staged file the view needs cannot be read: 500, naming the file and how to restage it."""
    return JSONResponse({"detail": str(error)}, status_code=500)


async def _refusal(request: Request, error: Exception) -> Response:
    """Errors as JSON, but a refused page (401, 403) as a short HTML page that says what to do."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code not in (401, 403) or "/api/" in request.url.path:
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
    heading = "Log in to Airflow first" if error.status_code == 401 else "No access to the Close view"
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{heading}</title></head><body><main><h1>{heading}</h1>"
        f"<p>{html.escape(str(error.detail))}</p>"
        '<p><a href="/">Open Airflow</a></p></main></body></html>'
    )
    return _page(body, status_code=error.status_code)
