"""Schema of ``cache.sqlite``, as an append-only list of named migrations (the scheme of simonw/llm's migrations.py).

Never edit or reorder a migration that has shipped: add a new one at the end. Applied names are recorded in
``_migrations``, so opening a cache written by an older datakit brings it up to date without losing rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from datakit.rundir import utc_now

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_calls(conn: sqlite3.Connection) -> None:
    """One row per teacher request key, with the columns below.

    The raw response is stored before parsing, so a parser change re-parses without asking again. A row whose
    response_json is null is not an answer: a failed HTTP call (error says why) or a request in a batch.
    """
    conn.execute(
        """
        create table calls (
            key text primary key,
            study_id text,
            teacher text,
            model text,
            resolved_model text,
            template_id text,
            template_sha text,
            schema_id text,
            options_json text,
            request_json text,
            response_json text,
            text text,
            finish_reason text,
            input_tokens integer,
            output_tokens integer,
            cost_usd real,
            duration_ms integer,
            datetime_utc text,
            attempt integer,
            error text,
            datakit_version text
        )
        """
    )


@migration
def m002_calls_study_index(conn: sqlite3.Connection) -> None:
    """Review and provenance look calls up by study (every call of one study, re-asks included)."""
    conn.execute("create index calls_study_id on calls (study_id)")


def apply_migrations(conn: sqlite3.Connection, *, upto: int | None = None) -> list[str]:
    """Apply the migrations not yet applied (the first ``upto`` only, for tests); return their names.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each migration and its record commit
    together in one explicit transaction, so a crash or a second process migrating at the same time leaves
    every migration applied once or not at all.
    """
    conn.execute("create table if not exists _migrations (name text primary key, applied_utc text)")
    applied = []
    for fn in MIGRATIONS[:upto]:
        conn.execute("begin immediate")
        try:
            if conn.execute("select 1 from _migrations where name = ?", (fn.__name__,)).fetchone() is None:
                fn(conn)
                conn.execute("insert into _migrations values (?, ?)", (fn.__name__, utc_now()))
                applied.append(fn.__name__)
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    return applied
