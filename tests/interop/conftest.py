"""The interop suite: real AG-UI servers from PyPI (see peers.py).

`ORCH_SKIP_INTEROP=1` skips it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.peers import PeerServer, PeerUnavailable, skip_requested

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not skip_requested():
        return
    marker = pytest.mark.skip(reason="ORCH_SKIP_INTEROP=1: the real AG-UI servers are not run")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(marker)


def running_peer(
    name: str, mode: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PeerServer]:
    """Start a peer for a test module; a peer that cannot be installed or started fails the
    tests that need it, with the reason."""
    server = PeerServer(name, mode, tmp_path_factory.mktemp(name))
    try:
        server.start()
    except PeerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
