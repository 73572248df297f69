"""Every query of the gateway: API keys (created, verified with a short in-memory cache, revoked)."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from services.common import clock
from services.common.db import make_engine
from services.common.migrate import upgrade_to_head
from services.gateway.models import ApiKey

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
KEY_PREFIX = "mk_"
SCOPES = frozenset({"platform", "admin"})
# Refused keys are cached for less time than good ones, so a key created a moment ago works soon.
NEGATIVE_TTL_S = 5.0
MAX_CACHE_ENTRIES = 10_000

Scopes = frozenset[str]


def new_key() -> str:
    """`mk_` plus 32 URL-safe characters (192 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class KeyStore:
    """API keys in the gateway's database; only sha256 hashes are stored."""

    def __init__(self, engine: Engine, *, cache_ttl_s: float = 30.0) -> None:
        self.engine = engine
        self.cache_ttl_s = cache_ttl_s
        # key hash -> (monotonic expiry, scopes or None for a refused key)
        self._cache: dict[str, tuple[float, Scopes | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, database_url: str, *, cache_ttl_s: float = 30.0) -> KeyStore:
        """Connects and applies the gateway's migrations."""
        engine = make_engine(database_url)
        upgrade_to_head(MIGRATIONS, engine)
        return cls(engine, cache_ttl_s=cache_ttl_s)

    def close(self) -> None:
        self.engine.dispose()

    def create_key(self, name: str, scopes: list[str] | tuple[str, ...] | frozenset[str]) -> str:
        """Stores a new key and returns its plaintext (the only time it is visible)."""
        wanted = sorted(set(scopes))
        unknown = set(wanted) - SCOPES
        if not wanted or unknown:
            raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}; got {wanted}")
        plaintext = new_key()
        with Session(self.engine) as session:
            session.add(
                ApiKey(name=name, key_hash=hash_key(plaintext), scopes=",".join(wanted), created_at=clock.now())
            )
            session.commit()
        return plaintext

    def cached(self, plaintext: str) -> tuple[bool, Scopes | None]:
        """(hit, scopes) from the cache alone: lets the async path skip the database entirely."""
        entry = self._cache.get(hash_key(plaintext))
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def verify(self, plaintext: str) -> Scopes | None:
        """The key's scopes, or None for an unknown or revoked key; answers from the cache when fresh."""
        digest = hash_key(plaintext)
        entry = self._cache.get(digest)
        now = time.monotonic()
        if entry is not None and entry[0] >= now:
            return entry[1]
        scopes = self._lookup(digest) if plaintext.startswith(KEY_PREFIX) else None
        ttl = self.cache_ttl_s if scopes is not None else min(NEGATIVE_TTL_S, self.cache_ttl_s)
        with self._lock:
            if len(self._cache) >= MAX_CACHE_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now + ttl, scopes)
        return scopes

    def _lookup(self, digest: str) -> Scopes | None:
        query = select(col(ApiKey.scopes)).where(col(ApiKey.key_hash) == digest, col(ApiKey.revoked_at).is_(None))
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        return None if found is None else frozenset(s for s in found.split(",") if s)

    def revoke(self, plaintext: str) -> bool:
        """Revokes a key; True when it existed and was active. Takes effect at once in this process."""
        digest = hash_key(plaintext)
        query = (
            update(ApiKey)
            .where(col(ApiKey.key_hash) == digest, col(ApiKey.revoked_at).is_(None))
            .values(revoked_at=clock.now())
        )
        with self.engine.begin() as connection:
            changed = connection.execute(query).rowcount
        with self._lock:
            self._cache.pop(digest, None)
        return bool(changed)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(ApiKey)).scalar_one())

    def ensure_bootstrap_keys(self, path: Path) -> dict[str, str] | None:
        """On the first start (no keys at all): creates an admin and a platform key, writes them to
        `path` (mode 0600) as `name=key` lines and returns them; on later starts returns None."""
        if self.count() > 0:
            return None
        keys = {"admin": self.create_key("admin", ["admin"]), "platform": self.create_key("platform", ["platform"])}
        lines = [f"# Marksman gateway API keys, created {clock.now().isoformat()}; keep this file secret."]
        lines += [f"{name}={key}" for name, key in keys.items()]
        write_secret_file(path, "\n".join(lines) + "\n")
        return keys


def write_secret_file(path: Path, text: str) -> None:
    """Writes a file readable by its owner only, never briefly wider (the mode is set at creation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)
