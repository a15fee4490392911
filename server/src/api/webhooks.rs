//! Webhooks over the management API (administrators' tokens): register a URL for events (the
//! answer holds the signing secret, this once), list, remove, and read each one's deliveries.

use super::{
    linked, next_link, ApiError, ApiJson, ApiPage, ApiPath, ApiQuery, Listing, Problems, Reader,
    Services, Writer,
};
use crate::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use protocol::page::PageQuery;
use protocol::webhooks::{NewWebhook, Webhook, WebhookDelivery, WebhookInput};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(remove_webhook))
        .routes(routes!(deliveries))
}

/// The webhooks, oldest first, with how many deliveries wait and how many were given up.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("token" = [])),
    params(PageQuery),
    responses((status = 200, body = Vec<Webhook>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn list_webhooks(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    page: ApiPage,
) -> Result<Listing<Webhook>, ApiError> {
    page.slice(s.list_webhooks(&user).await?, |w| w.id)
}

/// Registers a webhook: `url` (https:// or http://) and `events` (codes such as
/// `activation.created`). Each event is POSTed as JSON `{"id", "type", "created_at", "data"}`
/// with `Licentia-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the
/// secret>`, `Licentia-Event` and `Licentia-Delivery`; anything but a 2xx within 10 s is retried
/// after 30 s, 2 min, 10 min, 1 h, 3 h, 6 h and 12 h, then given up. The secret is in this
/// answer only.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", security(("token" = [])),
    request_body = WebhookInput,
    responses((status = 201, body = NewWebhook), Problems))]
async fn create_webhook(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<NewWebhook>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_webhook(&user, &input).await?),
    ))
}

/// Removes a webhook with its deliveries (none is sent any more).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("token" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 204, description = "Removed"), Problems))]
async fn remove_webhook(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    s.remove_webhook(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which page of deliveries.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryPage {
    /// Deliveries older than this id (the previous page's `Link`).
    before: Option<i64>,
    /// How many (1–500, default 100).
    limit: Option<i64>,
}

/// A webhook's deliveries, newest first, with each one's attempts and last answer; the next
/// (older) page is in the `Link` header.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Webhook id"), DeliveryPage),
    responses((status = 200, body = Vec<WebhookDelivery>,
        headers(("Link" = String, description = "The next page, when there is one: `<…before=…>; rel=\"next\"`"))),
        Problems))]
async fn deliveries(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    uri: axum::extract::OriginalUri,
    ApiQuery(q): ApiQuery<DeliveryPage>,
) -> Result<Response, ApiError> {
    let (list, next) = s.webhook_deliveries(&user, id, q.before, q.limit).await?;
    let link = next.map(|before| {
        let here = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        next_link(here, "before", &before.to_string())
    });
    Ok(linked(Json(list), link))
}
