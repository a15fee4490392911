//! Floating seats for an application: check out at start, heartbeat in the background, release
//! on drop. Servers are tried in the order given (any replica of one database will do). A
//! release that cannot reach any server is written to a small file and done at the next start.

use crate::{post_any, Error, Loan};
use protocol::borrow::{BorrowRequest, Borrowed};
use protocol::problem::ProblemKind;
use protocol::seats::{CheckoutRequest, Grant, LeaseRequest};
pub use protocol::seats::{PoolRef, Requester, SeatTerms};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PendingRelease {
    seat_id: i64,
    lease_token: String,
}

/// Checks seats out of one pool.
pub struct Floating {
    servers: Vec<String>,
    access: PoolRef,
    who: Requester,
    /// What the application says of itself at every checkout (editor, release, terms).
    application: SeatTerms,
    pending_file: PathBuf,
    agent: ureq::Agent,
}

/// A held seat. Dropping it releases it (or remembers to, if no server answers).
pub struct Seat {
    pub model: String,
    pub feature: String,
    pub bundled: Vec<String>,
    /// Which seat it is now: taken again by the heartbeats if the pool gave it back while the
    /// server could not be reached.
    hold: Arc<Mutex<Hold>>,
    servers: Vec<String>,
    pending_file: PathBuf,
    agent: ureq::Agent,
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    heartbeats: Option<JoinHandle<()>>,
}

/// The seat the server knows, and the token that keeps it.
#[derive(Debug, Clone)]
struct Hold {
    seat_id: i64,
    key_id: i64,
    lease_token: String,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
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

/// This installation's secret: made once, kept in `store_dir` (readable by its owner only), and
/// sent with every checkout so that a restarted application — and only it — resumes the seat it
/// held. `None` when it cannot be kept (then a restart waits for its old seat's lease to end).
fn installation_secret(store_dir: &Path) -> Option<String> {
    let path = store_dir.join("installation.secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        if text.len() >= 16 {
            return Some(text.to_owned());
        }
    }
    let secret = format!("{}{}", crate::random_nonce(), crate::random_nonce());
    std::fs::create_dir_all(store_dir).ok()?;
    let tmp = store_dir.join(format!("installation.{}.tmp", crate::random_nonce()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).ok()?;
    std::io::Write::write_all(&mut file, secret.as_bytes()).ok()?;
    drop(file);
    // Two processes starting together: the first one's secret stays, the other reads it.
    match std::fs::hard_link(&tmp, &path) {
        Ok(()) => {
            let _ = std::fs::remove_file(&tmp);
            Some(secret)
        }
        Err(_) => {
            let _ = std::fs::remove_file(&tmp);
            std::fs::read_to_string(&path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| t.len() >= 16)
        }
    }
}

impl Floating {
    /// `servers`: the licence servers to try, in order. `store_dir` keeps pending releases and
    /// the installation's secret (made there on first use unless `who` brings one).
    pub fn new(servers: &[String], access: PoolRef, mut who: Requester, store_dir: &Path) -> Self {
        if who.installation.is_none() {
            who.installation = installation_secret(store_dir);
        }
        let name = match &access {
            PoolRef::Key(k) => k.to_lowercase(),
            PoolRef::Serial { product, .. } => product.to_lowercase(),
        };
        Self {
            servers: servers
                .iter()
                .map(|s| s.trim().trim_end_matches('/').to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            access,
            who,
            application: SeatTerms::default(),
            pending_file: store_dir.join(format!("seats-pending-{name}.json")),
            agent: agent(),
        }
    }

    /// What the application tells the key selection at every checkout: its editor, release
    /// number and date, and the terms it asks for (commercial type, customer, pricing). The
    /// feature and tokens come with each checkout.
    pub fn for_application(mut self, terms: SeatTerms) -> Self {
        self.application = terms;
        self
    }

    /// Releases what a previous run could not (it closed while no server answered). Returns how
    /// many are still pending.
    pub fn housekeeping(&self) -> Result<usize, Error> {
        let mut still = Vec::new();
        for p in read_pending(&self.pending_file) {
            let body = LeaseRequest {
                lease_token: p.lease_token.clone(),
            };
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

    /// The machine name and user a borrow request code names.
    pub(crate) fn requester(&self) -> &Requester {
        &self.who
    }

    /// The pool and the application's release, as a borrow request code names them.
    pub(crate) fn pool(&self) -> (&PoolRef, i64) {
        (&self.access, self.application.release_number)
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
        let body = CheckoutRequest {
            pool: self.access.clone().into(),
            who: self.who.clone(),
            terms: SeatTerms {
                feature: feature.to_owned(),
                tokens,
                ..self.application.clone()
            },
        };
        let g = grant(&self.agent, &self.servers, &body)?;
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(Mutex::new(None));
        let hold = Arc::new(Mutex::new(Hold {
            seat_id: g.seat_id,
            key_id: g.key_id,
            lease_token: g.lease_token.clone(),
        }));
        let heartbeats = {
            let beats = Heartbeats {
                agent: self.agent.clone(),
                servers: self.servers.clone(),
                hold: hold.clone(),
                every: beat_interval(g.heartbeat_secs),
                stop: stop.clone(),
                lost: lost.clone(),
                checkout: (g.model != "Credit").then_some(body),
            };
            std::thread::spawn(move || beats.run())
        };
        Ok(Seat {
            model: g.model,
            feature: feature.to_owned(),
            bundled: g.bundled,
            hold,
            servers: self.servers.clone(),
            pending_file: self.pending_file.clone(),
            agent: self.agent.clone(),
            stop,
            lost,
            heartbeats: Some(heartbeats),
        })
    }
}

/// A checkout's grant, from the first server that answers.
fn grant(agent: &ureq::Agent, servers: &[String], body: &CheckoutRequest) -> Result<Grant, Error> {
    post_any(agent, servers, "/api/v1/seats", body)?
        .ok_or_else(|| Error::Io("the server granted nothing".into()))?
        .into_json()
        .map_err(|e| Error::Io(format!("the server's answer could not be read: {e}")))
}

fn beat_interval(heartbeat_secs: i64) -> Duration {
    Duration::from_secs(u64::try_from(heartbeat_secs).unwrap_or(1).max(1))
}

/// What keeps a seat: a heartbeat every `every`, to the first server that answers.
struct Heartbeats {
    agent: ureq::Agent,
    servers: Vec<String>,
    hold: Arc<Mutex<Hold>>,
    every: Duration,
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    /// The checkout that took the seat, made again if the pool gave the seat back meanwhile —
    /// `None` for a Credit key's seat, which a second checkout would pay for again.
    checkout: Option<CheckoutRequest>,
}

impl Heartbeats {
    /// Beats until stopped. While no server answers, the seat is kept as long as the pool
    /// keeps it (its lease, or for ever in a pool that holds silent seats); the next beat
    /// that gets through keeps it on. If the pool gave it back meanwhile (its lease ran out
    /// unheard), the seat is taken again at once, unseen by the application; only if none is
    /// free now, or the seat ended for another reason (freed by its owner, its key gone), is it
    /// lost, and `lost` says why.
    fn run(mut self) {
        let tick = Duration::from_millis(200);
        let mut waited = Duration::ZERO;
        // Set once the pool gave the seat back: why, while it is being taken again.
        let mut expired: Option<String> = None;
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(tick);
            waited += tick;
            if waited < self.every {
                continue;
            }
            waited = Duration::ZERO;
            let retaking = expired.is_some();
            let outcome = match expired.take() {
                None => self.beat(),
                Some(why) => self.take_again(why),
            };
            match outcome {
                Beat::Kept => {}
                Beat::Expired(why) => {
                    // Heard just now: take it again at the next tick. A retake that found no
                    // server (or a busy one) waits a whole beat before the next try.
                    if !retaking {
                        waited = self.every;
                    }
                    expired = Some(why);
                }
                Beat::Lost(why) => {
                    if let Ok(mut l) = self.lost.lock() {
                        *l = Some(why);
                    }
                    return;
                }
            }
        }
    }

    fn held(&self) -> Option<Hold> {
        self.hold.lock().ok().map(|h| h.clone())
    }

    fn beat(&self) -> Beat {
        let Some(hold) = self.held() else {
            return Beat::Kept;
        };
        let body = LeaseRequest {
            lease_token: hold.lease_token,
        };
        let path = format!("/api/v1/seats/{}/heartbeat", hold.seat_id);
        match post_any(&self.agent, &self.servers, &path, &body) {
            Ok(_) => Beat::Kept,
            Err(Error::Refused {
                kind: ProblemKind::LeaseExpired,
                detail,
                ..
            }) => Beat::Expired(detail),
            // 410: the seat is gone and the answer says why; 404: the server does not know it.
            Err(Error::Refused { status, detail, .. }) if status == 410 || status == 404 => {
                Beat::Lost(detail)
            }
            // Unreachable, busy or refusing for now: try again at the next beat.
            Err(_) => Beat::Kept,
        }
    }

    /// Checks out again after the pool gave the seat back (`why`).
    fn take_again(&mut self, why: String) -> Beat {
        let Some(checkout) = &self.checkout else {
            return Beat::Lost(format!(
                "{why} (A Credit key's seat is not taken again by itself: that would use \
                 another credit.)"
            ));
        };
        match grant(&self.agent, &self.servers, checkout) {
            Ok(g) => {
                if let Ok(mut h) = self.hold.lock() {
                    *h = Hold {
                        seat_id: g.seat_id,
                        key_id: g.key_id,
                        lease_token: g.lease_token,
                    };
                }
                self.every = beat_interval(g.heartbeat_secs);
                Beat::Kept
            }
            // Too many checkouts this minute (everyone retaking after an outage): later.
            Err(Error::Refused { status: 429, .. }) => Beat::Expired(why),
            Err(Error::Refused { detail, .. }) => Beat::Lost(format!(
                "{why} This machine tried to take a seat again and was refused: {detail}"
            )),
            // No server yet: try again at the next beat.
            Err(_) => Beat::Expired(why),
        }
    }
}

/// What one heartbeat found.
enum Beat {
    Kept,
    /// The pool gave the seat back when its lease ran out; why.
    Expired(String),
    Lost(String),
}

impl Seat {
    /// The seat's id at the server (another one if it had to be taken again).
    pub fn seat_id(&self) -> i64 {
        self.current().seat_id
    }

    /// The licence key it holds.
    pub fn key_id(&self) -> i64 {
        self.current().key_id
    }

    fn current(&self) -> Hold {
        match self.hold.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Borrows this seat for `days`, bound to the machine `fingerprint` (as
    /// `Licensing::borrow` does, which checks and keeps the token). Once borrowed, the seat
    /// sends no heartbeats and is not released when dropped: it is out until its end or an
    /// early return.
    pub(crate) fn borrow(
        &mut self,
        fingerprint: &str,
        days: i64,
        return_hash: String,
    ) -> Result<(Borrowed, Loan), Error> {
        let hold = self.current();
        let body = BorrowRequest {
            lease_token: hold.lease_token,
            fingerprint: fingerprint.to_owned(),
            days,
            return_hash: Some(return_hash),
        };
        let res = post_any(
            &self.agent,
            &self.servers,
            &format!("/api/v1/seats/{}/borrow", hold.seat_id),
            &body,
        )?
        .ok_or_else(|| Error::Io("the server lent nothing".into()))?;
        let borrowed: Borrowed = res
            .into_json()
            .map_err(|e| Error::Io(format!("the server's answer could not be read: {e}")))?;
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.heartbeats.take() {
            let _ = h.join();
        }
        Ok((borrowed, self.loan()))
    }

    /// The seat's lease token and servers, as a borrow keeps them.
    pub(crate) fn loan(&self) -> Loan {
        let hold = self.current();
        Loan {
            seat_id: hold.seat_id,
            lease_token: hold.lease_token,
            servers: self.servers.clone(),
        }
    }

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
        let hold = self.current();
        let body = LeaseRequest {
            lease_token: hold.lease_token.clone(),
        };
        match post_any(
            &self.agent,
            &self.servers,
            &format!("/api/v1/seats/{}/release", hold.seat_id),
            &body,
        ) {
            Ok(_) | Err(Error::Refused { .. }) => Ok(()),
            Err(e) => {
                let mut pending = read_pending(&self.pending_file);
                pending.push(PendingRelease {
                    seat_id: hold.seat_id,
                    lease_token: hold.lease_token,
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
