"""The alarm stream answers to its token for as long as it is open, not only when it opens (docs/api.md):
a logout, a revoked account or a change of roles or zones ends it, so a reader no longer entitled to the
alarms, or entitled to fewer of their details, stops receiving them. The page then reconnects and is asked
again (401, or a stream redacted for the new roles)."""

from __future__ import annotations

import threading

import httpx

from server.api.routes.alarms import _ChangeView
from tests.server.api.api_server import Api

ENDS_WITHIN_S = 20.0
"""A generous wait for the stream's end on a loaded machine: the server looks every few seconds."""


class _Reader:
    """Holds /api/alarms/stream open in a thread and notes when the server ends it."""

    def __init__(self, client: httpx.Client) -> None:
        self.opened = threading.Event()
        self.ended = threading.Event()
        self.error: Exception | None = None
        threading.Thread(target=self._run, args=(client,), daemon=True).start()

    def _run(self, client: httpx.Client) -> None:
        try:
            with client.stream("GET", "/api/alarms/stream", timeout=httpx.Timeout(60, read=60)) as response:
                assert response.status_code == 200, response.status_code
                for line in response.iter_lines():
                    if line.startswith("retry:"):
                        self.opened.set()
        except Exception as error:  # the test reads it
            self.error = error
        finally:
            self.ended.set()


def test_a_logout_ends_the_open_stream(api: Api) -> None:
    token = api.account("stream-lead", ["shift_lead"])
    reader = _Reader(api.client(token))
    assert reader.opened.wait(15), reader.error
    assert api.client(token).post("/api/logout").status_code == 204
    assert reader.ended.wait(ENDS_WITHIN_S), "the stream went on after its token was logged out"
    assert reader.error is None, reader.error  # ended by the server, not broken


def test_a_change_of_roles_ends_the_open_stream_and_an_unchanged_account_keeps_it(api: Api) -> None:
    changed = _Reader(api.client(api.account("stream-sup", ["supervisor"], ["z1"])))
    kept = _Reader(api.client(api.account("stream-keep", ["supervisor"], ["z1"])))
    assert changed.opened.wait(15) and kept.opened.wait(15)
    response = api.admin.put("/api/users/stream-sup", json={"roles": ["operator"], "zones": ["z1"]})
    assert response.status_code == 200, response.text
    assert changed.ended.wait(ENDS_WITHIN_S), "the stream kept the supervisor's view after the roles changed"
    assert not kept.ended.is_set(), "an account nobody changed lost its stream"



def test_one_alarm_change_is_viewed_once_for_every_open_stream() -> None:
    """Each open stream's listener runs on the ingest thread; the view of an overload alarm reads its cuts
    (a query). One change, told to every reader as the same object, is viewed once; the next change again."""
    viewed: list[object] = []

    class Views:
        def public(self, alarm: object) -> str:
            viewed.append(alarm)
            return f"view {len(viewed)}"

    cache, first, second = _ChangeView(), object(), object()
    shown = {cache.of(first, Views()) for _ in range(50)}  # type: ignore[arg-type]
    assert viewed == [first] and shown == {"view 1"}
    assert cache.of(second, Views()) == "view 2"  # type: ignore[arg-type]
    assert viewed == [first, second]
