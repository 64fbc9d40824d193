"""The interop suite: real AG-UI servers from PyPI (see peers.py).

`ORCH_SKIP_INTEROP=1` skips it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.a2a_peers import Peer
from tests.interop.a2a_peers import running_peer as running_a2a_peer
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


@pytest.fixture(scope="session")
def a2a_sdk_peer() -> Iterator[Peer]:
    """An A2A 1.0 agent (`a2a-sdk` 1.x) announcing the hitl/v1 extension."""
    with running_a2a_peer("a2a_sdk") as peer:
        yield peer


@pytest.fixture(scope="session")
def kagent_peer() -> Iterator[Peer]:
    """Kagent's released runtime (`kagent-adk` 0.10, A2A 0.3) with a scripted model."""
    with running_a2a_peer("kagent_adk") as peer:
        yield peer


@pytest.fixture(autouse=True)
def fresh_records(request: pytest.FixtureRequest) -> None:
    """Each test reads only what the peers it uses recorded during the test (Slack thread ids,
    and so A2A context ids, repeat from one test's emulator to the next)."""
    names = [n for n in ("a2a_sdk_peer", "kagent_peer") if n in request.fixturenames]
    if "peer_name" in request.fixturenames:
        names.append(request.getfixturevalue("peer_name"))
    for name in names:
        request.getfixturevalue(name).forget()
