"""A private ``redis-server`` on a free port, for tests that must own (and may break) their Redis.

The shared Redis at 127.0.0.1:6379 belongs to everyone's tests; a test that empties, restarts or
reads every key of its store starts its own: no persistence (``--save ''``, no AOF), so a restart
comes back empty, as the chart's Redis without persistence does. Absent ``redis-server`` the test
is skipped, unless ``CI`` is set (then it fails: CI must run it).
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import yaml
from feast import FeatureStore, RepoConfig

from getit_ml.features.store import FEATURE_STORE_YAML, StoreLayout, redis_connection_string
from getit_ml.processes import ManagedProcess
from getit_ml.services import free_port
from getit_ml.settings import load_settings


def _answers(port: int) -> bool:
    client = redis.Redis(port=port, socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class PrivateRedis:
    """One ``redis-server`` process; :meth:`restart` brings it back, empty, on the same port
    (also after :meth:`send` killed it)."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed (CI must run the Redis tests)")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.folder)]  # fmt: skip
        self.process = ManagedProcess(
            command,
            name="private redis",
            ready=lambda: _answers(self.port),
            log=self.folder / f"redis-{self.port}.log",
            start_timeout_s=20,
        ).start()
        return self

    def send(self, sig: int) -> None:
        """Signal the server: SIGSTOP freezes it, SIGCONT thaws it, SIGKILL kills it."""
        if self.process is None:
            raise RuntimeError("the private redis is not running")
        os.kill(self.process.pid, sig)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGCONT)  # a frozen server cannot hear TERM
            self.process.stop(5)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)


@contextmanager
def private_redis(folder: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(folder).start()
    try:
        yield server
    finally:
        server.stop()


def redis_backed_store(root: Path, redis_url: str, project: str = "getit_ml") -> FeatureStore:
    """A feature store under ``root`` like the embedded one (file registry and offline files)
    whose online store is the Redis at ``redis_url``: the production online path without the
    PostgreSQL registry."""
    settings = load_settings()
    layout = StoreLayout(root.resolve())
    layout.offline_dir.mkdir(parents=True, exist_ok=True)
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load((settings.feature_repo / FEATURE_STORE_YAML).read_text(encoding="utf-8"))
    raw["project"] = project
    raw["registry"] = str(layout.data_dir / "registry.db")
    raw["online_store"] = {"type": "redis", "connection_string": redis_connection_string(redis_url)}
    return FeatureStore(config=RepoConfig(repo_path=layout.root, **raw))
