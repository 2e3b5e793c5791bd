"""Start and stop the two servers under test, and watch their memory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from .datasets import trackio_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server subprocess with a base URL and a peak-RSS sampler over its process tree."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int,
                 log_path: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._wait_ready()
        self._sampler.start()

    def _wait_ready(self) -> None:
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                urllib.request.urlopen(self.url + "/version", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start; see {self.log.name}")

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            try:
                root = psutil.Process(self.proc.pid)
                rss = root.memory_info().rss + sum(
                    child.memory_info().rss for child in root.children(recursive=True))
            except psutil.Error:
                return
            self.peak_rss = max(self.peak_rss, rss)

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_ours(data_dir: Path, log_dir: Path) -> Server:
    port = free_port()
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
    env = {**os.environ, "TRACKIO_DIR": str(data_dir), "TRACKIO_FLASK_RATELIMIT_ENABLED": "false",
           "TRACKIO_FLASK_POLL_IDLE_AFTER_S": "3600"}
    argv = [gunicorn, "-w", "1", "--threads", "8", "-b", f"127.0.0.1:{port}",
            "trackio_flask:create_app()"]
    return Server("trackio_flask", argv, env, port, log_dir / "ours.log")


def start_theirs(data_dir: Path, log_dir: Path) -> Server:
    port = free_port()
    code = ("import trackio; trackio.show(open_browser=False, block_thread=True, "
            f"host='127.0.0.1', server_port={port})")
    return Server("trackio", [sys.executable, "-c", code], trackio_env(data_dir), port,
                  log_dir / "theirs.log")
