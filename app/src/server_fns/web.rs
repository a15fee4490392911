//! Server functions of the web licensing pages: serial batches, serials, revoke-and-reissue.
//! Each checks the caller, then calls the shared services.

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::catalog::{Product, Serial, SerialBatch, SerialDetail};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::ssr::admin;

/// A serial's page: the serial, its licences and history, and its product's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialPage {
    pub detail: SerialDetail,
    pub product: Product,
}

#[server(prefix = "/rpc", endpoint = "list_serial_batches")]
pub async fn list_serial_batches() -> Result<Vec<SerialBatch>, PortalError> {
    let (services, user) = admin().await?;
    Ok(services
        .serial_batches(&user, &licensing::page::Page::ALL)
        .await?
        .items)
}

/// Generates a batch. An empty `licences_per_serial` takes the product's setting; no features
/// ticked: the product's default features.
#[server(prefix = "/rpc", endpoint = "generate_serials")]
pub async fn generate_serials(
    product_id: i64,
    count: i64,
    #[server(default)] licences_per_serial: String,
    #[server(default)] features: Vec<String>,
    #[server(default)] note: String,
) -> Result<SerialBatch, PortalError> {
    let (services, user) = admin().await?;
    let per_serial = match licences_per_serial.trim() {
        "" => None,
        n => Some(n.parse::<i64>().map_err(|_| PortalError::Invalid {
            field: "licences_per_serial".into(),
            message: "Licences per serial must be a whole number from 1 to 100.".into(),
        })?),
    };
    Ok(services
        .generate_serials(
            &user,
            licensing::web::BatchInput {
                product_id,
                count,
                features: Some(features),
                licences_per_serial: per_serial,
                note,
            },
        )
        .await?)
}

/// A page of the serials, newest first, filtered by batch and by a search over serial numbers
/// and host names; with how many match in all.
#[server(prefix = "/rpc", endpoint = "serials_page")]
pub async fn serials_page(
    #[server(default)] search: String,
    #[server(default)] batch_id: Option<i64>,
    after: Option<String>,
    limit: Option<i64>,
) -> Result<protocol::catalog::Table<Serial>, PortalError> {
    let (services, user) = admin().await?;
    let q = licensing::web::SerialQuery {
        batch_id,
        product_id: None,
        search: Some(search),
    };
    let page = crate::ssr::table_page(after, limit, SERIALS_PER_PAGE)?;
    let total = services.count_serials(&user, &q).await?;
    let list = services.list_serials(&user, q, &page).await?;
    Ok(crate::ssr::table(list, total))
}

/// Rows per page of the portal's serials table.
pub const SERIALS_PER_PAGE: i64 = 100;

#[server(prefix = "/rpc", endpoint = "get_serial_page")]
pub async fn get_serial_page(id: i64) -> Result<SerialPage, PortalError> {
    let (services, user) = admin().await?;
    let detail = services.serial_detail(&user, id).await?;
    let product = services.product(&user, detail.serial.product_id).await?;
    Ok(SerialPage { detail, product })
}

/// Revokes the serial and issues its replacement, then shows the replacement.
#[server(prefix = "/rpc", endpoint = "reissue_serial")]
pub async fn reissue_serial(
    id: i64,
    #[server(default)] note: String,
) -> Result<Serial, PortalError> {
    let (services, user) = admin().await?;
    let new = services.revoke_and_reissue(&user, id, &note).await?;
    leptos_axum::redirect(&format!("/admin/serials/{}", new.id));
    Ok(new)
}
