"""`threads show` takes what people copy out of Slack: a message link or a timestamp."""

from __future__ import annotations

import pytest

from orchestrator.slack.permalinks import SlackReference, parse_reference


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1795951320.000001", SlackReference("1795951320.000001")),
        (" p1795951320000001 ", SlackReference("1795951320.000001")),
        (
            "https://acme.slack.com/archives/C0GENERAL/p1795951320000001",
            SlackReference("1795951320.000001", "C0GENERAL"),
        ),
        (
            "https://acme.slack.com/archives/C0GENERAL/p1795951320000009"
            "?thread_ts=1795951320.000001&cid=C0GENERAL",
            SlackReference("1795951320.000001", "C0GENERAL"),
        ),
        (
            "https://acme.enterprise.slack.com/archives/G0PRIVATE/p1795951320000001/",
            SlackReference("1795951320.000001", "G0PRIVATE"),
        ),
    ],
)
def test_links_and_timestamps_name_the_thread(given: str, expected: SlackReference) -> None:
    assert parse_reference(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "10b3c839",  # an id prefix
        "10b3c839-83a0-5a60-9e4e-a9b037881f66",
        "https://acme.slack.com/archives/C0GENERAL",
        "https://example.com/archives/C0GENERAL/not-a-message",
        "ftp://acme.slack.com/archives/C0GENERAL/p1795951320000001",
        "1795951320.1",
    ],
)
def test_anything_else_is_not_a_slack_reference(given: str) -> None:
    assert parse_reference(given) is None
