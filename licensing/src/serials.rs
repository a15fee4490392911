//! The web licensing model: serial numbers generated in batches for a product, each granting the
//! product's number of licences (activation slots) with no client or order; CSV export;
//! revoke-and-reissue. Activation by serial is in `activation`.

use crate::catalog::{LicenceRow, LICENCE_SELECT};
use crate::serial::{SerialData, SerialError, SerialKey};
use crate::{require_admin, Error, Licentia, Result};
use protocol::account::CurrentUser;
use protocol::catalog::{
    feature_list, features_in_catalogue, Activation, Serial, SerialBatch, SerialDetail,
};
use protocol::input::{self, InputError};
use protocol::time::{day_of, format_date};
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

enum Bind {
    Int(i64),
    Text(String),
}

/// A LIKE pattern matching `needle` anywhere, its own `%`, `_` and `\\` taken literally.
fn like_pattern(needle: &str) -> String {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// One line of the CSV export. Fields are quoted when they need to be (RFC 4180).
fn csv_line(fields: &[&str]) -> String {
    let mut out = fields
        .iter()
        .map(|f| {
            // A leading = + - @ would be a formula to a spreadsheet: quote it as text.
            if f.contains([',', '"', '\n', '\r']) || f.starts_with(['=', '+', '-', '@']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                (*f).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    out
}

impl Licentia {
    pub(crate) fn serial_key(&self) -> SerialKey {
        SerialKey::new(self.master_key.derive("licentia serial numbers v1"))
    }

    async fn hostnames_of(&self, serial_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT a.hostname FROM activations a JOIN licences l ON l.id = a.licence_id \
             WHERE l.serial_id = $1 AND a.removed_at IS NULL ORDER BY a.hostname",
        )
        .bind(serial_id)
        .fetch_all(self.db.pool())
        .await?)
    }

    async fn serial_from_row(&self, r: SerialRow) -> Result<Serial> {
        Ok(Serial {
            hostnames: self.hostnames_of(r.id).await?,
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

    /// Generates `count` serials for a product, each with its licences; returns the batch.
    pub async fn generate_serials(
        &self,
        actor: &CurrentUser,
        input: BatchInput,
    ) -> Result<SerialBatch> {
        require_admin(actor)?;
        if !(1..=MAX_BATCH).contains(&input.count) {
            return Err(InputError::new(
                "count",
                format!("The number of serials must be from 1 to {MAX_BATCH}."),
            )
            .into());
        }
        let note = input::notes(&input.note)?;
        let product = self.product_row(input.product_id).await?;
        let per_serial = input
            .licences_per_serial
            .unwrap_or(product.licences_per_serial);
        if !(1..=100).contains(&per_serial) {
            return Err(InputError::new(
                "licences_per_serial",
                "Each serial grants 1 to 100 licences.",
            )
            .into());
        }
        if input.count * per_serial > MAX_BATCH_LICENCES {
            return Err(InputError::new(
                "count",
                format!(
                    "A batch may grant at most {MAX_BATCH_LICENCES} licences in all ({} serials × \
                     {per_serial} licences is more): generate several batches.",
                    input.count
                ),
            )
            .into());
        }
        let product = product.into_product()?;
        let features = match input.features {
            Some(f) if !f.is_empty() => {
                let f = feature_list(&f)?;
                features_in_catalogue(&f, &product.features)?;
                Some(f)
            }
            _ => None,
        };
        let mut mask = 0u32;
        for code in features.iter().flatten() {
            let index = product
                .features
                .iter()
                .position(|c| &c.code == code)
                .unwrap_or(usize::MAX);
            if index >= 32 {
                return Err(InputError::new(
                    "features",
                    format!(
                        "A serial number can carry the first 32 features of the catalogue; {code} is \
                         further down. Move it up in the product's feature list."
                    ),
                )
                .into());
            }
            mask |= 1 << index;
        }
        let product_id = u32::try_from(product.id)
            .ok()
            .filter(|id| *id < 1 << 24)
            .ok_or_else(|| {
                InputError::new(
                    "product_id",
                    "Serial numbers can be made for the first 16 million products only.",
                )
            })?;
        let features_json = features
            .as_ref()
            .map(|f| serde_json::to_string(f).unwrap_or_default());
        let counters_json = serde_json::to_string(&product.default_counters).unwrap_or_default();
        let licence_features = features_json.clone().unwrap_or_else(|| {
            serde_json::to_string(&product.default_features).unwrap_or_default()
        });
        let key = self.serial_key();
        let now = self.clock.now();

        let mut tx = self.db.pool().begin().await?;
        let batch_id: i64 = sqlx::query_scalar(
            "INSERT INTO serial_batches (product_id, features, licences_per_serial, note, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(product.id)
        .bind(&features_json)
        .bind(per_serial)
        .bind(&note)
        .bind(actor.id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let mut made = 0;
        while made < input.count {
            let serial = key
                .mint(SerialData {
                    product_id,
                    serial_id: OsRng.gen_range(0..1u64 << 40),
                    feature_mask: mask,
                })
                .map_err(|e| Error::Internal(e.to_string()))?;
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO serials (batch_id, product_id, serial, features, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (serial) DO NOTHING RETURNING id",
            )
            .bind(batch_id)
            .bind(product.id)
            .bind(&serial)
            .bind(&features_json)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            // A repeated random id (one in 2^40 per pair) is simply drawn again.
            let Some(serial_id) = inserted else { continue };
            self.add_web_licences(
                &mut tx,
                serial_id,
                per_serial,
                &licence_features,
                &counters_json,
            )
            .await?;
            made += 1;
        }
        tx.commit().await?;
        tracing::info!(batch_id, count = made, by = actor.id, "serials generated");
        self.serial_batch(actor, batch_id).await
    }

    async fn add_web_licences(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        serial_id: i64,
        count: i64,
        features: &str,
        counters: &str,
    ) -> Result<()> {
        for _ in 0..count {
            sqlx::query(
                "INSERT INTO licences (serial_id, licence_key, features, counters, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(serial_id)
            .bind(crate::catalog::new_licence_key())
            .bind(features)
            .bind(counters)
            .bind(self.clock.now())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    pub async fn serial_batch(&self, actor: &CurrentUser, batch_id: i64) -> Result<SerialBatch> {
        self.serial_batches(actor, Some(batch_id))
            .await?
            .pop()
            .ok_or(Error::NotFound("The serial batch"))
    }

    /// Batches, newest first (or the one asked for).
    pub async fn serial_batches(
        &self,
        actor: &CurrentUser,
        batch_id: Option<i64>,
    ) -> Result<Vec<SerialBatch>> {
        require_admin(actor)?;
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            product_id: i64,
            product_code: String,
            features: Option<String>,
            licences_per_serial: i64,
            note: String,
            created_at: i64,
            serials: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT b.id, b.product_id, p.code AS product_code, b.features, \
             b.licences_per_serial, b.note, b.created_at, \
             (SELECT COUNT(*) FROM serials s WHERE s.batch_id = b.id) AS serials \
             FROM serial_batches b JOIN products p ON p.id = b.product_id \
             WHERE ($1 IS NULL OR b.id = $1) ORDER BY b.id DESC",
        )
        .bind(batch_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(SerialBatch {
                    features: parse_features(r.features.as_deref())?,
                    id: r.id,
                    product_id: r.product_id,
                    product_code: r.product_code,
                    licences_per_serial: r.licences_per_serial,
                    note: r.note,
                    created_at: r.created_at,
                    serials: r.serials,
                })
            })
            .collect()
    }

    /// Serials, newest first, filtered by batch, product and a search over serials and host names.
    pub async fn list_serials(&self, actor: &CurrentUser, q: SerialQuery) -> Result<Vec<Serial>> {
        require_admin(actor)?;
        let needle = q
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase());
        if let Some(n) = needle.as_deref() {
            protocol::input::text_line(
                "search",
                n,
                0..=200,
                "Search for at most 200 printable characters.",
            )?;
        }
        // Serials are stored grouped; a search typed without dashes still finds them.
        let serial_needle = needle.as_ref().map(|n| {
            n.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_uppercase()
        });
        let mut sql = format!("{SERIAL_SELECT} WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        if let Some(b) = q.batch_id {
            binds.push(Bind::Int(b));
            sql.push_str(&format!(" AND s.batch_id = ${}", binds.len()));
        }
        if let Some(p) = q.product_id {
            binds.push(Bind::Int(p));
            sql.push_str(&format!(" AND s.product_id = ${}", binds.len()));
        }
        if let Some(n) = &needle {
            binds.push(Bind::Text(like_pattern(n)));
            let host = binds.len();
            let by_serial = match serial_needle.filter(|s| !s.is_empty()) {
                Some(sn) => {
                    binds.push(Bind::Text(like_pattern(&sn)));
                    format!(
                        "REPLACE(s.serial, '-', '') LIKE ${} ESCAPE '\\' OR ",
                        binds.len()
                    )
                }
                None => String::new(),
            };
            sql.push_str(&format!(
                " AND ({by_serial}EXISTS (SELECT 1 FROM licences l JOIN activations a \
                 ON a.licence_id = l.id WHERE l.serial_id = s.id AND a.removed_at IS NULL \
                 AND LOWER(a.hostname) LIKE ${host} ESCAPE '\\'))"
            ));
        }
        sql.push_str(" ORDER BY s.id DESC LIMIT 5000");
        let mut query = sqlx::query_as::<_, SerialRow>(&sql);
        for b in binds {
            query = match b {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.serial_from_row(r).await?);
        }
        Ok(out)
    }

    async fn serial_row(&self, serial_id: i64) -> Result<Serial> {
        let row: SerialRow = sqlx::query_as(&format!("{SERIAL_SELECT} WHERE s.id = $1"))
            .bind(serial_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The serial number"))?;
        self.serial_from_row(row).await
    }

    /// Finds a serial by its text (checked before any look-up).
    pub async fn find_serial(&self, actor: &CurrentUser, text: &str) -> Result<Serial> {
        require_admin(actor)?;
        let (canonical, _) = check_serial(&self.serial_key(), text)?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM serials WHERE serial = $1")
            .bind(&canonical)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The serial number"))?;
        self.serial_row(id).await
    }

    /// A serial with its licences and their activations, removed ones too.
    pub async fn serial_detail(&self, actor: &CurrentUser, serial_id: i64) -> Result<SerialDetail> {
        require_admin(actor)?;
        let serial = self.serial_row(serial_id).await?;
        let licences: Vec<LicenceRow> = sqlx::query_as(&format!(
            "{LICENCE_SELECT} WHERE l.serial_id = $1 ORDER BY l.id"
        ))
        .bind(serial_id)
        .fetch_all(self.db.pool())
        .await?;
        let licences = licences
            .into_iter()
            .map(LicenceRow::into_licence)
            .collect::<Result<Vec<_>>>()?;
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            licence_id: i64,
            hostname: String,
            fingerprint: String,
            mode: String,
            activated_at: i64,
            last_validated_at: Option<i64>,
            removed_at: Option<i64>,
            removed_by: Option<String>,
            serial: Option<String>,
        }
        let history: Vec<Row> = sqlx::query_as(
            "SELECT a.id, a.licence_id, a.hostname, a.fingerprint, a.mode, a.activated_at, \
             a.last_validated_at, a.removed_at, a.removed_by, s.serial \
             FROM activations a JOIN licences l ON l.id = a.licence_id \
             LEFT JOIN serials s ON s.id = a.serial_id \
             WHERE l.serial_id = $1 ORDER BY a.activated_at DESC, a.id DESC",
        )
        .bind(serial_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(SerialDetail {
            serial,
            licences,
            history: history
                .into_iter()
                .map(|r| Activation {
                    id: r.id,
                    licence_id: r.licence_id,
                    hostname: r.hostname,
                    fingerprint: r.fingerprint,
                    mode: r.mode,
                    activated_at: r.activated_at,
                    last_validated_at: r.last_validated_at,
                    removed_at: r.removed_at,
                    removed_by: r.removed_by,
                    serial: r.serial,
                })
                .collect(),
        })
    }

    /// The serials of a batch as CSV: serial, product, features, licences, status.
    pub async fn export_batch_csv(&self, actor: &CurrentUser, batch_id: i64) -> Result<String> {
        let batch = self.serial_batch(actor, batch_id).await?;
        let serials = self
            .list_serials(
                actor,
                SerialQuery {
                    batch_id: Some(batch.id),
                    ..SerialQuery::default()
                },
            )
            .await?;
        let mut out = csv_line(&[
            "serial",
            "product",
            "features",
            "licences",
            "status",
            "replaced_by",
        ]);
        for s in serials.iter().rev() {
            let features = s
                .features
                .as_ref()
                .map_or_else(|| "(product defaults)".to_owned(), |f| f.join(" "));
            let status = match s.revoked_at {
                Some(t) => format!("revoked {}", format_date(day_of(t))),
                None => "valid".to_owned(),
            };
            out.push_str(&csv_line(&[
                &s.serial,
                &s.product_code,
                &features,
                &s.licences.to_string(),
                &status,
                s.replaced_by.as_deref().unwrap_or(""),
            ]));
        }
        Ok(out)
    }

    /// Revokes a compromised serial and issues its replacement in one step. The replacement takes
    /// over the licences (with their counters, features and activation history); machines
    /// activated with the old serial keep working until their next validation, which tells them
    /// to activate again with the new one.
    pub async fn revoke_and_reissue(
        &self,
        actor: &CurrentUser,
        serial_id: i64,
        note: &str,
    ) -> Result<Serial> {
        require_admin(actor)?;
        let note = input::notes(note)?;
        let old = self.serial_row(serial_id).await?;
        if old.revoked_at.is_some() {
            return Err(Error::Conflict(format!(
                "This serial number was already revoked{}.",
                old.replaced_by
                    .as_deref()
                    .map(|n| format!(" and replaced by {n}"))
                    .unwrap_or_default()
            )));
        }
        let key = self.serial_key();
        let data = key
            .check(&old.serial)
            .map_err(|e| Error::Internal(format!("a stored serial does not check: {e}")))?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        // Revoking first, conditionally, makes two simultaneous reissues of one serial fail
        // cleanly instead of producing two replacements.
        let revoked = sqlx::query(
            "UPDATE serials SET revoked_at = $1, revoke_note = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&note)
        .bind(serial_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if revoked == 0 {
            return Err(Error::Conflict(
                "This serial number was just revoked by someone else.".into(),
            ));
        }
        let new_id = loop {
            let serial = key
                .mint(SerialData {
                    serial_id: OsRng.gen_range(0..1u64 << 40),
                    ..data
                })
                .map_err(|e| Error::Internal(e.to_string()))?;
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO serials (batch_id, product_id, serial, features, replaces, created_at) \
                 SELECT batch_id, product_id, $1, features, id, $2 FROM serials WHERE id = $3 \
                 ON CONFLICT (serial) DO NOTHING RETURNING id",
            )
            .bind(&serial)
            .bind(now)
            .bind(serial_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = inserted {
                break id;
            }
        };
        sqlx::query("UPDATE licences SET serial_id = $1 WHERE serial_id = $2")
            .bind(new_id)
            .bind(serial_id)
            .execute(&mut *tx)
            .await?;
        // Its floating pool too: running sessions keep their seats, new checkouts need the new key.
        sqlx::query("UPDATE pools SET serial_id = $1 WHERE serial_id = $2")
            .bind(new_id)
            .bind(serial_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            old = serial_id,
            new = new_id,
            by = actor.id,
            "serial revoked and reissued"
        );
        self.serial_row(new_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_line(&["a", "b c"]), "a,b c\r\n");
        assert_eq!(
            csv_line(&["x,y", "say \"hi\""]),
            "\"x,y\",\"say \"\"hi\"\"\"\r\n"
        );
        assert_eq!(csv_line(&["=1+1", "-x"]), "\"=1+1\",\"-x\"\r\n");
    }
}
