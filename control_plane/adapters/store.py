"""SQLite store of the control plane: subscribers, provisioned cable modems, accounting
records, and the CP's epoch.

WAL mode; accounting is written by one writer thread that commits in groups (one commit per
burst of records), so a dial storm costs a handful of fsyncs per second, not one per record.
A partial unique index makes "one start and one stop per accounting session" a property of
the database, not just of the code. :meth:`AccountingWriter.close` drains the queue: nothing
already handed to the writer is lost on a clean shutdown; with ``synchronous=NORMAL`` a
committed record also survives the process being killed (only a power loss can take the last
commits).
"""

from __future__ import annotations

import contextlib
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vnf.model.accounting import AccountingRecord, RecordType
from vnf.model.addresses import mac_to_str, parse_mac
from vnf.model.cable import ProvisionedModem
from vnf.model.subscriber import AuthType, Subscriber

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscribers (
    username     TEXT PRIMARY KEY,
    secret       TEXT NOT NULL,
    auth_type    TEXT NOT NULL CHECK (auth_type IN ('pap', 'chap', 'any')),
    rate_profile TEXT NOT NULL DEFAULT 'default'
);
CREATE TABLE IF NOT EXISTS modems (
    mac           TEXT PRIMARY KEY,
    service_class TEXT NOT NULL DEFAULT 'default',
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
);
CREATE TABLE IF NOT EXISTS accounting (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    acct_session_id  TEXT NOT NULL,
    record_type      TEXT NOT NULL CHECK (record_type IN ('start', 'interim', 'stop')),
    username         TEXT NOT NULL,
    client_mac       TEXT NOT NULL,
    ipv4             TEXT NOT NULL,
    pppoe_session_id INTEGER NOT NULL,
    grp              INTEGER NOT NULL,
    dp               TEXT NOT NULL,
    session_time_s   REAL NOT NULL,
    up_packets       INTEGER NOT NULL,
    up_bytes         INTEGER NOT NULL,
    down_packets     INTEGER NOT NULL,
    down_bytes       INTEGER NOT NULL,
    terminate_cause  TEXT NOT NULL DEFAULT '',
    wall_time        REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS accounting_one_start_one_stop
    ON accounting (acct_session_id, record_type) WHERE record_type != 'interim';
CREATE INDEX IF NOT EXISTS accounting_by_session ON accounting (acct_session_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = (
    "acct_session_id, record_type, username, client_mac, ipv4, pppoe_session_id, grp, dp, "
    "session_time_s, up_packets, up_bytes, down_packets, down_bytes, terminate_cause, wall_time"
)


def connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    else:
        conn = sqlite3.connect(path, timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


@dataclass(frozen=True)
class AccountingQuery:
    username_regex: str = ""
    acct_session_id: str = ""
    record_type: str = ""
    limit: int = 1000


class Store:
    """Subscribers and accounting reads, on the caller's thread."""

    def __init__(self, path: str, readonly: bool = False) -> None:
        self.path = path
        self.conn = connect(path, readonly)
        if not readonly:
            self.conn.create_function("regexp", 2, _regexp, deterministic=True)

    def close(self) -> None:
        self.conn.close()

    # -- epoch -----------------------------------------------------------------------------

    def epoch(self) -> int:
        """The newest epoch this CP has held or seen (0: none yet)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
        return int(row[0]) if row else 0

    def set_epoch(self, epoch: int) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES('epoch', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(epoch),),
            )

    # -- subscribers -----------------------------------------------------------------------

    def put_subscribers(self, subscribers: list[Subscriber]) -> tuple[int, int]:
        """Insert or update; returns (added, updated)."""
        added = updated = 0
        with self.conn:
            for sub in subscribers:
                cur = self.conn.execute(
                    "INSERT INTO subscribers(username, secret, auth_type, rate_profile) "
                    "VALUES(?, ?, ?, ?) ON CONFLICT(username) DO NOTHING",
                    (sub.username, sub.secret, str(sub.auth_type), sub.rate_profile),
                )
                if cur.rowcount:
                    added += 1
                    continue
                self.conn.execute(
                    "UPDATE subscribers SET secret=?, auth_type=?, rate_profile=? WHERE username=?",
                    (sub.secret, str(sub.auth_type), sub.rate_profile, sub.username),
                )
                updated += 1
        return added, updated

    def remove_subscribers(self, usernames: list[str]) -> list[str]:
        """Delete; returns the usernames that did not exist."""
        missing = []
        with self.conn:
            for name in usernames:
                cur = self.conn.execute("DELETE FROM subscribers WHERE username=?", (name,))
                if not cur.rowcount:
                    missing.append(name)
        return missing

    def subscribers(self) -> list[Subscriber]:
        rows = self.conn.execute(
            "SELECT username, secret, auth_type, rate_profile FROM subscribers ORDER BY username"
        )
        return [Subscriber(u, s, AuthType(a), r) for u, s, a, r in rows]

    # -- cable modems (the provisioning store) ----------------------------------------------

    def put_modems(self, modems: list[ProvisionedModem]) -> tuple[int, int]:
        """Insert or update; returns (added, updated)."""
        added = updated = 0
        with self.conn:
            for m in modems:
                row = (mac_to_str(m.mac), m.service_class, int(m.enabled))
                cur = self.conn.execute(
                    "INSERT INTO modems(mac, service_class, enabled) VALUES(?, ?, ?) "
                    "ON CONFLICT(mac) DO NOTHING",
                    row,
                )
                if cur.rowcount:
                    added += 1
                    continue
                self.conn.execute(
                    "UPDATE modems SET service_class=?, enabled=? WHERE mac=?",
                    (row[1], row[2], row[0]),
                )
                updated += 1
        return added, updated

    def remove_modems(self, macs: list[bytes]) -> list[bytes]:
        """Delete; returns the MACs that were not provisioned."""
        missing = []
        with self.conn:
            for mac in macs:
                cur = self.conn.execute("DELETE FROM modems WHERE mac=?", (mac_to_str(mac),))
                if not cur.rowcount:
                    missing.append(mac)
        return missing

    def modems(self) -> list[ProvisionedModem]:
        rows = self.conn.execute("SELECT mac, service_class, enabled FROM modems ORDER BY mac")
        return [ProvisionedModem(parse_mac(m), c, bool(e)) for m, c, e in rows]

    # -- accounting ------------------------------------------------------------------------

    def accounting(self, query: AccountingQuery) -> list[tuple[int, AccountingRecord]]:
        clauses, args = [], []
        if query.username_regex:
            clauses.append("username REGEXP ?")
            args.append(query.username_regex)
        if query.acct_session_id:
            clauses.append("acct_session_id = ?")
            args.append(query.acct_session_id)
        if query.record_type:
            clauses.append("record_type = ?")
            args.append(query.record_type)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = max(1, min(query.limit or 1000, 1_000_000))
        rows = self.conn.execute(
            f"SELECT id, {_COLUMNS} FROM accounting {where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [(row[0], _record(row[1:])) for row in reversed(rows)]

    def accounting_count(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT record_type, COUNT(*) FROM accounting GROUP BY 1")
        return {kind: count for kind, count in rows}


def _regexp(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


def _record(row: tuple[object, ...]) -> AccountingRecord:
    return AccountingRecord(
        acct_session_id=str(row[0]),
        record_type=RecordType(str(row[1])),
        username=str(row[2]),
        client_mac=str(row[3]),
        ipv4=str(row[4]),
        pppoe_session_id=int(row[5]),  # type: ignore[call-overload]
        group=int(row[6]),  # type: ignore[call-overload]
        dp=str(row[7]),
        session_time_s=float(row[8]),  # type: ignore[arg-type]
        up_packets=int(row[9]),  # type: ignore[call-overload]
        up_bytes=int(row[10]),  # type: ignore[call-overload]
        down_packets=int(row[11]),  # type: ignore[call-overload]
        down_bytes=int(row[12]),  # type: ignore[call-overload]
        terminate_cause=str(row[13]),
        wall_time=float(row[14]),  # type: ignore[arg-type]
    )


Committed = Callable[[list[AccountingRecord], float], None]
"""Called on the writer thread after each commit with the records and the monotonic time."""


class AccountingWriter:
    """Durable accounting: records queued from the event loop, group-committed by a thread."""

    def __init__(self, path: str, on_commit: Committed | None = None) -> None:
        self.path = path
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[AccountingRecord | None] = queue.SimpleQueue()
        self.written = 0
        self.duplicates = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="accounting-writer", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def write(self, record: AccountingRecord) -> None:
        self._queue.put(record)

    def close(self, timeout: float = 30.0) -> None:
        """Drain everything queued so far, commit, stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            conn = connect(self.path)
        except sqlite3.Error as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        with contextlib.closing(conn):
            stop = False
            while not stop:
                batch: list[AccountingRecord] = []
                item = self._queue.get()
                if item is None:
                    stop = True
                else:
                    batch.append(item)
                # Take whatever else is already queued: one commit for the whole burst.
                while len(batch) < 5000:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                if batch:
                    self._commit(conn, batch)

    def _commit(self, conn: sqlite3.Connection, batch: list[AccountingRecord]) -> None:
        wall = time.time()
        committed: list[AccountingRecord] = []
        try:
            with conn:
                for rec in batch:
                    try:
                        conn.execute(
                            f"INSERT INTO accounting({_COLUMNS}) VALUES ({','.join('?' * 15)})",
                            _row(rec, wall),
                        )
                        committed.append(rec)
                    except sqlite3.IntegrityError:
                        self.duplicates += 1
        except sqlite3.Error:
            self.errors += 1
            return
        self.written += len(committed)
        if self.on_commit is not None and committed:
            self.on_commit(committed, time.monotonic())


def _row(rec: AccountingRecord, wall: float) -> tuple[object, ...]:
    return (
        rec.acct_session_id,
        str(rec.record_type),
        rec.username,
        rec.client_mac,
        rec.ipv4,
        rec.pppoe_session_id,
        rec.group,
        rec.dp,
        rec.session_time_s,
        rec.up_packets,
        rec.up_bytes,
        rec.down_packets,
        rec.down_bytes,
        rec.terminate_cause,
        rec.wall_time or wall,
    )


@contextlib.contextmanager
def opened(path: str, readonly: bool = False) -> Iterator[Store]:
    store = Store(path, readonly)
    try:
        yield store
    finally:
        store.close()


__all__ = ["AccountingQuery", "AccountingWriter", "Store", "opened"]
