//! The second factor: setting up an authenticator app (its secret sealed with the master key,
//! bound to the user), recovery codes that work once, the sign-in step between a right password
//! and its code, and taking the factor away (the owner with a code, or the admin CLI).

use super::sessions::{end_sessions_of, SignedIn};
use super::totp;
use crate::audit::{client_of, Entry, Who};
use crate::token;
use crate::{Error, Licentia, Result};
use protocol::account::{CurrentUser, SecondFactorSetup};
use protocol::audit::AuditAction;
use protocol::input::{Email, InputError};
use secrecy::SecretString;
use sha2::Sha256;

/// How long a right password waits for its code.
const CHALLENGE_SECS: i64 = 300;
/// Wrong codes one challenge takes before the password must be given again.
const CHALLENGE_TRIES: i64 = 5;
/// What an administrator without a second factor is told, where the server requires one.
pub const SET_UP_FIRST: &str = "This server requires administrators to use a second factor: set \
    up an authenticator app on your account page (My account) first.";

/// The name in authenticator apps.
const ISSUER: &str = "Licentia";

/// What a sign-in with a right password leads to.
#[derive(Debug)]
pub enum SignInStep {
    /// Signed in (the account has no second factor).
    Done(SignedIn),
    /// The account has a second factor: `ticket` goes back with the code.
    SecondFactor { ticket: SecretString },
}

fn sealing_aad(user_id: i64) -> Vec<u8> {
    format!("licentia totp secret\0{user_id}").into_bytes()
}

/// A recovery code as it is kept: an HMAC keyed from the master key (a copy of the database
/// alone cannot test guesses), bound to its user.
fn recovery_hash(key: &[u8; 32], user_id: i64, code: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{user_id}\0{code}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stored secret (sealed) of a user and the last step used.
#[derive(sqlx::FromRow)]
struct FactorRow {
    totp_secret: Option<String>,
    totp_pending: Option<String>,
    totp_last_step: Option<i64>,
}

fn wrong_code() -> Error {
    InputError::new(
        "code",
        "That code is wrong or was already used: enter the code your app shows now, or one of \
         your recovery codes.",
    )
    .into()
}

/// How a second factor was shown.
enum Proof {
    Code { step: i64 },
    RecoveryCode,
}

impl Licentia {
    async fn factor_row(&self, user_id: i64) -> Result<FactorRow> {
        sqlx::query_as("SELECT totp_secret, totp_pending, totp_last_step FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotSignedIn)
    }

    fn open_secret(&self, user_id: i64, sealed: &str) -> Result<Vec<u8>> {
        self.master_key
            .open_for(&sealing_aad(user_id), sealed, "a second-factor secret")
    }

    /// Checks `typed` (a code from the app, or a recovery code) against the user's second factor
    /// and spends it: a code's step, a recovery code, each works once. `Ok(None)`: wrong.
    async fn spend_second_factor(&self, user_id: i64, typed: &str) -> Result<Option<Proof>> {
        let row = self.factor_row(user_id).await?;
        let Some(sealed) = row.totp_secret else {
            return Ok(None);
        };
        let secret = self.open_secret(user_id, &sealed)?;
        if let Some(step) =
            totp::matching_step(&secret, typed, self.clock.now(), row.totp_last_step)
        {
            // Conditional: of two sign-ins racing with the same code, one spends it.
            let spent = sqlx::query(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 \
                 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            )
            .bind(step)
            .bind(user_id)
            .execute(self.db.pool())
            .await?
            .rows_affected();
            return Ok((spent == 1).then_some(Proof::Code { step }));
        }
        let Some(code) = totp::normalise_recovery_code(typed) else {
            return Ok(None);
        };
        let spent = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(self.clock.now())
        .bind(user_id)
        .bind(recovery_hash(&self.recovery_key(), user_id, &code))
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok((spent == 1).then_some(Proof::RecoveryCode))
    }

    /// Spends `code` as the user's second factor, counted like a password attempt from
    /// `address` (so guessing codes is throttled as guessing passwords is): `Some` when right,
    /// `None` when wrong (recorded in the audit log, with `doing`), `Throttled` when locked.
    async fn spend_counted(
        &self,
        user_id: i64,
        email: &str,
        client_id: Option<i64>,
        code: &str,
        address: &str,
        doing: &str,
    ) -> Result<Option<Proof>> {
        let counters = self.auth.throttles.counters(email, address);
        if let Some(retry_after_secs) = self.throttle_attempt(&counters).await? {
            return Err(Error::Throttled { retry_after_secs });
        }
        match self.spend_second_factor(user_id, code).await {
            Err(e) => {
                self.throttle_uncount(&counters).await?;
                Err(e)
            }
            Ok(Some(proof)) => {
                self.throttle_succeeded(&counters).await?;
                Ok(Some(proof))
            }
            Ok(None) => {
                let locked = self.throttle_failed(&counters).await?;
                let entry = match locked {
                    Some(secs) => Entry::new(AuditAction::SignInLocked, email).detail(format!(
                        "Wrong authentication code ({doing}); locked for {secs} s."
                    )),
                    None => Entry::new(AuditAction::SignInFailed, email)
                        .detail(format!("Wrong authentication code ({doing}).")),
                };
                self.record_now(Who::Named(Some(user_id), email), entry.of_client(client_id))
                    .await?;
                match locked {
                    Some(retry_after_secs) => Err(Error::Throttled { retry_after_secs }),
                    None => Ok(None),
                }
            }
        }
    }

    fn recovery_key(&self) -> [u8; 32] {
        self.master_key.derive("licentia recovery codes v1")
    }

    async fn recovery_codes_left(&self, user_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.db.pool())
        .await?)
    }

    /// After a right password (`sign_in` checked it): a challenge for an account with a second
    /// factor, `None` for one without.
    pub(crate) async fn second_factor_challenge(&self, user_id: i64) -> Result<Option<String>> {
        let has: Option<String> = sqlx::query_scalar("SELECT totp_secret FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .flatten();
        if has.is_none() {
            return Ok(None);
        }
        let now = self.clock.now();
        sqlx::query("DELETE FROM sign_in_challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(self.db.pool())
            .await?;
        let ticket = token::generate();
        sqlx::query(
            "INSERT INTO sign_in_challenges (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token::digest(&ticket))
        .bind(user_id)
        .bind(now + CHALLENGE_SECS)
        .execute(self.db.pool())
        .await?;
        Ok(Some(ticket))
    }

    /// The second step of signing in: the code (or a recovery code) for the `ticket` a right
    /// password gave. Wrong codes count like wrong passwords from `address` (throttled), and a
    /// ticket takes five before the password must be given again.
    pub async fn complete_sign_in(
        &self,
        ticket: &str,
        code: &str,
        address: &str,
        previous_token: Option<&str>,
    ) -> Result<SignedIn> {
        let expired = || {
            Error::Gone(
                "This sign-in has expired or was already used: enter your password again.".into(),
            )
        };
        if !token::well_formed(ticket) {
            return Err(expired());
        }
        let now = self.clock.now();
        let digest = token::digest(ticket);
        // The ticket is taken whole: one request at a time checks it (a parallel one finds
        // none), and a wrong code puts it back with one failure more, until five.
        let taken: Option<(i64, i64, i64)> = sqlx::query_as(
            "DELETE FROM sign_in_challenges WHERE token_hash = $1 AND expires_at > $2 \
             RETURNING user_id, expires_at, failures",
        )
        .bind(&digest)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        let (user_id, expires_at, failures) = taken.ok_or_else(expired)?;
        let (email, client_id): (String, Option<i64>) =
            sqlx::query_as("SELECT email, client_id FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_one(self.db.pool())
                .await?;
        let spent = self
            .spend_counted(user_id, &email, client_id, code, address, "signing in")
            .await;
        let proof = match spent {
            Ok(Some(proof)) => proof,
            failed => {
                let tries = failures + 1;
                if tries < CHALLENGE_TRIES {
                    sqlx::query(
                        "INSERT INTO sign_in_challenges (token_hash, user_id, expires_at, \
                         failures) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&digest)
                    .bind(user_id)
                    .bind(expires_at)
                    .bind(tries)
                    .execute(self.db.pool())
                    .await?;
                }
                return Err(match failed {
                    Err(e) => e,
                    Ok(_) if tries >= CHALLENGE_TRIES => {
                        Error::Gone("Too many wrong codes: enter your password again.".into())
                    }
                    Ok(_) => wrong_code(),
                });
            }
        };
        let detail = match proof {
            Proof::Code { step } => format!("With an authentication code (step {step})."),
            Proof::RecoveryCode => format!(
                "With a recovery code; {} left.",
                self.recovery_codes_left(user_id).await?
            ),
        };
        let tx = self.db.pool().begin().await?;
        self.finish_sign_in(
            tx,
            previous_token,
            address,
            Entry::new(AuditAction::SignIn, &email)
                .of_client(client_id)
                .detail(detail),
            user_id,
        )
        .await
    }

    /// Begins setting up an authenticator app: a new secret, kept aside until a code from the
    /// app confirms it (`confirm_second_factor`). Asked again, it starts over.
    pub async fn begin_second_factor(&self, actor: &CurrentUser) -> Result<SecondFactorSetup> {
        // Another app in place of the one set up would take only the password: it is turned
        // off first, with a code.
        if self.factor_row(actor.id).await?.totp_secret.is_some() {
            return Err(Error::Conflict(
                "Two-factor authentication is on already. To use another app, turn it off first \
                 (with a code from the current one), then set up the new one."
                    .into(),
            ));
        }
        let secret = totp::new_secret();
        let sealed = self.master_key.seal_for(&sealing_aad(actor.id), &secret)?;
        sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
            .bind(&sealed)
            .bind(actor.id)
            .execute(self.db.pool())
            .await?;
        Ok(SecondFactorSetup {
            secret: totp::secret_text(&secret),
            uri: totp::otpauth_uri(ISSUER, &actor.email, &secret),
        })
    }

    /// Turns the second factor on with a code from the app just set up, proving the password
    /// again (a session left open is not enough to bind someone else's phone to the account);
    /// returns the recovery codes, shown this once.
    pub async fn confirm_second_factor(
        &self,
        actor: &CurrentUser,
        password: &str,
        code: &str,
        address: &str,
        keep_token: &str,
    ) -> Result<Vec<String>> {
        self.reauthenticate(actor, "password", password, address)
            .await?;
        let row = self.factor_row(actor.id).await?;
        let Some(pending) = row.totp_pending else {
            return Err(Error::Conflict(
                "Start the setup again: no authenticator app is being set up.".into(),
            ));
        };
        let secret = self.open_secret(actor.id, &pending)?;
        let Some(step) = totp::matching_step(&secret, code, self.clock.now(), None) else {
            return Err(InputError::new(
                "code",
                "That code does not match: enter the six digits your app shows now (check that \
                 the phone's clock is right).",
            )
            .into());
        };
        let mut tx = self.db.pool().begin().await?;
        let moved = sqlx::query(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, \
             totp_last_step = $1 WHERE id = $2 AND totp_pending = $3",
        )
        .bind(step)
        .bind(actor.id)
        .bind(&pending)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Err(Error::Conflict(
                "The setup was started again meanwhile: use the newest key.".into(),
            ));
        }
        let codes = self.replace_recovery_codes(&mut tx, actor.id).await?;
        // Sessions opened with the password alone end (this one stays): whoever held one
        // signs in again, with a code.
        end_sessions_of(&mut tx, actor.id, Some(keep_token)).await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::own_account(AuditAction::SecondFactorOn, actor),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(codes)
    }

    /// Ten new recovery codes for `user_id` in place of any before, in `tx`; returned for
    /// showing once (only their digests are kept).
    async fn replace_recovery_codes(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user_id: i64,
    ) -> Result<Vec<String>> {
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        let codes: Vec<String> = (0..totp::RECOVERY_CODES)
            .map(|_| totp::new_recovery_code())
            .collect();
        for code in &codes {
            let stored = totp::normalise_recovery_code(code)
                .ok_or_else(|| Error::Internal("a new recovery code is malformed".into()))?;
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user_id)
                .bind(recovery_hash(&self.recovery_key(), user_id, &stored))
                .execute(&mut **tx)
                .await?;
        }
        Ok(codes)
    }

    /// New recovery codes in place of the old ones (all of which stop working), with the
    /// password and a code.
    pub async fn new_recovery_codes(
        &self,
        actor: &CurrentUser,
        password: &str,
        code: &str,
        address: &str,
    ) -> Result<Vec<String>> {
        self.prove_both(actor, password, code, address, "making new recovery codes")
            .await?;
        let mut tx = self.db.pool().begin().await?;
        let codes = self.replace_recovery_codes(&mut tx, actor.id).await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::own_account(AuditAction::RecoveryCodesReplace, actor),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(codes)
    }

    /// `actor` proves it is them with the password and a code (or a recovery code), each
    /// counted against sign-in throttling from `address`.
    async fn prove_both(
        &self,
        actor: &CurrentUser,
        password: &str,
        code: &str,
        address: &str,
        doing: &str,
    ) -> Result<()> {
        self.reauthenticate(actor, "password", password, address)
            .await?;
        self.require_code(actor, code, address, doing).await
    }

    /// `code` must be a right one for `actor`'s second factor (counted like a sign-in attempt).
    async fn require_code(
        &self,
        actor: &CurrentUser,
        code: &str,
        address: &str,
        doing: &str,
    ) -> Result<()> {
        let spent = self
            .spend_counted(
                actor.id,
                &actor.email,
                client_of(actor),
                code,
                address,
                doing,
            )
            .await?;
        spent.map(|_| ()).ok_or_else(wrong_code)
    }

    /// With a second factor on, `code` must be a right one (counted like a sign-in attempt):
    /// for changes a session and the password alone must not make (a lasting API token, a new
    /// password). Without one, nothing is asked.
    pub(crate) async fn second_factor_if_on(
        &self,
        actor: &CurrentUser,
        code: &str,
        address: &str,
        doing: &str,
    ) -> Result<()> {
        if self.factor_row(actor.id).await?.totp_secret.is_none() {
            return Ok(());
        }
        self.require_code(actor, code, address, doing).await
    }

    /// Turns one's own second factor off, with the password and a code (or a recovery code) —
    /// also the way to move to another phone: off, then set up anew. (An administrator on a
    /// server that requires one may then do nothing else until it is set up again.)
    pub async fn remove_own_second_factor(
        &self,
        actor: &CurrentUser,
        password: &str,
        code: &str,
        address: &str,
    ) -> Result<()> {
        self.prove_both(
            actor,
            password,
            code,
            address,
            "turning two-factor authentication off",
        )
        .await?;
        self.clear_second_factor(actor.id, Who::User(actor), client_of(actor), &actor.email)
            .await
    }

    /// The admin CLI's way back in for someone who lost their phone and their recovery codes:
    /// takes the second factor away from the account `email` (its sessions stay).
    pub async fn reset_second_factor_by_email(&self, email: &str) -> Result<()> {
        let email = Email::parse(email)?;
        let (user_id, client_id) = self.account_by_email(&email).await?;
        if self.factor_row(user_id).await?.totp_secret.is_none() {
            return Err(Error::Conflict(format!(
                "{email} has no second factor: there is nothing to reset."
            )));
        }
        self.clear_second_factor(user_id, Who::Operator, client_id, email.as_str())
            .await
    }

    async fn clear_second_factor(
        &self,
        user_id: i64,
        who: Who<'_>,
        client_id: Option<i64>,
        email: &str,
    ) -> Result<()> {
        let mut tx = self.db.pool().begin().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL \
             WHERE id = $1",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sign_in_challenges WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        self.record(
            &mut *tx,
            who,
            Entry::new(AuditAction::SecondFactorOff, format!("user {email}")).of_client(client_id),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(())
    }

    /// Whether `actor` has a second factor, and how many recovery codes are left.
    pub async fn second_factor_status(&self, actor: &CurrentUser) -> Result<(bool, i64)> {
        let row = self.factor_row(actor.id).await?;
        Ok((
            row.totp_secret.is_some(),
            self.recovery_codes_left(actor.id).await?,
        ))
    }

    /// Deletes sign-in challenges that ran out; run now and then by a background job.
    pub async fn purge_sign_in_challenges(&self) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM sign_in_challenges WHERE expires_at <= $1")
                .bind(self.clock.now())
                .execute(self.db.pool())
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_kept_per_user() {
        let key = [7u8; 32];
        assert_ne!(
            recovery_hash(&key, 1, "ABCDEFGHJK"),
            recovery_hash(&key, 2, "ABCDEFGHJK")
        );
        assert_ne!(
            recovery_hash(&key, 1, "ABCDEFGHJK"),
            recovery_hash(&[8u8; 32], 1, "ABCDEFGHJK")
        );
        assert_eq!(recovery_hash(&key, 1, "ABCDEFGHJK").len(), 64);
    }
}
