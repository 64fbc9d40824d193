"""The A2A adapter: A2A agents (1.0, and 0.3 such as Kagent's) behind the agent seam."""

from orchestrator.agent.a2a.client import A2AClient
from orchestrator.agent.a2a.translate import TASK_EVENT

__all__ = ["TASK_EVENT", "A2AClient"]
