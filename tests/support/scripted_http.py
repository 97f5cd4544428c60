"""A throwaway HTTP server on loopback that answers from a script, for client and state
tests: each connection takes the next step (the last one repeats). A step is
``(status, body)``, ``("raw", bytes)`` sent as is then closed, ``("slow", bytes, seconds)``
sent one byte every ``seconds``, or ``("close",)`` (accept, then close without a word)."""
import json
import socket
import threading
import time


class ScriptedHTTP:
    def __init__(self, steps):
        self.steps = list(steps)
        self.hits = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            step = self.steps[min(self.hits, len(self.steps) - 1)]
            self.hits += 1
            threading.Thread(target=self._answer, args=(conn, step), daemon=True).start()

    def _answer(self, conn, step):
        try:
            conn.settimeout(5)
            try:
                conn.recv(65536)          # the request (small, one read is enough here)
            except OSError:
                pass
            if step[0] == "close":
                return
            if step[0] == "raw":
                conn.sendall(step[1])
                return
            if step[0] == "slow":
                for b in step[1]:
                    if self._stop.is_set():
                        return
                    conn.sendall(bytes([b]))
                    time.sleep(step[2])
                return
            status, body = step
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % (status, len(data)) + data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self._stop.set()
        self.sock.close()
        self._thread.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def free_port():
    """A loopback port with nothing listening on it (right now)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
