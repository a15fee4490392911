//! Server functions of the Activation Center pages: products, orders, licences, activations and
//! the offline exchange. Each checks the caller, then calls the shared services.

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::catalog::{
    ActivationFilter, ActivationTable, Licence, LicenceFilter, LicencePage, LicenceTable, Order,
    OrderFilter, OrderTable, Product, ProductForm,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::ssr::{admin, caller};

/// An order with what its page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPage {
    pub order: Order,
    pub product: Product,
    pub licences: Vec<Licence>,
}

#[server(prefix = "/rpc", endpoint = "list_products")]
pub async fn list_products() -> Result<Vec<Product>, PortalError> {
    let (services, user) = admin().await?;
    Ok(services
        .list_products(&user, &licensing::page::Page::ALL)
        .await?
        .items)
}

#[server(prefix = "/rpc", endpoint = "get_product")]
pub async fn get_product(id: i64) -> Result<Product, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.product(&user, id).await?)
}

/// Creates (no `id`) or changes a product, then shows it.
#[server(prefix = "/rpc", endpoint = "save_product")]
pub async fn save_product(id: Option<i64>, form: ProductForm) -> Result<Product, PortalError> {
    let (services, user) = admin().await?;
    let input = form.into_input().map_err(licensing::Error::from)?;
    let product = services.save_product(&user, id, input).await?;
    if id.is_none() {
        leptos_axum::redirect(&format!("/admin/products/{}?done=created", product.id));
    }
    Ok(product)
}

#[server(prefix = "/rpc", endpoint = "delete_product")]
pub async fn delete_product(id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    services.delete_product(&user, id).await?;
    leptos_axum::redirect(&format!("/admin/products?deleted={id}"));
    Ok(())
}

/// Orders: all for an administrator, the client's own for a client user.
/// A page of the orders `filter` picks (all for an administrator, the client's own for a client
/// user), with how many match in all.
#[server(prefix = "/rpc", endpoint = "orders_page")]
pub async fn orders_page(
    // Every filter empty is sent as no field at all.
    #[server(default)] filter: OrderFilter,
    after: Option<String>,
    limit: Option<i64>,
) -> Result<OrderTable, PortalError> {
    let (services, user) = caller().await?;
    let page = crate::ssr::table_page(after, limit, ORDERS_PER_PAGE)?;
    let list = services.list_orders(&user, &filter, &page).await?;
    let total = services.count_orders(&user, &filter).await?;
    Ok(crate::ssr::table(list, total))
}

/// Rows per page of the portal's orders table.
pub const ORDERS_PER_PAGE: i64 = 50;

#[server(prefix = "/rpc", endpoint = "create_order")]
pub async fn create_order(
    client_id: i64,
    product_id: i64,
    quantity: i64,
    reference: String,
) -> Result<Order, PortalError> {
    let (services, user) = admin().await?;
    let order = services
        .create_order(
            &user,
            licensing::catalog::OrderInput {
                client_id,
                product_id,
                quantity,
                reference,
                features: None,
                counters: None,
                notes: String::new(),
            },
        )
        .await?;
    leptos_axum::redirect(&format!("/admin/orders/{}?done=created", order.id));
    Ok(order)
}

#[server(prefix = "/rpc", endpoint = "get_order_page")]
pub async fn get_order_page(id: i64) -> Result<OrderPage, PortalError> {
    let (services, user) = caller().await?;
    Ok(OrderPage {
        order: services.order(&user, id).await?,
        product: services.order_product(&user, id).await?,
        licences: services
            .order_licences(&user, id, &licensing::page::Page::ALL)
            .await?
            .items,
    })
}

#[server(prefix = "/rpc", endpoint = "update_order")]
pub async fn update_order(
    id: i64,
    #[server(default)] features: Vec<String>,
    #[server(default)] counter_name: Vec<String>,
    #[server(default)] counter_value: Vec<String>,
    reference: String,
    notes: String,
) -> Result<Order, PortalError> {
    let (services, user) = admin().await?;
    let counters = counters_sent(&counter_name, &counter_value)?;
    Ok(services
        .update_order(&user, id, features, counters, &reference, &notes)
        .await?)
}

#[server(prefix = "/rpc", endpoint = "delete_order")]
pub async fn delete_order(id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    services.delete_order(&user, id).await?;
    leptos_axum::redirect(&format!("/admin/orders?deleted={id}"));
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "edit_licence")]
pub async fn edit_licence(
    licence_id: i64,
    #[server(default)] features: Vec<String>,
    #[server(default)] counter_name: Vec<String>,
    #[server(default)] counter_value: Vec<String>,
    expires_on: String,
    #[server(default)] no_end: Option<String>,
) -> Result<Licence, PortalError> {
    let (services, user) = admin().await?;
    let counters = counters_sent(&counter_name, &counter_value)?;
    let expiry = protocol::catalog::ExpiryEdit::from_form(&expires_on, no_end.is_some());
    Ok(services
        .edit_licence(&user, licence_id, features, counters, expiry)
        .await?)
}

/// One licence's page: administrators any; a client user their own organisation's.
#[server(prefix = "/rpc", endpoint = "get_licence_page")]
pub async fn get_licence_page(id: i64) -> Result<LicencePage, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.licence_page(&user, id).await?)
}

/// Applies one action to the ticked licences (administrators): every licence is checked
/// before any is changed.
#[server(prefix = "/rpc", endpoint = "bulk_licences")]
pub async fn bulk_licences(
    #[server(default)] ids: Vec<i64>,
    action: String,
    #[server(default)] feature: Option<String>,
) -> Result<usize, PortalError> {
    let (services, user) = admin().await?;
    let action = protocol::catalog::BulkLicenceAction::from_form(&action, feature.as_deref())
        .map_err(licensing::Error::from)?;
    Ok(services.bulk_licences(&user, &ids, &action).await?)
}

#[server(prefix = "/rpc", endpoint = "extend_licence")]
pub async fn extend_licence(licence_id: i64, days: i64) -> Result<Licence, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.extend_licence(&user, licence_id, days).await?)
}

#[server(prefix = "/rpc", endpoint = "make_licence_permanent")]
pub async fn make_licence_permanent(licence_id: i64) -> Result<Licence, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.make_licence_permanent(&user, licence_id).await?)
}

#[server(prefix = "/rpc", endpoint = "set_licence_notes")]
pub async fn set_licence_notes(licence_id: i64, notes: String) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    Ok(services
        .set_licence_notes(&user, licence_id, &notes)
        .await?)
}

/// A page of the activations `filter` picks (all for an administrator, the client's own for a
/// client user), with how many match in all.
#[server(prefix = "/rpc", endpoint = "activations_page")]
pub async fn activations_page(
    // Every filter empty is sent as no field at all.
    #[server(default)] filter: ActivationFilter,
    after: Option<String>,
    limit: Option<i64>,
) -> Result<ActivationTable, PortalError> {
    let (services, user) = caller().await?;
    let page = crate::ssr::table_page(after, limit, ACTIVATIONS_PER_PAGE)?;
    let list = services
        .list_activations(&user, &filter, true, &page)
        .await?;
    let total = services.count_activations(&user, &filter, true).await?;
    Ok(crate::ssr::table(list, total))
}

/// Rows per page of the portal's activations table.
pub const ACTIVATIONS_PER_PAGE: i64 = 50;

/// A page of the licences `filter` picks across orders and serials (all for an administrator,
/// the client's own for a client user), with how many match in all.
#[server(prefix = "/rpc", endpoint = "licences_page")]
pub async fn licences_page(
    // Every filter empty is sent as no field at all.
    #[server(default)] filter: LicenceFilter,
    after: Option<String>,
    limit: Option<i64>,
) -> Result<LicenceTable, PortalError> {
    let (services, user) = caller().await?;
    let page = crate::ssr::table_page(after, limit, LICENCES_PER_PAGE)?;
    let list = services.list_licences(&user, &filter, true, &page).await?;
    let total = services.count_licences(&user, &filter, true).await?;
    Ok(crate::ssr::table(list, total))
}

/// Rows per page of the portal's licences table.
pub const LICENCES_PER_PAGE: i64 = 50;

/// Removes a licence from its machine: administrators always; client users where the product
/// allows. The licence frees once the machine's code can no longer pass offline, or at once when
/// an administrator asks (`free_now`).
#[server(prefix = "/rpc", endpoint = "remove_activation")]
pub async fn remove_activation(
    licence_id: i64,
    #[server(default)] free_now: bool,
) -> Result<protocol::catalog::Removal, PortalError> {
    let (services, user) = caller().await?;
    let licence = services.licence(&user, licence_id).await?;
    Ok(services
        .remove_activation(
            &licence.key,
            None,
            licensing::activation::Remover::Portal {
                actor: &user,
                force: true,
                free_now,
            },
        )
        .await?)
}

/// Frees at once a licence removed without its machine (administrators).
#[server(prefix = "/rpc", endpoint = "free_licence_now")]
pub async fn free_licence_now(licence_id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    Ok(services.free_licence_now(&user, licence_id).await?)
}

/// Frees a licence on its machine's removal code (the offline transfer); answers the machine's
/// name.
#[server(prefix = "/rpc", endpoint = "accept_removal_code")]
pub async fn accept_removal_code(removal_code: String) -> Result<String, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.accept_removal_code(&user, &removal_code).await?)
}

/// What an offline request code asks for (product, licence, machine) and what answering it would
/// do, before anyone answers.
#[server(prefix = "/rpc", endpoint = "describe_request")]
pub async fn describe_request(
    request_code: String,
) -> Result<protocol::activation::RequestSummary, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.describe_request(&user, &request_code).await?)
}

/// Answers an offline request code with the response code for the machine that made it. With
/// `override_terms` ticked (administrators only) the licence first gets the given features,
/// counters and expiry.
#[server(prefix = "/rpc", endpoint = "answer_request")]
pub async fn answer_request(
    request_code: String,
    #[server(default)] override_terms: Option<String>,
    #[server(default)] features: String,
    #[server(default)] counter_name: Vec<String>,
    #[server(default)] counter_value: Vec<String>,
    #[server(default)] expires_on: String,
    #[server(default)] no_end: Option<String>,
) -> Result<String, PortalError> {
    let (services, user) = caller().await?;
    let overrides = match override_terms {
        None => None,
        Some(_) => Some(licensing::activation::Terms {
            features: protocol::catalog::parse_feature_codes(&features)
                .map_err(licensing::Error::from)?,
            counters: counters_sent(&counter_name, &counter_value)?,
            expiry: protocol::catalog::ExpiryEdit::from_form(&expires_on, no_end.is_some()),
        }),
    };
    Ok(services
        .answer_request_with(&user, &request_code, overrides)
        .await?
        .code)
}

/// The counters a form sent, as the portal's rows (`counter_name[]`, `counter_value[]`).
#[cfg(feature = "ssr")]
fn counters_sent(
    names: &[String],
    values: &[String],
) -> Result<std::collections::BTreeMap<String, i64>, PortalError> {
    Ok(protocol::catalog::counter_rows(names, values).map_err(licensing::Error::from)?)
}
