//! Activation codes and the offline exchange. An activation code is a JWS in compact serialisation,
//! signed with EdDSA (Ed25519) and naming its key with `kid`, so any JOSE library can verify it
//! against the server's JWKS. Its claims say which licence is bound to which machine, with which
//! features, counters and dates. Request codes carry an offline activation request to the portal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// How long past its `next` validation time a code still passes offline checks. The server
/// counts on it too: a licence removed without its machine frees only once that machine's code
/// can no longer pass offline.
pub const VALIDATION_GRACE_SECS: i64 = 14 * 86_400;

/// The `typ` of an activation code's protected header.
pub const CODE_TYPE: &str = "licentia-activation+jwt";

/// What an activation code says. Standard JWT claims (`iss`, `sub`, `iat`, `nbf`, `exp`) are used
/// where they fit, so generic libraries check the dates too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Claims {
    /// The server that issued the code (its public URL).
    pub iss: String,
    /// The licence key.
    pub sub: String,
    /// Licence id.
    pub lic: i64,
    /// Activation id.
    pub act: i64,
    /// Product code.
    pub prd: String,
    /// The machine's fingerprint: already a salted hash (see [`fingerprint`]).
    pub fp: String,
    pub host: String,
    /// Enabled features.
    pub feat: Vec<String>,
    /// Custom counters.
    pub cnt: BTreeMap<String, i64>,
    /// First and last valid day ("YYYY-MM-DD", UTC) of a limited licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Unix seconds: issued at; valid from; valid until (end of the last day), if limited.
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Unix seconds by which the application should validate again.
    pub next: i64,
    /// The nonce of the offline request this code answers, if it answers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Header {
    alg: String,
    kid: String,
    typ: String,
}

/// One public key as published in the JWKS (RFC 8037 OKP key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub kid: String,
    pub x: String,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl Jwk {
    pub fn ed25519(kid: &str, key: &VerifyingKey) -> Self {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            kid: kid.into(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            use_: Some("sig".into()),
            alg: Some("EdDSA".into()),
        }
    }

    fn verifying_key(&self) -> Option<VerifyingKey> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return None;
        }
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(&self.x).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok()
    }
}

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("the activation code is malformed")]
    Malformed,
    #[error("the activation code was signed with an unknown key ({0})")]
    UnknownKey(String),
    #[error(
        "the activation code's signature is not valid: it was altered or not issued by this server"
    )]
    BadSignature,
    #[error("the activation code is for product {found}, not {expected}")]
    WrongProduct { expected: String, found: String },
    #[error("the activation code belongs to another machine")]
    WrongMachine,
    #[error("the licence is not valid before {0}")]
    NotYetValid(String),
    #[error("the licence expired on {0}")]
    Expired(String),
}

/// Signs `claims` into a compact JWS with the Ed25519 key `kid`.
pub fn sign(claims: &Claims, kid: &str, key: &SigningKey) -> String {
    sign_jws(CODE_TYPE, claims, kid, key)
}

/// Checks the signature against the key the code names in `keys`, and returns the claims. Dates,
/// product and machine are checked by [`check`].
pub fn verify_signature(code: &str, keys: &JwkSet) -> Result<Claims, CodeError> {
    verify_jws(CODE_TYPE, code, keys)
}

/// Signs `payload` into a compact JWS whose header says `typ`, with the Ed25519 key `kid`.
pub fn sign_jws<T: Serialize>(typ: &str, payload: &T, kid: &str, key: &SigningKey) -> String {
    let header = Header {
        alg: "EdDSA".into(),
        kid: kid.into(),
        typ: typ.into(),
    };
    // Serialising these plain structs cannot fail.
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap_or_default());
    let signing_input = format!("{h}.{c}");
    let sig = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// The header of a compact JWS, unverified.
fn header_of(jws: &str) -> Result<(Header, [&str; 3]), CodeError> {
    let mut parts = jws.trim().split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CodeError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| CodeError::Malformed)?;
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| CodeError::Malformed)?;
    Ok((header, [h, c, s]))
}

/// The key a compact JWS names (`kid`), before any check of its signature.
pub fn key_id(jws: &str) -> Option<String> {
    header_of(jws).ok().map(|(header, _)| header.kid)
}

/// Verifies a compact JWS of type `typ` against the key it names in `keys` and returns its
/// payload. A JWS of another type (another kind of token signed by the same keys) is refused.
pub fn verify_jws<T: DeserializeOwned>(
    typ: &str,
    jws: &str,
    keys: &JwkSet,
) -> Result<T, CodeError> {
    let (header, [h, c, s]) = header_of(jws)?;
    if header.alg != "EdDSA" || header.typ != typ {
        return Err(CodeError::Malformed);
    }
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| CodeError::Malformed);
    let jwk = keys
        .keys
        .iter()
        .find(|k| k.kid == header.kid)
        .ok_or_else(|| CodeError::UnknownKey(header.kid.clone()))?;
    let key = jwk.verifying_key().ok_or(CodeError::Malformed)?;
    let sig_bytes: [u8; 64] = decode(s)?.try_into().map_err(|_| CodeError::BadSignature)?;
    let sig = Signature::from_bytes(&sig_bytes);
    key.verify_strict(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| CodeError::BadSignature)?;
    serde_json::from_slice(&decode(c)?).map_err(|_| CodeError::Malformed)
}

/// Checks what a verified code says against this machine and time.
pub fn check(claims: &Claims, product: &str, fingerprint: &str, now: i64) -> Result<(), CodeError> {
    if claims.prd != product {
        return Err(CodeError::WrongProduct {
            expected: product.into(),
            found: claims.prd.clone(),
        });
    }
    if claims.fp != fingerprint {
        return Err(CodeError::WrongMachine);
    }
    if claims.nbf.is_some_and(|nbf| now < nbf) {
        return Err(CodeError::NotYetValid(
            claims.start.clone().unwrap_or_default(),
        ));
    }
    if claims.exp.is_some_and(|exp| now >= exp) {
        return Err(CodeError::Expired(claims.end.clone().unwrap_or_default()));
    }
    Ok(())
}

/// A machine's fingerprint for one product: a hash of the machine's identity salted with the
/// product code, so the same machine looks different to different products and the identity
/// itself never leaves the machine. 64 lower-case hex digits.
pub fn fingerprint(product_code: &str, machine_identity: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"licentia-fingerprint-v1\0");
    h.update(product_code.as_bytes());
    h.update(b"\0");
    h.update(machine_identity.trim().as_bytes());
    hex(&h.finalize())
}

/// Whether `s` has the shape of a fingerprint.
pub fn is_fingerprint(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An offline activation request, made on the machine and pasted into the portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Request {
    /// Product code.
    pub prd: String,
    /// Licence key.
    pub key: String,
    pub fp: String,
    pub host: String,
    /// Random, chosen by the machine; the response must carry it back.
    pub nonce: String,
    /// Unix seconds when the request was made.
    pub t: i64,
}

/// What an offline request code asks for, shown before anyone answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSummary {
    pub product: String,
    /// The licence key, or the serial number of a web licence.
    pub licence: String,
    pub by_serial: bool,
    /// The machine's name as it gave it.
    pub host: String,
    /// When the machine made the request (Unix seconds, its own clock).
    pub requested_at: i64,
    /// Where the licence stands now, and what answering will do, in a sentence.
    pub state: String,
}

const REQUEST_PREFIX: &str = "LRQ1-";
const REMOVAL_PREFIX: &str = "LRM1-";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("this is not a Licentia {what} (it should start with {prefix})")]
    NotOne {
        what: &'static str,
        prefix: &'static str,
    },
    #[error("the {0} is damaged: check that it was copied whole")]
    Damaged(&'static str),
}

/// `prefix` + base64url(JSON) + "-" + 8 hex digits of its SHA-256, so a code cut short or
/// mistyped in transit is caught before anything else.
pub(crate) fn encode_text<T: Serialize>(prefix: &str, value: &T) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default());
    let check = &hex(&Sha256::digest(body.as_bytes()))[..8];
    format!("{prefix}{body}-{check}")
}

pub(crate) fn decode_text<T: DeserializeOwned>(
    prefix: &'static str,
    what: &'static str,
    code: &str,
) -> Result<T, RequestError> {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let rest = compact
        .strip_prefix(prefix)
        .ok_or(RequestError::NotOne { what, prefix })?;
    let (body, check) = rest.rsplit_once('-').ok_or(RequestError::Damaged(what))?;
    if hex(&Sha256::digest(body.as_bytes()))[..8] != *check {
        return Err(RequestError::Damaged(what));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| RequestError::Damaged(what))?;
    serde_json::from_slice(&bytes).map_err(|_| RequestError::Damaged(what))
}

impl Request {
    pub fn encode(&self) -> String {
        encode_text(REQUEST_PREFIX, self)
    }

    pub fn decode(code: &str) -> Result<Self, RequestError> {
        decode_text(REQUEST_PREFIX, "request code", code)
    }
}

/// A machine's word that it gave up its licence (offline transfer): made by the client library,
/// which deletes its code first, and pasted into the portal, which frees the licence at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalCode {
    /// Product code.
    pub prd: String,
    /// The licence key, or the serial number of a web licence.
    pub key: String,
    /// The activation the machine held (`act` of its code).
    pub act: i64,
    pub fp: String,
    pub host: String,
    /// Unix seconds when the machine gave the licence up (its own clock).
    pub t: i64,
    /// `code_digest` of the activation code it gave up: only the latest code frees at once.
    pub code: String,
}

/// SHA-256 of an activation code as the server records it (hex): what a removal shows to
/// prove it gives up the latest code.
pub fn code_digest(code: &str) -> String {
    hex(&Sha256::digest(code.trim().as_bytes()))
}

impl RemovalCode {
    pub fn encode(&self) -> String {
        encode_text(REMOVAL_PREFIX, self)
    }

    pub fn decode(code: &str) -> Result<Self, RequestError> {
        decode_text(REMOVAL_PREFIX, "removal code", code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn claims() -> Claims {
        Claims {
            iss: "http://127.0.0.1:3000".into(),
            sub: "LIC-ABCD".into(),
            lic: 1,
            act: 2,
            prd: "CALC".into(),
            fp: fingerprint("CALC", "machine-1"),
            host: "ws-1".into(),
            feat: vec!["print".into()],
            cnt: BTreeMap::from([("seats".into(), 3)]),
            start: Some("2026-01-09".into()),
            end: Some("2026-02-09".into()),
            iat: 1_768_000_000,
            nbf: Some(1_767_916_800),
            exp: Some(1_770_681_600),
            next: 1_768_600_000,
            req: None,
        }
    }

    fn jwks() -> JwkSet {
        JwkSet {
            keys: vec![Jwk::ed25519("k1", &key().verifying_key())],
        }
    }

    #[test]
    fn signed_codes_verify_and_check() {
        let code = sign(&claims(), "k1", &key());
        let got = verify_signature(&code, &jwks()).expect("verifies");
        assert_eq!(got, claims());
        assert_eq!(check(&got, "CALC", &claims().fp, 1_768_000_000), Ok(()));
        assert!(matches!(
            check(&got, "OTHER", &claims().fp, 1_768_000_000),
            Err(CodeError::WrongProduct { .. })
        ));
        assert_eq!(
            check(
                &got,
                "CALC",
                &fingerprint("CALC", "machine-2"),
                1_768_000_000
            ),
            Err(CodeError::WrongMachine)
        );
        assert_eq!(
            check(&got, "CALC", &claims().fp, 1_770_681_600),
            Err(CodeError::Expired("2026-02-09".into()))
        );
        assert_eq!(
            check(&got, "CALC", &claims().fp, 1_767_916_799),
            Err(CodeError::NotYetValid("2026-01-09".into()))
        );
    }

    #[test]
    fn unknown_keys_and_garbage_are_refused() {
        let code = sign(&claims(), "k2", &key());
        assert_eq!(
            verify_signature(&code, &jwks()),
            Err(CodeError::UnknownKey("k2".into()))
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert_eq!(
                verify_signature(bad, &jwks()),
                Err(CodeError::Malformed),
                "{bad}"
            );
        }
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let forged = sign(&claims(), "k1", &other);
        assert_eq!(
            verify_signature(&forged, &jwks()),
            Err(CodeError::BadSignature)
        );
    }

    proptest! {
        #[test]
        fn any_changed_byte_is_refused(pos in 0usize..400, byte in 0u8..=255) {
            let code = sign(&claims(), "k1", &key());
            let mut bytes = code.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(altered) = String::from_utf8(bytes) {
                // Base64url has a few spellings of the same final bits; those decode to the same
                // bytes and are the same code. Anything that decodes differently must fail.
                if let Ok(c) = verify_signature(&altered, &jwks()) {
                    prop_assert_eq!(c, claims());
                    let norm = |s: &str| s.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).ok()).collect::<Vec<_>>();
                    prop_assert_eq!(norm(&altered), norm(&code));
                }
            }
        }
    }

    #[test]
    fn fingerprints_are_salted_per_product() {
        let a = fingerprint("CALC", "machine-1");
        assert!(is_fingerprint(&a));
        assert_ne!(a, fingerprint("DRAW", "machine-1"));
        assert_eq!(a, fingerprint("CALC", " machine-1\n"));
        assert!(!is_fingerprint("xyz"));
    }

    #[test]
    fn request_codes_round_trip_and_catch_damage() {
        let r = Request {
            prd: "CALC".into(),
            key: "LIC-ABCD".into(),
            fp: fingerprint("CALC", "m"),
            host: "ws".into(),
            nonce: "n1".into(),
            t: 5,
        };
        let code = r.encode();
        assert_eq!(Request::decode(&code), Ok(r.clone()));
        let wrapped: String = code
            .chars()
            .collect::<Vec<_>>()
            .chunks(40)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(Request::decode(&wrapped), Ok(r));
        assert_eq!(
            Request::decode("hello"),
            Err(RequestError::NotOne {
                what: "request code",
                prefix: "LRQ1-"
            })
        );
        let mut damaged = code.clone();
        damaged.replace_range(10..11, if &code[10..11] == "A" { "B" } else { "A" });
        let damaged_error = Err(RequestError::Damaged("request code"));
        assert_eq!(Request::decode(&damaged), damaged_error);
        assert_eq!(Request::decode(&code[..code.len() - 3]), damaged_error);
    }

    #[test]
    fn removal_codes_round_trip_and_are_not_requests() {
        let removal = RemovalCode {
            prd: "CALC".into(),
            key: "LIC-ABCD".into(),
            act: 7,
            fp: fingerprint("CALC", "machine-1"),
            host: "ws-1".into(),
            t: 1_768_000_000,
            code: code_digest("a.b.c"),
        };
        let code = removal.encode();
        assert!(code.starts_with("LRM1-"), "{code}");
        assert_eq!(RemovalCode::decode(&code), Ok(removal));
        assert!(Request::decode(&code).is_err());
        let r = Request {
            prd: "CALC".into(),
            key: "LIC-ABCD".into(),
            fp: fingerprint("CALC", "machine-1"),
            host: "ws-1".into(),
            nonce: "n".into(),
            t: 1,
        };
        assert_eq!(
            RemovalCode::decode(&r.encode()),
            Err(RequestError::NotOne {
                what: "removal code",
                prefix: "LRM1-"
            })
        );
    }
}
