"""Sending one message through one apprise URL. The only module that imports apprise.

A URL is never logged or put into an error text (it may carry tokens): errors name the scheme only.
"""

from __future__ import annotations


class SendError(RuntimeError):
    """The channel did not take the message (the text names the scheme, never the URL)."""


IDEMPOTENCY_HEADER = "Idempotency-Key"
"""A push is delivered at least once: a crash between the send and its record sends it again. Webhook
receivers get the outbox row's key in this header (the same on every attempt) to drop the repeat."""
_HTTP_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "?"


def with_key(url: str, key: str | None) -> str:
    """The apprise URL with the idempotency header added (apprise's `+Header=value` parameter) for the
    generic HTTP channels; other channels unchanged."""
    if key is None or _scheme(url) not in _HTTP_SCHEMES:
        return url
    return f"{url}{'&' if '?' in url else '?'}+{IDEMPOTENCY_HEADER}={key}"


class AppriseSender:
    """mailto://, json://, ntfy://, wecombot://, dingtalk://, feishu://, slack://, msteams://, ..."""

    def warm(self) -> None:
        """Import apprise and load its plugins ahead of the first push (a third of a second here, more
        under load), which would otherwise delay the first page after a start. Nothing is sent."""
        import apprise

        apprise.Apprise().add("json://127.0.0.1/")

    def send(self, url: str, title: str, body: str, key: str | None = None) -> None:
        import apprise

        client = apprise.Apprise()
        if not client.add(with_key(url, key)):
            raise SendError(f"{_scheme(url)}: not a valid apprise URL")
        ok = client.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            raise SendError(f"{_scheme(url)}: the service did not accept the message")
