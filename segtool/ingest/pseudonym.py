"""Device pseudonyms: a keyed hash (HMAC-SHA256, first 64 bits, big-endian) as UInt64.

    pseudonym(id) = int.from_bytes(HMAC-SHA256(key, id.encode("utf-8"))[:8], "big")

The key is a secret the data owner keeps outside the lake: the `SEGTOOL_SALT` environment
variable (its UTF-8 bytes) or a `--salt-file` (its bytes, trailing newline removed), at
least 16 bytes. Without a secret, ingest refuses — unless the data are synthetic
(`--synthetic`), when the fixed *public* key `SYNTHETIC_KEY` below is used. That key is
published here on purpose: it protects nothing and must never be used for real data.
A secret, when given, always wins over `--synthetic`.

Vectorised: each distinct id is hashed once (in Python's C `hmac.digest`, about 3 µs
each); rows find their pseudonym through a categorical code (see `Pseudonymiser`), so ids
seen in earlier batches cost a hash lookup, not a hash. The manifest records a
*fingerprint* of the key (HMAC of a fixed message, 64 bits) so `--append` can refuse a
different key, without revealing it.
"""

from __future__ import annotations

import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from segtool.errors import UsageError
from segtool.ingest.fields import present

ENV_VAR = "SEGTOOL_SALT"
MIN_DISTINCT_BYTES = 8  # fewer distinct byte values: a guessable secret (aaaa…, 1212…)
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
    if not secret.strip():
        raise UsageError(
            f"the secret in {where} is only whitespace: anyone could guess it",
            hint="`python -c 'import secrets; print(secrets.token_hex(32))'` makes a good one",
        )
    distinct = len(set(secret))
    if distinct < MIN_DISTINCT_BYTES:
        raise UsageError(
            f"the secret in {where} has only {distinct} distinct byte value(s); at least "
            f"{MIN_DISTINCT_BYTES} are needed (a repeated character is easy to guess)",
            hint="`python -c 'import secrets; print(secrets.token_hex(32))'` makes a good one",
        )
    return secret


def pseudonym(key: bytes, raw_id: str) -> int:
    """One id's pseudonym (the scalar definition; `Pseudonymiser` is the vectorised one)."""
    return int.from_bytes(hmac.digest(key, raw_id.encode("utf-8"), "sha256")[:8], "big")


class _Table:
    """Pseudonyms by categorical code: `dtype` maps each raw id to a dense code (polars'
    categorical mapping, a hash table that persists across batches), and the arrays hold,
    per code, the pseudonym, whether the id is present (not blank) and whether it is known."""

    def __init__(self) -> None:
        self.dtype = pl.Categorical(pl.Categories.random())
        # polars keeps a categorical mapping only while a series of its dtype lives
        self.anchor = pl.Series("anchor", [], dtype=self.dtype)
        self.values = np.zeros(0, dtype=np.uint64)
        self.present = np.zeros(0, dtype=bool)
        self.known = np.zeros(0, dtype=bool)
        self.lock = threading.Lock()

    def grow(self, size: int) -> None:
        if size <= self.known.size:
            return
        size = max(size, 2 * self.known.size, 1024)
        for name in ("values", "present", "known"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)


class Pseudonymiser:
    """Hash a String series of raw ids to UInt64 pseudonyms (null stays null).

    Each distinct id is hashed once: ids are mapped to dense codes by a polars categorical
    mapping that persists across batches (a cast, millions of rows per second whatever the
    number of ids known), and pseudonyms are kept in an array indexed by code. After
    `_CACHE_LIMIT` distinct ids the mapping starts afresh, so memory stays bounded.

    >>> Pseudonymiser(SYNTHETIC_KEY).hash_series(pl.Series(["a", None, "a"])).to_list()[1]
    """

    def __init__(self, key: Key | bytes):
        self._key = key.secret if isinstance(key, Key) else key
        self._table = _Table()

    def hash_series(self, ids: pl.Series) -> pl.Series:
        values, _, not_null = self._lookup(ids)
        return _masked(ids.name, values, not_null)

    def device_ids(self, ids: pl.Series) -> pl.Series:
        """Pseudonyms, null where the id is missing or blank (empty or only spaces)."""
        values, present, _ = self._lookup(ids)
        return _masked(ids.name, values, present)

    def _lookup(self, ids: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pseudonym, present, not null) per row, as numpy arrays."""
        if ids.dtype != pl.String:
            ids = ids.cast(pl.String)
        table = self._table
        codes = ids.cast(table.dtype).to_physical()
        not_null = codes.is_not_null().to_numpy()
        c = codes.fill_null(0).to_numpy().astype(np.int64, copy=False)
        with table.lock:  # batches are hashed in several threads
            table.grow(int(c.max()) + 1 if c.size else 0)
            todo = not_null & ~table.known[c]
            if todo.any():
                at = np.flatnonzero(todo)
                fresh = pl.DataFrame({"raw": ids.gather(at), "code": c[at]}).unique(
                    "code", keep="first"
                )
                code = fresh["code"].to_numpy()
                table.values[code] = self._hash(fresh["raw"].to_list())
                table.present[code] = present(fresh["raw"]).to_numpy()
                table.known[code] = True
            values, is_present = table.values[c], table.present[c] & not_null
        if table.known.size > _CACHE_LIMIT:
            self._table = _Table()
        return values, is_present, not_null

    def _hash(self, raws: list[str]) -> np.ndarray:
        key = self._key
        return np.array(
            [
                int.from_bytes(hmac.digest(key, raw.encode("utf-8"), "sha256")[:8], "big")
                for raw in raws
            ],
            dtype=np.uint64,
        )

    def hash_text(self, ids: pl.Series) -> pl.Series:
        """Pseudonyms as decimal text (how rejects carry them)."""
        return self.hash_series(ids).cast(pl.String)


def _masked(name: str, values: np.ndarray, valid: np.ndarray) -> pl.Series:
    out = pl.Series(name, values, dtype=pl.UInt64)
    if valid.all():
        return out
    return out.to_frame().select(pl.when(pl.Series(valid)).then(pl.col(name))).to_series()
