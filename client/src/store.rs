//! The client's state for one product: its activation code, licence key, the endorsement of the
//! vendor's keys, a pending offline request, and what this machine remembers (the latest time it
//! has seen, the newest signed times it accepted, the keys withdrawn). One JSON file, replaced
//! atomically.
//!
//! The file is sealed (an HMAC keyed by the machine's fingerprint for the product) and counted:
//! every save raises its generation, and a *witness* file kept elsewhere holds the same memory
//! with the highest generation. A file edited by hand fails its seal; a file restored from an
//! older copy is behind its witness; a file without its witness has lost it. Any of these
//! *taints* the state: the taint is written into the state and the witness at once and stays
//! until the server answers with a code newer than any this machine has accepted. What this does
//! not stop: the fingerprint is not secret, so someone who reads this source can recompute the
//! seal; and someone who restores (or redirects) the witness together with the state, and holds
//! the clock back, replays what they copied. The signed times bound what such a person gains
//! (see `Licensing::checked_now`).

use hmac::{Hmac, Mac};
use protocol::activation::JwkSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// What this machine remembers across saves, kept in the state and in its witness; the two are
/// merged (the later times, every withdrawn key, any taint) whenever read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    /// The latest time a check ran here.
    pub last_seen: i64,
    /// The newest signed time (`iat`) of a code this machine accepted.
    pub newest_signed: i64,
    /// The newest endorsement of the vendor's keys this machine accepted (its `iat`).
    pub newest_endorsed: i64,
    /// Signing keys the vendor withdrew, as endorsements said.
    pub retired: Vec<String>,
    /// Why the state may not be used offline until the server vouches for it again.
    pub tainted: Option<String>,
    /// Mobile licences given back from here, `[seat, end]`, until their end: their tokens are
    /// refused even if a copy turns up again.
    pub returned: Vec<[i64; 2]>,
}

impl Memory {
    fn merge(&mut self, other: &Memory) {
        self.last_seen = self.last_seen.max(other.last_seen);
        self.newest_signed = self.newest_signed.max(other.newest_signed);
        self.newest_endorsed = self.newest_endorsed.max(other.newest_endorsed);
        for kid in &other.retired {
            if !self.retired.contains(kid) {
                self.retired.push(kid.clone());
            }
        }
        if self.tainted.is_none() {
            self.tainted.clone_from(&other.tainted);
        }
        for r in &other.returned {
            if !self.returned.contains(r) {
                self.returned.push(*r);
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub activation_code: Option<String>,
    /// The licence key, or the serial number when `by_serial`.
    pub licence_key: Option<String>,
    #[serde(default)]
    pub by_serial: bool,
    /// Development trust only (`trusting_server_keys`): the server's keys as first fetched.
    pub jwks: Option<JwkSet>,
    /// The newest endorsement of the signing keys fetched from the server (a JWS the pinned
    /// root key signed; checked again at every use).
    #[serde(default)]
    pub endorsement: Option<String>,
    pub pending: Option<Pending>,
    /// The removal code this machine gave when it gave its licence up (shown again if asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal: Option<String>,
    /// Mobile licences (borrowed floating seats) this machine holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub borrows: Vec<HeldBorrow>,
    /// Borrow request codes waiting for their answer (they survive restarts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub borrow_requests: Vec<PendingBorrow>,
    #[serde(default)]
    pub memory: Memory,
    /// Raised at every save; the witness remembers the highest.
    #[serde(default)]
    pub generation: u64,
    /// HMAC-SHA256 of the state without it, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

/// What a save may replace in the memory because the server has just vouched for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vouched {
    /// A code newer than any accepted: the state is sound again.
    pub untaint: bool,
    /// A code signed just now: this clock agrees with the server's, whatever ran ahead before.
    pub clock: bool,
}

/// The witness: the memory and generation of the state last saved, sealed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Witness {
    generation: u64,
    memory: Memory,
    #[serde(default)]
    seal: String,
}

/// Whether the state read from disk is the one this machine last wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// Nothing saved yet, or exactly what was last saved.
    Intact,
    /// The file was changed outside the client (its seal fails), or comes from another machine.
    Edited,
    /// The file carries no seal: an older version of the client wrote it.
    Unsealed,
    /// The file is older than the last one saved here (restored from a copy), or its witness is
    /// gone.
    RolledBack,
}

/// A mobile licence as kept: its token and, when borrowed online, how to reach its seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBorrow {
    pub token: String,
    /// The secret an early return shows (the server knows only its hash).
    #[serde(default)]
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loan: Option<Loan>,
}

/// A borrowed seat's lease token and the servers that lent it (online return and extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loan {
    pub seat_id: i64,
    pub lease_token: String,
    pub servers: Vec<String>,
}

/// A borrow request code made here and not answered yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingBorrow {
    pub nonce: String,
    /// The return secret of the mobile licence the answer will bring.
    pub secret: String,
    pub feature: String,
    /// The request code itself, shown again until it is answered or cancelled.
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub nonce: String,
    pub licence_key: String,
    #[serde(default)]
    pub by_serial: bool,
}

/// The store held for one call of the client library: an advisory lock on `<store>.lock`, so
/// that an application and the CLI (or two applications) never interleave their reads and saves
/// of one state. Taken again inside the same process, it only counts.
pub struct StoreLock {
    file: Option<std::fs::File>,
    depth: Arc<AtomicU32>,
}

impl StoreLock {
    /// Whether this is the outermost hold (the one that took the lock and should re-read the
    /// state).
    pub fn outermost(&self) -> bool {
        self.file.is_some()
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Dropping the file (after the count) gives the lock back.
        self.depth.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Store {
    /// How many calls in this process hold the store now.
    depth: Arc<AtomicU32>,
    path: PathBuf,
    witness: PathBuf,
    /// The seal key, bound to the machine and product once known (`bind`).
    key: Option<[u8; 32]>,
    /// The witness as read at `bind` (if genuine), then as last written.
    remembered: Option<Witness>,
    pub state: State,
    existed: bool,
    /// The texts of the state and its witness as this process last read or wrote them: any
    /// other text on disk means another process (or someone) changed them.
    seen_state: Option<String>,
    seen_witness: Option<String>,
    /// A witness older than the one this process had seen turned up (restored from a copy).
    witness_went_back: bool,
    /// What this process knew before it read the files again (`reload`): never forgotten.
    carried: Memory,
    /// Something besides the latest time seen changed since the state was read or saved (keys
    /// fetched from the server, say): the next check saves it.
    unsaved: bool,
}

/// Where witnesses are kept unless the application says: beside the user's other state, away
/// from the licence store (`$XDG_STATE_HOME/licentia`, or `~/.local/state/licentia`); without a
/// home, beside the store.
fn default_witness_dir(store_dir: &Path) -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(|d| PathBuf::from(d).join("licentia"))
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| Path::new(h).is_absolute())
                .map(|h| PathBuf::from(h).join(".local/state/licentia"))
        })
        .unwrap_or_else(|| store_dir.join(".witness"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A temporary name beside `path`, unique to this process and moment, for an atomic replace.
fn temporary(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.{nanos}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn replace(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = temporary(path);
    write_private(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// The state in `path` and its text, if there is one.
fn read_state(path: &Path) -> Result<(State, Option<String>), String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((
            serde_json::from_str(&text)
                .map_err(|e| format!("the licence store {} is damaged: {e}", path.display()))?,
            Some(text),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((State::default(), None)),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// How long a call waits for another process's hold on the store.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl Store {
    /// Holds the store for one call (see [`StoreLock`]); waits while another process holds it.
    pub fn lock(&self) -> Result<StoreLock, String> {
        if self.depth.fetch_add(1, Ordering::SeqCst) > 0 {
            return Ok(StoreLock {
                file: None,
                depth: self.depth.clone(),
            });
        }
        let locked = (|| {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.path.with_extension("lock"))?;
            // Another process's call (over the network, say) ends well within this.
            let deadline = std::time::Instant::now() + LOCK_WAIT;
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(std::fs::TryLockError::WouldBlock)
                        if std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(std::io::Error::other(
                            "another process has held it for over two minutes",
                        ))
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(e),
                }
            }
            Ok::<_, std::io::Error>(file)
        })();
        match locked {
            Ok(file) => Ok(StoreLock {
                file: Some(file),
                depth: self.depth.clone(),
            }),
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                Err(format!(
                    "cannot lock the licence store {}: {e}",
                    self.path.display()
                ))
            }
        }
    }

    /// Whether the state or its witness on disk is not what this process last read or wrote
    /// (another process saved, or someone put a file back).
    pub fn changed_on_disk(&self) -> bool {
        std::fs::read_to_string(&self.path).ok() != self.seen_state
            || std::fs::read_to_string(&self.witness).ok() != self.seen_witness
    }

    /// Reads the state and its witness again. Nothing this process already knew is forgotten:
    /// its memory (times, withdrawn keys, returned borrows, taint) is merged into what is read,
    /// and a witness older than the one it had seen counts as the state being rolled back.
    pub fn reload(&mut self) -> Result<(), String> {
        let mut known = self.memory();
        let known_generation = self.remembered.as_ref().map_or(0, |w| w.generation);
        let (state, text) = read_state(&self.path)?;
        self.state = state;
        self.existed = text.is_some();
        self.seen_state = text;
        self.remembered = self.read_witness_file();
        self.seen_witness = std::fs::read_to_string(&self.witness).ok();
        if self.remembered.as_ref().map_or(0, |w| w.generation) < known_generation {
            self.witness_went_back = true;
        }
        // Another process that got a newer signed code has lifted a taint, or set the clock
        // right: that stands.
        let mut on_disk = self.state.memory.clone();
        if let Some(w) = &self.remembered {
            on_disk.merge(&w.memory);
        }
        if on_disk.newest_signed > known.newest_signed {
            known.tainted = None;
            known.last_seen = on_disk.last_seen;
        }
        self.carried.merge(&known);
        Ok(())
    }

    /// Opens `dir/<product>.json`, empty if it does not exist yet, with its witness in the
    /// default place.
    pub fn open(dir: &Path, product: &str) -> Result<Self, String> {
        Self::open_with_witness(dir, product, &default_witness_dir(dir))
    }

    /// Opens the store with its witness kept in `witness_dir`.
    pub fn open_with_witness(
        dir: &Path,
        product: &str,
        witness_dir: &Path,
    ) -> Result<Self, String> {
        let path = dir.join(format!("{}.json", product.to_lowercase()));
        let (state, text) = read_state(&path)?;
        // One witness per store, named after where the store is (as given, made absolute: the
        // name must not change once the folder exists).
        let at = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let tag = hex(&Sha256::digest(at.to_string_lossy().as_bytes())[..12]);
        let witness = witness_dir.join(format!("{tag}-{}.json", product.to_lowercase()));
        Ok(Self {
            depth: Arc::new(AtomicU32::new(0)),
            path,
            witness,
            key: None,
            remembered: None,
            state,
            existed: text.is_some(),
            seen_state: text,
            seen_witness: None,
            witness_went_back: false,
            carried: Memory::default(),
            unsaved: false,
        })
    }

    /// Binds the seal to this machine and product (`fingerprint`): a state copied from another
    /// machine fails its seal here. (The fingerprint is not secret: the seal catches edits and
    /// copies, not someone who recomputes it.)
    pub fn bind(&mut self, fingerprint: &str) {
        let mut h = Sha256::new();
        h.update(b"licentia state seal v1\0");
        h.update(fingerprint.as_bytes());
        self.key = Some(h.finalize().into());
        self.remembered = self.read_witness_file();
        self.seen_witness = std::fs::read_to_string(&self.witness).ok();
    }

    /// HMAC-SHA256 of `body` under the seal key, hex.
    fn mac(&self, body: &[u8]) -> String {
        // HMAC takes a key of any length: `new_from_slice` cannot fail here.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key.unwrap_or_default())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    fn seal_of(&self, state: &State) -> String {
        let mut unsealed = state.clone();
        unsealed.seal = None;
        self.mac(&serde_json::to_vec(&unsealed).unwrap_or_default())
    }

    fn witness_seal(&self, w: &Witness) -> String {
        let mut unsealed = w.clone();
        unsealed.seal = String::new();
        self.mac(&serde_json::to_vec(&unsealed).unwrap_or_default())
    }

    /// The witness as read at the start of this call (`bind`, `reload`), then as written.
    fn read_witness(&self) -> Option<Witness> {
        self.remembered.clone()
    }

    fn read_witness_file(&self) -> Option<Witness> {
        let text = std::fs::read_to_string(&self.witness).ok()?;
        let w: Witness = serde_json::from_str(&text).ok()?;
        // The witness is sealed too: a hand-written one counts as none.
        (w.seal == self.witness_seal(&w)).then_some(w)
    }

    /// Whether the state read is the one this machine last saved (needs `bind` first).
    pub fn integrity(&self) -> Integrity {
        let witness = self.read_witness();
        if !self.existed {
            // No state, but a witness of one: the file was deleted to start afresh.
            return match witness {
                Some(w) if w.generation > 0 => Integrity::RolledBack,
                _ => Integrity::Intact,
            };
        }
        match self.state.seal.as_deref() {
            None => return Integrity::Unsealed,
            Some(seal) if seal != self.seal_of(&self.state) => return Integrity::Edited,
            Some(_) => {}
        }
        match witness {
            _ if self.witness_went_back => Integrity::RolledBack,
            Some(w) if w.generation <= self.state.generation => Integrity::Intact,
            _ => Integrity::RolledBack,
        }
    }

    /// What this machine remembers: the state's memory merged with its witness's.
    pub fn memory(&self) -> Memory {
        let mut memory = self.state.memory.clone();
        if let Some(w) = self.read_witness() {
            memory.merge(&w.memory);
        }
        memory.merge(&self.carried);
        memory
    }

    /// Marks the state as not to be used offline, in the state and (at the next save) its
    /// witness, until the server vouches for it again.
    pub fn taint(&mut self, why: &str) {
        if self.memory().tainted.is_none() {
            self.state.memory.tainted = Some(why.to_owned());
        }
    }

    /// Saves the state (sealed, its generation raised), then its witness with the same memory.
    /// What the server has just vouched for replaces what was remembered (`vouched`).
    pub fn save_with(&mut self, vouched: Vouched) -> Result<(), String> {
        let witness = self.read_witness();
        let remembered = witness.as_ref().map_or(0, |w| w.generation);
        let mut memory = self.state.memory.clone();
        if let Some(w) = &witness {
            memory.merge(&w.memory);
        }
        memory.merge(&self.carried);
        if vouched.untaint {
            memory.tainted = None;
        }
        if vouched.clock {
            memory.last_seen = self.state.memory.last_seen;
        }
        // A returned borrow's token has lapsed once the server has signed a time past its end
        // (this clock alone could be set forward to forget it).
        let signed = memory.newest_signed;
        memory.returned.retain(|[_, end]| *end >= signed);
        self.state.memory = memory;
        self.state.generation = self.state.generation.max(remembered) + 1;
        self.state.seal = Some(self.seal_of(&self.state));
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| e.to_string())?;
        replace(&self.path, &text)?;
        self.existed = true;
        self.seen_state = Some(text);
        self.witness_went_back = false;
        let mut w = Witness {
            generation: self.state.generation,
            memory: self.state.memory.clone(),
            seal: String::new(),
        };
        w.seal = self.witness_seal(&w);
        let text = serde_json::to_string(&w).map_err(|e| e.to_string())?;
        replace(&self.witness, &text)?;
        self.seen_witness = Some(text);
        self.remembered = Some(w);
        // Everything carried over is in the state and its witness now.
        self.carried = Memory::default();
        self.unsaved = false;
        Ok(())
    }

    /// The latest time seen as it is written on disk (in the witness as read or last written;
    /// 0 without one) — not the newer one this process may hold.
    pub fn written_last_seen(&self) -> i64 {
        self.remembered.as_ref().map_or(0, |w| w.memory.last_seen)
    }

    /// Notes a change besides the latest time seen, for the next check to save.
    pub fn mark_changed(&mut self) {
        self.unsaved = true;
    }

    /// Whether something besides the latest time seen waits to be saved.
    pub fn has_unsaved_changes(&self) -> bool {
        self.unsaved
    }

    /// Saves the state, keeping any taint and every time remembered.
    pub fn save(&mut self) -> Result<(), String> {
        self.save_with(Vouched::default())
    }
}

/// Writes a file only its owner can read: it holds the licence key.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}
