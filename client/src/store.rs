//! The client's state for one product: its activation code, licence key, the server's public keys,
//! a pending offline request, and the latest time it has seen (to notice a clock set back). One
//! JSON file, replaced atomically.

use protocol::activation::JwkSet;
use serde::{Deserialize, Serialize};
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
    pub state: State,
}

impl Store {
    /// Opens `dir/<product>.json`, empty if it does not exist yet.
    pub fn open(dir: &Path, product: &str) -> Result<Self, String> {
        let path = dir.join(format!("{}.json", product.to_lowercase()));
        let state = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("the licence store {} is damaged: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Self { path, state })
    }

    pub fn save(&self) -> Result<(), String> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| e.to_string())?;
        write_private(&tmp, &text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
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
