//! Bearer tokens for the management API. A token acts as the user who created it — an
//! administrator's reaches everything, a client user's only that client's data — and is either
//! read-only or read-write. The secret is shown once; only its SHA-256 digest is stored. Every
//! token expires (90 days unless its owner chooses, at most a year); making one needs the
//! owner's password, and an administrator's reset of that password revokes them all.

use crate::audit::{client_of, Entry, Who};
use crate::{Error, Licentia, Result};
use protocol::account::{CurrentUser, Role};
use protocol::audit::AuditAction;
use protocol::catalog::ApiToken;
use protocol::input::InputError;

/// How long a token lasts when its owner does not say.
pub const DEFAULT_TOKEN_DAYS: i64 = 90;
/// The longest a token may last.
pub const MAX_TOKEN_DAYS: i64 = 365;

/// When a token made at `now` to last `days` (default 90) expires.
pub fn token_expiry(now: i64, days: Option<i64>) -> std::result::Result<i64, InputError> {
    let days = days.unwrap_or(DEFAULT_TOKEN_DAYS);
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(InputError::new(
            "days",
            format!("A token lasts 1 to {MAX_TOKEN_DAYS} days."),
        ));
    }
    Ok(now + days * 86_400)
}

/// What every token starts with, so a leaked one is recognisable (and secret scanners find it).
pub const TOKEN_PREFIX: &str = "lic_";

/// Characters of the secret kept in clear to tell tokens apart in lists.
const SHOWN: usize = TOKEN_PREFIX.len() + 6;

/// What making a token asks for.
#[derive(Debug, Clone, Copy)]
pub struct NewApiToken<'a> {
    pub name: &'a str,
    pub can_write: bool,
    /// How long it lasts (default 90 days).
    pub days: Option<i64>,
    /// The owner's password, again.
    pub password: &'a str,
    /// A code from the owner's authenticator app, when they have a second factor (a session
    /// and a password are not enough to mint a lasting credential then).
    pub code: &'a str,
}

/// A token's holder, as a request authenticated with it acts.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub user: CurrentUser,
    pub can_write: bool,
    pub token_id: i64,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    can_write: i64,
    owner_email: String,
    client_name: Option<String>,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> Self {
        ApiToken {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            can_write: r.can_write != 0,
            owner_email: r.owner_email,
            client_name: r.client_name,
            created_at: r.created_at,
            expires_at: r.expires_at,
            expired: false,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const TOKEN_SELECT: &str = "SELECT t.id, t.name, t.prefix, t.can_write, u.email AS owner_email, \
     c.name AS client_name, t.created_at, t.expires_at, t.last_used_at, t.revoked_at \
     FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN clients c ON c.id = u.client_id";

/// Last-used times are written at most this often per token, so reads do not all become writes.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

impl Licentia {
    /// Creates a token for `actor`, who proves it is them with their password (a session left
    /// open is not enough to mint a credential that outlives it); returns it with its secret,
    /// which is never shown again. `days`: how long it lasts (default 90, at most 365).
    pub async fn create_api_token(
        &self,
        actor: &CurrentUser,
        new: NewApiToken<'_>,
        address: &str,
    ) -> Result<(ApiToken, String)> {
        let name = protocol::input::text_line(
            "name",
            new.name,
            1..=100,
            "Give the token a name of 1 to 100 characters, such as \u{201c}billing system\u{201d}.",
        )?;
        let name = name.as_str();
        let now = self.clock.now();
        let expires_at = token_expiry(now, new.days)?;
        self.reauthenticate(actor, "password", new.password, address)
            .await?;
        self.second_factor_if_on(actor, new.code, address, "making an API token")
            .await?;
        let secret = format!("{TOKEN_PREFIX}{}", crate::token::generate());
        let mut tx = self.db.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix, can_write, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(actor.id)
        .bind(name)
        .bind(crate::token::digest(&secret))
        .bind(&secret[..SHOWN])
        .bind(i64::from(new.can_write))
        .bind(now)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::TokenCreate, format!("API token {name}"))
                .of_client(client_of(actor))
                .detail(format!(
                    "{}, until {}.",
                    if new.can_write {
                        "Read-write"
                    } else {
                        "Read-only"
                    },
                    protocol::time::format_utc(expires_at)
                )),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(
            token_id = id,
            by = actor.id,
            can_write = new.can_write,
            "API token created"
        );
        Ok((self.api_token(actor, id).await?, secret))
    }

    async fn api_token(&self, actor: &CurrentUser, id: i64) -> Result<ApiToken> {
        self.list_api_tokens(actor)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or(Error::NotFound("The API token"))
    }

    /// The tokens `actor` may see: an administrator's all; a client user's own.
    pub async fn list_api_tokens(&self, actor: &CurrentUser) -> Result<Vec<ApiToken>> {
        let owner = match actor.role {
            Role::Admin => None,
            Role::Client => Some(actor.id),
        };
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "{TOKEN_SELECT} WHERE ($1 IS NULL OR t.user_id = $1) ORDER BY t.id DESC"
        ))
        .bind(owner)
        .fetch_all(self.db.pool())
        .await?;
        let now = self.clock.now();
        Ok(rows
            .into_iter()
            .map(ApiToken::from)
            .map(|t| ApiToken {
                expired: now >= t.expires_at,
                ..t
            })
            .collect())
    }

    /// Revokes a token at once: its next request is refused.
    pub async fn revoke_api_token(&self, actor: &CurrentUser, id: i64) -> Result<ApiToken> {
        let token = self.api_token(actor, id).await?;
        if token.revoked_at.is_none() {
            let mut tx = self.db.pool().begin().await?;
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
                .bind(self.clock.now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let owner_client: Option<i64> = sqlx::query_scalar(
                "SELECT u.client_id FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
            self.record(
                &mut *tx,
                Who::User(actor),
                Entry::new(
                    AuditAction::TokenRevoke,
                    format!("API token {}", token.name),
                )
                .of_client(owner_client),
            )
            .await?;
            crate::db::commit(tx).await?;
            tracing::info!(token_id = id, by = actor.id, "API token revoked");
        }
        self.api_token(actor, id).await
    }

    /// Who a bearer token acts for. Unknown, malformed, revoked and expired tokens are all
    /// refused alike.
    pub async fn token_holder(&self, secret: &str) -> Result<TokenHolder> {
        let body = secret
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(Error::NotSignedIn)?;
        if !crate::token::well_formed(body) {
            return Err(Error::NotSignedIn);
        }
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            user_id: i64,
            name: String,
            can_write: i64,
            revoked_at: Option<i64>,
            expires_at: i64,
            last_used_at: Option<i64>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, user_id, name, can_write, revoked_at, expires_at, last_used_at \
             FROM api_tokens \
             WHERE token_hash = $1",
        )
        .bind(crate::token::digest(secret))
        .fetch_optional(self.db.pool())
        .await?;
        let Some(Row {
            id: token_id,
            user_id,
            name,
            can_write,
            revoked_at: None,
            expires_at,
            last_used_at: last_used,
        }) = row
        else {
            return Err(Error::NotSignedIn);
        };
        let now = self.clock.now();
        if now >= expires_at {
            return Err(Error::NotSignedIn);
        }
        let user = self.user_by_id(user_id).await.map_err(|e| match e {
            Error::NotFound(_) => Error::NotSignedIn,
            other => other,
        })?;
        crate::audit::Origin::note_token(&name);
        if last_used.is_none_or(|t| now - t >= LAST_USED_RESOLUTION_SECS) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(token_id)
                .execute(self.db.pool())
                .await?;
        }
        Ok(TokenHolder {
            user,
            can_write: can_write != 0,
            token_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_last_90_days_unless_told_and_never_more_than_a_year() {
        assert_eq!(token_expiry(1_000, None), Ok(1_000 + 90 * 86_400));
        assert_eq!(token_expiry(1_000, Some(1)), Ok(1_000 + 86_400));
        assert_eq!(token_expiry(1_000, Some(365)), Ok(1_000 + 365 * 86_400));
        for bad in [0, -1, 366, i64::MAX] {
            assert_eq!(
                token_expiry(1_000, Some(bad)).map_err(|e| e.field),
                Err("days")
            );
        }
    }
}
