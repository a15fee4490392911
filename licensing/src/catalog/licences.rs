//! Licences and where they are in use: the activations list, one licence, and an
//! administrator's edits of its terms (checked by `licence_terms`, shared with the offline
//! answer that gives terms in its activation's transaction).

use super::*;

impl Licentia {
    /// Live activations, newest first: every client's for an administrator, one's own for a
    /// client user.
    pub async fn list_activations(
        &self,
        actor: &CurrentUser,
        page: &Page,
    ) -> Result<Paged<ActivationRow>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            activation: ActivationRecord,
            licence_key: String,
            order_id: Option<i64>,
            serial_id: Option<i64>,
            client_name: Option<String>,
            product_code: String,
            expires_on: Option<i64>,
        }
        let mut c = Conditions::default();
        c.and("a.removed_at IS NULL", []);
        if let Some(client) = crate::client_scope(actor)? {
            c.and("o.client_id = ?", [Bind::Int(client)]);
        }
        if let Some((at, id)) = page.after::<(i64, i64)>()? {
            c.and(
                "(a.activated_at, a.id) < (?, ?)",
                [Bind::Int(at), Bind::Int(id)],
            );
        }
        let select = format!(
            "SELECT {ACTIVATION_COLUMNS}, l.licence_key, l.order_id, l.serial_id, \
             c.name AS client_name, p.code AS product_code, l.expires_on \
             FROM activations a JOIN licences l ON l.id = a.licence_id \
             LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN clients c ON c.id = o.client_id \
             LEFT JOIN serials s ON s.id = a.serial_id \
             JOIN products p ON p.id = COALESCE(o.product_id, \
                (SELECT ls.product_id FROM serials ls WHERE ls.id = l.serial_id))"
        );
        let sql = c.page_sql(&select, "a.activated_at DESC, a.id DESC", page.fetch());
        let rows: Vec<Row> = c
            .bind(sqlx::query_as(&sql))
            .fetch_all(self.db.pool())
            .await?;
        let rows = page.finish(rows, |r| (r.activation.activated_at, r.activation.id));
        Ok(rows.map(|r| ActivationRow {
            activation: r.activation.into(),
            licence_key: r.licence_key,
            order_id: r.order_id,
            serial_id: r.serial_id,
            client_name: r.client_name.unwrap_or_default(),
            product_code: r.product_code,
            expires_on: r.expires_on.map(format_date),
        }))
    }

    /// The client a licence belongs to, for access checks: `None` for a web licence, which only
    /// administrators manage.
    pub(crate) async fn licence_client(&self, licence_id: i64) -> Result<Option<i64>> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT o.client_id FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
             WHERE l.id = $1",
        )
        .bind(licence_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|(c,)| c).ok_or(Error::NotFound("The licence"))
    }

    /// Checks that `actor` may see the licence `licence_id`.
    pub(crate) async fn require_licence_access(
        &self,
        actor: &CurrentUser,
        licence_id: i64,
    ) -> Result<()> {
        match self.licence_client(licence_id).await? {
            Some(client_id) => self.require_client_access(actor, client_id),
            None => require_admin(actor),
        }
    }

    pub async fn licence(&self, actor: &CurrentUser, licence_id: i64) -> Result<Licence> {
        self.require_licence_access(actor, licence_id).await?;
        sqlx::query_as::<_, LicenceRow>(&format!("{LICENCE_SELECT} WHERE l.id = $1"))
            .bind(licence_id)
            .fetch_one(self.db.pool())
            .await?
            .into_licence(self.clock.now())
    }

    /// An administrator changes what a licence grants; the application picks it up at its next
    /// validation. `expiry` sets the end (today or later), takes it away, or keeps it.
    pub async fn edit_licence(
        &self,
        actor: &CurrentUser,
        licence_id: i64,
        features: Vec<String>,
        counters: BTreeMap<String, i64>,
        expiry: ExpiryEdit,
    ) -> Result<Licence> {
        require_admin(actor)?;
        let before = self.licence(actor, licence_id).await?;
        let product_id: i64 = sqlx::query_scalar(
            "SELECT COALESCE(o.product_id, s.product_id) FROM licences l \
             LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN serials s ON s.id = l.serial_id \
             WHERE l.id = $1",
        )
        .bind(licence_id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::NotFound("The licence"))?;
        let terms = self
            .licence_terms(product_id, features, counters, &expiry)
            .await?;
        let (keep, end, open_ended) = match terms.end {
            TermsEnd::Keep => (1, None, 0),
            TermsEnd::NoEnd => (0, None, 1),
            TermsEnd::On(day) => (0, Some(day), 0),
        };
        let client = self.licence_client(licence_id).await?;
        let mut tx = self.db.pool().begin().await?;
        // Keep: the end and the open-ended mark stay; otherwise both are set.
        sqlx::query(
            "UPDATE licences SET features = $1, counters = $2, \
             expires_on = CASE WHEN $3 = 1 THEN expires_on ELSE $4 END, \
             open_ended = CASE WHEN $3 = 1 THEN open_ended ELSE $5 END WHERE id = $6",
        )
        .bind(&terms.features)
        .bind(&terms.counters)
        .bind(keep)
        .bind(end)
        .bind(open_ended)
        .bind(licence_id)
        .execute(&mut *tx)
        .await?;
        tracing::info!(licence_id, by = actor.id, "licence edited");
        let after = sqlx::query_as::<_, LicenceRow>(&format!("{LICENCE_SELECT} WHERE l.id = $1"))
            .bind(licence_id)
            .fetch_one(&mut *tx)
            .await?
            .into_licence(self.clock.now())?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(
                AuditAction::LicenceEdit,
                licence_subject(licence_id, &after.key),
            )
            .of_client(client)
            .changes(record_changes(
                &licence_terms_json(&before),
                &licence_terms_json(&after),
                &[],
            )),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(after)
    }

    /// Checks terms for a licence of product `product_id` (features from its catalogue, counters,
    /// an end today or later) without changing anything.
    pub(crate) async fn licence_terms(
        &self,
        product_id: i64,
        features: Vec<String>,
        counters: BTreeMap<String, i64>,
        expiry: &ExpiryEdit,
    ) -> Result<LicenceTerms> {
        let product = self.product_row(product_id).await?.into_product()?;
        let features = protocol::catalog::feature_list(&features)?;
        features_in_catalogue(&features, &product.features)?;
        let counters = protocol::catalog::counters(&counters)?;
        let today = day_of(self.clock.now());
        Ok(LicenceTerms {
            features: json(&features),
            counters: json(&counters),
            end: match expiry {
                ExpiryEdit::Keep => TermsEnd::Keep,
                ExpiryEdit::NoEnd => TermsEnd::NoEnd,
                ExpiryEdit::On(d) => TermsEnd::On(parse_end_date(d, today)?),
            },
        })
    }
}
