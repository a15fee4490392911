//! The first administrator. An empty database gets a one-time setup link at start-up (printed to
//! the console, never a default password); the admin CLI can create administrators at any time.

use super::password;
use crate::accounts::sessions::{open_session, SignedIn};
use crate::audit::{Entry, Who};
use crate::token;
use crate::{Error, Licentia, Result};
use protocol::audit::AuditAction;
use protocol::input::{Email, PersonName};

impl Licentia {
    pub async fn admin_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .fetch_one(self.db.pool())
                .await?,
        )
    }

    /// When no administrator exists, replaces any earlier setup link by a new one and returns its
    /// token; otherwise returns `None`.
    pub async fn issue_setup_token(&self) -> Result<Option<String>> {
        if self.admin_count().await? > 0 {
            return Ok(None);
        }
        let token = token::generate();
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("DELETE FROM setup_tokens")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token::digest(&token))
        .bind(now)
        .bind(now + self.auth.setup_link_secs)
        .execute(&mut *tx)
        .await?;
        crate::db::commit(tx).await?;
        Ok(Some(token))
    }

    /// Whether a setup link can still be used, so the page can say so before the form is filled.
    pub async fn setup_token_usable(&self, token: &str) -> Result<bool> {
        if !token::well_formed(token) || self.admin_count().await? > 0 {
            return Ok(false);
        }
        let expires: Option<i64> =
            sqlx::query_scalar("SELECT expires_at FROM setup_tokens WHERE token_hash = $1")
                .bind(token::digest(token))
                .fetch_optional(self.db.pool())
                .await?;
        Ok(expires.is_some_and(|e| e > self.clock.now()))
    }

    /// Creates the first administrator through the setup link and signs them in. The link works
    /// once: it is consumed in the same transaction that creates the account.
    pub async fn complete_setup(
        &self,
        token: &str,
        name: &str,
        email: &str,
        new_password: &str,
        address: &str,
    ) -> Result<SignedIn> {
        let name = PersonName::parse(name)?;
        let email = Email::parse(email)?;
        let new_password = password::choose(new_password, &[email.as_str(), name.as_str()])?;
        if !token::well_formed(token) {
            return Err(Error::SetupLink("it is malformed"));
        }
        // The link and "no administrator yet" first: a password is hashed (19 MiB, a thread)
        // only for a setup that can succeed. (Both are checked again where the link is used.)
        let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .fetch_one(self.db.pool())
            .await?;
        if admins > 0 {
            return Err(Error::SetupLink(
                "an administrator already exists; sign in instead",
            ));
        }
        let usable: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token::digest(token))
        .bind(self.clock.now())
        .fetch_optional(self.db.pool())
        .await?;
        if usable.is_none() {
            return Err(Error::SetupLink(
                "it has expired or was already used; restart the server for a new one",
            ));
        }
        let hash = password::hash(&new_password).await?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let consumed =
            sqlx::query("DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
                .bind(token::digest(token))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if consumed == 0 {
            return Err(Error::SetupLink(
                "it has expired or was already used; restart the server for a new one",
            ));
        }
        let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .fetch_one(&mut *tx)
            .await?;
        if admins > 0 {
            return Err(Error::SetupLink(
                "an administrator already exists; sign in instead",
            ));
        }
        let user_id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, name, role, client_id, password_hash, created_at, \
             password_changed_at, last_sign_in_at) VALUES ($1, $2, 'admin', NULL, $3, $4, $4, $4) \
             RETURNING id",
        )
        .bind(email.as_str())
        .bind(name.as_str())
        .bind(&hash)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM setup_tokens")
            .execute(&mut *tx)
            .await?;
        let token = open_session(&mut tx, user_id, address, now).await?;
        self.record(
            &mut *tx,
            Who::Named(Some(user_id), email.as_str()),
            Entry::new(AuditAction::AdminSetup, format!("user {}", email.as_str()))
                .detail("First administrator, through the setup link."),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(
            user_id,
            "first administrator created through the setup link"
        );
        let user = self.user_by_id(user_id).await?;
        Ok(SignedIn {
            user,
            token: token.into(),
        })
    }

    /// Creates an administrator (the admin CLI's `admin create`). Any pending setup link dies.
    pub async fn create_admin(&self, name: &str, email: &str, new_password: &str) -> Result<i64> {
        let name = PersonName::parse(name)?;
        let email = Email::parse(email)?;
        let new_password = password::choose(new_password, &[email.as_str(), name.as_str()])?;
        let hash = password::hash(&new_password).await?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let user_id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, name, role, client_id, password_hash, created_at, \
             password_changed_at) VALUES ($1, $2, 'admin', NULL, $3, $4, $4) RETURNING id",
        )
        .bind(email.as_str())
        .bind(name.as_str())
        .bind(&hash)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| Error::unique_as_conflict(e, super::clients::duplicate_email(&email)))?;
        sqlx::query("DELETE FROM setup_tokens")
            .execute(&mut *tx)
            .await?;
        self.record(
            &mut *tx,
            Who::Operator,
            Entry::new(AuditAction::AdminCreate, format!("user {}", email.as_str())),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(user_id)
    }
}
