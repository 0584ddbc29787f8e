"""The FastAPI application factory. No app and no settings exist at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from server.api.forwarded import ForwardedClient
from server.api.routes import (
    adoption,
    alarms,
    audit,
    evacuations,
    fire,
    floor,
    inspections,
    notifications,
    relays,
    system,
    users,
)
from server.api.schemas import ERROR_RESPONSES
from server.domain.leases import LeaseLost
from server.domain.site import Site
from server.runtime import Runtime, utc_now
from server.services.auth import LoginLimiter
from server.services.lease import LeaseKeeper
from server.settings import Settings

WEB = Path(__file__).resolve().parent / "web"
RESOURCES = (system, alarms, users, fire, inspections, floor, evacuations, notifications, relays, audit, adoption)
"""The route modules under /api, included in this order (the order of /openapi.json)."""
GRACEFUL_STOP_S = 5
"""How long uvicorn's clean stop waits for open requests: a live page's alarm stream stays open until the
page closes, so without a bound a stop (SIGTERM, Ctrl-C) would wait for every phone, and hand the lease back only
then."""
LEASE_LOST = ("this server lost the site's lease and another worker runs the site now: use that worker, and "
              "restart this one to make it a standby")


def create_app(settings: Settings, clock: Callable[[], datetime] = utc_now, lease: LeaseKeeper | None = None,
               site: Site | None = None, owns_process: bool = False) -> FastAPI:
    """`lease`: the site's partition lease, already held (PostgreSQL workers, server/workers.py); `site`: the
    site file already read and checked; `owns_process`: see `Runtime.owns_process`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings, clock=clock, lease=lease, preloaded_site=site, owns_process=owns_process)
        runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(title="Floorwatch", version="0.1.0", lifespan=lifespan,
                  description="Electrical, fire and access safety monitor for contact-center floors.")
    app.state.login_limiter = LoginLimiter()  # failed logins count per application, never across two

    def forward_key() -> str | None:  # a standby's forwarded client address counts while this worker owns
        return lease.forward_key if lease is not None and lease.state == "owner" else None

    app.add_middleware(ForwardedClient, key=forward_key)

    @app.middleware("http")
    async def refuse_after_lease_lost(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                                      ) -> Response:
        # Another worker runs the site now: this one may not start an evacuation, cut a plug or record an
        # acknowledgement under a lease it no longer holds. Its health still says what happened.
        runtime = getattr(app.state, "runtime", None)
        path = request.url.path
        if (runtime is not None and runtime.lease_lost.is_set() and path.startswith("/api/")
                and path != "/api/health"):
            return JSONResponse({"detail": LEASE_LOST}, status_code=503)
        return await call_next(request)

    @app.exception_handler(LeaseLost)
    async def lease_lost(_request: Request, _exc: LeaseLost) -> Response:
        # A request that came in before this worker knew: its transaction's fence found the lease taken,
        # rolled it back and published nothing (the lease-lost stop has begun).
        return JSONResponse({"detail": LEASE_LOST}, status_code=503)

    for resource in RESOURCES:
        app.include_router(resource.router, prefix="/api", responses=ERROR_RESPONSES)
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html; charset=utf-8")

    return app
