//! Products: their feature catalogue, default features and counters, and licensing settings.

use super::*;

impl Licentia {
    /// Products by code.
    pub async fn list_products(&self, actor: &CurrentUser, page: &Page) -> Result<Paged<Product>> {
        require_admin(actor)?;
        let mut c = Conditions::default();
        if let Some((code, id)) = page.after::<(String, i64)>()? {
            c.and("(p.code, p.id) > (?, ?)", [Bind::Text(code), Bind::Int(id)]);
        }
        let select = format!("SELECT {PRODUCT_COLUMNS} FROM products p");
        let sql = c.page_sql(&select, "p.code, p.id", page.fetch());
        let rows: Vec<ProductRow> = c
            .bind(sqlx::query_as(&sql))
            .fetch_all(self.db.pool())
            .await?;
        let products = rows
            .into_iter()
            .map(ProductRow::into_product)
            .collect::<Result<Vec<_>>>()?;
        Ok(page.finish(products, |p| (p.code.clone(), p.id)))
    }

    pub(crate) async fn product_row(&self, product_id: i64) -> Result<ProductRow> {
        product_row_in(self.db.pool(), product_id).await
    }

    pub async fn product(&self, actor: &CurrentUser, product_id: i64) -> Result<Product> {
        require_admin(actor)?;
        self.product_row(product_id).await?.into_product()
    }

    /// Creates (`product_id` = `None`) or replaces a product.
    pub async fn save_product(
        &self,
        actor: &CurrentUser,
        product_id: Option<i64>,
        input: ProductInput,
    ) -> Result<Product> {
        require_admin(actor)?;
        let p = input.validate()?;
        let before = match product_id {
            Some(id) => Some(self.product(actor, id).await?),
            None => None,
        };
        if let (Some(id), Some(before)) = (product_id, &before) {
            self.mode_change_allowed(id, before, &p).await?;
        }
        let s = &p.settings;
        let day = |d: &Option<String>| d.as_deref().and_then(parse_date);
        let duplicate = format!("A product with the code {} already exists.", p.code);
        let sql_values =
            "code = $1, name = $2, editor = $3, release_number = $4, release_date = $5, \
             features = $6, default_features = $7, default_counters = $8, limited = $9, \
             validity_days = $10, fixed_start = $11, fixed_end = $12, expire_day_of_month = $13, \
             end_user_removal = $14, max_activations = $15, validate_every_days = $16, \
             licences_per_serial = $17, heartbeat_secs = $18, borrowing_allowed = $19, \
             max_borrow_days = $20, site_refresh_days = $21";
        let sql = match product_id {
            Some(_) => format!("UPDATE products SET {sql_values} WHERE id = $22 RETURNING id"),
            None => "INSERT INTO products (code, name, editor, release_number, release_date, \
                 features, default_features, default_counters, limited, validity_days, fixed_start, \
                 fixed_end, expire_day_of_month, end_user_removal, max_activations, \
                 validate_every_days, licences_per_serial, heartbeat_secs, borrowing_allowed, \
                 max_borrow_days, site_refresh_days, created_at) VALUES ($1, $2, $3, $4, $5, $6, \
                 $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
                 RETURNING id"
                .to_owned(),
        };
        // $22 is the product to update, or the creation time of a new one.
        let last = product_id.unwrap_or_else(|| self.clock.now());
        let mut tx = self.db.pool().begin().await?;
        let id: Option<i64> = sqlx::query_scalar(&sql)
            .bind(&p.code)
            .bind(&p.name)
            .bind(&p.editor)
            .bind(p.release_number)
            .bind(day(&p.release_date))
            .bind(json(&p.features))
            .bind(json(&p.default_features))
            .bind(json(&p.default_counters))
            .bind(i64::from(s.limited))
            .bind(s.validity_days)
            .bind(day(&s.fixed_start))
            .bind(day(&s.fixed_end))
            .bind(s.expire_day_of_month.map(i64::from))
            .bind(i64::from(s.end_user_removal))
            .bind(s.max_activations)
            .bind(s.validate_every_days)
            .bind(s.licences_per_serial)
            .bind(s.heartbeat_secs)
            .bind(i64::from(s.borrowing_allowed))
            .bind(s.max_borrow_days)
            .bind(s.site_refresh_days)
            .bind(last)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| Error::unique_as_conflict(e, duplicate))?;
        let id = id.ok_or(Error::NotFound("The product"))?;
        tracing::info!(product_id = id, by = actor.id, "product saved");
        let saved = product_row_in(&mut *tx, id).await?.into_product()?;
        let subject = format!("product {}", saved.code);
        let entry = match before {
            Some(before) => Entry::new(AuditAction::ProductUpdate, subject).changes(
                record_changes(&as_json(&before), &as_json(&saved), &["settings"]),
            ),
            None => Entry::new(AuditAction::ProductCreate, subject),
        };
        self.record(&mut *tx, Who::User(actor), entry).await?;
        crate::db::commit(tx).await?;
        Ok(saved)
    }

    /// A product moves between machines and site servers only while none of its licences is
    /// in use the old way: a licence must never be on a machine and a site server at once.
    async fn mode_change_allowed(
        &self,
        id: i64,
        before: &Product,
        after: &ProductInput,
    ) -> Result<()> {
        let (was, is) = (
            before.settings.site_refresh_days.is_some(),
            after.settings.site_refresh_days.is_some(),
        );
        if was == is {
            return Ok(());
        }
        let (sql, what) = if was {
            (
                "SELECT COUNT(*) FROM sites s JOIN licences l ON l.id = s.licence_id \
                 JOIN orders o ON o.id = l.order_id \
                 WHERE o.product_id = $1 AND s.unlinked_at IS NULL",
                "linked to site servers",
            )
        } else {
            (
                "SELECT COUNT(*) FROM activations a JOIN licences l ON l.id = a.licence_id \
                 LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN serials s ON s.id = l.serial_id \
                 WHERE COALESCE(o.product_id, s.product_id) = $1 \
                 AND (a.removed_at IS NULL OR a.frees_at IS NOT NULL)",
                "activated on machines",
            )
        };
        let in_use: i64 = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(self.db.pool())
            .await?;
        if in_use > 0 {
            return Err(InputError::new(
                "site_refresh_days",
                format!(
                    "{in_use} of this product's licences are {what}: free them first, then \
                     change how its licences are used."
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Deletes a product that no order or serial uses.
    pub async fn delete_product(&self, actor: &CurrentUser, product_id: i64) -> Result<()> {
        require_admin(actor)?;
        let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE product_id = $1")
            .bind(product_id)
            .fetch_one(self.db.pool())
            .await?;
        if orders > 0 {
            return Err(Error::Conflict(format!(
                "The product is used by {orders} order(s); delete those first."
            )));
        }
        let serials: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM serials WHERE product_id = $1")
            .bind(product_id)
            .fetch_one(self.db.pool())
            .await?;
        if serials > 0 {
            return Err(Error::Conflict(format!(
                "The product has {serials} serial number(s); it cannot be deleted."
            )));
        }
        let mut tx = self.db.pool().begin().await?;
        let code: String = sqlx::query_scalar("DELETE FROM products WHERE id = $1 RETURNING code")
            .bind(product_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("The product"))?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::ProductDelete, format!("product {code}")),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(())
    }
}

/// A product's row, read through `exec` (the pool, or a transaction that just changed it).
async fn product_row_in<'e, E>(exec: E, product_id: i64) -> Result<ProductRow>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1"
    ))
    .bind(product_id)
    .fetch_optional(exec)
    .await?
    .ok_or(Error::NotFound("The product"))
}
