//! The three hot paths — validate an activation, activate a new machine, and a floating-seat
//! round (checkout + heartbeat + release) — each side by side with a baseline measured in the
//! same run: a bare axum server doing the least database work and the same Ed25519 work each
//! operation needs, on the same kind of database, so the ratio shows what the licensing logic
//! costs over the database, the crypto and HTTP alone.
//!
//!     cargo bench -p server --bench hot_paths [-- --secs 5 --conns 8,32 --runs 1
//!         --only validate,activate,seats --postgres URL --wrap "heaptrack"]
//!
//! Both servers run as processes of their own (the release `server` binary on a seeded
//! database; the baseline is this benchmark started again with `--serve-baseline`), driven by
//! the same closed-loop load generator over loopback HTTP/1.1, cells interleaved. Reported per
//! cell: operations per second, p50 and p99 latency, and each server process's CPU time per
//! operation (from /proc/<pid>/stat; on SQLite the database works inside the process, on
//! PostgreSQL beside it), and at the end each process's resident memory. `--postgres` takes an
//! empty database. No assertions (speed is measured, not tested); the README keeps the latest
//! figures. Licentia's CPU includes its background jobs (few: nothing expires during a run).
//! `--wrap CMD` starts Licentia's server under CMD (a profiler such as `heaptrack`, whose own
//! report is then the one to read: CPU and memory here are the wrapper's).
//!
//! The baseline's work per operation, read off what Licentia's handlers do:
//! - validate: verify the code's signature, one SELECT, one UPDATE (its own commit), sign a
//!   fresh code;
//! - activate: look the licence up, then one transaction inserting the activation, updating
//!   the licence, and recording the code signed for it;
//! - seat round: two commits for the checkout, one each for heartbeat and release.

#[path = "support/process.rs"]
mod process;
#[path = "../tests/support/seeded.rs"]
mod seeded;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use licensing::Database;
use seeded::seeded_pool;
use serde_json::{json, Value};
use server::config::Config;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Validate,
    Activate,
    Seats,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Validate => "validate",
            Op::Activate => "activate",
            Op::Seats => "seat round",
        }
    }
}

struct Args {
    secs: u64,
    conns: Vec<usize>,
    runs: usize,
    ops: Vec<Op>,
    postgres: Option<String>,
    serve_baseline: Option<String>,
    /// With `--serve-baseline`: how many licences the baseline creates.
    licences: usize,
    wrap: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        secs: 5,
        conns: vec![8, 32],
        runs: 1,
        ops: vec![Op::Validate, Op::Activate, Op::Seats],
        postgres: None,
        serve_baseline: None,
        licences: 0,
        wrap: Vec::new(),
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--secs" => a.secs = next.parse().unwrap_or(a.secs),
            "--runs" => a.runs = next.parse().unwrap_or(a.runs).max(1),
            "--conns" => {
                a.conns = next.split(',').filter_map(|c| c.parse().ok()).collect();
            }
            "--only" => {
                a.ops = next
                    .split(',')
                    .filter_map(|o| match o.trim() {
                        "validate" => Some(Op::Validate),
                        "activate" => Some(Op::Activate),
                        "seats" => Some(Op::Seats),
                        _ => None,
                    })
                    .collect();
            }
            "--postgres" => a.postgres = Some(next),
            "--serve-baseline" => a.serve_baseline = Some(next),
            "--licences" => a.licences = next.parse().unwrap_or(0),
            "--wrap" => a.wrap = next.split_whitespace().map(str::to_owned).collect(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// The most connections any cell uses: one machine activated per connection for validation.
fn most_conns(a: &Args) -> usize {
    a.conns.iter().copied().max().unwrap_or(8)
}

/// Licences enough for every activation cell (a generous 5,000 activations a second).
fn licences_needed(a: &Args) -> usize {
    most_conns(a) + 5_000 * a.secs as usize * a.conns.len() * a.runs
}

fn fingerprint(n: usize) -> String {
    format!("{n:064x}")
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A server process: its URL and pid, killed when dropped.
struct Process {
    url: String,
    child: tokio::process::Child,
}

impl Process {
    async fn start(mut cmd: tokio::process::Command, prefix: &str) -> Self {
        // Slow-statement warnings under load would drown the table.
        cmd.stderr(std::process::Stdio::null());
        let (url, child) = process::start(cmd, prefix).await;
        Self { url, child }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("a running server")
    }

    /// CPU seconds so far (user + system).
    fn cpu(&self, ticks_per_sec: f64) -> f64 {
        process::usage(self.pid(), ticks_per_sec).0
    }

    /// Resident memory in MiB, whole and split into anonymous (heap, stacks) and file-backed
    /// (the binary's own pages, shared libraries).
    fn memory(&self) -> String {
        let mib = |name| process::status_kib(self.pid(), name) / 1024;
        format!(
            "{} MiB ({} anonymous, {} file-backed)",
            mib("VmRSS:"),
            mib("RssAnon:"),
            mib("RssFile:")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Licentia

struct Licentia {
    process: Process,
    pool_key: String,
    /// Licence keys in order: the first `most_conns` are activated for validation.
    keys: Vec<String>,
}

async fn licentia(database_url: &str, a: &Args) -> Licentia {
    let mut env = process::server_env(database_url);
    env.insert("LICENTIA_DB_MAX_CONNECTIONS".to_owned(), "16".to_owned());
    let config = Config::from_sources(env.clone(), None).expect("config");
    let (services, admin, pool) = seeded_pool(
        &config,
        "bench@bench.test",
        "bench password 123",
        300,
        &[1_000_000],
    )
    .await;
    let product = services
        .save_product(
            &admin,
            None,
            protocol::catalog::ProductInput {
                code: "CALC".into(),
                name: "Calculator".into(),
                editor: "Vendor".into(),
                release_number: 2026,
                release_date: None,
                features: vec![protocol::catalog::Feature {
                    code: "print".into(),
                    name: "Printing".into(),
                }],
                default_features: vec!["print".into()],
                default_counters: BTreeMap::new(),
                settings: protocol::catalog::LicensingSettings::default(),
            },
        )
        .await
        .expect("product");
    let client_id = pool.client_id.expect("the seeded pool belongs to a client");
    let mut keys = Vec::new();
    let mut left = licences_needed(a);
    while left > 0 {
        let quantity = left.min(10_000);
        let order = services
            .create_order(
                &admin,
                licensing::catalog::OrderInput {
                    client_id,
                    product_id: product.id,
                    quantity: quantity as i64,
                    reference: "bench".into(),
                    features: None,
                    counters: None,
                    notes: String::new(),
                },
            )
            .await
            .expect("order");
        let licences = services
            .order_licences(&admin, order.id, &licensing::page::Page::ALL)
            .await
            .expect("licences")
            .items;
        keys.extend(licences.into_iter().map(|l| l.key));
        left -= quantity;
    }
    drop(services);
    let server = env!("CARGO_BIN_EXE_server");
    let mut cmd = match a.wrap.split_first() {
        Some((wrapper, args)) => {
            let mut cmd = tokio::process::Command::new(wrapper);
            cmd.args(args).arg(server);
            cmd
        }
        None => tokio::process::Command::new(server),
    };
    cmd.env_remove("LICENTIA_CONFIG")
        .envs(&env)
        .env("RUST_LOG", "warn")
        .arg("serve");
    Licentia {
        process: Process::start(cmd, "Licentia is running at ").await,
        pool_key: pool.access_key,
        keys,
    }
}

// ---------------------------------------------------------------------------------------------
// The baseline: bare axum, the least database work and the same signing work

#[derive(Clone)]
struct Bare {
    db: Database,
    key: Arc<SigningKey>,
    verifying: VerifyingKey,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Bare {
    fn sign(&self, claims: &Value) -> String {
        let payload = serde_json::to_vec(claims).expect("claims");
        let signature = self.key.sign(&payload);
        format!(
            "{}.{}",
            B64.encode(&payload),
            B64.encode(signature.to_bytes())
        )
    }

    fn verify(&self, code: &str) -> Option<Value> {
        let (payload, signature) = code.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let signature: [u8; 64] = B64.decode(signature).ok()?.try_into().ok()?;
        self.verifying
            .verify(&payload, &ed25519_dalek::Signature::from_bytes(&signature))
            .ok()?;
        serde_json::from_slice(&payload).ok()
    }
}

async fn bare_activate(State(b): State<Bare>, Json(req): Json<Value>) -> Json<Value> {
    let key = req["licence_key"].as_str().unwrap_or_default();
    let fp = req["fingerprint"].as_str().unwrap_or_default();
    let licence: (i64, i64) =
        sqlx::query_as("SELECT id, activations FROM bench_licences WHERE licence_key = $1")
            .bind(key)
            .fetch_one(b.db.pool())
            .await
            .expect("licence");
    let mut tx = b.db.pool().begin().await.expect("begin");
    let act: i64 = sqlx::query_scalar(
        "INSERT INTO bench_activations (licence_id, fingerprint, hostname, activated_at, \
         validations) VALUES ($1, $2, $3, $4, 0) RETURNING id",
    )
    .bind(licence.0)
    .bind(fp)
    .bind(req["hostname"].as_str().unwrap_or_default())
    .bind(0_i64)
    .fetch_one(&mut *tx)
    .await
    .expect("activation");
    sqlx::query("UPDATE bench_licences SET activations = activations + 1 WHERE id = $1")
        .bind(licence.0)
        .execute(&mut *tx)
        .await
        .expect("licence");
    let code = b.sign(&json!({"lic": licence.0, "act": act, "fp": fp, "features": ["print"]}));
    sqlx::query("UPDATE bench_activations SET code = $1 WHERE id = $2")
        .bind(&code)
        .bind(act)
        .execute(&mut *tx)
        .await
        .expect("record");
    tx.commit().await.expect("commit");
    Json(json!({"activation_code": code}))
}

async fn bare_validate(State(b): State<Bare>, Json(req): Json<Value>) -> Json<Value> {
    let claims = b
        .verify(req["activation_code"].as_str().unwrap_or_default())
        .expect("a code signed here");
    let act = claims["act"].as_i64().unwrap_or_default();
    let row: (i64, String) = sqlx::query_as(
        "SELECT a.licence_id, l.licence_key FROM bench_activations a \
         JOIN bench_licences l ON l.id = a.licence_id WHERE a.id = $1 AND a.fingerprint = $2",
    )
    .bind(act)
    .bind(req["fingerprint"].as_str().unwrap_or_default())
    .fetch_one(b.db.pool())
    .await
    .expect("activation");
    sqlx::query(
        "UPDATE bench_activations SET last_validated_at = $1, validations = validations + 1 \
         WHERE id = $2",
    )
    .bind(1_i64)
    .bind(act)
    .execute(b.db.pool())
    .await
    .expect("update");
    let code = b.sign(&json!({"lic": row.0, "act": act, "fp": claims["fp"], "key": row.1}));
    Json(json!({"activation_code": code}))
}

async fn bare_commit(db: &Database, id: i64) {
    sqlx::query(
        "INSERT INTO bench_rows (id, n) VALUES ($1, 0) \
         ON CONFLICT (id) DO UPDATE SET n = bench_rows.n + 1",
    )
    .bind(id)
    .execute(db.pool())
    .await
    .expect("commit");
}

async fn bare_checkout(State(b): State<Bare>, Json(req): Json<Value>) -> Json<Value> {
    let id = req["id"].as_i64().unwrap_or(0);
    bare_commit(&b.db, id).await;
    bare_commit(&b.db, id).await;
    Json(json!({"seat_id": id, "lease_token": "t"}))
}

async fn bare_one(State(b): State<Bare>, Json(req): Json<Value>) -> Json<Value> {
    bare_commit(&b.db, req["id"].as_i64().unwrap_or(0)).await;
    Json(json!({}))
}

/// Runs the baseline server (this benchmark started with `--serve-baseline URL`): creates its
/// tables with `licences` licences `K0`, `K1`, … and prints its URL.
async fn serve_baseline(database_url: &str, licences: usize) {
    let db = Database::connect(database_url, 16).await.expect("connect");
    let id = if database_url.starts_with("postgres") {
        "BIGSERIAL PRIMARY KEY"
    } else {
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    };
    for statement in [
        "DROP TABLE IF EXISTS bench_activations".to_owned(),
        "DROP TABLE IF EXISTS bench_licences".to_owned(),
        "DROP TABLE IF EXISTS bench_rows".to_owned(),
        format!(
            "CREATE TABLE bench_licences (id {id}, licence_key TEXT NOT NULL UNIQUE, \
             activations BIGINT NOT NULL DEFAULT 0)"
        ),
        format!(
            "CREATE TABLE bench_activations (id {id}, licence_id BIGINT NOT NULL \
             REFERENCES bench_licences (id), fingerprint TEXT NOT NULL, hostname TEXT NOT NULL, \
             activated_at BIGINT NOT NULL, last_validated_at BIGINT, validations BIGINT NOT NULL, \
             code TEXT)"
        ),
        "CREATE TABLE bench_rows (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)".to_owned(),
    ] {
        sqlx::query(&statement)
            .execute(db.pool())
            .await
            .expect("schema");
    }
    let mut tx = db.pool().begin().await.expect("begin");
    for n in 0..licences {
        sqlx::query("INSERT INTO bench_licences (licence_key) VALUES ($1)")
            .bind(format!("K{n}"))
            .execute(&mut *tx)
            .await
            .expect("licence");
    }
    tx.commit().await.expect("commit");
    let key = SigningKey::from_bytes(&[7; 32]);
    let bare = Bare {
        db,
        verifying: key.verifying_key(),
        key: Arc::new(key),
    };
    let app = Router::new()
        .route("/activate", post(bare_activate))
        .route("/validate", post(bare_validate))
        .route("/checkout", post(bare_checkout))
        .route("/heartbeat", post(bare_one))
        .route("/release", post(bare_one))
        .with_state(bare);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!(
        "baseline at http://{}",
        listener.local_addr().expect("addr")
    );
    axum::serve(listener, app).await.expect("serve");
}

async fn baseline(database_url: &str, a: &Args) -> Process {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().expect("this benchmark"));
    cmd.arg("--serve-baseline")
        .arg(database_url)
        .arg("--licences")
        .arg(licences_needed(a).to_string());
    Process::start(cmd, "baseline at ").await
}

// ---------------------------------------------------------------------------------------------
// Load

/// Runs `conns` loops of `op` for `secs`; returns (operations, operations per second, p50,
/// p99).
async fn measure<F, Fut>(secs: u64, conns: usize, op: F) -> (usize, f64, Duration, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                op(c).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a load task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(!all.is_empty(), "no operation finished within {secs} s");
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    (
        all.len(),
        all.len() as f64 / elapsed,
        pick(0.50),
        pick(0.99),
    )
}

async fn post_json(http: &reqwest::Client, url: String, body: Value) -> Value {
    let res = http.post(url).json(&body).send().await.expect("request");
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Where `op` is sent on the baseline (`bare`) or on Licentia (the seat round: its checkout).
fn endpoint(url: &str, bare: bool, op: Op) -> String {
    let path = match (op, bare) {
        (Op::Validate, true) => "/validate",
        (Op::Validate, false) => "/api/v1/activations/validate",
        (Op::Activate, true) => "/activate",
        (Op::Activate, false) => "/api/v1/activations",
        (Op::Seats, true) => "/checkout",
        (Op::Seats, false) => "/api/v1/seats",
    };
    format!("{url}{path}")
}

/// What one cell measured: rate, p50, p99 and the server's CPU seconds per operation.
struct Cell {
    rate: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_op: f64,
}

/// Where each connection's machine stands in validation: its latest code.
type Codes = Arc<Vec<std::sync::Mutex<String>>>;

/// One operation against one server, `conns` connections for `secs`.
#[allow(clippy::too_many_arguments)]
async fn cell(
    op: Op,
    bare: bool,
    process: &Process,
    http: &reqwest::Client,
    conns: usize,
    secs: u64,
    codes: Codes,
    next_key: Arc<AtomicUsize>,
    keys: Arc<Vec<String>>,
    pool_key: Arc<String>,
    ticks: f64,
) -> Cell {
    let url = Arc::new(process.url.clone());
    let cpu_before = process.cpu(ticks);
    let (ops, rate, p50, p99) = match op {
        Op::Validate => {
            let (h, url) = (http.clone(), url.clone());
            measure(secs, conns, move |c| {
                let (h, url, codes) = (h.clone(), url.clone(), codes.clone());
                async move {
                    let code = codes[c].lock().expect("code").clone();
                    let path = endpoint(&url, bare, Op::Validate);
                    let answer = post_json(
                        &h,
                        path,
                        json!({"activation_code": code, "fingerprint": fingerprint(c)}),
                    )
                    .await;
                    if let Some(fresh) = answer["activation_code"].as_str() {
                        *codes[c].lock().expect("code") = fresh.to_owned();
                    }
                }
            })
            .await
        }
        Op::Activate => {
            let (h, url) = (http.clone(), url.clone());
            measure(secs, conns, move |_| {
                let (h, url, next_key, keys) =
                    (h.clone(), url.clone(), next_key.clone(), keys.clone());
                async move {
                    let n = next_key.fetch_add(1, Ordering::Relaxed);
                    let key = keys.get(n).expect(
                        "more activations than licences: raise the rate in licences_needed",
                    );
                    let body = json!({"licence_key": key, "fingerprint": fingerprint(1_000_000 + n),
                        "hostname": format!("pc-{n}")});
                    let path = endpoint(&url, bare, Op::Activate);
                    post_json(&h, path, body).await;
                }
            })
            .await
        }
        Op::Seats => {
            let (h, url) = (http.clone(), url.clone());
            let round = Arc::new(AtomicUsize::new(0));
            measure(secs, conns, move |c| {
                let (h, url, pool_key, round) =
                    (h.clone(), url.clone(), pool_key.clone(), round.clone());
                async move {
                    if bare {
                        let n = round.fetch_add(1, Ordering::Relaxed);
                        let id = json!({"id": n});
                        post_json(&h, endpoint(&url, true, Op::Seats), id.clone()).await;
                        post_json(&h, format!("{url}/heartbeat"), id.clone()).await;
                        post_json(&h, format!("{url}/release"), id).await;
                    } else {
                        let g = post_json(
                            &h,
                            endpoint(&url, false, Op::Seats),
                            json!({"pool_key": *pool_key, "feature": "F", "user": format!("u{c}"),
                                "host": format!("h{c}"), "process": "bench"}),
                        )
                        .await;
                        let lease = json!({"lease_token": g["lease_token"]});
                        let seat = &g["seat_id"];
                        post_json(
                            &h,
                            format!("{url}/api/v1/seats/{seat}/heartbeat"),
                            lease.clone(),
                        )
                        .await;
                        post_json(&h, format!("{url}/api/v1/seats/{seat}/release"), lease).await;
                    }
                }
            })
            .await
        }
    };
    let cpu_after = process.cpu(ticks);
    Cell {
        rate,
        p50,
        p99,
        cpu_per_op: (cpu_after - cpu_before) / ops.max(1) as f64,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Activates one machine per connection on `process` and returns their codes.
async fn first_codes(
    http: &reqwest::Client,
    process: &Process,
    bare: bool,
    keys: &[String],
    n: usize,
) -> Codes {
    let mut codes = Vec::new();
    for (c, key) in keys.iter().take(n).enumerate() {
        let body =
            json!({"licence_key": key, "fingerprint": fingerprint(c), "hostname": format!("v{c}")});
        let path = endpoint(&process.url, bare, Op::Activate);
        let answer = post_json(http, path, body).await;
        let code = answer["activation_code"]
            .as_str()
            .expect("a code")
            .to_owned();
        codes.push(std::sync::Mutex::new(code));
    }
    Arc::new(codes)
}

#[tokio::main]
async fn main() {
    let a = args();
    if let Some(url) = &a.serve_baseline {
        serve_baseline(url, a.licences).await;
        return;
    }
    let ticks = process::clock_ticks();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backends = vec![(
        "SQLite",
        format!("sqlite://{}/licentia.db", dir.path().display()),
        format!("sqlite://{}/baseline.db", dir.path().display()),
    )];
    if let Some(pg) = &a.postgres {
        backends.push(("PostgreSQL", pg.clone(), pg.clone()));
    }
    println!(
        "{} s per cell, {} run(s), interleaved; CPU is each server process's own per operation",
        a.secs, a.runs
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("http");
    for (name, db_url, baseline_url) in backends {
        println!("\n{name}: seeding…");
        let licentia = licentia(&db_url, &a).await;
        let bare = baseline(&baseline_url, &a).await;
        let n = most_conns(&a);
        let bare_keys: Arc<Vec<String>> =
            Arc::new((0..licences_needed(&a)).map(|k| format!("K{k}")).collect());
        let keys = Arc::new(licentia.keys.clone());
        let codes = (
            first_codes(&http, &bare, true, &bare_keys, n).await,
            first_codes(&http, &licentia.process, false, &keys, n).await,
        );
        let next = (Arc::new(AtomicUsize::new(n)), Arc::new(AtomicUsize::new(n)));
        let pool_key = Arc::new(licentia.pool_key.clone());
        println!(
            "{:<12} {:>5} | {:>9} {:>7} {:>7} {:>7} | {:>9} {:>7} {:>7} {:>7} | {:>6}",
            "operation",
            "conns",
            "base/s",
            "p50 ms",
            "p99 ms",
            "cpu ms",
            "Licentia/s",
            "p50 ms",
            "p99 ms",
            "cpu ms",
            "ratio"
        );
        for &op in &a.ops {
            for &conns in &a.conns {
                let mut runs = Vec::new();
                for _ in 0..a.runs {
                    let b = cell(
                        op,
                        true,
                        &bare,
                        &http,
                        conns,
                        a.secs,
                        codes.0.clone(),
                        next.0.clone(),
                        bare_keys.clone(),
                        pool_key.clone(),
                        ticks,
                    )
                    .await;
                    let l = cell(
                        op,
                        false,
                        &licentia.process,
                        &http,
                        conns,
                        a.secs,
                        codes.1.clone(),
                        next.1.clone(),
                        keys.clone(),
                        pool_key.clone(),
                        ticks,
                    )
                    .await;
                    runs.push((b, l));
                }
                // The median run by Licentia's rate.
                runs.sort_by(|x, y| x.1.rate.total_cmp(&y.1.rate));
                let (b, l) = &runs[runs.len() / 2];
                println!(
                    "{:<12} {:>5} | {:>9.0} {:>7.2} {:>7.2} {:>7.3} | {:>9.0} {:>7.2} {:>7.2} {:>7.3} | {:>6.2}",
                    op.name(), conns, b.rate, ms(b.p50), ms(b.p99), b.cpu_per_op * 1000.0,
                    l.rate, ms(l.p50), ms(l.p99), l.cpu_per_op * 1000.0, l.rate / b.rate
                );
            }
        }
        println!(
            "resident memory after the runs: baseline {}, Licentia {}",
            bare.memory(),
            licentia.process.memory()
        );
    }
}
