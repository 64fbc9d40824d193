"""An OAuth2 token endpoint (client credentials grant) on 127.0.0.1 for the agent-auth tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from orchestrator.sandbox.loopback import LoopbackServer


@dataclass
class TokenEndpoint:
    client_id: str = "orchestrator"
    client_secret: str = "client-s3cret-value"
    expires_in: int = 3600
    unavailable: int = 0  # this many requests are answered 503, as by an endpoint in trouble
    issued: list[str] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _server: LoopbackServer | None = None

    async def start(self) -> str:
        app = Starlette(routes=[Route("/oauth/token", self._token, methods=["POST"])])
        self._server = LoopbackServer(app)
        self.url = f"{await self._server.start()}/oauth/token"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()

    async def _token(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode()))
        self.forms.append(form)
        if self.unavailable > 0:
            self.unavailable -= 1
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if _basic(request.headers.get("authorization", "")) != (
            self.client_id,
            self.client_secret,
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                status_code=401,
            )
        token = f"access-{len(self.issued) + 1}"
        self.issued.append(token)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        )


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password
