//! `server backup` and `server restore` as an operator runs them: a backup taken while the
//! server serves a stream of writes, restored into a fresh directory, is a server that validates
//! the codes it signed and keeps every seat's history; restoring over a database that holds
//! data, overwriting a backup, or restoring what is not a backup are refused and change nothing.

use crate::helpers::*;
use licensing::Backend;
use protocol::activation::fingerprint;
use protocol::catalog::LicensingSettings;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn server(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .env_remove("LICENTIA_CONFIG")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .expect("run server")
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Rows of `table` matching `filter`, read straight from the file.
async fn count(url: &str, table_and_filter: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table_and_filter}"))
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_to_a_server_that_keeps_codes_and_seat_history() {
    within_limit(async {
        let master_key = licensing::keys::MasterKey::random().to_base64();
        let with_key = [("LICENTIA_MASTER_KEY", master_key.as_str())];
        let app = TestApp::spawn(Backend::Sqlite, &with_key).await;
        let f = fixture(&app, LicensingSettings { max_activations: 5, ..Default::default() }, 1).await;
        let activate = json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-1"), "hostname": "ws-1"});
        let (status, activated, _) = api_post(&app, "/api/v1/activations", activate).await;
        assert_eq!(status, StatusCode::CREATED, "{activated}");
        let code = activated["activation_code"].as_str().expect("code").to_owned();
        let pool = own_pool(&app, &f, 300).await;
        app.services.add_pool_key(&f.admin, pool.id, key_input("F", "ConcurrentUser", 50)).await.expect("key");

        // Seats taken and given back all along, before and while the backup runs.
        let ended = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let writer = {
            let (base, key, ended) = (app.base_url.clone(), pool.access_key.clone(), ended.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut i = 0;
                while !*stop_rx.borrow() {
                    i += 1;
                    let body = json!({"pool_key": key, "feature": "F", "user": format!("u{i}"), "host": "h", "process": "cad"});
                    let seat: serde_json::Value = http.post(format!("{base}/api/v1/seats")).json(&body).send().await.expect("checkout").json().await.expect("json");
                    let release = http.post(format!("{base}/api/v1/seats/{}/release", seat["seat_id"])).json(&json!({"lease_token": seat["lease_token"]})).send().await.expect("release");
                    assert_eq!(release.status(), StatusCode::NO_CONTENT, "{seat}");
                    ended.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        while ended.load(Ordering::SeqCst) < 5 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("licentia.backup");
        let file_arg = file.to_string_lossy().into_owned();
        let ended_before = ended.load(Ordering::SeqCst);
        let url = app.database_url.clone();
        let out = tokio::task::spawn_blocking({
            let (url, file_arg) = (url.clone(), file_arg.clone());
            move || server(&url, &["backup", &file_arg])
        })
        .await
        .expect("backup");
        let ended_during = ended.load(Ordering::SeqCst) - ended_before;
        assert!(out.status.success(), "{}", said(&out));
        assert!(said(&out).contains("master key is not in it"), "{}", said(&out));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("backup").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "licence keys and password hashes: its owner's only");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        stop_tx.send(true).expect("stop");
        writer.await.expect("writer");
        let total = ended.load(Ordering::SeqCst);
        assert!(total > ended_before, "the server kept serving around the backup ({ended_during} during it)");

        // A backup never overwrites a file.
        let again = server(&url, &["backup", &file_arg]);
        assert!(!again.status.success() && said(&again).contains("already exists"), "{}", said(&again));

        // Restored into a fresh directory, and started with the same master key.
        let fresh = tempfile::tempdir().expect("fresh dir");
        let fresh_url = format!("sqlite://{}/data/licentia.db", fresh.path().display());
        let out = server(&fresh_url, &["restore", &file_arg]);
        assert!(out.status.success(), "{}", said(&out));
        let kept = count(&fresh_url, "seats WHERE released_at IS NOT NULL").await;
        assert!(kept as usize >= ended_before, "every seat given back before the backup is there: {kept} of {ended_before}");
        assert!(kept as usize <= total);
        let restored = TestApp::spawn_at(&fresh_url, None, &with_key).await;
        let (status, body) = validate_code(&restored, &code, "ws-1").await;
        assert_eq!(status, StatusCode::OK, "the restored server validates the code: {body}");
        let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", restored.base_url)).await.expect("jwks").json().await.expect("json");
        let original: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", app.base_url)).await.expect("jwks").json().await.expect("json");
        assert_eq!(jwks, original, "the same signing keys");
        drop(restored);

        // Over a database that holds data: refused unless forced, and untouched when refused.
        let before = count(&url, "seats").await;
        let refused = server(&url, &["restore", &file_arg]);
        assert!(!refused.status.success() && said(&refused).contains("--force"), "{}", said(&refused));
        assert_eq!(count(&url, "seats").await, before, "nothing changed");
        // A database in use is not a backup (its write-ahead log is beside it), nor is the
        // database itself.
        let live = app.database_url.trim_start_matches("sqlite://").to_owned();
        let out = server(&fresh_url, &["restore", &live, "--force"]);
        assert!(!out.status.success() && said(&out).contains("write-ahead log"), "{}", said(&out));
        // Forced (the server using it stopped): what it replaces is moved aside, not deleted.
        let out = server(&fresh_url, &["restore", &file_arg, "--force"]);
        assert!(out.status.success(), "{}", said(&out));
        let aside: Vec<_> = std::fs::read_dir(fresh.path().join("data"))
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("licentia.db.before-restore-"))
            .collect();
        assert!(!aside.is_empty(), "the replaced database is kept aside");
        assert_eq!(count(&fresh_url, "seats WHERE released_at IS NOT NULL").await, kept);
    })
    .await;
}

#[tokio::test]
async fn what_is_not_a_backup_is_refused_and_postgres_is_pointed_to_its_tools() {
    let dir = tempfile::tempdir().expect("dir");
    let junk = dir.path().join("junk.backup");
    std::fs::write(&junk, b"not a database at all, just some bytes").expect("write");
    let target = dir.path().join("db/licentia.db");
    let url = format!("sqlite://{}", target.display());
    let out = server(&url, &["restore", &junk.to_string_lossy()]);
    assert!(
        !out.status.success() && said(&out).contains("is not a Licentia backup"),
        "{}",
        said(&out)
    );
    assert!(!target.exists(), "nothing was made");
    let missing = server(&url, &["restore", "/nonexistent/backup"]);
    assert!(
        !missing.status.success() && said(&missing).contains("does not exist"),
        "{}",
        said(&missing)
    );
    // A SQLite file of someone else's: sound, but not ours.
    let foreign = dir.path().join("foreign.db");
    {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = format!("sqlite://{}?mode=rwc", foreign.display())
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .expect("url")
            .connect()
            .await
            .expect("create");
        sqlx::query("CREATE TABLE notes (t TEXT)")
            .execute(&mut conn)
            .await
            .expect("table");
        conn.close().await.expect("close");
    }
    let out = server(&url, &["restore", &foreign.to_string_lossy()]);
    assert!(
        !out.status.success() && said(&out).contains("no Licentia tables"),
        "{}",
        said(&out)
    );
    // A database that is not there is not backed up as an empty one.
    let nothing = format!("sqlite://{}/none/licentia.db", dir.path().display());
    let out = server(
        &nothing,
        &["backup", &dir.path().join("b.db").to_string_lossy()],
    );
    assert!(
        !out.status.success() && said(&out).contains("does not exist"),
        "{}",
        said(&out)
    );
    assert!(!dir.path().join("b.db").exists() && !dir.path().join("none").exists());
    for args in [&["backup", "x.backup"][..], &["restore", "x.backup"][..]] {
        let out = server("postgres://nobody@127.0.0.1:1/none", args);
        assert!(
            !out.status.success() && said(&out).contains("pg_dump"),
            "{}",
            said(&out)
        );
    }
    assert!(!Path::new("x.backup").exists());
}
