"""Prometheus metrics, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TRANSITIONS = Counter(
    "orchestrator_transitions_total",
    "Machine triggers fired",
    ["trigger", "from_state", "to_state"],
)
RUNS = Counter("orchestrator_runs_total", "Agent runs by how they ended", ["outcome"])
RUN_SECONDS = Histogram(
    "orchestrator_run_seconds",
    "Agent run duration",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
)
INBOUND = Counter("orchestrator_inbound_total", "Slack deliveries", ["kind", "outcome"])
SLACK_ERRORS = Counter("orchestrator_slack_errors_total", "Slack API errors", ["error"])
LIVE_RUNS = Gauge("orchestrator_live_runs", "Runs streaming in this process")
RUNS_WAITING = Gauge(
    "orchestrator_runs_waiting", "Runs waiting in line for a free slot (ORCH_MAX_CONCURRENT_RUNS)"
)
SLACK_REQUESTS_WAITING = Gauge(
    "orchestrator_slack_requests_waiting",
    "Slack requests being handled, not acknowledged yet (runs they start wait for them)",
)
