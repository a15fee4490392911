//! Usage over time over the Web API: a pool's session history (pages, totals, CSV) and the
//! monthly casual usage reports (JSON and CSV). Administrators' tokens read every pool and
//! report; a client user's token their own organisation's.

use super::manage::csv_file;
use super::{
    linked, next_link, ApiError, ApiPage, ApiPath, ApiQuery, Listing, Problems, Reader, Services,
};
use crate::AppState;
use axum::response::Response;
use axum::Json;
use protocol::history::{
    CasualReport, CasualReportSummary, ChartQuery, SessionPage, SessionQuery, UsageChart,
};
use protocol::page::PageQuery;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pool_history))
        .routes(routes!(pool_history_csv))
        .routes(routes!(casual_reports))
        .routes(routes!(casual_report))
        .routes(routes!(casual_report_csv))
        .routes(routes!(pool_usage_chart))
        .routes(routes!(pool_usage_chart_csv))
        .routes(routes!(usage_chart))
        .routes(routes!(usage_chart_csv))
}

/// A pool's use over a period, per feature: for each hour, day or month the most seats in use
/// at once, the count of seats then, and the checkouts refused for want of a seat.
#[utoipa::path(get, path = "/api/v1/pools/{id}/usage-history", tag = "usage",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"), ChartQuery),
    responses((status = 200, body = UsageChart), Problems))]
async fn pool_usage_chart(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ChartQuery>,
) -> Result<Json<UsageChart>, ApiError> {
    Ok(Json(
        s.usage_chart(&user, Some(id), q.period().map_err(licensing::Error::from)?)
            .await?,
    ))
}

/// The same figures as CSV (editor, feature, period_start_utc, peak_in_use, count, refusals).
#[utoipa::path(get, path = "/api/v1/pools/{id}/usage-history.csv", tag = "usage",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"), ChartQuery),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
async fn pool_usage_chart_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ChartQuery>,
) -> Result<Response, ApiError> {
    let period = q.period().map_err(licensing::Error::from)?;
    csv_file(
        s.usage_chart_csv(&user, Some(id), period).await?,
        &format!("pool-{id}-usage-{}.csv", period.code()),
    )
}

/// Every pool's use over a period (a client user's token: their own pools'), added up per
/// feature: the overview of the same figures.
#[utoipa::path(get, path = "/api/v1/usage-history", tag = "usage", security(("token" = [])),
    params(ChartQuery),
    responses((status = 200, body = UsageChart), Problems))]
async fn usage_chart(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiQuery(q): ApiQuery<ChartQuery>,
) -> Result<Json<UsageChart>, ApiError> {
    Ok(Json(
        s.usage_chart(&user, None, q.period().map_err(licensing::Error::from)?)
            .await?,
    ))
}

/// The overview's figures as CSV.
#[utoipa::path(get, path = "/api/v1/usage-history.csv", tag = "usage",
    security(("token" = [])),
    params(ChartQuery),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
async fn usage_chart_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiQuery(q): ApiQuery<ChartQuery>,
) -> Result<Response, ApiError> {
    let period = q.period().map_err(licensing::Error::from)?;
    csv_file(
        s.usage_chart_csv(&user, None, period).await?,
        &format!("usage-{}.csv", period.code()),
    )
}

/// A page of the pool's session history (every ended seat, and a moved seat's stretch on its
/// old key), newest end first, with the totals per user and per feature of the whole filter.
/// Pass `next_before` back as `before` for the next page (or follow the `Link`).
#[utoipa::path(get, path = "/api/v1/pools/{id}/history", tag = "usage", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"), SessionQuery),
    responses((status = 200, body = SessionPage,
        headers(("Link" = String, description = "The next page, when there is one: `<…before=…>; rel=\"next\"`"))),
        Problems))]
async fn pool_history(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    uri: axum::extract::OriginalUri,
    ApiQuery(q): ApiQuery<SessionQuery>,
) -> Result<Response, ApiError> {
    let page = s.session_history(&user, id, &q).await?;
    let link = page.next_before.map(|before| {
        let here = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        next_link(here, "before", &before.to_string())
    });
    Ok(linked(Json(page), link))
}

/// The sessions the filter selects as CSV (id, pool_id, seat_id, key_id, editor, feature,
/// model, user, host, process, session, amount, bundle_of, granted_at_utc, ended_at_utc,
/// duration_s, ended, borrowed_until_utc), newest first (up to 100,000; `limit` does not apply).
#[utoipa::path(get, path = "/api/v1/pools/{id}/history.csv", tag = "usage",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"), SessionQuery),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
async fn pool_history_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<SessionQuery>,
) -> Result<Response, ApiError> {
    csv_file(
        s.session_history_csv(&user, id, &q).await?,
        &format!("pool-{id}-history.csv"),
    )
}

/// The monthly casual usage reports, newest first. A month's report is made at 00:00 UTC on
/// the 1st of the next (or at the next start of a server that was down then), once, when at
/// least one casual key is enrolled.
#[utoipa::path(get, path = "/api/v1/casual-reports", tag = "usage", security(("token" = [])),
    params(PageQuery),
    responses((status = 200, body = Vec<CasualReportSummary>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn casual_reports(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    page: ApiPage,
) -> Result<Listing<CasualReportSummary>, ApiError> {
    page.slice(s.casual_reports(&user).await?, |r| {
        std::cmp::Reverse(r.month.clone())
    })
}

/// One month's casual usage report: each casual key, each user's minutes and over-use.
#[utoipa::path(get, path = "/api/v1/casual-reports/{month}", tag = "usage",
    security(("token" = [])),
    params(("month" = String, Path, description = "The month, YYYY-MM")),
    responses((status = 200, body = CasualReport), Problems))]
async fn casual_report(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(month): ApiPath<String>,
) -> Result<Json<CasualReport>, ApiError> {
    Ok(Json(s.casual_report(&user, &month).await?))
}

/// One month's casual usage report as CSV (month, pool_id, pool, key_id, editor, feature,
/// maximum_mn, user, minutes, over_maximum; a key nobody used has a line without a user).
#[utoipa::path(get, path = "/api/v1/casual-reports/{month}/csv", tag = "usage",
    security(("token" = [])),
    params(("month" = String, Path, description = "The month, YYYY-MM")),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
async fn casual_report_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(month): ApiPath<String>,
) -> Result<Response, ApiError> {
    let csv = s.casual_report_csv(&user, &month).await?;
    csv_file(csv, &format!("casual-usage-{}.csv", month.trim()))
}
