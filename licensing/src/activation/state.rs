//! A licence as activation sees it (its state, its live activation, who may manage it), and
//! the checks made before anything changes: the product an application names, the anti-churn
//! budget.

use super::*;
use crate::keys::{ActiveKey, ACTIVE_KEY_COLUMNS};

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
        same_product(&code, product_code)
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
        let since = self.clock.now() - self.auth.churn.window_secs;
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
                push_churn(&mut events, activated, removed, by.as_deref());
            }
        }
        self.churn_verdict(&events, licence_ids.len())
    }

    /// Refuses one more activation or removal if `events` (activations and removals of
    /// `licences` licences sharing a budget) fill the anti-churn window.
    pub(crate) fn churn_verdict(&self, events: &[i64], licences: usize) -> Result<()> {
        let policy = self.auth.churn;
        let now = self.clock.now();
        let licences = i64::try_from(licences).unwrap_or(1);
        match policy.wait(events, now, licences) {
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

    /// What binding a licence to the machine `fp` reads before it writes, in one statement: the
    /// licence, the product settings an activation needs, and those of the licence's
    /// activations that matter now (the live one, removals waiting for their machine, and
    /// whatever happened within the anti-churn window).
    pub(super) async fn binding(&self, licence: LicenceBy<'_>, fp: &str) -> Result<Binding> {
        let by = match licence {
            LicenceBy::Key(_) => "l.licence_key",
            LicenceBy::Id(_) => "l.id",
        };
        let sql = format!(
            "SELECT l.id, l.licence_key, o.client_id, l.serial_id, l.features, l.counters, \
             COALESCE(o.features, '[]') AS order_features, \
             COALESCE(o.counters, '{{}}') AS order_counters, l.expires_on, l.open_ended, \
             l.activation_count, COALESCE(o.product_id, s.product_id) AS product_id, \
             p.code AS p_code, p.limited AS p_limited, p.validity_days AS p_validity_days, \
             p.fixed_start AS p_fixed_start, p.fixed_end AS p_fixed_end, \
             p.expire_day_of_month AS p_expire_day_of_month, \
             p.max_activations AS p_max_activations, \
             p.validate_every_days AS p_validate_every_days, \
             p.site_refresh_days AS p_site_refresh_days, \
             (SELECT COUNT(*) FROM activations h \
              WHERE h.licence_id = l.id AND h.fingerprint = $2) AS seen_here, \
             a.id AS a_id, a.fingerprint AS a_fingerprint, a.hostname AS a_hostname, \
             a.activated_at AS a_activated_at, a.code_digest AS a_code_digest, \
             a.removed_at AS a_removed_at, a.removed_by AS a_removed_by, a.frees_at AS a_frees_at, \
             {ACTIVE_KEY_COLUMNS} \
             FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
             LEFT JOIN serials s ON s.id = l.serial_id \
             JOIN products p ON p.id = COALESCE(o.product_id, s.product_id) \
             LEFT JOIN activations a ON a.licence_id = l.id AND (a.removed_at IS NULL \
               OR a.frees_at IS NOT NULL OR a.activated_at > $3 OR a.removed_at > $3) \
             WHERE {by} = $1"
        );
        let q = sqlx::query_as(&sql);
        let q = match licence {
            LicenceBy::Key(k) => q.bind(k.to_owned()),
            LicenceBy::Id(id) => q.bind(id),
        };
        let now = self.clock.now();
        let rows: Vec<BindingRow> = q
            .bind(fp.to_owned())
            .bind(now - self.auth.churn.window_secs)
            .fetch_all(self.db.pool())
            .await?;
        Binding::of(rows, fp, now).ok_or(match licence {
            LicenceBy::Key(_) => Error::NotFound("A licence with this key"),
            LicenceBy::Id(_) => Error::NotFound("The licence"),
        })
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

/// Counts an activation, and a removal the user made, as anti-churn events (what an
/// administrator or a revocation did is not the user's churn).
fn push_churn(events: &mut Vec<i64>, activated: i64, removed: Option<i64>, by: Option<&str>) {
    events.push(activated);
    if by.is_some_and(|b| !b.starts_with("admin:") && b != "revoked") {
        events.extend(removed);
    }
}

/// One row of [`Licentia::binding`]: the licence and its product, with one of its activations.
#[derive(sqlx::FromRow)]
struct BindingRow {
    #[sqlx(flatten)]
    lic: LicenceState,
    #[sqlx(flatten)]
    product: BindingProduct,
    #[sqlx(flatten)]
    key: ActiveKey,
    seen_here: i64,
    a_id: Option<i64>,
    a_fingerprint: Option<String>,
    a_hostname: Option<String>,
    a_activated_at: Option<i64>,
    a_code_digest: Option<String>,
    a_removed_at: Option<i64>,
    a_removed_by: Option<String>,
    a_frees_at: Option<i64>,
}

/// The product settings an activation needs.
#[derive(sqlx::FromRow)]
pub(super) struct BindingProduct {
    #[sqlx(rename = "p_code")]
    pub code: String,
    #[sqlx(rename = "p_limited")]
    pub limited: i64,
    #[sqlx(rename = "p_validity_days")]
    validity_days: Option<i64>,
    #[sqlx(rename = "p_fixed_start")]
    fixed_start: Option<i64>,
    #[sqlx(rename = "p_fixed_end")]
    fixed_end: Option<i64>,
    #[sqlx(rename = "p_expire_day_of_month")]
    expire_day_of_month: Option<i64>,
    #[sqlx(rename = "p_max_activations")]
    pub max_activations: i64,
    #[sqlx(rename = "p_validate_every_days")]
    pub validate_every_days: i64,
    /// Set: the product is sold for site servers, whose licences never bind a machine.
    #[sqlx(rename = "p_site_refresh_days")]
    pub site_refresh_days: Option<i64>,
}

impl BindingProduct {
    pub(super) fn limits(&self) -> crate::activation::expiry::Limits {
        crate::activation::expiry::Limits::of_row(
            self.validity_days,
            self.fixed_start,
            self.fixed_end,
            self.expire_day_of_month,
        )
    }
}

/// What binding a licence to a machine knows before it writes.
pub(super) struct Binding {
    pub lic: LicenceState,
    pub product: BindingProduct,
    /// The active signing key, as the same statement read it.
    pub key: ActiveKey,
    /// The licence's live activation, on this machine or another.
    pub live: Option<LiveActivation>,
    /// The removal without its machine that frees the licence last, if it has not yet: that
    /// machine's fingerprint and host name, and when it frees.
    pub pending: Option<(String, String, i64)>,
    /// Whether the licence was ever activated on this machine (then it uses no activation).
    pub seen_here: bool,
    /// Whether a removal of this machine is still waiting for it.
    pub waited_for_here: bool,
    /// The anti-churn events of the licence (any within the window are among them).
    pub churn_events: Vec<i64>,
}

impl Binding {
    fn of(rows: Vec<BindingRow>, fp: &str, now: i64) -> Option<Binding> {
        let mut live = None;
        let mut pending: Option<(String, String, i64)> = None;
        let mut waited_for_here = false;
        let mut churn_events = Vec::new();
        let mut first = None;
        for row in rows {
            if let (Some(id), Some(fingerprint), Some(hostname), Some(activated_at)) = (
                row.a_id,
                row.a_fingerprint.as_ref(),
                row.a_hostname.as_ref(),
                row.a_activated_at,
            ) {
                push_churn(
                    &mut churn_events,
                    activated_at,
                    row.a_removed_at,
                    row.a_removed_by.as_deref(),
                );
                waited_for_here |= row.a_frees_at.is_some() && fingerprint == fp;
                if let Some(frees_at) = row.a_frees_at.filter(|at| *at > now) {
                    if pending.as_ref().is_none_or(|(.., last)| frees_at > *last) {
                        pending = Some((fingerprint.clone(), hostname.clone(), frees_at));
                    }
                }
                if row.a_removed_at.is_none() {
                    live = Some(LiveActivation {
                        id,
                        fingerprint: fingerprint.clone(),
                        hostname: hostname.clone(),
                        activated_at,
                        code_digest: row.a_code_digest.clone(),
                    });
                }
            }
            if first.is_none() {
                first = Some((row.lic, row.product, row.key, row.seen_here > 0));
            }
        }
        let (lic, product, key, seen_here) = first?;
        Some(Binding {
            lic,
            product,
            key,
            live,
            pending,
            seen_here,
            waited_for_here,
            churn_events,
        })
    }
}

/// Refuses a licence of product `code` presented by an application of product `named`.
/// Exactly: the application checks the code it gets back against its own product code, and would
/// refuse "CALC" when it calls itself "calc".
pub(super) fn same_product(code: &str, named: &str) -> Result<()> {
    if code == named.trim() {
        return Ok(());
    }
    Err(InputError::new(
        "product",
        format!(
            "This licence key is for product {code}, not {}: check the key, or use it with {code}.",
            named.trim()
        ),
    )
    .into())
}
