//! A floating pool's access rules over the Web API (DSLS authorization rules): the rules and the
//! groups they name, for the pool's owner and administrators. Applications meet them as
//! 403 `/problems/access-rule` at checkout and 410 at the heartbeat after a block.

use super::{ApiError, ApiJson, ApiPath, Problems, Reader, Services, Writer};
use crate::AppState;
use axum::http::StatusCode;
use axum::Json;
use protocol::access::{AccessGroup, AccessGroupInput, AccessRule, AccessRuleInput, PoolAccess};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pool_access))
        .routes(routes!(add_rule))
        .routes(routes!(remove_rule))
        .routes(routes!(save_group, remove_group))
}

/// The pool's access rules (oldest first) and groups (by name).
#[utoipa::path(get, path = "/api/v1/pools/{id}/access", tag = "floating", security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    responses((status = 200, body = PoolAccess), Problems))]
async fn pool_access(
    axum::extract::State(s): Services,
    Reader(user): Reader,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<PoolAccess>, ApiError> {
    Ok(Json(s.pool_access(&user, id).await?))
}

/// Adds an access rule: allow or deny a user, host or group one feature (or every feature), or
/// reserve seats for them. It applies from the next checkout; seats an allow or deny rule now
/// refuses end at their next heartbeat (410 naming the rule). A group must exist first (422).
#[utoipa::path(post, path = "/api/v1/pools/{id}/access/rules", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id")),
    request_body = AccessRuleInput,
    responses((status = 201, body = AccessRule), Problems))]
async fn add_rule(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<AccessRuleInput>,
) -> Result<(StatusCode, Json<AccessRule>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.add_access_rule(&user, id, input).await?),
    ))
}

/// Removes an access rule.
#[utoipa::path(delete, path = "/api/v1/pools/{id}/access/rules/{rule_id}", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"),
        ("rule_id" = i64, Path, description = "The rule's id")),
    responses((status = 204, description = "Removed"), Problems))]
async fn remove_rule(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath((id, rule_id)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    s.remove_access_rule(&user, id, rule_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes or replaces a group of users or of hosts (names compare without regard to case).
#[utoipa::path(put, path = "/api/v1/pools/{id}/access/groups/{name}", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"),
        ("name" = String, Path, description = "The group's name, 1 to 64 characters")),
    request_body = AccessGroupInput,
    responses((status = 200, body = AccessGroup), Problems))]
async fn save_group(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath((id, name)): ApiPath<(i64, String)>,
    ApiJson(input): ApiJson<AccessGroupInput>,
) -> Result<Json<AccessGroup>, ApiError> {
    Ok(Json(s.save_access_group(&user, id, &name, input).await?))
}

/// Removes a group; 409 while a rule names it (the detail lists the rules).
#[utoipa::path(delete, path = "/api/v1/pools/{id}/access/groups/{name}", tag = "floating",
    security(("token" = [])),
    params(("id" = i64, Path, description = "Pool id"),
        ("name" = String, Path, description = "The group's name")),
    responses((status = 204, description = "Removed"), Problems))]
async fn remove_group(
    axum::extract::State(s): Services,
    Writer(user): Writer,
    ApiPath((id, name)): ApiPath<(i64, String)>,
) -> Result<StatusCode, ApiError> {
    s.remove_access_group(&user, id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
