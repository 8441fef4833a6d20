"""What lets wfkit trust a SQLite store file, on real files with real permissions: the secret
key kept owner-only beside it, and one warning (with the fix) when others could change it."""

from __future__ import annotations

import logging
import os
import pickle
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wfkit import task
from wfkit._engine.caching import sign
from wfkit.exceptions import StoreError
from wfkit.stores._trust import KEY_SIZE, read_or_create_key
from wfkit.stores.sqlite import SqliteStore
from wfkit.testing import harness

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "home" / "wfkit.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    with SqliteStore(db) as s:
        yield s


# the secret key ----------------------------------------------------------------------------
def test_the_key_is_made_on_first_use_owner_only_beside_the_store(
    store: SqliteStore, db: Path
) -> None:
    key_file = db.with_name("wfkit.db.key")
    assert not key_file.exists()  # opening a store (to read runs, say) makes no key

    secret = store.cache_secret()

    assert key_file.read_bytes() == secret and len(secret) == KEY_SIZE
    assert _mode(key_file) == 0o600 and _mode(db) == 0o600
    assert [p.name for p in db.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_an_existing_key_is_used_never_replaced(db: Path) -> None:
    key_file = db.with_name("wfkit.db.key")
    db.parent.mkdir(mode=0o700)
    key_file.write_bytes(b"s" * KEY_SIZE)
    key_file.chmod(0o600)

    with SqliteStore(db) as store:
        assert store.cache_secret() == b"s" * KEY_SIZE
    assert key_file.read_bytes() == b"s" * KEY_SIZE


def test_concurrent_makers_agree_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "x.db.key"
    results: list[tuple[bytes, bool]] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        results.append(read_or_create_key(key_file))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert {key for key, _ in results} == {key_file.read_bytes()}
    assert sum(created for _, created in results) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db.key"]  # no temporary left


@pytest.mark.parametrize("content", [b"", b"short", b"x" * (KEY_SIZE + 1)])
def test_a_key_file_that_holds_no_key_is_refused(tmp_path: Path, content: bytes) -> None:
    key_file = tmp_path / "x.db.key"
    key_file.write_bytes(content)
    key_file.chmod(0o600)

    with pytest.raises(StoreError, match=r"x\.db\.key.*holds \d+ bytes.*Delete it"):
        read_or_create_key(key_file)
    assert key_file.read_bytes() == content


def test_a_lost_key_makes_a_new_one_and_its_records_misses_with_one_warning(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []

    @task(cache_key_fn=lambda context, parameters: f"k{parameters['x']}")
    def square(x: int) -> int:
        ran.append(x)
        return x * x

    with harness(store=SqliteStore(db)):
        assert [square(x) for x in (1, 2, 3)] == [1, 4, 9]
    old = db.with_name("wfkit.db.key").read_bytes()
    db.with_name("wfkit.db.key").unlink()

    with caplog.at_level(logging.WARNING), harness(store=SqliteStore(db)) as h:
        assert [square(x) for x in (1, 2, 3, 1)] == [1, 4, 9, 1]
        assert [r.state.name for r in h.task_runs(square)][-4:] == ["Completed"] * 3 + ["Cached"]
    assert ran == [1, 2, 3, 1, 2, 3]
    (warning,) = _warnings(caplog)
    assert "wfkit.db.key' was missing" in warning and "the 3 cached results" in warning
    assert db.with_name("wfkit.db.key").read_bytes() != old


def test_a_record_the_lost_key_signed_is_gone_before_it_is_read(db: Path) -> None:
    with SqliteStore(db) as store:
        value = sign(b"o" * 32, "k", "pickle", pickle.dumps(1))
        store.write_cache("k", value, "pickle", None, "t", datetime(2024, 1, 1, tzinfo=UTC))
        store.cache_secret()  # no key file: a new key, the record signed with another goes
        assert store.read_cache("k") is None


# loose permissions -------------------------------------------------------------------------
def _open(db: Path, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wfkit.stores"), SqliteStore(db):
        pass
    return _warnings(caplog)


def test_a_new_store_gives_no_warning(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert _open(db, caplog) == []
    assert _mode(db) == 0o600 and _mode(db.parent) == 0o700


def test_a_store_file_others_can_write_gives_one_warning_with_the_fix(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _open(db, caplog)
    db.chmod(0o664)

    (warning,) = _open(db, caplog)
    assert f"file '{db}' can be written by other users (mode 0o664)" in warning
    assert warning.endswith(f"Fix: chmod 600 {db}.")
    assert _open(db, caplog) == []  # once per file and process, not once per opening
    assert _mode(db) == 0o664  # reported, not changed behind the user's back


def test_a_home_directory_others_can_write_gives_one_warning_with_the_fix(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db.parent.mkdir(mode=0o700)
    db.parent.chmod(0o777)

    (warning,) = _open(db, caplog)
    assert f"directory '{db.parent}' can be written by other users (mode 0o777)" in warning
    assert warning.endswith(f"Fix: chmod 700 {db.parent}.")


def test_a_sticky_shared_directory_gives_no_warning(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Like /tmp: others may add files there but not replace or remove this one.
    db.parent.mkdir(mode=0o700)
    db.parent.chmod(0o1777)
    assert _open(db, caplog) == []


def test_a_key_file_others_can_read_gives_one_warning(
    store: SqliteStore, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = db.with_name("wfkit.db.key")
    key_file.write_bytes(b"s" * KEY_SIZE)
    key_file.chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="wfkit.stores"):
        assert store.cache_secret() == b"s" * KEY_SIZE
    (warning,) = _warnings(caplog)
    assert "secret key file" in warning and "read or written by other users" in warning
    assert warning.endswith(f"Fix: chmod 600 {key_file}.")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_store_file_of_another_user_gives_a_warning(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _open(db, caplog)
    os.chown(db, 4321, -1)

    (warning,) = _open(db, caplog)
    assert "belongs to another user (uid 4321)" in warning and "chown" in warning
