"""Hostile and malformed requests sent to live replicas in the middle of a chaos run: each must
get a 4xx (invariant 6)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import httpx

from tests.service_process import ServiceProcess
from tests.test_malformed_requests import CASES, sign_bytes


async def send_malformed(
    live: Callable[[], list[ServiceProcess]], spread: float, secret: str, count: int = 12
) -> tuple[int, list[str]]:
    """(requests sent, what was answered with anything but a 4xx)."""
    bad: list[str] = []
    sent = 0
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(count):
            await asyncio.sleep(random.uniform(0, spread / count))
            replicas = live()
            if not replicas:
                continue
            name, body, content_type, sign = random.choice(CASES)
            raw = body.encode("utf-8", "surrogateescape")
            unsigned = {"Content-Type": content_type}
            headers = sign_bytes(raw, content_type, secret) if sign else unsigned
            try:
                response = await client.post(
                    random.choice(replicas).events_url, content=raw, headers=headers
                )
            except httpx.HTTPError:
                continue  # the replica died meanwhile (a kill): not an answer
            sent += 1
            if not 400 <= response.status_code < 500:
                bad.append(f"{name}: HTTP {response.status_code}")
    return sent, bad
