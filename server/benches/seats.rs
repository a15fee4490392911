//! Floating-seat throughput: checkout + heartbeat + release round trips per second and the p99
//! latency of one round, side by side with a baseline measured in the same run — a bare axum
//! handler per step doing the same number of database commits on the same kind of database
//! (so the ratio shows what the licensing logic costs over the database and HTTP alone).
//!
//!     cargo bench -p server --bench seats [-- --secs 10 --clients 8 --postgres URL]
//!
//! Prints one table; no assertions (speed is measured, not tested).

#[path = "../tests/support/seeded.rs"]
mod seeded;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use licensing::Database;
use seeded::seeded_pool;
use serde_json::{json, Value};
use server::config::Config;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

struct Args {
    secs: u64,
    clients: usize,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        secs: 8,
        clients: 8,
        postgres: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--secs" => a.secs = next.parse().unwrap_or(a.secs),
            "--clients" => a.clients = next.parse().unwrap_or(a.clients),
            "--postgres" => a.postgres = Some(next),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Runs `clients` loops of `round` for `secs`; returns (rounds per second, p50, p99).
async fn measure<F, Fut>(secs: u64, clients: usize, round: F) -> (f64, Duration, Duration)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let round = round.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                round(c, n).await;
                lat.push(t.elapsed());
                n += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    (all.len() as f64 / elapsed, pick(0.50), pick(0.99))
}

async fn post_json(http: &reqwest::Client, url: String, body: Value) -> Value {
    let res = http.post(url).json(&body).send().await.expect("request");
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

/// The Licentia server with a pool of plenty of seats; returns its URL and the pool key.
async fn licentia(database_url: &str) -> (String, String) {
    let env = BTreeMap::from([
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        (
            "LICENTIA_MASTER_KEY".to_owned(),
            licensing::keys::MasterKey::random().to_base64(),
        ),
        ("LICENTIA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("LICENTIA_DB_MAX_CONNECTIONS".to_owned(), "16".to_owned()),
        // Every checkout of the bench comes from this machine, far past the rate limits.
        (
            "LICENTIA_CHECKOUT_MAX_PER_MINUTE_POOL".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "LICENTIA_CHECKOUT_MAX_PER_MINUTE_ADDRESS".to_owned(),
            "100000000".to_owned(),
        ),
    ]);
    let config = Config::from_sources(env, None).expect("config");
    let (services, _admin, pool) = seeded_pool(
        &config,
        "bench@bench.test",
        "bench password 123",
        300,
        &[1_000_000],
    )
    .await;
    let server = server::Server::bind(&config, services).await.expect("bind");
    let url = format!("http://{}", server.addr);
    tokio::spawn(server.run(std::future::pending()));
    (url, pool.access_key)
}

/// The baseline: three bare handlers doing the commits a seat round does (checkout: the seat's
/// transaction and the peak-use upsert; heartbeat: one update; release: one transaction).
async fn baseline(database_url: &str) -> String {
    let db = Database::connect(database_url, 16).await.expect("connect");
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .expect("table");
    async fn commit(db: &Database, id: i64) {
        sqlx::query(
            "INSERT INTO bench_rows (id, n) VALUES ($1, 0) \
             ON CONFLICT (id) DO UPDATE SET n = bench_rows.n + 1",
        )
        .bind(id)
        .execute(db.pool())
        .await
        .expect("commit");
    }
    async fn checkout(State(db): State<Database>, Json(b): Json<Value>) -> Json<Value> {
        let id = b["id"].as_i64().unwrap_or(0);
        commit(&db, id).await;
        commit(&db, id).await;
        Json(json!({"seat_id": id, "lease_token": "t"}))
    }
    async fn one(State(db): State<Database>, Json(b): Json<Value>) -> Json<Value> {
        commit(&db, b["id"].as_i64().unwrap_or(0)).await;
        Json(json!({}))
    }
    let app = Router::new()
        .route("/checkout", post(checkout))
        .route("/heartbeat", post(one))
        .route("/release", post(one))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn row(name: &str, (rate, p50, p99): (f64, Duration, Duration)) {
    println!(
        "{name:<34} {rate:>10.0} {:>10.2} {:>10.2}",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backends = vec![(
        "SQLite",
        format!("sqlite://{}/seats.db", dir.path().display()),
        format!("sqlite://{}/baseline.db", dir.path().display()),
    )];
    if let Some(pg) = &a.postgres {
        backends.push(("PostgreSQL", pg.clone(), pg.clone()));
    }
    println!(
        "{} clients, {} s each; one round = checkout + heartbeat + release (3 HTTP requests)",
        a.clients, a.secs
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "", "rounds/s", "p50 ms", "p99 ms"
    );
    for (name, db_url, baseline_url) in backends {
        let http = reqwest::Client::new();
        let base = baseline(&baseline_url).await;
        let h = http.clone();
        let bare = measure(a.secs, a.clients, move |c, n| {
            let (h, base) = (h.clone(), base.clone());
            async move {
                let id = json!({"id": (c as i64) * 1_000_000 + n as i64});
                post_json(&h, format!("{base}/checkout"), id.clone()).await;
                post_json(&h, format!("{base}/heartbeat"), id.clone()).await;
                post_json(&h, format!("{base}/release"), id).await;
            }
        })
        .await;
        let (url, pool_key) = licentia(&db_url).await;
        let h = http.clone();
        let seats = measure(a.secs, a.clients, move |c, _| {
            let (h, url, pool_key) = (h.clone(), url.clone(), pool_key.clone());
            async move {
                let g = post_json(&h, format!("{url}/api/v1/seats"), json!({"pool_key": pool_key, "feature": "F", "user": format!("u{c}"), "host": format!("h{c}"), "process": "bench"})).await;
                let lease = json!({"lease_token": g["lease_token"]});
                post_json(&h, format!("{url}/api/v1/seats/{}/heartbeat", g["seat_id"]), lease.clone()).await;
                post_json(&h, format!("{url}/api/v1/seats/{}/release", g["seat_id"]), lease).await;
            }
        })
        .await;
        row(&format!("{name}: bare axum, same commits"), bare);
        row(&format!("{name}: Licentia seat protocol"), seats);
        println!(
            "{:<34} {:>10.2}",
            format!("{name}: Licentia / baseline"),
            seats.0 / bare.0
        );
    }
}
