//! Floating licences as the portal, the Web API and the client library see them: pools and their
//! licence keys, seats, the usage monitor's rows and the explanation of a key choice.

use crate::input::InputError;
use serde::{Deserialize, Serialize};

/// A closed vocabulary: an enum whose values have one spelling each, parsed case-insensitively,
/// with the list of all of them (for forms and messages).
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in the vocabulary's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value `s` spells (any case, spaces around ignored).
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            }

            /// "A, B or C", for messages.
            pub fn listed() -> String {
                let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                match all.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} or {last}", rest.join(", "))
                    }
                    _ => all.join(""),
                }
            }
        }
    };
}

vocabulary! {
    /// How a floating key counts its seats (DSLS licence models).
    Model {
        /// A seat per user, host and session while in use.
        ConcurrentUser = "ConcurrentUser",
        /// A user counted once, however many machines.
        NamedUser = "NamedUser",
        /// A checkout takes the tokens it asks for.
        Token = "Token",
        /// A checkout consumes credits that do not come back.
        Credit = "Credit",
    }
}

vocabulary! {
    /// Commercial types, in the order keys are preferred.
    CommercialType {
        Std = "STD",
        Edu = "EDU",
        Demo = "DEMO",
    }
}

vocabulary! {
    /// DSLS pricing structures.
    PricingStructure {
        Plc = "PLC",
        Tbl = "TBL",
        Alc = "ALC",
        Ylc = "YLC",
        Qlc = "QLC",
    }
}

/// A floating pool: a client's, or a serial's (web / cloud-concurrent model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pool {
    pub id: i64,
    /// What tells a client's pools apart (a site, a department); may be empty.
    pub name: String,
    pub client_id: Option<i64>,
    pub serial_id: Option<i64>,
    /// The client's name, or the serial.
    pub owner: String,
    /// The pool key applications present to check out: whole only in the answer that made it
    /// (a new pool, a replaced key); elsewhere its first characters and `…` (only a digest of
    /// it is kept).
    pub access_key: String,
    /// When the key was last replaced, and until when the one before keeps working.
    #[serde(default)]
    pub key_rotated_at: Option<i64>,
    #[serde(default)]
    pub previous_key_until: Option<i64>,
    /// The most tokens (or credits) one checkout may take from the pool's Token and Credit keys;
    /// `null`: as many as a key has.
    #[serde(default)]
    pub max_tokens_per_checkout: Option<i64>,
    /// How long a seat lives without a heartbeat.
    pub lease_secs: i64,
    /// What happens to a seat whose application stops sending heartbeats.
    #[serde(default)]
    pub silent_seats: SilentSeats,
    pub keys: i64,
    pub in_use: i64,
    pub created_at: i64,
    /// The owner's switch for mobile (borrowed) licences.
    pub mobile_allowed: bool,
    /// The longest borrowing an administrator set for this pool (`null`: its serial's product
    /// decides; 0: none).
    pub max_borrow_days: Option<i64>,
    /// The longest borrowing allowed now, in days; `null` when the pool lends nothing, and
    /// `lending_off` says why.
    pub borrow_days: Option<i64>,
    pub lending_off: Option<String>,
}

impl Pool {
    /// How people call the pool: its name and owner, or the owner alone.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.owner.clone()
        } else {
            format!("{} ({})", self.name, self.owner)
        }
    }
}

/// The most one checkout may ask of a pool capped at `cap` tokens, checked: a refusal says what
/// to do.
pub fn within_checkout_cap(needed: i64, cap: Option<i64>) -> Result<(), String> {
    match cap {
        Some(cap) if needed > cap => Err(format!(
            "This pool lets one checkout take at most {cap} tokens; this one asked for {needed}. \
             Ask for fewer, or ask the pool's owner to raise the limit."
        )),
        _ => Ok(()),
    }
}

/// A cap on what one checkout may take, as the owner typed it: 1 to 1000000, or none.
pub fn checkout_cap(cap: Option<i64>) -> Result<Option<i64>, InputError> {
    match cap {
        Some(c) if !(1..=1_000_000).contains(&c) => Err(InputError::new(
            "max_tokens_per_checkout",
            "The most one checkout may take is 1 to 1000000 tokens, or empty for no limit.",
        )),
        other => Ok(other),
    }
}

/// The longest a replaced pool key may keep working: 30 days.
pub const MAX_KEY_GRACE_HOURS: i64 = 720;

/// Until when a pool key replaced at `now` keeps working, given `hours` of grace (0: it stops at
/// once).
pub fn key_grace_until(now: i64, hours: i64) -> Result<i64, InputError> {
    if !(0..=MAX_KEY_GRACE_HOURS).contains(&hours) {
        return Err(InputError::new(
            "grace_hours",
            format!("The old key may keep working 0 to {MAX_KEY_GRACE_HOURS} hours (30 days)."),
        ));
    }
    Ok(now + hours * 3600)
}

/// Checking out `feature` in the pool also takes a seat of `also_feature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bundle {
    pub feature: String,
    pub also_feature: String,
}

/// How a pool ends a seat whose application went silent (a crash, a network outage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SilentSeats {
    /// When its lease runs out, the seat comes back to the pool for others.
    #[default]
    Lease,
    /// The seat stays in use until the application comes back (its next heartbeat keeps it),
    /// releases it, or an owner frees it: work survives an outage of any length, at the price
    /// of seats held by machines that never come back.
    Held,
}

impl SilentSeats {
    pub fn code(self) -> &'static str {
        match self {
            SilentSeats::Lease => "lease",
            SilentSeats::Held => "held",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "lease" => Some(SilentSeats::Lease),
            "held" => Some(SilentSeats::Held),
            _ => None,
        }
    }

    /// In the owner's words.
    pub fn describe(self) -> &'static str {
        match self {
            SilentSeats::Lease => "given back when its lease runs out",
            SilentSeats::Held => "kept until the application comes back or is freed",
        }
    }
}

/// Who a pool belongs to: a client (which may have several) or a serial number (one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolOwner {
    Client(i64),
    Serial(i64),
}

/// A licence key of a pool, with every field the selection uses. Dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolKey {
    pub id: i64,
    pub pool_id: i64,
    #[serde(flatten)]
    pub fields: PoolKeyInput,
    pub in_use: i64,
    pub created_at: i64,
}

/// What an administrator enters for a licence key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolKeyInput {
    pub editor: String,
    pub feature: String,
    /// ConcurrentUser, NamedUser, Token or Credit.
    pub model: String,
    pub quantity: i64,
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub end_date: Option<String>,
    #[serde(default)]
    pub group_index: i64,
    /// 0: any release.
    #[serde(default)]
    pub max_release_number: i64,
    #[serde(default)]
    pub max_release_date: Option<String>,
    /// STD, EDU or DEMO.
    #[serde(default = "std_type")]
    pub commercial_type: String,
    #[serde(default)]
    pub customer_id: String,
    /// PLC, TBL, ALC, YLC, QLC, or empty.
    #[serde(default)]
    pub pricing_structure: String,
    /// Fields separated by `;`.
    #[serde(default)]
    pub additional_info: String,
    #[serde(default)]
    pub file_index: i64,
    /// Defaults to the day the key is added.
    #[serde(default)]
    pub generation_date: Option<String>,
    /// A casual NamedUser key (DSLS): each user's maximum usage per calendar month (UTC), in
    /// minutes (1–44640). Usage past it is logged and reported, not refused. None: a full key.
    #[serde(default)]
    pub casual_max_minutes: Option<i64>,
}

fn std_type() -> String {
    "STD".into()
}

/// One line of *Usage Per Feature*.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureUsage {
    pub pool_id: i64,
    /// The serial whose pool it is (then `owner` is the serial number).
    #[serde(default)]
    pub serial_id: Option<i64>,
    pub owner: String,
    pub editor: String,
    pub feature: String,
    pub commercial_type: String,
    pub in_use: i64,
    pub count: i64,
    /// Of `in_use`, how many are out on mobile licences.
    #[serde(default)]
    pub offline: i64,
    /// Checkouts of the feature refused today (UTC) for want of a seat or a fitting key (not
    /// those an access rule refused).
    #[serde(default)]
    pub refused_today: i64,
}

/// One seat in *Detailed usage*.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeatDetail {
    pub id: i64,
    pub pool_id: i64,
    pub key_id: i64,
    /// The server that granted it (its public URL).
    pub server: String,
    pub licence_type: String,
    pub editor: String,
    pub feature: String,
    pub user: String,
    pub host: String,
    pub process: String,
    pub session: String,
    pub amount: i64,
    /// When the user first got a seat of this feature on this host and session.
    pub granted_since: i64,
    pub last_used_at: i64,
    pub granted_at: i64,
    pub lease_expires_at: i64,
    pub max_release_number: i64,
    pub max_release_date: Option<String>,
    pub expiration_date: Option<String>,
    pub customer_id: String,
    pub pricing_structure: String,
    pub commercial_type: String,
    pub process_release: i64,
    /// Taken because another feature bundles it.
    pub bundled_with: Option<String>,
    /// Out on a mobile licence until then (Unix seconds): the seat works offline.
    #[serde(default)]
    pub borrowed_until: Option<i64>,
    /// A held seat whose lease ran out: not heard from since then (its last heartbeat).
    #[serde(default)]
    pub silent_since: Option<i64>,
    /// On a casual key: the user's minutes this month against the key's maximum.
    #[serde(default)]
    pub casual: Option<crate::history::CasualUse>,
}

/// Why a key would or would not serve a checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyVerdict {
    pub key: PoolKey,
    /// 1 is the key that would be granted.
    pub rank: Option<i64>,
    /// The filter that removed it.
    pub filtered_by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_pool_refuses_a_checkout_asking_more() {
        assert!(within_checkout_cap(5, Some(5)).is_ok());
        assert!(within_checkout_cap(5, None).is_ok());
        let refused = within_checkout_cap(6, Some(5)).expect_err("over");
        assert!(refused.contains("at most 5 tokens") && refused.contains("asked for 6"));
        assert_eq!(checkout_cap(None), Ok(None));
        assert_eq!(checkout_cap(Some(1)), Ok(Some(1)));
        for bad in [0, -3, 1_000_001] {
            assert!(checkout_cap(Some(bad)).is_err());
        }
    }

    #[test]
    fn a_replaced_key_works_for_the_grace_chosen_up_to_30_days() {
        assert_eq!(key_grace_until(1_000, 0), Ok(1_000));
        assert_eq!(key_grace_until(1_000, 24), Ok(1_000 + 86_400));
        assert_eq!(key_grace_until(1_000, 720), Ok(1_000 + 720 * 3600));
        for bad in [-1, 721, i64::MAX] {
            assert_eq!(
                key_grace_until(1_000, bad).map_err(|e| e.field),
                Err("grace_hours")
            );
        }
    }

    #[test]
    fn vocabularies_parse_their_own_spelling_in_any_case() {
        for m in Model::ALL {
            assert_eq!(Model::parse(&m.as_str().to_lowercase()), Some(*m));
        }
        assert_eq!(CommercialType::parse(" edu "), Some(CommercialType::Edu));
        assert_eq!(PricingStructure::parse("XLC"), None);
        assert_eq!(PricingStructure::listed(), "PLC, TBL, ALC, YLC or QLC");
        assert_eq!(
            Model::listed(),
            "ConcurrentUser, NamedUser, Token or Credit"
        );
        assert!(
            CommercialType::Std < CommercialType::Edu && CommercialType::Edu < CommercialType::Demo
        );
    }
}
