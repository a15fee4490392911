//! Random secrets handed to people (session cookies, setup links) and how they are stored: only a
//! SHA-256 digest reaches the database, so a copy of it grants nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, base64url without padding: 43 characters.
pub(crate) const TOKEN_LEN: usize = 43;

pub(crate) fn generate() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` could be a token we issued; anything else is refused before touching the database.
pub(crate) fn well_formed(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn digest(token: &str) -> String {
    let hash = Sha256::digest(token.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(well_formed(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn garbage_is_not_well_formed() {
        for bad in [
            "",
            "abc",
            "' OR 1=1 --",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
        ] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }
}
