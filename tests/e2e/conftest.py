"""Shared by the end-to-end tests: start a real server process and wait until it is ready."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def running_server(args: list[str], cwd, env: dict, log_path: Path, ready_seconds: float = 120):
    """A server process until the block ends (``--port`` is appended); its output goes to a file (a
    pipe nobody reads would fill and stall it). Yields its base URL once ``/readyz`` answers."""
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*args, "--port", str(port)], cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + ready_seconds
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise AssertionError(f"{args} exited:\n{_tail(log_path)}")
                time.sleep(1)
            else:
                raise AssertionError(f"{args} did not become ready in {ready_seconds:.0f} s:\n{_tail(log_path)}")
            yield base
        finally:
            stop_process(proc)


@pytest.fixture(scope="session")
def start_server():
    """``with start_server(args, cwd, env, log_path) as base_url:`` (see :func:`running_server`)."""
    return running_server
