from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.a2a_peers import Peer, running_peer


@pytest.fixture(scope="session")
def a2a_sdk_peer() -> Iterator[Peer]:
    """An A2A 1.0 agent (`a2a-sdk` 1.x) announcing the hitl/v1 extension."""
    with running_peer("a2a_sdk") as peer:
        yield peer


@pytest.fixture(scope="session")
def kagent_peer() -> Iterator[Peer]:
    """Kagent's released runtime (`kagent-adk` 0.10, A2A 0.3) with a scripted model."""
    with running_peer("kagent_adk") as peer:
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
