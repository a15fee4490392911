//! Signing in and out, and server-side sessions. The cookie holds a random token; the database holds
//! only its digest, with the times that end the session when idle or simply old.

use super::password;
use super::second_factor::SignInStep;
use crate::audit::{client_of, Entry, Who};
use crate::token;
use crate::{Error, Licentia, Result};
use protocol::account::{ClientRef, CurrentUser, OwnSession, Role};
use protocol::audit::AuditAction;
use protocol::input::{Email, Password};
use secrecy::SecretString;
use sqlx::{Any, AnyConnection, Executor};

/// A new session: the user it belongs to and the token to put in the cookie (never printed).
#[derive(Debug)]
pub struct SignedIn {
    pub user: CurrentUser,
    pub token: SecretString,
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub client_id: Option<i64>,
    pub client_name: Option<String>,
    pub second_factor: i64,
}

impl UserRow {
    /// The user as the services see them; `admin_second_factor`: the server requires one of
    /// administrators.
    pub(crate) fn into_current(self, admin_second_factor: bool) -> Result<CurrentUser> {
        let role = Role::parse(&self.role)
            .ok_or_else(|| Error::Internal(format!("unknown role {:?}", self.role)))?;
        let client = match (self.client_id, self.client_name) {
            (Some(id), Some(name)) => Some(ClientRef { id, name }),
            _ => None,
        };
        let second_factor = self.second_factor != 0;
        Ok(CurrentUser {
            id: self.id,
            email: self.email,
            name: self.name,
            must_set_up_second_factor: role == Role::Admin && admin_second_factor && !second_factor,
            role,
            client,
            second_factor,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    created_at: i64,
    last_seen_at: i64,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: i64,
    password_hash: String,
    client_id: Option<i64>,
}

/// How many hex digits of a session's digest name it in the owner's list.
const SESSION_ID_LEN: usize = 16;

fn session_id(digest: &str) -> String {
    digest.chars().take(SESSION_ID_LEN).collect()
}

/// Session activity is written at most this often, to keep reads from turning into writes.
const TOUCH_EVERY_SECS: i64 = 60;

pub(crate) const USER_COLUMNS: &str =
    "u.id, u.email, u.name, u.role, u.client_id, c.name AS client_name, \
     CAST(CASE WHEN u.totp_secret IS NULL THEN 0 ELSE 1 END AS BIGINT) AS second_factor";

impl Licentia {
    /// Signs in an account without a second factor (`begin_sign_in`); one with a second factor
    /// is refused here (it signs in through the portal, in two steps).
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        address: &str,
        previous_token: Option<&str>,
    ) -> Result<SignedIn> {
        match self
            .begin_sign_in(email, password, address, previous_token)
            .await?
        {
            SignInStep::Done(signed) => Ok(signed),
            SignInStep::SecondFactor { .. } => Err(Error::refused(
                "This account signs in with a second factor: the code comes next.".into(),
            )),
        }
    }

    /// Checks an e-mail address and password and opens a new session — or, for an account with
    /// a second factor, answers with the ticket its code goes with (`complete_sign_in`).
    /// Unknown accounts and wrong passwords get the same answer; repeated failures lock the
    /// account and the address for a while. `previous_token` (the session cookie already held,
    /// if any) is ended: sessions rotate at sign-in.
    #[tracing::instrument(skip_all, fields(address))]
    pub async fn begin_sign_in(
        &self,
        email: &str,
        password: &str,
        address: &str,
        previous_token: Option<&str>,
    ) -> Result<SignInStep> {
        let email = Email::parse(email)?;
        let password = Password::for_sign_in(password)?;
        // The attempt is counted before the password is checked: a burst of parallel attempts
        // is cut off at the limit instead of all being hashed first.
        let counters = self.auth.throttles.counters(email.as_str(), address);
        if let Some(retry_after_secs) = self.throttle_attempt(&counters).await? {
            return Err(Error::Throttled { retry_after_secs });
        }

        let row: Option<CredentialRow> =
            sqlx::query_as("SELECT id, password_hash, client_id FROM users WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(self.db.pool())
                .await?;
        let (user_id, stored, client_id) = match row {
            Some(r) => (Some(r.id), Some(r.password_hash), r.client_id),
            None => (None, None, None),
        };
        let ok = match password::verify(&password, stored).await {
            Ok(ok) => ok,
            Err(e) => {
                self.throttle_uncount(&counters).await?;
                return Err(e);
            }
        };
        let user_id = match (ok, user_id) {
            (true, Some(id)) => id,
            _ => {
                let locked = self.throttle_failed(&counters).await?;
                let entry = match locked {
                    Some(secs) => Entry::new(AuditAction::SignInLocked, email.as_str())
                        .detail(format!("Wrong password; sign-in locked for {secs} s.")),
                    None => Entry::new(AuditAction::SignInFailed, email.as_str()).detail(
                        if user_id.is_some() {
                            "Wrong password."
                        } else {
                            "No such account."
                        },
                    ),
                };
                self.record_now(
                    Who::Named(user_id, email.as_str()),
                    entry.of_client(client_id),
                )
                .await?;
                return Err(match locked {
                    Some(retry_after_secs) => Error::Throttled { retry_after_secs },
                    None => Error::BadCredentials,
                });
            }
        };
        if let Some(ticket) = self.second_factor_challenge(user_id).await? {
            // The password was right: the attempt is taken back, and the code is counted in
            // its turn (earlier failures stand until the code is right too).
            self.throttle_uncount(&counters).await?;
            return Ok(SignInStep::SecondFactor {
                ticket: ticket.into(),
            });
        }
        self.throttle_succeeded(&counters).await?;
        let tx = self.db.pool().begin().await?;
        let signed = self
            .finish_sign_in(
                tx,
                previous_token,
                address,
                Entry::new(AuditAction::SignIn, email.as_str()).of_client(client_id),
                user_id,
            )
            .await?;
        Ok(SignInStep::Done(signed))
    }

    /// The end of every sign-in, in `tx` (with whatever the caller did in it before): the old
    /// session ended, the sign-in noted (and its audit `entry`), the new session opened, as one
    /// change.
    pub(crate) async fn finish_sign_in(
        &self,
        mut tx: sqlx::Transaction<'_, Any>,
        previous_token: Option<&str>,
        address: &str,
        entry: Entry,
        user_id: i64,
    ) -> Result<SignedIn> {
        let now = self.clock.now();
        if let Some(previous) = previous_token.filter(|t| token::well_formed(t)) {
            delete_session(&mut *tx, &token::digest(previous)).await?;
        }
        sqlx::query("UPDATE users SET last_sign_in_at = $1 WHERE id = $2")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let token = open_session(&mut tx, user_id, address, now).await?;
        let email = entry.subject.clone();
        self.record(&mut *tx, Who::Named(Some(user_id), &email), entry)
            .await?;
        crate::db::commit(tx).await?;
        let user = self.user_by_id(user_id).await?;
        tracing::info!(user_id, "signed in");
        Ok(SignedIn {
            user,
            token: token.into(),
        })
    }

    /// `actor` proves again it is them, with their password (before a sensitive change). The
    /// attempt counts against sign-in throttling like a sign-in from `address`: a stolen
    /// session cannot be used to guess the password. A wrong password is an error on `field`.
    /// A right one takes its own attempt back but clears no earlier failures: only a whole
    /// sign-in (or a right second-factor code) does, so a right password cannot be used to
    /// wipe the count of wrong codes guessed beside it.
    pub(crate) async fn reauthenticate(
        &self,
        actor: &CurrentUser,
        field: &'static str,
        password: &str,
        address: &str,
    ) -> Result<()> {
        let password = Password::for_sign_in(password)
            .map_err(|e| protocol::input::InputError::new(field, e.message))?;
        let counters = self.auth.throttles.counters(&actor.email, address);
        if let Some(retry_after_secs) = self.throttle_attempt(&counters).await? {
            return Err(Error::Throttled { retry_after_secs });
        }
        let stored: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(actor.id)
                .fetch_optional(self.db.pool())
                .await?;
        if stored.is_none() {
            return Err(Error::NotSignedIn);
        }
        let ok = match password::verify(&password, stored).await {
            Ok(ok) => ok,
            Err(e) => {
                self.throttle_uncount(&counters).await?;
                return Err(e);
            }
        };
        if ok {
            self.throttle_uncount(&counters).await?;
            return Ok(());
        }
        Err(match self.throttle_failed(&counters).await? {
            Some(retry_after_secs) => Error::Throttled { retry_after_secs },
            None => protocol::input::InputError::new(field, "The password is wrong.").into(),
        })
    }

    /// The caller's own sessions that are still alive, the newest first.
    pub async fn own_sessions(
        &self,
        actor: &CurrentUser,
        current_token: &str,
    ) -> Result<Vec<OwnSession>> {
        let now = self.clock.now();
        let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT token_hash, created_at, last_seen_at, address FROM sessions \
             WHERE user_id = $1 AND last_seen_at >= $2 AND created_at >= $3 \
             ORDER BY last_seen_at DESC, created_at DESC",
        )
        .bind(actor.id)
        .bind(now - self.auth.session_idle_secs)
        .bind(now - self.auth.session_absolute_secs)
        .fetch_all(self.db.pool())
        .await?;
        let current = token::well_formed(current_token).then(|| token::digest(current_token));
        Ok(rows
            .into_iter()
            .map(|(hash, created_at, last_seen_at, address)| OwnSession {
                id: session_id(&hash),
                current: current.as_deref() == Some(hash.as_str()),
                created_at,
                last_seen_at,
                address,
            })
            .collect())
    }

    /// Ends one of the caller's own sessions (`id` as `own_sessions` names it). Another user's
    /// session is never found.
    pub async fn end_own_session(&self, actor: &CurrentUser, id: &str) -> Result<()> {
        let valid = id.len() == SESSION_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(Error::NotFound("The session"));
        }
        let mut tx = self.db.pool().begin().await?;
        let ended = sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND substr(token_hash, 1, 16) = $2",
        )
        .bind(actor.id)
        .bind(id.to_ascii_lowercase())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended == 0 {
            return Err(Error::NotFound("The session"));
        }
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::SessionEnd, format!("session {id}"))
                .of_client(client_of(actor)),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(user_id = actor.id, "session ended by its owner");
        Ok(())
    }

    /// The user a session token belongs to, or `None` for a token that is malformed, unknown, idle
    /// too long or too old (an ended session is deleted).
    pub async fn session_user(&self, token: &str) -> Result<Option<CurrentUser>> {
        if !token::well_formed(token) {
            return Ok(None);
        }
        let digest = token::digest(token);
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.created_at, s.last_seen_at FROM sessions s \
             JOIN users u ON u.id = s.user_id LEFT JOIN clients c ON c.id = u.client_id \
             WHERE s.token_hash = $1"
        );
        let Some(row) = sqlx::query_as::<_, SessionRow>(&sql)
            .bind(&digest)
            .fetch_optional(self.db.pool())
            .await?
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        let idle = now - row.last_seen_at > self.auth.session_idle_secs;
        let old = now - row.created_at > self.auth.session_absolute_secs;
        if idle || old {
            delete_session(self.db.pool(), &digest).await?;
            return Ok(None);
        }
        if now - row.last_seen_at >= TOUCH_EVERY_SECS {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(&digest)
                .execute(self.db.pool())
                .await?;
        }
        row.user
            .into_current(self.auth.admin_second_factor)
            .map(Some)
    }

    /// Ends a session. Unknown or malformed tokens are ignored: signing out always succeeds.
    pub async fn sign_out(&self, token: &str) -> Result<()> {
        if token::well_formed(token) {
            delete_session(self.db.pool(), &token::digest(token)).await?;
        }
        Ok(())
    }

    /// Deletes sessions that can no longer be used; run now and then by a background job.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let now = self.clock.now();
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(now - self.auth.session_idle_secs)
            .bind(now - self.auth.session_absolute_secs)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn user_by_id(&self, user_id: i64) -> Result<CurrentUser> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u LEFT JOIN clients c ON c.id = u.client_id \
             WHERE u.id = $1"
        );
        sqlx::query_as::<_, UserRow>(&sql)
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The user"))?
            .into_current(self.auth.admin_second_factor)
    }
}

/// Starts a session for a user who has just proven who they are; returns its token.
pub(crate) async fn open_session(
    conn: &mut AnyConnection,
    user_id: i64,
    address: &str,
    now: i64,
) -> Result<String> {
    let token = token::generate();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, address) \
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(token::digest(&token))
    .bind(user_id)
    .bind(now)
    .bind(address)
    .execute(conn)
    .await?;
    Ok(token)
}

pub(crate) async fn delete_session(
    db: impl Executor<'_, Database = Any>,
    digest: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(digest)
        .execute(db)
        .await?;
    Ok(())
}

/// Ends every session of a user except, optionally, the one with `keep_token`.
pub(crate) async fn end_sessions_of(
    conn: &mut AnyConnection,
    user_id: i64,
    keep_token: Option<&str>,
) -> Result<()> {
    let keep = keep_token.map(token::digest).unwrap_or_default();
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep)
        .execute(conn)
        .await?;
    Ok(())
}
