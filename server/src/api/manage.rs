//! The management API: the vendor's automation reads and changes the Activation Center with a
//! bearer API token. A token acts as its creator: an administrator's reaches everything, a client
//! user's only its own client's data; a read-only token cannot change anything.

use super::{
    ApiError, ApiJson, ApiPage, ApiPath, ApiQuery, Listing, Problems, Reader, Services, Sight,
    Writer,
};
use crate::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use licensing::accounts::ClientInput;
use licensing::activation::Remover;
use licensing::catalog::OrderInput;
use licensing::web::{BatchInput, SerialQuery};
use protocol::account::{ClientBody, ClientDetail, ClientFilter, ClientSummary, CurrentUser};
use protocol::catalog::{
    ActivationFilter, ActivationRow, Licence, LicenceFilter, LicenceListRow, Order, OrderFilter,
    Product, ProductInput, Serial, SerialBatch, SerialDetail,
};
use protocol::catalog::{ExpiryEdit, Removal};
use protocol::page::PageQuery;
use protocol::problem::ProblemKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, replace_product, delete_product))
        .routes(routes!(list_clients, create_client))
        .routes(routes!(get_client, replace_client, delete_client))
        .routes(routes!(clients_csv))
        .routes(routes!(list_orders, create_order))
        .routes(routes!(orders_csv))
        .routes(routes!(get_order, delete_order))
        .routes(routes!(order_licences))
        .routes(routes!(order_licences_csv))
        .routes(routes!(list_licences))
        .routes(routes!(licences_csv))
        .routes(routes!(get_licence, edit_licence))
        .routes(routes!(remove_licence_activation))
        .routes(routes!(list_batches, generate_serials))
        .routes(routes!(batch_csv))
        .routes(routes!(list_serials))
        .routes(routes!(serials_csv))
        .routes(routes!(get_serial))
        .routes(routes!(reissue_serial))
}

/// Who the token acts as.
#[utoipa::path(get, path = "/api/v1/me", tag = "catalogue", security(("token" = [])),
    responses((status = 200, body = protocol::account::CurrentUser), Problems))]
async fn whoami(Reader(user): Reader) -> Json<CurrentUser> {
    Json(user)
}

// ---- products ----

/// Products by code (administrators).
#[utoipa::path(get, path = "/api/v1/products", tag = "catalogue", security(("token" = [])),
    params(PageQuery),
    responses((status = 200, body = Vec<Product>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn list_products(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    page: ApiPage,
) -> Result<Listing<Product>, ApiError> {
    Ok(page.answer(s.list_products(&user, &page.page).await?))
}

/// Creates a product.
#[utoipa::path(post, path = "/api/v1/products", tag = "catalogue", security(("token" = [])),
    request_body = ProductInput,
    responses((status = 201, body = Product), Problems))]
async fn create_product(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiJson(input): ApiJson<ProductInput>,
) -> Result<(StatusCode, Json<Product>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.save_product(&user, None, input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Product id")),
    responses((status = 200, body = Product), Problems))]
async fn get_product(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Product>, ApiError> {
    Ok(Json(s.product(&user, id).await?))
}

/// Replaces a product's definition and settings.
#[utoipa::path(put, path = "/api/v1/products/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Product id")),
    request_body = ProductInput,
    responses((status = 200, body = Product), Problems))]
async fn replace_product(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<ProductInput>,
) -> Result<Json<Product>, ApiError> {
    Ok(Json(s.save_product(&user, Some(id), input).await?))
}

/// Deletes a product that no order or serial uses.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Product id")),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_product(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    s.delete_product(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- clients ----

/// Clients by name unless told otherwise (administrators).
#[utoipa::path(get, path = "/api/v1/clients", tag = "catalogue", security(("token" = [])),
    params(PageQuery, ClientFilter),
    responses((status = 200, body = Vec<ClientSummary>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn list_clients(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    page: ApiPage,
    ApiQuery(f): ApiQuery<ClientFilter>,
) -> Result<Listing<ClientSummary>, ApiError> {
    Ok(page.answer(s.list_clients(&user, &f, &page.page).await?))
}

/// The clients the list's filters pick as CSV, in its order (administrators): id, name,
/// contact, users, orders, licences on machines, created (UTC), notes.
#[utoipa::path(get, path = "/api/v1/clients.csv", tag = "catalogue", security(("token" = [])),
    params(ClientFilter),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
pub(super) async fn clients_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiQuery(f): ApiQuery<ClientFilter>,
) -> Result<Response, ApiError> {
    csv_file(s.clients_csv(&user, &f).await?, "clients.csv")
}

#[utoipa::path(post, path = "/api/v1/clients", tag = "catalogue", security(("token" = [])),
    request_body = ClientBody,
    responses((status = 201, body = ClientSummary), Problems))]
async fn create_client(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiJson(body): ApiJson<ClientBody>,
) -> Result<(StatusCode, Json<ClientSummary>), ApiError> {
    let input = ClientInput::parse(&body).map_err(licensing::Error::from)?;
    Ok((
        StatusCode::CREATED,
        Json(s.create_client(&user, input).await?),
    ))
}

/// A client with its users: any for an administrator's token, its own for a client's.
#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Client id")),
    responses((status = 200, body = ClientDetail), Problems))]
async fn get_client(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ClientDetail>, ApiError> {
    Ok(Json(s.client_detail(&user, id).await?))
}

#[utoipa::path(put, path = "/api/v1/clients/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Client id")),
    request_body = ClientBody,
    responses((status = 200, body = ClientSummary), Problems))]
async fn replace_client(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ClientBody>,
) -> Result<Json<ClientSummary>, ApiError> {
    let input = ClientInput::parse(&body).map_err(licensing::Error::from)?;
    Ok(Json(s.update_client(&user, id, input).await?))
}

/// Deletes a client with its users, orders and licences.
#[utoipa::path(delete, path = "/api/v1/clients/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Client id")),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_client(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    s.delete_client(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- orders and licences ----

/// Orders, newest first unless the filters say otherwise.
#[utoipa::path(get, path = "/api/v1/orders", tag = "catalogue", security(("token" = [])),
    params(OrderFilter, PageQuery),
    responses((status = 200, body = Vec<Order>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn list_orders(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiQuery(f): ApiQuery<OrderFilter>,
    page: ApiPage,
) -> Result<Listing<Order>, ApiError> {
    Ok(page.answer(s.list_orders(&user, &f, &page.page).await?))
}

/// The orders as CSV: the same filters as the list, in its order.
#[utoipa::path(get, path = "/api/v1/orders.csv", tag = "catalogue", security(("token" = [])),
    params(OrderFilter),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
pub(super) async fn orders_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiQuery(f): ApiQuery<OrderFilter>,
) -> Result<Response, ApiError> {
    csv_file(s.orders_csv(&user, &f).await?, "orders.csv")
}

#[derive(Deserialize, ToSchema)]
pub struct OrderBody {
    pub client_id: i64,
    pub product_id: i64,
    /// Licences to create, 1 to 10000.
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
    #[serde(default)]
    pub reference: String,
    /// Features the licences enable; omitted: the product's defaults.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Custom counters; omitted: the product's defaults.
    #[serde(default)]
    pub counters: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    pub notes: String,
}

/// Creates an order and its licences.
#[utoipa::path(post, path = "/api/v1/orders", tag = "catalogue", security(("token" = [])),
    request_body = OrderBody,
    responses((status = 201, body = Order), Problems))]
async fn create_order(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiJson(b): ApiJson<OrderBody>,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    let order = s
        .create_order(
            &user,
            OrderInput {
                client_id: b.client_id,
                product_id: b.product_id,
                quantity: b.quantity,
                reference: b.reference,
                features: b.features,
                counters: b.counters,
                notes: b.notes,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(order)))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Order id")),
    responses((status = 200, body = Order), Problems))]
async fn get_order(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(s.order(&user, id).await?))
}

/// Deletes an order and its licences; their activations stop validating.
#[utoipa::path(delete, path = "/api/v1/orders/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Order id")),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_order(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    s.delete_order(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The licences of an order, each with its live activation, in the order they were made.
#[utoipa::path(get, path = "/api/v1/orders/{id}/licences", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Order id"), PageQuery),
    responses((status = 200, body = Vec<Licence>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn order_licences(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    ApiPath(id): ApiPath<i64>,
    page: ApiPage,
) -> Result<Listing<Licence>, ApiError> {
    let licences = s.order_licences(&user, id, &page.page).await?;
    sight.show_page(&page, licences).await
}

/// An order's licences as CSV, in the order they were made, each with the machine holding it
/// now. A read-only token's export has the keys masked.
#[utoipa::path(get, path = "/api/v1/orders/{id}/licences.csv", tag = "catalogue",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Order id")),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
pub(super) async fn order_licences_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let csv = s.order_licences_csv(&user, id, !sight.is_masked()).await?;
    sight.record().await?;
    csv_file(csv, &format!("order-{id}-licences.csv"))
}

/// Licences across orders and serials, newest first unless the filters say otherwise: every one
/// for an administrator's token, the client's own otherwise (web licences are
/// administrators'). A read-only token sees keys and serials masked, and its search does not
/// look into them.
#[utoipa::path(get, path = "/api/v1/licences", tag = "catalogue", security(("token" = [])),
    params(PageQuery, LicenceFilter),
    responses((status = 200, body = Vec<LicenceListRow>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"` (the filters kept)"))), Problems))]
async fn list_licences(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    page: ApiPage,
    ApiQuery(filter): ApiQuery<LicenceFilter>,
) -> Result<Listing<LicenceListRow>, ApiError> {
    let licences = s
        .list_licences(&user, &filter, !sight.is_masked(), &page.page)
        .await?;
    sight.show_page(&page, licences).await
}

/// The licences the same filters pick, every page, as CSV in the list's order (dates ISO
/// 8601, times in UTC). A read-only token's export has keys and serials masked.
#[utoipa::path(get, path = "/api/v1/licences.csv", tag = "catalogue", security(("token" = [])),
    params(LicenceFilter),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
async fn licences_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    ApiQuery(filter): ApiQuery<LicenceFilter>,
) -> Result<Response, ApiError> {
    let csv = s.licences_csv(&user, &filter, !sight.is_masked()).await?;
    sight.record().await?;
    csv_file(csv, "licences.csv")
}

#[utoipa::path(get, path = "/api/v1/licences/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Licence id")),
    responses((status = 200, body = Licence), Problems))]
async fn get_licence(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Licence>, ApiError> {
    sight.show(s.licence(&user, id).await?).await
}

#[derive(Deserialize, ToSchema)]
pub struct LicenceTerms {
    pub features: Vec<String>,
    pub counters: BTreeMap<String, i64>,
    /// Last valid day, `YYYY-MM-DD`, today or later; omitted: unchanged.
    #[serde(default)]
    pub expires_on: Option<String>,
    /// `true` takes the end date away: the licence never expires, even if its product is
    /// limited. Not together with `expires_on`.
    #[serde(default)]
    pub no_end: bool,
}

/// Changes what a licence grants (administrators); the application picks it up at its next
/// validation.
#[utoipa::path(patch, path = "/api/v1/licences/{id}", tag = "catalogue", security(("token" = [])),
    params(("id" = i64, Path, description = "Licence id")),
    request_body = LicenceTerms,
    responses((status = 200, body = Licence), Problems))]
async fn edit_licence(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(t): ApiJson<LicenceTerms>,
) -> Result<Json<Licence>, ApiError> {
    let expiry = match (t.no_end, t.expires_on) {
        (true, Some(_)) => {
            return Err(licensing::Error::from(protocol::input::InputError::new(
                "no_end",
                "Send an end date or no_end, not both.",
            ))
            .into())
        }
        (true, None) => ExpiryEdit::NoEnd,
        (false, date) => ExpiryEdit::from_form(date.as_deref().unwrap_or(""), false),
    };
    Ok(Json(
        s.edit_licence(&user, id, t.features, t.counters, expiry)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForceParam {
    /// Administrators: remove even where end users may not (a limited licence).
    #[serde(default)]
    pub force: bool,
    /// Administrators: free the licence at once, although the removed machine's code may keep
    /// working offline until `frees_at` would have been.
    #[serde(default)]
    pub free_now: bool,
}

/// Removes a licence from the machine it is bound to, without that machine: the machine learns
/// at its next validation, and the licence frees once the machine's code can no longer pass
/// offline (`frees_at`), unless an administrator frees it now. (The application removing it on
/// its own machine frees it at once.)
#[utoipa::path(delete, path = "/api/v1/licences/{id}/activation", tag = "activations",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Licence id"), ForceParam),
    responses((status = 200, description = "Removed", body = Removal), Problems))]
async fn remove_licence_activation(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(f): ApiQuery<ForceParam>,
) -> Result<Json<Removal>, ApiError> {
    let licence = s.licence(&user, id).await?;
    let removal = s
        .remove_activation(
            &licence.key,
            None,
            Remover::Portal {
                actor: &user,
                force: f.force,
                free_now: f.free_now,
            },
        )
        .await?;
    Ok(Json(removal))
}

/// Activations, live ones newest first unless the filters say otherwise: every one for an
/// administrator's token, the client's own otherwise. A read-only token's search does not look
/// into licence keys and serials (it sees them masked).
#[utoipa::path(get, path = "/api/v1/activations", tag = "activations", security(("token" = [])),
    params(PageQuery, ActivationFilter),
    responses((status = 200, body = Vec<ActivationRow>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"` (the filters kept)"))), Problems))]
pub(super) async fn list_activations(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    page: ApiPage,
    ApiQuery(filter): ApiQuery<ActivationFilter>,
) -> Result<Listing<ActivationRow>, ApiError> {
    let activations = s
        .list_activations(&user, &filter, !sight.is_masked(), &page.page)
        .await?;
    sight.show_page(&page, activations).await
}

/// The activations the same filters pick, every page, as CSV in the list's order (times in
/// UTC, ISO 8601). A read-only token's export leaves licence keys and serials out.
#[utoipa::path(get, path = "/api/v1/activations.csv", tag = "activations", security(("token" = [])),
    params(ActivationFilter),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
pub(super) async fn activations_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    ApiQuery(filter): ApiQuery<ActivationFilter>,
) -> Result<Response, ApiError> {
    let secrets = !sight.is_masked();
    let csv = s.activations_csv(&user, &filter, secrets).await?;
    sight.record().await?;
    csv_file(csv, "activations.csv")
}

// ---- web licences ----

/// Batches of serials, newest first.
#[utoipa::path(get, path = "/api/v1/serial-batches", tag = "web licences",
    security(("token" = [])),
    params(PageQuery),
    responses((status = 200, body = Vec<SerialBatch>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn list_batches(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    page: ApiPage,
) -> Result<Listing<SerialBatch>, ApiError> {
    Ok(page.answer(s.serial_batches(&user, &page.page).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct BatchBody {
    pub product_id: i64,
    /// Serials to generate, 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub count: i64,
    /// Features stored in each serial; omitted or empty: the product's default features.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Licences each serial grants, 1 to 100; omitted: the product's setting.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub licences_per_serial: Option<i64>,
    #[serde(default)]
    pub note: String,
}

/// Generates a batch of serial numbers, each with its licences.
#[utoipa::path(post, path = "/api/v1/serial-batches", tag = "web licences",
    security(("token" = [])),
    request_body = BatchBody,
    responses((status = 201, body = SerialBatch), Problems))]
async fn generate_serials(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiJson(b): ApiJson<BatchBody>,
) -> Result<(StatusCode, Json<SerialBatch>), ApiError> {
    let batch = s
        .generate_serials(
            &user,
            BatchInput {
                product_id: b.product_id,
                count: b.count,
                features: b.features,
                licences_per_serial: b.licences_per_serial,
                note: b.note,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(batch)))
}

/// The serials of a batch as CSV (serial, product, features, licences, status, replaced_by):
/// whole serial numbers, so a read-write token's.
#[utoipa::path(get, path = "/api/v1/serial-batches/{id}/serials.csv", tag = "web licences",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Batch id")),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
async fn batch_csv(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    csv_response(s.serials_csv(&user, SerialQuery::of_batch(id)).await?, id)
}

/// A CSV download named after its batch.
pub fn csv_response(csv: String, batch_id: i64) -> Result<Response, ApiError> {
    csv_file(csv, &format!("serials-batch-{batch_id}.csv"))
}

/// A CSV download saved as `filename`.
pub fn csv_file(csv: String, filename: &str) -> Result<Response, ApiError> {
    let mut res = csv.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let disposition = format!("attachment; filename=\"{filename}\"");
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|_| ApiError::internal())?,
    );
    Ok(res)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SerialFilter {
    pub batch_id: Option<i64>,
    pub product_id: Option<i64>,
    /// Part of a serial number or of a host name that holds one of its licences.
    pub search: Option<String>,
}

/// Serials, newest first.
#[utoipa::path(get, path = "/api/v1/serials", tag = "web licences", security(("token" = [])),
    params(SerialFilter, PageQuery),
    responses((status = 200, body = Vec<Serial>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn list_serials(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    ApiQuery(f): ApiQuery<SerialFilter>,
    page: ApiPage,
) -> Result<Listing<Serial>, ApiError> {
    if sight.is_masked() && f.search.as_deref().is_some_and(|q| !q.trim().is_empty()) {
        // Matching parts of serials would let a reader spell one out a character at a time.
        return Err(ApiError::new(
            ProblemKind::ReadOnlyToken,
            "Searching serial numbers needs a read-write token: a read-only token sees them masked.",
        ));
    }
    let serials = s.list_serials(&user, f.into(), &page.page).await?;
    sight.show_page(&page, serials).await
}

/// The serials the same filters pick as CSV, in the order they were made: whole serial
/// numbers, so a read-write token's, and each export is a `serials.export` audit entry.
#[utoipa::path(get, path = "/api/v1/serials.csv", tag = "web licences", security(("token" = [])),
    params(SerialFilter),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
pub(super) async fn serials_csv(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiQuery(f): ApiQuery<SerialFilter>,
) -> Result<Response, ApiError> {
    csv_file(s.serials_csv(&user, f.into()).await?, "serials.csv")
}

impl From<SerialFilter> for SerialQuery {
    fn from(f: SerialFilter) -> Self {
        SerialQuery {
            batch_id: f.batch_id,
            product_id: f.product_id,
            search: f.search,
        }
    }
}

/// A serial with its licences and their activation history.
#[utoipa::path(get, path = "/api/v1/serials/{id}", tag = "web licences", security(("token" = [])),
    params(("id" = i64, Path, description = "Serial id")),
    responses((status = 200, body = SerialDetail), Problems))]
async fn get_serial(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SerialDetail>, ApiError> {
    sight.show(s.serial_detail(&user, id).await?).await
}

#[derive(Deserialize, ToSchema)]
pub struct ReissueBody {
    /// Why (kept with the revoked serial).
    #[serde(default)]
    pub note: String,
}

/// Revokes a compromised serial and issues its replacement, which keeps the licences, counters
/// and history. Machines activated with the old serial are told at their next validation.
#[utoipa::path(post, path = "/api/v1/serials/{id}/reissue", tag = "web licences",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Serial id")),
    request_body = ReissueBody,
    responses((status = 201, description = "The replacement", body = Serial), Problems))]
async fn reissue_serial(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<ReissueBody>,
) -> Result<(StatusCode, Json<Serial>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.revoke_and_reissue(&user, id, &b.note).await?),
    ))
}
