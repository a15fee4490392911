//! A floating pool's access rules (DSLS's authorization rules, FlexNet's INCLUDE, EXCLUDE and
//! RESERVE): who may take seats of which feature, and seats kept for someone. The rules and their
//! judgement are plain functions here; the server applies them as the key selection's first
//! filter, at every heartbeat (a user or machine blocked now loses its seats at its next one),
//! and in *Explain*.
//!
//! A rule is about one feature or every feature, and names one subject: a user, a host, or a
//! named group of users or of hosts. Judgement, for a user on a host asking for a feature:
//!
//! 1. a **deny** rule that names them refuses, whatever else is allowed;
//! 2. if any **allow** rule is about the feature (its own or every feature's), only those an
//!    allow rule names may take it;
//! 3. a **reserve** rule keeps its number of seats of the feature for its subject: seats the
//!    subject's own sessions do not hold are kept free of everyone else. It never takes a seat
//!    from anyone who holds one (like FlexNet's RESERVE), it only keeps freed ones.
//!
//! Names compare without regard to case or surrounding spaces: `ALICE` is `alice`. User and host
//! names are what the application reports: rules keep honest people within the office's policy;
//! they do not authenticate anyone (the pool key does that).

use serde::{Deserialize, Serialize};

use crate::input::{optional_form_number, optional_form_text, text_line, InputError};

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Only those allow rules name may use the feature.
    Allow,
    /// Its subject may not use the feature.
    Deny,
    /// A number of seats of the feature kept for its subject.
    Reserve,
}

impl Effect {
    pub const ALL: [Effect; 3] = [Effect::Allow, Effect::Deny, Effect::Reserve];

    pub fn code(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::Reserve => "reserve",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }
}

/// Whom a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    User,
    Host,
    /// A named group of the pool's (of users or of hosts).
    Group,
}

impl SubjectKind {
    pub const ALL: [SubjectKind; 3] = [SubjectKind::User, SubjectKind::Host, SubjectKind::Group];

    pub fn code(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::Host => "host",
            SubjectKind::Group => "group",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// What a group's members are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// User names (FlexNet's GROUP).
    User,
    /// Host names (FlexNet's HOST_GROUP).
    Host,
}

impl GroupKind {
    pub fn code(self) -> &'static str {
        match self {
            GroupKind::User => "user",
            GroupKind::Host => "host",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "user" => Some(GroupKind::User),
            "host" => Some(GroupKind::Host),
            _ => None,
        }
    }
}

/// One access rule of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessRule {
    pub id: i64,
    /// The feature it is about; `null`: every feature of the pool.
    pub feature: Option<String>,
    pub effect: Effect,
    pub subject_kind: SubjectKind,
    /// A user name, a host name or a group's name.
    pub subject: String,
    /// Seats kept (reserve rules only).
    pub seats: Option<i64>,
    /// Why the rule exists, for the next person who reads it.
    pub note: String,
    pub created_at: i64,
}

impl AccessRule {
    /// The rule in words, naming it: `rule 4 (deny user alice, every feature)`.
    pub fn describe(&self) -> String {
        let what = match (self.effect, self.seats) {
            (Effect::Reserve, Some(n)) => {
                format!("reserve {n} seat{} for", if n == 1 { "" } else { "s" })
            }
            (effect, _) => effect.code().to_owned(),
        };
        let feature = match &self.feature {
            Some(f) => format!("feature {f}"),
            None => "every feature".to_owned(),
        };
        format!(
            "rule {} ({what} {} {}, {feature})",
            self.id,
            self.subject_kind.code(),
            self.subject
        )
    }

    fn about(&self, feature: &str) -> bool {
        self.feature.as_deref().is_none_or(|f| f == feature)
    }
}

/// A named group of users or of hosts that rules can name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessGroup {
    pub name: String,
    pub kind: GroupKind,
    pub members: Vec<String>,
}

/// A pool's rules and groups: what its owner edits and what a checkout is judged by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolAccess {
    pub rules: Vec<AccessRule>,
    pub groups: Vec<AccessGroup>,
}

/// Asker asks for a seat (or holds one), as the application reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker<'a> {
    pub user: &'a str,
    pub host: &'a str,
}

/// A live seat of a feature: who holds it and how much of the key it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub user: String,
    pub host: String,
    pub amount: i64,
}

/// Why the allow and deny rules refuse someone a feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Barred<'r> {
    /// A deny rule names them.
    Denied(&'r AccessRule),
    /// Allow rules are about the feature, and none names them.
    NotAllowed(Vec<&'r AccessRule>),
}

impl Barred<'_> {
    /// Why, in a few words that name the rule(s): for *Explain* and a lost seat's reason.
    pub fn reason(&self) -> String {
        match self {
            Barred::Denied(rule) => format!("denied by access {}", rule.describe()),
            Barred::NotAllowed(rules) => {
                format!(
                    "not named by the access rules that allow it ({})",
                    rule_ids(rules)
                )
            }
        }
    }

    /// The refusal of a checkout, for the person at the application.
    pub fn message(&self, feature: &str, who: Asker<'_>) -> String {
        let (user, host) = (who.user, who.host);
        match self {
            Barred::Denied(rule) => format!(
                "Access {} of this pool refuses feature {feature} to user {user} on {host}. \
                 Ask the pool's owner if this is a mistake.",
                rule.describe()
            ),
            Barred::NotAllowed(rules) => format!(
                "Feature {feature} of this pool is only for those its access rules allow ({}); \
                 user {user} on {host} is not one of them. Ask the pool's owner.",
                rule_ids(rules)
            ),
        }
    }
}

/// The allow rules a refusal names, by id only: whom they allow is not told to whoever holds the
/// pool key (names are self-reported: the list would say which to claim).
fn rule_ids(rules: &[&AccessRule]) -> String {
    const SHOWN: usize = 5;
    let ids: Vec<String> = rules.iter().take(SHOWN).map(|r| r.id.to_string()).collect();
    let more = rules.len().saturating_sub(SHOWN);
    let (word, list) = (
        if rules.len() == 1 { "rule" } else { "rules" },
        ids.join(", "),
    );
    match more {
        0 => format!("{word} {list}"),
        n => format!("{word} {list} and {n} more"),
    }
}

/// Names as rules compare them: trimmed, without regard to case, and blind to the invisible
/// characters (zero-width spaces and joiners, soft hyphens, byte-order marks) that would let
/// `alice` pass a rule about `alice` by looking the same.
pub fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    let folded = |s: &str| -> String {
        s.chars()
            .filter(|c| !invisible(*c))
            .flat_map(char::to_lowercase)
            .collect()
    };
    folded(a).trim() == folded(b).trim()
}

/// Characters that print as nothing.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

impl PoolAccess {
    pub fn group(&self, name: &str) -> Option<&AccessGroup> {
        self.groups.iter().find(|g| same_name(&g.name, name))
    }

    /// Whether `rule` names `who` (a group of users by the user, of hosts by the host).
    pub fn names(&self, rule: &AccessRule, who: Asker<'_>) -> bool {
        match rule.subject_kind {
            SubjectKind::User => same_name(&rule.subject, who.user),
            SubjectKind::Host => same_name(&rule.subject, who.host),
            SubjectKind::Group => self.group(&rule.subject).is_some_and(|g| {
                let name = match g.kind {
                    GroupKind::User => who.user,
                    GroupKind::Host => who.host,
                };
                g.members.iter().any(|m| same_name(m, name))
            }),
        }
    }

    /// The allow and deny rules' verdict on `who` taking `feature`: `None` when they let them.
    pub fn barred(&self, feature: &str, who: Asker<'_>) -> Option<Barred<'_>> {
        let about = |effect| {
            self.rules
                .iter()
                .filter(move |r| r.effect == effect && r.about(feature))
        };
        if let Some(rule) = about(Effect::Deny).find(|r| self.names(r, who)) {
            return Some(Barred::Denied(rule));
        }
        let allows: Vec<&AccessRule> = about(Effect::Allow).collect();
        if allows.is_empty() || allows.iter().any(|r| self.names(r, who)) {
            return None;
        }
        Some(Barred::NotAllowed(allows))
    }

    /// Why the allow and deny rules refuse `who` a seat of `feature` or of a feature that comes
    /// with it (`bundled`), if they do: the rule's reason, naming the bundled feature.
    pub fn barred_with(&self, feature: &str, bundled: &[String], who: Asker<'_>) -> Option<String> {
        self.barred(feature, who).map(|b| b.reason()).or_else(|| {
            bundled.iter().find_map(|f| {
                self.barred(f, who)
                    .map(|b| format!("{} (feature {f} comes with {feature})", b.reason()))
            })
        })
    }

    /// Whether any reserve rule is about `feature` (only then are its holders worth reading).
    pub fn reserves(&self, feature: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.effect == Effect::Reserve && r.about(feature))
    }

    /// The reserve rule that keeps `needed` more of `feature` from `who`, if one does: `free` is
    /// what the feature's usable keys have left before this checkout, `holders` its live seats.
    /// Each reservation `who` is not named by keeps back its seats less what its subject holds;
    /// a rule is answered only when the free seats would serve `who` but for the reservations.
    pub fn reserved_against(
        &self,
        feature: &str,
        who: Asker<'_>,
        free: i64,
        needed: i64,
        holders: &[Holder],
    ) -> Option<&AccessRule> {
        let mut kept = 0i64;
        let mut first = None;
        for rule in self
            .rules
            .iter()
            .filter(|r| r.effect == Effect::Reserve && r.about(feature))
            .filter(|r| !self.names(r, who))
        {
            let held: i64 = holders
                .iter()
                .filter(|h| {
                    self.names(
                        rule,
                        Asker {
                            user: &h.user,
                            host: &h.host,
                        },
                    )
                })
                .map(|h| h.amount)
                .sum();
            let outstanding = (rule.seats.unwrap_or(0) - held).max(0);
            if outstanding > 0 {
                kept = kept.saturating_add(outstanding);
                first.get_or_insert(rule);
            }
        }
        // (Too few free seats for anyone is not a reservation's doing.)
        let needed = needed.max(1);
        (free >= needed && free.saturating_sub(kept) < needed)
            .then_some(first)
            .flatten()
    }
}

/// The most rules and groups a pool keeps, and the most members of a group.
pub const MAX_RULES: usize = 500;
pub const MAX_GROUPS: usize = 200;
pub const MAX_MEMBERS: usize = 1000;

/// A new rule, as the owner sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessRuleInput {
    /// The feature it is about; omitted, `null` or empty: every feature.
    #[serde(default)]
    pub feature: Option<String>,
    pub effect: Effect,
    pub subject_kind: SubjectKind,
    /// A user name, a host name, or the name of one of the pool's groups.
    pub subject: String,
    /// Seats to keep (reserve rules: 1 to 100000; other rules: none).
    #[serde(default)]
    pub seats: Option<i64>,
    #[serde(default)]
    pub note: String,
}

impl AccessRuleInput {
    /// The input trimmed and checked (whether a named group exists is the server's to check).
    pub fn checked(self) -> Result<AccessRuleInput, InputError> {
        let feature = match self.feature.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(text_line(
                "feature",
                f,
                1..=100,
                "The feature must be 1 to 100 printable characters, or empty for every feature.",
            )?),
        };
        let subject = text_line(
            "subject",
            &self.subject,
            1..=255,
            &format!(
                "The {} name must be 1 to 255 printable characters.",
                self.subject_kind.code()
            ),
        )?;
        let seats = match (self.effect, self.seats) {
            (Effect::Reserve, Some(n)) if (1..=100_000).contains(&n) => Some(n),
            (Effect::Reserve, _) => {
                return Err(InputError::new(
                    "seats",
                    "A reserve rule keeps 1 to 100000 seats: say how many.",
                ))
            }
            (_, None) => None,
            (effect, Some(_)) => {
                return Err(InputError::new(
                    "seats",
                    format!(
                        "Only a reserve rule keeps seats; leave the number empty for an {} rule.",
                        effect.code()
                    ),
                ))
            }
        };
        let note = text_line(
            "note",
            &self.note,
            0..=200,
            "The note must be at most 200 printable characters on one line.",
        )?;
        Ok(AccessRuleInput {
            feature,
            effect: self.effect,
            subject_kind: self.subject_kind,
            subject,
            seats,
            note,
        })
    }
}

/// A group's name, checked: what rules name it by.
pub fn group_name(raw: &str) -> Result<String, InputError> {
    text_line(
        "name",
        raw,
        1..=64,
        "A group's name must be 1 to 64 printable characters.",
    )
}

/// A group as the owner sends it (its name is in the path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessGroupInput {
    pub kind: GroupKind,
    /// User or host names, 1 to 1000 of them.
    pub members: Vec<String>,
}

impl AccessGroupInput {
    /// The members trimmed, checked, each once (names that differ only in case are one).
    pub fn checked(self) -> Result<AccessGroupInput, InputError> {
        let mut members: Vec<String> = Vec::new();
        for raw in &self.members {
            if raw.trim().is_empty() {
                continue;
            }
            let name = text_line(
                "members",
                raw,
                1..=255,
                "Each member must be a name of 1 to 255 printable characters.",
            )?;
            if !members.iter().any(|m| same_name(m, &name)) {
                members.push(name);
            }
        }
        if members.is_empty() || members.len() > MAX_MEMBERS {
            return Err(InputError::new(
                "members",
                format!("A group has 1 to {MAX_MEMBERS} members, one name per line."),
            ));
        }
        Ok(AccessGroupInput {
            kind: self.kind,
            members,
        })
    }
}

/// Members as the portal's text box holds them: one per line (commas also separate).
pub fn members_of(text: &str) -> Vec<String> {
    text.split(['\n', ','])
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// A new rule as the portal's form sends it: text, checked into an [`AccessRuleInput`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessRuleForm {
    /// Empty: every feature.
    pub feature: String,
    pub effect: String,
    pub subject_kind: String,
    pub subject: String,
    pub seats: String,
    pub note: String,
}

impl AccessRuleForm {
    pub fn input(self) -> Result<AccessRuleInput, InputError> {
        let effect = Effect::parse(self.effect.trim())
            .ok_or_else(|| InputError::new("effect", "Choose allow, deny or reserve."))?;
        let subject_kind = SubjectKind::parse(self.subject_kind.trim())
            .ok_or_else(|| InputError::new("subject_kind", "Choose a user, a host or a group."))?;
        AccessRuleInput {
            feature: optional_form_text(&self.feature),
            effect,
            subject_kind,
            subject: self.subject,
            seats: optional_form_number("seats", "The number of seats", &self.seats)?,
            note: self.note,
        }
        .checked()
    }
}

/// A group as the portal's form sends it: its members one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessGroupForm {
    pub name: String,
    pub kind: String,
    pub members: String,
}

impl AccessGroupForm {
    /// The group's name and members, checked.
    pub fn input(self) -> Result<(String, AccessGroupInput), InputError> {
        let kind = GroupKind::parse(self.kind.trim())
            .ok_or_else(|| InputError::new("kind", "Choose a group of users or of hosts."))?;
        let input = AccessGroupInput {
            kind,
            members: members_of(&self.members),
        }
        .checked()?;
        Ok((group_name(&self.name)?, input))
    }
}

#[cfg(test)]
mod tests;
