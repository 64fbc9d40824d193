"""Slack thread orchestrator: every Slack thread is a persisted state machine driven by AG-UI."""

__version__ = "0.1.0"
