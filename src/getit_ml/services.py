"""Reachability checks for the real backing services of the production configuration.

Redis (Feast online store, event streams) and PostgreSQL (Feast SQL registry, MLflow backend) are
external services. These checks answer "can we talk to it?" with a readable reason instead of a
driver traceback, for the CLI and for the integration tests' skip-or-fail decision.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redis_unreachable(url: str, timeout_s: float) -> str | None:
    """``None`` if Redis at ``url`` answers PING, else why not."""
    import redis  # platform environment only

    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as error:
        return f"Redis at {url} is unreachable: {error}"
    return None


def postgres_unreachable(dsn: str, timeout_s: float) -> str | None:
    """``None`` if PostgreSQL at ``dsn`` runs ``SELECT 1``, else why not."""
    import psycopg  # platform environment only

    from getit_ml.settings import mask_password

    try:
        with psycopg.connect(dsn, connect_timeout=max(1, round(timeout_s))) as connection:
            connection.execute("SELECT 1")
    except (psycopg.Error, OSError) as error:
        return f"PostgreSQL at {mask_password(dsn)} is unreachable: {error}".strip()
    return None


def sqlalchemy_postgres_url(uri: str) -> str:
    """``uri`` as SQLAlchemy wants it: libpq-style PostgreSQL DSNs (``postgresql://``,
    ``postgres://``) get the psycopg 3 driver; anything else (another driver, sqlite, http) is
    returned unchanged. Feast's SQL registry and MLflow's tracking store both take this form."""
    parts = urlsplit(uri)
    if parts.scheme in ("postgresql", "postgres"):
        return urlunsplit(parts._replace(scheme="postgresql+psycopg"))
    return uri


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now, for a local server about to start (the OS picks
    it; another process could take it before ours binds, which local demos and tests accept)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
