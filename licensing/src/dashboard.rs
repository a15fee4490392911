//! The dashboard: a few figures read in one go, each a link to the list it sums up (the portal
//! makes the links). An administrator's covers everything, with the first steps on an empty
//! server; a client user's covers their organisation's licences, pools and activity only.

use crate::{client_scope, Licentia, Result};
use protocol::account::CurrentUser;
use protocol::audit::AuditQuery;
use protocol::dashboard::{
    per_day, Checklist, Dashboard, ExpiringLicence, PoolFigures, ProductFigures, DASHBOARD_DAYS,
};
use protocol::time::day_of;

/// How many of the licences about to expire, and of the pools, are listed (the figures count all).
const LISTED: i64 = 10;
/// How many recent audit entries are shown.
const RECENT: i64 = 8;

/// The product a licence belongs to, whether it came with an order or a serial.
const LICENCE_PRODUCT: &str = "FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
     LEFT JOIN serials s ON s.id = l.serial_id";

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: i64,
    code: String,
    name: String,
    licences: i64,
    active: i64,
}

#[derive(sqlx::FromRow)]
struct ExpiringRow {
    id: i64,
    order_id: Option<i64>,
    serial_id: Option<i64>,
    licence_key: String,
    client_name: String,
    product_code: String,
    expires_on: i64,
}

#[derive(sqlx::FromRow)]
struct PoolRow {
    id: i64,
    name: String,
    owner: String,
    in_use: i64,
    count: i64,
    refused_today: i64,
}

impl Licentia {
    pub async fn dashboard(&self, actor: &CurrentUser) -> Result<Dashboard> {
        // None: everything (an administrator); Some: one client's own.
        let own = client_scope(actor)?;
        let now = self.clock.now();
        let today = day_of(now);
        let pool = self.db.pool();
        let exists = |table: &'static str| async move {
            let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT 1) t");
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(pool)
                .await
                .map(|n| n > 0)
        };
        let checklist = match own {
            Some(_) => None,
            None => Some(Checklist {
                product: exists("products").await?,
                client: exists("clients").await?,
                order: exists("orders").await? || exists("serial_batches").await?,
                activation: exists("activations").await?,
            }),
        };
        // Licences and live activations per product: one grouped pass over each table.
        let products: Vec<ProductRow> = sqlx::query_as(&format!(
            "SELECT p.id, p.code, p.name, COALESCE(n.licences, 0) AS licences, \
             COALESCE(a.active, 0) AS active FROM products p \
             LEFT JOIN (SELECT COALESCE(o.product_id, s.product_id) AS product_id, \
               COUNT(*) AS licences {LICENCE_PRODUCT} WHERE ($1 IS NULL OR o.client_id = $1) \
               GROUP BY COALESCE(o.product_id, s.product_id)) n ON n.product_id = p.id \
             LEFT JOIN (SELECT COALESCE(o.product_id, s.product_id) AS product_id, \
               COUNT(*) AS active FROM activations act JOIN licences l ON l.id = act.licence_id \
               LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN serials s ON s.id = l.serial_id \
               WHERE act.removed_at IS NULL AND ($1 IS NULL OR o.client_id = $1) \
               GROUP BY COALESCE(o.product_id, s.product_id)) a ON a.product_id = p.id \
             WHERE $1 IS NULL OR n.licences > 0 ORDER BY p.code"
        ))
        .bind(own)
        .fetch_all(pool)
        .await?;
        let since = (today - DASHBOARD_DAYS + 1) * 86_400;
        let days: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT CAST(a.activated_at / 86400 AS BIGINT) AS day, COUNT(*) FROM activations a \
             JOIN licences l ON l.id = a.licence_id LEFT JOIN orders o ON o.id = l.order_id \
             WHERE a.activated_at >= $1 AND ($2 IS NULL OR o.client_id = $2) \
             GROUP BY CAST(a.activated_at / 86400 AS BIGINT)",
        )
        .bind(since)
        .bind(own)
        .fetch_all(pool)
        .await?;
        // The next DASHBOARD_DAYS days, today the first.
        let until = today + DASHBOARD_DAYS - 1;
        let expiring: Vec<ExpiringRow> = sqlx::query_as(&format!(
            "SELECT l.id, l.order_id, l.serial_id, l.licence_key, COALESCE(c.name, '') AS client_name, \
             p.code AS product_code, l.expires_on {LICENCE_PRODUCT} \
             LEFT JOIN clients c ON c.id = o.client_id \
             JOIN products p ON p.id = COALESCE(o.product_id, s.product_id) \
             WHERE l.open_ended = 0 AND l.expires_on >= $1 AND l.expires_on <= $2 \
             AND ($4 IS NULL OR o.client_id = $4) \
             ORDER BY l.expires_on, l.id LIMIT $3"
        ))
        .bind(today)
        .bind(until)
        .bind(LISTED)
        .bind(own)
        .fetch_all(pool)
        .await?;
        let expiring_count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
             WHERE l.open_ended = 0 AND l.expires_on >= $1 AND l.expires_on <= $2 \
             AND ($3 IS NULL OR o.client_id = $3)",
        )
        .bind(today)
        .bind(until)
        .bind(own)
        .fetch_one(pool)
        .await?;
        // As the licences list's time_limited filter counts them (the figure links there).
        let limited_running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
             WHERE l.open_ended = 0 AND l.expires_on >= $1 AND ($2 IS NULL OR o.client_id = $2)",
        )
        .bind(today)
        .bind(own)
        .fetch_one(pool)
        .await?;
        // The seats of each pool's keys valid today, the newest of a feature's renewals only
        // (as the usage monitor counts them).
        let pools: Vec<PoolRow> = sqlx::query_as(
            "SELECT p.id, p.name, COALESCE(c.name, s.serial, '') AS owner, \
             CAST(COALESCE((SELECT SUM(k.in_use) FROM pool_keys k WHERE k.pool_id = p.id), 0) \
               AS BIGINT) AS in_use, \
             CAST(COALESCE((SELECT SUM(k.quantity) FROM pool_keys k WHERE k.pool_id = p.id \
               AND (k.start_day IS NULL OR k.start_day <= $1) \
               AND (k.end_day IS NULL OR k.end_day >= $1) \
               AND NOT EXISTS (SELECT 1 FROM pool_keys h WHERE h.pool_id = k.pool_id \
                 AND h.editor = k.editor AND h.feature = k.feature \
                 AND h.group_index > k.group_index \
                 AND (h.start_day IS NULL OR h.start_day <= $1) \
                 AND (h.end_day IS NULL OR h.end_day >= $1))), 0) AS BIGINT) AS count, \
             CAST(COALESCE((SELECT SUM(u.refusals) FROM usage_hourly u \
               WHERE u.pool_id = p.id AND u.hour >= $2), 0) AS BIGINT) AS refused_today \
             FROM pools p LEFT JOIN clients c ON c.id = p.client_id \
             LEFT JOIN serials s ON s.id = p.serial_id WHERE ($4 IS NULL OR p.client_id = $4) \
             ORDER BY p.id DESC LIMIT $3",
        )
        .bind(today)
        .bind(today * 24)
        .bind(LISTED)
        .bind(own)
        .fetch_all(pool)
        .await?;
        let pool_count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pools WHERE ($1 IS NULL OR client_id = $1)")
                .bind(own)
                .fetch_one(pool)
                .await?;
        let recent = self
            .audit_log(
                actor,
                &AuditQuery {
                    limit: Some(RECENT),
                    ..AuditQuery::default()
                },
            )
            .await?
            .entries;
        Ok(Dashboard {
            checklist,
            products: products
                .into_iter()
                .map(|r| ProductFigures {
                    id: r.id,
                    code: r.code,
                    name: r.name,
                    licences: r.licences,
                    active: r.active,
                })
                .collect(),
            activations_per_day: per_day(&days, today, DASHBOARD_DAYS),
            expiring: expiring
                .into_iter()
                .map(|r| ExpiringLicence {
                    licence_id: r.id,
                    order_id: r.order_id,
                    serial_id: r.serial_id,
                    licence_key: r.licence_key,
                    client_name: r.client_name,
                    product_code: r.product_code,
                    expires_on: r.expires_on,
                })
                .collect(),
            expiring_count,
            limited_running,
            pools: pools
                .into_iter()
                .map(|r| PoolFigures {
                    id: r.id,
                    name: r.name,
                    owner: r.owner,
                    in_use: r.in_use,
                    count: r.count,
                    refused_today: r.refused_today,
                })
                .collect(),
            pool_count,
            recent,
        })
    }
}
