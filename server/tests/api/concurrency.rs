//! In use never exceeds count: many clients race for a small pool through two real server
//! processes sharing one database (SQLite file; PostgreSQL), and after every step the database
//! must hold `in_use <= quantity` with exactly `in_use` live seats, while the clients themselves
//! never hold more seats at once than exist.

use crate::helpers::*;
use crate::seeded::seeded_pool;
use licensing::Backend;
use serde_json::{json, Value};
use server::config::Config;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const SEATS: i64 = 3;
const RACERS: usize = 16;
const ROUNDS: usize = 12;

struct ServerProcess {
    url: String,
    _child: tokio::process::Child,
}

async fn spawn_server(database_url: &str, master_key: &str) -> ServerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env_remove("LICENTIA_CONFIG")
        .env("DATABASE_URL", database_url)
        .env("LICENTIA_MASTER_KEY", master_key)
        .env("LICENTIA_LISTEN", format!("127.0.0.1:{port}"))
        .env("LICENTIA_DB_MAX_CONNECTIONS", "8")
        .env("RUST_LOG", "warn")
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn server");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{url}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return ServerProcess { url, _child: child };
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server process on {url} did not start");
}

/// Checks the invariant in the database itself, in one statement (one snapshot).
async fn check_invariant(db: &sqlx::AnyPool) {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT k.in_use, k.quantity, (SELECT COUNT(*) FROM seats s \
         WHERE s.key_id = k.id AND s.released_at IS NULL) FROM pool_keys k",
    )
    .fetch_all(db)
    .await
    .expect("invariant query");
    for (in_use, quantity, live) in rows {
        assert!(
            in_use <= quantity,
            "in use {in_use} exceeds count {quantity}"
        );
        assert_eq!(in_use, live, "in use {in_use} but {live} live seats");
    }
}

async fn race(backend: Backend) {
    let (database_url, _dir) = fresh_database(backend).await;
    let master_key = licensing::keys::MasterKey::random().to_base64();
    let env = BTreeMap::from([
        ("DATABASE_URL".to_owned(), database_url.clone()),
        ("LICENTIA_MASTER_KEY".to_owned(), master_key.clone()),
        ("LICENTIA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
    ]);
    let config = Config::from_sources(env, None).expect("config");
    // Two keys, so the selection and the fallback to the next key are raced too.
    let (services, admin, pool) =
        seeded_pool(&config, ADMIN_EMAIL, ADMIN_PASSWORD, 60, &[2, SEATS - 2]).await;
    let lend = protocol::borrow::MobileSettings {
        allowed: true,
        max_borrow_days: Some(7),
    };
    services
        .set_mobile(&admin, pool.id, &lend)
        .await
        .expect("lend");
    let servers = Arc::new([
        spawn_server(&database_url, &master_key).await,
        spawn_server(&database_url, &master_key).await,
    ]);
    let held = Arc::new(AtomicI64::new(0));
    let granted = Arc::new(AtomicI64::new(0));
    let refused = Arc::new(AtomicI64::new(0));
    let db = services.db().pool().clone();
    let http = reqwest::Client::new();
    // One seat is out on a mobile licence for the whole race: the racers share the others, and
    // borrow and return some of theirs as they go.
    let fp = "ab".repeat(32);
    let out: Value = http
        .post(format!("{}/api/v1/seats", servers[0].url))
        .json(&json!({"pool_key": pool.access_key, "feature": "F", "user": "away", "host": "laptop", "process": "race"}))
        .send()
        .await
        .expect("checkout")
        .json()
        .await
        .expect("json");
    let lent = http
        .post(format!(
            "{}/api/v1/seats/{}/borrow",
            servers[1].url, out["seat_id"]
        ))
        .json(&json!({"lease_token": out["lease_token"], "fingerprint": fp, "days": 7, "return_hash": protocol::borrow::secret_hash("s")}))
        .send()
        .await
        .expect("borrow");
    assert_eq!(lent.status().as_u16(), 200);
    let mut racers = Vec::new();
    for r in 0..RACERS {
        let (servers, held, granted, refused, db, http) = (
            servers.clone(),
            held.clone(),
            granted.clone(),
            refused.clone(),
            db.clone(),
            http.clone(),
        );
        let pool_key = pool.access_key.clone();
        racers.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let server = &servers[(r + round) % 2].url;
                let res = http
                    .post(format!("{server}/api/v1/seats"))
                    .json(&json!({"pool_key": pool_key, "feature": "F", "user": format!("user{r}"), "host": format!("host{r}"), "process": "race"}))
                    .send()
                    .await
                    .expect("checkout");
                let status = res.status();
                let body: Value = res.json().await.expect("json");
                match status.as_u16() {
                    201 => {
                        let now_held = held.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now_held < SEATS, "{now_held} seats held at once beside a borrowed one, {SEATS} exist");
                        granted.fetch_add(1, Ordering::SeqCst);
                        check_invariant(&db).await;
                        let other = &servers[(r + round + 1) % 2].url;
                        let lease = json!({"lease_token": body["lease_token"]});
                        let borrowed = round % 3 == 0;
                        if borrowed {
                            let borrow = json!({"lease_token": body["lease_token"], "fingerprint": "cd".repeat(32), "days": 1, "return_hash": protocol::borrow::secret_hash("s")});
                            let b = http
                                .post(format!("{other}/api/v1/seats/{}/borrow", body["seat_id"]))
                                .json(&borrow)
                                .send()
                                .await
                                .expect("borrow");
                            assert_eq!(b.status().as_u16(), 200);
                            check_invariant(&db).await;
                        }
                        let beat = http
                            .post(format!("{other}/api/v1/seats/{}/heartbeat", body["seat_id"]))
                            .json(&lease)
                            .send()
                            .await
                            .expect("heartbeat");
                        assert_eq!(beat.status().as_u16(), 200);
                        held.fetch_sub(1, Ordering::SeqCst);
                        // A borrowed seat comes back early with its return secret.
                        let (how, give_back) = if borrowed {
                            ("return", json!({"lease_token": body["lease_token"], "return_secret": "s"}))
                        } else {
                            ("release", lease.clone())
                        };
                        let rel = http
                            .post(format!("{server}/api/v1/seats/{}/{how}", body["seat_id"]))
                            .json(&give_back)
                            .send()
                            .await
                            .expect("release");
                        assert_eq!(rel.status().as_u16(), 204);
                        check_invariant(&db).await;
                    }
                    403 => {
                        assert!(body["detail"].as_str().unwrap_or("").contains("of feature F"), "{body}");
                        refused.fetch_add(1, Ordering::SeqCst);
                        check_invariant(&db).await;
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
            }
        }));
    }
    for r in racers {
        r.await.expect("a racer failed");
    }
    check_invariant(&db).await;
    let total: i64 = sqlx::query_scalar("SELECT CAST(SUM(in_use) AS BIGINT) FROM pool_keys")
        .fetch_one(&db)
        .await
        .expect("sum");
    assert_eq!(total, 1, "every seat came back but the borrowed one");
    let (g, r) = (
        granted.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    assert_eq!(g + r, (RACERS * ROUNDS) as i64);
    assert!(
        g > 0 && r > 0,
        "the race was real: {g} granted, {r} refused"
    );
    eprintln!(
        "{backend:?}: {g} granted, {r} refused, never more than {SEATS} held with the borrowed one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_use_never_exceeds_count_on_sqlite_with_two_server_processes() {
    tokio::time::timeout(std::time::Duration::from_secs(240), race(Backend::Sqlite))
        .await
        .expect("the race finishes within 240 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_use_never_exceeds_count_on_postgres_with_two_server_processes() {
    if postgres_available() {
        tokio::time::timeout(std::time::Duration::from_secs(240), race(Backend::Postgres))
            .await
            .expect("the race finishes within 240 s");
    }
}
