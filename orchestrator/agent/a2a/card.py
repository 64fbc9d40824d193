"""An A2A agent card, read: which endpoint to call, what the card says, what is wrong with it.

Pure, no I/O. The configured URL is where the agent is reached from here; a card often names
its in-cluster address instead (Kagent's agents do), so an interface on another host than the
configured URL is called at the configured URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from a2a.types import AgentCard, AgentInterface

from orchestrator.agent.a2a.questions import HITL_EXTENSION

JSONRPC = "JSONRPC"
CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")


@dataclass(frozen=True, slots=True)
class CardFacts:
    name: str
    version: str
    protocol_version: str
    streaming: bool
    extensions: tuple[str, ...]
    endpoint: str

    @property
    def hitl(self) -> bool:
        return HITL_EXTENSION in self.extensions

    def summary(self) -> str:
        extras = f", extensions: {', '.join(self.extensions)}" if self.extensions else ""
        streaming = "streaming" if self.streaming else "no streaming"
        return (
            f"{self.name or 'unnamed agent'} {self.version or '(no version)'}, "
            f"A2A {self.protocol_version or '?'}, {streaming}{extras}"
        )


def called_card(card: AgentCard, configured_url: str) -> AgentCard:
    """A copy of the card whose JSON-RPC interfaces on another host point at the configured URL."""
    copy = AgentCard()
    copy.CopyFrom(card)
    configured = urlsplit(configured_url)
    for interface in copy.supported_interfaces:
        if interface.protocol_binding != JSONRPC:
            continue
        named = urlsplit(interface.url)
        if not interface.url or named.netloc != configured.netloc:
            interface.url = configured_url
    return copy


def facts(card: AgentCard) -> CardFacts:
    interface = best_interface(card)
    return CardFacts(
        name=card.name,
        version=card.version,
        protocol_version=interface.protocol_version if interface is not None else "",
        streaming=card.capabilities.streaming,
        extensions=tuple(e.uri for e in card.capabilities.extensions),
        endpoint=interface.url if interface is not None else "",
    )


def best_interface(card: AgentCard) -> AgentInterface | None:
    jsonrpc = [i for i in card.supported_interfaces if i.protocol_binding == JSONRPC]
    for wanted in ("1.0", "0.3"):
        for interface in jsonrpc:
            if interface.protocol_version.startswith(wanted):
                return interface
    return jsonrpc[0] if jsonrpc else None


def problems(card: AgentCard) -> list[str]:
    """What stops the orchestrator from using this agent well, as sentences for people."""
    found = []
    if best_interface(card) is None:
        bindings = ", ".join(i.protocol_binding for i in card.supported_interfaces) or "none"
        found.append(f"The card offers no JSON-RPC interface (it offers: {bindings}).")
    if not card.capabilities.streaming:
        found.append(
            "The card does not announce streaming: answers arrive only when the task ends."
        )
    return found
