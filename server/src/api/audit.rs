//! The audit log over the management API: administrators' tokens read every entry, a client
//! user's token its own client's.

use super::manage::csv_file;
use super::{linked, next_link, ApiError, ApiQuery, Problems, Reader, Services};
use axum::response::Response;
use axum::Json;
use protocol::audit::{AuditPage, AuditQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<crate::AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(audit_csv))
}

/// A page of the audit log, newest first. Pass `next_before` back as `before` for the next page
/// (or follow the `Link`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("token" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditPage,
        headers(("Link" = String, description = "The next page, when there is one: `<…before=…>; rel=\"next\"`"))),
        Problems))]
async fn list_audit(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    uri: axum::extract::OriginalUri,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let page = s.audit_log(&user, &q).await?;
    let link = page.next_before.map(|before| {
        let here = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        next_link(here, "before", &before.to_string())
    });
    Ok(linked(Json(page), link))
}

/// The entries the filter selects as CSV (id, time_utc, actor, channel, address, action,
/// subject, client_id, detail, changes), newest first (up to 100,000; `limit` does not apply).
#[utoipa::path(get, path = "/api/v1/audit.csv", tag = "audit", security(("token" = [])),
    params(AuditQuery),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
async fn audit_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    csv_file(s.audit_csv(&user, &q).await?, "audit-log.csv")
}
