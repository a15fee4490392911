//! The lists as CSV files for a spreadsheet: clients, orders, an order's licences, serials and
//! floating usage (the activations list and the audit log write their own). Each export is the
//! list its caller may read, in the list's order, at most `EXPORT_MAX` rows; times in UTC and
//! dates ISO 8601. Secrets (licence keys, serial numbers) are written whole only when `secrets`
//! says the caller sees them whole, and masked as the JSON lists mask them otherwise.

use crate::audit::{Entry, Who, EXPORT_MAX};
use crate::csv::line;
use crate::page::Page;
use crate::web::SerialQuery;
use crate::{CurrentUser, Licentia, Result};
use protocol::account::ClientFilter;
use protocol::audit::AuditAction;
use protocol::catalog::{Licence, LicenceFilter, OrderFilter};
use protocol::redact::Redact;
use protocol::time::{format_date, format_rfc3339};
use std::collections::BTreeMap;

/// Features as one field: space-separated, as the product editor lists them.
fn features(list: &[String]) -> String {
    list.join(" ")
}

/// Counters as one field: `NAME=value` pairs, space-separated.
fn counters(map: &BTreeMap<String, i64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn time(t: Option<i64>) -> String {
    t.map(format_rfc3339).unwrap_or_default()
}

/// The columns of `licence_fields`.
const LICENCE_COLUMNS: [&str; 8] = [
    "features",
    "counters",
    "expires_on",
    "activations",
    "machine",
    "mode",
    "activated_at_utc",
    "last_validated_at_utc",
];

/// A licence's terms and machine as fields: features, counters, end (`never` for none), how
/// many activations it has had, and its machine's name, mode, activation and last validation.
fn licence_fields(l: &Licence) -> [String; 8] {
    let a = l.activation.as_ref();
    let expires = match (&l.expires_on, l.open_ended) {
        (Some(day), _) => day.clone(),
        (None, true) => "never".to_owned(),
        (None, false) => String::new(),
    };
    [
        features(&l.features),
        counters(&l.counters),
        expires,
        l.activation_count.to_string(),
        a.map_or_else(String::new, |a| a.hostname.clone()),
        a.map_or_else(String::new, |a| a.mode.clone()),
        time(a.map(|a| a.activated_at)),
        time(a.and_then(|a| a.last_validated_at)),
    ]
}

impl Licentia {
    /// The clients `filter` picks (administrators), in the list's order.
    pub async fn clients_csv(&self, actor: &CurrentUser, filter: &ClientFilter) -> Result<String> {
        let clients = self
            .list_clients(actor, filter, &Page::first(EXPORT_MAX))
            .await?
            .items;
        let mut out = line(&[
            "client_id",
            "name",
            "contact_email",
            "users",
            "orders",
            "licences_on_machines",
            "created_at_utc",
            "notes",
        ]);
        for c in clients {
            out.push_str(&line(&[
                &c.id.to_string(),
                &c.name,
                &c.contact_email,
                &c.user_count.to_string(),
                &c.order_count.to_string(),
                &c.active_licences.to_string(),
                &time(Some(c.created_at)),
                &c.notes,
            ]));
        }
        Ok(out)
    }

    /// The orders `filter` picks, in the list's order.
    pub async fn orders_csv(&self, actor: &CurrentUser, filter: &OrderFilter) -> Result<String> {
        let orders = self
            .list_orders(actor, filter, &Page::first(EXPORT_MAX))
            .await?
            .items;
        let mut out = line(&[
            "order_id",
            "client",
            "product",
            "reference",
            "quantity",
            "licences_on_machines",
            "features",
            "counters",
            "created_at_utc",
            "notes",
        ]);
        for o in orders {
            out.push_str(&line(&[
                &o.id.to_string(),
                &o.client_name,
                &o.product_code,
                &o.reference,
                &o.quantity.to_string(),
                &o.active.to_string(),
                &features(&o.features),
                &counters(&o.counters),
                &time(Some(o.created_at)),
                &o.notes,
            ]));
        }
        Ok(out)
    }

    /// An order's licences in the order they were made, each with the machine holding it now.
    pub async fn order_licences_csv(
        &self,
        actor: &CurrentUser,
        order_id: i64,
        secrets: bool,
    ) -> Result<String> {
        let mut licences = self
            .order_licences(actor, order_id, &Page::first(EXPORT_MAX))
            .await?
            .items;
        if !secrets {
            licences.redact();
        }
        let mut out = line(&[&["licence_id", "licence_key"][..], &LICENCE_COLUMNS].concat());
        for l in licences {
            let fields = [l.id.to_string(), l.key.clone()]
                .into_iter()
                .chain(licence_fields(&l))
                .collect::<Vec<_>>();
            out.push_str(&line(&fields));
        }
        Ok(out)
    }

    /// The licences `filter` picks across orders and serials, in the list's order.
    pub async fn licences_csv(
        &self,
        actor: &CurrentUser,
        filter: &LicenceFilter,
        secrets: bool,
    ) -> Result<String> {
        let mut rows = self
            .list_licences(actor, filter, secrets, &Page::first(EXPORT_MAX))
            .await?
            .items;
        if !secrets {
            rows.redact();
        }
        let first = [
            "licence_id",
            "licence_key",
            "serial",
            "order_id",
            "client",
            "product",
            "status",
        ];
        let mut out = line(&[&first[..], &LICENCE_COLUMNS].concat());
        for r in rows {
            let l = &r.licence;
            let fields = [
                l.id.to_string(),
                l.key.clone(),
                r.serial.clone().unwrap_or_default(),
                l.order_id.map(|id| id.to_string()).unwrap_or_default(),
                r.client_name.clone(),
                r.product_code.clone(),
                r.status.as_str().to_owned(),
            ]
            .into_iter()
            .chain(licence_fields(l))
            .collect::<Vec<_>>();
            out.push_str(&line(&fields));
        }
        Ok(out)
    }

    /// The serials `q` picks, in the order they were made, whole: serial numbers are what a
    /// customer types to activate, so every export is an audit entry (`serials.export`). The
    /// first six columns are the batch file's since serials were first exported.
    pub async fn serials_csv(&self, actor: &CurrentUser, q: SerialQuery) -> Result<String> {
        let subject = match q.batch_id {
            Some(id) => {
                self.serial_batch(actor, id).await?;
                format!("serial batch {id}")
            }
            None => "serials".to_owned(),
        };
        let serials = self
            .list_serials(actor, q.clone(), &Page::first(EXPORT_MAX))
            .await?
            .items;
        let mut detail = match q.batch_id {
            Some(_) => "The batch's serial numbers, exported whole (CSV)".to_owned(),
            None => format!("{} serial numbers, exported whole (CSV)", serials.len()),
        };
        if let Some(search) = q.search.as_deref().filter(|s| !s.is_empty()) {
            detail.push_str(&format!(", searched for {search:?}"));
        }
        if let Some(product) = q.product_id {
            detail.push_str(&format!(", product {product}"));
        }
        detail.push('.');
        self.record_now(
            Who::User(actor),
            Entry::new(AuditAction::SerialsExport, subject).detail(detail),
        )
        .await?;
        let mut out = line(&[
            "serial",
            "product",
            "features",
            "licences",
            "status",
            "replaced_by",
            "on_machines",
            "machines",
            "created_at_utc",
        ]);
        for s in serials.iter().rev() {
            let stored = s
                .features
                .as_deref()
                .map_or_else(|| "(product defaults)".to_owned(), features);
            let status = match s.revoked_at {
                Some(t) => format!("revoked {}", format_date(t.div_euclid(86_400))),
                None => "valid".to_owned(),
            };
            out.push_str(&line(&[
                &s.serial,
                &s.product_code,
                &stored,
                &s.licences.to_string(),
                &status,
                s.replaced_by.as_deref().unwrap_or(""),
                &s.active.to_string(),
                &s.hostnames.join(" "),
                &time(Some(s.created_at)),
            ]));
        }
        Ok(out)
    }

    /// Usage per feature (*Usage Per Feature*), by editor, feature, commercial type and pool.
    pub async fn usage_csv(&self, actor: &CurrentUser, secrets: bool) -> Result<String> {
        let mut usage = self.usage_per_feature(actor).await?;
        if !secrets {
            usage.redact();
        }
        usage.sort_by(|a, b| {
            (&a.editor, &a.feature, &a.commercial_type, a.pool_id).cmp(&(
                &b.editor,
                &b.feature,
                &b.commercial_type,
                b.pool_id,
            ))
        });
        let mut out = line(&[
            "editor",
            "feature",
            "commercial_type",
            "pool_id",
            "owner",
            "in_use",
            "count",
            "on_mobile_licences",
            "refused_today",
        ]);
        for u in usage {
            out.push_str(&line(&[
                &u.editor,
                &u.feature,
                &u.commercial_type,
                &u.pool_id.to_string(),
                &u.owner,
                &u.in_use.to_string(),
                &u.count.to_string(),
                &u.offline.to_string(),
                &u.refused_today.to_string(),
            ]));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_features_read_as_the_editor_writes_them() {
        let map = BTreeMap::from([("USERS".to_owned(), 5), ("CORES".to_owned(), 16)]);
        assert_eq!(counters(&map), "CORES=16 USERS=5");
        assert_eq!(counters(&BTreeMap::new()), "");
        assert_eq!(features(&["A".into(), "B".into()]), "A B");
    }
}
