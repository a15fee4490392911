//! Site licence servers: a customer's own server, loaded with the floating licences it bought.
//! The vendor's Activation Center issues the site an *entitlement*, a JWS signed with the same
//! keys as activation codes (its own `typ`), bound to the site server's fingerprint: the pool
//! keys it may serve (the fields a vendor types for a pool key, DSLS's among them), the bundles,
//! when it was issued and the date it must be refreshed by. Each entitlement the vendor issues
//! for a site carries a higher sequence number, so a site never takes back an older one (one
//! with seats since taken away, say). Past its refresh-by date a site grants no new seats;
//! seats already out run to their lease or borrow end.
//!
//! A site without a connection to the vendor links and refreshes by code exchange (the seeds'
//! activation by mail or string): its link request code is pasted into the vendor's portal and
//! answered with the entitlement itself. Moving to new hardware, a site gives its entitlement up
//! with an unlink code, which frees its binding in the vendor's portal.

use crate::activation::{
    decode_text, encode_text, sign_jws, verify_jws, CodeError, JwkSet, RequestError,
};
use crate::floating::{Bundle, PoolKeyInput};
use serde::{Deserialize, Serialize};

/// The `typ` of an entitlement's protected header.
pub const ENTITLEMENT_TYPE: &str = "licentia-entitlement+jwt";

/// Days a site may work without a refresh unless the vendor says otherwise (DSLS's offline
/// extraction limit is of this order).
pub const DEFAULT_REFRESH_DAYS: i64 = 30;

/// The most days a vendor may let a site go without a refresh.
pub const MAX_REFRESH_DAYS: i64 = 365;

/// What an entitlement says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementClaims {
    /// The vendor's Activation Center that issued it.
    pub iss: String,
    /// The site, as the vendor numbers it.
    pub site: i64,
    /// The licence key or serial number the site was linked with.
    pub sub: String,
    /// The client the seats belong to (its name, for the site's own portal).
    pub client: String,
    /// The site server's fingerprint, and its host name when it linked.
    pub fp: String,
    pub host: String,
    /// The pool keys the site serves.
    pub keys: Vec<PoolKeyInput>,
    /// Features that come with others.
    #[serde(default)]
    pub bundles: Vec<Bundle>,
    /// Raised at every entitlement the vendor issues for this site.
    pub seq: i64,
    /// Unix seconds: issued at, and when the site stops granting new seats without a refresh.
    pub iat: i64,
    pub refresh_by: i64,
}

/// Why a site grants no new seats now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lapsed {
    #[error(
        "this site's licences had to be refreshed with the vendor by {}: connect the site \
         server to the vendor (server site refresh), or refresh it by code exchange",
        crate::time::format_utc(*.0)
    )]
    RefreshOverdue(i64),
}

/// Why a site refuses an entitlement offered to replace the one it has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotNewer {
    #[error("the entitlement is for another site or another machine")]
    OtherSite,
    #[error(
        "the entitlement is older than the one this site has (number {offered}, it has {held})"
    )]
    Older { offered: i64, held: i64 },
}

impl EntitlementClaims {
    /// Whether the site may grant new seats at `now`: until its refresh-by time.
    pub fn may_grant(&self, now: i64) -> Result<(), Lapsed> {
        if now < self.refresh_by {
            Ok(())
        } else {
            Err(Lapsed::RefreshOverdue(self.refresh_by))
        }
    }

    /// Whether this entitlement may replace `held`: the same issuer, site and machine, and a
    /// later number (an older one, replayed, might hold seats the vendor has taken away).
    pub fn replaces(&self, held: &EntitlementClaims) -> Result<(), NotNewer> {
        if self.iss != held.iss || self.site != held.site || self.fp != held.fp {
            return Err(NotNewer::OtherSite);
        }
        if self.seq <= held.seq {
            return Err(NotNewer::Older {
                offered: self.seq,
                held: held.seq,
            });
        }
        Ok(())
    }
}

const LINK_REQUEST_PREFIX: &str = "LSQ1-";
const UNLINK_PREFIX: &str = "LSX1-";

/// A site server's request to be linked (or refreshed): sent to `POST /api/v1/sites/link`
/// online, or, without a connection to the vendor, made by `server site link --offline`,
/// pasted into the vendor's portal and answered with the entitlement itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkRequest {
    /// The licence key or serial number the site links with.
    pub key: String,
    pub fp: String,
    pub host: String,
    /// Random, chosen by the site; the entitlement answering it must be numbered after
    /// `held` (0: none yet), so an answer to an older request is refused.
    pub nonce: String,
    pub held: i64,
    /// Unix seconds when the request was made (the site's clock).
    pub t: i64,
}

impl LinkRequest {
    pub fn encode(&self) -> String {
        encode_text(LINK_REQUEST_PREFIX, self)
    }

    pub fn decode(code: &str) -> Result<Self, RequestError> {
        decode_text(LINK_REQUEST_PREFIX, "site link request", code)
    }
}

/// A site server's word that it gave its entitlement up (the transfer to new hardware): made by
/// `server site unlink`, which deletes the entitlement first, and sent to
/// `POST /api/v1/sites/unlink` or, offline, pasted into the vendor's portal, which frees the
/// site's binding with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlinkCode {
    /// The licence key the site was linked with.
    pub key: String,
    pub site: i64,
    pub fp: String,
    pub host: String,
    /// The number of the entitlement given up: only the latest frees the binding.
    pub seq: i64,
    /// Unix seconds when the site gave it up (its own clock).
    pub t: i64,
}

impl UnlinkCode {
    pub fn encode(&self) -> String {
        encode_text(UNLINK_PREFIX, self)
    }

    pub fn decode(code: &str) -> Result<Self, RequestError> {
        decode_text(UNLINK_PREFIX, "site unlink code", code)
    }
}

/// The vendor's answer to a link or refresh: the entitlement (a compact JWS) and, for reading,
/// what it says (the site trusts only the signed copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementAnswer {
    pub entitlement: String,
    pub claims: EntitlementClaims,
}

/// A site server as the vendor's portal and API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SiteView {
    pub id: i64,
    pub licence_id: i64,
    /// The licence key it linked with (masked for a caller who does not see keys whole).
    pub licence_key: String,
    pub client_id: i64,
    pub client_name: String,
    pub product_code: String,
    pub fingerprint: String,
    pub hostname: String,
    /// `online` or `code` (its request pasted in the portal).
    pub channel: String,
    pub linked_at: i64,
    /// The last entitlement issued: its number, when, and its refresh-by time.
    pub seq: i64,
    pub issued_at: i64,
    pub refresh_by: i64,
    pub last_contact_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: String,
    /// Set once it no longer holds the licence: unlinked with its word, or freed by the vendor.
    pub unlinked_at: Option<i64>,
    /// Freed without its word: its entitlement may grant until then.
    pub frees_at: Option<i64>,
}

/// When an entitlement issued at `now` must be refreshed by, for a vendor's period of `days`
/// (clamped to 1..=[`MAX_REFRESH_DAYS`]).
pub fn refresh_by(now: i64, days: i64) -> i64 {
    now + days.clamp(1, MAX_REFRESH_DAYS) * crate::borrow::DAY_SECS
}

/// Signs an entitlement with the Ed25519 key `kid`.
pub fn sign(claims: &EntitlementClaims, kid: &str, key: &ed25519_dalek::SigningKey) -> String {
    sign_jws(ENTITLEMENT_TYPE, claims, kid, key)
}

/// Verifies an entitlement against the key it names in `keys` (an activation code or any other
/// token signed by the same keys is refused).
pub fn verify(jws: &str, keys: &JwkSet) -> Result<EntitlementClaims, CodeError> {
    verify_jws(ENTITLEMENT_TYPE, jws, keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Jwk;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    fn claims(seq: i64) -> EntitlementClaims {
        EntitlementClaims {
            iss: "https://licences.vendor.test".into(),
            site: 7,
            sub: "KEY-1".into(),
            client: "Acme".into(),
            fp: "f".repeat(64),
            host: "lic-server".into(),
            keys: vec![PoolKeyInput {
                editor: "Vendor".into(),
                feature: "CAD".into(),
                model: "ConcurrentUser".into(),
                quantity: 5,
                ..Default::default()
            }],
            bundles: vec![],
            seq,
            iat: 1_000_000,
            refresh_by: refresh_by(1_000_000, DEFAULT_REFRESH_DAYS),
        }
    }

    #[test]
    fn a_site_grants_until_its_refresh_by_time_and_then_says_what_to_do() {
        let c = claims(1);
        assert_eq!(c.refresh_by, 1_000_000 + 30 * 86_400);
        assert_eq!(c.may_grant(c.refresh_by - 1), Ok(()));
        let lapsed = c.may_grant(c.refresh_by).expect_err("lapsed");
        assert!(
            lapsed.to_string().contains("server site refresh"),
            "{lapsed}"
        );
    }

    #[test]
    fn the_period_is_one_day_to_a_year() {
        assert_eq!(refresh_by(0, 0), 86_400);
        assert_eq!(refresh_by(0, -5), 86_400);
        assert_eq!(refresh_by(0, 10_000), 365 * 86_400);
    }

    #[test]
    fn only_a_newer_entitlement_of_the_same_site_and_machine_replaces_one() {
        let held = claims(3);
        assert_eq!(claims(4).replaces(&held), Ok(()));
        assert_eq!(
            claims(3).replaces(&held),
            Err(NotNewer::Older {
                offered: 3,
                held: 3
            })
        );
        assert!(matches!(
            claims(2).replaces(&held),
            Err(NotNewer::Older { .. })
        ));
        for change in [
            |c: &mut EntitlementClaims| c.site = 8,
            |c: &mut EntitlementClaims| c.fp = "e".repeat(64),
            |c: &mut EntitlementClaims| c.iss = "https://elsewhere.test".into(),
        ] {
            let mut other = claims(9);
            change(&mut other);
            assert_eq!(other.replaces(&held), Err(NotNewer::OtherSite));
        }
    }

    #[test]
    fn an_entitlement_verifies_as_itself_and_as_nothing_else() {
        let key = SigningKey::from_bytes(&[5u8; 32]);
        let keys = JwkSet {
            keys: vec![Jwk::ed25519("k1", &key.verifying_key())],
        };
        let jws = sign(&claims(1), "k1", &key);
        assert_eq!(verify(&jws, &keys), Ok(claims(1)));
        // An activation code signed by the same key is not an entitlement, nor the reverse.
        let as_code: Result<crate::activation::Claims, _> =
            crate::activation::verify_signature(&jws, &keys);
        assert_eq!(as_code, Err(CodeError::Malformed));
        for typ in [
            crate::activation::CODE_TYPE,
            crate::borrow::BORROW_TYPE,
            crate::trust::KEYS_TYPE,
        ] {
            let other = sign_jws(typ, &claims(1), "k1", &key);
            assert_eq!(verify(&other, &keys), Err(CodeError::Malformed), "{typ}");
        }
        // A key the set does not hold (withdrawn, or never the vendor's) verifies nothing.
        let stranger = SigningKey::from_bytes(&[6u8; 32]);
        assert_eq!(
            verify(&sign(&claims(1), "k2", &stranger), &keys),
            Err(CodeError::UnknownKey("k2".into()))
        );
        let mut tampered: Vec<&str> = jws.split('.').collect();
        let other = sign(&claims(2), "k1", &key);
        tampered[1] = other.split('.').nth(1).unwrap_or_default();
        assert_eq!(
            verify(&tampered.join("."), &keys),
            Err(CodeError::BadSignature)
        );
    }

    #[test]
    fn codes_travel_as_text_and_are_told_apart() {
        let request = LinkRequest {
            key: "KEY-1".into(),
            fp: "f".repeat(64),
            host: "lic-server".into(),
            nonce: "n1".into(),
            held: 0,
            t: 1_000,
        };
        let text = request.encode();
        assert!(text.starts_with("LSQ1-"));
        // Wrapped by a mail client, it still reads.
        let wrapped: String = text
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i % 40 == 39).then_some('\n').into_iter().chain([c]))
            .collect();
        assert_eq!(LinkRequest::decode(&wrapped), Ok(request));
        let unlink = UnlinkCode {
            key: "KEY-1".into(),
            site: 7,
            fp: "f".repeat(64),
            host: "lic-server".into(),
            seq: 3,
            t: 2_000,
        };
        assert_eq!(UnlinkCode::decode(&unlink.encode()), Ok(unlink.clone()));
        assert!(matches!(
            LinkRequest::decode(&unlink.encode()),
            Err(RequestError::NotOne { .. })
        ));
        let mut cut = text.clone();
        cut.truncate(text.len() - 3);
        assert!(matches!(
            LinkRequest::decode(&cut),
            Err(RequestError::Damaged(_))
        ));
    }

    #[test]
    fn every_offline_code_has_a_prefix_of_its_own() {
        let prefixes = [
            "LRQ1-",
            "LRM1-",
            "LBQ1-",
            "LBT1-",
            LINK_REQUEST_PREFIX,
            UNLINK_PREFIX,
        ];
        let mut unique = prefixes.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), prefixes.len());
        // An activation request pasted where a site's is expected is named for what it is not.
        let request = crate::activation::Request {
            prd: "CALC".into(),
            key: "KEY-1".into(),
            fp: "f".repeat(64),
            host: "ws".into(),
            nonce: "n".into(),
            t: 1,
        };
        let refused = LinkRequest::decode(&request.encode()).expect_err("not a site's");
        assert!(
            refused.to_string().contains("site link request"),
            "{refused}"
        );
        assert!(crate::activation::Request::decode(&request.encode()).is_ok());
    }

    proptest! {
        /// Of two entitlements of one site and machine, at most one replaces the other, and the
        /// one with the higher number does.
        #[test]
        fn replacing_is_a_strict_order(a in 0i64..100, b in 0i64..100) {
            let (x, y) = (claims(a), claims(b));
            let both = x.replaces(&y).is_ok() && y.replaces(&x).is_ok();
            prop_assert!(!both);
            prop_assert_eq!(x.replaces(&y).is_ok(), a > b);
        }

        /// Granting ends once and for all: a site that may grant at a moment may at every
        /// earlier one, and the period is what the vendor set, within its bounds.
        #[test]
        fn granting_ends_once(days in -5i64..400, t1 in 0i64..40_000_000, t2 in 0i64..40_000_000) {
            let mut c = claims(1);
            c.refresh_by = refresh_by(c.iat, days);
            let (early, late) = (c.iat + t1.min(t2), c.iat + t1.max(t2));
            if c.may_grant(late).is_ok() {
                prop_assert!(c.may_grant(early).is_ok());
            }
            prop_assert_eq!(c.refresh_by - c.iat, days.clamp(1, MAX_REFRESH_DAYS) * 86_400);
        }
    }
}
