//! Site licence servers: what a customer's site server calls to link, refresh and unlink
//! (authenticated by its licence key and fingerprint, like an application), and the vendor's
//! view of them over the management API.

use super::{ApiError, ApiJson, ApiPage, ApiPath, Listing, Problems, Reader, Services, Writer};
use crate::AppState;
use axum::http::StatusCode;
use axum::Json;
use licensing::sites::SiteChannel;
use protocol::page::PageQuery;
use protocol::site::{EntitlementAnswer, LinkRequest, SiteView, UnlinkCode};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(link))
        .routes(routes!(unlink))
        .routes(routes!(list_sites))
        .routes(routes!(revoke_site))
        .routes(routes!(free_site))
}

/// Links a site server with a licence of a product sold for site servers, or refreshes its
/// link: answers with a new entitlement (the pool keys the licence grants, signed, bound to the
/// server's fingerprint, numbered after `held`, granting until `refresh_by`). 409
/// (`/problems/activated-elsewhere`) while another server holds the licence, 410 once the
/// licence expired or the vendor revoked the site, 429 past the anti-churn limit.
#[utoipa::path(post, path = "/api/v1/sites/link", tag = "sites",
    request_body = LinkRequest,
    responses((status = 200, description = "The entitlement", body = EntitlementAnswer), Problems))]
async fn link(
    axum::extract::State(s): Services,
    ApiJson(req): ApiJson<LinkRequest>,
) -> Result<Json<EntitlementAnswer>, ApiError> {
    Ok(Json(s.link_site(&req, SiteChannel::Online).await?))
}

/// A site server gives its entitlement up (moving to new hardware): its licence is free at
/// once to link another server. Only the latest entitlement's number frees it.
#[utoipa::path(post, path = "/api/v1/sites/unlink", tag = "sites",
    request_body = UnlinkCode,
    responses((status = 204, description = "Unlinked; the licence is free"), Problems))]
async fn unlink(
    axum::extract::State(s): Services,
    ApiJson(code): ApiJson<UnlinkCode>,
) -> Result<StatusCode, ApiError> {
    s.unlink_site(&code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The site servers, newest first (a client user's token: their organisation's), with the
/// last entitlement each was sent and how its link ended. Licence keys are masked (the
/// licence's own page has it whole).
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites", security(("token" = [])),
    params(PageQuery),
    responses((status = 200, body = Vec<SiteView>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn list_sites(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    page: ApiPage,
) -> Result<Listing<SiteView>, ApiError> {
    page.slice(s.list_sites(&user).await?, |v| v.id)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct RevokeSite {
    /// Why (told to the site when it asks again).
    #[serde(default)]
    reason: String,
}

/// Revokes a site (administrators): its next refresh is refused, so it grants no new seats
/// from then (or, never refreshing, from its entitlement's refresh-by time).
#[utoipa::path(post, path = "/api/v1/sites/{id}/revoke", tag = "sites", security(("token" = [])),
    params(("id" = i64, Path, description = "Site id")),
    request_body = RevokeSite,
    responses((status = 204, description = "Revoked"), Problems))]
async fn revoke_site(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RevokeSite>,
) -> Result<StatusCode, ApiError> {
    s.revoke_site(&user, id, &body.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct FreeSite {
    /// Free the licence now, instead of when the site's entitlement stops granting.
    #[serde(default)]
    at_once: bool,
}

/// Frees a site's licence without the site's word (administrators): the licence may link
/// another server once the entitlement the site holds stops granting, or at once.
#[utoipa::path(post, path = "/api/v1/sites/{id}/free", tag = "sites", security(("token" = [])),
    params(("id" = i64, Path, description = "Site id")),
    request_body = FreeSite,
    responses((status = 204, description = "Freed"), Problems))]
async fn free_site(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<FreeSite>,
) -> Result<StatusCode, ApiError> {
    s.free_site(&user, id, body.at_once).await?;
    Ok(StatusCode::NO_CONTENT)
}
