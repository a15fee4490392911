//! Generating serials in batches, listing batches, and the CSV export of a batch.

use super::*;

impl Licentia {
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
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(
                AuditAction::SerialsGenerate,
                format!("serial batch {batch_id}"),
            )
            .detail(format!("{made} serial(s) of {}.", product.code)),
        )
        .await?;
        crate::db::commit(tx).await?;
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
        require_admin(actor)?;
        let mut c = Conditions::default();
        c.and("b.id = ?", [Bind::Int(batch_id)]);
        self.batch_rows(c, 1)
            .await?
            .pop()
            .ok_or(Error::NotFound("The serial batch"))
    }

    /// Batches, newest first.
    pub async fn serial_batches(
        &self,
        actor: &CurrentUser,
        page: &Page,
    ) -> Result<Paged<SerialBatch>> {
        require_admin(actor)?;
        let mut c = Conditions::default();
        if let Some(before) = page.after::<i64>()? {
            c.and("b.id < ?", [Bind::Int(before)]);
        }
        let batches = self.batch_rows(c, page.fetch()).await?;
        Ok(page.finish(batches, |b| b.id))
    }

    /// Batches newest first, up to `limit` of those `c` selects.
    async fn batch_rows(&self, mut c: Conditions, limit: i64) -> Result<Vec<SerialBatch>> {
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
        let sql = c.page_sql(
            "SELECT b.id, b.product_id, p.code AS product_code, b.features, \
             b.licences_per_serial, b.note, b.created_at, \
             (SELECT COUNT(*) FROM serials s WHERE s.batch_id = b.id) AS serials \
             FROM serial_batches b JOIN products p ON p.id = b.product_id",
            "b.id DESC",
            limit,
        );
        let rows: Vec<Row> = c
            .bind(sqlx::query_as(&sql))
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
}
