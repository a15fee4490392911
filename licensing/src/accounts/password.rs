//! Password hashing with Argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! always off the async runtime. Unknown users are checked against a dummy hash so that the time a
//! sign-in takes does not tell whether the account exists.

use crate::{Error, Result};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use protocol::input::Password;
use std::sync::OnceLock;

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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
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
