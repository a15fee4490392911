//! The audit log as the portal and the API show it: who did what, when, from where, and for
//! licence terms what they were before and after. Entries are only ever added.

use serde::{Deserialize, Serialize};

/// What an entry records. Stored and filtered by its code (`licence.edit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditAction {
    #[serde(rename = "sign-in")]
    SignIn,
    #[serde(rename = "sign-in.failed")]
    SignInFailed,
    #[serde(rename = "sign-in.locked")]
    SignInLocked,
    #[serde(rename = "session.end")]
    SessionEnd,
    #[serde(rename = "admin.setup")]
    AdminSetup,
    #[serde(rename = "admin.create")]
    AdminCreate,
    #[serde(rename = "password.change")]
    PasswordChange,
    #[serde(rename = "password.reset")]
    PasswordReset,
    #[serde(rename = "second-factor.on")]
    SecondFactorOn,
    #[serde(rename = "second-factor.off")]
    SecondFactorOff,
    #[serde(rename = "recovery-codes.replace")]
    RecoveryCodesReplace,
    #[serde(rename = "token.create")]
    TokenCreate,
    #[serde(rename = "token.revoke")]
    TokenRevoke,
    #[serde(rename = "secret.reveal")]
    SecretReveal,
    #[serde(rename = "client.create")]
    ClientCreate,
    #[serde(rename = "client.update")]
    ClientUpdate,
    #[serde(rename = "client.delete")]
    ClientDelete,
    #[serde(rename = "user.create")]
    UserCreate,
    #[serde(rename = "user.delete")]
    UserDelete,
    #[serde(rename = "user.invite")]
    UserInvite,
    #[serde(rename = "user.invite-accept")]
    InvitationAccept,
    #[serde(rename = "password.reset-link")]
    PasswordResetLink,
    #[serde(rename = "product.create")]
    ProductCreate,
    #[serde(rename = "product.update")]
    ProductUpdate,
    #[serde(rename = "product.delete")]
    ProductDelete,
    #[serde(rename = "order.create")]
    OrderCreate,
    #[serde(rename = "order.update")]
    OrderUpdate,
    #[serde(rename = "order.delete")]
    OrderDelete,
    #[serde(rename = "licence.edit")]
    LicenceEdit,
    #[serde(rename = "licence.free")]
    LicenceFree,
    #[serde(rename = "activation.create")]
    ActivationCreate,
    #[serde(rename = "activation.remove")]
    ActivationRemove,
    #[serde(rename = "site.link")]
    SiteLink,
    #[serde(rename = "site.refresh")]
    SiteRefresh,
    #[serde(rename = "site.revoke")]
    SiteRevoke,
    #[serde(rename = "site.unlink")]
    SiteUnlink,
    #[serde(rename = "site.free")]
    SiteFree,
    #[serde(rename = "serials.generate")]
    SerialsGenerate,
    #[serde(rename = "serials.export")]
    SerialsExport,
    #[serde(rename = "serial.reissue")]
    SerialReissue,
    #[serde(rename = "pool.create")]
    PoolCreate,
    #[serde(rename = "pool.delete")]
    PoolDelete,
    #[serde(rename = "pool.key.replace")]
    PoolKeyReplace,
    #[serde(rename = "pool.checkout-cap")]
    PoolCheckoutCap,
    #[serde(rename = "pool.silent-seats")]
    PoolSilentSeats,
    #[serde(rename = "pool.feature-key.add")]
    PoolFeatureKeyAdd,
    #[serde(rename = "pool.feature-key.delete")]
    PoolFeatureKeyDelete,
    #[serde(rename = "pool.bundle.add")]
    PoolBundleAdd,
    #[serde(rename = "pool.bundle.remove")]
    PoolBundleRemove,
    #[serde(rename = "pool.access-rule.add")]
    PoolAccessRuleAdd,
    #[serde(rename = "pool.access-rule.remove")]
    PoolAccessRuleRemove,
    #[serde(rename = "pool.access-group.save")]
    PoolAccessGroupSave,
    #[serde(rename = "pool.access-group.remove")]
    PoolAccessGroupRemove,
    /// A user went past a casual key's monthly maximum (the server logs it once per month).
    #[serde(rename = "pool.casual-overuse")]
    PoolCasualOveruse,
    #[serde(rename = "webhook.create")]
    WebhookCreate,
    #[serde(rename = "webhook.remove")]
    WebhookRemove,
    #[serde(rename = "seat.disconnect")]
    SeatDisconnect,
    #[serde(rename = "mobile.set")]
    MobileSet,
    #[serde(rename = "borrow.start")]
    BorrowStart,
    #[serde(rename = "borrow.answer")]
    BorrowAnswer,
    #[serde(rename = "borrow.extend")]
    BorrowExtend,
    #[serde(rename = "borrow.return")]
    BorrowReturn,
    #[serde(rename = "signing-key.rotate")]
    SigningKeyRotate,
    #[serde(rename = "signing-key.retire")]
    SigningKeyRetire,
}

impl AuditAction {
    /// Every action, in the order the portal's filter lists them.
    pub const ALL: [AuditAction; 64] = [
        Self::SignIn,
        Self::SignInFailed,
        Self::SignInLocked,
        Self::SessionEnd,
        Self::AdminSetup,
        Self::AdminCreate,
        Self::PasswordChange,
        Self::PasswordReset,
        Self::SecondFactorOn,
        Self::SecondFactorOff,
        Self::RecoveryCodesReplace,
        Self::TokenCreate,
        Self::TokenRevoke,
        Self::SecretReveal,
        Self::ClientCreate,
        Self::ClientUpdate,
        Self::ClientDelete,
        Self::UserCreate,
        Self::UserDelete,
        Self::UserInvite,
        Self::InvitationAccept,
        Self::PasswordResetLink,
        Self::ProductCreate,
        Self::ProductUpdate,
        Self::ProductDelete,
        Self::OrderCreate,
        Self::OrderUpdate,
        Self::OrderDelete,
        Self::LicenceEdit,
        Self::LicenceFree,
        Self::ActivationCreate,
        Self::ActivationRemove,
        Self::SerialsGenerate,
        Self::SerialsExport,
        Self::SerialReissue,
        Self::PoolCreate,
        Self::PoolDelete,
        Self::PoolKeyReplace,
        Self::PoolCheckoutCap,
        Self::PoolSilentSeats,
        Self::PoolFeatureKeyAdd,
        Self::PoolFeatureKeyDelete,
        Self::PoolBundleAdd,
        Self::PoolBundleRemove,
        Self::PoolAccessRuleAdd,
        Self::PoolAccessRuleRemove,
        Self::PoolAccessGroupSave,
        Self::PoolAccessGroupRemove,
        Self::PoolCasualOveruse,
        Self::WebhookCreate,
        Self::WebhookRemove,
        Self::SeatDisconnect,
        Self::MobileSet,
        Self::BorrowStart,
        Self::BorrowAnswer,
        Self::BorrowExtend,
        Self::BorrowReturn,
        Self::SigningKeyRotate,
        Self::SigningKeyRetire,
        Self::SiteLink,
        Self::SiteRefresh,
        Self::SiteRevoke,
        Self::SiteUnlink,
        Self::SiteFree,
    ];

    /// The code stored and used in filters, e.g. `licence.edit`.
    pub fn code(self) -> &'static str {
        match self {
            Self::SignIn => "sign-in",
            Self::SignInFailed => "sign-in.failed",
            Self::SignInLocked => "sign-in.locked",
            Self::SessionEnd => "session.end",
            Self::AdminSetup => "admin.setup",
            Self::AdminCreate => "admin.create",
            Self::PasswordChange => "password.change",
            Self::PasswordReset => "password.reset",
            Self::SecondFactorOn => "second-factor.on",
            Self::SecondFactorOff => "second-factor.off",
            Self::RecoveryCodesReplace => "recovery-codes.replace",
            Self::TokenCreate => "token.create",
            Self::TokenRevoke => "token.revoke",
            Self::SecretReveal => "secret.reveal",
            Self::ClientCreate => "client.create",
            Self::ClientUpdate => "client.update",
            Self::ClientDelete => "client.delete",
            Self::UserCreate => "user.create",
            Self::UserDelete => "user.delete",
            Self::UserInvite => "user.invite",
            Self::InvitationAccept => "user.invite-accept",
            Self::PasswordResetLink => "password.reset-link",
            Self::ProductCreate => "product.create",
            Self::ProductUpdate => "product.update",
            Self::ProductDelete => "product.delete",
            Self::OrderCreate => "order.create",
            Self::OrderUpdate => "order.update",
            Self::OrderDelete => "order.delete",
            Self::LicenceEdit => "licence.edit",
            Self::LicenceFree => "licence.free",
            Self::ActivationCreate => "activation.create",
            Self::ActivationRemove => "activation.remove",
            Self::SiteLink => "site.link",
            Self::SiteRefresh => "site.refresh",
            Self::SiteRevoke => "site.revoke",
            Self::SiteUnlink => "site.unlink",
            Self::SiteFree => "site.free",
            Self::SerialsGenerate => "serials.generate",
            Self::SerialsExport => "serials.export",
            Self::SerialReissue => "serial.reissue",
            Self::PoolCreate => "pool.create",
            Self::PoolDelete => "pool.delete",
            Self::PoolKeyReplace => "pool.key.replace",
            Self::PoolCheckoutCap => "pool.checkout-cap",
            Self::PoolSilentSeats => "pool.silent-seats",
            Self::PoolFeatureKeyAdd => "pool.feature-key.add",
            Self::PoolFeatureKeyDelete => "pool.feature-key.delete",
            Self::PoolBundleAdd => "pool.bundle.add",
            Self::PoolBundleRemove => "pool.bundle.remove",
            Self::PoolAccessRuleAdd => "pool.access-rule.add",
            Self::PoolAccessRuleRemove => "pool.access-rule.remove",
            Self::PoolAccessGroupSave => "pool.access-group.save",
            Self::PoolAccessGroupRemove => "pool.access-group.remove",
            Self::PoolCasualOveruse => "pool.casual-overuse",
            Self::WebhookCreate => "webhook.create",
            Self::WebhookRemove => "webhook.remove",
            Self::SeatDisconnect => "seat.disconnect",
            Self::MobileSet => "mobile.set",
            Self::BorrowStart => "borrow.start",
            Self::BorrowAnswer => "borrow.answer",
            Self::BorrowExtend => "borrow.extend",
            Self::BorrowReturn => "borrow.return",
            Self::SigningKeyRotate => "signing-key.rotate",
            Self::SigningKeyRetire => "signing-key.retire",
        }
    }

    /// The action named by `code`, if there is one.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The browser portal.
    Portal,
    /// The management API (with an API token) or the application API.
    Api,
    /// The server's admin command line.
    Cli,
    /// The server itself (a background job).
    Server,
}

impl Channel {
    pub fn code(self) -> &'static str {
        match self {
            Self::Portal => "portal",
            Self::Api => "api",
            Self::Cli => "cli",
            Self::Server => "server",
        }
    }

    pub fn from_code(code: &str) -> Self {
        match code {
            "portal" => Self::Portal,
            "api" => Self::Api,
            "cli" => Self::Cli,
            _ => Self::Server,
        }
    }
}

/// One field of a change: what it was and what it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// The fields whose value differs between `before` and `after` (the same fields in the same
/// order on both sides).
pub fn changed_fields(before: &[(&str, String)], after: &[(&str, String)]) -> Vec<FieldChange> {
    before
        .iter()
        .zip(after)
        .filter(|((_, b), (_, a))| a != b)
        .map(|((field, b), (_, a))| FieldChange {
            field: (*field).to_owned(),
            before: b.clone(),
            after: a.clone(),
        })
        .collect()
}

/// How a value reads in a change: text as it is, a list joined with commas, nothing as "none".
fn shown(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "none".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        Value::Object(map) if map.is_empty() => "none".to_owned(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", shown(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The fields of two serialised records (JSON objects) that differ, before → after, by field
/// name. The fields named in `opened` hold records of their own, compared
/// field by field (`settings.limited`).
pub fn record_changes(
    before: &serde_json::Value,
    after: &serde_json::Value,
    opened: &[&str],
) -> Vec<FieldChange> {
    let flat = |record: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        if let serde_json::Value::Object(map) = record {
            for (k, v) in map {
                match v {
                    serde_json::Value::Object(inner) if opened.contains(&k.as_str()) => out.extend(
                        inner
                            .iter()
                            .map(|(ik, iv)| (format!("{k}.{ik}"), iv.clone())),
                    ),
                    _ => out.push((k.clone(), v.clone())),
                }
            }
        }
        out
    };
    let before = flat(before);
    flat(after)
        .into_iter()
        .filter_map(|(field, after)| {
            let before = before
                .iter()
                .find(|(f, _)| *f == field)
                .map_or(serde_json::Value::Null, |(_, v)| v.clone());
            (before != after).then(|| FieldChange {
                field,
                before: shown(&before),
                after: shown(&after),
            })
        })
        .collect()
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The user who acted (none: an application, the CLI or the server itself).
    pub actor_id: Option<i64>,
    /// Who acted, as they were named then: an e-mail address (with the API token used, if any),
    /// "application", "admin CLI (…)" or "server".
    pub actor: String,
    pub channel: Channel,
    /// The caller's network address, when there was one.
    pub address: Option<String>,
    /// The action's code, e.g. `licence.edit` (see `AuditAction`).
    pub action: String,
    /// What was acted on, e.g. `licence 12 (ACME-…)`.
    pub subject: String,
    /// The client the entry belongs to (its users may read it), if any.
    pub client_id: Option<i64>,
    /// A sentence about the change, when the subject alone does not say it.
    pub detail: String,
    /// Fields changed, before → after.
    pub changes: Vec<FieldChange>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; none when this is the last.
    pub next_before: Option<i64>,
}

/// Which entries to list. Every filter is optional; text filters match a part, ignoring case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuditQuery {
    /// An action code, e.g. `licence.edit`, or a prefix ending in a dot (`pool.`).
    pub action: Option<String>,
    /// Part of who acted.
    pub actor: Option<String>,
    /// Part of what was acted on.
    pub subject: Option<String>,
    /// Only one client's entries (administrators).
    pub client_id: Option<i64>,
    /// Entries on or after this day (YYYY-MM-DD, UTC).
    pub from: Option<String>,
    /// Entries on or before this day (YYYY-MM-DD, UTC).
    pub to: Option<String>,
    /// Entries older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// How many entries (1–500, default 100).
    pub limit: Option<i64>,
}

impl AuditQuery {
    /// The filters (not the page) as a URL query string, for the CSV download's link.
    pub fn filter_query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let texts = [
            ("action", &self.action),
            ("actor", &self.actor),
            ("subject", &self.subject),
            ("from", &self.from),
            ("to", &self.to),
        ];
        for (name, value) in texts {
            if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                pairs.push((name, v.to_owned()));
            }
        }
        if let Some(c) = self.client_id {
            pairs.push(("client_id", c.to_string()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `text` with every byte but the unreserved ones (RFC 3986) percent-encoded.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_code_reads_back_as_itself() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::from_code(a.code()), Some(a));
            let json = serde_json::to_string(&a).expect("serialises");
            assert_eq!(json, format!("\"{}\"", a.code()));
        }
        let mut codes: Vec<_> = AuditAction::ALL.iter().map(|a| a.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), AuditAction::ALL.len(), "codes are unique");
        assert_eq!(AuditAction::from_code("licence.burn"), None);
    }

    #[test]
    fn only_fields_that_differ_are_changes() {
        let before = [("features", "a".to_owned()), ("expires", "none".to_owned())];
        let after = [
            ("features", "a, b".to_owned()),
            ("expires", "none".to_owned()),
        ];
        assert_eq!(
            changed_fields(&before, &after),
            vec![FieldChange {
                field: "features".into(),
                before: "a".into(),
                after: "a, b".into()
            }]
        );
        assert!(changed_fields(&before, &before).is_empty());
    }

    #[test]
    fn records_compare_field_by_field() {
        let before = serde_json::json!({
            "id": 3, "name": "Pro", "features": ["a"], "counters": {},
            "settings": {"limited": false, "validity_days": null}
        });
        let after = serde_json::json!({
            "id": 3, "name": "Pro", "features": ["a", "b"], "counters": {"users": 5},
            "settings": {"limited": true, "validity_days": 30}
        });
        let changes = record_changes(&before, &after, &["settings"]);
        let read: Vec<_> = changes
            .iter()
            .map(|c| format!("{}: {} -> {}", c.field, c.before, c.after))
            .collect();
        assert_eq!(
            read,
            [
                "counters: none -> users=5",
                "features: a -> a, b",
                "settings.limited: false -> true",
                "settings.validity_days: none -> 30"
            ]
        );
        assert!(record_changes(&after, &after, &["settings"]).is_empty());
    }

    #[test]
    fn filters_make_a_query_string_that_says_the_same() {
        let q = AuditQuery {
            action: Some("licence.edit".into()),
            actor: Some(" ada@vendor.test ".into()),
            subject: Some("a&b=c é".into()),
            from: Some(String::new()),
            before: Some(10),
            ..AuditQuery::default()
        };
        assert_eq!(
            q.filter_query(),
            "action=licence.edit&actor=ada%40vendor.test&subject=a%26b%3Dc%20%C3%A9"
        );
        assert_eq!(AuditQuery::default().filter_query(), "");
    }
}
