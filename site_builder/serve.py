"""Local preview of a built site over HTTP (the site itself needs no server: it opens from disk)."""
from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_server(site: str | Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    site = Path(site)
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site} holds no index.html; build the site first with `robustviz build`")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    return ThreadingHTTPServer((host, port), handler)


def serve(site: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``site`` until interrupted; binds to this machine only unless ``host`` says otherwise."""
    server = make_server(site, host, port)
    print(f"serving {site} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
