"""One local bank webhook endpoint for every test that pushes alerts, not a copy in each."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pdo.delivery.egress import Egress
from pdo.delivery.webhooks import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from pdo.settings import Settings

HOLD_S = 30.0
# The receiver listens on loopback, which the dispatcher only reaches when the operator allows it.
LOOPBACK_CIDRS = ["127.0.0.0/8"]
LOOPBACK = Egress.allowing(LOOPBACK_CIDRS)
LOOPBACK_ENV = {"PDO_WEBHOOK_ALLOWED_NETWORKS": json.dumps(LOOPBACK_CIDRS)}


def allowing_loopback(settings: Settings) -> Settings:
    """The settings of an operator who allows loopback: the API then registers our receiver."""
    return settings.model_copy(update={"webhook_allowed_networks": LOOPBACK_CIDRS})


@dataclass
class Receiver:
    """What the bank's endpoint saw, and how it answers: a script of statuses, then `default`.

    In the script, 'slow' answers 200 too late for a short timeout, and 'hold' keeps that
    request open (`holding` set) until `release` is set, then answers 200.
    """

    secret: str = ""
    script: list[int | str] = field(default_factory=list)
    default: int = 200
    verify: bool = True
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self) -> int | str:
        return self.script.pop(0) if self.script else self.default

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def alert_ids(self) -> list[str]:
        return [headers[ALERT_ID_HEADER] for headers, _ in self.received]


@contextmanager
def receiver(
    script: list[int | str] | None = None, default: int = 200, verify: bool = True
) -> Iterator[Receiver]:
    """A webhook endpoint on a free localhost port. With `verify`, a request whose signature (of
    its timestamp and body) does not verify against `secret` gets 401 whatever the script says."""
    state = Receiver(script=list(script or []), default=default, verify=verify)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers.items()), body))
            status = state.answer()
            if status == "slow":
                time.sleep(1.5)
                status = 200
            elif status == "hold":
                if not state.release.is_set():
                    state.holding.set()
                    state.release.wait(HOLD_S)
                status = 200
            timestamp = self.headers.get(TIMESTAMP_HEADER)
            signature = self.headers.get(SIGNATURE_HEADER)
            if state.verify and not verify_signature(state.secret, body, timestamp, signature):
                status = 401
            try:
                self.send_response(int(status))
                self.end_headers()
            except OSError:
                pass  # the sender is gone (killed while its request was held)

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/pdo"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
