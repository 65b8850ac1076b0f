"""Pseudonyms: HMAC-SHA256 truncated to 64 bits, keyed by a secret; vectorised = scalar."""

from __future__ import annotations

import hashlib
import hmac

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segtool.errors import UsageError
from segtool.ingest.pseudonym import SYNTHETIC_KEY, Key, Pseudonymiser, load_key, pseudonym


def reference(key: bytes, raw: str) -> int:
    return int.from_bytes(hmac.new(key, raw.encode("utf-8"), hashlib.sha256).digest()[:8], "big")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=60))
def test_vectorised_matches_the_definition(ids):
    p = Pseudonymiser(Key(b"k" * 16, "env"))
    first = p.hash_series(pl.Series("id", ids, dtype=pl.String))
    again = p.hash_series(pl.Series("id", ids, dtype=pl.String))  # from the cache
    expected = [None if i is None else reference(b"k" * 16, i) for i in ids]
    assert first.to_list() == again.to_list() == expected
    assert first.dtype == pl.UInt64


def test_integer_ids_hash_as_their_text():
    p = Pseudonymiser(SYNTHETIC_KEY)
    assert p.hash_series(pl.Series([123, None])).to_list() == [
        reference(SYNTHETIC_KEY, "123"),
        None,
    ]
    assert pseudonym(SYNTHETIC_KEY, "123") == reference(SYNTHETIC_KEY, "123")


def test_key_sources_and_refusals(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGTOOL_SALT", raising=False)
    with pytest.raises(UsageError, match="no secret"):
        load_key()
    assert load_key(synthetic=True).secret == SYNTHETIC_KEY
    monkeypatch.setenv("SEGTOOL_SALT", "env-secret-0123456789")
    assert load_key(synthetic=True) == Key(b"env-secret-0123456789", "env")  # a secret wins
    f = tmp_path / "salt"
    f.write_bytes(b"file-secret-0123456789\r\n")
    assert load_key(f) == Key(b"file-secret-0123456789", "file")
    f.write_bytes(b"short\n")
    with pytest.raises(UsageError, match="at least 16"):
        load_key(f)
    with pytest.raises(UsageError, match="cannot read"):
        load_key(tmp_path / "missing")
    k = Key(b"file-secret-0123456789", "file")
    assert "file-secret" not in repr(k) and len(k.fingerprint) == 16
    assert k.fingerprint != Key(b"file-secret-0123456780", "file").fingerprint


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=30), max_size=6))
def test_batches_of_new_and_known_ids_match_the_definition(batches):
    """Pseudonyms carried from batch to batch (the categorical codes and their table)
    are those of the definition, also across a reset of the cache."""
    p = Pseudonymiser(Key(b"k" * 16, "env"))
    for limit in (10**9, 3):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("segtool.ingest.pseudonym._CACHE_LIMIT", limit)
            for ids in batches:
                got = p.hash_series(pl.Series("id", ids, dtype=pl.String)).to_list()
                assert got == [None if i is None else reference(b"k" * 16, i) for i in ids]


def test_device_ids_are_null_for_blank_ids():
    p = Pseudonymiser(SYNTHETIC_KEY)
    ids = pl.Series("id", ["a", "", "  ", None, " a", "\t"])
    got = p.device_ids(ids).to_list()
    assert got == [
        reference(SYNTHETIC_KEY, "a"),
        None,
        None,
        None,
        reference(SYNTHETIC_KEY, " a"),
        None,
    ]
    # hash_series hashes blank text like any other (rejects mask blanks themselves)
    assert p.hash_series(ids).to_list()[1] == reference(SYNTHETIC_KEY, "")


def test_threads_share_the_cache():
    from concurrent.futures import ThreadPoolExecutor

    p = Pseudonymiser(SYNTHETIC_KEY)
    batches = [pl.Series("id", [f"id{(i * 7 + j) % 500}" for j in range(300)]) for i in range(40)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(p.hash_series, batches))
    for ids, got in zip(batches, results, strict=True):
        assert got.to_list() == [reference(SYNTHETIC_KEY, i) for i in ids.to_list()]
