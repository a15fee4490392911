//! The database: one pool for SQLite or PostgreSQL, chosen by the URL, and the migrations of each.
//! Queries are written once, with `$N` placeholders, and run on both through sqlx's `Any` driver.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::str::FromStr;
use std::time::Duration;

pub(crate) static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Commits `tx`. A failure here leaves the outcome unknown (the commit may have landed before
/// the connection was cut), so it is never called an outage to retry: it is a server error,
/// logged, and whoever sent the request checks before sending it again.
pub(crate) async fn commit(tx: sqlx::Transaction<'_, sqlx::Any>) -> crate::Result<()> {
    tx.commit().await.map_err(crate::Error::Database)
}

/// Commits `tx` of a request that may be sent again without harm whatever became of it — a
/// checkout (sent again by its installation it resumes the seat it took; by anyone else it is
/// refused as that session's), a heartbeat, a release: a connection lost at the commit is an
/// outage like any other, answered 503 with a time to try again.
pub(crate) async fn commit_retryable(tx: sqlx::Transaction<'_, sqlx::Any>) -> crate::Result<()> {
    tx.commit().await.map_err(crate::Error::from)
}

/// A value for a `$N` placeholder of a query put together from parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

/// The conditions of a WHERE clause that apply to one query, and their values: each `?` of a
/// condition becomes the next `$N`. A condition that does not apply is left out of the SQL
/// rather than switched off by a NULL parameter (`$1 IS NULL OR …`), so the planner can walk an
/// index from a page's cursor instead of scanning from the top.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    /// Adds `clause`, its `?`s standing for `values` in order.
    pub(crate) fn and<const N: usize>(&mut self, clause: &str, values: [Bind; N]) {
        self.and_many(clause, &values);
    }

    /// Like `and`, with the values as a slice (a clause whose number of `?`s varies).
    pub(crate) fn and_many(&mut self, clause: &str, values: &[Bind]) {
        debug_assert_eq!(clause.matches('?').count(), values.len(), "{clause}");
        let mut values = values.iter().cloned().peekable();
        let mut sql = String::with_capacity(clause.len() + 4 * values.len());
        for c in clause.chars() {
            if let Some(value) = values.next_if(|_| c == '?') {
                self.binds.push(value);
                sql.push_str(&format!("${}", self.binds.len()));
            } else {
                sql.push(c);
            }
        }
        self.clauses.push(sql);
    }

    /// ` WHERE` and these conditions (empty without any).
    pub(crate) fn where_sql(&self) -> String {
        match self.clauses.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", self.clauses.join(" AND ")),
        }
    }

    /// `select`, these conditions, `ORDER BY order` and a LIMIT of `limit` rows.
    pub(crate) fn page_sql(&mut self, select: &str, order: &str, limit: i64) -> String {
        self.binds.push(Bind::Int(limit));
        let filter = self.where_sql();
        format!(
            "{select}{filter} ORDER BY {order} LIMIT ${}",
            self.binds.len()
        )
    }

    /// How many rows of `from` (its `FROM` and joins) these conditions pick.
    pub(crate) async fn count(self, pool: &sqlx::AnyPool, from: &str) -> crate::Result<i64> {
        let sql = format!("SELECT COUNT(*) {from}{}", self.where_sql());
        let (n,): (i64,) = self.bind(sqlx::query_as(&sql)).fetch_one(pool).await?;
        Ok(n)
    }

    /// `query` with the values bound, in their placeholders' order.
    pub(crate) fn bind<'q, O>(
        self,
        mut query: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
        for value in self.binds {
            query = match value {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        query
    }
}

/// Deletes from `table` the rows `condition` selects (it reads the cutoff as `$1`), a thousand
/// per statement, each its own short transaction, so a large purge never holds the database's
/// writer for long. Returns how many went.
pub(crate) async fn delete_in_batches(
    pool: &sqlx::AnyPool,
    table: &str,
    condition: &str,
    cutoff: i64,
) -> crate::Result<u64> {
    const BATCH: i64 = 1_000;
    let sql = format!(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {condition} LIMIT $2)"
    );
    let mut gone = 0;
    loop {
        let n = sqlx::query(&sql)
            .bind(cutoff)
            .bind(BATCH)
            .execute(pool)
            .await?
            .rows_affected();
        gone += n;
        if n < BATCH as u64 {
            return Ok(gone);
        }
    }
}

/// `text` with LIKE's own `%`, `_` and `\\` taken literally (used with `ESCAPE '\\'`).
pub(crate) fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, SetupError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(SetupError::UnsupportedUrl)
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Why the database could not be made ready; each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("DATABASE_URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the {backend} database: {source}")]
    Connect {
        backend: &'static str,
        source: sqlx::Error,
    },
    #[error("migrating the {backend} database failed: {source}")]
    Migrate {
        backend: &'static str,
        source: sqlx::migrate::MigrateError,
    },
}

#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

/// The file a SQLite URL names, as SQLite opens it (percent-decoded); `None` for an
/// in-memory database.
pub(crate) fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    // (sqlx names `:memory:` databases `file:sqlx-in-memory-N`.)
    let in_memory = file.as_os_str().is_empty()
        || file.to_string_lossy().starts_with("file:sqlx-in-memory-")
        || query.contains("mode=memory");
    (!in_memory).then(|| file.to_owned())
}

/// Adds `mode=rwc` to a SQLite URL that does not say otherwise, so a new file is created, and
/// returns the file's directory so it can be created first.
fn prepare_sqlite_url(url: &str) -> (String, Option<String>) {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let dir = sqlite_file(url)
        .and_then(|file| file.parent().map(|p| p.to_string_lossy().into_owned()))
        .filter(|p| !p.is_empty());
    let url = if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    };
    (url, dir)
}

impl Database {
    /// Connects, creating a SQLite file (and its directory) when needed. Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, SetupError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => {
                let (url, dir) = prepare_sqlite_url(url);
                if let Some(dir) = dir {
                    std::fs::create_dir_all(&dir)
                        .map_err(|source| SetupError::CreateDir { path: dir, source })?;
                }
                url
            }
            Backend::Postgres => url.to_owned(),
        };
        let connect_err = |source| SetupError::Connect {
            backend: backend.name(),
            source,
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(connect_err)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // Connections are renewed now and then, so none outlives a failover for long (a
            // connection to a demoted primary answers every write "read-only").
            .idle_timeout(Duration::from_secs(60))
            .max_lifetime(Duration::from_secs(300))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Foreign keys are on by default in sqlx; said again so the rule is visible.
                        conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        if backend == Backend::Sqlite {
            // WAL is a property of the file: readers no longer wait for a writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(connect_err)?;
        }
        Ok(Self { pool, backend })
    }

    /// Applies the migrations this binary carries that the database has not seen yet.
    pub async fn migrate(&self) -> Result<(), SetupError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| SetupError::Migrate {
                backend: self.backend.name(),
                source,
            })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_of_a_sqlite_url_is_the_one_sqlite_opens() {
        use std::path::PathBuf;
        assert_eq!(
            sqlite_file("sqlite://data/licentia.db"),
            Some(PathBuf::from("data/licentia.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///srv/l.db?mode=rwc"),
            Some(PathBuf::from("/srv/l.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://dir%20one/a%3Fb.db"),
            Some(PathBuf::from("dir one/a?b.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
    }

    #[test]
    fn conditions_number_their_placeholders_in_order_and_leave_out_what_does_not_apply() {
        let mut none = Conditions::default();
        assert_eq!(
            none.page_sql("SELECT x FROM t", "x", 11),
            "SELECT x FROM t ORDER BY x LIMIT $1"
        );
        assert_eq!(none.binds, [Bind::Int(11)]);
        let mut some = Conditions::default();
        some.and("t.a = ?", [Bind::Int(7)]);
        some.and(
            "(t.b, t.id) > (?, ?)",
            [Bind::Text("b".into()), Bind::Int(3)],
        );
        assert_eq!(
            some.page_sql("SELECT x FROM t", "t.b, t.id", 101),
            "SELECT x FROM t WHERE t.a = $1 AND (t.b, t.id) > ($2, $3) ORDER BY t.b, t.id LIMIT $4"
        );
        assert_eq!(
            some.binds,
            [
                Bind::Int(7),
                Bind::Text("b".into()),
                Bind::Int(3),
                Bind::Int(101)
            ]
        );
    }

    #[test]
    fn sqlite_urls_get_create_mode_and_a_directory() {
        assert_eq!(
            prepare_sqlite_url("sqlite://data/licentia.db"),
            (
                "sqlite://data/licentia.db?mode=rwc".to_owned(),
                Some("data".to_owned())
            )
        );
        assert_eq!(
            prepare_sqlite_url("sqlite:x.db?mode=ro"),
            ("sqlite:x.db?mode=ro".to_owned(), None)
        );
        assert_eq!(prepare_sqlite_url("sqlite::memory:").1, None);
    }

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://a.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://x").is_err());
    }

    /// Migration 3 rebuilds `licences` and `activations` on SQLite: what was there before must
    /// all be there after, with the foreign keys and the one-live-activation rule still in force.
    #[tokio::test]
    async fn the_web_model_migration_keeps_every_licence_and_activation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/m.db", dir.path().display());
        let db = Database::connect(&url, 1).await.expect("connect");
        let first_two = Migrator {
            migrations: std::borrow::Cow::Owned(
                SQLITE_MIGRATIONS
                    .iter()
                    .filter(|m| m.version < 3)
                    .cloned()
                    .collect(),
            ),
            ..Migrator::DEFAULT
        };
        first_two.run(db.pool()).await.expect("migrations 1-2");
        for sql in [
            "INSERT INTO clients (id, name, name_key, created_at) VALUES (1, 'Acme', 'acme', 0)",
            "INSERT INTO products (id, code, name, created_at) VALUES (1, 'CALC', 'Calc', 0)",
            "INSERT INTO orders (id, client_id, product_id, features, counters, created_at) \
             VALUES (1, 1, 1, '[\"print\"]', '{}', 0)",
            "INSERT INTO licences (id, order_id, licence_key, counters, activation_count, created_at) \
             VALUES (7, 1, 'AAAAA-BBBBB-CCCCC-DDDDD', '{\"users\":3}', 2, 10)",
            "INSERT INTO activations (id, licence_id, fingerprint, hostname, mode, activated_at, removed_at, removed_by) \
             VALUES (4, 7, 'f1', 'old-pc', 'online', 11, 12, 'user')",
            "INSERT INTO activations (id, licence_id, fingerprint, hostname, mode, activated_at) \
             VALUES (5, 7, 'f2', 'new-pc', 'online', 13)",
            // A newer order, deleted before the upgrade: its ids must not come back.
            "INSERT INTO orders (id, client_id, product_id, features, counters, created_at) \
             VALUES (2, 1, 1, '[]', '{}', 0)",
            "INSERT INTO licences (id, order_id, licence_key, created_at) VALUES (9, 2, 'K9', 0)",
            "INSERT INTO activations (id, licence_id, fingerprint, hostname, mode, activated_at) \
             VALUES (6, 9, 'f9', 'gone-pc', 'online', 15)",
            "DELETE FROM orders WHERE id = 2",
        ] {
            sqlx::query(sql).execute(db.pool()).await.expect(sql);
        }
        db.migrate().await.expect("migration 3");
        let licence: (i64, Option<i64>, Option<i64>, String, Option<String>, i64) = sqlx::query_as(
            "SELECT id, order_id, serial_id, licence_key, counters, activation_count FROM licences",
        )
        .fetch_one(db.pool())
        .await
        .expect("licence");
        assert_eq!(
            licence,
            (
                7,
                Some(1),
                None,
                "AAAAA-BBBBB-CCCCC-DDDDD".into(),
                Some("{\"users\":3}".into()),
                2
            )
        );
        let acts: Vec<(i64, i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, licence_id, hostname, removed_at FROM activations ORDER BY id",
        )
        .fetch_all(db.pool())
        .await
        .expect("activations");
        assert_eq!(
            acts,
            [
                (4, 7, "old-pc".into(), Some(12)),
                (5, 7, "new-pc".into(), None)
            ]
        );
        // Still enforced: one live activation per licence, foreign keys, one owner per licence.
        let refused = [
            "INSERT INTO activations (licence_id, fingerprint, hostname, mode, activated_at) \
             VALUES (7, 'f3', 'third', 'online', 14)",
            "INSERT INTO activations (licence_id, fingerprint, hostname, mode, activated_at) \
             VALUES (99, 'f3', 'third', 'online', 14)",
            "INSERT INTO licences (licence_key, created_at) VALUES ('X', 0)",
        ];
        for sql in refused {
            assert!(sqlx::query(sql).execute(db.pool()).await.is_err(), "{sql}");
        }
        let next: (i64, i64) = sqlx::query_as(
            "INSERT INTO licences (order_id, licence_key, created_at) VALUES (1, 'K10', 0) \
             RETURNING id, (SELECT MAX(id) FROM activations)",
        )
        .fetch_one(db.pool())
        .await
        .expect("insert");
        assert_eq!(next.0, 10, "licence ids continue after the deleted 9");
        let act: i64 = sqlx::query_scalar(
            "INSERT INTO activations (licence_id, fingerprint, hostname, mode, activated_at) \
             VALUES (10, 'f10', 'pc', 'online', 20) RETURNING id",
        )
        .fetch_one(db.pool())
        .await
        .expect("insert");
        assert_eq!(act, 7, "activation ids continue after the deleted 6");
        // Deleting the order still takes its licences and their activations with it.
        sqlx::query("DELETE FROM orders")
            .execute(db.pool())
            .await
            .expect("delete");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activations")
            .fetch_one(db.pool())
            .await
            .expect("count");
        assert_eq!(left, 0);
    }

    /// Migration 5 rebuilds the floating tables on SQLite: pools, keys, bundles, seats and hourly
    /// usage survive with their ids, the counters go on, the rules still hold, and a client may
    /// now have a second pool.
    #[tokio::test]
    async fn the_pools_migration_keeps_every_pool_key_and_seat() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/m.db", dir.path().display());
        let db = Database::connect(&url, 1).await.expect("connect");
        let first_four = Migrator {
            migrations: std::borrow::Cow::Owned(
                SQLITE_MIGRATIONS
                    .iter()
                    .filter(|m| m.version < 5)
                    .cloned()
                    .collect(),
            ),
            ..Migrator::DEFAULT
        };
        first_four.run(db.pool()).await.expect("migrations 1-4");
        for sql in [
            "INSERT INTO clients (id, name, name_key, created_at) VALUES (1, 'Acme', 'acme', 0)",
            "INSERT INTO pools (id, client_id, access_key, lease_secs, created_at) \
             VALUES (3, 1, 'POOL-A', 60, 5)",
            "INSERT INTO pool_keys (id, pool_id, editor, feature, model, quantity, in_use, \
             generation_day, created_at) VALUES (8, 3, 'V', 'print', 'ConcurrentUser', 2, 1, 0, 0)",
            "INSERT INTO pool_bundles (pool_id, feature, also_feature) VALUES (3, 'print', 'export')",
            "INSERT INTO seats (id, pool_id, key_id, editor, feature, user_name, host, process, \
             session, amount, lease_token_hash, granted_at, last_heartbeat_at, lease_expires_at) \
             VALUES (11, 3, 8, 'V', 'print', 'ann', 'pc1', 'calc', '', 1, 'h1', 1, 1, 99)",
            "INSERT INTO usage_hourly (pool_id, editor, feature, hour, refusals, peak_in_use) \
             VALUES (3, 'V', 'print', 7, 2, 1)",
        ] {
            sqlx::query(sql).execute(db.pool()).await.expect(sql);
        }
        db.migrate().await.expect("migration 5");
        let seat: (i64, i64, i64, String, Option<i64>) = sqlx::query_as(
            "SELECT s.id, s.key_id, k.in_use, p.access_key, s.released_at FROM seats s \
             JOIN pool_keys k ON k.id = s.key_id JOIN pools p ON p.id = s.pool_id",
        )
        .fetch_one(db.pool())
        .await
        .expect("seat");
        assert_eq!(seat, (11, 8, 1, "POOL-A".into(), None));
        let kept: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM pool_bundles), (SELECT refusals FROM usage_hourly)",
        )
        .fetch_one(db.pool())
        .await
        .expect("counts");
        assert_eq!(kept, (1, 2));
        let second: i64 = sqlx::query_scalar(
            "INSERT INTO pools (client_id, name, access_key, created_at) \
             VALUES (1, 'Lab', 'POOL-B', 6) RETURNING id",
        )
        .fetch_one(db.pool())
        .await
        .expect("a second pool for the same client");
        assert_eq!(second, 4, "pool ids continue");
        // Still enforced: in use never above the count, seats need their key, one owner.
        for sql in [
            "UPDATE pool_keys SET in_use = 3 WHERE id = 8",
            "INSERT INTO seats (pool_id, key_id, editor, feature, user_name, host, process, \
             session, amount, lease_token_hash, granted_at, last_heartbeat_at, lease_expires_at) \
             VALUES (3, 99, 'V', 'print', 'bob', 'pc2', 'calc', '', 1, 'h2', 1, 1, 99)",
            "INSERT INTO pools (access_key, created_at) VALUES ('POOL-C', 0)",
        ] {
            assert!(sqlx::query(sql).execute(db.pool()).await.is_err(), "{sql}");
        }
        // Deleting the pool still takes its keys, seats and history with it.
        sqlx::query("DELETE FROM pools WHERE id = 3")
            .execute(db.pool())
            .await
            .expect("delete");
        let left: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM pool_keys), (SELECT COUNT(*) FROM seats), \
             (SELECT COUNT(*) FROM usage_hourly)",
        )
        .fetch_one(db.pool())
        .await
        .expect("counts");
        assert_eq!(left, (0, 0, 0));
    }
}
