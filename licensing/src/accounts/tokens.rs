//! Bearer tokens for the management API. A token acts as the user who created it — an
//! administrator's reaches everything, a client user's only that client's data — and is either
//! read-only or read-write. The secret is shown once; only its SHA-256 digest is stored.

use crate::{Error, Licentia, Result};
use protocol::account::{CurrentUser, Role};
use protocol::catalog::ApiToken;

/// What every token starts with, so a leaked one is recognisable (and secret scanners find it).
pub const TOKEN_PREFIX: &str = "lic_";

/// Characters of the secret kept in clear to tell tokens apart in lists.
const SHOWN: usize = TOKEN_PREFIX.len() + 6;

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
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const TOKEN_SELECT: &str = "SELECT t.id, t.name, t.prefix, t.can_write, u.email AS owner_email, \
     c.name AS client_name, t.created_at, t.last_used_at, t.revoked_at \
     FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN clients c ON c.id = u.client_id";

/// Last-used times are written at most this often per token, so reads do not all become writes.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

impl Licentia {
    /// Creates a token for `actor`; returns it with its secret, which is never shown again.
    pub async fn create_api_token(
        &self,
        actor: &CurrentUser,
        name: &str,
        can_write: bool,
    ) -> Result<(ApiToken, String)> {
        let name = protocol::input::text_line(
            "name",
            name,
            1..=100,
            "Give the token a name of 1 to 100 characters, such as \u{201c}billing system\u{201d}.",
        )?;
        let name = name.as_str();
        let secret = format!("{TOKEN_PREFIX}{}", crate::token::generate());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix, can_write, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(actor.id)
        .bind(name)
        .bind(crate::token::digest(&secret))
        .bind(&secret[..SHOWN])
        .bind(i64::from(can_write))
        .bind(self.clock.now())
        .fetch_one(self.db.pool())
        .await?;
        tracing::info!(token_id = id, by = actor.id, can_write, "API token created");
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
        Ok(rows.into_iter().map(ApiToken::from).collect())
    }

    /// Revokes a token at once: its next request is refused.
    pub async fn revoke_api_token(&self, actor: &CurrentUser, id: i64) -> Result<ApiToken> {
        let token = self.api_token(actor, id).await?;
        if token.revoked_at.is_none() {
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
                .bind(self.clock.now())
                .bind(id)
                .execute(self.db.pool())
                .await?;
            tracing::info!(token_id = id, by = actor.id, "API token revoked");
        }
        self.api_token(actor, id).await
    }

    /// Who a bearer token acts for. Unknown, malformed and revoked tokens are all refused alike.
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
            can_write: i64,
            revoked_at: Option<i64>,
            last_used_at: Option<i64>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, user_id, can_write, revoked_at, last_used_at FROM api_tokens \
             WHERE token_hash = $1",
        )
        .bind(crate::token::digest(secret))
        .fetch_optional(self.db.pool())
        .await?;
        let Some(Row {
            id: token_id,
            user_id,
            can_write,
            revoked_at: None,
            last_used_at: last_used,
        }) = row
        else {
            return Err(Error::NotSignedIn);
        };
        let user = self.user_by_id(user_id).await.map_err(|e| match e {
            Error::NotFound(_) => Error::NotSignedIn,
            other => other,
        })?;
        let now = self.clock.now();
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
