//! What every filtered list shares: a sort on a number or a text with its keyset cursor, the
//! filter values as given, the sort direction, and a search over some columns.

use crate::db::{Bind, Conditions};
use crate::page::Page;
use crate::Result;
use protocol::input::InputError;

/// How a filtered list is ordered: by `expr` (a number, or a text when `text`), then by the
/// row's `id` column the same way.
pub(crate) struct ListSort {
    pub expr: &'static str,
    pub text: bool,
    pub descending: bool,
    pub id: &'static str,
}

/// A sort value in a list's cursor: a number or a text.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum SortValue {
    Int(i64),
    Text(String),
}

impl ListSort {
    /// Picks up after the page's cursor, when it has one.
    pub fn resume(&self, c: &mut Conditions, page: &Page) -> Result<()> {
        if let Some((value, id)) = page.after::<(SortValue, i64)>()? {
            let value = match (self.text, value) {
                (false, SortValue::Int(v)) => Bind::Int(v),
                (true, SortValue::Text(v)) => Bind::Text(v),
                _ => return Err(crate::page::bad_cursor()),
            };
            let op = if self.descending { "<" } else { ">" };
            c.and(
                &format!("({}, {}) {op} (?, ?)", self.expr, self.id),
                [value, Bind::Int(id)],
            );
        }
        Ok(())
    }

    /// The select's columns `sort_int` and `sort_text`, which a row's cursor is made of.
    pub fn columns(&self) -> String {
        if self.text {
            format!("0 AS sort_int, {} AS sort_text", self.expr)
        } else {
            format!("{} AS sort_int, '' AS sort_text", self.expr)
        }
    }

    pub fn order_by(&self) -> String {
        let direction = if self.descending { "DESC" } else { "ASC" };
        format!("{} {direction}, {} {direction}", self.expr, self.id)
    }

    /// A row's cursor, from its `sort_int`, `sort_text` and id.
    pub fn cursor(&self, int: i64, text: &str, id: i64) -> impl serde::Serialize {
        let value = if self.text {
            SortValue::Text(text.to_owned())
        } else {
            SortValue::Int(int)
        };
        (value, id)
    }
}

/// A filter's text as given: trimmed, `None` when empty.
pub(crate) fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `desc` or `asc`: whether a list runs from the largest down (`natural` when not told).
pub(crate) fn descending(order: &Option<String>, natural: bool) -> Result<bool> {
    match given(order).as_deref() {
        None => Ok(natural),
        Some("desc") => Ok(true),
        Some("asc") => Ok(false),
        Some(_) => Err(InputError::new("order", "Choose asc or desc.").into()),
    }
}

/// Rows where any of `fields` holds `q` (any case; at most 100 characters), or which `or`
/// picks (a clause and its one value). Both sides are folded by the database (SQLite folds
/// ASCII only, on both alike).
pub(crate) fn search(
    c: &mut Conditions,
    q: &str,
    fields: &[&str],
    or: Option<(&str, Bind)>,
) -> Result<()> {
    if q.chars().count() > 100 {
        return Err(InputError::new("q", "Search with at most 100 characters.").into());
    }
    let like = Bind::Text(format!("%{}%", crate::db::like_escape(q)));
    let mut clauses: Vec<String> = fields
        .iter()
        .map(|f| format!("{f} LIKE lower(?) ESCAPE '\\'"))
        .collect();
    let mut binds = vec![like; fields.len()];
    if let Some((clause, value)) = or {
        clauses.push(clause.to_owned());
        binds.push(value);
    }
    c.and_many(&format!("({})", clauses.join(" OR ")), &binds);
    Ok(())
}
