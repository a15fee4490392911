//! Soak: many leases heartbeating for a long time against one server process, as an office
//! (or a thousand offices) would hold them through a working day.
//!
//!     cargo bench -p server --bench soak [-- --leases 10000 --minutes 15 --beat-secs 60
//!         --lease-secs 180 --stop 1000 --postgres URL]
//!
//! Seeds a database (SQLite in a temporary directory, or the empty PostgreSQL database given)
//! with a pool whose key has a seat per lease, starts the release `server` binary on it as its
//! own process, checks out every lease, then heartbeats each every `--beat-secs` (spread evenly
//! over the period) for `--minutes`. Reported: checkouts, heartbeats and errors (any answer but
//! 2xx, or no answer), heartbeat latency p50/p99/max, the server process's CPU (from
//! /proc/<pid>/stat, as a share of one core and per heartbeat) and RSS (peak and at the end), and
//! how long the server took to reclaim `--stop` leases whose applications went silent: each
//! one's release time minus its lease's end, read from the database afterwards (whole seconds;
//! the reclaimer runs every 5 s). The other leases are released when the soak ends. CPU counts
//! the server process only: on SQLite the database works inside it, on PostgreSQL beside it;
//! the load generator shares the machine. No assertions (speed is measured, not tested); the
//! README keeps the last full run. `cargo bench -p server` alone runs it too: name the bench.

#[path = "support/process.rs"]
mod process;
#[path = "../tests/support/seeded.rs"]
mod seeded;

use seeded::seeded_pool;
use serde_json::{json, Value};
use server::config::Config;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    leases: usize,
    minutes: u64,
    beat_secs: u64,
    lease_secs: i64,
    stop: usize,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        leases: 10_000,
        minutes: 15,
        beat_secs: 60,
        lease_secs: 180,
        stop: 1_000,
        postgres: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--leases" => a.leases = next.parse().unwrap_or(a.leases),
            "--minutes" => a.minutes = next.parse().unwrap_or(a.minutes),
            "--beat-secs" => a.beat_secs = next.parse().unwrap_or(a.beat_secs),
            "--lease-secs" => a.lease_secs = next.parse().unwrap_or(a.lease_secs),
            "--stop" => a.stop = next.parse().unwrap_or(a.stop),
            "--postgres" => a.postgres = Some(next),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a.stop = a.stop.min(a.leases);
    a
}

/// The server binary, seeded and started on `database_url`; its URL, the pool key and the child.
async fn start(database_url: &str, a: &Args) -> (String, String, tokio::process::Child) {
    let env = process::server_env(database_url);
    let config = Config::from_sources(env.clone(), None).expect("config");
    let quantity = i64::try_from(a.leases).expect("leases");
    let (services, _admin, pool) = seeded_pool(
        &config,
        "soak@bench.test",
        "soak password 123",
        a.lease_secs,
        &[quantity],
    )
    .await;
    drop(services);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.env_remove("LICENTIA_CONFIG")
        .envs(&env)
        .env("RUST_LOG", "warn")
        .arg("serve");
    let (url, child) = process::start(cmd, "Licentia is running at ").await;
    (url, pool.access_key, child)
}

/// What the heartbeating leases saw.
#[derive(Default)]
struct Tally {
    beats: AtomicU64,
    errors: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> Result<Value, String> {
    let res = http
        .post(url)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = a
        .postgres
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/soak.db", dir.path().display()));
    let backend = if a.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let (url, pool_key, mut child) = start(&database_url, &a).await;
    let pid = child.id().expect("the server's pid");
    let ticks = process::clock_ticks();
    let http = reqwest::Client::new();
    println!(
        "{} leases on {backend}, heartbeat every {} s for {} min, lease {} s; {} then go silent",
        a.leases, a.beat_secs, a.minutes, a.lease_secs, a.stop
    );

    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak_rss.clone();
        tokio::spawn(async move {
            loop {
                let (_, rss) = process::usage(pid, ticks);
                peak.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };

    // Every lease checked out, 32 at a time.
    let checkout_started = Instant::now();
    let grants: Arc<Mutex<Vec<(usize, Value)>>> = Arc::default();
    let checkout_errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (http, url, key) = (http.clone(), url.clone(), pool_key.clone());
        let (grants, errors, next, leases) = (
            grants.clone(),
            checkout_errors.clone(),
            next.clone(),
            a.leases,
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                if i >= leases {
                    return;
                }
                let body = json!({"pool_key": key, "feature": "F", "user": format!("user{i}"),
                    "host": format!("ws-{i}"), "process": "soak"});
                match post(&http, format!("{url}/api/v1/seats"), &body).await {
                    Ok(g) => grants.lock().expect("grants").push((i, g)),
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("checkout {i}: {e}");
                        }
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("checkout worker");
    }
    let checkout_secs = checkout_started.elapsed().as_secs_f64();
    let mut grants = std::mem::take(&mut *grants.lock().expect("grants"));
    grants.sort_by_key(|(i, _)| *i);
    // (Each lease's first heartbeat comes up to a period after the checkouts end.)
    if checkout_secs + a.beat_secs as f64 >= a.lease_secs as f64 {
        eprintln!(
            "warning: the checkouts took {checkout_secs:.0} s: the first leases may end before \
             their first heartbeat (lease {} s, heartbeat every {} s)",
            a.lease_secs, a.beat_secs
        );
    }

    // The soak: each lease beats at its own phase of the period; the first `stop` of them go
    // silent at the end (their last lease end is kept to measure the reclaim).
    let (cpu_start, _) = process::usage(pid, ticks);
    let soak_started = Instant::now();
    let soak = Duration::from_secs(a.minutes * 60);
    let period = Duration::from_secs(a.beat_secs);
    let tally = Arc::new(Tally::default());
    let silent_ends: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let n = grants.len().max(1);
    let mut beaters = Vec::new();
    for (slot, (i, grant)) in grants.iter().enumerate() {
        let (http, url, tally, silent_ends) = (
            http.clone(),
            url.clone(),
            tally.clone(),
            silent_ends.clone(),
        );
        let seat = grant["seat_id"].as_i64().unwrap_or(0);
        let lease = json!({"lease_token": grant["lease_token"]});
        let mut lease_end = grant["lease_expires_at"].as_i64().unwrap_or(0);
        let goes_silent = *i < a.stop;
        let phase = period.mul_f64(slot as f64 / n as f64);
        beaters.push(tokio::spawn(async move {
            let mut at = soak_started + phase;
            while at < soak_started + soak {
                tokio::time::sleep_until(at.into()).await;
                let t = Instant::now();
                match post(
                    &http,
                    format!("{url}/api/v1/seats/{seat}/heartbeat"),
                    &lease,
                )
                .await
                {
                    Ok(beat) => {
                        tally.latencies.lock().expect("latencies").push(t.elapsed());
                        lease_end = beat["lease_expires_at"].as_i64().unwrap_or(lease_end);
                    }
                    Err(e) => {
                        if tally.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("heartbeat of seat {seat}: {e}");
                        }
                    }
                }
                tally.beats.fetch_add(1, Ordering::Relaxed);
                at += period;
            }
            if goes_silent {
                silent_ends.lock().expect("ends").push((seat, lease_end));
                None
            } else {
                Some((seat, lease))
            }
        }));
    }
    let mut still_held = Vec::new();
    for b in beaters {
        if let Some(held) = b.await.expect("beater") {
            still_held.push(held);
        }
    }
    let soak_secs = soak_started.elapsed().as_secs_f64();
    let (cpu_end, rss_end) = process::usage(pid, ticks);
    sampler.abort();

    // The held leases are given back at once, 32 at a time (so that only the silent ones are
    // left for the reclaimer to find).
    let release_errors = Arc::new(AtomicU64::new(0));
    for chunk in still_held.chunks(32) {
        let releases = chunk.iter().map(|(seat, lease)| {
            let (http, url, errors) = (http.clone(), url.clone(), release_errors.clone());
            async move {
                let released = post(&http, format!("{url}/api/v1/seats/{seat}/release"), lease);
                if released.await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        futures_util::future::join_all(releases).await;
    }

    // The silent leases: wait until the server has reclaimed them all (or until a minute past
    // the last one's end), then read when each was released.
    let silent = std::mem::take(&mut *silent_ends.lock().expect("ends"));
    let db = licensing::Database::connect(&database_url, 2)
        .await
        .expect("the database, read beside the server");
    let last_end = silent.iter().map(|(_, end)| *end).max().unwrap_or(0);
    let now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
        .unwrap_or(0)
    };
    let ids: Vec<i64> = silent.iter().map(|(id, _)| *id).collect();
    let mut lags: Vec<i64> = Vec::new();
    while !ids.is_empty() {
        let released: Vec<(i64, Option<i64>)> =
            sqlx::query_as("SELECT id, released_at FROM seats WHERE id >= $1 AND id <= $2")
                .bind(ids.iter().min().copied().unwrap_or(0))
                .bind(ids.iter().max().copied().unwrap_or(0))
                .fetch_all(db.pool())
                .await
                .expect("seats");
        let done: BTreeMap<i64, i64> = released
            .into_iter()
            .filter_map(|(id, at)| at.map(|at| (id, at)))
            .collect();
        if ids.iter().all(|id| done.contains_key(id)) || now() > last_end + 60 {
            lags = silent
                .iter()
                .filter_map(|(id, end)| done.get(id).map(|at| at - end))
                .collect();
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    lags.sort_unstable();
    let _ = child.kill().await;

    let mut lat = std::mem::take(&mut *tally.latencies.lock().expect("latencies"));
    lat.sort();
    let pick = |q: f64| {
        lat.get(((lat.len().saturating_sub(1)) as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let beats = tally.beats.load(Ordering::Relaxed);
    let cpu = cpu_end - cpu_start;
    println!();
    println!("| | |");
    println!("|---|---:|");
    println!(
        "| leases checked out | {} of {} in {checkout_secs:.1} s ({} refused or failed) |",
        grants.len(),
        a.leases,
        checkout_errors.load(Ordering::Relaxed)
    );
    println!(
        "| heartbeats | {beats} in {:.1} min ({:.0}/s) |",
        soak_secs / 60.0,
        beats as f64 / soak_secs
    );
    println!(
        "| heartbeat errors | {} |",
        tally.errors.load(Ordering::Relaxed)
    );
    println!(
        "| heartbeat latency p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        ms(pick(0.50)),
        ms(pick(0.99)),
        ms(pick(1.0))
    );
    println!(
        "| server CPU | {:.1} % of one core; {:.2} ms per heartbeat answered |",
        100.0 * cpu / soak_secs,
        1000.0 * cpu / (lat.len().max(1) as f64)
    );
    println!(
        "| server RSS | peak {:.1} MiB, at the end {:.1} MiB |",
        peak_rss.load(Ordering::Relaxed).max(rss_end) as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    println!(
        "| silent leases reclaimed after their end | {} of {}: median {} s, max {} s |",
        lags.len(),
        silent.len(),
        lags.get(lags.len() / 2).copied().unwrap_or(0),
        lags.last().copied().unwrap_or(0)
    );
    println!(
        "| releases at the end that failed | {} of {} |",
        release_errors.load(Ordering::Relaxed),
        still_held.len()
    );
}
