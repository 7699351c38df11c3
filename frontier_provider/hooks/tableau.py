"""The official ``TableauHook``, extended to sign in with a personal access token and to retry calls.

The official hook signs in with a username/password or a JWT. Most Tableau
Cloud sites allow only personal access tokens (PAT) for automation, so this
hook adds PAT sign-in on the same ``tableau`` connection type:

- ``login``: the token name, ``password``: the token secret,
- extra ``{"auth": "pat", "site_id": "<site content URL>"}``.

Without ``"auth": "pat"`` it signs in exactly as the official hook.
A PAT holds one session at a time: a second sign-in with the same token ends
the first session, which is why every Tableau task runs in the one-slot
``tableau`` pool.

Retry budget of one Tableau HTTP call (:meth:`FrontierTableauHook.call`), the
inner of the two retry layers (the task's own Airflow retries are the outer):

- a dropped or refused connection, a request timeout, HTTP 5xx and HTTP 429 are
  retried up to ``retries`` times (default 3, so 4 attempts in all) after an
  exponential backoff with jitter (``backoff_base`` 2 s doubling per retry, at most
  ``backoff_max`` 30 s), or after the ``Retry-After`` the server sent; a
  ``Retry-After`` longer than ``retry_after_max`` (default 60 s) fails the call
  at once rather than calling sooner than Tableau asked;
- HTTP 401 (an expired or ended session) signs in again once per call and repeats
  the call; a sign-in refused twice fails the task without retries
  (:class:`TableauSignInError`), since only new credentials can fix it;
- any other error (404, 409, a 400 naming a bad request) is raised at once;
- each request may take ``timeout`` seconds (default 900) before it counts as a
  failed attempt.

Worst case per call: 4 attempts of at most 900 s each plus at most 3 waits of
at most 60 s. Every extra is read from the connection's extras and may be
overridden there. A retried call must be safe to repeat: lookups and polls are,
an update carries a request id Tableau runs once, a CreateNew publish answers
409 the second time, and a refresh answers 409093 (already queued).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import requests
from airflow.providers.tableau.hooks.tableau import TableauHook
from airflow.sdk.exceptions import AirflowException, AirflowFailException

PAT_AUTH = "pat"
# Seconds a single request to Tableau may take; a publish of a large extract is the slowest call.
DEFAULT_REQUEST_TIMEOUT = 900.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_BASE = 2.0
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_RETRY_AFTER_MAX = 60.0
# tableauserverclient falls back to this REST API version when reading serverInfo fails.
_UNNEGOTIATED_VERSION = "2.4"

T = TypeVar("T")


class TableauCallError(AirflowException):
    """A Tableau call still failed after its retries; the task's own retries may succeed later."""


class TableauSignInError(AirflowFailException):
    """Tableau refused the connection's credentials twice: only new credentials can fix that."""

    failure_category = "configuration"


class FrontierTableauHook(TableauHook):
    """Tableau hook that also signs in with a personal access token and retries transient failures.

    :param site_id: the site's content URL; defaults to the connection's ``site_id`` extra.
    :param tableau_conn_id: the Airflow connection of type ``tableau``.
    """

    def __init__(
        self, site_id: str | None = None, tableau_conn_id: str = TableauHook.default_conn_name
    ) -> None:
        super().__init__(site_id=site_id, tableau_conn_id=tableau_conn_id)
        extras = self.conn.extra_dejson
        self.request_timeout = _number_extra(extras, "timeout", DEFAULT_REQUEST_TIMEOUT)
        self.retries = int(_number_extra(extras, "retries", DEFAULT_RETRIES))
        self.backoff_base = _number_extra(extras, "backoff_base", DEFAULT_BACKOFF_BASE)
        self.backoff_max = _number_extra(extras, "backoff_max", DEFAULT_BACKOFF_MAX)
        self.retry_after_max = _number_extra(extras, "retry_after_max", DEFAULT_RETRY_AFTER_MAX)
        self._last_response: requests.Response | None = None
        # requests waits forever without a timeout; a hung Tableau call would hold the pool slot. The
        # response hook keeps the HTTP status and Retry-After, which tableauserverclient's errors drop.
        self.server.add_http_options(
            {"timeout": self.request_timeout, "hooks": {"response": [self._remember_response]}}
        )
        if self.server.version == _UNNEGOTIATED_VERSION:
            # The parent read serverInfo once and swallowed a failure; REST API 2.4 lacks the
            # endpoints the close uses, so read it again with this hook's retries.
            self.server.version = self.call(
                "read the server's REST API version", lambda: self.server.server_info.get().rest_api_version
            )

    @property
    def uses_personal_access_token(self) -> bool:
        return str(self.conn.extra_dejson.get("auth", "")).lower() == PAT_AUTH

    def get_conn(self) -> Any:
        """Sign in (personal access token, password or JWT) and return the sign-out context manager."""
        return self.call("sign in", self._sign_in, signing_in=True)

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            super().__exit__(exc_type, exc_val, exc_tb)
        except (requests.RequestException, _tableau_error()) as error:
            # The work is done; an unanswered sign-out leaves a session that expires on its own and
            # that the next sign-in with the same token ends anyway.
            self.log.warning("Signing out of Tableau failed (%s); the session will expire on its own", error)

    def call(self, what: str, request: Callable[[], T], *, signing_in: bool = False) -> T:
        """Make one Tableau call, retrying what a retry can fix (see the module's retry budget).

        :param what: the call in words, for logs and errors, e.g. ``"refresh workbook 'Close'"``.
        :param request: makes the call; it is called again for each retry, so it must be safe to repeat.
        :param signing_in: the call is the sign-in itself: a 401 means refused credentials.
        :raises TableauCallError: a transient failure outlasted the retries.
        :raises TableauSignInError: the credentials were refused twice.
        """
        signed_in_again = False
        attempt = 0
        while True:
            attempt += 1
            self._last_response = None
            try:
                return request()
            except Exception as error:
                fault = self._transient_fault(error)
                if fault is None:
                    raise
                failure = f"Tableau call {what!r} failed ({fault}) on attempt {attempt} of {self.retries + 1}"
                if fault == _EXPIRED_SESSION:
                    if signing_in and attempt > 1:
                        raise TableauSignInError(
                            f"Tableau refused the credentials of connection {self.tableau_conn_id!r} twice "
                            f"({error}). Check the token name and secret (or user and password) and the "
                            "site id in the connection, and that the token has not expired."
                        ) from error
                    if not signing_in:
                        if signed_in_again:
                            raise TableauCallError(
                                f"{failure}: the session ended again right after a fresh sign-in. Another "
                                "task or user is signing in with the same personal access token; run "
                                "every Tableau task in the one-slot 'tableau' pool."
                            ) from error
                        signed_in_again = True
                        self.log.warning("%s; signing in again", failure)
                        self.get_conn()
                        continue
                if attempt > self.retries:
                    raise TableauCallError(f"{failure}; no retries left: {error}") from error
                delay = self._retry_delay(attempt, failure)
                self.log.warning("%s; retrying in %.2f s", failure, delay)
                time.sleep(delay)

    def test_connection(self) -> tuple[bool, str]:
        """Sign in and out once; report the server's REST API version on success."""
        try:
            with self:
                return True, f"signed in to {self.server.server_address} (REST API {self.server.version})"
        except Exception as error:
            return False, f"could not sign in to Tableau: {error}"

    # -- helpers ----------------------------------------------------------------------------------
    def _sign_in(self) -> Any:
        if self.uses_personal_access_token:
            return self._auth_via_personal_access_token()
        return super().get_conn()

    def _auth_via_personal_access_token(self) -> Any:
        from tableauserverclient import PersonalAccessTokenAuth

        if not self.conn.login or not self.conn.password:
            raise ValueError(
                f"connection {self.tableau_conn_id!r} uses a personal access token: set login to the "
                "token name and password to the token secret"
            )
        credentials = PersonalAccessTokenAuth(self.conn.login, self.conn.password, site_id=self.site_id)
        return self.server.auth.sign_in(credentials)

    def _remember_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response

    def _transient_fault(self, error: Exception) -> str | None:
        """What went wrong, when a retry can fix it; ``None`` when it cannot."""
        if isinstance(
            error, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
        ):
            return f"connection failed: {type(error).__name__}"
        status = self._last_response.status_code if self._last_response is not None else None
        if status == 401:
            return _EXPIRED_SESSION
        if status == 429:
            return "HTTP 429 rate limited"
        if status is not None and status >= 500:
            return f"HTTP {status}"
        return None

    def _retry_delay(self, attempt: int, failure: str) -> float:
        retry_after = _retry_after_seconds(self._last_response)
        if retry_after is not None:
            if retry_after > self.retry_after_max:
                raise TableauCallError(
                    f"{failure}; Tableau asked to wait {retry_after:.0f} s (Retry-After), longer than "
                    f"{self.retry_after_max:.0f} s: leaving it to the task's next try"
                )
            return retry_after
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        # Jitter spreads the retries of tasks that failed together.
        return random.uniform(ceiling / 2, ceiling)


_EXPIRED_SESSION = "HTTP 401 session expired or ended"
# No answer, or a cut one: the call may or may not have been applied, and repeating it is safe.
_CONNECTION_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def _tableau_error() -> type[Exception]:
    from tableauserverclient.server.endpoint.exceptions import TableauError

    return TableauError


def _number_extra(extras: Mapping[str, Any], name: str, default: float) -> float:
    """A numeric connection extra; a missing key or an empty string means the default."""
    value = extras.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AirflowFailException(
            f"Tableau connection extra {name!r} must be a number, got {value!r}"
        ) from None
    if number < 0:
        raise AirflowFailException(f"Tableau connection extra {name!r} must not be negative, got {value!r}")
    return number


def _retry_after_seconds(response: requests.Response | None) -> float | None:
    """The response's ``Retry-After`` in seconds (a number of seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
