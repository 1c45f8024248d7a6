"""Put on PYTHONPATH by the hub-dataset tests: every process they start (train.py, swift sft and its
workers, infer.py) can connect to 127.0.0.1 only, so a client that ignores its endpoint fails loudly
instead of reaching the real hub. The offline variables cannot do this: they would stop the dataset loader."""
import socket

_connect = socket.socket.connect


def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1", "::1", "localhost"):
        raise ConnectionRefusedError(f"socket guard: connection to {host} refused (tests stay on 127.0.0.1)")
    return _connect(self, address)


socket.socket.connect = _guarded
