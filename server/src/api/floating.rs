//! Floating licences over the Web API: the seat protocol applications speak (checkout,
//! heartbeat, release — authenticated by the pool key or serial, then by the seat's lease
//! token), and the pools, keys, usage and explanations the vendor's automation manages.

use super::{
    ApiError, ApiJson, ApiPage, ApiPath, ApiQuery, CallerAddress, Listing, Problems, Reader,
    Services, Sight, Writer,
};
use crate::AppState;
use axum::http::StatusCode;
use axum::Json;
use protocol::floating::{
    Bundle, FeatureUsage, KeyVerdict, Pool, PoolKey, PoolKeyInput, PoolOwner, SeatDetail,
    SilentSeats,
};
use protocol::input::InputError;
use protocol::page::PageQuery;
use protocol::seats::{Beat, CheckoutRequest, ExplainRequest, Grant, LeaseRequest};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkout))
        .routes(routes!(heartbeat))
        .routes(routes!(release))
        .routes(routes!(list_pools, create_pool))
        .routes(routes!(get_pool, delete_pool))
        .routes(routes!(rotate_pool_key))
        .routes(routes!(set_checkout_cap))
        .routes(routes!(set_silent_seats))
        .routes(routes!(pool_bundles, add_bundle))
        .routes(routes!(remove_bundle))
        .routes(routes!(pool_keys, add_pool_key))
        .routes(routes!(delete_pool_key))
        .routes(routes!(explain))
        .routes(routes!(usage))
        .routes(routes!(usage_csv))
        .routes(routes!(detailed_usage))
        .routes(routes!(disconnect))
}

/// Takes a seat of a feature from a pool: 201 with the seat and its lease. Refusals say which:
/// 403 `/problems/seats-taken` naming the feature and its seats when all are in use (retry
/// later), 403 `/problems/no-matching-key` when no key fits the feature, release or terms
/// (retrying will not help).
#[utoipa::path(post, path = "/api/v1/seats", tag = "floating",
    request_body = CheckoutRequest,
    responses((status = 201, description = "Granted", body = Grant), Problems))]
async fn checkout(
    axum::extract::State(s): Services,
    CallerAddress(address): CallerAddress,
    ApiJson(req): ApiJson<CheckoutRequest>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.checkout_from(&req, &address).await?),
    ))
}

/// Keeps a seat. 410 when the seat is gone (disconnected, lease expired, its key expired with
/// no other free): the detail says why.
#[utoipa::path(post, path = "/api/v1/seats/{id}/heartbeat", tag = "floating",
    params(("id" = i64, Path, description = "Seat id")),
    request_body = LeaseRequest,
    responses((status = 200, body = Beat), Problems))]
async fn heartbeat(
    axum::extract::State(s): Services,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<LeaseRequest>,
) -> Result<Json<Beat>, ApiError> {
    Ok(Json(s.heartbeat(id, &b.lease_token).await?))
}

/// Gives the seat back (and those bundled with it). Releasing twice is fine.
#[utoipa::path(post, path = "/api/v1/seats/{id}/release", tag = "floating",
    params(("id" = i64, Path, description = "Seat id")),
    request_body = LeaseRequest,
    responses((status = 204, description = "Released"), Problems))]
async fn release(
    axum::extract::State(s): Services,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<LeaseRequest>,
) -> Result<StatusCode, ApiError> {
    s.release(id, &b.lease_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pools, oldest first: every one for an administrator's token, the client's own otherwise.
#[utoipa::path(get, path = "/api/v1/pools", tag = "floating", security(("token" = [])),
    params(PageQuery),
    responses((status = 200, body = Vec<Pool>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn list_pools(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    page: ApiPage,
) -> Result<Listing<Pool>, ApiError> {
    let pools = s.list_pools(&user, &page.page).await?;
    sight.show_page(&page, pools).await
}

#[derive(Deserialize, ToSchema)]
pub struct PoolBody {
    /// The client that owns the pool, or
    #[serde(default)]
    pub client_id: Option<i64>,
    /// the serial that owns it.
    #[serde(default)]
    pub serial_id: Option<i64>,
    /// What tells a client's pools apart (a site, a department); up to 100 characters.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: String,
    /// Seconds a seat lives without a heartbeat (30 to 86400; default 300).
    #[serde(default)]
    #[schema(minimum = 30, maximum = 86400)]
    pub lease_secs: Option<i64>,
}

/// Gives a client a floating pool (a client may have several), or a serial its one pool.
#[utoipa::path(post, path = "/api/v1/pools", tag = "floating", security(("token" = [])),
    request_body = PoolBody,
    responses((status = 201, body = Pool), Problems))]
async fn create_pool(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiJson(b): ApiJson<PoolBody>,
) -> Result<(StatusCode, Json<Pool>), ApiError> {
    let owner = match (b.client_id, b.serial_id) {
        (Some(c), None) => PoolOwner::Client(c),
        (None, Some(s)) => PoolOwner::Serial(s),
        _ => {
            return Err(licensing::Error::from(InputError::new(
                "client_id",
                "A pool belongs to a client or to a serial number: name exactly one.",
            ))
            .into())
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(s.create_pool(&user, owner, &b.name, b.lease_secs).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/pools/{id}", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    responses((status = 200, body = Pool), Problems))]
async fn get_pool(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Pool>, ApiError> {
    sight.show(s.pool(&user, id).await?).await
}

#[derive(Deserialize, ToSchema)]
pub struct RotateBody {
    /// How long the old key keeps working, in hours (0 to 720; default 24). After that it is
    /// refused with `/problems/pool-key-replaced`.
    #[serde(default = "default_grace_hours")]
    #[schema(minimum = 0, maximum = 720)]
    pub grace_hours: i64,
}

fn default_grace_hours() -> i64 {
    24
}

/// Replaces the pool key (the pool's owner). The answer holds the new key whole, this once;
/// the old key keeps checking out for the grace period.
#[utoipa::path(post, path = "/api/v1/pools/{id}/key", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = RotateBody,
    responses((status = 200, body = Pool), Problems))]
async fn rotate_pool_key(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<RotateBody>,
) -> Result<Json<Pool>, ApiError> {
    Ok(Json(s.rotate_pool_key(&user, id, b.grace_hours).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct CheckoutCapBody {
    /// The most tokens (or credits) one checkout may take from the pool's Token and Credit keys
    /// (1 to 1000000); `null` lifts the cap.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_tokens_per_checkout: Option<i64>,
}

/// Caps what one checkout may take from the pool's Token and Credit keys (the pool's owner).
/// A checkout asking more is refused 403 `/problems/refused`, saying the cap.
#[utoipa::path(put, path = "/api/v1/pools/{id}/checkout-cap", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = CheckoutCapBody,
    responses((status = 200, body = Pool), Problems))]
async fn set_checkout_cap(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<CheckoutCapBody>,
) -> Result<Json<Pool>, ApiError> {
    Ok(Json(
        s.set_checkout_cap(&user, id, b.max_tokens_per_checkout)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct SilentSeatsBody {
    /// `lease`: a seat whose application went silent comes back when its lease ends; `held`:
    /// it stays in use until the application comes back, releases it, or is freed.
    pub silent_seats: SilentSeats,
}

/// How the pool ends a seat whose application stops sending heartbeats (the pool's owner).
#[utoipa::path(put, path = "/api/v1/pools/{id}/silent-seats", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = SilentSeatsBody,
    responses((status = 200, body = Pool), Problems))]
async fn set_silent_seats(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<SilentSeatsBody>,
) -> Result<Json<Pool>, ApiError> {
    Ok(Json(s.set_silent_seats(&user, id, b.silent_seats).await?))
}

/// Deletes a pool with its keys, bundles and usage history (administrators); 409 while seats
/// are in use, saying how many.
#[utoipa::path(delete, path = "/api/v1/pools/{id}", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_pool(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    s.delete_pool(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The pool's bundles, by feature.
#[utoipa::path(get, path = "/api/v1/pools/{id}/bundles", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"), PageQuery),
    responses((status = 200, body = Vec<Bundle>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn pool_bundles(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    page: ApiPage,
) -> Result<Listing<Bundle>, ApiError> {
    page.slice(s.pool_bundles(&user, id).await?, |b| {
        (b.feature.clone(), b.also_feature.clone())
    })
}

/// Makes checking out `feature` also take `also_feature`; both need a key in the pool.
#[utoipa::path(post, path = "/api/v1/pools/{id}/bundles", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = Bundle,
    responses((status = 201, body = Bundle), Problems))]
async fn add_bundle(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<Bundle>,
) -> Result<(StatusCode, Json<Bundle>), ApiError> {
    s.add_bundle(&user, id, &b).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

/// Removes a bundle: checking out `feature` no longer takes `also_feature`.
#[utoipa::path(delete, path = "/api/v1/pools/{id}/bundles/{feature}/{also_feature}",
    tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"),
        ("feature" = String, Path, description = "The feature checked out"),
        ("also_feature" = String, Path, description = "The feature it also takes")),
    responses((status = 204, description = "Removed"), Problems))]
async fn remove_bundle(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath((id, feature, also_feature)): ApiPath<(i64, String, String)>,
) -> Result<StatusCode, ApiError> {
    s.remove_bundle(
        &user,
        id,
        &Bundle {
            feature,
            also_feature,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The pool's licence keys, oldest first.
#[utoipa::path(get, path = "/api/v1/pools/{id}/keys", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"), PageQuery),
    responses((status = 200, body = Vec<PoolKey>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn pool_keys(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    page: ApiPage,
) -> Result<Listing<PoolKey>, ApiError> {
    page.slice(s.pool_keys(&user, id).await?, |k| k.id)
}

/// Adds a licence key to a pool.
#[utoipa::path(post, path = "/api/v1/pools/{id}/keys", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = PoolKeyInput,
    responses((status = 201, body = PoolKey), Problems))]
async fn add_pool_key(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(k): ApiJson<PoolKeyInput>,
) -> Result<(StatusCode, Json<PoolKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.add_pool_key(&user, id, k).await?),
    ))
}

/// Removes a licence key that no seat holds.
#[utoipa::path(delete, path = "/api/v1/pool-keys/{id}", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Key id")),
    responses((status = 204, description = "Removed"), Problems))]
async fn delete_pool_key(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    s.delete_pool_key(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Explains a hypothetical checkout: every key with the filter that removed it, or its rank
/// (1 would be granted). With `user` or `host`, the pool's access rules are judged for them and
/// a rule that refuses is named.
#[utoipa::path(post, path = "/api/v1/pools/{id}/explain", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = ExplainRequest,
    responses((status = 200, body = Vec<KeyVerdict>), Problems))]
async fn explain(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ExplainRequest>,
) -> Result<Json<Vec<KeyVerdict>>, ApiError> {
    Ok(Json(s.explain_checkout(&user, id, &req).await?))
}

/// Usage Per Feature as CSV, in the list's order. A read-only token's export masks the serial
/// numbers that own serial pools.
#[utoipa::path(get, path = "/api/v1/usage.csv", tag = "floating", security(("token" = [])),
    responses((status = 200, content_type = "text/csv", body = String), Problems))]
pub(super) async fn usage_csv(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
) -> Result<axum::response::Response, ApiError> {
    let csv = s.usage_csv(&user, !sight.is_masked()).await?;
    sight.record().await?;
    super::manage::csv_file(csv, "usage.csv")
}

/// Usage Per Feature: editor, feature, commercial type, in use and count, per pool; by editor,
/// feature, commercial type and pool.
#[utoipa::path(get, path = "/api/v1/usage", tag = "floating", security(("token" = [])),
    params(PageQuery),
    responses((status = 200, body = Vec<FeatureUsage>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn usage(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    sight: Sight,
    page: ApiPage,
) -> Result<Listing<FeatureUsage>, ApiError> {
    let usage = page.page.slice(s.usage_per_feature(&user).await?, |u| {
        let (e, f, c) = (&u.editor, &u.feature, &u.commercial_type);
        (e.clone(), f.clone(), c.clone(), u.pool_id)
    })?;
    sight.show_page(&page, usage).await
}

/// Detailed usage: the live seats of one feature of a pool, in the order they were granted.
#[utoipa::path(get, path = "/api/v1/pools/{id}/usage/{editor}/{feature}", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"), ("editor" = String, Path), ("feature" = String, Path), PageQuery),
    responses((status = 200, body = Vec<SeatDetail>, headers(("Link" = String, description = "The next page, when there is one: `<…after=…>; rel=\"next\"`"))), Problems))]
async fn detailed_usage(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath((id, editor, feature)): ApiPath<(i64, String, String)>,
    page: ApiPage,
) -> Result<Listing<SeatDetail>, ApiError> {
    let seats = s.detailed_usage(&user, id, &editor, &feature).await?;
    page.slice(seats, |seat| (seat.granted_at, seat.id))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DisconnectParam {
    /// Administrators: free a seat out on a mobile licence (a machine lost for good); its
    /// machine may keep using it offline until its end, so the seat is lent twice until then.
    #[serde(default)]
    pub force: bool,
}

/// Frees a stuck seat; its application learns at its next heartbeat. A seat out on a mobile
/// licence is refused (403) unless an administrator forces it.
#[utoipa::path(delete, path = "/api/v1/seats/{id}", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Seat id"), DisconnectParam),
    responses((status = 204, description = "Disconnected"), Problems))]
async fn disconnect(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<DisconnectParam>,
) -> Result<StatusCode, ApiError> {
    s.disconnect_seat(&user, id, p.force).await?;
    Ok(StatusCode::NO_CONTENT)
}
