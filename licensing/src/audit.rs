//! The audit log: the services add an entry for every change they make (in the change's own
//! transaction where it has one), for sign-ins and their failures, lockouts, API tokens and
//! secrets revealed. Where a request came from (portal, API, CLI; the caller's address; the API
//! token used) is set once per request by the server around the whole call (`Origin::scope`),
//! so no service has to be handed it. The table refuses updates and deletes (its triggers).

use crate::{client_scope, db, Error, Licentia, Result};
use protocol::account::CurrentUser;
use protocol::audit::{AuditAction, AuditEntry, AuditPage, AuditQuery, Channel, FieldChange};
use std::future::Future;
use std::sync::OnceLock;

/// Where the request being served came from.
#[derive(Debug)]
pub struct Origin {
    pub channel: Channel,
    /// The caller's address, when there is a caller.
    pub address: Option<String>,
    /// The name of the API token the caller used, once it is known.
    token: OnceLock<String>,
    /// Who runs the admin CLI (the operating-system user).
    operator: Option<String>,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

impl Origin {
    pub fn new(channel: Channel, address: Option<String>) -> Self {
        Self {
            channel,
            address,
            token: OnceLock::new(),
            operator: None,
        }
    }

    /// The admin command line, run by `operator`.
    pub fn cli(operator: Option<String>) -> Self {
        Self {
            operator,
            ..Self::new(Channel::Cli, None)
        }
    }

    /// Runs `f` with this origin: every entry it records says it came from here.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        ORIGIN.scope(self, f).await
    }

    /// Notes the API token the current request was made with (its name goes beside the user).
    pub fn note_token(name: &str) {
        let _ = ORIGIN.try_with(|o| o.token.set(name.to_owned()));
    }
}

/// Who made a change.
pub(crate) enum Who<'a> {
    User(&'a CurrentUser),
    /// Someone named but not signed in (a sign-in attempt), with their account if it exists.
    Named(Option<i64>, &'a str),
    /// A protected application, through the application API.
    Application,
    /// Whoever runs the admin CLI, or the server itself when there is no request.
    Operator,
}

/// The client `actor` belongs to (none for an administrator).
pub(crate) fn client_of(actor: &CurrentUser) -> Option<i64> {
    actor.client.as_ref().map(|c| c.id)
}

/// An entry to add.
pub(crate) struct Entry {
    pub action: AuditAction,
    pub subject: String,
    pub client_id: Option<i64>,
    pub detail: String,
    pub changes: Vec<FieldChange>,
}

impl Entry {
    pub fn new(action: AuditAction, subject: impl Into<String>) -> Self {
        Self {
            action,
            subject: subject.into(),
            client_id: None,
            detail: String::new(),
            changes: Vec::new(),
        }
    }

    /// An entry about `actor`'s own account (their client's users may read it).
    pub fn own_account(action: AuditAction, actor: &CurrentUser) -> Self {
        Self::new(action, format!("user {}", actor.email)).of_client(client_of(actor))
    }

    /// The entry belongs to this client (its users may read it).
    pub fn of_client(mut self, client_id: Option<i64>) -> Self {
        self.client_id = client_id;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn changes(mut self, changes: Vec<FieldChange>) -> Self {
        self.changes = changes;
        self
    }

    /// Says that `field` changed without saying what it was or became: the vendor's notes about
    /// a client or an order are theirs, and the client's users read the entry.
    pub fn private(mut self, field: &str) -> Self {
        for c in self.changes.iter_mut().filter(|c| c.field == field) {
            c.before = "(not shown)".to_owned();
            c.after = "(changed)".to_owned();
        }
        self
    }
}

/// (actor id, actor label, channel, address) for `who` under the current origin.
fn attribution(who: &Who<'_>) -> (Option<i64>, String, Channel, Option<String>) {
    let (channel, address, token, operator) = ORIGIN
        .try_with(|o| {
            (
                o.channel,
                o.address.clone(),
                o.token.get().cloned(),
                o.operator.clone(),
            )
        })
        .unwrap_or((Channel::Server, None, None, None));
    let with_token = |label: String| match &token {
        Some(name) => format!("{label} (API token \u{201c}{name}\u{201d})"),
        None => label,
    };
    let (id, label) = match who {
        Who::User(u) => (Some(u.id), with_token(u.email.clone())),
        Who::Named(id, email) => (*id, (*email).to_owned()),
        Who::Application => (None, "application".to_owned()),
        Who::Operator if channel == Channel::Cli => (
            None,
            match operator {
                Some(op) => format!("admin CLI ({op})"),
                None => "admin CLI".to_owned(),
            },
        ),
        Who::Operator => (None, "server".to_owned()),
    };
    (id, label, channel, address)
}

/// Text fit for one line of the log: line breaks and tabs become spaces, other control, bidi
/// and zero-width characters U+FFFD, and it is cut to `max` characters (a name typed at the
/// sign-in form can be anything).
fn one_line(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if protocol::input::is_hidden_char(c) => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// The SQL that adds one entry; `$1`…`$10`.
const INSERT: &str = "INSERT INTO audit_log \
    (at, actor_id, actor, channel, address, action, subject, client_id, detail, changes) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

impl Licentia {
    /// Adds `entry`, made by `who`, through `exec` (the change's transaction, where it has one).
    pub(crate) async fn record<'e, E>(&self, exec: E, who: Who<'_>, entry: Entry) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let (actor_id, actor, channel, address) = attribution(&who);
        let changes: Vec<FieldChange> = entry
            .changes
            .into_iter()
            .map(|c| FieldChange {
                field: one_line(&c.field, 100),
                before: one_line(&c.before, 2000),
                after: one_line(&c.after, 2000),
            })
            .collect();
        let changes = serde_json::to_string(&changes)
            .map_err(|e| Error::Internal(format!("audit changes: {e}")))?;
        sqlx::query(INSERT)
            .bind(self.clock.now())
            .bind(actor_id)
            .bind(one_line(&actor, 320))
            .bind(channel.code())
            .bind(address)
            .bind(entry.action.code())
            .bind(one_line(&entry.subject, 300))
            .bind(entry.client_id)
            .bind(one_line(&entry.detail, 2000))
            .bind(changes)
            .execute(exec)
            .await?;
        Ok(())
    }

    /// Records an entry outside any transaction: an attempt that changed nothing (a failed
    /// sign-in), or secrets about to be shown (which are not, if the entry cannot be written).
    pub(crate) async fn record_now(&self, who: Who<'_>, entry: Entry) -> Result<()> {
        self.record(self.db.pool(), who, entry).await
    }

    /// Records an entry right after a change that committed in steps of its own: the change
    /// stands and is answered even if the entry cannot be written (the failure goes to the
    /// server's log as an error) — failing the request would only make the caller retry a
    /// change already made.
    pub(crate) async fn record_after(&self, who: Who<'_>, entry: Entry) {
        let action = entry.action.code();
        if let Err(e) = self.record(self.db.pool(), who, entry).await {
            tracing::error!(error = %e, action, "an audit entry could not be written after its change");
        }
    }

    /// Records that `actor` was shown secrets that act (whole licence keys, serials,
    /// fingerprints) by `what` — an answer only a read-write API token receives.
    pub async fn record_reveal(&self, actor: &CurrentUser, what: &str) -> Result<()> {
        self.record_now(
            Who::User(actor),
            Entry::new(AuditAction::SecretReveal, what).of_client(client_of(actor)),
        )
        .await
    }

    /// A page of the audit log, newest first: every entry for an administrator, their own
    /// client's for a client user (whatever `client_id` they ask for).
    pub async fn audit_log(&self, actor: &CurrentUser, q: &AuditQuery) -> Result<AuditPage> {
        let limit = protocol::page::page_limit(q.limit)?;
        let mut entries = self.audit_entries(actor, q, limit + 1).await?;
        let next_before = if entries.len() as i64 > limit {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_before,
        })
    }

    /// Every entry the filter selects (up to `EXPORT_MAX`), as CSV for a spreadsheet.
    pub async fn audit_csv(&self, actor: &CurrentUser, q: &AuditQuery) -> Result<String> {
        let entries = self.audit_entries(actor, q, EXPORT_MAX).await?;
        let mut out = crate::csv::line(&[
            "id",
            "time_utc",
            "actor",
            "channel",
            "address",
            "action",
            "subject",
            "client_id",
            "detail",
            "changes",
        ]);
        for e in entries {
            let changes = e
                .changes
                .iter()
                .map(|c| format!("{}: {} -> {}", c.field, c.before, c.after))
                .collect::<Vec<_>>()
                .join("; ");
            out.push_str(&crate::csv::line(&[
                &e.id.to_string(),
                &protocol::time::format_rfc3339(e.at),
                &e.actor,
                e.channel.code(),
                e.address.as_deref().unwrap_or(""),
                &e.action,
                &e.subject,
                &e.client_id.map(|c| c.to_string()).unwrap_or_default(),
                &e.detail,
                &changes,
            ]));
        }
        Ok(out)
    }

    /// The entries whose subject starts with `prefix` (one record's, e.g. `licence 12 (`),
    /// newest first, at most `limit`, within what `actor` may read.
    pub(crate) async fn entries_about(
        &self,
        actor: &CurrentUser,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, at, actor_id, actor, channel, address, action, subject, client_id, \
             detail, changes FROM audit_log \
             WHERE ($1 IS NULL OR client_id = $1) AND subject LIKE $2 ESCAPE '\\' \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(client_scope(actor)?)
        .bind(format!("{}%", db::like_escape(prefix)))
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(Row::into_entry).collect())
    }

    async fn audit_entries(
        &self,
        actor: &CurrentUser,
        q: &AuditQuery,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let client = match client_scope(actor)? {
            Some(own) => Some(own),
            None => q.client_id,
        };
        let day = |field: &'static str, text: &Option<String>| -> Result<Option<i64>> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => protocol::time::parse_date(t).map(Some).ok_or_else(|| {
                    protocol::input::InputError::new(field, "Give a date as YYYY-MM-DD.").into()
                }),
            }
        };
        let from = day("from", &q.from)?.map(|d| d * 86_400);
        let to = day("to", &q.to)?.map(|d| (d + 1) * 86_400);
        let (action, action_prefix) = match q.action.as_deref().map(str::trim) {
            None | Some("") => (None, None),
            Some(a) if a.ends_with('.') => (None, Some(format!("{}%", db::like_escape(a)))),
            Some(a) => match AuditAction::from_code(a) {
                Some(known) => (Some(known.code()), None),
                None => {
                    return Err(protocol::input::InputError::new(
                        "action",
                        "There is no such action in the audit log.",
                    )
                    .into())
                }
            },
        };
        let like = |text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| format!("%{}%", db::like_escape(&t.to_lowercase())))
        };
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, at, actor_id, actor, channel, address, action, subject, client_id, \
             detail, changes FROM audit_log \
             WHERE ($1 IS NULL OR client_id = $1) \
             AND ($2 IS NULL OR action = $2) \
             AND ($3 IS NULL OR action LIKE $3 ESCAPE '\\') \
             AND ($4 IS NULL OR lower(actor) LIKE $4 ESCAPE '\\') \
             AND ($5 IS NULL OR lower(subject) LIKE $5 ESCAPE '\\') \
             AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) \
             AND ($8 IS NULL OR id < $8) \
             ORDER BY id DESC LIMIT $9",
        )
        .bind(client)
        .bind(action)
        .bind(action_prefix)
        .bind(like(&q.actor))
        .bind(like(&q.subject))
        .bind(from)
        .bind(to)
        .bind(q.before)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(Row::into_entry).collect())
    }
}

/// The most entries one CSV export holds (narrow the filter for older ones).
pub const EXPORT_MAX: i64 = 100_000;

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: i64,
    actor_id: Option<i64>,
    actor: String,
    channel: String,
    address: Option<String>,
    action: String,
    subject: String,
    client_id: Option<i64>,
    detail: String,
    changes: String,
}

impl Row {
    fn into_entry(self) -> AuditEntry {
        AuditEntry {
            id: self.id,
            at: self.at,
            actor_id: self.actor_id,
            actor: self.actor,
            channel: Channel::from_code(&self.channel),
            address: self.address,
            action: self.action,
            subject: self.subject,
            client_id: self.client_id,
            detail: self.detail,
            changes: serde_json::from_str(&self.changes).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_the_log_shows_no_control_or_invisible_characters() {
        assert_eq!(one_line("eve\u{202e}moc.evil", 100), "eve\u{fffd}moc.evil");
        assert_eq!(one_line("a\nb\u{200b}c\u{7}", 100), "a b\u{fffd}c\u{fffd}");
        assert_eq!(one_line("abcdef", 3), "abc");
    }

    #[tokio::test]
    async fn entries_say_where_the_request_came_from() {
        let user = CurrentUser {
            id: 7,
            email: "ada@vendor.test".into(),
            name: "Ada".into(),
            role: protocol::account::Role::Admin,
            client: None,
            second_factor: false,
            must_set_up_second_factor: false,
        };
        let outside = attribution(&Who::User(&user));
        assert_eq!(
            outside,
            (Some(7), "ada@vendor.test".into(), Channel::Server, None)
        );
        let inside = Origin::new(Channel::Api, Some("192.0.2.1".into()))
            .scope(async {
                Origin::note_token("ci");
                attribution(&Who::User(&user))
            })
            .await;
        assert_eq!(
            inside,
            (
                Some(7),
                "ada@vendor.test (API token \u{201c}ci\u{201d})".into(),
                Channel::Api,
                Some("192.0.2.1".into())
            )
        );
        let cli = Origin::cli(Some("root".into()))
            .scope(async { attribution(&Who::Operator) })
            .await;
        assert_eq!(cli.1, "admin CLI (root)");
        assert_eq!(attribution(&Who::Operator).1, "server");
    }
}
