//! One-time links that set a password: an invitation (an administrator makes an account without
//! a password and the person chooses it) and a password reset (asked for by the person from the
//! sign-in page, or made by an administrator). Links go out by e-mail when an SMTP server is set
//! up; otherwise an administrator's link is shown to them to pass on, and nobody can ask for a
//! reset themselves. Only a digest of the token is stored; a link works once, dies at its expiry
//! and whenever the password changes.

use super::clients::{duplicate_email, password_set, AfterPassword};
use super::password;
use super::sessions::{open_session, SignedIn};
use super::throttle::address_group;
use crate::audit::{Entry, Who};
use crate::mail::{self, Letter};
use crate::{require_admin, token, Error, Licentia, Result};
use protocol::account::{LinkDelivery, LinkPurpose, LinkSent, PasswordLinkInfo, Role};
use protocol::audit::AuditAction;
use protocol::input::{Email, PersonName};

/// How long an invitation works.
pub const INVITATION_DAYS: i64 = 7;
/// How long a reset link asked for from the sign-in page works.
pub const RESET_MINUTES: i64 = 60;
/// How long a reset link an administrator makes works (they may have to pass it on by hand).
pub const ADMIN_RESET_MINUTES: i64 = 24 * 60;
/// A second reset asked for within this time after the first sends nothing more.
pub const RESET_QUIET_SECS: i64 = 5 * 60;
/// Resets one address (an IPv6 /64) may ask for within an hour, for any addresses.
pub const RESETS_PER_ADDRESS_HOUR: i64 = 5;
/// Resets waiting for the worker; more are dropped.
pub const RESET_QUEUE: usize = 64;

/// A reset asked for, waiting for the worker. It carries the services it is handled with, so
/// the worker holds none of its own and ends when the services are gone.
pub(crate) struct ResetAsk {
    services: Licentia,
    email: Email,
    address_group: String,
}

/// Starts the worker that handles the resets asked for from the sign-in page, one after the
/// other (so a burst is not many parallel sends, and "too many" is counted exactly on one
/// server); returns where they are queued.
pub(crate) fn reset_worker() -> tokio::sync::mpsc::Sender<ResetAsk> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ResetAsk>(RESET_QUEUE);
    tokio::spawn(async move {
        while let Some(ask) = rx.recv().await {
            if let Err(e) = ask
                .services
                .handle_reset(&ask.email, &ask.address_group)
                .await
            {
                tracing::error!(error = %e, "a password reset asked for could not be handled");
            }
        }
    });
    tx
}

/// Who is invited: a client's user (`client_id`) or, with `None`, an administrator.
#[derive(Debug, Clone, Copy)]
pub struct Invitee<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub client_id: Option<i64>,
}

/// What a used link did.
#[derive(Debug)]
pub enum LinkUsed {
    /// An invitation: the account is theirs and they are signed in.
    Arrived(SignedIn),
    /// A reset: the password is new; they sign in with it (and their second factor, if any).
    PasswordReset,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    user_id: i64,
    purpose: String,
    name: String,
    email: String,
    client_id: Option<i64>,
}

impl Licentia {
    /// An administrator invites someone: the account is made without a password, and a link
    /// that sets it goes to them by e-mail (or is handed back to pass on).
    pub async fn invite(
        &self,
        actor: &protocol::account::CurrentUser,
        invitee: Invitee<'_>,
    ) -> Result<LinkSent> {
        require_admin(actor)?;
        let name = PersonName::parse(invitee.name)?;
        let email = Email::parse(invitee.email)?;
        let organisation = match invitee.client_id {
            Some(id) => Some(self.client_name(id).await?),
            None => None,
        };
        let role = match invitee.client_id {
            Some(_) => Role::Client,
            None => Role::Admin,
        };
        let now = self.clock.now();
        let token = token::generate();
        let expires_at = now + INVITATION_DAYS * 86_400;
        let mut tx = self.db.pool().begin().await?;
        let user_id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, name, role, client_id, password_hash, created_at, \
             password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(email.as_str())
        .bind(name.as_str())
        .bind(role.as_str())
        .bind(invitee.client_id)
        .bind(password::NOT_SET)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| Error::unique_as_conflict(e, duplicate_email(&email)))?;
        insert_link(
            &mut tx,
            &token,
            user_id,
            LinkPurpose::Invitation,
            (now, expires_at),
        )
        .await?;
        let what = match &organisation {
            Some(org) => format!("A user of {org}"),
            None => "An administrator".to_owned(),
        };
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::UserInvite, format!("user {}", email.as_str()))
                .of_client(invitee.client_id)
                .detail(format!(
                    "{what}, invited: the link works for {INVITATION_DAYS} days."
                )),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(user_id, by = actor.id, "account invited");
        let link = self.link_url(&token);
        let letter = mail::invitation(
            name.as_str(),
            &actor.name,
            organisation.as_deref(),
            &link,
            INVITATION_DAYS,
        );
        let delivery = self
            .deliver(name.as_str(), email.as_str(), letter, link, expires_at)
            .await;
        Ok(LinkSent {
            user: super::clients::user_summary_in(self.db.pool(), user_id).await?,
            purpose: LinkPurpose::Invitation,
            delivery,
        })
    }

    /// An administrator makes a new link for a client user — an invitation again for one who has
    /// not arrived, a password reset otherwise — and sends it (or hands it back to pass on).
    /// Earlier links of the account die. Administrators' passwords are not reset this way:
    /// they reset their own from the sign-in page.
    pub async fn send_password_link(
        &self,
        actor: &protocol::account::CurrentUser,
        user_id: i64,
    ) -> Result<LinkSent> {
        require_admin(actor)?;
        let now = self.clock.now();
        let token = token::generate();
        let mut tx = self.db.pool().begin().await?;
        // Written first, so the transaction holds its write lock before it reads whether the
        // account has arrived (and an invitation is never made for one that has).
        sqlx::query("DELETE FROM account_links WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let user = super::clients::user_summary_in(&mut *tx, user_id).await?;
        if user.role == Role::Admin && !user.invited {
            return Err(Error::Conflict(
                "Administrators reset their own password: \u{201c}Forgot your password?\u{201d} \
                 on the sign-in page, or `server admin reset-password` on the server."
                    .into(),
            ));
        }
        let (purpose, valid_secs) = match user.invited {
            true => (LinkPurpose::Invitation, INVITATION_DAYS * 86_400),
            false => (LinkPurpose::Reset, ADMIN_RESET_MINUTES * 60),
        };
        let expires_at = now + valid_secs;
        insert_link(&mut tx, &token, user_id, purpose, (now, expires_at)).await?;
        let action = match purpose {
            LinkPurpose::Invitation => AuditAction::UserInvite,
            LinkPurpose::Reset => AuditAction::PasswordResetLink,
        };
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(action, format!("user {}", user.email))
                .of_client(user.client_id)
                .detail("A new link; earlier ones no longer work."),
        )
        .await?;
        crate::db::commit(tx).await?;
        let link = self.link_url(&token);
        let letter = match purpose {
            LinkPurpose::Invitation => {
                let organisation = match user.client_id {
                    Some(id) => Some(self.client_name(id).await?),
                    None => None,
                };
                mail::invitation(
                    &user.name,
                    &actor.name,
                    organisation.as_deref(),
                    &link,
                    INVITATION_DAYS,
                )
            }
            LinkPurpose::Reset => mail::password_reset(&user.name, &link, ADMIN_RESET_MINUTES),
        };
        let delivery = self
            .deliver(&user.name, &user.email, letter, link, expires_at)
            .await;
        Ok(LinkSent {
            user,
            purpose,
            delivery,
        })
    }

    /// Someone on the sign-in page asks for a reset link for `email`. The answer comes at once
    /// and is the same whether or not the account exists: the request is handed to the one
    /// worker that handles them in order (`handle_reset`), and dropped when
    /// `RESET_QUEUE` are already waiting.
    pub async fn request_password_reset(&self, email: &str, address: &str) -> Result<()> {
        let Some(queue) = &self.resets else {
            return Err(Error::refused(
                "This server does not send e-mail: ask an administrator to reset your password."
                    .to_owned(),
            ));
        };
        let email = Email::parse(email)?;
        let ask = ResetAsk {
            services: self.clone(),
            email,
            address_group: address_group(address),
        };
        if queue.try_send(ask).is_err() {
            tracing::warn!("too many password resets waiting: one was dropped");
        }
        Ok(())
    }

    /// A reset asked for from the sign-in page, in its turn. Nothing is sent past
    /// `RESETS_PER_ADDRESS_HOUR` asked for from one address, for a second ask for one address
    /// within `RESET_QUIET_SECS`, or for an address without an account; every ask counts, with
    /// an account or without.
    async fn handle_reset(&self, email: &Email, group: &str) -> Result<()> {
        let now = self.clock.now();
        let pool = self.db.pool();
        let from_address: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM password_reset_requests WHERE address_group = $1 AND at > $2",
        )
        .bind(group)
        .bind(now - 3600)
        .fetch_one(pool)
        .await?;
        if from_address >= RESETS_PER_ADDRESS_HOUR {
            tracing::warn!(address = %group, "password resets asked for too often from one address");
            return Ok(());
        }
        let for_account: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM password_reset_requests WHERE account = $1 AND at > $2",
        )
        .bind(email.as_str())
        .bind(now - RESET_QUIET_SECS)
        .fetch_one(pool)
        .await?;
        sqlx::query(
            "INSERT INTO password_reset_requests (address_group, account, at) VALUES ($1, $2, $3)",
        )
        .bind(group)
        .bind(email.as_str())
        .bind(now)
        .execute(pool)
        .await?;
        if for_account > 0 {
            return Ok(());
        }
        let user: Option<(i64, String, Option<i64>)> =
            sqlx::query_as("SELECT id, name, client_id FROM users WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?;
        let Some((user_id, name, client_id)) = user else {
            return Ok(());
        };
        let token = token::generate();
        let expires_at = now + RESET_MINUTES * 60;
        let mut tx = pool.begin().await?;
        // An invitation not yet used stays: the reset link does what it would.
        sqlx::query("DELETE FROM account_links WHERE user_id = $1 AND purpose = 'reset'")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        insert_link(
            &mut tx,
            &token,
            user_id,
            LinkPurpose::Reset,
            (now, expires_at),
        )
        .await?;
        self.record(
            &mut *tx,
            Who::Named(Some(user_id), email.as_str()),
            Entry::new(
                AuditAction::PasswordResetLink,
                format!("user {}", email.as_str()),
            )
            .of_client(client_id)
            .detail(format!(
                "Asked for from the sign-in page; sent by e-mail, works for {RESET_MINUTES} min."
            )),
        )
        .await?;
        crate::db::commit(tx).await?;
        let Some(mailer) = &self.mailer else {
            return Ok(());
        };
        let letter = mail::password_reset(&name, &self.link_url(&token), RESET_MINUTES);
        if let Err(e) = mailer.send(&name, email.as_str(), letter).await {
            tracing::error!(user_id, error = %e, "a password reset link could not be sent");
        }
        Ok(())
    }

    /// What a link is for and whose it is, while it can be used.
    pub async fn password_link(&self, token: &str) -> Result<Option<PasswordLinkInfo>> {
        Ok(self.usable_link(token).await?.map(|row| PasswordLinkInfo {
            purpose: LinkPurpose::from_code(&row.purpose).unwrap_or(LinkPurpose::Reset),
            name: row.name,
            email: row.email,
        }))
    }

    /// Sets the password through a link, once: an invitation signs the person in; a reset ends
    /// every session and API token of the account and lifts its sign-in locks, and they sign in
    /// with the new password (and their second factor).
    pub async fn use_password_link(
        &self,
        token: &str,
        new_password: &str,
        address: &str,
    ) -> Result<LinkUsed> {
        let gone =
            || Error::Gone("This link has expired or was already used: ask for a new one.".into());
        let row = self.usable_link(token).await?.ok_or_else(gone)?;
        let purpose = LinkPurpose::from_code(&row.purpose).unwrap_or(LinkPurpose::Reset);
        let new_password = password::choose(new_password, &[&row.email, &row.name])?;
        let hash = password::hash(&new_password).await?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let consumed = sqlx::query(
            "DELETE FROM account_links WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3",
        )
        .bind(token::digest(token))
        .bind(row.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if consumed == 0 {
            return Err(gone());
        }
        // An invitation signs in only an account that has no password yet (one sent again while
        // the first was being accepted must not open the account that came of it).
        let has_password: i64 = sqlx::query_scalar(
            "SELECT CAST(CASE WHEN password_hash = $2 THEN 0 ELSE 1 END AS BIGINT) FROM users \
             WHERE id = $1",
        )
        .bind(row.user_id)
        .bind(password::NOT_SET)
        .fetch_one(&mut *tx)
        .await?;
        if purpose == LinkPurpose::Invitation && has_password == 1 {
            return Err(Error::Gone(
                "This invitation was already accepted: sign in, or reset the password from the \
                 sign-in page."
                    .into(),
            ));
        }
        password_set(&mut tx, row.user_id, &hash, None, AfterPassword::RESET, now).await?;
        let who = Who::Named(Some(row.user_id), &row.email);
        let subject = format!("user {}", row.email);
        let (entry, session) = match purpose {
            LinkPurpose::Invitation => {
                let session = open_session(&mut tx, row.user_id, address, now).await?;
                sqlx::query("UPDATE users SET last_sign_in_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(row.user_id)
                    .execute(&mut *tx)
                    .await?;
                let entry = Entry::new(AuditAction::InvitationAccept, subject)
                    .detail("Password chosen through the invitation link.");
                (entry, Some(session))
            }
            LinkPurpose::Reset => (
                Entry::new(AuditAction::PasswordReset, subject)
                    .detail("Through a reset link; sessions ended, API tokens revoked."),
                None,
            ),
        };
        self.record(&mut *tx, who, entry.of_client(row.client_id))
            .await?;
        crate::db::commit(tx).await?;
        tracing::info!(
            user_id = row.user_id,
            purpose = purpose.code(),
            "password set through a link"
        );
        Ok(match session {
            Some(token) => LinkUsed::Arrived(SignedIn {
                user: self.user_by_id(row.user_id).await?,
                token: token.into(),
            }),
            None => LinkUsed::PasswordReset,
        })
    }

    /// Deletes links past their expiry; run now and then by a background job.
    /// Deletes links past their expiry, and reset requests older than the hour they count
    /// for; run now and then by a background job.
    pub async fn purge_expired_links(&self) -> Result<u64> {
        let now = self.clock.now();
        let done = sqlx::query("DELETE FROM account_links WHERE expires_at <= $1")
            .bind(now)
            .execute(self.db.pool())
            .await?;
        sqlx::query("DELETE FROM password_reset_requests WHERE at <= $1")
            .bind(now - 3600)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    async fn usable_link(&self, token: &str) -> Result<Option<LinkRow>> {
        if !token::well_formed(token) {
            return Ok(None);
        }
        Ok(sqlx::query_as(
            "SELECT u.id AS user_id, l.purpose, u.name, u.email, u.client_id \
             FROM account_links l JOIN users u ON u.id = l.user_id \
             WHERE l.token_hash = $1 AND l.expires_at > $2",
        )
        .bind(token::digest(token))
        .bind(self.clock.now())
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// The address of a link: always the configured public URL, never the one a request named
    /// (a forged Host header must not send someone's reset link elsewhere).
    fn link_url(&self, token: &str) -> String {
        format!(
            "{}/password-link/{token}",
            self.issuer.trim_end_matches('/')
        )
    }

    /// Sends `letter` when a mail server is set up; otherwise (or when it refuses) the link is
    /// handed back to the administrator to pass on.
    async fn deliver(
        &self,
        name: &str,
        email: &str,
        letter: Letter,
        link: String,
        expires_at: i64,
    ) -> LinkDelivery {
        let Some(mailer) = &self.mailer else {
            return LinkDelivery::PassOn {
                link,
                expires_at,
                why: "No mail server is set up (LICENTIA_SMTP_URL).".to_owned(),
            };
        };
        match mailer.send(name, email, letter).await {
            Ok(()) => LinkDelivery::Mailed {
                to: email.to_owned(),
            },
            Err(why) => {
                tracing::error!(error = %why, "a link could not be sent by e-mail");
                LinkDelivery::PassOn {
                    link,
                    expires_at,
                    why: format!("The e-mail could not be sent: {why}."),
                }
            }
        }
    }

    async fn client_name(&self, client_id: i64) -> Result<String> {
        sqlx::query_scalar("SELECT name FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The client"))
    }
}

async fn insert_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token: &str,
    user_id: i64,
    purpose: LinkPurpose,
    (created_at, expires_at): (i64, i64),
) -> Result<()> {
    sqlx::query(
        "INSERT INTO account_links (token_hash, user_id, purpose, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token::digest(token))
    .bind(user_id)
    .bind(purpose.code())
    .bind(created_at)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
