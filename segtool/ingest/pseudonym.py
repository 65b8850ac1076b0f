"""Device pseudonyms: a keyed hash (HMAC-SHA256, first 64 bits, big-endian) as UInt64.

    pseudonym(id) = int.from_bytes(HMAC-SHA256(key, id.encode("utf-8"))[:8], "big")

The key is a secret the data owner keeps outside the lake: the `SEGTOOL_SALT` environment
variable (its UTF-8 bytes) or a `--salt-file` (its bytes, trailing newline removed), at
least 16 bytes. Without a secret, ingest refuses — unless the data are synthetic
(`--synthetic`), when the fixed *public* key `SYNTHETIC_KEY` below is used. That key is
published here on purpose: it protects nothing and must never be used for real data.
A secret, when given, always wins over `--synthetic`.

Vectorised: only the distinct ids of each batch are hashed (in Python's C `hmac.digest`,
about 3 µs each) and joined back with a hash join; ids are few relative to pings, and a
cache carries them across batches. The manifest records a *fingerprint* of the key
(HMAC of a fixed message, 64 bits) so `--append` can refuse a different key, without
revealing it.
"""

from __future__ import annotations

import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from segtool.errors import UsageError

ENV_VAR = "SEGTOOL_SALT"
MIN_SECRET_BYTES = 16
SYNTHETIC_KEY = b"segtool synthetic data: public key, not a secret"
_FINGERPRINT_MESSAGE = b"segtool key fingerprint v1"
_CACHE_LIMIT = 5_000_000


@dataclass(frozen=True)
class Key:
    """The hashing key and where it came from ('env', 'file' or 'synthetic')."""

    secret: bytes
    kind: str

    @property
    def fingerprint(self) -> str:
        return hmac.digest(self.secret, _FINGERPRINT_MESSAGE, "sha256")[:8].hex()

    def describe(self) -> dict:
        return {"kind": self.kind, "fingerprint": self.fingerprint}

    def __repr__(self) -> str:  # never print the secret
        return f"Key(kind={self.kind!r}, fingerprint={self.fingerprint!r})"


def load_key(salt_file: str | Path | None = None, synthetic: bool = False) -> Key:
    """The key from `--salt-file`, else $SEGTOOL_SALT, else the public synthetic key when
    `synthetic`; otherwise a UsageError explaining how to provide one."""
    if salt_file is not None:
        p = Path(salt_file)
        try:
            secret = p.read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise UsageError(f"cannot read --salt-file {str(p)!r}: {e.strerror}") from None
        return Key(_checked(secret, f"--salt-file {str(p)!r}"), "file")
    env = os.environ.get(ENV_VAR)
    if env:
        return Key(_checked(env.encode("utf-8"), f"${ENV_VAR}"), "env")
    if synthetic:
        return Key(SYNTHETIC_KEY, "synthetic")
    raise UsageError(
        "no secret for pseudonymising device ids",
        hint=(
            f"set {ENV_VAR} or pass --salt-file FILE (keep it outside the lake), e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))' > salt`; "
            "for synthetic data only, pass --synthetic"
        ),
    )


def _checked(secret: bytes, where: str) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise UsageError(
            f"the secret in {where} is {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed",
            hint="`python -c 'import secrets; print(secrets.token_hex(32))'` makes a good one",
        )
    return secret


def pseudonym(key: bytes, raw_id: str) -> int:
    """One id's pseudonym (the scalar definition; `Pseudonymiser` is the vectorised one)."""
    return int.from_bytes(hmac.digest(key, raw_id.encode("utf-8"), "sha256")[:8], "big")


class Pseudonymiser:
    """Hash a String series of raw ids to UInt64 pseudonyms (null stays null).

    >>> Pseudonymiser(SYNTHETIC_KEY).hash_series(pl.Series(["a", None, "a"])).to_list()[1]
    """

    def __init__(self, key: Key | bytes):
        self._key = key.secret if isinstance(key, Key) else key
        self._known = pl.DataFrame(schema={"raw": pl.String, "pseudonym": pl.UInt64})
        self._lock = threading.Lock()

    def hash_series(self, ids: pl.Series) -> pl.Series:
        if ids.dtype != pl.String:
            ids = ids.cast(pl.String)
        frame = ids.rename("raw").to_frame()
        out = frame.join(self._known, on="raw", how="left", maintain_order="left")["pseudonym"]
        missing = out.is_null() & ids.is_not_null()
        if missing.any():
            idx = missing.arg_true()
            fresh = ids.gather(idx)
            new = self._hash_distinct(fresh.unique())
            found = (
                fresh.rename("raw")
                .to_frame()
                .join(new, on="raw", how="left", maintain_order="left")
            )
            out = out.scatter(idx, found["pseudonym"])
            with self._lock:  # batches are hashed in several threads
                known = self._known
                if known.height > _CACHE_LIMIT:
                    known = known.clear()
                added = new.join(known, on="raw", how="anti")
                self._known = pl.concat([known, added], rechunk=True)
        return out.rename(ids.name)

    def _hash_distinct(self, distinct: pl.Series) -> pl.DataFrame:
        key = self._key
        raws = distinct.to_list()
        values = [
            int.from_bytes(hmac.digest(key, raw.encode("utf-8"), "sha256")[:8], "big")
            for raw in raws
        ]
        # new strings (not views into the batch, which the cache would keep alive)
        return pl.DataFrame(
            {
                "raw": pl.Series(raws, dtype=pl.String),
                "pseudonym": pl.Series(values, dtype=pl.UInt64),
            }
        )

    def hash_text(self, ids: pl.Series) -> pl.Series:
        """Pseudonyms as decimal text (how rejects carry them)."""
        return self.hash_series(ids).cast(pl.String)
