//! `--output duckdb:FILE`: the session store as a DuckDB database, for analysts.
//! Tables `sessions`, `timesteps`, `events` (the seed's model fields as columns)
//! and `messages`, with the indexes the README's queries use, and
//! `otelsim_schema` (the schema version). An existing file is refused unless it is
//! a store of this very schema, which is then appended to: nothing already in it
//! is lost. Linking DuckDB is the `duckdb` cargo feature (a prebuilt libduckdb,
//! see build.rs); without it, asking for this output is an input error that says so.

use super::session_store::Store;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;

/// What to say when the binary has no DuckDB in it.
pub const NOT_BUILT: &str = "this otelsim was built without DuckDB; build it with `make install FEATURES=duckdb` (it fetches a prebuilt libduckdb and builds with `--features duckdb`), or write `--output session-json:DIR` instead";

/// The schema version `otelsim_schema` records.
pub const SCHEMA_VERSION: i32 = 1;

/// The tables and their columns, in order: what the store writes, and what an
/// existing file must have to be appended to.
pub const TABLES: &[(&str, &[&str])] = &[
    ("otelsim_schema", &["version", "written_by"]),
    (
        "sessions",
        &[
            "session_id",
            "scenario",
            "created_at",
            "tenant_id",
            "agent_id",
            "end_user_id",
            "environment",
            "num_timesteps",
            "num_events",
            "num_messages",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "total_reward",
            "metadata",
        ],
    ),
    (
        "timesteps",
        &[
            "session_id",
            "step_id",
            "turn_number",
            "started_at",
            "num_events",
            "num_messages",
        ],
    ),
    (
        "events",
        &[
            "session_id",
            "step_id",
            "turn_number",
            "event_type",
            "trace_id",
            "span_id",
            "name",
            "system_instance_id",
            "event_time",
            "latency_ms",
            "outcome",
            "model_name",
            "provider",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "cost_usd",
            "reward",
            "terminated",
            "operation",
            "system_state_before",
            "system_state_after",
            "metadata",
        ],
    ),
    (
        "messages",
        &[
            "session_id",
            "step_id",
            "turn_number",
            "origin_system_id",
            "message_type",
            "payload",
            "message_time",
            "span_id",
        ],
    ),
];

/// Checks that `file` can be the store (before the run starts): a new file, or
/// a store of this schema. The error names the file and what is wrong.
pub fn check_target(file: &Path) -> Result<(), String> {
    imp::check_target(file)
}

/// Opens (or creates) the store at `file`.
pub fn open_store(file: &Path) -> Result<Arc<dyn Store>> {
    imp::open_store(file)
}

#[cfg(not(feature = "duckdb"))]
mod imp {
    use super::*;

    pub fn check_target(file: &Path) -> Result<(), String> {
        Err(format!("--output duckdb:{}: {NOT_BUILT}", file.display()))
    }

    pub fn open_store(file: &Path) -> Result<Arc<dyn Store>> {
        anyhow::bail!("--output duckdb:{}: {NOT_BUILT}", file.display())
    }
}

#[cfg(feature = "duckdb")]
mod imp {
    use super::*;
    use crate::export::session::Session;
    use crate::export::session_store::StoreError;
    use ::duckdb::types::{TimeUnit, Value};
    use ::duckdb::{params, Connection};
    use anyhow::Context;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Mutex;

    /// The DDL of a new store.
    const CREATE: &str = "
        CREATE TABLE otelsim_schema (version INTEGER, written_by VARCHAR);
        CREATE TABLE sessions (
            session_id VARCHAR, scenario VARCHAR, created_at TIMESTAMP, tenant_id VARCHAR,
            agent_id VARCHAR, end_user_id VARCHAR, environment VARCHAR, num_timesteps INTEGER,
            num_events INTEGER, num_messages INTEGER, prompt_tokens BIGINT,
            completion_tokens BIGINT, cost_usd DOUBLE, total_reward DOUBLE, metadata VARCHAR);
        CREATE TABLE timesteps (
            session_id VARCHAR, step_id VARCHAR, turn_number INTEGER, started_at TIMESTAMP,
            num_events INTEGER, num_messages INTEGER);
        CREATE TABLE events (
            session_id VARCHAR, step_id VARCHAR, turn_number INTEGER, event_type VARCHAR,
            trace_id VARCHAR, span_id VARCHAR, name VARCHAR, system_instance_id VARCHAR,
            event_time TIMESTAMP, latency_ms DOUBLE, outcome VARCHAR, model_name VARCHAR,
            provider VARCHAR, prompt_tokens BIGINT, completion_tokens BIGINT,
            cached_tokens BIGINT, cost_usd DOUBLE, reward DOUBLE, terminated BOOLEAN,
            operation VARCHAR, system_state_before VARCHAR, system_state_after VARCHAR,
            metadata VARCHAR);
        CREATE TABLE messages (
            session_id VARCHAR, step_id VARCHAR, turn_number INTEGER, origin_system_id VARCHAR,
            message_type VARCHAR, payload VARCHAR, message_time TIMESTAMP, span_id VARCHAR);
        CREATE INDEX messages_session_type ON messages (session_id, message_type);
        CREATE INDEX events_session ON events (session_id);
        CREATE INDEX events_model ON events (model_name);
        CREATE INDEX timesteps_session ON timesteps (session_id);
        CREATE INDEX sessions_id ON sessions (session_id);
    ";

    /// DuckDB's own defaults take 80 % of the machine's memory and a thread per
    /// core; a load generator's side output gets a bounded share instead, and one
    /// thread, which leaves the cores to otelsim's workers.
    const SETTINGS: &str = "SET memory_limit = '64MB'; SET threads = 1;";

    /// Sessions held before they are appended in one transaction.
    const BATCH_SESSIONS: usize = 256;

    fn open(file: &Path) -> Result<Connection, String> {
        if file.is_dir() {
            return Err(format!(
                "--output duckdb:{}: is a folder; give a database file",
                file.display()
            ));
        }
        let conn = Connection::open(file).map_err(|e| {
            format!(
                "--output duckdb:{}: cannot open it as a DuckDB database: {e}",
                file.display()
            )
        })?;
        conn.execute_batch(SETTINGS).map_err(|e| {
            format!(
                "--output duckdb:{}: cannot apply the store's settings: {e}",
                file.display()
            )
        })?;
        Ok(conn)
    }

    /// The user tables of `conn` and their columns, in order.
    fn tables(conn: &Connection) -> Result<Vec<(String, Vec<String>)>, ::duckdb::Error> {
        let mut stmt = conn.prepare(
            "SELECT table_name, column_name FROM information_schema.columns
             WHERE table_schema = 'main' ORDER BY table_name, ordinal_position",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for row in rows {
            let (t, c) = row?;
            match out.last_mut() {
                Some((last, cols)) if *last == t => cols.push(c),
                _ => out.push((t, vec![c])),
            }
        }
        Ok(out)
    }

    /// `Ok(true)`: a store of this schema; `Ok(false)`: an empty database.
    fn check_schema(conn: &Connection, file: &Path) -> Result<bool, String> {
        let found = tables(conn).map_err(|e| {
            format!(
                "--output duckdb:{}: cannot read its tables: {e}",
                file.display()
            )
        })?;
        if found.is_empty() {
            return Ok(false);
        }
        let want: Vec<(String, Vec<String>)> = {
            let mut w: Vec<_> = TABLES
                .iter()
                .map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect()))
                .collect();
            w.sort();
            w
        };
        if found == want {
            let version: i32 = conn
                .query_row("SELECT max(version) FROM otelsim_schema", [], |r| r.get(0))
                .unwrap_or(0);
            if version == SCHEMA_VERSION {
                return Ok(true);
            }
        }
        let names: Vec<&str> = found.iter().map(|(t, _)| t.as_str()).collect();
        Err(format!(
            "--output duckdb:{}: the database holds another schema (tables: {}); otelsim appends only to its own session store (tables: {}, schema version {SCHEMA_VERSION}) and changes nothing else: give a new file",
            file.display(),
            names.join(", "),
            TABLES.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ")
        ))
    }

    pub fn check_target(file: &Path) -> Result<(), String> {
        let existed = file.exists();
        let conn = open(file)?;
        let r = check_schema(&conn, file).map(|_| ());
        drop(conn);
        if !existed {
            // Leave no trace of the check: the run creates it.
            let _ = std::fs::remove_file(file);
            let _ = std::fs::remove_file(wal_of(file));
        }
        r
    }

    fn wal_of(file: &Path) -> std::path::PathBuf {
        let mut s = file.as_os_str().to_owned();
        s.push(".wal");
        s.into()
    }

    pub fn open_store(file: &Path) -> Result<Arc<dyn Store>> {
        let conn = open(file).map_err(anyhow::Error::msg)?;
        if !check_schema(&conn, file).map_err(anyhow::Error::msg)? {
            conn.execute_batch(CREATE)
                .and_then(|_| {
                    conn.execute(
                        "INSERT INTO otelsim_schema VALUES (?, ?)",
                        params![
                            SCHEMA_VERSION,
                            format!("otelsim {}", env!("CARGO_PKG_VERSION"))
                        ],
                    )
                })
                .with_context(|| format!("cannot create the tables in {}", file.display()))?;
        }
        Ok(Arc::new(DuckdbStore {
            file: file.display().to_string(),
            inner: Mutex::new(Inner {
                conn: Some(conn),
                pending: Vec::new(),
            }),
            sessions: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
        }))
    }

    struct Inner {
        conn: Option<Connection>,
        pending: Vec<Session>,
    }

    /// The database, behind one lock: sinks hand it sessions, it appends them
    /// in transactions of [`BATCH_SESSIONS`].
    struct DuckdbStore {
        file: String,
        inner: Mutex<Inner>,
        sessions: AtomicU64,
        rows: AtomicU64,
        /// Time spent appending, for the rows/s `-v` reports.
        busy_ns: AtomicU64,
    }

    fn ts(ns: u64) -> Value {
        Value::Timestamp(TimeUnit::Microsecond, (ns / 1000) as i64)
    }

    fn meta(m: &serde_json::Map<String, serde_json::Value>, k: &str) -> Option<String> {
        m.get(k).and_then(|v| v.as_str()).map(str::to_string)
    }

    fn parse_ns(rfc: &str) -> u64 {
        rfc.parse::<jiff::Timestamp>()
            .map(|t| t.as_nanosecond().max(0) as u64)
            .unwrap_or(0)
    }

    /// Appends `sessions` in one transaction; the number of rows.
    fn append(conn: &mut Connection, sessions: &[Session]) -> ::duckdb::Result<u64> {
        let tx = conn.transaction()?;
        let mut rows = 0u64;
        {
            let mut s_app = tx.appender("sessions")?;
            let mut t_app = tx.appender("timesteps")?;
            let mut e_app = tx.appender("events")?;
            let mut m_app = tx.appender("messages")?;
            for s in sessions {
                let m = &s.session_metadata;
                let t = &s.totals;
                s_app.append_row(params![
                    s.session_id,
                    s.scenario,
                    ts(s.created_ns),
                    meta(m, "tenant_id"),
                    meta(m, "agent_id"),
                    meta(m, "end_user_id"),
                    meta(m, "environment"),
                    t.timesteps as i64,
                    t.events as i64,
                    t.messages as i64,
                    t.prompt_tokens,
                    t.completion_tokens,
                    t.cost_usd,
                    t.reward,
                    serde_json::Value::Object(m.clone()).to_string(),
                ])?;
                rows += 1;
                for step in &s.session_time_steps {
                    t_app.append_row(params![
                        s.session_id,
                        step.step_id,
                        step.turn_number,
                        ts(parse_ns(&step.timestamp)),
                        step.events.len() as i64,
                        step.step_messages.len() as i64,
                    ])?;
                    rows += 1;
                    for e in &step.events {
                        e_app.append_row(params![
                            s.session_id,
                            step.step_id,
                            step.turn_number,
                            e.event_type.as_str(),
                            e.trace_id,
                            e.span_id,
                            e.name,
                            e.system_instance_id,
                            ts(e.start_ns),
                            e.latency_ms,
                            e.outcome,
                            e.model_name,
                            e.provider,
                            e.prompt_tokens,
                            e.completion_tokens,
                            e.cached_tokens,
                            e.cost_usd,
                            e.reward,
                            e.terminated,
                            e.operation,
                            e.system_state_before,
                            e.system_state_after,
                            serde_json::Value::Object(e.metadata.clone()).to_string(),
                        ])?;
                        rows += 1;
                    }
                    for msg in &step.step_messages {
                        m_app.append_row(params![
                            s.session_id,
                            step.step_id,
                            step.turn_number,
                            msg.origin_system_id,
                            msg.message_type,
                            msg.payload,
                            ts(parse_ns(&msg.time_record.event_time)),
                            msg.span_id,
                        ])?;
                        rows += 1;
                    }
                }
            }
            s_app.flush()?;
            t_app.flush()?;
            e_app.flush()?;
            m_app.flush()?;
        }
        tx.commit()?;
        Ok(rows)
    }

    impl DuckdbStore {
        /// Appends what is held back; the spans written, or (all of them lost) why not.
        fn write_pending(&self, inner: &mut Inner) -> Result<u64, StoreError> {
            let pending = std::mem::take(&mut inner.pending);
            let spans: u64 = pending.iter().map(|s| s.spans).sum();
            if pending.is_empty() {
                return Ok(0);
            }
            let lost = |error: anyhow::Error| StoreError {
                error,
                lost_spans: spans,
            };
            let Some(conn) = inner.conn.as_mut() else {
                return Err(lost(anyhow::anyhow!(
                    "the database {} is closed",
                    self.file
                )));
            };
            let started = std::time::Instant::now();
            let rows = append(conn, &pending)
                .with_context(|| format!("cannot append to {}", self.file))
                .map_err(lost)?;
            self.busy_ns
                .fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
            self.rows.fetch_add(rows, Relaxed);
            self.sessions.fetch_add(pending.len() as u64, Relaxed);
            Ok(spans)
        }
    }

    impl Store for DuckdbStore {
        fn store(&self, sessions: &[Session]) -> Result<u64, StoreError> {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.pending.extend(sessions.iter().cloned());
            if inner.pending.len() < BATCH_SESSIONS {
                return Ok(0);
            }
            self.write_pending(&mut inner)
        }

        fn stored(&self) -> String {
            let busy = self.busy_ns.load(Relaxed) as f64 / 1e9;
            let rows = self.rows.load(Relaxed);
            format!(
                "{} sessions, {rows} rows in {} ({:.0} rows/s)",
                self.sessions.load(Relaxed),
                self.file,
                if busy > 0.0 { rows as f64 / busy } else { 0.0 }
            )
        }

        fn close(&self) -> Result<u64, StoreError> {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let written = self.write_pending(&mut inner)?;
            if let Some(conn) = inner.conn.take() {
                let closed = conn
                    .execute_batch("CHECKPOINT")
                    .and_then(|_| conn.close().map_err(|(_, e)| e));
                if let Err(e) = closed {
                    // Committed rows are in the WAL: DuckDB replays it on the next open.
                    eprintln!("otelsim: warning: cannot checkpoint {}: {e}", self.file);
                }
            }
            if std::env::var_os("OTELSIM_DUCKDB_STATS").is_some() {
                eprintln!("otelsim: duckdb: {}", self.stored());
            }
            Ok(written)
        }
    }
}
