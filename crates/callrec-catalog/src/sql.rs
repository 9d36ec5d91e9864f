//! [`SqlCatalog`]: the [`Catalog`] on SQLite or PostgreSQL through sqlx's
//! `Any` driver, with one set of queries written in the SQL both accept.
//!
//! Rules for the SQL here: `$N` placeholders (SQLite accepts them too);
//! only BIGINT and TEXT values (times in unix ms, booleans as 0/1, JSON as
//! text); in a transaction, write first, so SQLite takes its write lock at
//! once instead of failing to upgrade a read lock. Nothing here logs a
//! phone number.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor, Row};

use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::types::*;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a [`SqlCatalog`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a catalog URL names, from its scheme.
    pub fn of_url(url: &str) -> Result<Backend, CatalogError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(CatalogError::UnsupportedUrl {
                scheme: if scheme.is_empty() {
                    "(none)".to_owned()
                } else {
                    scheme.to_owned()
                },
            }),
        }
    }
}

/// How to open a catalog. `Default` suits a server.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Pool size (SQLite in-memory databases always use 1).
    pub max_connections: u32,
    /// How long to wait for a connection, also when first connecting.
    pub acquire_timeout: Duration,
    /// PostgreSQL only: keep the catalog's tables in this schema (created if
    /// missing; `[a-z0-9_]`, 1 to 63 characters). Default: the server's
    /// search_path (usually `public`).
    pub postgres_schema: Option<String>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            postgres_schema: None,
        }
    }
}

/// The catalog on SQLite or PostgreSQL. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct SqlCatalog {
    pool: AnyPool,
    backend: Backend,
    /// The connections that write. On a SQLite file: a pool of one, so
    /// that writers queue here and wake the moment the one before commits.
    /// SQLite has one writer at a time, and a connection that finds the
    /// write lock taken waits in SQLite's busy handler, which sleeps (up to
    /// 100 ms a try) instead of waking when the lock is free: a burst of
    /// call ends spent most of its time asleep. Reads keep `pool` and never
    /// queue behind writes (WAL). On PostgreSQL (and SQLite in memory) it
    /// is `pool` itself.
    writes: AnyPool,
}

/// The URL with the password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl SqlCatalog {
    /// Opens the catalog at `url` with default options; see
    /// [`SqlCatalog::open_with`].
    pub async fn open(url: &str) -> Result<SqlCatalog, CatalogError> {
        Self::open_with(url, &OpenOptions::default()).await
    }

    /// Opens the catalog at `url` and brings its schema up to date.
    ///
    /// - `sqlite://PATH` (or `sqlite:PATH`): the file is created when
    ///   missing (`mode=rwc` is added unless the URL sets a mode); its
    ///   directory must exist. `sqlite::memory:` works with one connection.
    /// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    ///
    /// Migrations are idempotent: opening an up-to-date catalog changes
    /// nothing, and several nodes may open one PostgreSQL catalog at once.
    pub async fn open_with(url: &str, options: &OpenOptions) -> Result<SqlCatalog, CatalogError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let mut url = url.to_owned();
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout);
        match backend {
            Backend::Sqlite => {
                let memory = url.contains(":memory:") || url.contains("mode=memory");
                if !memory && !url.contains("mode=") {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str("mode=rwc");
                }
                if memory {
                    // Every connection to `:memory:` is a new database: keep one.
                    pool_options = pool_options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                pool_options = pool_options.after_connect(move |conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        if !memory {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                        }
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        Ok(())
                    })
                });
            }
            Backend::Postgres => {
                if let Some(schema) = &options.postgres_schema {
                    check_schema_name(schema)?;
                    let set = format!("SET search_path TO \"{schema}\"");
                    pool_options = pool_options.after_connect(move |conn, _| {
                        let set = set.clone();
                        Box::pin(async move {
                            conn.execute(AssertSqlSafe(set)).await?;
                            Ok(())
                        })
                    });
                }
            }
        }
        let hint = match backend {
            Backend::Sqlite => {
                "check that the directory of the database file exists and that callrec may write there"
            }
            Backend::Postgres => {
                "check that the PostgreSQL server is running and reachable, that the database exists and that the user may log in"
            }
        };
        let connect_error = |source| CatalogError::Connect {
            target: redact_url(&url),
            source,
            hint,
        };
        // One plain connection first: a pool would report only "timed out"
        // where this reports the cause (refused, unknown host, bad password).
        match tokio::time::timeout(options.acquire_timeout, AnyConnection::connect(&url)).await {
            Ok(Ok(conn)) => conn.close().await.map_err(connect_error)?,
            Ok(Err(e)) => return Err(connect_error(e)),
            Err(_) => return Err(connect_error(sqlx::Error::PoolTimedOut)),
        }
        if let (Backend::Postgres, Some(schema)) = (backend, &options.postgres_schema) {
            // Create the schema before the pool's connections select it.
            let setup = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .connect(&url)
                .await
                .map_err(connect_error)?;
            let created = setup
                .execute(AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
                )))
                .await;
            setup.close().await;
            if let Err(e) = created {
                // Another node may have created it at the same moment.
                if !matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation()) {
                    return Err(CatalogError::Database(e));
                }
            }
        }
        let pool = pool_options
            .clone()
            .connect(&url)
            .await
            .map_err(connect_error)?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|source| CatalogError::Migrate { source })?;
        let writes = match backend {
            Backend::Sqlite if !url.contains(":memory:") && !url.contains("mode=memory") => {
                pool_options
                    .max_connections(1)
                    .connect(&url)
                    .await
                    .map_err(connect_error)?
            }
            _ => pool.clone(),
        };
        Ok(SqlCatalog {
            pool,
            backend,
            writes,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for health checks and tests. Changing catalog
    /// rows through it bypasses the rules of [`Catalog`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.writes.close().await;
        self.pool.close().await;
    }

    /// A transaction for a write (see `writes`).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Any>, CatalogError> {
        Ok(self.writes.begin().await?)
    }

    /// A connection for a single write statement (see `writes`).
    async fn write_conn(&self) -> Result<sqlx::pool::PoolConnection<Any>, CatalogError> {
        Ok(self.writes.acquire().await?)
    }

    async fn change_status(&self, change: StatusUpdate<'_>) -> Result<Recording, CatalogError> {
        let mut tx = self.begin_write().await?;
        let recording = change_status_on(&mut tx, change).await?;
        tx.commit().await?;
        Ok(recording)
    }
}

/// One status change on `conn` (inside the caller's transaction): the row
/// updated if it was in an allowed status, its history appended, the audit
/// entry written. When no row changed, the error says why (missing, in
/// another status, or a forbidden change), and nothing was written.
async fn change_status_on(
    conn: &mut AnyConnection,
    change: StatusUpdate<'_>,
) -> Result<Recording, CatalogError> {
    let StatusUpdate {
        id,
        from,
        to,
        reason,
        at,
        set_extra,
        audit,
        allow_same,
    } = change;
    let allowed: Vec<RecordingStatus> = from
        .iter()
        .copied()
        .filter(|s| s.can_become(to) || (allow_same && *s == to))
        .collect();
    let updated = if allowed.is_empty() {
        None
    } else {
        let mut sql = Sql::new("UPDATE recordings SET previous_status = status, status = ");
        sql.bind(to.as_str());
        sql.push(", status_reason = ");
        sql.bind(reason);
        sql.push(", status_changed_at = ");
        sql.bind(at.0);
        for (column, value) in set_extra {
            sql.push(", ");
            sql.push(column);
            sql.push(" = ");
            match value {
                Extra::Value(v) => sql.bind(v),
                Extra::Sql(expr) => sql.push(expr),
            }
        }
        sql.push(" WHERE id = ");
        sql.bind(id.to_string());
        sql.push(" AND status IN (");
        sql.bind_list(allowed.iter().map(|s| s.as_str()));
        sql.push(") RETURNING previous_status, ");
        sql.push(RECORDING_COLUMNS);
        sql.query().fetch_optional(&mut *conn).await?
    };
    let Some(row) = updated else {
        let current = fetch_recording(&mut *conn, id).await?;
        return Err(if from.contains(&current.status) {
            CatalogError::ForbiddenTransition {
                from: current.status,
                to,
            }
        } else {
            CatalogError::StatusMismatch {
                id,
                current: current.status,
                expected: from
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        });
    };
    let previous: String = row.try_get("previous_status")?;
    let recording = recording_from_row(&row)?;
    sqlx::query(
        "INSERT INTO recording_status_history (recording_id, at, from_status, to_status, reason) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.to_string())
    .bind(at.0)
    .bind(previous)
    .bind(to.as_str())
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    if let Some(entry) = audit {
        insert_audit(&mut *conn, entry).await?;
    }
    Ok(recording)
}

async fn fetch_recording(
    conn: &mut AnyConnection,
    id: RecordingId,
) -> Result<Recording, CatalogError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| CatalogError::not_found("recording", id))?;
    recording_from_row(&row)
}

/// The change of `mark_spooled`: finalizing or failed → spooled, with the
/// file's facts, due for delivery at once.
fn spooled_update<'a>(
    id: RecordingId,
    audio: &SpooledAudio,
    reason: &'a str,
    at: UnixMillis,
) -> Result<StatusUpdate<'a>, CatalogError> {
    Ok(StatusUpdate {
        id,
        from: &[RecordingStatus::Finalizing, RecordingStatus::Failed],
        to: RecordingStatus::Spooled,
        reason,
        at,
        set_extra: vec![
            ("spool_path", Extra::Value(audio.spool_path.clone().into())),
            (
                "size_bytes",
                Extra::Value(to_i64("recording size", audio.size_bytes)?.into()),
            ),
            ("sha256", Extra::Value(audio.sha256.clone().into())),
            (
                "duration_ms",
                Extra::Value(to_i64("recording duration", audio.duration_ms)?.into()),
            ),
            ("is_partial", Extra::Value(i64::from(audio.partial).into())),
            ("next_attempt_at", Extra::Value(at.0.into())),
        ],
        audit: None,
        allow_same: false,
    })
}

/// The change of `mark_delivered`: uploading → delivered, with where.
fn delivered_update(
    id: RecordingId,
    location: &StorageLocation,
    at: UnixMillis,
) -> StatusUpdate<'static> {
    StatusUpdate {
        id,
        from: &[RecordingStatus::Uploading],
        to: RecordingStatus::Delivered,
        reason: "delivered and verified",
        at,
        set_extra: vec![
            (
                "storage_backend",
                Extra::Value(location.backend.clone().into()),
            ),
            ("storage_key", Extra::Value(location.key.clone().into())),
            ("delivered_at", Extra::Value(at.0.into())),
            ("attempts", Extra::Sql("attempts + 1")),
            ("spool_path", Extra::Value(Arg::Text(None))),
            ("next_attempt_at", Extra::Value(Arg::Int(None))),
        ],
        audit: None,
        allow_same: false,
    }
}

async fn end_call_on(
    conn: &mut AnyConnection,
    id: &CallId,
    at: UnixMillis,
) -> Result<(), CatalogError> {
    let query = sqlx::query("UPDATE calls SET ended_at = $1 WHERE id = $2")
        .bind(at.0)
        .bind(id.as_str());
    update_one(conn, query, "call", id).await
}

async fn participant_left_on(
    conn: &mut AnyConnection,
    participant_id: i64,
    at: UnixMillis,
) -> Result<(), CatalogError> {
    let query = sqlx::query("UPDATE participants SET left_at = $1 WHERE id = $2")
        .bind(at.0)
        .bind(participant_id);
    update_one(conn, query, "participant", participant_id).await
}

/// Runs an `UPDATE` of one row by id: [`CatalogError::NotFound`] when no
/// row had that id.
async fn update_one<'q>(
    conn: &mut AnyConnection,
    query: Query<'q, Any, AnyArguments>,
    what: &'static str,
    id: impl ToString,
) -> Result<(), CatalogError> {
    if query.execute(&mut *conn).await?.rows_affected() == 0 {
        return Err(CatalogError::not_found(what, id));
    }
    Ok(())
}

async fn insert_pause(
    conn: &mut AnyConnection,
    id: RecordingId,
    span: PauseSpan,
) -> Result<(), CatalogError> {
    if span.start_ms > span.end_ms {
        return Err(CatalogError::invalid(
            "pause span",
            format!(
                "it starts at {} ms after it ends at {} ms, swap them",
                span.start_ms, span.end_ms
            ),
        ));
    }
    sqlx::query("INSERT INTO pauses (recording_id, start_ms, end_ms) VALUES ($1, $2, $3)")
        .bind(id.to_string())
        .bind(to_i64("pause start", span.start_ms)?)
        .bind(to_i64("pause end", span.end_ms)?)
        .execute(&mut *conn)
        .await
        .map_err(missing_parent("recording", id))?;
    Ok(())
}

/// The writes of `start_call`, on `conn` (inside the caller's transaction).
async fn start_call_on(
    conn: &mut AnyConnection,
    start: &CallStart,
) -> Result<CallStarted, CatalogError> {
    insert_call(&mut *conn, &start.call).await?;
    let mut participants = Vec::with_capacity(start.participants.len());
    for p in &start.participants {
        participants.push(insert_participant(&mut *conn, &start.call.id, p).await?);
    }
    insert_decision(&mut *conn, &start.call.id, &start.decision).await?;
    let recording = insert_recording(&mut *conn, &start.recording).await?;
    Ok(CallStarted {
        recording,
        participants,
    })
}

/// One change of a batch, on `conn` (inside the batch's transaction).
async fn apply_change_on(
    conn: &mut AnyConnection,
    change: &CatalogChange,
) -> Result<ChangeOutcome, CatalogError> {
    use CatalogChange::*;
    let recording = |r| ChangeOutcome::Recording(Box::new(r));
    Ok(match change {
        StartCall(start) => ChangeOutcome::Started(Box::new(start_call_on(conn, start).await?)),
        Transition {
            id,
            from,
            to,
            reason,
            at,
        } => recording(
            change_status_on(conn, StatusUpdate::plain(*id, from, *to, reason, *at)).await?,
        ),
        MarkSpooled {
            id,
            audio,
            reason,
            at,
        } => recording(change_status_on(conn, spooled_update(*id, audio, reason, *at)?).await?),
        MarkDelivered { id, location, at } => {
            recording(change_status_on(conn, delivered_update(*id, location, *at)).await?)
        }
        EndCall { call, at } => {
            end_call_on(conn, call, *at).await?;
            ChangeOutcome::Done
        }
        AddPause { id, span } => {
            insert_pause(conn, *id, *span).await?;
            ChangeOutcome::Done
        }
        AddDecision { call, decision } => {
            insert_decision(conn, call, decision).await?;
            ChangeOutcome::Done
        }
        AddParticipant { call, participant } => {
            ChangeOutcome::Participant(insert_participant(conn, call, participant).await?)
        }
        ParticipantLeft { participant_id, at } => {
            participant_left_on(conn, *participant_id, *at).await?;
            ChangeOutcome::Done
        }
    })
}

fn check_schema_name(schema: &str) -> Result<(), CatalogError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CatalogError::invalid(
            "postgres schema name",
            "use 1 to 63 characters out of a-z 0-9 _",
        ))
    }
}

/// A value bound to a query.
#[derive(Clone, Debug)]
enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}

/// SQL text with `$N` placeholders numbered as values are bound.
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn bind(&mut self, value: impl Into<Arg>) {
        self.args.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
    }

    /// Binds `a, b, c` (the caller writes the parentheses).
    fn bind_list<V: Into<Arg>>(&mut self, values: impl IntoIterator<Item = V>) {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
    }

    fn query(&self) -> Query<'static, Any, AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.text.clone()));
        for arg in &self.args {
            q = match arg.clone() {
                Arg::Int(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
            };
        }
        q
    }
}

enum Extra {
    Value(Arg),
    /// An SQL expression over the row's old values, e.g. `attempts + 1`.
    Sql(&'static str),
}

struct StatusUpdate<'a> {
    id: RecordingId,
    from: &'a [RecordingStatus],
    to: RecordingStatus,
    reason: &'a str,
    at: UnixMillis,
    set_extra: Vec<(&'static str, Extra)>,
    audit: Option<&'a NewAuditEntry>,
    /// Allow `to -> to` (only `record_attempt_failure`: failed -> failed).
    allow_same: bool,
}

impl<'a> StatusUpdate<'a> {
    /// A status change and nothing else (`Catalog::transition`).
    fn plain(
        id: RecordingId,
        from: &'a [RecordingStatus],
        to: RecordingStatus,
        reason: &'a str,
        at: UnixMillis,
    ) -> Self {
        StatusUpdate {
            id,
            from,
            to,
            reason,
            at,
            set_extra: Vec::new(),
            audit: None,
            allow_same: false,
        }
    }
}

const RECORDING_COLUMNS: &str = "id, call_id, format, status, status_reason, status_changed_at, \
    spool_path, storage_backend, storage_key, size_bytes, sha256, duration_ms, is_partial, \
    attempts, last_error, next_attempt_at, created_at, delivered_at";

/// `RECORDING_COLUMNS` qualified with the alias `r`.
const R_RECORDING_COLUMNS: &str = "r.id, r.call_id, r.format, r.status, r.status_reason, \
    r.status_changed_at, r.spool_path, r.storage_backend, r.storage_key, r.size_bytes, r.sha256, \
    r.duration_ms, r.is_partial, r.attempts, r.last_error, r.next_attempt_at, r.created_at, \
    r.delivered_at";

fn to_i64(what: &'static str, v: u64) -> Result<i64, CatalogError> {
    i64::try_from(v).map_err(|_| CatalogError::invalid(what, "it is larger than 2^63 - 1"))
}

fn to_u64(what: &'static str, v: i64) -> Result<u64, CatalogError> {
    u64::try_from(v).map_err(|_| CatalogError::corrupt(what, format!("negative value {v}")))
}

fn opt_u64(what: &'static str, v: Option<i64>) -> Result<Option<u64>, CatalogError> {
    v.map(|v| to_u64(what, v)).transpose()
}

fn parse_col<T: FromStr<Err = CatalogError>>(
    what: &'static str,
    s: &str,
) -> Result<T, CatalogError> {
    s.parse()
        .map_err(|_| CatalogError::corrupt(what, format!("`{s}`")))
}

fn recording_from_row(row: &AnyRow) -> Result<Recording, CatalogError> {
    let backend: Option<String> = row.try_get("storage_backend")?;
    let key: Option<String> = row.try_get("storage_key")?;
    let attempts: i64 = row.try_get("attempts")?;
    let call_id: String = row.try_get("call_id")?;
    Ok(Recording {
        id: parse_col("recording id", &row.try_get::<String, _>("id")?)?,
        call_id: CallId::new(call_id)
            .map_err(|e| CatalogError::corrupt("call id", e.to_string()))?,
        format: parse_col("recording format", &row.try_get::<String, _>("format")?)?,
        status: parse_col("recording status", &row.try_get::<String, _>("status")?)?,
        status_reason: row.try_get("status_reason")?,
        status_changed_at: UnixMillis(row.try_get("status_changed_at")?),
        spool_path: row.try_get("spool_path")?,
        location: match (backend, key) {
            (Some(backend), Some(key)) => Some(StorageLocation { backend, key }),
            _ => None,
        },
        size_bytes: opt_u64("recording size", row.try_get("size_bytes")?)?,
        sha256: row.try_get("sha256")?,
        duration_ms: opt_u64("recording duration", row.try_get("duration_ms")?)?,
        partial: row.try_get::<i64, _>("is_partial")? != 0,
        attempts: u32::try_from(attempts)
            .map_err(|_| CatalogError::corrupt("attempt count", attempts.to_string()))?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row
            .try_get::<Option<i64>, _>("next_attempt_at")?
            .map(UnixMillis),
        created_at: UnixMillis(row.try_get("created_at")?),
        delivered_at: row
            .try_get::<Option<i64>, _>("delivered_at")?
            .map(UnixMillis),
    })
}

const CALL_COLUMNS: &str =
    "id, direction, kind, queue, language, started_at, ended_at, settings_version";

fn call_from_row(row: &AnyRow, decisions: Vec<PolicyDecision>) -> Result<Call, CatalogError> {
    let id: String = row.try_get("id")?;
    Ok(Call {
        id: CallId::new(id).map_err(|e| CatalogError::corrupt("call id", e.to_string()))?,
        direction: parse_col("call direction", &row.try_get::<String, _>("direction")?)?,
        kind: row.try_get("kind")?,
        queue: row.try_get("queue")?,
        language: row.try_get("language")?,
        started_at: UnixMillis(row.try_get("started_at")?),
        ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(UnixMillis),
        settings_version: opt_u64("settings version", row.try_get("settings_version")?)?,
        decisions,
    })
}

const PARTICIPANT_COLUMNS: &str = "id, call_id, role, channel, number, name, joined_at, left_at";

fn participant_from_row(row: &AnyRow) -> Result<Participant, CatalogError> {
    let call_id: String = row.try_get("call_id")?;
    let number: Option<String> = row.try_get("number")?;
    Ok(Participant {
        id: row.try_get("id")?,
        call_id: CallId::new(call_id)
            .map_err(|e| CatalogError::corrupt("call id", e.to_string()))?,
        role: parse_col("participant role", &row.try_get::<String, _>("role")?)?,
        channel: Channel::from_number(row.try_get("channel")?)
            .map_err(|e| CatalogError::corrupt("channel", e.to_string()))?,
        number: number
            .map(PhoneNumber::new)
            .transpose()
            .map_err(|_| CatalogError::corrupt("phone number", "not a valid number"))?,
        name: row.try_get("name")?,
        joined_at: UnixMillis(row.try_get("joined_at")?),
        left_at: row.try_get::<Option<i64>, _>("left_at")?.map(UnixMillis),
    })
}

fn settings_from_row(row: &AnyRow) -> Result<SettingsVersion, CatalogError> {
    let document: String = row.try_get("document")?;
    Ok(SettingsVersion {
        version: to_u64("settings version", row.try_get("version")?)?,
        document: serde_json::from_str(&document)
            .map_err(|e| CatalogError::corrupt("settings document", e.to_string()))?,
        author: row.try_get("author")?,
        summary: row.try_get("summary")?,
        created_at: UnixMillis(row.try_get("created_at")?),
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, CatalogError> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditEntry {
        seq: to_u64("audit sequence number", row.try_get("seq")?)?,
        at: UnixMillis(row.try_get("at")?),
        actor: row.try_get("actor")?,
        action: parse_col("audit action", &row.try_get::<String, _>("action")?)?,
        target: row.try_get("target")?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| CatalogError::corrupt("audit detail", e.to_string()))?,
    })
}

async fn insert_audit(
    conn: &mut sqlx::AnyConnection,
    entry: &NewAuditEntry,
) -> Result<AuditEntry, CatalogError> {
    let row = sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5) \
         RETURNING seq, at, actor, action, target, detail",
    )
    .bind(entry.at.0)
    .bind(entry.actor.as_str())
    .bind(entry.action.as_str())
    .bind(entry.target.as_str())
    .bind(entry.detail.to_string())
    .fetch_one(&mut *conn)
    .await?;
    audit_from_row(&row)
}

fn check_limit(limit: u32) -> Result<i64, CatalogError> {
    if limit == 0 || limit > PageRequest::MAX_LIMIT {
        return Err(CatalogError::invalid(
            "limit",
            format!(
                "{limit} is out of range, use 1 to {}",
                PageRequest::MAX_LIMIT
            ),
        ));
    }
    Ok(i64::from(limit))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Maps an insert's error: a foreign-key violation means the parent row
/// (`what` `id`) is missing; anything else stays a database error.
fn missing_parent(
    what: &'static str,
    id: impl ToString,
) -> impl FnOnce(sqlx::Error) -> CatalogError {
    move |e| {
        if is_foreign_key_violation(&e) {
            CatalogError::not_found(what, id)
        } else {
            CatalogError::from(e)
        }
    }
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

#[async_trait]
impl Catalog for SqlCatalog {
    async fn create_call(&self, call: &NewCall) -> Result<(), CatalogError> {
        let mut conn = self.write_conn().await?;
        insert_call(&mut conn, call).await
    }

    async fn get_call(&self, id: &CallId) -> Result<Call, CatalogError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| CatalogError::not_found("call", id))?;
        let decisions = sqlx::query(
            "SELECT at, decision, reason FROM call_decisions WHERE call_id = $1 ORDER BY id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(PolicyDecision {
                at: UnixMillis(r.try_get("at")?),
                decision: r.try_get("decision")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        call_from_row(&row, decisions)
    }

    async fn end_call(&self, id: &CallId, at: UnixMillis) -> Result<(), CatalogError> {
        let mut conn = self.write_conn().await?;
        end_call_on(&mut conn, id, at).await
    }

    async fn add_decision(
        &self,
        id: &CallId,
        decision: &PolicyDecision,
    ) -> Result<(), CatalogError> {
        let mut conn = self.write_conn().await?;
        insert_decision(&mut conn, id, decision).await
    }

    async fn add_participant(
        &self,
        call: &CallId,
        participant: &NewParticipant,
    ) -> Result<Participant, CatalogError> {
        let mut conn = self.write_conn().await?;
        insert_participant(&mut conn, call, participant).await
    }

    async fn participant_left(
        &self,
        participant_id: i64,
        at: UnixMillis,
    ) -> Result<(), CatalogError> {
        let mut conn = self.write_conn().await?;
        participant_left_on(&mut conn, participant_id, at).await
    }

    async fn participants(&self, call: &CallId) -> Result<Vec<Participant>, CatalogError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE call_id = $1 \
             ORDER BY joined_at, id"
        )))
        .bind(call.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(participant_from_row)
        .collect()
    }

    async fn create_recording(&self, new: &NewRecording) -> Result<Recording, CatalogError> {
        let mut tx = self.begin_write().await?;
        let recording = insert_recording(&mut tx, new).await?;
        tx.commit().await?;
        Ok(recording)
    }

    async fn start_call(&self, start: &CallStart) -> Result<CallStarted, CatalogError> {
        // One transaction: one commit (one fsync on SQLite) per new call.
        let mut tx = self.begin_write().await?;
        let started = start_call_on(&mut tx, start).await?;
        tx.commit().await?;
        Ok(started)
    }

    async fn get_recording(&self, id: RecordingId) -> Result<Recording, CatalogError> {
        fetch_recording(&mut *self.pool.acquire().await?, id).await
    }

    async fn recordings_of_call(&self, call: &CallId) -> Result<Vec<Recording>, CatalogError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE call_id = $1 ORDER BY created_at, id"
        )))
        .bind(call.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(recording_from_row)
        .collect()
    }

    async fn recording_detail(&self, id: RecordingId) -> Result<RecordingDetail, CatalogError> {
        let recording = self.get_recording(id).await?;
        let call = self.get_call(&recording.call_id).await?;
        let participants = self.participants(&recording.call_id).await?;
        let pauses = sqlx::query(
            "SELECT start_ms, end_ms FROM pauses WHERE recording_id = $1 ORDER BY start_ms, id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(PauseSpan {
                start_ms: to_u64("pause start", r.try_get("start_ms")?)?,
                end_ms: to_u64("pause end", r.try_get("end_ms")?)?,
            })
        })
        .collect::<Result<Vec<_>, CatalogError>>()?;
        let history = sqlx::query(
            "SELECT at, from_status, to_status, reason FROM recording_status_history \
             WHERE recording_id = $1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let from: Option<String> = r.try_get("from_status")?;
            Ok(StatusChange {
                at: UnixMillis(r.try_get("at")?),
                from: from
                    .map(|s| parse_col("recording status", &s))
                    .transpose()?,
                to: parse_col("recording status", &r.try_get::<String, _>("to_status")?)?,
                reason: r.try_get("reason")?,
            })
        })
        .collect::<Result<Vec<_>, CatalogError>>()?;
        Ok(RecordingDetail {
            recording,
            call,
            participants,
            pauses,
            history,
        })
    }

    async fn transition(
        &self,
        id: RecordingId,
        from: &[RecordingStatus],
        to: RecordingStatus,
        reason: &str,
        at: UnixMillis,
    ) -> Result<Recording, CatalogError> {
        self.change_status(StatusUpdate::plain(id, from, to, reason, at))
            .await
    }

    async fn mark_spooled(
        &self,
        id: RecordingId,
        audio: &SpooledAudio,
        reason: &str,
        at: UnixMillis,
    ) -> Result<Recording, CatalogError> {
        self.change_status(spooled_update(id, audio, reason, at)?)
            .await
    }

    async fn mark_delivered(
        &self,
        id: RecordingId,
        location: &StorageLocation,
        at: UnixMillis,
    ) -> Result<Recording, CatalogError> {
        self.change_status(delivered_update(id, location, at)).await
    }

    async fn record_attempt_failure(
        &self,
        id: RecordingId,
        error: &str,
        next_attempt_at: UnixMillis,
        at: UnixMillis,
    ) -> Result<Recording, CatalogError> {
        self.change_status(StatusUpdate {
            id,
            from: &[
                RecordingStatus::Spooled,
                RecordingStatus::Uploading,
                RecordingStatus::Failed,
            ],
            to: RecordingStatus::Failed,
            reason: error,
            at,
            set_extra: vec![
                ("attempts", Extra::Sql("attempts + 1")),
                ("last_error", Extra::Value(error.into())),
                ("next_attempt_at", Extra::Value(next_attempt_at.0.into())),
            ],
            audit: None,
            allow_same: true,
        })
        .await
    }

    async fn mark_deleted(
        &self,
        id: RecordingId,
        reason: &str,
        audit: &NewAuditEntry,
    ) -> Result<Recording, CatalogError> {
        self.change_status(StatusUpdate {
            id,
            from: RecordingStatus::DELETABLE,
            to: RecordingStatus::Deleted,
            reason,
            at: audit.at,
            set_extra: vec![
                ("spool_path", Extra::Value(Arg::Text(None))),
                ("next_attempt_at", Extra::Value(Arg::Int(None))),
            ],
            audit: Some(audit),
            allow_same: false,
        })
        .await
    }

    async fn add_pause(&self, id: RecordingId, span: PauseSpan) -> Result<(), CatalogError> {
        let mut conn = self.write_conn().await?;
        insert_pause(&mut conn, id, span).await
    }

    async fn apply_changes(
        &self,
        changes: &[CatalogChange],
    ) -> Result<Vec<Result<ChangeOutcome, CatalogError>>, CatalogError> {
        // One transaction, one commit; a savepoint per change so that one
        // failing (PostgreSQL aborts a transaction at its first error)
        // leaves the others, and leaves nothing of itself.
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            tx.execute("SAVEPOINT catalog_change").await?;
            let result = apply_change_on(&mut tx, change).await;
            if result.is_err() {
                tx.execute("ROLLBACK TO SAVEPOINT catalog_change").await?;
            }
            tx.execute("RELEASE SAVEPOINT catalog_change").await?;
            out.push(result);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn find_by_status(&self, query: &StatusQuery) -> Result<Vec<Recording>, CatalogError> {
        let limit = check_limit(query.limit)?;
        if query.statuses.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE status IN ("
        ));
        sql.bind_list(query.statuses.iter().map(|s| s.as_str()));
        sql.push(")");
        if let Some(due) = query.due_by {
            sql.push(" AND (next_attempt_at IS NULL OR next_attempt_at <= ");
            sql.bind(due.0);
            sql.push(")");
        }
        sql.push(
            " ORDER BY COALESCE(next_attempt_at, -9223372036854775807), created_at, id LIMIT ",
        );
        sql.bind(limit);
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(recording_from_row)
            .collect()
    }

    async fn list_recordings(
        &self,
        filter: &RecordingFilter,
        page: &PageRequest,
    ) -> Result<Page<RecordingListItem>, CatalogError> {
        let limit = check_limit(page.limit)?;
        let mut sql = Sql::new(&format!(
            "SELECT {R_RECORDING_COLUMNS}, c.direction AS call_direction, c.queue AS call_queue, \
             c.started_at AS call_started_at \
             FROM recordings r JOIN calls c ON c.id = r.call_id WHERE 1 = 1"
        ));
        if let Some(from) = filter.from {
            sql.push(" AND r.created_at >= ");
            sql.bind(from.0);
        }
        if let Some(until) = filter.until {
            sql.push(" AND r.created_at < ");
            sql.bind(until.0);
        }
        if let Some(direction) = filter.direction {
            sql.push(" AND c.direction = ");
            sql.bind(direction.as_str());
        }
        if let Some(queue) = &filter.queue {
            sql.push(" AND c.queue = ");
            sql.bind(queue.as_str());
        }
        if !filter.statuses.is_empty() {
            sql.push(" AND r.status IN (");
            sql.bind_list(filter.statuses.iter().map(|s| s.as_str()));
            sql.push(")");
        }
        if let Some(number) = &filter.participant_number {
            sql.push(
                " AND EXISTS (SELECT 1 FROM participants p WHERE p.call_id = r.call_id \
                 AND p.number = ",
            );
            sql.bind(number.as_str());
            sql.push(")");
        }
        if let Some(call_id) = &filter.call_id {
            sql.push(" AND r.call_id = ");
            sql.bind(call_id.as_str());
        }
        if let Some(after) = &page.after {
            sql.push(" AND (r.created_at < ");
            sql.bind(after.created_at);
            sql.push(" OR (r.created_at = ");
            sql.bind(after.created_at);
            sql.push(" AND r.id < ");
            sql.bind(after.id.to_string());
            sql.push("))");
        }
        sql.push(" ORDER BY r.created_at DESC, r.id DESC LIMIT ");
        sql.bind(limit + 1);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let more = rows.len() as i64 > limit;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            items.push(RecordingListItem {
                recording: recording_from_row(row)?,
                direction: parse_col(
                    "call direction",
                    &row.try_get::<String, _>("call_direction")?,
                )?,
                queue: row.try_get("call_queue")?,
                call_started_at: UnixMillis(row.try_get("call_started_at")?),
            });
        }
        let next = if more {
            items.last().map(|item| Cursor {
                created_at: item.recording.created_at.0,
                id: item.recording.id,
            })
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn count_by_status(&self) -> Result<BTreeMap<RecordingStatus, u64>, CatalogError> {
        let mut counts: BTreeMap<RecordingStatus, u64> =
            RecordingStatus::ALL.iter().map(|s| (*s, 0)).collect();
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM recordings GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let status: RecordingStatus =
                parse_col("recording status", &row.try_get::<String, _>("status")?)?;
            counts.insert(status, to_u64("count", row.try_get("n")?)?);
        }
        Ok(counts)
    }

    async fn delivered_before(
        &self,
        cutoff: UnixMillis,
        limit: u32,
    ) -> Result<Vec<Recording>, CatalogError> {
        let limit = check_limit(limit)?;
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE status = $1 AND delivered_at < $2 \
             ORDER BY delivered_at, id LIMIT $3"
        )))
        .bind(RecordingStatus::Delivered.as_str())
        .bind(cutoff.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(recording_from_row)
        .collect()
    }

    async fn current_settings(&self) -> Result<Option<SettingsVersion>, CatalogError> {
        sqlx::query(
            "SELECT version, document, author, summary, created_at FROM settings_versions \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(settings_from_row)
        .transpose()
    }

    async fn settings_version(&self, version: u64) -> Result<SettingsVersion, CatalogError> {
        let row = sqlx::query(
            "SELECT version, document, author, summary, created_at FROM settings_versions \
             WHERE version = $1",
        )
        .bind(to_i64("settings version", version)?)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| CatalogError::not_found("settings version", version))?;
        settings_from_row(&row)
    }

    async fn settings_history(&self, limit: u32) -> Result<Vec<SettingsVersion>, CatalogError> {
        let limit = check_limit(limit)?;
        sqlx::query(
            "SELECT version, document, author, summary, created_at FROM settings_versions \
             ORDER BY version DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(settings_from_row)
        .collect()
    }

    async fn save_settings(
        &self,
        base: u64,
        new: &NewSettings,
    ) -> Result<SettingsVersion, CatalogError> {
        let base_i64 = to_i64("settings version", base)?;
        let version = base_i64
            .checked_add(1)
            .ok_or_else(|| CatalogError::invalid("settings version", "it is at its maximum"))?;
        let mut tx = self.begin_write().await?;
        // One statement that checks and writes, so SQLite takes its write lock
        // first; on PostgreSQL a concurrent insert of the same version fails
        // on the primary key.
        let inserted = sqlx::query(
            "INSERT INTO settings_versions (version, document, author, summary, created_at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT COALESCE(MAX(version), 0) FROM settings_versions) = $6",
        )
        .bind(version)
        .bind(new.document.to_string())
        .bind(new.author.as_str())
        .bind(new.summary.as_str())
        .bind(new.at.0)
        .bind(base_i64)
        .execute(&mut *tx)
        .await;
        let conflict = match inserted {
            Ok(done) => done.rows_affected() == 0,
            Err(e) if is_unique_violation(&e) => true,
            Err(e) => return Err(e.into()),
        };
        if conflict {
            drop(tx);
            let current = self.current_settings().await?.map_or(0, |s| s.version);
            return Err(CatalogError::SettingsConflict { base, current });
        }
        insert_audit(
            &mut tx,
            &NewAuditEntry {
                at: new.at,
                actor: new.author.clone(),
                action: AuditAction::SettingsChange,
                target: format!("settings/{version}"),
                detail: serde_json::json!({ "summary": new.summary }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(SettingsVersion {
            version: version as u64,
            document: new.document.clone(),
            author: new.author.clone(),
            summary: new.summary.clone(),
            created_at: new.at,
        })
    }

    async fn storage_settings(&self) -> Result<Option<StorageSettings>, CatalogError> {
        let Some(row) =
            sqlx::query("SELECT document, author, saved_at FROM storage_settings WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let document: String = row.try_get("document")?;
        Ok(Some(StorageSettings {
            // The serde error names a position, never the content.
            document: serde_json::from_str(&document)
                .map_err(|e| CatalogError::corrupt("storage settings", e.to_string()))?,
            author: row.try_get("author")?,
            saved_at: UnixMillis(row.try_get("saved_at")?),
        }))
    }

    async fn save_storage_settings(
        &self,
        new: &StorageSettings,
        summary: &str,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO storage_settings (id, document, author, saved_at) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET document = excluded.document, \
             author = excluded.author, saved_at = excluded.saved_at",
        )
        .bind(new.document.to_string())
        .bind(new.author.as_str())
        .bind(new.saved_at.0)
        .execute(&mut *tx)
        .await?;
        insert_audit(
            &mut tx,
            &NewAuditEntry {
                at: new.saved_at,
                actor: new.author.clone(),
                action: AuditAction::StorageSettingsChange,
                target: "storage".to_owned(),
                detail: serde_json::json!({ "summary": summary }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry, CatalogError> {
        let mut conn = self.write_conn().await?;
        insert_audit(&mut conn, entry).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, CatalogError> {
        let limit = check_limit(query.limit)?;
        let mut sql =
            Sql::new("SELECT seq, at, actor, action, target, detail FROM audit_log WHERE 1 = 1");
        if let Some(target) = &query.target {
            sql.push(" AND target = ");
            sql.bind(target.as_str());
        }
        if let Some(actor) = &query.actor {
            sql.push(" AND actor = ");
            sql.bind(actor.as_str());
        }
        if let Some(action) = query.action {
            sql.push(" AND action = ");
            sql.bind(action.as_str());
        }
        if let Some(before) = query.before {
            sql.push(" AND seq < ");
            sql.bind(to_i64("audit sequence number", before)?);
        }
        sql.push(" ORDER BY seq DESC LIMIT ");
        sql.bind(limit);
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(audit_from_row)
            .collect()
    }
}

async fn insert_call(conn: &mut AnyConnection, call: &NewCall) -> Result<(), CatalogError> {
    let result = sqlx::query(
        "INSERT INTO calls (id, direction, kind, queue, language, started_at, settings_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(call.id.as_str())
    .bind(call.direction.as_str())
    .bind(call.kind.as_str())
    .bind(call.queue.clone())
    .bind(call.language.clone())
    .bind(call.started_at.0)
    .bind(
        call.settings_version
            .map(|v| to_i64("settings version", v))
            .transpose()?,
    )
    .execute(&mut *conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(CatalogError::AlreadyExists {
            what: "call",
            id: call.id.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn insert_decision(
    conn: &mut AnyConnection,
    id: &CallId,
    decision: &PolicyDecision,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO call_decisions (call_id, at, decision, reason) VALUES ($1, $2, $3, $4)",
    )
    .bind(id.as_str())
    .bind(decision.at.0)
    .bind(decision.decision.as_str())
    .bind(decision.reason.as_str())
    .execute(&mut *conn)
    .await
    .map_err(missing_parent("call", id))?;
    Ok(())
}

async fn insert_participant(
    conn: &mut AnyConnection,
    call: &CallId,
    participant: &NewParticipant,
) -> Result<Participant, CatalogError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO participants (call_id, role, channel, number, name, joined_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {PARTICIPANT_COLUMNS}"
    )))
    .bind(call.as_str())
    .bind(participant.role.as_str())
    .bind(participant.channel.number())
    .bind(participant.number.as_ref().map(|n| n.as_str().to_owned()))
    .bind(participant.name.clone())
    .bind(participant.joined_at.0)
    .fetch_one(&mut *conn)
    .await
    .map_err(missing_parent("call", call))?;
    participant_from_row(&row)
}

async fn insert_recording(
    conn: &mut AnyConnection,
    new: &NewRecording,
) -> Result<Recording, CatalogError> {
    if !RecordingStatus::INITIAL.contains(&new.status) {
        return Err(CatalogError::invalid(
            "initial recording status",
            format!("`{}` is not one of recording, declined", new.status),
        ));
    }
    let id = RecordingId::generate();
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO recordings (id, call_id, format, status, status_reason, status_changed_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {RECORDING_COLUMNS}"
    )))
    .bind(id.to_string())
    .bind(new.call_id.as_str())
    .bind(new.format.as_str())
    .bind(new.status.as_str())
    .bind(new.reason.as_str())
    .bind(new.created_at.0)
    .fetch_one(&mut *conn)
    .await
    .map_err(missing_parent("call", &new.call_id))?;
    let recording = recording_from_row(&row)?;
    sqlx::query(
        "INSERT INTO recording_status_history (recording_id, at, from_status, to_status, reason) \
             VALUES ($1, $2, NULL, $3, $4)",
    )
    .bind(id.to_string())
    .bind(new.created_at.0)
    .bind(new.status.as_str())
    .bind(new.reason.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(recording)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        let check = |url: &str, expected: &str| assert_eq!(redact_url(url), expected, "{url}");
        check(
            "postgres://app:s3cret@db:5432/callrec",
            "postgres://app:***@db:5432/callrec",
        );
        check("postgres://app@db/callrec", "postgres://app@db/callrec");
        check(
            "sqlite:///var/lib/callrec/catalog.db?mode=rwc",
            "sqlite:///var/lib/callrec/catalog.db?mode=rwc",
        );
        check("postgres://u:p@ss@h/db", "postgres://u:***@h/db");
    }

    #[test]
    fn backend_of_url_knows_the_schemes() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of_url("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        assert!(matches!(
            Backend::of_url("mysql://h/db"),
            Err(CatalogError::UnsupportedUrl { scheme }) if scheme == "mysql"
        ));
    }
}
