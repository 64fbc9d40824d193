"""The engine: turns Slack deliveries and agent events into transitions of the thread machine."""

from orchestrator.engine.context import Inbound
from orchestrator.engine.engine import Engine

__all__ = ["Engine", "Inbound"]
