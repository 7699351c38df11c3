"""The official ``TableauHook``, extended to sign in with a personal access token.

The official hook signs in with a username/password or a JWT. Most Tableau
Cloud sites allow only personal access tokens (PAT) for automation, so this
hook adds PAT sign-in on the same ``tableau`` connection type:

- ``login``: the token name, ``password``: the token secret,
- extra ``{"auth": "pat", "site_id": "<site content URL>"}``.

Without ``"auth": "pat"`` it behaves exactly as the official hook.
A PAT holds one session at a time: a second sign-in with the same token ends
the first session, which is why every Tableau task runs in the one-slot
``tableau`` pool.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.tableau.hooks.tableau import TableauHook

PAT_AUTH = "pat"
# Seconds a single request to Tableau may take; a publish of a large extract is the slowest call.
DEFAULT_REQUEST_TIMEOUT = 900.0


class FrontierTableauHook(TableauHook):
    """Tableau hook that also signs in with a personal access token.

    :param site_id: the site's content URL; defaults to the connection's ``site_id`` extra.
    :param tableau_conn_id: the Airflow connection of type ``tableau``.
    """

    def __init__(
        self, site_id: str | None = None, tableau_conn_id: str = TableauHook.default_conn_name
    ) -> None:
        super().__init__(site_id=site_id, tableau_conn_id=tableau_conn_id)
        timeout = self.conn.extra_dejson.get("timeout")
        # requests waits forever without a timeout; a hung Tableau call would hold the pool slot.
        self.server.add_http_options({"timeout": float(timeout) if timeout else DEFAULT_REQUEST_TIMEOUT})

    @property
    def uses_personal_access_token(self) -> bool:
        return str(self.conn.extra_dejson.get("auth", "")).lower() == PAT_AUTH

    def get_conn(self) -> Any:
        """Sign in (personal access token, password or JWT) and return the sign-out context manager."""
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

    def test_connection(self) -> tuple[bool, str]:
        """Sign in and out once; report the server's REST API version on success."""
        try:
            with self:
                return True, f"signed in to {self.server.server_address} (REST API {self.server.version})"
        except Exception as error:
            return False, f"could not sign in to Tableau: {error}"
