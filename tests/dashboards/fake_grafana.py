"""A small Grafana stand-in on 127.0.0.1 for exactly the HTTP API calls `dashboards.push` makes.

It follows Grafana's documented HTTP API (Data source API, Folder API, Dashboard API): uids, 404 for
unknown objects, 409 for a duplicate, 412 when a dashboard exists and `overwrite` is false, versions
that rise by one per save, auth by bearer token or basic auth (401 otherwise). Grafana itself cannot
be installed on this machine; this is the one fake in these tests and it is not a mock of our code.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGrafana:
    def __init__(self, token: str = "test-token", basic: tuple[str, str] = ("admin", "admin")) -> None:
        self.token = token
        self.basic = basic
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self._next_id = 1
        self._lock = threading.Lock()
        self.url = ""

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def authorised(self, header: str | None) -> bool:
        if header == f"Bearer {self.token}":
            return True
        if header and header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return (user, password) == self.basic
        return False

    # -- the API --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        m = re.fullmatch(r"/api/datasources/uid/([^/]+)", path)
        if m:
            uid = m.group(1)
            if uid not in self.datasources:
                return 404, {"message": "Data source not found"}
            if method == "GET":
                return 200, self.public_datasource(self.datasources[uid])
            if method == "PUT":
                ds = self.datasources[uid]
                self.store_datasource(body, ds["id"], ds.get("secure", {}))
                return 200, {"message": "Datasource updated", "id": ds["id"], "name": body["name"],
                             "datasource": self.public_datasource(self.datasources[uid])}
        if path == "/api/datasources" and method == "POST":
            if body.get("uid") in self.datasources or any(
                d["name"] == body.get("name") for d in self.datasources.values()
            ):
                return 409, {"message": "data source with the same name already exists"}
            uid = self.store_datasource(body, self.next_id(), {})
            ds = self.datasources[uid]
            return 200, {"message": "Datasource added", "id": ds["id"], "name": ds["name"],
                         "datasource": self.public_datasource(ds)}
        m = re.fullmatch(r"/api/folders/([^/]+)", path)
        if m:
            uid = m.group(1)
            if uid not in self.folders:
                return 404, {"message": "folder not found", "status": "not-found"}
            if method == "GET":
                return 200, self.folders[uid]
            if method == "PUT":
                folder = self.folders[uid]
                folder["title"] = body["title"]
                folder["version"] += 1
                return 200, folder
        if path == "/api/folders" and method == "POST":
            uid = body.get("uid") or f"f{self.next_id()}"
            if uid in self.folders or any(f["title"] == body["title"] for f in self.folders.values()):
                return 409, {"message": "a folder with the same name already exists"}
            self.folders[uid] = {"id": self.next_id(), "uid": uid, "title": body["title"],
                                 "url": f"/dashboards/f/{uid}/", "version": 1}
            return 200, self.folders[uid]
        m = re.fullmatch(r"/api/dashboards/uid/([^/]+)", path)
        if m and method == "GET":
            uid = m.group(1)
            if uid not in self.dashboards:
                return 404, {"message": "Dashboard not found"}
            stored = self.dashboards[uid]
            folder = self.folders.get(stored["folderUid"] or "", {})
            return 200, {"dashboard": copy.deepcopy(stored["dashboard"]),
                         "meta": {"folderUid": stored["folderUid"] or "",
                                  "folderTitle": folder.get("title", "General"),
                                  "version": stored["dashboard"]["version"], "slug": stored["slug"]}}
        if path == "/api/dashboards/db" and method == "POST":
            return self.save_dashboard(body)
        return 404, {"message": "Not found"}

    def store_datasource(self, body: dict[str, Any], ds_id: int, secure: dict[str, str]) -> str:
        uid = body.get("uid") or f"ds{ds_id}"
        secure = dict(secure)
        secure.update(body.get("secureJsonData") or {})
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        stored.update({"id": ds_id, "uid": uid, "secure": secure, "orgId": 1})
        stored.setdefault("jsonData", {})
        self.datasources[uid] = stored
        return uid

    @staticmethod
    def public_datasource(ds: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in ds.items() if k != "secure"}
        out["secureJsonFields"] = {k: True for k in ds.get("secure", {})}
        return out

    def save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        dash = copy.deepcopy(body.get("dashboard") or {})
        folder_uid = body.get("folderUid") or ""
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found", "status": "folder-not-found"}
        uid = dash.get("uid") or f"d{self.next_id()}"
        existing = self.dashboards.get(uid)
        if existing and not body.get("overwrite"):
            return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
        if not dash.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        dash["uid"] = uid
        dash["id"] = existing["dashboard"]["id"] if existing else self.next_id()
        dash["version"] = existing["dashboard"]["version"] + 1 if existing else 1
        slug = re.sub(r"[^a-z0-9]+", "-", dash["title"].lower()).strip("-")
        self.dashboards[uid] = {"dashboard": dash, "folderUid": folder_uid, "slug": slug}
        return 200, {"id": dash["id"], "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success",
                     "version": dash["version"], "slug": slug}


@contextmanager
def serve(fake: FakeGrafana) -> Iterator[FakeGrafana]:
    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            path = self.path.split("?", 1)[0]
            with fake._lock:
                fake.calls.append((self.command, path))
                if not fake.authorised(self.headers.get("Authorization")):
                    status, payload = 401, {"message": "Unauthorized"}
                else:
                    status, payload = fake.handle(self.command, path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _do

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
