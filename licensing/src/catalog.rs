//! Products, orders and licences: the standard model of the Activation Center. Features and
//! counters cascade product → order → licence; a licence keeps its own copy once activated (or
//! once an administrator edits it).

use crate::{require_admin, Error, Licentia, Result};
use protocol::account::{CurrentUser, Role};
use protocol::catalog::{
    features_in_catalogue, Activation, ActivationRow, ExpiryEdit, Feature, Licence,
    LicensingSettings, Order, Product, ProductInput,
};
use protocol::input::{self, InputError};
use protocol::time::{day_of, format_date, parse_date};
use rand::rngs::OsRng;
use rand::Rng;
use std::collections::BTreeMap;

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s)
        .map_err(|e| Error::Internal(format!("stored {what} are malformed: {e}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProductRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub editor: String,
    pub release_number: i64,
    pub release_date: Option<i64>,
    pub features: String,
    pub default_features: String,
    pub default_counters: String,
    pub limited: i64,
    pub validity_days: Option<i64>,
    pub fixed_start: Option<i64>,
    pub fixed_end: Option<i64>,
    pub expire_day_of_month: Option<i64>,
    pub end_user_removal: i64,
    pub max_activations: i64,
    pub validate_every_days: i64,
    pub licences_per_serial: i64,
    pub heartbeat_secs: i64,
    pub borrowing_allowed: i64,
    pub max_borrow_days: i64,
    pub created_at: i64,
}

impl ProductRow {
    pub(crate) fn limits(&self) -> crate::expiry::Limits {
        crate::expiry::Limits {
            validity_days: self.validity_days,
            fixed_start: self.fixed_start,
            fixed_end: self.fixed_end,
            expire_day_of_month: self.expire_day_of_month.and_then(|d| u32::try_from(d).ok()),
        }
    }

    pub(crate) fn into_product(self) -> Result<Product> {
        Ok(Product {
            features: parse_json::<Vec<Feature>>(&self.features, "features")?,
            default_features: parse_json(&self.default_features, "features")?,
            default_counters: parse_json(&self.default_counters, "counters")?,
            settings: LicensingSettings {
                limited: self.limited != 0,
                validity_days: self.validity_days,
                fixed_start: self.fixed_start.map(format_date),
                fixed_end: self.fixed_end.map(format_date),
                expire_day_of_month: self.expire_day_of_month.and_then(|d| u32::try_from(d).ok()),
                end_user_removal: self.end_user_removal != 0,
                max_activations: self.max_activations,
                validate_every_days: self.validate_every_days,
                licences_per_serial: self.licences_per_serial,
                heartbeat_secs: self.heartbeat_secs,
                borrowing_allowed: self.borrowing_allowed != 0,
                max_borrow_days: self.max_borrow_days,
            },
            id: self.id,
            code: self.code,
            name: self.name,
            editor: self.editor,
            release_number: self.release_number,
            release_date: self.release_date.map(format_date),
            created_at: self.created_at,
        })
    }
}

pub(crate) const PRODUCT_COLUMNS: &str = "p.id, p.code, p.name, p.editor, p.release_number, \
     p.release_date, p.features, p.default_features, p.default_counters, p.limited, \
     p.validity_days, p.fixed_start, p.fixed_end, p.expire_day_of_month, p.end_user_removal, \
     p.max_activations, p.validate_every_days, p.licences_per_serial, p.heartbeat_secs, \
     p.borrowing_allowed, p.max_borrow_days, p.created_at";

/// The alphabet of licence keys: no 0/O or 1/I/L to confuse when read aloud.
const KEY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A new random licence key, `XXXXX-XXXXX-XXXXX-XXXXX` (about 99 bits).
pub fn new_licence_key() -> String {
    let mut rng = OsRng;
    (0..4)
        .map(|_| {
            (0..5)
                .map(|_| char::from(KEY_ALPHABET[rng.gen_range(0..KEY_ALPHABET.len())]))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Normalises a licence key as typed: upper case, spaces dropped. Refuses what cannot be one.
pub fn parse_licence_key(raw: &str) -> Result<String, InputError> {
    let key: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    if key.is_empty() {
        return Err(InputError::new(
            "licence_key",
            "The licence key is required.",
        ));
    }
    if key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(InputError::new(
            "licence_key",
            "That is not a licence key: it looks like XXXXX-XXXXX-XXXXX-XXXXX.",
        ));
    }
    Ok(key)
}

/// What an order is made of, as submitted.
pub struct OrderInput {
    pub client_id: i64,
    pub product_id: i64,
    pub quantity: i64,
    pub reference: String,
    /// `None`: the product's defaults.
    pub features: Option<Vec<String>>,
    pub counters: Option<BTreeMap<String, i64>>,
    pub notes: String,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    client_id: i64,
    client_name: String,
    product_id: i64,
    product_code: String,
    product_name: String,
    reference: String,
    features: String,
    counters: String,
    notes: String,
    created_at: i64,
    quantity: i64,
    active: i64,
}

impl OrderRow {
    fn into_order(self) -> Result<Order> {
        Ok(Order {
            features: parse_json(&self.features, "features")?,
            counters: parse_json(&self.counters, "counters")?,
            id: self.id,
            client_id: self.client_id,
            client_name: self.client_name,
            product_id: self.product_id,
            product_code: self.product_code,
            product_name: self.product_name,
            reference: self.reference,
            notes: self.notes,
            created_at: self.created_at,
            quantity: self.quantity,
            active: self.active,
        })
    }
}

const ORDER_SELECT: &str = "SELECT o.id, o.client_id, c.name AS client_name, o.product_id, \
     p.code AS product_code, p.name AS product_name, o.reference, o.features, o.counters, o.notes, \
     o.created_at, \
     (SELECT COUNT(*) FROM licences l WHERE l.order_id = o.id) AS quantity, \
     (SELECT COUNT(*) FROM licences l JOIN activations a ON a.licence_id = l.id \
        WHERE l.order_id = o.id AND a.removed_at IS NULL) AS active \
     FROM orders o JOIN clients c ON c.id = o.client_id JOIN products p ON p.id = o.product_id";

#[derive(sqlx::FromRow)]
pub(crate) struct LicenceRow {
    id: i64,
    order_id: Option<i64>,
    serial_id: Option<i64>,
    licence_key: String,
    features: Option<String>,
    counters: Option<String>,
    order_features: String,
    order_counters: String,
    expires_on: Option<i64>,
    open_ended: i64,
    activation_count: i64,
    act_id: Option<i64>,
    act_hostname: Option<String>,
    act_fingerprint: Option<String>,
    act_mode: Option<String>,
    act_activated_at: Option<i64>,
    act_last_validated_at: Option<i64>,
    act_serial: Option<String>,
}

/// Licences of either model, each with its live activation. A web licence has no order: its
/// features and counters are its own from the start.
pub(crate) const LICENCE_SELECT: &str = "SELECT l.id, l.order_id, l.serial_id, l.licence_key, \
     l.features, l.counters, COALESCE(o.features, '[]') AS order_features, \
     COALESCE(o.counters, '{}') AS order_counters, l.expires_on, l.open_ended, \
     l.activation_count, a.id AS act_id, a.hostname AS act_hostname, a.fingerprint AS act_fingerprint, \
     a.mode AS act_mode, a.activated_at AS act_activated_at, \
     a.last_validated_at AS act_last_validated_at, s.serial AS act_serial \
     FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
     LEFT JOIN activations a ON a.licence_id = l.id AND a.removed_at IS NULL \
     LEFT JOIN serials s ON s.id = a.serial_id";

impl LicenceRow {
    pub(crate) fn into_licence(self) -> Result<Licence> {
        let activation = match (self.act_id, self.act_activated_at) {
            (Some(id), Some(activated_at)) => Some(Activation {
                id,
                licence_id: self.id,
                hostname: self.act_hostname.unwrap_or_default(),
                fingerprint: self.act_fingerprint.unwrap_or_default(),
                mode: self.act_mode.unwrap_or_default(),
                activated_at,
                last_validated_at: self.act_last_validated_at,
                removed_at: None,
                removed_by: None,
                serial: self.act_serial,
            }),
            _ => None,
        };
        Ok(Licence {
            features: parse_json(
                self.features.as_deref().unwrap_or(&self.order_features),
                "features",
            )?,
            counters: parse_json(
                self.counters.as_deref().unwrap_or(&self.order_counters),
                "counters",
            )?,
            id: self.id,
            order_id: self.order_id,
            serial_id: self.serial_id,
            key: self.licence_key,
            expires_on: self.expires_on.map(format_date),
            open_ended: self.open_ended != 0,
            activation_count: self.activation_count,
            activation,
        })
    }
}

/// An order as `actor` may see it: the vendor's notes are for administrators only.
fn for_viewer(actor: &CurrentUser, mut order: Order) -> Order {
    if actor.role != Role::Admin {
        order.notes.clear();
    }
    order
}

impl Licentia {
    pub async fn list_products(&self, actor: &CurrentUser) -> Result<Vec<Product>> {
        require_admin(actor)?;
        let rows: Vec<ProductRow> = sqlx::query_as(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p ORDER BY p.code"
        ))
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(ProductRow::into_product).collect()
    }

    pub(crate) async fn product_row(&self, product_id: i64) -> Result<ProductRow> {
        sqlx::query_as(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1"
        ))
        .bind(product_id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::NotFound("The product"))
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
        let s = &p.settings;
        let day = |d: &Option<String>| d.as_deref().and_then(parse_date);
        let duplicate = format!("A product with the code {} already exists.", p.code);
        let sql_values =
            "code = $1, name = $2, editor = $3, release_number = $4, release_date = $5, \
             features = $6, default_features = $7, default_counters = $8, limited = $9, \
             validity_days = $10, fixed_start = $11, fixed_end = $12, expire_day_of_month = $13, \
             end_user_removal = $14, max_activations = $15, validate_every_days = $16, \
             licences_per_serial = $17, heartbeat_secs = $18, borrowing_allowed = $19, \
             max_borrow_days = $20";
        let sql = match product_id {
            Some(_) => format!("UPDATE products SET {sql_values} WHERE id = $21 RETURNING id"),
            None => "INSERT INTO products (code, name, editor, release_number, release_date, \
                 features, default_features, default_counters, limited, validity_days, fixed_start, \
                 fixed_end, expire_day_of_month, end_user_removal, max_activations, \
                 validate_every_days, licences_per_serial, heartbeat_secs, borrowing_allowed, \
                 max_borrow_days, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                 $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) RETURNING id"
                .to_owned(),
        };
        // $21 is the product to update, or the creation time of a new one.
        let last = product_id.unwrap_or_else(|| self.clock.now());
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
            .bind(last)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| Error::unique_as_conflict(e, duplicate))?;
        let id = id.ok_or(Error::NotFound("The product"))?;
        tracing::info!(product_id = id, by = actor.id, "product saved");
        self.product_row(id).await?.into_product()
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
        let gone = sqlx::query("DELETE FROM products WHERE id = $1")
            .bind(product_id)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(Error::NotFound("The product"));
        }
        Ok(())
    }

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
            sqlx::query(
                "INSERT INTO licences (order_id, licence_key, created_at) VALUES ($1, $2, $3)",
            )
            .bind(order_id)
            .bind(new_licence_key())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
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
        sqlx::query("UPDATE orders SET features = $1, counters = $2, reference = $3, notes = $4 WHERE id = $5")
            .bind(json(&features))
            .bind(json(&counters))
            .bind(reference)
            .bind(&notes)
            .bind(order_id)
            .execute(self.db.pool())
            .await?;
        self.order(actor, order_id).await
    }

    /// Deletes an order and its licences; their activations stop validating.
    pub async fn delete_order(&self, actor: &CurrentUser, order_id: i64) -> Result<()> {
        require_admin(actor)?;
        let gone = sqlx::query("DELETE FROM orders WHERE id = $1")
            .bind(order_id)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(Error::NotFound("The order"));
        }
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

    /// Orders: all of them for an administrator (or one client's), a client user's own otherwise.
    pub async fn list_orders(
        &self,
        actor: &CurrentUser,
        client_id: Option<i64>,
    ) -> Result<Vec<Order>> {
        let client_id = match (crate::client_scope(actor)?, client_id) {
            (Some(own), Some(asked)) if asked != own => return Err(Error::NotAllowed),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        let rows: Vec<OrderRow> = match client_id {
            Some(id) => {
                self.require_client_access(actor, id)?;
                sqlx::query_as(&format!(
                    "{ORDER_SELECT} WHERE o.client_id = $1 ORDER BY o.id DESC"
                ))
                .bind(id)
                .fetch_all(self.db.pool())
                .await?
            }
            None => {
                sqlx::query_as(&format!("{ORDER_SELECT} ORDER BY o.id DESC"))
                    .fetch_all(self.db.pool())
                    .await?
            }
        };
        rows.into_iter()
            .map(|r| r.into_order().map(|o| for_viewer(actor, o)))
            .collect()
    }

    /// The licences of an order, with their live activations.
    pub async fn order_licences(&self, actor: &CurrentUser, order_id: i64) -> Result<Vec<Licence>> {
        self.order(actor, order_id).await?;
        let rows: Vec<LicenceRow> = sqlx::query_as(&format!(
            "{LICENCE_SELECT} WHERE l.order_id = $1 ORDER BY l.id"
        ))
        .bind(order_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(LicenceRow::into_licence).collect()
    }

    /// Live activations: every client's for an administrator, one's own for a client user.
    pub async fn list_activations(&self, actor: &CurrentUser) -> Result<Vec<ActivationRow>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            licence_id: i64,
            hostname: String,
            fingerprint: String,
            mode: String,
            activated_at: i64,
            last_validated_at: Option<i64>,
            licence_key: String,
            order_id: Option<i64>,
            serial_id: Option<i64>,
            serial: Option<String>,
            client_name: Option<String>,
            product_code: String,
            expires_on: Option<i64>,
        }
        let scope = crate::client_scope(actor)?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT a.id, a.licence_id, a.hostname, a.fingerprint, a.mode, a.activated_at, \
             a.last_validated_at, l.licence_key, l.order_id, l.serial_id, s.serial, \
             c.name AS client_name, p.code AS product_code, l.expires_on \
             FROM activations a JOIN licences l ON l.id = a.licence_id \
             LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN clients c ON c.id = o.client_id \
             LEFT JOIN serials s ON s.id = a.serial_id \
             JOIN products p ON p.id = COALESCE(o.product_id, \
                (SELECT ls.product_id FROM serials ls WHERE ls.id = l.serial_id)) \
             WHERE a.removed_at IS NULL AND ($1 IS NULL OR o.client_id = $1) \
             ORDER BY a.activated_at DESC",
        )
        .bind(scope)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ActivationRow {
                activation: Activation {
                    id: r.id,
                    licence_id: r.licence_id,
                    hostname: r.hostname,
                    fingerprint: r.fingerprint,
                    mode: r.mode,
                    activated_at: r.activated_at,
                    last_validated_at: r.last_validated_at,
                    removed_at: None,
                    removed_by: None,
                    serial: r.serial,
                },
                licence_key: r.licence_key,
                order_id: r.order_id,
                serial_id: r.serial_id,
                client_name: r.client_name.unwrap_or_default(),
                product_code: r.product_code,
                expires_on: r.expires_on.map(format_date),
            })
            .collect())
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
            .into_licence()
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
        .execute(self.db.pool())
        .await?;
        tracing::info!(licence_id, by = actor.id, "licence edited");
        self.licence(actor, licence_id).await
    }
}

/// A licence's terms as an administrator gives them, checked against its product: features and
/// counters as stored (JSON), and what becomes of the end date.
pub(crate) struct LicenceTerms {
    pub features: String,
    pub counters: String,
    pub end: TermsEnd,
}

pub(crate) enum TermsEnd {
    Keep,
    NoEnd,
    On(i64),
}

impl Licentia {
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

/// An order's reference (a purchase order number, say): at most 100 printable characters.
fn reference_text(raw: &str) -> Result<String> {
    Ok(input::text_line(
        "reference",
        raw,
        0..=100,
        "The reference must be at most 100 printable characters.",
    )?)
}

/// A new end date for a licence: a real date, today or later (a past one would stop the licence
/// at once, which removing it does openly).
pub(crate) fn parse_end_date(text: &str, today: i64) -> Result<i64> {
    let day = parse_date(text.trim()).ok_or_else(|| {
        InputError::new(
            "expires_on",
            "Enter the expiry as a date such as 2026-11-25.",
        )
    })?;
    if day < today {
        return Err(InputError::new(
            "expires_on",
            format!(
                "{} has passed: the licence would stop at once. Choose today ({}) or a later \
                 date, or remove the licence from its machine to end it now.",
                format_date(day),
                format_date(today)
            ),
        )
        .into());
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_keys_are_readable_and_parse_back() {
        let key = new_licence_key();
        assert_eq!(key.len(), 23);
        assert!(
            key.bytes().all(|b| b == b'-' || KEY_ALPHABET.contains(&b)),
            "{key}"
        );
        assert_eq!(parse_licence_key(&key.to_lowercase()).expect("parses"), key);
        assert_eq!(parse_licence_key(&format!(" {key} ")).expect("parses"), key);
        assert!(parse_licence_key("").is_err());
        assert!(parse_licence_key("'; DROP TABLE licences; --").is_err());
        assert_ne!(new_licence_key(), new_licence_key());
    }
}
