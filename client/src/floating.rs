//! Floating seats for an application: check out at start, heartbeat in the background, release
//! on drop. Servers are tried in the order given (any replica of one database will do). A
//! release that cannot reach any server is written to a small file and done at the next start.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Where seats come from: a client's pool key, or a serial number with its product code.
#[derive(Debug, Clone)]
pub enum PoolAccess {
    Key(String),
    Serial { product: String, serial: String },
}

/// Who asks, as the usage monitor shows it.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub user: String,
    pub host: String,
    pub process: String,
    /// A terminal-server session is a seat of its own; empty on a desktop.
    pub session: String,
    pub editor: Option<String>,
    pub release_number: i64,
    /// "YYYY-MM-DD"
    pub release_date: Option<String>,
    /// Only keys of this commercial type (STD, EDU, DEMO), customer ID or pricing structure.
    pub commercial_type: Option<String>,
    pub customer_id: Option<String>,
    pub pricing_structure: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PendingRelease {
    seat_id: i64,
    lease_token: String,
}

#[derive(Deserialize)]
struct GrantAnswer {
    seat_id: i64,
    lease_token: String,
    heartbeat_secs: u64,
    key_id: i64,
    model: String,
    #[serde(default)]
    bundled: Vec<String>,
}

/// Checks seats out of one pool.
pub struct Floating {
    servers: Vec<String>,
    access: PoolAccess,
    who: Requester,
    pending_file: PathBuf,
    agent: ureq::Agent,
}

/// A held seat. Dropping it releases it (or remembers to, if no server answers).
pub struct Seat {
    pub seat_id: i64,
    pub key_id: i64,
    pub model: String,
    pub feature: String,
    pub bundled: Vec<String>,
    lease_token: String,
    servers: Vec<String>,
    pending_file: PathBuf,
    agent: ureq::Agent,
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    heartbeats: Option<JoinHandle<()>>,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
}

/// Posts to the first server that answers; a server error (5xx) counts as no answer, so the
/// next server is tried. `Unreachable` only if none answered.
fn post_any(
    agent: &ureq::Agent,
    servers: &[String],
    path: &str,
    body: &serde_json::Value,
) -> Result<Option<ureq::Response>, Error> {
    let mut last = String::new();
    for server in servers {
        match agent
            .post(&format!("{server}{path}"))
            .send_json(body.clone())
        {
            Ok(res) if res.status() == 204 => return Ok(None),
            Ok(res) => return Ok(Some(res)),
            Err(ureq::Error::Status(status, _)) if status >= 500 => {
                last = format!("{server}: answered {status}");
            }
            Err(ureq::Error::Status(status, res)) => return Err(crate::problem(status, res)),
            Err(ureq::Error::Transport(t)) => last = format!("{server}: {t}"),
        }
    }
    Err(Error::Unreachable {
        server: servers.join(", "),
        reason: last,
    })
}

fn read_pending(path: &Path) -> Vec<PendingRelease> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_pending(path: &Path, pending: &[PendingRelease]) -> Result<(), Error> {
    if pending.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io(e.to_string())),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(e.to_string()))?;
    }
    let text = serde_json::to_string(pending).map_err(|e| Error::Io(e.to_string()))?;
    // Written whole or not at all: a crash mid-write must not lose the other pending releases.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
}

impl Floating {
    /// `servers`: the licence servers to try, in order. `store_dir` keeps pending releases.
    pub fn new(servers: &[String], access: PoolAccess, who: Requester, store_dir: &Path) -> Self {
        let name = match &access {
            PoolAccess::Key(k) => k.to_lowercase(),
            PoolAccess::Serial { product, .. } => product.to_lowercase(),
        };
        Self {
            servers: servers
                .iter()
                .map(|s| s.trim().trim_end_matches('/').to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            access,
            who,
            pending_file: store_dir.join(format!("seats-pending-{name}.json")),
            agent: agent(),
        }
    }

    /// Releases what a previous run could not (it closed while no server answered). Returns how
    /// many are still pending.
    pub fn housekeeping(&self) -> Result<usize, Error> {
        let mut still = Vec::new();
        for p in read_pending(&self.pending_file) {
            let body = serde_json::json!({ "lease_token": p.lease_token });
            match post_any(
                &self.agent,
                &self.servers,
                &format!("/api/v1/seats/{}/release", p.seat_id),
                &body,
            ) {
                Ok(_) | Err(Error::Refused { .. }) => {}
                Err(_) => still.push(p),
            }
        }
        write_pending(&self.pending_file, &still)?;
        Ok(still.len())
    }

    /// Checks out a seat of `feature` (`tokens` for a Token key) and starts its heartbeats.
    pub fn checkout(&self, feature: &str, tokens: Option<i64>) -> Result<Seat, Error> {
        if self.servers.is_empty() {
            return Err(Error::Offline(
                "no licence server is configured (--server)".into(),
            ));
        }
        // Best effort: an unreachable server fails the checkout below anyway.
        let _ = self.housekeeping();
        let mut body = serde_json::json!({
            "feature": feature,
            "user": self.who.user,
            "host": self.who.host,
            "process": self.who.process,
            "session": self.who.session,
            "release_number": self.who.release_number,
            "release_date": self.who.release_date,
            "editor": self.who.editor,
            "commercial_type": self.who.commercial_type,
            "customer_id": self.who.customer_id,
            "pricing_structure": self.who.pricing_structure,
            "tokens": tokens,
        });
        match &self.access {
            PoolAccess::Key(k) => body["pool_key"] = k.clone().into(),
            PoolAccess::Serial { product, serial } => {
                body["serial"] = serial.clone().into();
                body["product"] = product.clone().into();
            }
        }
        let res = post_any(&self.agent, &self.servers, "/api/v1/seats", &body)?
            .ok_or_else(|| Error::Io("the server granted nothing".into()))?;
        let g: GrantAnswer = res
            .into_json()
            .map_err(|e| Error::Io(format!("the server's answer could not be read: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(Mutex::new(None));
        let heartbeats = {
            let (agent, servers, stop, lost) = (
                self.agent.clone(),
                self.servers.clone(),
                stop.clone(),
                lost.clone(),
            );
            let path = format!("/api/v1/seats/{}/heartbeat", g.seat_id);
            let body = serde_json::json!({ "lease_token": g.lease_token });
            let every = Duration::from_secs(g.heartbeat_secs.max(1));
            std::thread::spawn(move || {
                heartbeat_loop(&agent, &servers, &path, &body, every, &stop, &lost)
            })
        };
        Ok(Seat {
            seat_id: g.seat_id,
            key_id: g.key_id,
            model: g.model,
            feature: feature.to_owned(),
            bundled: g.bundled,
            lease_token: g.lease_token,
            servers: self.servers.clone(),
            pending_file: self.pending_file.clone(),
            agent: self.agent.clone(),
            stop,
            lost,
            heartbeats: Some(heartbeats),
        })
    }
}

fn heartbeat_loop(
    agent: &ureq::Agent,
    servers: &[String],
    path: &str,
    body: &serde_json::Value,
    every: Duration,
    stop: &AtomicBool,
    lost: &Mutex<Option<String>>,
) {
    let tick = Duration::from_millis(200);
    let mut waited = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(tick);
        waited += tick;
        if waited < every {
            continue;
        }
        waited = Duration::ZERO;
        match post_any(agent, servers, path, body) {
            Ok(_) => {}
            // 410: the seat is gone and the answer says why; 404: the server does not know it.
            Err(Error::Refused { status, detail }) if status == 410 || status == 404 => {
                if let Ok(mut l) = lost.lock() {
                    *l = Some(detail);
                }
                return;
            }
            // Unreachable, busy or refusing for now: the seat is kept until its lease ends;
            // try again at the next beat.
            Err(_) => {}
        }
    }
}

impl Seat {
    /// Why the seat was lost (disconnected, lease expired, key expired), if it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Gives the seat back now. If no server answers, the release is remembered for next time.
    pub fn release(mut self) -> Result<(), Error> {
        self.release_now()
    }

    fn release_now(&mut self) -> Result<(), Error> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.heartbeats.take() {
            let _ = h.join();
        }
        if self.lost().is_some() {
            return Ok(());
        }
        let body = serde_json::json!({ "lease_token": self.lease_token });
        match post_any(
            &self.agent,
            &self.servers,
            &format!("/api/v1/seats/{}/release", self.seat_id),
            &body,
        ) {
            Ok(_) | Err(Error::Refused { .. }) => Ok(()),
            Err(e) => {
                let mut pending = read_pending(&self.pending_file);
                pending.push(PendingRelease {
                    seat_id: self.seat_id,
                    lease_token: self.lease_token.clone(),
                });
                write_pending(&self.pending_file, &pending)?;
                Err(e)
            }
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if self.heartbeats.is_some() {
            let _ = self.release_now();
        }
    }
}
