//! Finding serials: the filtered list, a look-up by the serial's text, and one serial's detail.

use super::*;

/// A LIKE pattern matching `needle` anywhere, its own `%`, `_` and `\\` taken literally.
fn like_pattern(needle: &str) -> String {
    format!("%{}%", crate::db::like_escape(needle))
}

/// The conditions of the serials `q` picks.
fn serial_conditions(q: &SerialQuery) -> Result<Conditions> {
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
    let mut c = Conditions::default();
    if let Some(b) = q.batch_id {
        c.and("s.batch_id = ?", [Bind::Int(b)]);
    }
    if let Some(p) = q.product_id {
        c.and("s.product_id = ?", [Bind::Int(p)]);
    }
    if let Some(n) = &needle {
        let on_a_host = "EXISTS (SELECT 1 FROM licences l JOIN activations a \
                 ON a.licence_id = l.id WHERE l.serial_id = s.id AND a.removed_at IS NULL \
                 AND LOWER(a.hostname) LIKE ? ESCAPE '\\')";
        match serial_needle.filter(|s| !s.is_empty()) {
            Some(sn) => c.and(
                &format!("(REPLACE(s.serial, '-', '') LIKE ? ESCAPE '\\' OR {on_a_host})"),
                [Bind::Text(like_pattern(&sn)), Bind::Text(like_pattern(n))],
            ),
            None => c.and(on_a_host, [Bind::Text(like_pattern(n))]),
        }
    }
    Ok(c)
}

impl Licentia {
    /// Serials, newest first, filtered by batch, product and a search over serials and host names.
    pub async fn list_serials(
        &self,
        actor: &CurrentUser,
        q: SerialQuery,
        page: &Page,
    ) -> Result<Paged<Serial>> {
        require_admin(actor)?;
        let before: Option<i64> = page.after()?;
        let mut c = serial_conditions(&q)?;
        if let Some(b) = before {
            c.and("s.id < ?", [Bind::Int(b)]);
        }
        let sql = c.page_sql(SERIAL_SELECT, "s.id DESC", page.fetch());
        let query = c.bind(sqlx::query_as::<_, SerialRow>(&sql));
        let rows = page.finish(query.fetch_all(self.db.pool()).await?, |r| r.id);
        let ids: Vec<i64> = rows.items.iter().map(|r| r.id).collect();
        let mut hosts = self.hostnames_of_each(&ids).await?;
        let items = rows
            .items
            .into_iter()
            .map(|r| {
                let h = hosts.remove(&r.id).unwrap_or_default();
                Self::serial_of(r, h)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Paged {
            items,
            next: rows.next,
        })
    }

    /// How many serials `q` picks (all pages).
    pub async fn count_serials(&self, actor: &CurrentUser, q: &SerialQuery) -> Result<i64> {
        require_admin(actor)?;
        serial_conditions(q)?
            .count(self.db.pool(), "FROM serials s")
            .await
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
            .map(|r| r.into_licence(self.clock.now()))
            .collect::<Result<Vec<_>>>()?;
        let history: Vec<ActivationRecord> = sqlx::query_as(&format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations a \
             JOIN licences l ON l.id = a.licence_id LEFT JOIN serials s ON s.id = a.serial_id \
             WHERE l.serial_id = $1 ORDER BY a.activated_at DESC, a.id DESC"
        ))
        .bind(serial_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(SerialDetail {
            serial,
            licences,
            history: history.into_iter().map(Activation::from).collect(),
        })
    }
}
