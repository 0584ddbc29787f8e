"""A notification worker in its own process that claims due rows and then hangs before sending
(the parent SIGKILLs it there): `python crash_worker.py SQL_URL SITE_FILE`."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from server.adapters.notify import AppriseSender
from server.adapters.sql.database import make_engine, session_factory
from server.adapters.sql.notifications import NotifyRepository
from server.adapters.sql.silences import SilenceRepository
from server.domain.site import parse_site
from server.services.notify import NotificationService


def main() -> None:
    url, site_file = sys.argv[1], sys.argv[2]
    site = parse_site(Path(site_file).read_text(encoding="utf-8"), site_file)

    def hang(nid: int) -> None:
        print(f"CLAIMED {nid}", flush=True)
        time.sleep(3600)

    sessions = session_factory(make_engine(url))
    svc = NotificationService(NotifyRepository(sessions), site, lambda: datetime.now(UTC), AppriseSender(),
                              silences=SilenceRepository(sessions), worker_id="doomed", before_send=hang)
    svc.deliver(datetime.now(UTC))


if __name__ == "__main__":
    main()
