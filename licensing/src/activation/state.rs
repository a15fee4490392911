//! A licence as activation sees it (its state, its live activation, who may manage it), and
//! the checks made before anything changes: the product an application names, the anti-churn
//! budget.

use super::*;

impl Licentia {
    pub(super) async fn licence_state(
        &self,
        by: &str,
        value: LicenceBy<'_>,
    ) -> Result<Option<LicenceState>> {
        let sql = format!(
            "SELECT l.id, l.licence_key, o.client_id, l.serial_id, l.features, l.counters, \
             COALESCE(o.features, '[]') AS order_features, \
             COALESCE(o.counters, '{{}}') AS order_counters, l.expires_on, l.open_ended, \
             l.activation_count, COALESCE(o.product_id, s.product_id) AS product_id \
             FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
             LEFT JOIN serials s ON s.id = l.serial_id WHERE {by} = $1"
        );
        let q = sqlx::query_as(&sql);
        let q = match value {
            LicenceBy::Key(k) => q.bind(k.to_owned()),
            LicenceBy::Id(id) => q.bind(id),
        };
        Ok(q.fetch_optional(self.db.pool()).await?)
    }

    pub(super) async fn licence_state_by_key(&self, key: &str) -> Result<LicenceState> {
        self.licence_state("l.licence_key", LicenceBy::Key(key))
            .await?
            .ok_or_else(|| Error::NotFound("A licence with this key"))
    }

    pub(super) async fn licence_state_by_id(&self, licence_id: i64) -> Result<LicenceState> {
        self.licence_state("l.id", LicenceBy::Id(licence_id))
            .await?
            .ok_or(Error::NotFound("The licence"))
    }

    /// Refuses, before anything changes, a licence key presented for another product than its
    /// own: the application names its product, and a key of another product would otherwise be
    /// bound to a machine whose application then refuses the code.
    pub async fn check_key_product(&self, licence_key: &str, product_code: &str) -> Result<()> {
        let key = parse_licence_key(licence_key)?;
        let lic = self.licence_state_by_key(&key).await?;
        let code = self.product_row(lic.product_id).await?.code;
        // Exactly: the application checks the code it gets back against its own product code,
        // and would refuse "CALC" when it calls itself "calc".
        if code == product_code.trim() {
            Ok(())
        } else {
            Err(InputError::new(
                "product",
                format!(
                    "This licence key is for product {code}, not {}: check the key, or use it \
                     with {code}.",
                    product_code.trim()
                ),
            )
            .into())
        }
    }

    /// Who may manage a licence in the portal: its client's users and administrators; only
    /// administrators for a web licence.
    pub(super) fn require_state_access(
        &self,
        actor: &CurrentUser,
        lic: &LicenceState,
    ) -> Result<()> {
        match lic.client_id {
            Some(client_id) => self.require_client_access(actor, client_id),
            None => crate::require_admin(actor),
        }
    }

    /// Refuses one more activation or removal on the licences `licence_ids` if they have moved
    /// between machines too often lately (see [`crate::activation::churn`]).
    /// The anti-churn budget of a licence, shared by all of its serial's licences.
    pub(super) async fn check_licence_churn(&self, lic: &LicenceState) -> Result<()> {
        let scope = match lic.serial_id {
            Some(serial_id) => self.serial_licence_ids(serial_id).await?,
            None => vec![lic.id],
        };
        self.check_churn(&scope).await
    }

    pub(super) async fn check_churn(&self, licence_ids: &[i64]) -> Result<()> {
        let policy = self.auth.churn;
        let now = self.clock.now();
        let since = now - policy.window_secs;
        let mut events = Vec::new();
        for id in licence_ids {
            let rows: Vec<(i64, Option<i64>, Option<String>)> = sqlx::query_as(
                "SELECT activated_at, removed_at, removed_by FROM activations \
                 WHERE licence_id = $1 AND (activated_at > $2 OR removed_at > $2)",
            )
            .bind(id)
            .bind(since)
            .fetch_all(self.db.pool())
            .await?;
            for (activated, removed, by) in rows {
                events.push(activated);
                // What an administrator (or a revocation) did is not the user's churn.
                if by
                    .as_deref()
                    .is_some_and(|b| !b.starts_with("admin:") && b != "revoked")
                {
                    events.extend(removed);
                }
            }
        }
        let licences = i64::try_from(licence_ids.len()).unwrap_or(1);
        match policy.wait(&events, now, licences) {
            None => Ok(()),
            Some(wait) => Err(Error::RateLimited {
                message: format!(
                    "This licence has moved between machines too often: at most {} activations \
                     and removals per {} are allowed. Try again in {}.",
                    policy.max_events.saturating_mul(licences),
                    duration_words(policy.window_secs),
                    duration_words(wait)
                ),
                retry_after_secs: wait,
            }),
        }
    }

    pub(super) async fn live_activation(&self, licence_id: i64) -> Result<Option<LiveActivation>> {
        Ok(sqlx::query_as(
            "SELECT id, fingerprint, hostname, activated_at, code_digest \
             FROM activations \
             WHERE licence_id = $1 AND removed_at IS NULL",
        )
        .bind(licence_id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// A removal made without its machine whose code may still pass offline: the machine and
    /// when the licence frees.
    pub(super) async fn pending_free(
        &self,
        licence_id: i64,
    ) -> Result<Option<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT fingerprint, hostname, frees_at FROM activations \
             WHERE licence_id = $1 AND frees_at > $2 ORDER BY frees_at DESC LIMIT 1",
        )
        .bind(licence_id)
        .bind(self.clock.now())
        .fetch_optional(self.db.pool())
        .await?)
    }
}
