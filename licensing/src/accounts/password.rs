//! Password hashing with Argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! always off the async runtime. Unknown users are checked against a dummy hash so that the time a
//! sign-in takes does not tell whether the account exists.

use crate::{Error, Result};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use protocol::input::{InputError, Password};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Argon2id at 19 MiB, 2 passes, 1 lane.
fn params() -> Result<Params> {
    Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))
}

/// Runs `f` with Argon2 working memory of `blocks` blocks. The memory is kept and reused: at
/// most one set per hashing slot ever exists, so however many sign-ins come, the server holds
/// a fixed few times 19 MiB for hashing (left to the allocator, each thread that ever hashed
/// could keep its own 19 MiB).
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    static SPARE: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
    let spare = SPARE.lock().ok().and_then(|mut s| s.pop());
    let mut memory = match spare {
        Some(m) if m.len() >= blocks => m,
        _ => vec![Block::default(); blocks],
    };
    let out = f(&mut memory[..blocks]);
    if let Ok(mut s) = SPARE.lock() {
        s.push(memory);
    }
    out
}

fn internal(what: &str) -> impl Fn(argon2::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {e}"))
}

fn hash_blocking(password: &str) -> Result<String> {
    let params = params()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| Error::Internal(format!("a new salt: {e}")))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
    })
    .map_err(internal("hashing a password"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| Error::Internal(format!("a hash: {e}")))?),
    };
    Ok(phc.to_string())
}

fn verify_blocking(password: &str, hash: &str) -> Result<bool> {
    let malformed = |e: argon2::password_hash::Error| {
        Error::Internal(format!("stored password hash is malformed: {e}"))
    };
    let parsed = PasswordHash::new(hash).map_err(malformed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(malformed)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| Error::Internal(format!("stored password hash is malformed: {e}")))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(malformed)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(Error::Internal(
            "stored password hash has no salt or hash".into(),
        ));
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(malformed)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
    })
    .map_err(internal("checking a password"))?;
    // `Output` compares in constant time.
    Ok(Output::new(&out).map_err(malformed)? == expected)
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

/// Whether a new password is one of the common ones (or as easy to guess): the check behind
/// every new password. Uses zxcvbn's bundled lists (about 30,000 common passwords, names and
/// words) and patterns; a password it reckons fewer than a million guesses away is refused.
/// The person's own e-mail address and name count as known words.
fn too_common(password: &Password, known: &[&str]) -> bool {
    // Long passwords are not common; zxcvbn's work grows with the length.
    let text: String = password.expose().chars().take(64).collect();
    let estimate = zxcvbn::zxcvbn(&text, known);
    (estimate.score() as u8) < 2
}

/// A password someone is choosing: long enough (`Password::parse_new`) and not a common one.
/// `known`: their e-mail address and name, which a password must not be built on.
pub fn choose(raw: &str, known: &[&str]) -> Result<Password> {
    let password = Password::parse_new(raw)?;
    if too_common(&password, known) {
        return Err(InputError::new(
            "password",
            "This password is too common or too easy to guess. Choose another: a few unrelated \
             words make a strong one.",
        )
        .into());
    }
    Ok(password)
}

/// Hashes a new password into a PHC string.
pub async fn hash(password: &Password) -> Result<String> {
    let password = password.expose().to_owned();
    blocking(move || hash_blocking(&password)).await
}

/// What an account invited and not yet arrived holds instead of a password hash: nothing any
/// password matches (`verify`).
pub(crate) const NOT_SET: &str = "";

/// Checks `password` against `stored`; with no stored hash (unknown user, or one whose password
/// is `NOT_SET`) it spends the same time and answers `false`.
pub async fn verify(password: &Password, stored: Option<String>) -> Result<bool> {
    let password = password.expose().to_owned();
    let stored = stored.filter(|hash| hash != NOT_SET);
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

    #[test]
    fn hashes_read_both_ways_with_the_standard_phc_encoding() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_blocking("correct horse battery").expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let standard = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            params().expect("params"),
        );
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(standard
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(standard.verify_password(b"wrong", &parsed).is_err());
        // Hashes stored before (made by the crate's own hasher) still verify, right and wrong.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = standard
            .hash_password(b"correct horse battery", &salt)
            .expect("hash")
            .to_string();
        assert_eq!(
            verify_blocking("correct horse battery", &theirs).ok(),
            Some(true)
        );
        assert_eq!(
            verify_blocking("correct horse batterz", &theirs).ok(),
            Some(false)
        );
        assert_eq!(
            verify_blocking("correct horse battery", &ours).ok(),
            Some(true)
        );
        assert!(verify_blocking("x", "not a hash").is_err());
    }

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

    fn pw(s: &str) -> Password {
        Password::parse_new(s).expect("long enough")
    }

    #[test]
    fn common_passwords_are_refused_and_passphrases_are_not() {
        for common in [
            "password1234",
            "123456789012",
            "qwertyuiop12",
            "passwordpassword",
            "iloveyou1234",
            "aaaaaaaaaaaa",
            "abcdefghijkl",
        ] {
            assert!(too_common(&pw(common), &[]), "{common}");
        }
        assert!(too_common(&pw("ada@vendor.test1"), &["ada@vendor.test"]));
        for fine in [
            "correct horse battery staple",
            "client password 123",
            "globex password 1",
            "another long password",
            "a long cli password",
            "Tr0ub4dor&3-plus-more",
        ] {
            assert!(!too_common(&pw(fine), &[]), "{fine}");
        }
    }
}
