//! Trust anchored in the application. The vendor's server holds a long-lived *root* key; the
//! application pins its public half at build time. The server publishes its signing keys (the
//! ones that sign activation codes) as an *endorsement*: a JWS of the key set signed with the
//! root key. The client trusts a signing key only when an endorsement it has verified against the
//! pinned root lists it, so keys rotate without shipping the application again, and nothing
//! written into the client's state file or answered by an unverified server can add a key.

use crate::activation::{sign_jws, verify_jws, CodeError, JwkSet};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// The `typ` of an endorsement's protected header.
pub const KEYS_TYPE: &str = "licentia-keys+jwt";

/// What an endorsement says: these signing keys are the vendor's, as of `iat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    /// The server that published it (its public URL).
    pub iss: String,
    /// Unix seconds: when it was made.
    pub iat: i64,
    /// The signing keys that verify activation codes (retired keys are left out).
    pub keys: JwkSet,
    /// Signing keys the vendor withdrew: a client that has seen this endorsement refuses their
    /// codes even offline.
    #[serde(default)]
    pub retired: Vec<String>,
}

/// Signs an endorsement with the root key `root_kid`.
pub fn endorse(endorsement: &Endorsement, root_kid: &str, root: &SigningKey) -> String {
    sign_jws(KEYS_TYPE, endorsement, root_kid, root)
}

/// Verifies an endorsement against the pinned root keys and returns what it says.
pub fn verify_endorsement(jws: &str, roots: &JwkSet) -> Result<Endorsement, CodeError> {
    verify_jws(KEYS_TYPE, jws, roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Jwk;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn set(kid: &str, seed: u8) -> JwkSet {
        JwkSet {
            keys: vec![Jwk::ed25519(kid, &key(seed).verifying_key())],
        }
    }

    fn endorsement() -> Endorsement {
        Endorsement {
            iss: "https://lic.example".into(),
            iat: 1_768_000_000,
            keys: set("k1", 2),
            retired: vec!["k0".into()],
        }
    }

    #[test]
    fn an_endorsement_verifies_against_its_root_only() {
        let jws = endorse(&endorsement(), "root", &key(1));
        assert_eq!(verify_endorsement(&jws, &set("root", 1)), Ok(endorsement()));
        // Another root with the same name: the signature fails.
        assert_eq!(
            verify_endorsement(&jws, &set("root", 9)),
            Err(CodeError::BadSignature)
        );
        // A signing key cannot endorse: it is not a root.
        let forged = endorse(&endorsement(), "k1", &key(2));
        assert!(matches!(
            verify_endorsement(&forged, &set("root", 1)),
            Err(CodeError::UnknownKey(_))
        ));
    }

    #[test]
    fn tokens_of_one_kind_do_not_pass_as_another() {
        // An endorsement signed by a key that also verifies codes is still not a code, and a code
        // is not an endorsement.
        let jws = endorse(&endorsement(), "k1", &key(2));
        assert_eq!(
            crate::activation::verify_signature(&jws, &set("k1", 2)),
            Err(CodeError::Malformed)
        );
        let code = sign_jws(
            crate::activation::CODE_TYPE,
            &endorsement(),
            "root",
            &key(1),
        );
        assert_eq!(
            verify_endorsement(&code, &set("root", 1)),
            Err(CodeError::Malformed)
        );
    }
}
