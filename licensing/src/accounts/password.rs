//! Password hashing with Argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! always off the async runtime. Unknown users are checked against a dummy hash so that the time a
//! sign-in takes does not tell whether the account exists.

use crate::{Error, Result};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use protocol::input::Password;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

fn verify_blocking(password: &str, hash: &str) -> Result<bool> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| Error::Internal(format!("stored password hash is malformed: {e}")))?;
    Ok(argon2()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

fn dummy_hash() -> Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash_blocking("not a real password: only here to spend the same time")?;
    Ok(DUMMY.get_or_init(|| h))
}

/// Argon2 work allowed at once: about the number of cores. Each hash holds 19 MiB and a thread,
/// so a burst of sign-ins (or setup attempts) waits here instead of taking the memory and the
/// blocking pool.
fn hashing_slots() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(cores.clamp(2, 16)))
    })
}

/// How long a password check waits for a slot before the caller is told to come back.
const SLOT_WAIT: Duration = Duration::from_secs(2);

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    blocking_in(hashing_slots(), SLOT_WAIT, f).await
}

/// Runs `f` on the blocking pool once one of `slots` is free; `Busy` if none frees within
/// `wait`.
async fn blocking_in<T: Send + 'static>(
    slots: &Arc<Semaphore>,
    wait: Duration,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let slot = match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        _ => {
            return Err(Error::Busy {
                retry_after_secs: 1,
            })
        }
    };
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f()
    })
    .await
    .map_err(|e| Error::Internal(format!("password task failed: {e}")))?
}

/// Hashes a new password into a PHC string.
pub async fn hash(password: &Password) -> Result<String> {
    let password = password.expose().to_owned();
    blocking(move || hash_blocking(&password)).await
}

/// Checks `password` against `stored`; with no stored hash (unknown user) it spends the same time
/// and answers `false`.
pub async fn verify(password: &Password, stored: Option<String>) -> Result<bool> {
    let password = password.expose().to_owned();
    blocking(move || match stored {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            let _ = verify_blocking(&password, dummy_hash()?);
            Ok(false)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashing_waits_for_a_slot_and_answers_busy_when_none_frees() {
        let slots = Arc::new(Semaphore::new(2));
        let wait = Duration::from_millis(200);
        let held = slots
            .clone()
            .acquire_many_owned(2)
            .await
            .expect("both slots");
        let work = || Ok(hash_blocking("a password")?.len());
        let busy = blocking_in(&slots, wait, work).await;
        assert!(
            matches!(
                busy,
                Err(Error::Busy {
                    retry_after_secs: 1
                })
            ),
            "{busy:?}"
        );
        // A slot freed while waiting is taken.
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { blocking_in(&slots, Duration::from_secs(5), work).await }
        });
        drop(held);
        assert!(waiting.await.expect("task").expect("a free slot") > 0);
        assert!(
            hashing_slots().available_permits() >= 2,
            "about one per core"
        );
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let pw = Password::parse_new("correct horse battery").expect("valid");
        let hash = hash(&pw).await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify(&pw, Some(hash.clone())).await.expect("verify"));
        let wrong = Password::for_sign_in("correct horse battery!").expect("valid");
        assert!(!verify(&wrong, Some(hash)).await.expect("verify"));
        assert!(!verify(&pw, None).await.expect("verify"));
    }
}
