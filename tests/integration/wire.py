"""A TCP proxy in front of PostgreSQL that counts round trips: how often the server answered
something the client sent since its last answer. PostgreSQL sends its answers to a pipeline
of statements when it reaches the pipeline's end (a Sync), so statements sent together cost
one round trip however many they are, and the count does not depend on timing."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

from sqlalchemy.engine import make_url

from storage.db import normalise_url


class CountingProxy:
    def __init__(self, url: str) -> None:
        parsed = make_url(normalise_url(url))
        self._target = (parsed.host or "127.0.0.1", parsed.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        #: The same database, reached through the proxy.
        self.url = parsed.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        self.round_trips = 0
        #: Cut the connection when the client starts its n-th flight of messages since the
        #: last reset (one flight a round trip), before the server sees it: None never.
        self.cut_at: int | None = None
        self._flights = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                s.close()

    def reset(self, *, cut_at: int | None = None) -> None:
        with self._lock:
            self.round_trips, self._flights, self.cut_at = 0, 0, cut_at

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, server]
            # Whose turn it was last on this connection: the client's sending, or the server's
            # answering. Shared by both directions' threads.
            turn = {"client": False}
            for source, sink, answering in ((client, server, False), (server, client, True)):
                threading.Thread(
                    target=self._pump, args=(source, sink, answering, turn), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, answering: bool, turn: dict[str, bool]
    ) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    if answering and turn["client"]:
                        self.round_trips += 1
                    if not answering and not turn["client"]:
                        self._flights += 1
                        if self._flights == self.cut_at:
                            return  # the finally below shuts both sides
                    turn["client"] = not answering
                # The client's bytes are marked as its turn before the server can see them,
                # so the answer to them always finds the mark.
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
