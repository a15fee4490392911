//! The database going away for a moment: SQLite busy past its busy timeout, and a PostgreSQL
//! server restarted under load. Requests meanwhile get 503 problem+json with `Retry-After`
//! (never a 500, never a hang), `/healthz` says so, and service resumes by itself.

use crate::helpers::*;
use crate::manage::token;
use licensing::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A PostgreSQL server of this test's own, which it may stop and start. It listens on a Unix
/// socket in its own directory only, so no other test can take its place while it is down.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// `None` (the test skipped), unless the run requires PostgreSQL: then a failure saying why.
fn unavailable(why: &str) -> Option<PrivatePostgres> {
    assert!(
        std::env::var("LICENTIA_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "LICENTIA_REQUIRE_POSTGRES=1 but {why}"
    );
    eprintln!("skipped: {why}");
    None
}

impl PrivatePostgres {
    /// Its binaries: `LICENTIA_PG_BIN` (the test command sets it), else the newest Debian
    /// installs. `None` when this machine has no PostgreSQL.
    fn start() -> Option<Self> {
        let bin = match std::env::var_os("LICENTIA_PG_BIN") {
            Some(dir) => Some(PathBuf::from(dir)),
            None => std::fs::read_dir("/usr/lib/postgresql")
                .ok()
                .and_then(|dirs| {
                    dirs.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                        .filter(|b| b.join("initdb").exists())
                        .max()
                }),
        };
        let Some(bin) = bin.filter(|b| b.join("initdb").exists()) else {
            return unavailable("no PostgreSQL binaries (set LICENTIA_PG_BIN)");
        };
        let root = Command::new("id").arg("-u").output().ok()?.stdout == b"0\n";
        if root
            && !Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success())
        {
            return unavailable("running as root, and there is no postgres user to run PostgreSQL");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = 5432;
        let pg = PrivatePostgres {
            bin,
            dir,
            port,
            as_postgres: root,
        };
        if root {
            let chowned = Command::new("chown")
                .args(["postgres"])
                .arg(pg.dir.path())
                .status();
            assert!(chowned.is_ok_and(|s| s.success()), "chown to postgres");
        }
        let data = pg.dir.path().join("data");
        let init = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .output()
            .expect("initdb");
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        pg.up();
        Some(pg)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .output()
            .expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it and waits until it accepts connections.
    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses='' -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.pg_ctl(&[
            "-w",
            "-t",
            "60",
            "-l",
            &log.to_string_lossy(),
            "-o",
            &options,
            "start",
        ]);
    }

    /// Stops it (connections cut at once, as a crash or a failover would).
    fn down(&self) {
        self.pg_ctl(&["-w", "-m", "immediate", "stop"]);
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost/postgres?host={}&port={}",
            self.dir.path().display(),
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// One request's outcome under load.
#[derive(Debug)]
struct Outcome {
    at: Instant,
    took: Duration,
    status: StatusCode,
    retry_after: bool,
    problem: Option<String>,
}

/// Checks out a seat and releases it, over and over, until `stop`; every answer noted.
async fn load(
    base: String,
    pool_key: String,
    worker: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Outcome> {
    let http = reqwest::Client::new();
    let mut outcomes = Vec::new();
    while !*stop.borrow() {
        let started = Instant::now();
        let body = json!({"pool_key": pool_key, "feature": "F", "user": format!("u{worker}"), "host": format!("h{worker}"), "process": "cad"});
        let res = http
            .post(format!("{base}/api/v1/seats"))
            .json(&body)
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        let Ok(res) = res else {
            panic!("no answer at all: {res:?}");
        };
        let status = res.status();
        let retry_after = res.headers().contains_key("retry-after");
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        outcomes.push(Outcome {
            at: started,
            took: started.elapsed(),
            status,
            retry_after,
            problem: answer["type"].as_str().map(str::to_owned),
        });
        if status == StatusCode::CREATED {
            let release = json!({"lease_token": answer["lease_token"]});
            let path = format!("{base}/api/v1/seats/{}/release", answer["seat_id"]);
            // A release lost to the outage leaves a seat to its lease; the next checkout of the
            // same user and host is refused or resumes it: both are fine here.
            let _ = http.post(path).json(&release).send().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_answers_503_then_serves_again_by_itself() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    within_limit(async {
        // (The load is far above what one pool takes a minute in production.)
        let settings = [("LICENTIA_CHECKOUT_MAX_PER_MINUTE_POOL", "1000000")];
        let app = TestApp::spawn_at(&pg.url(), None, &settings).await;
        let (admin, pool) = acme_pool(&app, 300).await;
        app.services
            .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 100))
            .await
            .expect("key");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let workers: Vec<_> = (0..6)
            .map(|w| {
                tokio::spawn(load(
                    app.base_url.clone(),
                    pool.access_key.clone(),
                    w,
                    stop_rx.clone(),
                ))
            })
            .collect();
        let http = reqwest::Client::new();
        let health = || async {
            let res = http
                .get(format!("{}/healthz", app.base_url))
                .send()
                .await
                .expect("healthz");
            (
                res.status(),
                res.headers().contains_key("retry-after"),
                res.json::<Value>().await.unwrap_or_default(),
            )
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(health().await.0, StatusCode::OK);

        let down_at = Instant::now();
        tokio::task::block_in_place(|| pg.down());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (status, retry, body) = health().await;
        assert_eq!(
            (status, retry, body["database"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, true, Some("unreachable")),
            "{body}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        tokio::task::block_in_place(|| pg.up());
        let up_at = Instant::now();
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert_eq!(health().await.0, StatusCode::OK);
        stop_tx.send(true).expect("stop");
        let mut outcomes = Vec::new();
        for w in workers {
            outcomes.extend(w.await.expect("worker"));
        }

        let during: Vec<_> = outcomes
            .iter()
            .filter(|o| o.at >= down_at && o.at < up_at)
            .collect();
        assert!(
            during.len() >= 6,
            "the load went on during the outage: {}",
            during.len()
        );
        for o in &outcomes {
            assert!(
                o.status != StatusCode::INTERNAL_SERVER_ERROR,
                "a 500: {o:?}"
            );
            assert!(o.took < Duration::from_secs(15), "a request hung: {o:?}");
            if o.status.is_server_error() {
                assert_eq!(
                    (o.status, o.retry_after, o.problem.as_deref()),
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        true,
                        Some("/problems/unavailable")
                    ),
                    "{o:?}"
                );
            }
        }
        assert!(
            during
                .iter()
                .any(|o| o.status == StatusCode::SERVICE_UNAVAILABLE),
            "the outage was seen"
        );
        // Full service within five seconds of the database being back: every request begun
        // after that succeeded (a seat out, or one resumed or taken by another worker's turn).
        let after: Vec<_> = outcomes
            .iter()
            .filter(|o| o.at >= up_at + Duration::from_secs(5))
            .collect();
        assert!(!after.is_empty());
        for o in after {
            assert!(
                o.status.is_success() || o.status == StatusCode::CONFLICT,
                "{o:?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_past_its_timeout_answers_503_with_retry_after_and_changes_nothing() {
    within_limit(async {
        use sqlx::Connection;
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let admin = app.admin().await;
        let api = token(&app, &admin, "ops", "write").await;
        let (_, before) = api.get("/api/v1/clients").await;
        // Another process holds the write lock longer than the busy timeout (5 s).
        let mut holder = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .expect("connect");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .expect("lock");
        let started = Instant::now();
        let (status, body) = api
            .post("/api/v1/clients", json!({"name": "Blocked"}))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["type"], "/problems/unavailable");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("try again")),
            "{body}"
        );
        assert_eq!(body["retry_after"], 5);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no hang: {:?}",
            started.elapsed()
        );
        // The portal says the same in its own words.
        let reply = admin
            .rpc("create_client", &[("client[name]", "Blocked too")])
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert!(reply.headers.contains_key("retry-after"));
        sqlx::query("ROLLBACK")
            .execute(&mut holder)
            .await
            .expect("unlock");
        assert_eq!(
            api.get("/api/v1/clients").await.1,
            before,
            "nothing changed"
        );
        let (status, _) = api
            .post("/api/v1/clients", json!({"name": "Blocked"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "and then it works");
    })
    .await;
}
