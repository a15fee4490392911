//! Backing up and restoring the database. On SQLite, a backup is an online, consistent copy
//! taken while the server serves (`VACUUM INTO`: one read transaction, so it holds the database
//! as it was at one instant, and compacted); a restore checks the copy (integrity, and that this
//! version knows every migration it carries) before it takes the database's place. PostgreSQL
//! has its own tools (`pg_dump`, `pg_restore`), which the README describes.
//!
//! Neither holds the master key, which seals the signing keys: it is kept apart on purpose, and
//! the restored server must be started with the same one.

use crate::db::{sqlite_file, Backend, Database, SQLITE_MIGRATIONS};
use sqlx::Connection;
use std::path::{Path, PathBuf};

/// Why a backup or a restore could not be made; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "on PostgreSQL, back up with its own tool while the server runs: \
         pg_dump --format=custom --file FILE \"$DATABASE_URL\"; restore into an empty database \
         with pg_restore --no-owner --dbname \"$DATABASE_URL\" FILE (see the README's Backup \
         section). Keep the master key apart: it is not in the dump."
    )]
    Postgres,
    #[error("DATABASE_URL names an in-memory database: there is nothing to back up or restore")]
    InMemory,
    #[error("{0} already exists: choose a new file name (a backup never overwrites one)")]
    TargetExists(PathBuf),
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error(
        "{0} already holds a database: stop the server that uses it, then run restore again \
         with --force to replace it"
    )]
    NotEmpty(PathBuf),
    #[error("{path} is not a Licentia backup: {why}")]
    NotABackup { path: PathBuf, why: String },
    #[error(
        "{0} was made by a newer version of Licentia (it has migrations this one does not know): \
         restore it with that version or a later one"
    )]
    Newer(PathBuf),
    #[error("{0}")]
    Database(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

fn database(e: impl std::fmt::Display) -> BackupError {
    BackupError::Database(e.to_string())
}

/// Writes a consistent copy of the database at `url` to the new file `to`, while the server
/// may be serving. Returns the copy's size in bytes.
pub async fn backup(url: &str, to: &Path) -> Result<u64, BackupError> {
    local_file(url)?;
    if to.exists() {
        return Err(BackupError::TargetExists(to.to_owned()));
    }
    let db = Database::connect(url, 1).await.map_err(database)?;
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(to.to_string_lossy().into_owned())
        .execute(db.pool())
        .await;
    db.close().await;
    copied.map_err(database)?;
    Ok(std::fs::metadata(to).map_err(io(to))?.len())
}

/// Puts the backup `from` in place of the database at `url`: refused when that database
/// already holds one unless `force` (the server using it must be stopped first). The copy is
/// checked before anything is replaced, and the restored database is brought to this version.
pub async fn restore(from: &Path, url: &str, force: bool) -> Result<(), BackupError> {
    let target = local_file(url)?;
    if !from.is_file() {
        return Err(BackupError::Missing(from.to_owned()));
    }
    check_backup(from).await?;
    if holds_a_database(&target).await? && !force {
        return Err(BackupError::NotEmpty(target));
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // Copied beside the target, then renamed over it: the database is never half a file.
    let staged = with_suffix(&target, ".restoring");
    std::fs::copy(from, &staged).map_err(io(&staged))?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(io(&staged))?;
    // A write-ahead log left by the replaced database would be replayed into the restored one.
    for side in ["-wal", "-shm"] {
        let file = with_suffix(&target, side);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&file)(e)),
            _ => {}
        }
    }
    std::fs::rename(&staged, &target).map_err(io(&target))?;
    let db = Database::connect(url, 1).await.map_err(database)?;
    let migrated = db.migrate().await;
    db.close().await;
    migrated.map_err(database)
}

/// The SQLite file `url` names; PostgreSQL and in-memory databases are refused with a reason.
fn local_file(url: &str) -> Result<PathBuf, BackupError> {
    match Backend::from_url(url).map_err(database)? {
        Backend::Postgres => Err(BackupError::Postgres),
        Backend::Sqlite => sqlite_file(url).ok_or(BackupError::InMemory),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `path` is a database with tables in it (an empty or missing file is not).
async fn holds_a_database(path: &Path) -> Result<bool, BackupError> {
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(false);
    }
    let mut conn = read_only(path).await.map_err(database)?;
    let tables: Result<i64, _> =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'")
            .fetch_one(&mut conn)
            .await;
    let _ = conn.close().await;
    Ok(tables.map_err(database)? > 0)
}

/// A plain connection that reads `path` and changes nothing (no pragmas, no migrations).
async fn read_only(path: &Path) -> Result<sqlx::AnyConnection, sqlx::Error> {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=ro", path.display())).await
}

/// Refuses a file that is not a sound database of ours that this version can run.
async fn check_backup(path: &Path) -> Result<(), BackupError> {
    let not_a_backup = |why: String| BackupError::NotABackup {
        path: path.to_owned(),
        why,
    };
    let mut conn = read_only(path)
        .await
        .map_err(|e| not_a_backup(e.to_string()))?;
    let checked = async {
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| not_a_backup(e.to_string()))?;
        if integrity != "ok" {
            return Err(not_a_backup(format!(
                "its integrity check says {integrity}"
            )));
        }
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&mut conn)
            .await
            .map_err(|_| not_a_backup("it has no Licentia tables".into()))?;
        if applied.is_empty() {
            return Err(not_a_backup("it has no Licentia tables".into()));
        }
        let known: Vec<i64> = SQLITE_MIGRATIONS.iter().map(|m| m.version).collect();
        if applied.iter().any(|v| !known.contains(v)) {
            return Err(BackupError::Newer(path.to_owned()));
        }
        Ok(())
    }
    .await;
    let _ = conn.close().await;
    checked
}
