//! Orders: a client buys a number of licences of a product; features and counters cascade
//! product → order → licence until a licence is first activated.

use super::*;
use crate::listing::{descending, given, search, ListSort};

impl Licentia {
    /// Creates an order with its licences. Features and counters default from the product.
    pub async fn create_order(&self, actor: &CurrentUser, input: OrderInput) -> Result<Order> {
        require_admin(actor)?;
        if !(1..=10_000).contains(&input.quantity) {
            return Err(
                InputError::new("quantity", "The quantity must be from 1 to 10000.").into(),
            );
        }
        let reference = reference_text(&input.reference)?;
        let notes = input::notes(&input.notes)?;
        let product = self.product_row(input.product_id).await?.into_product()?;
        let client_exists: Option<i64> = sqlx::query_scalar("SELECT id FROM clients WHERE id = $1")
            .bind(input.client_id)
            .fetch_optional(self.db.pool())
            .await?;
        if client_exists.is_none() {
            return Err(Error::NotFound("The client"));
        }
        let features = match input.features {
            Some(f) => protocol::catalog::feature_list(&f)?,
            None => product.default_features.clone(),
        };
        features_in_catalogue(&features, &product.features)?;
        let counters = match input.counters {
            Some(c) => protocol::catalog::counters(&c)?,
            None => product.default_counters.clone(),
        };
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let order_id: i64 = sqlx::query_scalar(
            "INSERT INTO orders (client_id, product_id, reference, features, counters, notes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(input.client_id)
        .bind(input.product_id)
        .bind(&reference)
        .bind(json(&features))
        .bind(json(&counters))
        .bind(&notes)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for _ in 0..input.quantity {
            let licence_id: i64 = sqlx::query_scalar(
                "INSERT INTO licences (order_id, licence_key, created_at) VALUES ($1, $2, $3) \
                 RETURNING id",
            )
            .bind(order_id)
            .bind(new_licence_key())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            crate::webhooks::emit(
                &mut tx,
                now,
                protocol::webhooks::WebhookEvent::LicenceCreated,
                serde_json::json!({
                    "licence_id": licence_id,
                    "order_id": order_id,
                    "client_id": input.client_id,
                    "product_id": input.product_id,
                }),
            )
            .await?;
        }
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::OrderCreate, format!("order {order_id}"))
                .of_client(Some(input.client_id))
                .detail(format!(
                    "{} licence(s) of {}; features: {}.",
                    input.quantity,
                    product.code,
                    if features.is_empty() {
                        "none".to_owned()
                    } else {
                        features.join(", ")
                    }
                )),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(order_id, by = actor.id, "order created");
        self.order(actor, order_id).await
    }

    /// An administrator changes an order's terms: the features and counters its licences default
    /// to (licences that have their own keep them), its reference and notes.
    pub async fn update_order(
        &self,
        actor: &CurrentUser,
        order_id: i64,
        features: Vec<String>,
        counters: BTreeMap<String, i64>,
        reference: &str,
        notes: &str,
    ) -> Result<Order> {
        require_admin(actor)?;
        let order = self.order(actor, order_id).await?;
        let product = self.product_row(order.product_id).await?.into_product()?;
        let features = protocol::catalog::feature_list(&features)?;
        features_in_catalogue(&features, &product.features)?;
        let counters = protocol::catalog::counters(&counters)?;
        let reference = reference_text(reference)?;
        let notes = input::notes(notes)?;
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("UPDATE orders SET features = $1, counters = $2, reference = $3, notes = $4 WHERE id = $5")
            .bind(json(&features))
            .bind(json(&counters))
            .bind(&reference)
            .bind(&notes)
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        let after = Order {
            features,
            counters,
            reference,
            notes,
            ..order.clone()
        };
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::OrderUpdate, format!("order {order_id}"))
                .of_client(Some(after.client_id))
                .changes(record_changes(&as_json(&order), &as_json(&after), &[]))
                .private("notes"),
        )
        .await?;
        crate::db::commit(tx).await?;
        self.order(actor, order_id).await
    }

    /// Deletes an order and its licences; their activations stop validating.
    pub async fn delete_order(&self, actor: &CurrentUser, order_id: i64) -> Result<()> {
        require_admin(actor)?;
        let mut tx = self.db.pool().begin().await?;
        let client_id: i64 =
            sqlx::query_scalar("DELETE FROM orders WHERE id = $1 RETURNING client_id")
                .bind(order_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(Error::NotFound("The order"))?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::OrderDelete, format!("order {order_id}"))
                .of_client(Some(client_id))
                .detail("Deleted with its licences."),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(order_id, by = actor.id, "order deleted");
        Ok(())
    }

    /// The product catalogue an order's features come from (for the order page's editor).
    pub async fn order_product(&self, actor: &CurrentUser, order_id: i64) -> Result<Product> {
        let order = self.order(actor, order_id).await?;
        self.product_row(order.product_id).await?.into_product()
    }

    /// An order. Administrators see any; a client user only its own client's.
    pub async fn order(&self, actor: &CurrentUser, order_id: i64) -> Result<Order> {
        let order = sqlx::query_as::<_, OrderRow>(&format!("{ORDER_SELECT} WHERE o.id = $1"))
            .bind(order_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The order"))?;
        self.require_client_access(actor, order.client_id)?;
        order.into_order().map(|o| for_viewer(actor, o))
    }

    /// Orders as `filter` picks and orders them (newest first by default): every client's for
    /// an administrator, one's own for a client user (who may not name another client).
    pub async fn list_orders(
        &self,
        actor: &CurrentUser,
        filter: &OrderFilter,
        page: &Page,
    ) -> Result<Paged<Order>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            order: OrderRow,
            sort_int: i64,
            sort_text: String,
        }
        let (mut c, sort) = self.order_conditions(actor, filter)?;
        sort.resume(&mut c, page)?;
        let select = ORDER_SELECT.replacen(
            " FROM orders o",
            &format!(", {} FROM orders o", sort.columns()),
            1,
        );
        let sql = c.page_sql(&select, &sort.order_by(), page.fetch());
        let rows: Vec<Row> = c
            .bind(sqlx::query_as(&sql))
            .fetch_all(self.db.pool())
            .await?;
        let rows = page.finish(rows, |r| sort.cursor(r.sort_int, &r.sort_text, r.order.id));
        let mut orders = Vec::with_capacity(rows.items.len());
        for r in rows.items {
            orders.push(for_viewer(actor, r.order.into_order()?));
        }
        Ok(Paged {
            items: orders,
            next: rows.next,
        })
    }

    /// How many orders `filter` picks (all pages).
    pub async fn count_orders(&self, actor: &CurrentUser, filter: &OrderFilter) -> Result<i64> {
        let (c, _) = self.order_conditions(actor, filter)?;
        c.count(
            self.db.pool(),
            "FROM orders o JOIN clients c ON c.id = o.client_id \
             JOIN products p ON p.id = o.product_id",
        )
        .await
    }

    /// The conditions of the orders `f` picks, within `actor`'s scope, and their order.
    fn order_conditions(
        &self,
        actor: &CurrentUser,
        f: &OrderFilter,
    ) -> Result<(Conditions, ListSort)> {
        let client_id = match (crate::client_scope(actor)?, f.client_id) {
            (Some(own), Some(asked)) if asked != own => return Err(Error::NotAllowed),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        let mut c = Conditions::default();
        if let Some(id) = client_id {
            c.and("o.client_id = ?", [Bind::Int(id)]);
        }
        if let Some(code) = given(&f.product) {
            c.and("p.code = ?", [Bind::Text(code)]);
        }
        if let Some(q) = given(&f.q) {
            // `#12` or `12` finds order 12 too.
            let number = q.trim_start_matches('#').parse::<i64>().ok();
            search(
                &mut c,
                &q,
                &[
                    "lower(c.name)",
                    "lower(p.code)",
                    "lower(p.name)",
                    "lower(o.reference)",
                ],
                number.map(|n| ("o.id = ?", Bind::Int(n))),
            )?;
        }
        let descending = descending(&f.order, true)?;
        let (expr, text) = match given(&f.sort).as_deref() {
            None | Some("created") => ("o.id", false),
            Some("client") => ("lower(c.name)", true),
            Some("product") => ("p.code", true),
            Some(_) => {
                return Err(InputError::new("sort", "Sort by created, client or product.").into())
            }
        };
        Ok((
            c,
            ListSort {
                expr,
                text,
                descending,
                id: "o.id",
            },
        ))
    }

    /// The licences of an order, with their live activations.
    pub async fn order_licences(
        &self,
        actor: &CurrentUser,
        order_id: i64,
        page: &Page,
    ) -> Result<Paged<Licence>> {
        self.order(actor, order_id).await?;
        let mut c = Conditions::default();
        c.and("l.order_id = ?", [Bind::Int(order_id)]);
        if let Some(after) = page.after::<i64>()? {
            c.and("l.id > ?", [Bind::Int(after)]);
        }
        let sql = c.page_sql(LICENCE_SELECT, "l.id", page.fetch());
        let rows: Vec<LicenceRow> = c
            .bind(sqlx::query_as(&sql))
            .fetch_all(self.db.pool())
            .await?;
        let now = self.clock.now();
        let licences = rows
            .into_iter()
            .map(|r| r.into_licence(now))
            .collect::<Result<Vec<_>>>()?;
        Ok(page.finish(licences, |l| l.id))
    }
}
