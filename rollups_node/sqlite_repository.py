"""The node's repository in one SQLite file (the embedded default): inputs, outputs, reports, epochs, claims."""
from __future__ import annotations

import dataclasses
import datetime
import sqlite3
import threading
from pathlib import Path
from typing import Any, Optional

from rollups_node.model import (EPOCH_CLAIM_ACCEPTED, EPOCH_CLAIM_COMPUTED, EPOCH_OPEN, INPUT_ACCEPTED, INPUT_NONE,
                                Application, Epoch, Input, Output, Report)
from rollups_node.outputs import unpack_output

SCHEMA = """
CREATE TABLE IF NOT EXISTS application (
    name TEXT PRIMARY KEY, address TEXT NOT NULL, consensus TEXT NOT NULL, input_box TEXT NOT NULL,
    input_box_block INTEGER NOT NULL, template_hash TEXT NOT NULL, epoch_length INTEGER NOT NULL,
    data_availability TEXT NOT NULL, chain_id INTEGER NOT NULL, state TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, consensus_type TEXT NOT NULL DEFAULT 'AUTHORITY',
    reason TEXT);
CREATE TABLE IF NOT EXISTS reader_state (id INTEGER PRIMARY KEY CHECK (id = 0), last_read_block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS input (
    "index" INTEGER PRIMARY KEY, epoch_index INTEGER NOT NULL, block_number INTEGER NOT NULL,
    block_timestamp INTEGER NOT NULL, chain_id INTEGER NOT NULL, app_contract TEXT NOT NULL,
    sender TEXT NOT NULL, prev_randao TEXT NOT NULL, payload BLOB NOT NULL, raw_data BLOB NOT NULL,
    transaction_reference TEXT NOT NULL, status TEXT NOT NULL, outputs_hash TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, log_index INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS input_epoch ON input (epoch_index);
CREATE INDEX IF NOT EXISTS input_status ON input (status);
CREATE TABLE IF NOT EXISTS output (
    "index" INTEGER PRIMARY KEY, input_index INTEGER NOT NULL REFERENCES input ("index"),
    epoch_index INTEGER NOT NULL, raw_data BLOB NOT NULL, hash BLOB NOT NULL, type BLOB NOT NULL,
    voucher_address TEXT, output_hashes_siblings BLOB, execution_transaction_hash TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS output_input ON output (input_index);
CREATE TABLE IF NOT EXISTS report (
    "index" INTEGER PRIMARY KEY, input_index INTEGER NOT NULL REFERENCES input ("index"),
    epoch_index INTEGER NOT NULL, raw_data BLOB NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS report_input ON report (input_index);
CREATE TABLE IF NOT EXISTS epoch (
    "index" INTEGER PRIMARY KEY, first_block INTEGER NOT NULL, last_block INTEGER NOT NULL,
    status TEXT NOT NULL, claim_hash TEXT, claim_transaction_hash TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
"""


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _where(clauses: dict[str, Any]) -> tuple[str, list]:
    kept = {column: value for column, value in clauses.items() if value is not None}
    if not kept:
        return "", []
    return " WHERE " + " AND ".join(f"{column} = ?" for column in kept), list(kept.values())


class SqliteRepository:
    """Thread-safe (one connection behind a lock); every write is one transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(input)")}
        if "log_index" not in columns:  # a database written before inputs kept their log index
            self._db.execute("ALTER TABLE input ADD COLUMN log_index INTEGER NOT NULL DEFAULT 0")
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(application)")}
        if "consensus_type" not in columns:  # a database written before the node knew the Quorum
            self._db.execute("ALTER TABLE application ADD COLUMN consensus_type TEXT NOT NULL DEFAULT 'AUTHORITY'")
            self._db.execute("ALTER TABLE application ADD COLUMN reason TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, args: list | tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, statements: list[tuple[str, list | tuple]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # application and reader progress
    def application(self) -> Optional[Application]:
        rows = self._query("SELECT * FROM application")
        return Application(**dict(rows[0])) if rows else None

    def save_application(self, app: Application) -> None:
        stamp = now()
        row = dataclasses.asdict(app) | {"created_at": app.created_at or stamp, "updated_at": stamp}
        columns = ", ".join(row)
        self._write([(f"INSERT OR REPLACE INTO application ({columns}) VALUES ({', '.join('?' * len(row))})",
                      list(row.values())),
                     ("INSERT OR IGNORE INTO reader_state (id, last_read_block) VALUES (0, ?)",
                      [app.input_box_block - 1])])

    def set_application_state(self, state: str, reason: Optional[str]) -> None:
        self._write([("UPDATE application SET state = ?, reason = ?, updated_at = ?", (state, reason, now()))])

    def last_read_block(self) -> int:
        rows = self._query("SELECT last_read_block FROM reader_state")
        return rows[0][0] if rows else -1

    # evm reader
    def add_inputs(self, inputs: list[Input], read_up_to_block: int) -> None:
        app = self.application()
        stamp = now()
        statements: list[tuple[str, list | tuple]] = []
        for item in inputs:
            statements.append((
                'INSERT INTO input ("index", epoch_index, block_number, block_timestamp, chain_id, app_contract,'
                " sender, prev_randao, payload, raw_data, transaction_reference, status, outputs_hash,"
                " created_at, updated_at, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (item.index, item.epoch_index, item.block_number, item.block_timestamp, item.chain_id,
                 item.app_contract, item.sender, hex(item.prev_randao), item.payload, item.raw_data,
                 item.transaction_reference, INPUT_NONE, stamp, stamp, item.log_index)))
            length = app.epoch_length
            statements.append((
                'INSERT OR IGNORE INTO epoch ("index", first_block, last_block, status, created_at, updated_at)'
                " VALUES (?, ?, ?, ?, ?, ?)",
                (item.epoch_index, item.epoch_index * length, (item.epoch_index + 1) * length - 1,
                 EPOCH_OPEN, stamp, stamp)))
        statements.append(("UPDATE reader_state SET last_read_block = ?", (read_up_to_block,)))
        self._write(statements)

    def set_output_executed(self, index: int, transaction_hash: str) -> None:
        self._write([('UPDATE output SET execution_transaction_hash = ?, updated_at = ? WHERE "index" = ?',
                      (transaction_hash, now(), index))])

    # advancer
    def unprocessed_inputs(self, limit: int = 100) -> list[Input]:
        rows = self._query('SELECT * FROM input WHERE status = ? ORDER BY "index" LIMIT ?', (INPUT_NONE, limit))
        return [self._input(row) for row in rows]

    def store_advance_result(self, input_index: int, status: str, outputs: list[Output], reports: list[Report],
                             outputs_hash: str) -> None:
        stamp = now()
        statements: list[tuple[str, list | tuple]] = [(
            'UPDATE input SET status = ?, outputs_hash = ?, updated_at = ? WHERE "index" = ? AND status = ?',
            (status, outputs_hash, stamp, input_index, INPUT_NONE))]
        if status == INPUT_ACCEPTED:
            for out in outputs:
                destination = unpack_output(out.raw_data).destination
                statements.append((
                    'INSERT INTO output ("index", input_index, epoch_index, raw_data, hash, type, voucher_address,'
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (out.index, out.input_index, out.epoch_index, out.raw_data, out.hash, out.raw_data[:4],
                     destination.lower() if destination else None, stamp, stamp)))
        for rep in reports:
            statements.append((
                'INSERT INTO report ("index", input_index, epoch_index, raw_data, created_at, updated_at)'
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rep.index, rep.input_index, rep.epoch_index, rep.raw_data, stamp, stamp)))
        self._write(statements)

    def output_hashes(self) -> list[bytes]:
        return [bytes(row[0]) for row in self._query('SELECT hash FROM output ORDER BY "index"')]

    def number_of_reports(self) -> int:
        return self._query("SELECT COUNT(*) FROM report")[0][0]

    def accepted_inputs(self) -> list[Input]:
        rows = self._query('SELECT * FROM input WHERE status = ? ORDER BY "index"', (INPUT_ACCEPTED,))
        return [self._input(row) for row in rows]

    # claimer
    def number_of_outputs_up_to_epoch(self, epoch_index: int) -> int:
        return self._query("SELECT COUNT(*) FROM output WHERE epoch_index <= ?", (epoch_index,))[0][0]

    def store_claim(self, epoch_index: int, claim_hash: str, proofs: dict[int, list[bytes]]) -> None:
        stamp = now()
        statements: list[tuple[str, list | tuple]] = [
            ('UPDATE output SET output_hashes_siblings = ?, updated_at = ? WHERE "index" = ?',
             (b"".join(siblings), stamp, index)) for index, siblings in proofs.items()]
        statements.append(('UPDATE epoch SET status = ?, claim_hash = ?, updated_at = ? WHERE "index" = ?',
                           (EPOCH_CLAIM_COMPUTED, claim_hash, stamp, epoch_index)))
        self._write(statements)

    def set_epoch_status(self, index: int, status: str, claim_hash: Optional[str] = None,
                         claim_transaction_hash: Optional[str] = None) -> None:
        self._write([(
            "UPDATE epoch SET status = ?, claim_hash = COALESCE(?, claim_hash),"
            ' claim_transaction_hash = COALESCE(?, claim_transaction_hash), updated_at = ? WHERE "index" = ?',
            (status, claim_hash, claim_transaction_hash, now(), index))])

    # reader
    def _page(self, table: str, where: dict[str, Any], limit: int, offset: int,
              descending: bool = False) -> tuple[list[sqlite3.Row], int]:
        clause, args = _where(where)
        total = self._query(f"SELECT COUNT(*) FROM {table}{clause}", args)[0][0]
        order = "DESC" if descending else "ASC"
        rows = self._query(f'SELECT {self._columns(table)} FROM {table}{clause} ORDER BY "index" {order} '
                           "LIMIT ? OFFSET ?", args + [limit, offset])
        return rows, total

    @staticmethod
    def _columns(table: str) -> str:
        """Epochs carry their input bounds and virtual index, computed from the inputs table."""
        if table != "epoch":
            return "*"
        return ('epoch.*, (SELECT MIN("index") FROM input WHERE input.epoch_index = epoch."index") '
                'AS input_index_lower_bound, (SELECT MAX("index") + 1 FROM input WHERE input.epoch_index = '
                'epoch."index") AS input_index_upper_bound, (SELECT COUNT(*) FROM epoch AS earlier WHERE '
                'earlier."index" < epoch."index") AS virtual_index')

    @staticmethod
    def _input(row: sqlite3.Row) -> Input:
        data = dict(row)
        data["payload"], data["raw_data"] = bytes(data["payload"]), bytes(data["raw_data"])
        data["prev_randao"] = int(data["prev_randao"], 16)
        return Input(**data)

    @staticmethod
    def _output(row: sqlite3.Row) -> Output:
        data = dict(row)
        del data["type"], data["voucher_address"]
        data["raw_data"], data["hash"] = bytes(data["raw_data"]), bytes(data["hash"])
        siblings = data["output_hashes_siblings"]
        if siblings is not None:
            data["output_hashes_siblings"] = [bytes(siblings[i:i + 32]) for i in range(0, len(siblings), 32)]
        return Output(**data)

    @staticmethod
    def _report(row: sqlite3.Row) -> Report:
        data = dict(row)
        data["raw_data"] = bytes(data["raw_data"])
        return Report(**data)

    def list_inputs(self, epoch_index: Optional[int] = None, sender: Optional[str] = None,
                    limit: int = 50, offset: int = 0, descending: bool = False) -> tuple[list[Input], int]:
        rows, total = self._page("input", {"epoch_index": epoch_index,
                                           "lower(sender)": sender.lower() if sender else None}, limit, offset,
                                 descending)
        return [self._input(row) for row in rows], total

    def get_input(self, index: int) -> Optional[Input]:
        rows = self._query('SELECT * FROM input WHERE "index" = ?', (index,))
        return self._input(rows[0]) if rows else None

    def processed_input_count(self) -> int:
        return self._query("SELECT COUNT(*) FROM input WHERE status != ?", (INPUT_NONE,))[0][0]

    def list_outputs(self, epoch_index: Optional[int] = None, input_index: Optional[int] = None,
                     output_type: Optional[bytes] = None, voucher_address: Optional[str] = None,
                     limit: int = 50, offset: int = 0, descending: bool = False) -> tuple[list[Output], int]:
        rows, total = self._page("output", {"epoch_index": epoch_index, "input_index": input_index,
                                            "type": output_type,
                                            "voucher_address": voucher_address.lower() if voucher_address else None},
                                 limit, offset, descending)
        return [self._output(row) for row in rows], total

    def get_output(self, index: int) -> Optional[Output]:
        rows = self._query('SELECT * FROM output WHERE "index" = ?', (index,))
        return self._output(rows[0]) if rows else None

    def list_reports(self, epoch_index: Optional[int] = None, input_index: Optional[int] = None,
                     limit: int = 50, offset: int = 0, descending: bool = False) -> tuple[list[Report], int]:
        rows, total = self._page("report", {"epoch_index": epoch_index, "input_index": input_index}, limit, offset,
                                 descending)
        return [self._report(row) for row in rows], total

    def get_report(self, index: int) -> Optional[Report]:
        rows = self._query('SELECT * FROM report WHERE "index" = ?', (index,))
        return self._report(rows[0]) if rows else None

    def list_epochs(self, status: Optional[str] = None, limit: int = 50, offset: int = 0,
                    descending: bool = False) -> tuple[list[Epoch], int]:
        rows, total = self._page("epoch", {"status": status}, limit, offset, descending)
        return [Epoch(**dict(row)) for row in rows], total

    def get_epoch(self, index: int) -> Optional[Epoch]:
        rows = self._query(f'SELECT {self._columns("epoch")} FROM epoch WHERE "index" = ?', (index,))
        return Epoch(**dict(rows[0])) if rows else None

    def last_accepted_epoch_index(self) -> Optional[int]:
        rows = self._query('SELECT MAX("index") FROM epoch WHERE status = ?', (EPOCH_CLAIM_ACCEPTED,))
        return rows[0][0]
