//! Client organisations and portal users: who may see and change them, and how.

use super::password;
use crate::accounts::sessions::{end_sessions_of, UserRow, USER_COLUMNS};
use crate::audit::{client_of, Entry, Who};
use crate::db::Conditions;
use crate::listing::{descending, given, search, ListSort};
use crate::page::{Page, Paged};
use crate::{require_admin, Error, Licentia, Result};
use protocol::account::{
    AdminOverview, ClientBody, ClientDetail, ClientFilter, ClientSummary, CurrentUser, Role,
    UserSummary,
};
use protocol::audit::{changed_fields, AuditAction};
use protocol::input::{self, ClientName, Email, InputError, Password, PersonName};

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: i64,
    name: String,
    contact_email: String,
    notes: String,
    created_at: i64,
    user_count: i64,
    order_count: i64,
    active_licences: i64,
}

impl From<ClientRow> for ClientSummary {
    fn from(r: ClientRow) -> Self {
        ClientSummary {
            id: r.id,
            name: r.name,
            contact_email: r.contact_email,
            notes: r.notes,
            created_at: r.created_at,
            user_count: r.user_count,
            order_count: r.order_count,
            active_licences: r.active_licences,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserListRow {
    id: i64,
    email: String,
    name: String,
    role: String,
    client_id: Option<i64>,
    created_at: i64,
    last_sign_in_at: Option<i64>,
    invited: i64,
}

impl UserListRow {
    fn into_summary(self) -> Result<UserSummary> {
        Ok(UserSummary {
            id: self.id,
            role: Role::parse(&self.role)
                .ok_or_else(|| Error::Internal(format!("unknown role {:?}", self.role)))?,
            email: self.email,
            name: self.name,
            client_id: self.client_id,
            created_at: self.created_at,
            last_sign_in_at: self.last_sign_in_at,
            invited: self.invited != 0,
        })
    }
}

/// What changes together with a new password, in the same transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AfterPassword {
    /// Lift the sign-in locks against the account.
    pub(crate) clear_locks: bool,
    /// Revoke every API token of the user.
    pub(crate) revoke_tokens: bool,
}

impl AfterPassword {
    /// An administrator's reset: lets a locked-out user back in, and takes the tokens made with
    /// the old password (whoever knew it may have made them).
    pub(crate) const RESET: Self = Self {
        clear_locks: true,
        revoke_tokens: true,
    };
}

/// A user changing their own password.
#[derive(Debug, Clone, Copy)]
pub struct PasswordChange<'a> {
    pub current_password: &'a str,
    pub new_password: &'a str,
    /// The session asking: it stays open.
    pub current_token: &'a str,
    /// Also revoke every API token the user made.
    pub revoke_tokens: bool,
    /// A code from the user's authenticator app, when they have a second factor.
    pub code: &'a str,
}

/// What a client record is made of, parsed.
pub struct ClientInput {
    pub name: ClientName,
    pub contact_email: String,
    pub notes: String,
}

impl ClientInput {
    pub fn parse(body: &ClientBody) -> Result<Self, InputError> {
        let contact_email = if body.contact_email.trim().is_empty() {
            String::new()
        } else {
            Email::parse(&body.contact_email)
                .map_err(|e| InputError::new("contact_email", e.message))?
                .into_inner()
        };
        Ok(Self {
            name: ClientName::parse(&body.name)?,
            contact_email,
            notes: input::notes(&body.notes)?,
        })
    }
}

const CLIENT_SELECT: &str = "SELECT c.id, c.name, c.contact_email, c.notes, c.created_at, \
     (SELECT COUNT(*) FROM users u WHERE u.client_id = c.id) AS user_count, \
     (SELECT COUNT(*) FROM orders o WHERE o.client_id = c.id) AS order_count, \
     (SELECT COUNT(*) FROM orders o JOIN licences l ON l.order_id = o.id \
        JOIN activations a ON a.licence_id = l.id \
        WHERE o.client_id = c.id AND a.removed_at IS NULL) AS active_licences \
     FROM clients c";

const USER_LIST_SELECT: &str =
    "SELECT id, email, name, role, client_id, created_at, last_sign_in_at, \
     CAST(CASE WHEN password_hash = '' THEN 1 ELSE 0 END AS BIGINT) AS invited FROM users";

/// The conditions of the clients `f` picks (administrators only), and their order.
fn client_conditions(actor: &CurrentUser, f: &ClientFilter) -> Result<(Conditions, ListSort)> {
    require_admin(actor)?;
    let mut c = Conditions::default();
    if let Some(q) = given(&f.q) {
        // Folded here, whole (SQLite's lower() folds ASCII only): the name is searched in the
        // form it is compared in, stored folded.
        search(
            &mut c,
            &q.to_lowercase(),
            &["c.name_key", "lower(c.contact_email)", "lower(c.notes)"],
            None,
        )?;
    }
    let (expr, text, natural) = match given(&f.sort).as_deref() {
        // The name folded as the uniqueness check folds it.
        None | Some("name") => ("c.name_key", true, false),
        Some("created") => ("c.id", false, true),
        Some(_) => return Err(InputError::new("sort", "Sort by name or created.").into()),
    };
    Ok((
        c,
        ListSort {
            expr,
            text,
            descending: descending(&f.order, natural)?,
            id: "c.id",
        },
    ))
}

fn duplicate_client(name: &ClientName) -> String {
    format!("A client named \u{201c}{name}\u{201d} already exists.")
}

pub(crate) fn duplicate_email(email: &Email) -> String {
    format!("An account with the e-mail address {email} already exists.")
}

impl Licentia {
    pub async fn admin_overview(&self, actor: &CurrentUser) -> Result<AdminOverview> {
        require_admin(actor)?;
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(self.db.pool())
                .await
        };
        Ok(AdminOverview {
            clients: count("SELECT COUNT(*) FROM clients").await?,
            client_users: count("SELECT COUNT(*) FROM users WHERE role = 'client'").await?,
            administrators: count("SELECT COUNT(*) FROM users WHERE role = 'admin'").await?,
        })
    }

    /// Clients as `filter` picks and orders them, by name unless told (administrators).
    pub async fn list_clients(
        &self,
        actor: &CurrentUser,
        filter: &ClientFilter,
        page: &Page,
    ) -> Result<Paged<ClientSummary>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            client: ClientRow,
            sort_int: i64,
            sort_text: String,
        }
        let (mut c, sort) = client_conditions(actor, filter)?;
        sort.resume(&mut c, page)?;
        let select = CLIENT_SELECT.replacen(
            " FROM clients c",
            &format!(", {} FROM clients c", sort.columns()),
            1,
        );
        let sql = c.page_sql(&select, &sort.order_by(), page.fetch());
        let rows: Vec<Row> = c
            .bind(sqlx::query_as(&sql))
            .fetch_all(self.db.pool())
            .await?;
        Ok(page
            .finish(rows, |r| sort.cursor(r.sort_int, &r.sort_text, r.client.id))
            .map(|r| r.client.into()))
    }

    /// How many clients `filter` picks (all pages).
    pub async fn count_clients(&self, actor: &CurrentUser, filter: &ClientFilter) -> Result<i64> {
        let (c, _) = client_conditions(actor, filter)?;
        c.count(self.db.pool(), "FROM clients c").await
    }

    /// A client with its users. Administrators see any; a client user only its own.
    pub async fn client_detail(&self, actor: &CurrentUser, client_id: i64) -> Result<ClientDetail> {
        self.require_client_access(actor, client_id)?;
        let client: ClientRow = sqlx::query_as(&format!("{CLIENT_SELECT} WHERE c.id = $1"))
            .bind(client_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The client"))?;
        let users: Vec<UserListRow> = sqlx::query_as(&format!(
            "{USER_LIST_SELECT} WHERE client_id = $1 ORDER BY email"
        ))
        .bind(client_id)
        .fetch_all(self.db.pool())
        .await?;
        let mut client: ClientSummary = client.into();
        if actor.role != Role::Admin {
            // Notes are the vendor's, not the customer's.
            client.notes.clear();
        }
        Ok(ClientDetail {
            client,
            users: users
                .into_iter()
                .map(UserListRow::into_summary)
                .collect::<Result<_>>()?,
        })
    }

    pub async fn create_client(
        &self,
        actor: &CurrentUser,
        input: ClientInput,
    ) -> Result<ClientSummary> {
        require_admin(actor)?;
        let mut tx = self.db.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO clients (name, name_key, contact_email, notes, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(input.name.as_str())
        .bind(input.name.key())
        .bind(&input.contact_email)
        .bind(&input.notes)
        .bind(self.clock.now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| Error::unique_as_conflict(e, duplicate_client(&input.name)))?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(
                AuditAction::ClientCreate,
                format!("client {}", input.name.as_str()),
            )
            .of_client(Some(id)),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(client_id = id, by = actor.id, "client created");
        Ok(self.client_detail(actor, id).await?.client)
    }

    pub async fn update_client(
        &self,
        actor: &CurrentUser,
        client_id: i64,
        input: ClientInput,
    ) -> Result<ClientSummary> {
        require_admin(actor)?;
        let mut tx = self.db.pool().begin().await?;
        let (name, contact_email, notes): (String, String, String) =
            sqlx::query_as("SELECT name, contact_email, notes FROM clients WHERE id = $1")
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(Error::NotFound("The client"))?;
        sqlx::query(
            "UPDATE clients SET name = $1, name_key = $2, contact_email = $3, notes = $4 WHERE id = $5",
        )
        .bind(input.name.as_str())
        .bind(input.name.key())
        .bind(&input.contact_email)
        .bind(&input.notes)
        .bind(client_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::unique_as_conflict(e, duplicate_client(&input.name)))?;
        let changes = changed_fields(
            &[
                ("name", name),
                ("contact e-mail", contact_email),
                ("notes", notes),
            ],
            &[
                ("name", input.name.as_str().to_owned()),
                ("contact e-mail", input.contact_email.clone()),
                ("notes", input.notes.clone()),
            ],
        );
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(
                AuditAction::ClientUpdate,
                format!("client {}", input.name.as_str()),
            )
            .of_client(Some(client_id))
            .changes(changes)
            .private("notes"),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(self.client_detail(actor, client_id).await?.client)
    }

    /// Deletes a client with its portal users (and so their sessions) and its orders (and so their
    /// licences: activated machines are told at their next validation).
    pub async fn delete_client(&self, actor: &CurrentUser, client_id: i64) -> Result<()> {
        require_admin(actor)?;
        let mut tx = self.db.pool().begin().await?;
        let name: String = sqlx::query_scalar("DELETE FROM clients WHERE id = $1 RETURNING name")
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("The client"))?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::ClientDelete, format!("client {name}"))
                .of_client(Some(client_id))
                .detail("Deleted with its users, orders and their licences."),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(client_id, by = actor.id, "client deleted");
        Ok(())
    }

    /// Adds a portal user to a client, with a first password the administrator passes on.
    pub async fn create_client_user(
        &self,
        actor: &CurrentUser,
        client_id: i64,
        name: &str,
        email: &str,
        new_password: &str,
    ) -> Result<UserSummary> {
        require_admin(actor)?;
        let name = PersonName::parse(name)?;
        let email = Email::parse(email)?;
        let new_password = password::choose(new_password, &[email.as_str(), name.as_str()])?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_optional(self.db.pool())
            .await?;
        if exists.is_none() {
            return Err(Error::NotFound("The client"));
        }
        let hash = password::hash(&new_password).await?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let row: UserListRow = sqlx::query_as(
            "INSERT INTO users (email, name, role, client_id, password_hash, created_at, \
             password_changed_at) VALUES ($1, $2, 'client', $3, $4, $5, $5) \
             RETURNING id, email, name, role, client_id, created_at, last_sign_in_at, \
             CAST(0 AS BIGINT) AS invited",
        )
        .bind(email.as_str())
        .bind(name.as_str())
        .bind(client_id)
        .bind(&hash)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| Error::unique_as_conflict(e, duplicate_email(&email)))?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::UserCreate, format!("user {}", email.as_str()))
                .of_client(Some(client_id)),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(
            user_id = row.id,
            client_id,
            by = actor.id,
            "client user created"
        );
        row.into_summary()
    }

    /// An administrator sets a new password for a client user; the user's sessions end.
    pub async fn reset_user_password(
        &self,
        actor: &CurrentUser,
        user_id: i64,
        new_password: &str,
    ) -> Result<()> {
        require_admin(actor)?;
        let target = self.user_by_id(user_id).await?;
        let new_password = password::choose(new_password, &[&target.email, &target.name])?;
        if target.role != Role::Client {
            return Err(Error::Conflict(
                "Administrators change their own password from their account page.".into(),
            ));
        }
        let entry = Entry::new(AuditAction::PasswordReset, format!("user {}", target.email))
            .of_client(client_of(&target));
        let revoked = self
            .set_password(
                user_id,
                &new_password,
                None,
                AfterPassword::RESET,
                (Who::User(actor), entry),
            )
            .await?;
        tracing::info!(
            user_id,
            by = actor.id,
            revoked,
            "password reset by an administrator"
        );
        Ok(())
    }

    /// The account with the e-mail address `email`: its id and its client (for the admin CLI).
    pub(crate) async fn account_by_email(&self, email: &Email) -> Result<(i64, Option<i64>)> {
        sqlx::query_as("SELECT id, client_id FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("An account with that e-mail address"))
    }

    /// Resets any account's password from the admin CLI, by e-mail address; its sessions end.
    pub async fn reset_password_by_email(&self, email: &str, new_password: &str) -> Result<()> {
        let email = Email::parse(email)?;
        let new_password = password::choose(new_password, &[email.as_str()])?;
        let (user_id, client_id) = self.account_by_email(&email).await?;
        let entry = Entry::new(
            AuditAction::PasswordReset,
            format!("user {}", email.as_str()),
        )
        .of_client(client_id);
        let revoked = self
            .set_password(
                user_id,
                &new_password,
                None,
                AfterPassword::RESET,
                (Who::Operator, entry),
            )
            .await?;
        tracing::info!(user_id, revoked, "password reset from the admin CLI");
        Ok(())
    }

    /// Anyone signed in changes their own password, proving the current one (counted like a
    /// sign-in attempt from `address`); their other sessions end, and their API tokens too if
    /// they ask (`revoke_tokens`).
    pub async fn change_own_password(
        &self,
        actor: &CurrentUser,
        change: PasswordChange<'_>,
        address: &str,
    ) -> Result<()> {
        let new_password = password::choose(change.new_password, &[&actor.email, &actor.name])?;
        self.reauthenticate(actor, "current_password", change.current_password, address)
            .await
            .map_err(|e| match e {
                Error::Invalid(i) if i.field == "current_password" => {
                    InputError::new("current_password", "The current password is wrong.").into()
                }
                other => other,
            })?;
        self.second_factor_if_on(actor, change.code, address, "changing the password")
            .await?;
        let after = AfterPassword {
            clear_locks: false,
            revoke_tokens: change.revoke_tokens,
        };
        let entry = Entry::own_account(AuditAction::PasswordChange, actor).detail(
            if change.revoke_tokens {
                "Other sessions ended; API tokens revoked."
            } else {
                "Other sessions ended."
            },
        );
        let revoked = self
            .set_password(
                actor.id,
                &new_password,
                Some(change.current_token),
                after,
                (Who::User(actor), entry),
            )
            .await?;
        tracing::info!(user_id = actor.id, revoked, "password changed");
        Ok(())
    }

    /// Sets a password and ends the user's sessions but the one with `keep_token`, together: a
    /// session someone else held never outlives the password it was opened with.
    async fn set_password(
        &self,
        user_id: i64,
        new_password: &Password,
        keep_token: Option<&str>,
        after: AfterPassword,
        (who, entry): (Who<'_>, Entry),
    ) -> Result<u64> {
        let hash = password::hash(new_password).await?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let revoked = password_set(&mut tx, user_id, &hash, keep_token, after, now).await?;
        self.record(&mut *tx, who, entry).await?;
        crate::db::commit(tx).await?;
        Ok(revoked)
    }

    /// Removes a client user (never an administrator: that is not done from the portal).
    pub async fn delete_client_user(&self, actor: &CurrentUser, user_id: i64) -> Result<()> {
        require_admin(actor)?;
        let mut tx = self.db.pool().begin().await?;
        let (email, client_id): (String, Option<i64>) = sqlx::query_as(
            "DELETE FROM users WHERE id = $1 AND role = 'client' RETURNING email, client_id",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("The client user"))?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::UserDelete, format!("user {email}")).of_client(client_id),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(user_id, by = actor.id, "client user deleted");
        Ok(())
    }

    pub async fn list_admins(&self, actor: &CurrentUser) -> Result<Vec<UserSummary>> {
        require_admin(actor)?;
        let rows: Vec<UserListRow> = sqlx::query_as(&format!(
            "{USER_LIST_SELECT} WHERE role = 'admin' ORDER BY email"
        ))
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(UserListRow::into_summary).collect()
    }

    /// A fresh view of the signed-in user (after their client was renamed, say).
    pub async fn whoami(&self, actor: &CurrentUser) -> Result<CurrentUser> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u LEFT JOIN clients c ON c.id = u.client_id WHERE u.id = $1"
        );
        sqlx::query_as::<_, UserRow>(&sql)
            .bind(actor.id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotSignedIn)?
            .into_current(self.auth.admin_second_factor)
    }

    /// Administrators may reach every client; a client user only its own.
    pub fn require_client_access(&self, actor: &CurrentUser, client_id: i64) -> Result<()> {
        match actor.role {
            Role::Admin => require_admin(actor),
            Role::Client if actor.client.as_ref().is_some_and(|c| c.id == client_id) => Ok(()),
            Role::Client => Err(Error::NotAllowed),
        }
    }
}

/// Stores a new password hash for `user_id` in `tx` and puts an end to what the old password
/// opened: the user's sessions but the one with `keep_token`, a sign-in waiting for its code, any
/// invitation or reset link; with `after`, the sign-in locks and the API tokens too. Returns
/// how many tokens were revoked.
pub(crate) async fn password_set(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    hash: &str,
    keep_token: Option<&str>,
    after: AfterPassword,
    now: i64,
) -> Result<u64> {
    let email: String = sqlx::query_scalar(
        "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3 \
         RETURNING email",
    )
    .bind(hash)
    .bind(now)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("The user"))?;
    end_sessions_of(tx, user_id, keep_token).await?;
    // A ticket won with the old password (waiting for its code) dies with it, and so does a
    // link sent to set a password.
    sqlx::query("DELETE FROM sign_in_challenges WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM account_links WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    if after.clear_locks {
        sqlx::query("DELETE FROM login_throttle WHERE account = $1")
            .bind(&email)
            .execute(&mut **tx)
            .await?;
    }
    let revoked = if after.revoke_tokens {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
    } else {
        0
    };
    Ok(revoked)
}

/// One account as lists show it, read through `exec` (the pool, or a transaction's view).
pub(crate) async fn user_summary_in<'e, E>(exec: E, user_id: i64) -> Result<UserSummary>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query_as::<_, UserListRow>(&format!("{USER_LIST_SELECT} WHERE id = $1"))
        .bind(user_id)
        .fetch_optional(exec)
        .await?
        .ok_or(Error::NotFound("The user"))?
        .into_summary()
}
