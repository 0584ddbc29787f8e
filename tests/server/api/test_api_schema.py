"""schemathesis against the running server's own OpenAPI, as an admin: no 5xx, every response conforms
to the schema (status code, content type, headers, body), bad input is refused with a 4xx.

Each operation gets a bounded, derandomized number of examples in the default run (reproducible);
many more, random, with FLOORWATCH_LONG=1. Failures are collected per operation and reported together.
Left out: the SSE stream (it never ends by design) and logout (it would revoke the admin token the
run uses; tests/e2e/test_roles.py covers logout).

Driven through hypothesis by hand (operation.as_strategy) rather than schemathesis' pytest plugin,
which does not load under pytest 9, and sent with httpx.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from tests.server.api.api_server import ADMIN_TOKEN, Api, api_routes, server_on_mosquitto

LONG = os.environ.get("FLOORWATCH_LONG") == "1"
EXAMPLES = int(os.environ.get("FLOORWATCH_SCHEMA_EXAMPLES", 300 if LONG else 10))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, response_headers_conformance]
"""Checks on the response at hand, in both modes. Not used: the auth-probing checks (they re-send through
schemathesis' own transport; tests/server/api/test_api_roles.py checks every route and role instead) and
negative_data_rejection, whose failures here were all false positives: the generator negates the
Authorization header, which this test puts back, leaving only unknown query parameters (ignored by
the API, schemathesis issue #3730) or a repeated scalar query parameter (the last one counts)."""
EXCLUDED = {"/api/alarms/stream", "/api/logout"}


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with server_on_mosquitto(tmp_path_factory.mktemp("schema")) as api:
        api.overload_strip()  # an open alarm: alarm ids exist, so alarm routes get past 404
        yield api


def send(http: httpx.Client, kwargs: dict[str, Any]) -> httpx.Response:
    """The request schemathesis built (requests-style keyword arguments), sent with httpx: the
    schemathesis requests transport trips over the urllib3-future installed beside it."""
    return http.request(kwargs["method"], kwargs["url"], headers=kwargs.get("headers"), params=kwargs.get("params"),
                        cookies=kwargs.get("cookies"), json=kwargs.get("json"),
                        content=kwargs.get("data") if isinstance(kwargs.get("data"), (bytes, str)) else None,
                        data=kwargs.get("data") if isinstance(kwargs.get("data"), dict) else None,
                        files=kwargs.get("files"))


def examples(strategy: Any, call: Callable[[schemathesis.Case[Any]], None]) -> Callable[[], None]:
    """A hypothesis test of one operation and mode: bounded, derandomized unless FLOORWATCH_LONG=1."""

    @settings(max_examples=EXAMPLES, derandomize=not LONG, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: schemathesis.Case[Any]) -> None:
        call(case)

    return run


def test_no_server_error_and_responses_match_the_schema(api_server: Api) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    failures: dict[str, str] = {}
    calls: dict[str, int] = {}
    statuses: dict[int, int] = {}
    unsatisfiable: list[str] = []
    http = httpx.Client(timeout=30)
    started = time.monotonic()
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    for operation in operations:
        if operation.path in EXCLUDED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.method.upper()} {operation.path} [{mode.value}]"

            def call(case: schemathesis.Case[Any], label: str = label) -> None:
                calls[label] = calls.get(label, 0) + 1
                try:
                    response = send(http, case.as_transport_kwargs(base_url=api_server.url, headers=headers))
                except httpx.LocalProtocolError:
                    # a request the HTTP client refuses to send (a generated Content-Length header that
                    # contradicts the body): nothing reaches the server, so there is nothing to judge
                    reject()
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=CHECKS, headers=headers)

            run = examples(operation.as_strategy(generation_mode=mode), call)
            try:
                run()
            except Unsatisfiable:  # nothing to get wrong (no parameters, no body): no negative case
                unsatisfiable.append(label)
            except (FailureGroup, AssertionError) as exc:
                failures[label] = str(exc)[:1500]
    elapsed = time.monotonic() - started
    http.close()
    print(f"\nschemathesis {schemathesis.__version__}: {len(calls)} operations × modes, {sum(calls.values())} calls "
          f"(≤{EXAMPLES} examples each), {elapsed:.1f} s; statuses {dict(sorted(statuses.items()))}; "
          f"failing operations: {len(failures)}; no negative input possible: {len(unsatisfiable)}")
    for label, count in sorted(calls.items()):
        print(f"  {label}: {count} calls{'  FAILED' if label in failures else ''}")
    assert len(calls) >= 60, calls  # every operation but the two left out was exercised
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_the_schema_lists_every_api_route(api_server: Api) -> None:
    """What is fuzzed is the whole API: every /api route of the app is in /openapi.json."""
    from server.app import create_app

    paths = api_server.admin.get("/openapi.json").json()["paths"]
    documented = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    routes = {(method, path) for method, path, _ in api_routes(create_app(api_server.settings))}
    assert len(routes) >= 30 and routes <= documented, routes - documented
