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
/// may be serving. The file is made here first, readable by its owner only (it holds licence
/// keys and password hashes) and never over one that exists. Returns its size in bytes.
pub async fn backup(url: &str, to: &Path) -> Result<u64, BackupError> {
    let from = local_file(url)?;
    if !from.is_file() {
        return Err(BackupError::Missing(from));
    }
    create_private(to)?;
    let copied = async {
        let mut conn = read_only(&from).await.map_err(database)?;
        // (VACUUM INTO reads one snapshot and writes it to an empty file; a read-only
        // connection is enough.)
        let done = sqlx::query("VACUUM INTO $1")
            .bind(to.to_string_lossy().into_owned())
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
        done.map_err(database)?;
        check_backup(to).await
    }
    .await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    Ok(std::fs::metadata(to).map_err(io(to))?.len())
}

/// Creates `path` empty, only if nothing (not even a dangling link) is there, mode 600.
fn create_private(path: &Path) -> Result<(), BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(BackupError::TargetExists(path.to_owned()))
        }
        Err(e) => Err(io(path)(e)),
    }
}

/// Puts the backup `from` in place of the database at `url`: refused when that database
/// already holds one unless `force` (the server using it must be stopped first). The copy is
/// staged beside the target and checked there; what it replaces is moved aside
/// (`….before-restore-<time>`, with its write-ahead log), never deleted; the restored database
/// is brought to this version and keeps the replaced file's owner and mode.
pub async fn restore(from: &Path, url: &str, force: bool) -> Result<(), BackupError> {
    let target = local_file(url)?;
    if !from.is_file() {
        return Err(BackupError::Missing(from.to_owned()));
    }
    if with_suffix(from, "-wal").exists() {
        return Err(BackupError::NotABackup {
            path: from.to_owned(),
            why: "it has a write-ahead log beside it: it is a database in use, not a copy \
                  `server backup` made"
                .into(),
        });
    }
    if same_file(from, &target) {
        return Err(BackupError::NotABackup {
            path: from.to_owned(),
            why: "it is the database DATABASE_URL names".into(),
        });
    }
    // With --force, a target that cannot even be read (damaged, or left mid-recovery) is
    // replaced too; without, it counts as holding data.
    let holds_data = holds_a_database(&target).await.unwrap_or(true);
    if holds_data && !force {
        return Err(BackupError::NotEmpty(target));
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let staged = with_suffix(&target, ".restoring");
    let installed = async {
        std::fs::copy(from, &staged).map_err(io(&staged))?;
        check_backup(&staged).await?;
        std::fs::File::open(&staged)
            .and_then(|f| f.sync_all())
            .map_err(io(&staged))?;
        keep_owner_and_mode(&target, &staged)?;
        let aside = move_aside(&target)?;
        if let Err(e) = std::fs::rename(&staged, &target) {
            // Put back what was there, rather than leave no database at all.
            for (from, to) in aside.iter().rev() {
                let _ = std::fs::rename(to, from);
            }
            return Err(io(&target)(e));
        }
        Ok(())
    }
    .await;
    if let Err(e) = installed {
        let _ = std::fs::remove_file(&staged);
        return Err(e);
    }
    let db = Database::connect(url, 1).await.map_err(database)?;
    let migrated = db.migrate().await;
    db.close().await;
    migrated.map_err(database)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Moves the database at `target` and its write-ahead log aside, kept for an undo
/// (`….before-restore-<unix time in ms>`); returns each (old place, new place).
fn move_aside(target: &Path) -> Result<Vec<(PathBuf, PathBuf)>, BackupError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut moved = Vec::new();
    for side in ["", "-wal", "-shm"] {
        let file = with_suffix(target, side);
        if file.exists() {
            let aside = with_suffix(target, &format!(".before-restore-{stamp}{side}"));
            if let Err(e) = std::fs::rename(&file, &aside) {
                for (from, to) in moved.iter().rev() {
                    let _ = std::fs::rename(to, from);
                }
                return Err(io(&file)(e));
            }
            moved.push((file, aside));
        }
    }
    Ok(moved)
}

/// Gives `staged` the owner and mode of the file it replaces (the server's user must still
/// be able to write the database when restore ran as another user).
fn keep_owner_and_mode(replaced: &Path, staged: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(replaced) {
        use std::os::unix::fs::MetadataExt;
        std::fs::set_permissions(staged, meta.permissions()).map_err(io(staged))?;
        // Only root may give a file away; anyone else already owns both.
        if let Err(e) = std::os::unix::fs::chown(staged, Some(meta.uid()), Some(meta.gid())) {
            if e.kind() != std::io::ErrorKind::PermissionDenied {
                return Err(io(staged)(e));
            }
        }
    }
    Ok(())
}

/// The SQLite file `url` names, as SQLite will open it; PostgreSQL and in-memory databases
/// are refused with a reason.
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
async fn read_only(path: &Path) -> Result<sqlx::SqliteConnection, sqlx::Error> {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
}

/// Refuses a file that is not a sound database of ours that this version can run: its
/// integrity, and every migration it carries known to this version with the same checksum.
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
        let applied: Vec<(i64, Vec<u8>, bool)> =
            sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations")
                .fetch_all(&mut conn)
                .await
                .map_err(|_| not_a_backup("it has no Licentia tables".into()))?;
        if applied.is_empty() {
            return Err(not_a_backup("it has no Licentia tables".into()));
        }
        for (version, checksum, success) in applied {
            match SQLITE_MIGRATIONS.iter().find(|m| m.version == version) {
                None => return Err(BackupError::Newer(path.to_owned())),
                Some(m) if *m.checksum != checksum[..] || !success => {
                    return Err(not_a_backup(format!(
                        "its schema step {version} is not this version's (another \
                         application's database, or a step that failed)"
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
    .await;
    let _ = conn.close().await;
    checked
}
