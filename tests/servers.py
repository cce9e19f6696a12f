"""Real daphne processes on loopback, for tests and benchmarks where processes matter.

Benchmarks may start uvicorn instead (`server="uvicorn"`, from the `bench` extra): the same
application under another ASGI server, to compare them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dj_database_url

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
APPLICATION = "voiceproject.asgi:application"
# uvicorn with its fastest parts: uvloop, httptools, and websockets' sans-I/O protocol. No
# per-message deflate: browsers offer it, and uvicorn would compress every audio frame (PCM
# hardly compresses; bench/load.py with a browser's offer: ~20 % more server CPU). No access
# log: it would write every session token (they are in the WebSocket's query string).
UVICORN_OPTIONS = ["--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio"]
UVICORN_OPTIONS += [
    "--ws-per-message-deflate",
    "false",
    "--no-access-log",
    "--log-level",
    "warning",
]


def server_command(server: str, port: int, listen_fd: int | None = None) -> list[str]:
    """The command line of an ASGI server (`daphne` or `uvicorn`) on a loopback port (daphne
    also on an inherited listening socket, `listen_fd`)."""
    if server == "daphne":
        shared = ["--fd", str(listen_fd)] if listen_fd is not None else []
        address = ["-b", "127.0.0.1", "-p", str(port), *shared]
        return [sys.executable, "-m", "daphne", *address, APPLICATION]
    if listen_fd is not None:
        raise ValueError("a shared listening socket is daphne's (uvicorn's --fd replaces its port)")
    if server == "uvicorn":
        address = ["--host", "127.0.0.1", "--port", str(port)]
        return [sys.executable, "-m", "uvicorn", APPLICATION, *address, *UVICORN_OPTIONS]
    raise ValueError(f"unknown server {server!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**settings: str) -> dict[str, str]:
    """This environment with the server's settings; the layer is never inherited by accident."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return {"DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", **inherited, **settings}


def manage(env: dict[str, str], *arguments: str) -> str:
    """Run `manage.py` with `env`; its standard output (its error output if it fails)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {arguments[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def migrate(env: dict[str, str]) -> None:
    """Migrate the database `env` names. A new SQLite file is a copy of one migrated once per
    test run (manage.py migrate is ~4 s of a slow machine's CI, and a dozen fixtures ask)."""
    database = dj_database_url.parse(env["DATABASE_URL"]) if env.get("DATABASE_URL") else {}
    path = Path(database["NAME"]) if database.get("ENGINE", "").endswith("sqlite3") else None
    if path is not None and not path.exists():
        # VACUUM INTO: a file of its own, with whatever the template's write-ahead log holds.
        with contextlib.closing(sqlite3.connect(migrated_sqlite_template())) as template:
            template.execute("VACUUM INTO ?", (str(path),))
        return
    manage(env, "migrate", "--noinput")


@cache
def migrated_sqlite_template() -> Path:
    """A SQLite database with every migration applied (its data migrations' rows included),
    in a directory removed when the run ends."""
    directory = tempfile.TemporaryDirectory(prefix="migrated-")
    _templates.append(directory)
    path = Path(directory.name) / "template.sqlite3"
    manage(server_env(DATABASE_URL=f"sqlite:///{path}"), "migrate", "--noinput")
    return path


_templates: list[tempfile.TemporaryDirectory] = []  # kept alive (and removed) with the run


def create_operator_token(env: dict[str, str], username: str = "operator") -> str:
    """An API token of an operator in the database `env` names (manage.py create_operator)."""
    return manage(env, "create_operator", username).strip()


OPERATOR_PASSWORD = "operator-password-for-tests"


def create_superuser(env: dict[str, str], username: str = "admin") -> None:
    """A superuser who logs in with OPERATOR_PASSWORD (browser tests log in as it)."""
    email = f"{username}@example.test"
    superuser_env = {**env, "DJANGO_SUPERUSER_PASSWORD": OPERATOR_PASSWORD}
    manage(superuser_env, "createsuperuser", "--noinput", "--username", username, "--email", email)


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class DaphneProcess:
    """A running daphne: its base URL, and its pid (benchmarks read its CPU and memory)."""

    url: str
    pid: int


@contextlib.contextmanager
def running_daphne(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """A daphne process on a free loopback port, healthy before this yields its base URL."""
    with running_daphne_process(env, log_path) as process:
        yield process.url


@contextlib.contextmanager
def running_daphne_process(
    env: dict[str, str],
    log_path: Path,
    listen_fd: int | None = None,
    server_name: str = "daphne",
) -> Iterator[DaphneProcess]:
    """As `running_daphne`, but yields the process's URL and pid; `server_name`: which ASGI
    server runs the application (see `server_command`). With `listen_fd` (an inheritable
    listening socket; daphne only), it also accepts from that socket, as every process given
    the same one does (`daphne --fd`); its URL stays its own port's, for the health check."""
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            server_command(server_name, port, listen_fd),
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listen_fd,) if listen_fd is not None else (),
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_health(url, server, log_path)
        yield DaphneProcess(url, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_for_health(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer on /health in {START_TIMEOUT_S} s:\n{log_tail(log)}")
