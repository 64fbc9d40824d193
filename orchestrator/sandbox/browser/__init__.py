"""The browser sandbox (`orchestrator sandbox`): a page that looks and acts like a Slack channel,
in front of the Slack emulator, an agent and the real service."""

from orchestrator.sandbox.browser.sandbox import run_sandbox

__all__ = ["run_sandbox"]
