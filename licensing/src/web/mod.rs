//! The web licensing model: serial numbers generated in batches for a product, each granting the
//! product's number of licences (activation slots) with no client or order; CSV export;
//! revoke-and-reissue. Activation by serial is in `activation`.

mod batches;
pub mod format;
mod reissue;
mod search;

use crate::audit::{Entry, Who};
use crate::catalog::{ActivationRecord, LicenceRow, ACTIVATION_COLUMNS, LICENCE_SELECT};
use crate::db::{Bind, Conditions};
use crate::page::{Page, Paged};
use crate::web::format::{SerialData, SerialError, SerialKey};
use crate::{require_admin, Error, Licentia, Result};
use protocol::account::CurrentUser;
use protocol::audit::AuditAction;
use protocol::catalog::{
    feature_list, features_in_catalogue, Activation, Serial, SerialBatch, SerialDetail,
};
use protocol::input::{self, InputError};
use rand::rngs::OsRng;
use rand::Rng;

/// Serials per batch at most.
pub const MAX_BATCH: i64 = 1000;
/// Licences per batch at most (serials × licences per serial): a batch is one transaction, and
/// a writer holding SQLite for long makes everyone else wait.
pub const MAX_BATCH_LICENCES: i64 = 20_000;

/// What an administrator asks for when generating serials.
#[derive(Debug, Clone)]
pub struct BatchInput {
    pub product_id: i64,
    pub count: i64,
    /// Features stored in each serial; `None` (or empty): the product's default features.
    pub features: Option<Vec<String>>,
    /// Licences per serial; `None`: the product's setting.
    pub licences_per_serial: Option<i64>,
    pub note: String,
}

/// Which serials to list.
#[derive(Debug, Clone, Default)]
pub struct SerialQuery {
    pub batch_id: Option<i64>,
    pub product_id: Option<i64>,
    /// Part of a serial (dashes and case do not matter) or of a host name holding one of its
    /// licences.
    pub search: Option<String>,
}

impl SerialQuery {
    /// Every serial of one batch.
    pub fn of_batch(batch_id: i64) -> SerialQuery {
        SerialQuery {
            batch_id: Some(batch_id),
            ..SerialQuery::default()
        }
    }
}

#[derive(sqlx::FromRow)]
struct SerialRow {
    id: i64,
    serial: String,
    batch_id: i64,
    product_id: i64,
    product_code: String,
    features: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
    revoke_note: String,
    replaced_by: Option<String>,
    replaces: Option<String>,
    licences: i64,
    active: i64,
}

const SERIAL_SELECT: &str = "SELECT s.id, s.serial, s.batch_id, s.product_id, \
     p.code AS product_code, s.features, s.created_at, s.revoked_at, s.revoke_note, \
     (SELECT n.serial FROM serials n WHERE n.replaces = s.id) AS replaced_by, \
     (SELECT o.serial FROM serials o WHERE o.id = s.replaces) AS replaces, \
     (SELECT COUNT(*) FROM licences l WHERE l.serial_id = s.id) AS licences, \
     (SELECT COUNT(*) FROM licences l JOIN activations a ON a.licence_id = l.id \
        WHERE l.serial_id = s.id AND a.removed_at IS NULL) AS active \
     FROM serials s JOIN products p ON p.id = s.product_id";

fn parse_features(s: Option<&str>) -> Result<Option<Vec<String>>> {
    s.map(|f| {
        serde_json::from_str(f)
            .map_err(|e| Error::Internal(format!("stored features are malformed: {e}")))
    })
    .transpose()
}

/// A serial as typed, checked on its own: the error names the field for forms and the API.
pub(crate) fn check_serial(key: &SerialKey, raw: &str) -> Result<(String, SerialData)> {
    let data = key.check(raw).map_err(|e| {
        let message = match e {
            SerialError::Shape => "A serial number has 32 letters and digits in groups of four, \
                 such as 1A2B-3C4D-…; check that none is missing."
                .to_owned(),
            _ => "This serial number is not valid: check it for typos.".to_owned(),
        };
        InputError::new("serial", message)
    })?;
    let canonical = key
        .mint(data)
        .map_err(|e| Error::Internal(format!("re-minting a valid serial failed: {e}")))?;
    Ok((canonical, data))
}

impl Licentia {
    pub(crate) fn serial_key(&self) -> SerialKey {
        SerialKey::new(self.master_key.derive("licentia serial numbers v1"))
    }

    /// The host names holding each of `serial_ids`' licences now: one query per 500 serials
    /// (a long export makes a few queries, not one per serial).
    async fn hostnames_of_each(
        &self,
        serial_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Vec<String>>> {
        let mut out: std::collections::HashMap<i64, Vec<String>> = Default::default();
        for ids in serial_ids.chunks(500) {
            let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT l.serial_id, a.hostname FROM activations a \
                 JOIN licences l ON l.id = a.licence_id \
                 WHERE l.serial_id IN ({}) AND a.removed_at IS NULL \
                 ORDER BY l.serial_id, a.hostname",
                marks.join(", ")
            );
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
            for id in ids {
                query = query.bind(*id);
            }
            for (id, host) in query.fetch_all(self.db.pool()).await? {
                out.entry(id).or_default().push(host);
            }
        }
        Ok(out)
    }

    async fn serial_from_row(&self, r: SerialRow) -> Result<Serial> {
        let hostnames = self
            .hostnames_of_each(&[r.id])
            .await?
            .remove(&r.id)
            .unwrap_or_default();
        Self::serial_of(r, hostnames)
    }

    /// A serial as listed, from its row and the host names holding its licences.
    fn serial_of(r: SerialRow, hostnames: Vec<String>) -> Result<Serial> {
        Ok(Serial {
            hostnames,
            features: parse_features(r.features.as_deref())?,
            id: r.id,
            serial: r.serial,
            batch_id: r.batch_id,
            product_id: r.product_id,
            product_code: r.product_code,
            licences: r.licences,
            active: r.active,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            revoke_note: r.revoke_note,
            replaced_by: r.replaced_by,
            replaces: r.replaces,
        })
    }

    async fn serial_row(&self, serial_id: i64) -> Result<Serial> {
        let row: SerialRow = sqlx::query_as(&format!("{SERIAL_SELECT} WHERE s.id = $1"))
            .bind(serial_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The serial number"))?;
        self.serial_from_row(row).await
    }
}
