"""Credentials for AG-UI agents: OAuth2 client credentials, fetched and cached until they expire.

A token is fetched on first use, reused until shortly before `expires_in` runs out, then fetched
again. A failure raises `AgentCredentialsError` with a sentence that names the token endpoint and
what it said, never the client secret or a token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from orchestrator.agent.errors import AgentCredentialsError, CredentialsEndpointDown

DEFAULT_LIFETIME = 300.0  # seconds a token without `expires_in` is reused
MAX_EARLY_REFRESH = 60.0  # refresh at most this long before expiry
FETCH_TIMEOUT = 10.0


class ClientCredentials:
    """OAuth2 client credentials grant (RFC 6749 §4.4) with a cached access token."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        audience: str | None = None,
        client_auth: Literal["basic", "post"] = "basic",
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.audience = audience
        self.client_auth = client_auth
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"

    async def headers(self) -> dict[str, str]:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                await self._fetch()
            assert self._token is not None
            return {"Authorization": f"Bearer {self._token}"}

    def forget(self) -> None:
        """The agent refused the token: fetch a new one next time."""
        self._token = None

    async def _fetch(self) -> None:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        auth: httpx.BasicAuth | None = None
        if self.client_auth == "basic":
            auth = httpx.BasicAuth(self.client_id, self._secret.get_secret_value())
        else:
            form |= {"client_id": self.client_id, "client_secret": self._secret.get_secret_value()}
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT) as client:
                response = await client.post(
                    self.token_url, data=form, auth=auth, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise CredentialsEndpointDown(
                f"The token endpoint {self.token_url} could not be reached ({type(exc).__name__})."
            ) from None
        started = time.monotonic()
        body = _json(response)
        if response.status_code != 200:
            said = _oauth_error(body)
            failed = (
                CredentialsEndpointDown
                if _transient(response.status_code)
                else AgentCredentialsError
            )
            raise failed(
                f"The token endpoint {self.token_url} answered HTTP {response.status_code}"
                f"{f' ({said})' if said else ''}."
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AgentCredentialsError(
                f"The token endpoint {self.token_url} answered without an access_token."
            )
        lifetime = _lifetime(body.get("expires_in"))
        self._token = token
        self._refresh_at = started + lifetime - min(MAX_EARLY_REFRESH, lifetime / 10)


def _json(response: httpx.Response) -> Mapping[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _oauth_error(body: Mapping[str, Any]) -> str:
    """`error: error_description` of an RFC 6749 error answer, shortened and printable."""
    parts = [str(body[k]) for k in ("error", "error_description") if isinstance(body.get(k), str)]
    said = ": ".join(parts)[:200]
    return said.encode("unicode_escape", "backslashreplace").decode("ascii")


def _lifetime(expires_in: Any) -> float:
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return DEFAULT_LIFETIME
    return seconds if seconds > 0 else DEFAULT_LIFETIME


def _transient(status: int) -> bool:
    """A failure of the endpoint itself, not a refusal of our credentials."""
    return status >= 500 or status in (408, 429)
