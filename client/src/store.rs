//! The client's state for one product: its activation code, licence key, the endorsement of the
//! vendor's keys, a pending offline request, and the latest time it has seen (to notice a clock
//! set back). One JSON file, replaced atomically.
//!
//! The file is sealed (an HMAC under a key bound to this machine and product) and counted: every
//! save raises its generation, and a *witness* file kept elsewhere remembers the highest
//! generation and the latest time seen. A file edited by hand fails its seal; a file restored
//! from an older copy is behind its witness. Either way offline use is refused until the next
//! online check replaces the state. What this does not stop: someone who reads this source and
//! recomputes the seal, or who restores the witness together with the state. The signed times
//! in the codes themselves bound what such a person gains (see `Licensing::checked_now`).

use hmac::{Hmac, Mac};
use protocol::activation::JwkSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

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
    #[serde(default)]
    pub last_seen: i64,
    /// The newest signed time (`iat`) of any code this machine accepted.
    #[serde(default)]
    pub newest_signed: i64,
    /// Raised at every save; the witness remembers the highest.
    #[serde(default)]
    pub generation: u64,
    /// HMAC-SHA256 of the state without it, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

/// What the witness remembers of the state it last saw saved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Witness {
    generation: u64,
    last_seen: i64,
    seal: String,
}

/// Whether the state read from disk is the one this machine last wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// Nothing saved yet, or exactly what was last saved.
    Intact,
    /// The file was changed outside the client (its seal fails).
    Edited,
    /// The file is older than the last one saved here (restored from a copy), or its witness is
    /// gone.
    RolledBack,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub nonce: String,
    pub licence_key: String,
    #[serde(default)]
    pub by_serial: bool,
}

pub struct Store {
    path: PathBuf,
    witness: PathBuf,
    /// The seal key, bound to the machine and product once known (`bind`).
    key: Option<[u8; 32]>,
    pub state: State,
    existed: bool,
}

/// Where witnesses are kept unless told: beside the user's other state, away from the licence
/// store (`$XDG_STATE_HOME/licentia`, or `~/.local/state/licentia`).
fn default_witness_dir() -> PathBuf {
    std::env::var_os("LICENTIA_WITNESS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("licentia")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/licentia"))
        })
        .unwrap_or_else(|| PathBuf::from(".licentia-witness"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Opens `dir/<product>.json`, empty if it does not exist yet, with its witness in the
    /// default place (`LICENTIA_WITNESS_DIR` overrides it).
    pub fn open(dir: &Path, product: &str) -> Result<Self, String> {
        Self::open_with_witness(dir, product, &default_witness_dir())
    }

    /// Opens the store with its witness kept in `witness_dir`.
    pub fn open_with_witness(
        dir: &Path,
        product: &str,
        witness_dir: &Path,
    ) -> Result<Self, String> {
        let path = dir.join(format!("{}.json", product.to_lowercase()));
        let (state, existed) = match std::fs::read_to_string(&path) {
            Ok(text) => (
                serde_json::from_str(&text)
                    .map_err(|e| format!("the licence store {} is damaged: {e}", path.display()))?,
                true,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (State::default(), false),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        // One witness per store: named after where the store is.
        let at = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        let tag = hex(&Sha256::digest(at.to_string_lossy().as_bytes())[..12]);
        let witness = witness_dir.join(format!("{tag}-{}.json", product.to_lowercase()));
        Ok(Self {
            path,
            witness,
            key: None,
            state,
            existed,
        })
    }

    /// Binds the seal to this machine and product (`fingerprint`): a state copied from another
    /// machine fails its seal here.
    pub fn bind(&mut self, fingerprint: &str) {
        let mut h = Sha256::new();
        h.update(b"licentia state seal v1\0");
        h.update(fingerprint.as_bytes());
        self.key = Some(h.finalize().into());
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

    fn witness_seal(generation: u64, last_seen: i64, store: &Store) -> String {
        store.mac(format!("{generation}:{last_seen}").as_bytes())
    }

    fn read_witness(&self) -> Option<Witness> {
        let text = std::fs::read_to_string(&self.witness).ok()?;
        let w: Witness = serde_json::from_str(&text).ok()?;
        // The witness is sealed too: a hand-written one counts as none.
        (w.seal == Self::witness_seal(w.generation, w.last_seen, self)).then_some(w)
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
        if self.state.seal.as_deref() != Some(self.seal_of(&self.state).as_str()) {
            return Integrity::Edited;
        }
        match witness {
            Some(w) if w.generation <= self.state.generation => Integrity::Intact,
            _ => Integrity::RolledBack,
        }
    }

    /// The latest time this machine has seen, by the state or its witness.
    pub fn last_seen(&self) -> i64 {
        let witnessed = self.read_witness().map_or(0, |w| w.last_seen);
        self.state.last_seen.max(witnessed)
    }

    /// Saves the state (sealed, its generation raised), then its witness.
    pub fn save(&mut self) -> Result<(), String> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let remembered = self.read_witness().map_or(0, |w| w.generation);
        self.state.generation = self.state.generation.max(remembered) + 1;
        self.state.last_seen = self.last_seen();
        self.state.seal = Some(self.seal_of(&self.state));
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| e.to_string())?;
        write_private(&tmp, &text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        self.existed = true;
        self.write_witness()
    }

    fn write_witness(&self) -> Result<(), String> {
        let w = Witness {
            generation: self.state.generation,
            last_seen: self.state.last_seen,
            seal: Self::witness_seal(self.state.generation, self.state.last_seen, self),
        };
        if let Some(dir) = self.witness.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = self.witness.with_extension("json.tmp");
        let text = serde_json::to_string(&w).map_err(|e| e.to_string())?;
        write_private(&tmp, &text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.witness)
            .map_err(|e| format!("cannot write {}: {e}", self.witness.display()))
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
