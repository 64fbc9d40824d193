"""The agent clients' connection pool, sized for the runs the process streams at once.

httpx allows 100 connections by default: the 101st stream would wait for a free connection
and fail after the pool timeout. A client here is given room for every run the process lets
stream at once (`ORCH_MAX_CONCURRENT_RUNS`; further runs wait in line before they connect)
and a few more requests besides the streams.
"""

from __future__ import annotations

from typing import Final

import httpx

# Requests that may be in flight besides the streams: a stopped run's cancel, an A2A card or
# task read, a stream whose connection is still closing as the next run starts.
SPARE_CONNECTIONS: Final = 16


def connection_limits(max_runs: int) -> httpx.Limits:
    """Connections for `max_runs` streams at once; all may stay open for the next runs."""
    connections = max_runs + SPARE_CONNECTIONS
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
