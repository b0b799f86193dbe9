"""Loopback-only network namespaces for the local stack and the end-to-end test (Linux, root).

The Agents Playground probes a cloud metadata address when it starts. Inside a network
namespace that has nothing but `lo`, that probe (and anything else) can only reach loopback.

* `python -m scripts.netns -- CMD ...` runs CMD in a fresh loopback-only namespace
  (`make e2e` runs pytest this way). The same as `unshare -n sh -c 'ip link set lo up; exec
  CMD'`, without needing util-linux or iproute2.
* `Forwarder` listens on the host's loopback and, per connection, connects to the same port
  inside another process's namespace (a socket belongs to the namespace it was created in, so a
  worker thread that entered the namespace creates the sockets; the event loop relays them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

logger = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def interfaces() -> list[str]:
    """Network interfaces of the calling thread's namespace."""
    return sorted(name for _, name in socket.if_nameindex())


def is_loopback_only() -> bool:
    """True inside a namespace whose only interface is `lo` (what the rule above requires)."""
    try:
        return interfaces() == ["lo"]
    except OSError:
        return False


def bring_loopback_up() -> None:
    """`ip link set lo up`, with an ioctl (a new namespace's `lo` starts down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


def enter_new_namespace() -> None:
    """Move this (single-threaded) process into a new loopback-only network namespace."""
    _check(_libc().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    bring_loopback_up()


def enter_namespace(fd: int) -> None:
    """Move the calling thread into the network namespace `fd` refers to (setns)."""
    _check(_libc().setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)")


def open_namespace_of(pid: int, timeout: float = 10.0) -> int:
    """An fd for the network namespace of `pid`, once it differs from ours (it has unshared).

    Holding the fd keeps the namespace itself, so the pid may exit or be reused afterwards.
    """
    own = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if os.readlink(f"/proc/self/fd/{fd}") != own:
            return fd
        os.close(fd)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"process {pid} did not enter a new network namespace")
        time.sleep(0.02)


def can_isolate() -> bool:
    """Whether this process may create network namespaces (root, and not forbidden here)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        [sys.executable, "-m", "scripts.netns", "--", sys.executable, "-c", "pass"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return probe.returncode == 0


class Forwarder:
    """Relays TCP from `host`:`port` here to 127.0.0.1:`port` in the namespace `netns_fd`.

    Runs its own event loop in a daemon thread; `start()` raises if a required port cannot be
    bound (the others are skipped with a warning).
    """

    def __init__(self, netns_fd: int, ports: list[int], host: str = "127.0.0.1") -> None:
        self.ports = ports
        self.host = host
        self.bound: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._connector = ThreadPoolExecutor(
            max_workers=4,
            thread_name_prefix="netns",
            initializer=enter_namespace,
            initargs=(netns_fd,),
        )
        self._servers: list[asyncio.base_events.Server] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self, required: tuple[int, ...] = ()) -> Forwarder:
        self._thread.start()
        for port in self.ports:
            try:
                server = asyncio.run_coroutine_threadsafe(self._listen(port), self._loop).result()
            except OSError as error:
                reason = os.strerror(error.errno) if error.errno else str(error)
                if port in required:
                    self.stop()
                    raise OSError(f"cannot listen on {self.host}:{port}: {reason}") from error
                logger.warning("not forwarding %s:%d: %s", self.host, port, reason)
                continue
            self._servers.append(server)
            self.bound.append(port)
        return self

    async def _listen(self, port: int) -> asyncio.base_events.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(port, reader, writer)

        return await asyncio.start_server(handle, self.host, port, reuse_address=True)

    def _connect_inside(self, port: int) -> socket.socket:
        # Runs on a worker thread that lives in the target namespace.
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        return sock

    async def _relay(
        self, port: int, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            sock = await self._loop.run_in_executor(self._connector, self._connect_inside, port)
            inner_reader, inner_writer = await asyncio.open_connection(sock=sock)
        except Exception:  # nothing listens inside (yet), or setns failed: drop the connection
            client_writer.close()
            return

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, asyncio.IncompleteReadError):
                pass

        try:
            await asyncio.gather(
                pipe(client_reader, inner_writer), pipe(inner_reader, client_writer)
            )
        finally:
            for writer in (inner_writer, client_writer):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()
        self._connector.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str]) -> None:
    """`python -m scripts.netns -- CMD ...`: exec CMD in a new loopback-only namespace."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise SystemExit("usage: python -m scripts.netns -- COMMAND [ARGS...]")
    try:
        enter_new_namespace()
    except OSError as error:
        raise SystemExit(
            f"cannot create a network namespace ({error.strerror}); this needs root on Linux"
        ) from error
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
