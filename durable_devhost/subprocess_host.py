"""``SubprocessDevHost``: ``python -m durable_devhost`` in a child process, state on disk, for
crash tests (SIGKILL, then restart on the same state file). Re-exported by :mod:`.testing`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SubprocessDevHost:
    """``python -m durable_devhost`` in a child process (state on disk), for crash tests."""

    def __init__(
        self,
        app_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        state_path: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.app_dir = Path(app_dir)
        self.port = port or free_port()
        self.state_path = Path(state_path) if state_path else None
        self.env = env or {}
        self.args = list(args or [])
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "durable_devhost", str(self.app_dir), "--port", str(self.port)]
        if self.state_path is not None:
            cmd += ["--state", str(self.state_path)]
        return cmd + self.args

    def start(self) -> SubprocessDevHost:
        env = {**os.environ, **self.env}
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
            out: Any = self._log
        else:
            out = subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), env=env, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"dev host exited with {self.proc.returncode} during start-up ({self.log_path})")
            try:
                with urllib.request.urlopen(f"{self.url}/admin/host/status", timeout=1) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:
                if e.code == 401:  # keys on: it answers, so it is up
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"dev host did not answer on {self.url} within {self.startup_timeout}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (clean shutdown); SIGKILL if it hangs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def restart(self) -> SubprocessDevHost:
        self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.start()

    def __enter__(self) -> SubprocessDevHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> SubprocessDevHost:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)
