//! Mobile (borrowed) licences over the Web API: an application borrows or extends its held seat
//! (authenticated by the seat's lease token), and the pool's managers answer borrow request
//! codes, extend and take return codes, list the mobile licences and switch them on or off.

use super::{ApiError, ApiJson, ApiPage, ApiPath, Listing, Problems, Reader, Services, Writer};
use crate::AppState;
use axum::http::StatusCode;
use axum::Json;
use protocol::borrow::{
    AssignMobile, BorrowRequest, Borrowed, MobileExtension, MobileReturn, MobileSettings,
    ReturnRequest,
};
use protocol::floating::{Pool, SeatDetail};
use protocol::page::PageQuery;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(borrow))
        .routes(routes!(extend))
        .routes(routes!(return_early))
        .routes(routes!(set_mobile))
        .routes(routes!(mobile_licences, assign_mobile))
        .routes(routes!(extend_mobile))
        .routes(routes!(return_mobile))
}

/// Borrows the held seat for `days` from now: a borrow token bound to the machine, with which
/// the application works offline until `exp`. `return_hash` names the secret an early return
/// will show. 403 `/problems/borrowing-off` when the pool lends
/// no mobile licence; 422 when `days` exceeds the pool's longest borrowing.
#[utoipa::path(post, path = "/api/v1/seats/{id}/borrow", tag = "floating",
    params(("id" = i64, Path, description = "Seat id")),
    request_body = BorrowRequest,
    responses((status = 200, description = "Borrowed", body = Borrowed), Problems))]
async fn borrow(
    axum::extract::State(s): Services,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<BorrowRequest>,
) -> Result<Json<Borrowed>, ApiError> {
    Ok(Json(s.borrow(id, &req).await?))
}

/// Extends the borrowed seat by `days` past its end (never more than the pool's longest
/// borrowing ahead of now): a new token.
#[utoipa::path(post, path = "/api/v1/seats/{id}/extend", tag = "floating",
    params(("id" = i64, Path, description = "Seat id")),
    request_body = BorrowRequest,
    responses((status = 200, description = "Extended", body = Borrowed), Problems))]
async fn extend(
    axum::extract::State(s): Services,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<BorrowRequest>,
) -> Result<Json<Borrowed>, ApiError> {
    Ok(Json(s.extend_borrow(id, &req).await?))
}

/// Gives the borrowed seat back before its end: the lease token and the return secret whose
/// hash the borrow named (403 for any other secret). Returning twice is fine.
#[utoipa::path(post, path = "/api/v1/seats/{id}/return", tag = "floating",
    params(("id" = i64, Path, description = "Seat id")),
    request_body = ReturnRequest,
    responses((status = 204, description = "Returned"), Problems))]
async fn return_early(
    axum::extract::State(s): Services,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReturnRequest>,
) -> Result<StatusCode, ApiError> {
    s.return_borrowed(id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The pool owner's switch for mobile licences (its client's tokens and administrators'), and
/// the pool's longest borrowing (administrators only). Borrows already out run to their end.
#[utoipa::path(put, path = "/api/v1/pools/{id}/mobile", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = MobileSettings,
    responses((status = 200, body = Pool), Problems))]
async fn set_mobile(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(settings): ApiJson<MobileSettings>,
) -> Result<Json<Pool>, ApiError> {
    Ok(Json(s.set_mobile(&user, id, &settings).await?))
}

/// The pool's mobile licences (borrowed seats), soonest end first.
#[utoipa::path(get, path = "/api/v1/pools/{id}/mobile-licences", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"), PageQuery),
    responses((status = 200, body = Vec<SeatDetail>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn mobile_licences(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    page: ApiPage,
) -> Result<Listing<SeatDetail>, ApiError> {
    page.slice(s.mobile_licences(&user, id).await?, |seat| {
        (seat.borrowed_until, seat.id)
    })
}

/// *Assign a mobile licence*: answers a workstation's borrow request code; the token is the
/// response code it imports. The same request answered again gets the same token.
#[utoipa::path(post, path = "/api/v1/pools/{id}/mobile-licences", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = AssignMobile,
    responses((status = 201, description = "Assigned", body = Borrowed), Problems))]
async fn assign_mobile(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<AssignMobile>,
) -> Result<(StatusCode, Json<Borrowed>), ApiError> {
    let answer = s
        .answer_borrow_request(&user, id, &req.request_code, req.days)
        .await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// *Extend mobile licence*: a new token (response code) for the workstation to import.
#[utoipa::path(post, path = "/api/v1/mobile-licences/{id}/extend", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Seat id of the mobile licence")),
    request_body = MobileExtension,
    responses((status = 200, body = Borrowed), Problems))]
async fn extend_mobile(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<MobileExtension>,
) -> Result<Json<Borrowed>, ApiError> {
    Ok(Json(s.extend_mobile(&user, id, req.days).await?))
}

/// *Release a mobile licence*: takes the return code the workstation made and returns the seat
/// at once. Without it the seat returns at its end: its machine works offline until then.
#[utoipa::path(post, path = "/api/v1/pools/{id}/returns", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = MobileReturn,
    responses((status = 204, description = "Returned"), Problems))]
async fn return_mobile(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<MobileReturn>,
) -> Result<StatusCode, ApiError> {
    s.accept_return_code(&user, id, &req.return_code).await?;
    Ok(StatusCode::NO_CONTENT)
}
