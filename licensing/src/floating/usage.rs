//! What the usage monitor and *Explain* show: usage per feature, the live seats of a feature,
//! the hourly history, and every key's verdict for a checkout.

use super::*;

impl Licentia {
    /// Refusals and peak use per hour of a pool's features, oldest first: (editor, feature,
    /// hour as Unix seconds, refusals, peak).
    pub async fn usage_history(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
    ) -> Result<Vec<(String, String, i64, i64, i64)>> {
        self.pool(actor, pool_id).await?;
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT editor, feature, hour, refusals, peak_in_use FROM usage_hourly \
             WHERE pool_id = $1 ORDER BY hour, editor, feature",
        )
        .bind(pool_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(e, f, h, r, p)| (e, f, h * 3600, r, p))
            .collect())
    }

    /// *Usage Per Feature*: every pool's for an administrator, the own pool's for a client user.
    pub async fn usage_per_feature(&self, actor: &CurrentUser) -> Result<Vec<FeatureUsage>> {
        let scope = crate::client_scope(actor)?;
        self.feature_usage(scope).await
    }

    /// Every pool's features in use, their count and their refusals since the pool began (a
    /// feature refused without a key too), for the metrics (no caller: the metrics endpoint
    /// has its own protection). Names no serial and no client.
    pub async fn seat_figures(&self) -> Result<Vec<SeatFigures>> {
        use std::collections::BTreeMap;
        // A feature sold in several commercial types is one line per pool here.
        let mut by_feature: BTreeMap<(i64, String, String), SeatFigures> = BTreeMap::new();
        fn line<'a>(
            lines: &'a mut BTreeMap<(i64, String, String), SeatFigures>,
            pool_id: i64,
            editor: &str,
            feature: &str,
        ) -> &'a mut SeatFigures {
            lines
                .entry((pool_id, editor.to_owned(), feature.to_owned()))
                .or_insert_with(|| SeatFigures {
                    pool_id,
                    pool_id_text: pool_id.to_string(),
                    editor: editor.to_owned(),
                    feature: feature.to_owned(),
                    in_use: 0,
                    count: 0,
                    refusals: 0,
                })
        }
        for u in self.feature_usage(None).await? {
            let f = line(&mut by_feature, u.pool_id, &u.editor, &u.feature);
            f.in_use += u.in_use;
            f.count += u.count;
        }
        let refused: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT pool_id, editor, feature, CAST(SUM(refusals) AS BIGINT) FROM usage_hourly \
             GROUP BY pool_id, editor, feature HAVING SUM(refusals) > 0",
        )
        .fetch_all(self.db.pool())
        .await?;
        for (pool_id, editor, feature, n) in refused {
            line(&mut by_feature, pool_id, &editor, &feature).refusals = n;
        }
        Ok(by_feature.into_values().collect())
    }

    /// *Usage Per Feature* of client `scope`'s pools (every pool's when none).
    async fn feature_usage(&self, scope: Option<i64>) -> Result<Vec<FeatureUsage>> {
        let today = day_of(self.clock.now());
        type Row = (
            i64,
            Option<i64>,
            String,
            String,
            String,
            String,
            i64,
            i64,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT p.id, p.serial_id, COALESCE(c.name, s.serial), k.editor, k.feature, k.commercial_type, \
             CAST(SUM(k.in_use) AS BIGINT), CAST(SUM(COALESCE(b.out, 0)) AS BIGINT), \
             CAST(SUM(CASE WHEN (k.start_day IS NULL OR k.start_day <= $2) \
                 AND (k.end_day IS NULL OR k.end_day >= $2) \
                 AND NOT EXISTS (SELECT 1 FROM pool_keys h WHERE h.pool_id = k.pool_id \
                     AND h.editor = k.editor AND h.feature = k.feature \
                     AND h.group_index > k.group_index \
                     AND (h.start_day IS NULL OR h.start_day <= $2) \
                     AND (h.end_day IS NULL OR h.end_day >= $2)) \
                 THEN k.quantity ELSE 0 END) AS BIGINT) \
             FROM pool_keys k JOIN pools p ON p.id = k.pool_id \
             LEFT JOIN clients c ON c.id = p.client_id LEFT JOIN serials s ON s.id = p.serial_id \
             LEFT JOIN (SELECT key_id, SUM(amount) AS out FROM seats \
                 WHERE released_at IS NULL AND borrowed_until IS NOT NULL GROUP BY key_id) b \
                 ON b.key_id = k.id \
             WHERE ($1 IS NULL OR p.client_id = $1) \
             GROUP BY p.id, p.serial_id, COALESCE(c.name, s.serial), k.editor, k.feature, k.commercial_type \
             ORDER BY k.editor, k.feature, k.commercial_type, p.id",
        )
        .bind(scope)
        .bind(today)
        .fetch_all(self.db.pool())
        .await?;
        // Today's refusals, per feature (the hourly history keeps no commercial type: a feature
        // sold in two shows its refusals on both lines).
        let refused: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT u.pool_id, u.editor, u.feature, CAST(SUM(u.refusals) AS BIGINT) \
             FROM usage_hourly u JOIN pools p ON p.id = u.pool_id \
             WHERE u.hour >= $1 AND ($2 IS NULL OR p.client_id = $2) \
             GROUP BY u.pool_id, u.editor, u.feature",
        )
        .bind(today * 24)
        .bind(scope)
        .fetch_all(self.db.pool())
        .await?;
        let refused: std::collections::HashMap<(i64, String, String), i64> = refused
            .into_iter()
            .map(|(p, e, f, n)| ((p, e, f), n))
            .collect();
        let refused_of = |pool: i64, editor: &str, feature: &str| {
            refused
                .get(&(pool, editor.to_owned(), feature.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        Ok(rows
            .into_iter()
            .map(
                |(pool_id, serial_id, owner, editor, feature, ct, in_use, offline, count)| {
                    FeatureUsage {
                        refused_today: refused_of(pool_id, &editor, &feature),
                        pool_id,
                        serial_id,
                        owner,
                        editor,
                        feature,
                        commercial_type: ct,
                        in_use,
                        count,
                        offline,
                    }
                },
            )
            .collect())
    }

    /// *Detailed usage* of one feature of a pool: every live seat with its key's fields.
    pub async fn detailed_usage(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        editor: &str,
        feature: &str,
    ) -> Result<Vec<SeatDetail>> {
        self.pool(actor, pool_id).await?;
        self.seat_details(pool_id, Some((editor, feature))).await
    }

    /// A pool's mobile licences: its borrowed seats (not those a bundle took along), soonest
    /// end first.
    pub async fn mobile_licences(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
    ) -> Result<Vec<SeatDetail>> {
        self.pool(actor, pool_id).await?;
        let mut seats = self.seat_details(pool_id, None).await?;
        seats.retain(|s| s.borrowed_until.is_some() && s.bundled_with.is_none());
        seats.sort_by_key(|s| (s.borrowed_until, s.id));
        Ok(seats)
    }

    /// The live seats of a pool, of one feature (`editor`, `feature`) or all.
    async fn seat_details(
        &self,
        pool_id: i64,
        of: Option<(&str, &str)>,
    ) -> Result<Vec<SeatDetail>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            key_id: i64,
            model: String,
            editor: String,
            feature: String,
            user_name: String,
            host: String,
            process: String,
            session: String,
            amount: i64,
            granted_since: i64,
            last_heartbeat_at: i64,
            granted_at: i64,
            lease_expires_at: i64,
            max_release_number: i64,
            max_release_day: Option<i64>,
            end_day: Option<i64>,
            customer_id: String,
            pricing_structure: String,
            commercial_type: String,
            client_release_number: i64,
            bundled_with: Option<String>,
            borrowed_until: Option<i64>,
            /// The seat's own application's last heartbeat and lease (a bundled seat's are its
            /// main seat's: only the main seat is kept by heartbeats).
            main_beat: i64,
            main_lease: i64,
            casual_max_minutes: Option<i64>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT s.id, s.key_id, k.model, s.editor, s.feature, s.user_name, s.host, s.process, \
             s.session, s.amount, \
             (SELECT MIN(o.granted_at) FROM seats o WHERE o.pool_id = s.pool_id \
                AND o.feature = s.feature AND o.user_name = s.user_name AND o.host = s.host \
                AND o.session = s.session) AS granted_since, \
             s.last_heartbeat_at, s.granted_at, s.lease_expires_at, k.max_release_number, \
             k.max_release_day, k.end_day, k.customer_id, k.pricing_structure, \
             k.commercial_type, s.client_release_number, \
             (SELECT b.feature FROM seats b WHERE b.id = s.bundle_of) AS bundled_with, \
             s.borrowed_until, m.last_heartbeat_at AS main_beat, m.lease_expires_at AS main_lease, \
             k.casual_max_minutes \
             FROM seats s JOIN pool_keys k ON k.id = s.key_id \
             JOIN seats m ON m.id = COALESCE(s.bundle_of, s.id) \
             WHERE s.pool_id = $1 AND ($2 IS NULL OR (s.editor = $2 AND s.feature = $3)) \
             AND s.released_at IS NULL ORDER BY s.granted_at",
        )
        .bind(pool_id)
        .bind(of.map(|(e, _)| e))
        .bind(of.map(|(_, f)| f))
        .fetch_all(self.db.pool())
        .await?;
        let now = self.clock.now();
        let casual = self
            .casual_use_now(
                rows.iter()
                    .filter_map(|r| Some((r.key_id, r.casual_max_minutes?))),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| SeatDetail {
                casual: r.casual_max_minutes.map(|maximum| {
                    casual
                        .get(&(r.key_id, r.user_name.clone()))
                        .copied()
                        .unwrap_or(protocol::history::CasualUse {
                            minutes: 0,
                            maximum,
                        })
                }),
                silent_since: (r.borrowed_until.is_none() && r.main_lease < now)
                    .then_some(r.main_beat),
                id: r.id,
                pool_id,
                key_id: r.key_id,
                server: self.issuer.to_string(),
                licence_type: r.model,
                editor: r.editor,
                feature: r.feature,
                user: r.user_name,
                host: r.host,
                process: r.process,
                session: r.session,
                amount: r.amount,
                granted_since: r.granted_since,
                last_used_at: r.last_heartbeat_at,
                granted_at: r.granted_at,
                lease_expires_at: r.lease_expires_at,
                max_release_number: r.max_release_number,
                max_release_date: r.max_release_day.map(format_date),
                expiration_date: r.end_day.map(format_date),
                customer_id: r.customer_id,
                pricing_structure: r.pricing_structure,
                commercial_type: r.commercial_type,
                process_release: r.client_release_number,
                bundled_with: r.bundled_with,
                borrowed_until: r.borrowed_until,
            })
            .collect())
    }

    /// For a hypothetical checkout: every key of the pool with the filter that removed it or its
    /// rank (1 would be granted). With a user or host, the pool's access rules are judged for
    /// them as a checkout would (a missing one counts as empty).
    pub async fn explain_checkout(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        req: &ExplainRequest,
    ) -> Result<Vec<KeyVerdict>> {
        self.pool(actor, pool_id).await?;
        let pool = self.pool_row(pool_id).await?;
        let keys = self.key_rows(pool_id).await?;
        let mut ask = ask_of(&req.terms)?;
        if req.user.is_some() || req.host.is_some() {
            let user = field("user", req.user.as_deref().unwrap_or(""), 255, false)?;
            let host = field("host", req.host.as_deref().unwrap_or(""), 255, false)?;
            let who = protocol::access::Asker {
                user: &user,
                host: &host,
            };
            let access = self.access_for(&pool).await?;
            let bundles = self.bundles_of(pool_id, &ask.feature).await?;
            ask.access = match access.barred_with(&ask.feature, &bundles, who) {
                Some(reason) => Some(selection::Rule::Access(reason)),
                None if access.reserves(&ask.feature) => {
                    let mut conn = self.db.pool().acquire().await?;
                    self.reserved_against(&mut conn, &access, pool_id, (&ask, who), 0)
                        .await?
                        .map(selection::Rule::Reserved)
                }
                None => None,
            };
        }
        let selectable: Vec<Key> = keys.iter().map(KeyRow::for_selection).collect();
        let today = day_of(self.clock.now());
        Ok(selection::explain(&selectable, &ask, today)
            .into_iter()
            .filter_map(|(id, v)| {
                let key = keys.iter().find(|k| k.id == id)?.view();
                Some(match v {
                    Verdict::Ranked(r) => KeyVerdict {
                        key,
                        rank: i64::try_from(r).ok(),
                        filtered_by: None,
                    },
                    Verdict::Filtered(rule) => KeyVerdict {
                        key,
                        rank: None,
                        filtered_by: Some(rule.to_string()),
                    },
                })
            })
            .collect())
    }
}
