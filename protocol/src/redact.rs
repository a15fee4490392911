//! What a read-only API token is shown of the secrets that act: licence keys, serial numbers,
//! machine fingerprints and pool keys are accepted by the public endpoints (to activate, remove
//! an activation, check out seats), so whoever may only read sees enough of each to recognise
//! it, never enough to use it.

use crate::catalog::{
    Activation, ActivationRow, Licence, LicenceListRow, LicencePage, Serial, SerialDetail,
};
use crate::floating::{FeatureUsage, Pool};

/// Characters of a secret kept when it is masked.
pub const SHOWN_CHARS: usize = 4;

/// `secret` cut to its first characters and an ellipsis; short or empty values become the
/// ellipsis alone (four of five characters would give it away).
pub fn mask(secret: &str) -> String {
    if secret.chars().count() <= SHOWN_CHARS * 2 {
        return "…".to_owned();
    }
    let head: String = secret.chars().take(SHOWN_CHARS).collect();
    format!("{head}…")
}

/// Whether `text` is a masked value (ends with the ellipsis `mask` adds).
pub fn is_masked(text: &str) -> bool {
    text.ends_with('…')
}

/// A value with secrets in it that can hide them.
pub trait Redact {
    fn redact(&mut self);
}

impl<T: Redact> Redact for Vec<T> {
    fn redact(&mut self) {
        self.iter_mut().for_each(Redact::redact);
    }
}

impl<T: Redact> Redact for Option<T> {
    fn redact(&mut self) {
        if let Some(v) = self {
            v.redact();
        }
    }
}

/// (A pool key is only ever seen whole in the answer that made it, which takes a read-write
/// token; a serial's pool is named by its serial, which must not show.)
impl Redact for Pool {
    fn redact(&mut self) {
        if self.serial_id.is_some() {
            self.owner = mask(&self.owner);
        }
    }
}

impl Redact for FeatureUsage {
    fn redact(&mut self) {
        if self.serial_id.is_some() {
            self.owner = mask(&self.owner);
        }
    }
}

impl Redact for Activation {
    fn redact(&mut self) {
        self.fingerprint = mask(&self.fingerprint);
        self.serial = self.serial.as_deref().map(mask);
    }
}

impl Redact for Licence {
    fn redact(&mut self) {
        self.key = mask(&self.key);
        self.activation.redact();
    }
}

impl Redact for LicencePage {
    fn redact(&mut self) {
        self.licence.redact();
        self.activations.iter_mut().for_each(Redact::redact);
        self.serial = self.serial.as_deref().map(mask);
    }
}

impl Redact for ActivationRow {
    fn redact(&mut self) {
        self.activation.redact();
        self.licence_key = mask(&self.licence_key);
    }
}

impl Redact for LicenceListRow {
    fn redact(&mut self) {
        self.licence.redact();
        self.serial = self.serial.as_deref().map(mask);
    }
}

impl Redact for Serial {
    fn redact(&mut self) {
        self.serial = mask(&self.serial);
        self.replaced_by = self.replaced_by.as_deref().map(mask);
        self.replaces = self.replaces.as_deref().map(mask);
    }
}

impl Redact for SerialDetail {
    fn redact(&mut self) {
        self.serial.redact();
        self.licences.redact();
        self.history.redact();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation;

    #[test]
    fn masking_keeps_a_recognisable_head_and_hides_the_rest() {
        assert_eq!(mask("ABCD-EFGH-JKMN-PQRS"), "ABCD…");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask(""), "…");
        assert_eq!(mask("ÄÖÜßéèêëa"), "ÄÖÜß…");
        assert!(is_masked(&mask("ABCD-EFGH-JKMN-PQRS")));
    }

    #[test]
    fn a_pool_and_a_licence_lose_every_usable_secret() {
        let mut licence = Licence {
            id: 1,
            order_id: Some(1),
            serial_id: None,
            key: "KEY1-KEY2-KEY3-KEY4".into(),
            features: vec![],
            counters: Default::default(),
            expires_on: None,
            open_ended: false,
            activation_count: 1,
            activation: Some(Activation {
                id: 1,
                licence_id: 1,
                hostname: "ws-1".into(),
                fingerprint: activation::fingerprint("P", "machine"),
                mode: "online".into(),
                activated_at: 0,
                last_validated_at: None,
                removed_at: None,
                validations: 0,
                removed_by: None,
                serial: Some("SER1-SER2-SER3-SER4".into()),
            }),
            pending_free: None,
        };
        licence.redact();
        let text = serde_json::to_string(&licence).expect("json");
        assert!(!text.contains("KEY2") && !text.contains("SER2"), "{text}");
        assert!(
            !text.contains(&activation::fingerprint("P", "machine")[4..]),
            "{text}"
        );
        assert_eq!(licence.activation.map(|a| a.hostname), Some("ws-1".into()));
    }
}
