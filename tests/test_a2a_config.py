"""A2A agents in the channel configuration: `protocol`, `kagent_base`, keyword routes."""

from __future__ import annotations

import pytest

from orchestrator.config.channels import ChannelDirectory, ConfigFileError, parse_config

KAGENT = r"""
kagent_base: https://kagent.example.test/
agents:
  k8s-agent-dev:
    kagent: kagent/k8s-agent-dev
    headers: {CF-Access-Client-Id: cf-id, CF-Access-Client-Secret: cf-secret}
  helper: {url: "https://a2a.example.test/helper", protocol: a2a, auth: {bearer: t0k}}
defaults:
  agent: kagent/k8s-agent
  routes:
    - {match: "\\b(dev|development)\\b", agent: k8s-agent-dev}
    - {match: "^help", agent: helper}
channels:
  C0PLAIN: {agent: "https://agui.example.test/agent"}
  C0OWN:
    routes: []
"""


def directory(text: str = KAGENT) -> ChannelDirectory:
    return ChannelDirectory(
        parse_config(text, "cfg.yaml"),
        default_agent_url="http://127.0.0.1:9/",
        agent_headers={},
    )


def test_kagent_agents_are_a2a_under_kagent_base():
    policy = directory().policy("C0ANY")

    assert (policy.agent.name, policy.agent.url, policy.agent.protocol) == (
        "kagent/k8s-agent",
        "https://kagent.example.test/api/a2a/kagent/k8s-agent",
        "a2a",
    )
    dev = policy.routes[0].agent
    assert dev.url == "https://kagent.example.test/api/a2a/kagent/k8s-agent-dev"
    assert dev.protocol == "a2a"
    assert dev.headers == {"CF-Access-Client-Id": "cf-id", "CF-Access-Client-Secret": "cf-secret"}
    helper = policy.routes[1].agent
    assert (helper.protocol, helper.headers["Authorization"]) == ("a2a", "Bearer t0k")
    assert directory().policy("C0PLAIN").agent.protocol == "ag-ui"


def test_first_matching_route_wins_else_the_channel_agent():
    policy = directory().policy("C0ANY")

    assert policy.agent_for("check DEV pods").name == "k8s-agent-dev"
    assert policy.agent_for("help with development").name == "k8s-agent-dev"
    assert policy.agent_for("help me").name == "helper"
    assert policy.agent_for("check the devices").name == "kagent/k8s-agent"
    assert policy.agent_for("anything", kept="helper").name == "helper"
    assert policy.agent_for("check dev", kept="gone-agent").name == "k8s-agent-dev"
    assert directory().policy("C0OWN").agent_for("check dev").name == "kagent/k8s-agent"


def test_every_routed_agent_is_checked():
    names = {target.name for target in directory().targets()}

    assert {"kagent/k8s-agent", "k8s-agent-dev", "helper"} <= names


def test_the_default_agent_speaks_agent_protocol():
    plain = ChannelDirectory(
        parse_config("", "cfg.yaml"),
        default_agent_url="http://127.0.0.1:9/",
        agent_headers={},
        default_agent_protocol="a2a",
    )

    assert plain.policy("C0ANY").agent.protocol == "a2a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("defaults: {agent: kagent/k8s-agent}\n", "defaults.agent: 'kagent/k8s-agent' is a Kagent"),
        (
            "kagent_base: https://k\ndefaults:\n  routes: [{match: '(', agent: a/b}]\n",
            "defaults.routes.0.match: not a regular expression",
        ),
        (
            "kagent_base: https://k\ndefaults:\n  routes: [{match: x, agent: nobody}]\n",
            "defaults.routes.0.agent: 'nobody' is an agent id, but there is no agent_base",
        ),
        (
            "agents:\n  a: {kagent: just-a-name}\nkagent_base: https://k\n",
            "write it namespace/agent",
        ),
        ("kagent_base: kagent.local\n", "kagent_base: must be an http:// or https:// URL"),
        ("agents:\n  a: {url: 'https://x', protocol: grpc}\n", "agents.a.protocol"),
    ],
)
def test_bad_a2a_configuration_says_where(text: str, expected: str):
    with pytest.raises(ConfigFileError) as error:
        parse_config(text, "cfg.yaml")

    assert expected in str(error.value)
