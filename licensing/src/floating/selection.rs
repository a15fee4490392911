//! Which licence key of a floating pool serves a checkout: the filter-then-sort algorithm of the
//! DSLS licence server, as plain functions. Every key gets a verdict — the rule that filtered it
//! out, or its rank — so a choice or a refusal can always be explained.
//!
//! Filters, in order: the key is active (its start day ≤ today ≤ its end day: days are whole,
//! where the DSLS text compares instants); its group index is the highest among the active keys
//! of the same editor and feature (a newer enrolment supersedes an older one); quantity remains;
//! editor (when the client names one), feature and (when asked) model match; its max release
//! number is 0 or ≥ the client's release number; its max release date (if any) is ≥ the
//! client's release date; commercial type, customer ID and pricing structure match when the
//! client passes them; the pool's access rules (`protocol::access`, judged for the asker before
//! the selection) refuse every key of the feature — an allow or deny rule before the quantity
//! check, a reservation after it. Sort, in order: commercial type STD, EDU, DEMO; max release number
//! ascending (0 is infinite); max release date ascending (none is infinite); additional info by
//! number of `;`-separated fields, then as a string (byte order, not the locale's); end date
//! descending (none is infinite, first); file index ascending (across all keys: keys carry no
//! licence ID); generation date descending; then the key's id, so the order is total.

use std::cmp::Ordering;

pub use protocol::floating::{CommercialType, Model};

/// A licence key as the selection sees it. Days are day numbers (days since 1970-01-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: i64,
    pub editor: String,
    pub feature: String,
    pub model: Model,
    pub quantity: i64,
    /// Seats (or tokens, or consumed credits) taken now.
    pub in_use: i64,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub group_index: i64,
    /// 0: any release.
    pub max_release_number: i64,
    pub max_release_date: Option<i64>,
    pub commercial_type: CommercialType,
    pub customer_id: String,
    pub pricing_structure: String,
    pub additional_info: String,
    pub file_index: i64,
    pub generation_date: i64,
}

impl Key {
    pub fn remaining(&self) -> i64 {
        self.quantity - self.in_use
    }

    fn active_on(&self, day: i64) -> bool {
        self.start.is_none_or(|s| s <= day) && self.end.is_none_or(|e| day <= e)
    }
}

/// What a checkout asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ask {
    /// `None`: any editor (an application that does not say).
    pub editor: Option<String>,
    pub feature: String,
    pub model: Option<Model>,
    pub release_number: i64,
    pub release_date: Option<i64>,
    pub commercial_type: Option<CommercialType>,
    pub customer_id: Option<String>,
    pub pricing_structure: Option<String>,
    /// Seats or tokens needed (1 for seats).
    pub needed: i64,
    /// What the pool's access rules say of this asker and feature (`Rule::Access` or
    /// `Rule::Reserved`): judged before the selection, as it depends on who asks and who holds
    /// seats, and failed by every key of the feature.
    pub access: Option<Rule>,
}

/// Why a key cannot serve a checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    NotStarted,
    Ended,
    Superseded {
        highest: i64,
    },
    NoneLeft,
    Editor,
    Feature,
    Model,
    ReleaseNumber,
    ReleaseDate,
    CommercialType,
    CustomerId,
    PricingStructure,
    /// An allow or deny rule of the pool refuses the asker: why, naming the rule.
    Access(String),
    /// The free seats are kept for others by a reserve rule: its description.
    Reserved(String),
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::NotStarted => f.write_str("not active yet (start date in the future)"),
            Rule::Ended => f.write_str("no longer active (end date passed)"),
            Rule::Superseded { highest } => {
                write!(
                    f,
                    "superseded: a key with the higher group index {highest} is active"
                )
            }
            Rule::NoneLeft => f.write_str("no quantity left"),
            Rule::Editor => f.write_str("another editor"),
            Rule::Feature => f.write_str("another feature"),
            Rule::Model => f.write_str("another model"),
            Rule::ReleaseNumber => f.write_str("max release number below the client's release"),
            Rule::ReleaseDate => f.write_str("max release date before the client's release date"),
            Rule::CommercialType => f.write_str("another commercial type"),
            Rule::CustomerId => f.write_str("another customer ID"),
            Rule::PricingStructure => f.write_str("another pricing structure"),
            Rule::Access(why) => f.write_str(why),
            Rule::Reserved(rule) => write!(f, "the free seats are kept by access {rule}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Filtered(Rule),
    /// 1 is the key that is granted.
    Ranked(usize),
}

/// The first filter `key` fails, if any. `highest` is the highest group index among the active
/// keys of its editor and feature.
fn filter(key: &Key, ask: &Ask, today: i64, highest: Option<i64>) -> Option<Rule> {
    if key.start.is_some_and(|s| today < s) {
        return Some(Rule::NotStarted);
    }
    if key.end.is_some_and(|e| e < today) {
        return Some(Rule::Ended);
    }
    if let Some(h) = highest.filter(|h| key.group_index < *h) {
        return Some(Rule::Superseded { highest: h });
    }
    let asked = key.feature == ask.feature && ask.editor.as_ref().is_none_or(|e| *e == key.editor);
    if let (true, Some(rule @ Rule::Access(_))) = (asked, &ask.access) {
        return Some(rule.clone());
    }
    if key.remaining() < ask.needed.max(1) {
        return Some(Rule::NoneLeft);
    }
    if let (true, Some(rule @ Rule::Reserved(_))) = (asked, &ask.access) {
        return Some(rule.clone());
    }
    if ask.editor.as_ref().is_some_and(|e| *e != key.editor) {
        return Some(Rule::Editor);
    }
    if key.feature != ask.feature {
        return Some(Rule::Feature);
    }
    if ask.model.is_some_and(|m| m != key.model) {
        return Some(Rule::Model);
    }
    if key.max_release_number != 0 && key.max_release_number < ask.release_number {
        return Some(Rule::ReleaseNumber);
    }
    if let (Some(max), Some(client)) = (key.max_release_date, ask.release_date) {
        if max < client {
            return Some(Rule::ReleaseDate);
        }
    }
    if ask
        .commercial_type
        .is_some_and(|c| c != key.commercial_type)
    {
        return Some(Rule::CommercialType);
    }
    if ask
        .customer_id
        .as_ref()
        .is_some_and(|c| *c != key.customer_id)
    {
        return Some(Rule::CustomerId);
    }
    if ask
        .pricing_structure
        .as_ref()
        .is_some_and(|p| *p != key.pricing_structure)
    {
        return Some(Rule::PricingStructure);
    }
    None
}

/// Fields of "additional info": the non-empty parts between semicolons.
fn info_fields(info: &str) -> usize {
    info.split(';').filter(|f| !f.trim().is_empty()).count()
}

/// The preference order among keys that passed the filters: `Less` means `a` is granted first.
pub fn preference(a: &Key, b: &Key) -> Ordering {
    let release = |k: &Key| {
        if k.max_release_number == 0 {
            i64::MAX
        } else {
            k.max_release_number
        }
    };
    a.commercial_type
        .cmp(&b.commercial_type)
        .then_with(|| release(a).cmp(&release(b)))
        .then_with(|| {
            a.max_release_date
                .unwrap_or(i64::MAX)
                .cmp(&b.max_release_date.unwrap_or(i64::MAX))
        })
        .then_with(|| info_fields(&a.additional_info).cmp(&info_fields(&b.additional_info)))
        .then_with(|| a.additional_info.cmp(&b.additional_info))
        .then_with(|| b.end.unwrap_or(i64::MAX).cmp(&a.end.unwrap_or(i64::MAX)))
        .then_with(|| a.file_index.cmp(&b.file_index))
        .then_with(|| b.generation_date.cmp(&a.generation_date))
        .then_with(|| a.id.cmp(&b.id))
}

/// Every key's verdict for `ask` on `today`, in the order of `keys`.
pub fn explain(keys: &[Key], ask: &Ask, today: i64) -> Vec<(i64, Verdict)> {
    let highest = |k: &Key| {
        keys.iter()
            .filter(|o| o.editor == k.editor && o.feature == k.feature && o.active_on(today))
            .map(|o| o.group_index)
            .max()
    };
    let mut passed: Vec<&Key> = Vec::new();
    let mut verdicts: Vec<(i64, Verdict)> = keys
        .iter()
        .map(|k| match filter(k, ask, today, highest(k)) {
            Some(rule) => (k.id, Verdict::Filtered(rule)),
            None => {
                passed.push(k);
                (k.id, Verdict::Ranked(0))
            }
        })
        .collect();
    passed.sort_by(|a, b| preference(a, b));
    for (rank, key) in passed.iter().enumerate() {
        if let Some(v) = verdicts.iter_mut().find(|(id, _)| *id == key.id) {
            v.1 = Verdict::Ranked(rank + 1);
        }
    }
    verdicts
}

/// Whether some key would serve `ask` if every seat were free: what tells "all seats are taken,
/// wait" from "no key fits this request, don't" when a checkout is refused. (Seats kept by a
/// reservation come free too; an allow or deny rule stands.)
pub fn fits_when_free(keys: &[Key], ask: &Ask, today: i64) -> bool {
    let ask = &Ask {
        access: ask
            .access
            .clone()
            .filter(|r| !matches!(r, Rule::Reserved(_))),
        ..ask.clone()
    };
    let free: Vec<Key> = keys
        .iter()
        .map(|k| Key {
            in_use: 0,
            ..k.clone()
        })
        .collect();
    explain(&free, ask, today)
        .iter()
        .any(|(_, v)| matches!(v, Verdict::Ranked(_)))
}

/// The keys that can serve anyone today: active, and not superseded by a higher group index of
/// their editor and feature (what "count" means in the usage monitor and in refusals).
pub fn usable(keys: &[Key], today: i64) -> Vec<&Key> {
    keys.iter()
        .filter(|k| k.active_on(today))
        .filter(|k| {
            !keys.iter().any(|o| {
                o.editor == k.editor
                    && o.feature == k.feature
                    && o.group_index > k.group_index
                    && o.active_on(today)
            })
        })
        .collect()
}

/// The key granted for `ask`, if any.
pub fn select<'k>(keys: &'k [Key], ask: &Ask, today: i64) -> Option<&'k Key> {
    let granted = explain(keys, ask, today)
        .into_iter()
        .find(|(_, v)| *v == Verdict::Ranked(1))?;
    keys.iter().find(|k| k.id == granted.0)
}

#[cfg(test)]
mod tests;
