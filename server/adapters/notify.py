"""Sending one message through one apprise URL. The only module that imports apprise.

A URL is never logged or put into an error text (it may carry tokens): errors name the scheme only.
"""

from __future__ import annotations

from typing import Protocol


class SendError(RuntimeError):
    """The channel did not take the message (the text names the scheme, never the URL)."""


class Sender(Protocol):
    def send(self, url: str, title: str, body: str) -> None: ...


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "?"


class AppriseSender:
    """mailto://, json://, ntfy://, wecombot://, dingtalk://, feishu://, slack://, msteams://, ..."""

    def send(self, url: str, title: str, body: str) -> None:
        import apprise

        client = apprise.Apprise()
        if not client.add(url):
            raise SendError(f"{_scheme(url)}: not a valid apprise URL")
        ok = client.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            raise SendError(f"{_scheme(url)}: the service did not accept the message")
