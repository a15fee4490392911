//! The keys that sign activation codes. Private keys are stored encrypted (ChaCha20-Poly1305)
//! under a master key that never enters the database; public keys are published as a JWKS. A
//! rotation makes a new key the signing one and keeps the old ones published, so codes already
//! issued keep verifying; retiring a key withdraws it (its codes are refused at validation).
//!
//! The root key, which applications pin, is derived from the master key: every replica sharing
//! the master key has the same root, and it changes only with the master key. It signs nothing
//! but endorsements of the signing keys (`protocol::trust`).

use crate::audit::{Entry, Who};
use crate::{Error, Licentia, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use protocol::activation::{Jwk, JwkSet};
use protocol::audit::AuditAction;
use protocol::trust::{endorse, Endorsement};
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The key that encrypts signing keys at rest: 32 bytes, never printed (`Debug` shows
/// `[REDACTED]`) and wiped from memory when dropped.
#[derive(Clone, Debug)]
pub struct MasterKey(SecretSlice<u8>);

impl MasterKey {
    pub fn random() -> Self {
        let mut k = vec![0u8; 32];
        OsRng.fill_bytes(&mut k);
        Self(k.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// From 32 bytes in standard base64 (e.g. an environment variable).
    pub fn from_base64(s: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(s.trim())
            .map_err(|_| "the master key is not valid base64".to_owned())?;
        if bytes.len() != 32 {
            return Err("the master key must be 32 bytes".to_owned());
        }
        Ok(Self(bytes.into()))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes())
    }

    /// Reads the key file, or creates it (readable by its owner only) when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::random();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                write_private(path, &key.to_base64())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(key)
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// A key for one purpose, derived from the master key, so each use has its own.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Encrypts a signing key's secret, bound to its key id: a sealed key moved to another
    /// row (someone with write access to the database swapping keys) does not open.
    fn seal(&self, kid: &str, secret: &[u8; 32]) -> Result<String> {
        self.seal_for(&sealing_aad(kid), secret)
    }

    /// Encrypts `secret` bound to `aad` (what it belongs to: it opens only for the same).
    pub(crate) fn seal_for(&self, aad: &[u8], secret: &[u8]) -> Result<String> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.bytes()));
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad })
            .map_err(|_| Error::Internal("encrypting a secret failed".into()))?;
        Ok(format!(
            "{SEALED_V2}{}",
            STANDARD.encode([nonce.as_slice(), &sealed].concat())
        ))
    }

    /// Decrypts what `seal_for` made for `aad`; `what` names the secret in errors.
    pub(crate) fn open_for(&self, aad: &[u8], sealed: &str, what: &str) -> Result<Vec<u8>> {
        let encoded = sealed
            .strip_prefix(SEALED_V2)
            .ok_or_else(|| Error::Internal(format!("{what} is not sealed as expected")))?;
        self.open_bytes(encoded, aad, what)
    }

    fn open_bytes(&self, encoded: &str, aad: &[u8], what: &str) -> Result<Vec<u8>> {
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| Error::Internal(format!("{what} is not base64")))?;
        if bytes.len() < 12 {
            return Err(Error::Internal(format!("{what} is truncated")));
        }
        let (nonce, ct) = bytes.split_at(12);
        ChaCha20Poly1305::new(Key::from_slice(self.bytes()))
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| {
                Error::Internal(format!(
                    "{what} cannot be decrypted: the master key is not the one it was stored \
                     with, or it was moved from another row"
                ))
            })
    }

    /// Decrypts what `seal` made for `kid` (or, for keys sealed before key ids were bound, what
    /// it made without one).
    fn open(&self, kid: &str, sealed: &str) -> Result<[u8; 32]> {
        let (encoded, aad) = match sealed.strip_prefix(SEALED_V2) {
            Some(rest) => (rest, sealing_aad(kid)),
            None => (sealed, Vec::new()),
        };
        self.open_bytes(encoded, &aad, &format!("the stored signing key {kid}"))?
            .try_into()
            .map_err(|_| Error::Internal("a stored signing key has the wrong length".into()))
    }
}

const SEALED_V2: &str = "v2.";

fn sealing_aad(kid: &str) -> Vec<u8> {
    [b"licentia signing key\0".as_slice(), kid.as_bytes()].concat()
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// A key id derived from the public key: stable, unique, says nothing secret.
fn kid_of(public: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(public.as_bytes())[..12])
}

/// A signing key in force as the database has it: the private key still sealed.
#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    public_key: String,
    private_key: String,
    active: i64,
}

/// The signing keys in force, read in one statement: the published set (every key not
/// retired, the active one first) and the active key's id and sealed private key (opened only
/// by `active_of`, when something is to be signed).
pub(crate) struct KeyRing {
    pub jwks: JwkSet,
    active: Option<(String, String)>,
}

/// Keys as last decoded (and the active one decrypted), by id. Each use still reads the rows,
/// and an entry serves only while its row's text is unchanged: a key rotated or retired by
/// another replica counts at the next request. Only the decoding and decrypting are saved.
#[derive(Default)]
pub(crate) struct KeyCache(std::sync::Mutex<std::collections::HashMap<String, CachedKey>>);

impl KeyCache {
    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::HashMap<String, CachedKey>>> {
        self.0
            .lock()
            .map_err(|_| Error::Internal("the key cache is poisoned".into()))
    }
}

/// The cache's entry for the key row `kid` with these texts: kept while they are unchanged,
/// made again (its public key decoded, nothing opened yet) otherwise.
fn cached<'c>(
    cache: &'c mut std::collections::HashMap<String, CachedKey>,
    kid: &str,
    public: &str,
    sealed: &str,
) -> Result<&'c mut CachedKey> {
    let fresh = cache
        .get(kid)
        .is_some_and(|c| c.public_key == public && c.sealed == sealed);
    if !fresh {
        let entry = CachedKey {
            verifying: public_key(kid, public)?,
            public_key: public.to_owned(),
            sealed: sealed.to_owned(),
            signing: None,
        };
        cache.insert(kid.to_owned(), entry);
    }
    cache
        .get_mut(kid)
        .ok_or_else(|| Error::Internal("a cached key vanished".into()))
}

struct CachedKey {
    public_key: String,
    verifying: VerifyingKey,
    /// The sealed private key this entry's `signing` came from.
    sealed: String,
    signing: Option<SigningKey>,
}

impl Licentia {
    /// Makes sure a signing key exists (the first start creates one). Returns the active key id.
    pub async fn ensure_signing_key(&self) -> Result<String> {
        let active: Option<String> =
            sqlx::query_scalar("SELECT kid FROM signing_keys WHERE active = 1")
                .fetch_optional(self.db.pool())
                .await?;
        match active {
            Some(kid) => Ok(kid),
            None => match self.rotate_signing_key().await {
                Ok(kid) => Ok(kid),
                // Another replica created one at the same moment: use it.
                Err(Error::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => Ok(
                    sqlx::query_scalar("SELECT kid FROM signing_keys WHERE active = 1")
                        .fetch_one(self.db.pool())
                        .await?,
                ),
                Err(e) => Err(e),
            },
        }
    }

    /// Checks that the master key opens every signing key stored (each one's public key must be
    /// its id's), and seals again, bound to their ids, the keys sealed before ids were bound.
    /// Run at start: a server given the wrong master key (another user's default, a lost file
    /// made anew) stops here instead of sealing new keys under it.
    pub async fn check_signing_keys(&self) -> Result<u64> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT kid, private_key FROM signing_keys ORDER BY created_at")
                .fetch_all(self.db.pool())
                .await?;
        let mut resealed = 0;
        for (kid, sealed) in rows {
            let wrong = || {
                Error::Internal(format!(
                    "the master key does not open the signing key {kid} stored in this \
                     database: it is not the master key the keys were sealed with. Point \
                     LICENTIA_MASTER_KEY_FILE (or LICENTIA_MASTER_KEY) at that one; if a new \
                     key file was just created, remove it"
                ))
            };
            let secret = self.master_key.open(&kid, &sealed).map_err(|_| wrong())?;
            if kid_of(&SigningKey::from_bytes(&secret).verifying_key()) != kid {
                return Err(wrong());
            }
            if !sealed.starts_with(SEALED_V2) {
                resealed += sqlx::query(
                    "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3",
                )
                .bind(self.master_key.seal(&kid, &secret)?)
                .bind(&kid)
                .bind(&sealed)
                .execute(self.db.pool())
                .await?
                .rows_affected();
            }
        }
        Ok(resealed)
    }

    /// Creates a new signing key and makes it the active one. Earlier keys stay published.
    pub async fn rotate_signing_key(&self) -> Result<String> {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let key = SigningKey::from_bytes(&secret);
        let public = key.verifying_key();
        let kid = kid_of(&public);
        let sealed = self.master_key.seal(&kid, &secret)?;
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("UPDATE signing_keys SET active = 0 WHERE active = 1")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, public_key, private_key, active, created_at) \
             VALUES ($1, $2, $3, 1, $4)",
        )
        .bind(&kid)
        .bind(URL_SAFE_NO_PAD.encode(public.as_bytes()))
        .bind(&sealed)
        .bind(self.clock.now())
        .execute(&mut *tx)
        .await?;
        self.record(
            &mut *tx,
            Who::Operator,
            Entry::new(AuditAction::SigningKeyRotate, format!("signing key {kid}")),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(kid, "new signing key is active");
        Ok(kid)
    }

    /// The public keys that verify activation codes: every key not retired.
    pub async fn jwks(&self) -> Result<JwkSet> {
        Ok(self.key_ring().await?.jwks)
    }

    /// The signing keys in force (one statement; decoding and decrypting cached by row).
    pub(crate) async fn key_ring(&self) -> Result<KeyRing> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, public_key, private_key, active FROM signing_keys \
             WHERE retired_at IS NULL ORDER BY active DESC, created_at DESC",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut cache = self.key_cache.lock()?;
        // Entries of keys no longer in force go.
        cache.retain(|kid, _| rows.iter().any(|r| &r.kid == kid));
        let mut ring = KeyRing {
            jwks: JwkSet {
                keys: Vec::with_capacity(rows.len()),
            },
            active: None,
        };
        for r in rows {
            let entry = cached(&mut cache, &r.kid, &r.public_key, &r.private_key)?;
            ring.jwks.keys.push(Jwk::ed25519(&r.kid, &entry.verifying));
            if r.active == 1 && ring.active.is_none() {
                ring.active = Some((r.kid, r.private_key));
            } else {
                // A key that signs no more is not kept open.
                entry.signing = None;
            }
        }
        Ok(ring)
    }

    /// The root key: derived from the master key, never stored.
    fn root_key(&self) -> (String, SigningKey) {
        let key = SigningKey::from_bytes(&self.master_key.derive("licentia root key v1"));
        (kid_of(&key.verifying_key()), key)
    }

    /// The root's public key, which applications pin at build time.
    pub fn root_jwks(&self) -> JwkSet {
        let (kid, key) = self.root_key();
        JwkSet {
            keys: vec![Jwk::ed25519(&kid, &key.verifying_key())],
        }
    }

    /// The signing keys in force, endorsed by the root key (a compact JWS).
    pub async fn endorsed_keys(&self) -> Result<String> {
        let retired: Vec<String> = sqlx::query_scalar(
            "SELECT kid FROM signing_keys WHERE retired_at IS NOT NULL ORDER BY retired_at",
        )
        .fetch_all(self.db.pool())
        .await?;
        let endorsement = Endorsement {
            iss: self.issuer.to_string(),
            iat: self.clock.now(),
            keys: self.jwks().await?,
            retired,
        };
        let (kid, root) = self.root_key();
        Ok(endorse(&endorsement, &kid, &root))
    }

    /// Withdraws a signing key: it leaves the published and endorsed keys, and codes it signed
    /// are refused at validation (the application activates again). Retiring the active key
    /// first makes a new one active. Returns the active key afterwards.
    pub async fn retire_signing_key(&self, kid: &str) -> Result<String> {
        let state: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT active, retired_at FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .fetch_optional(self.db.pool())
                .await?;
        let (active, retired_at) = state.ok_or(Error::NotFound("The signing key"))?;
        if retired_at.is_some() {
            return Err(Error::Conflict(format!(
                "The signing key {kid} is already retired."
            )));
        }
        if active == 1 {
            self.rotate_signing_key().await?;
        }
        let retired = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1, active = 0 \
             WHERE kid = $2 AND retired_at IS NULL AND active = 0",
        )
        .bind(self.clock.now())
        .bind(kid)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if retired == 0 {
            // Retired by someone else at the same moment, or made active again meanwhile.
            return Err(Error::Conflict(format!(
                "The signing key {kid} was changed at the same moment: list the keys and retry."
            )));
        }
        self.record_after(
            Who::Operator,
            Entry::new(AuditAction::SigningKeyRetire, format!("signing key {kid}"))
                .detail("Codes it signed are refused at their next validation."),
        )
        .await;
        tracing::warn!(kid, "signing key retired");
        self.ensure_signing_key().await
    }

    /// When a signing key was retired, if it was.
    pub(crate) async fn retired_at(&self, kid: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT retired_at FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .fetch_optional(self.db.pool())
                .await?
                .flatten(),
        )
    }

    /// The active signing key, decrypted.
    pub(crate) async fn signing_key(&self) -> Result<(String, SigningKey)> {
        self.active_of(self.key_ring().await?).await
    }

    /// The ring's active key, opened (once per process while its row is unchanged); when there
    /// is none yet, one is made (the first start).
    pub(crate) async fn active_of(&self, ring: KeyRing) -> Result<(String, SigningKey)> {
        let (kid, sealed) = match ring.active {
            Some(active) => active,
            None => {
                self.ensure_signing_key().await?;
                self.key_ring().await?.active.ok_or_else(|| {
                    Error::Internal("no active signing key after making one".into())
                })?
            }
        };
        let mut cache = self.key_cache.lock()?;
        match cache.get_mut(&kid).filter(|e| e.sealed == sealed) {
            Some(entry) => {
                let key = self.opened(entry, &kid)?;
                Ok((kid, key))
            }
            // (Not in the ring's cache any more: opened, not kept.)
            None => Ok((
                kid.clone(),
                SigningKey::from_bytes(&self.master_key.open(&kid, &sealed)?),
            )),
        }
    }

    /// The private key of a cached entry, opened once while the entry stands.
    fn opened(&self, entry: &mut CachedKey, kid: &str) -> Result<SigningKey> {
        if let Some(key) = &entry.signing {
            return Ok(key.clone());
        }
        let key = SigningKey::from_bytes(&self.master_key.open(kid, &entry.sealed)?);
        entry.signing = Some(key.clone());
        Ok(key)
    }
}

/// Columns that read the active signing key beside another statement's own (one statement
/// fewer on a hot path): its id, public key and sealed private key, each NULL before the first
/// key is made. Decoded by [`ActiveKey`].
pub(crate) const ACTIVE_KEY_COLUMNS: &str =
    "(SELECT kid FROM signing_keys WHERE active = 1 AND retired_at IS NULL \
      ORDER BY created_at DESC LIMIT 1) AS key_kid, \
     (SELECT public_key FROM signing_keys WHERE active = 1 AND retired_at IS NULL \
      ORDER BY created_at DESC LIMIT 1) AS key_public, \
     (SELECT private_key FROM signing_keys WHERE active = 1 AND retired_at IS NULL \
      ORDER BY created_at DESC LIMIT 1) AS key_sealed";

/// The active signing key as [`ACTIVE_KEY_COLUMNS`] read it.
#[derive(sqlx::FromRow)]
pub(crate) struct ActiveKey {
    key_kid: Option<String>,
    key_public: Option<String>,
    key_sealed: Option<String>,
}

impl Licentia {
    /// The signing key `read` names, opened once per process while its row is unchanged (a key
    /// that stops being active is dropped from memory here as in [`Licentia::key_ring`]); the
    /// first start, with no key yet, makes one.
    pub(crate) async fn signing_key_read(&self, read: ActiveKey) -> Result<(String, SigningKey)> {
        let (Some(kid), Some(public), Some(sealed)) =
            (read.key_kid, read.key_public, read.key_sealed)
        else {
            return self.signing_key().await;
        };
        let mut cache = self.key_cache.lock()?;
        for (other, entry) in cache.iter_mut() {
            if *other != kid {
                entry.signing = None;
            }
        }
        let entry = cached(&mut cache, &kid, &public, &sealed)?;
        let key = self.opened(entry, &kid)?;
        Ok((kid, key))
    }
}

/// A stored public key, decoded.
fn public_key(kid: &str, text: &str) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Internal(format!("public key {kid} is malformed")))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| Error::Internal(format!("public key {kid} is invalid")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_master_key() {
        let master = MasterKey::random();
        let secret = [9u8; 32];
        let sealed = master.seal("kid-1", &secret).expect("seal");
        assert!(sealed.starts_with(SEALED_V2), "{sealed}");
        assert_eq!(master.open("kid-1", &sealed).expect("open"), secret);
        assert!(MasterKey::random().open("kid-1", &sealed).is_err());
        // Moved to another key's row, it does not open.
        assert!(master.open("kid-2", &sealed).is_err());
        // A key sealed before ids were bound (no prefix, no associated data) still opens.
        let cipher = ChaCha20Poly1305::new(Key::from_slice(master.bytes()));
        let nonce = [7u8; 12];
        let legacy = cipher
            .encrypt(Nonce::from_slice(&nonce), secret.as_slice())
            .expect("enc");
        let legacy = STANDARD.encode([nonce.as_slice(), &legacy].concat());
        assert_eq!(master.open("any", &legacy).expect("legacy"), secret);
        assert!(!format!("{master:?}").contains(&master.to_base64()));
        assert_eq!(
            MasterKey::from_base64(&master.to_base64())
                .expect("b64")
                .to_base64(),
            master.to_base64()
        );
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_master() {
        let master = MasterKey::random();
        assert_eq!(master.derive("serials"), master.derive("serials"));
        assert_ne!(master.derive("serials"), master.derive("tokens"));
        assert_ne!(
            master.derive("serials"),
            MasterKey::random().derive("serials")
        );
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("licentia-master-{}", std::process::id()));
        let path = dir.join("sub").join("master.key");
        let _ = std::fs::remove_dir_all(&dir);
        let a = MasterKey::load_or_create(&path).expect("create");
        let b = MasterKey::load_or_create(&path).expect("load");
        assert_eq!(a.to_base64(), b.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
