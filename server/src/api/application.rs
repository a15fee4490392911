//! What protected applications call: activate, validate, remove, and the public keys. They
//! authenticate with what they hold — a licence key (standard model) or a product code and serial
//! number (web model) — and the machine's fingerprint.

use super::{ApiError, ApiJson, Problems, Services};
use crate::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use licensing::activation::{Channel, Issued, Removal};
use protocol::activation::JwkSet;
use protocol::application::{ActivateRequest, CodeAnswer, RemoveRequest, ValidateRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(activate, super::manage::list_activations))
        .routes(routes!(super::manage::activations_csv))
        .routes(routes!(validate))
        .routes(routes!(remove))
        .routes(routes!(jwks))
        .routes(routes!(endorsed_keys))
        .routes(routes!(root_key))
}

/// The public keys that verify activation codes, by `kid`. Cached for five minutes.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "application",
    responses((status = 200, description = "The JSON Web Key Set", body = JwkSet)))]
async fn jwks(axum::extract::State(services): Services) -> Result<Response, ApiError> {
    let set = services.jwks().await?;
    let mut res = Json(set).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(res)
}

/// The signing keys in force, endorsed by the root key: a compact JWS (`typ`
/// `licentia-keys+jwt`) whose payload is `{"iss", "iat", "keys": JWKS}`. An application that pins
/// the root key (`/.well-known/licentia-root.json`, also printed by `server keys root`) trusts
/// the keys listed here and no others, and refuses even offline the codes of the keys listed as
/// `retired`. Cached for a minute.
#[utoipa::path(get, path = "/.well-known/licentia-keys.jws", tag = "application",
    responses((status = 200, description = "The endorsement, as application/jose", body = String, content_type = "application/jose")))]
async fn endorsed_keys(axum::extract::State(services): Services) -> Result<Response, ApiError> {
    let jws = services.endorsed_keys().await?;
    let mut res = jws.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jose"),
    );
    // Short: a retired key leaves it within a minute.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(res)
}

/// The root's public key as a JWKS: what an application pins at build time. Fetch it once from
/// a server you trust (or run `server keys root` there) and ship it inside the application;
/// taking it from the network at run time would trust whoever answers.
#[utoipa::path(get, path = "/.well-known/licentia-root.json", tag = "application",
    responses((status = 200, description = "The root key", body = JwkSet)))]
async fn root_key(axum::extract::State(services): Services) -> Json<JwkSet> {
    Json(services.root_jwks())
}

/// The licence a request names; a key presented with a product code is checked against it
/// before anything changes.
fn answer(i: Issued) -> CodeAnswer {
    CodeAnswer {
        activation_code: i.code,
        claims: i.claims,
    }
}

/// Binds a licence (or one of a serial's licences) to a machine and answers with its code.
/// Activating again on the same machine answers with a fresh code and uses nothing.
#[utoipa::path(post, path = "/api/v1/activations", tag = "application",
    request_body = ActivateRequest,
    responses((status = 201, description = "Activated", body = CodeAnswer), Problems))]
async fn activate(
    axum::extract::State(services): Services,
    ApiJson(req): ApiJson<ActivateRequest>,
) -> Result<(StatusCode, Json<CodeAnswer>), ApiError> {
    let licence = req.licence().map_err(licensing::Error::from)?;
    let issued = services
        .activate_ref(&licence, &req.fingerprint, &req.hostname, Channel::Online)
        .await?;
    Ok((StatusCode::CREATED, Json(answer(issued))))
}

/// The application's periodic check: a fresh code with the licence as it is now; 410 when the
/// licence was removed or expired, (`/problems/serial-revoked`) when its serial was revoked
/// and the application must activate again with the replacement, or (`/problems/key-retired`)
/// when its code was signed with a key the vendor withdrew (activate again on the same machine).
#[utoipa::path(post, path = "/api/v1/activations/validate", tag = "application",
    request_body = ValidateRequest,
    responses((status = 200, description = "Still valid: a fresh code", body = CodeAnswer), Problems))]
async fn validate(
    axum::extract::State(services): Services,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> Result<Json<CodeAnswer>, ApiError> {
    Ok(Json(answer(
        services
            .validate(&req.activation_code, &req.fingerprint)
            .await?,
    )))
}

/// The application frees its licence, where the product allows end users to.
#[utoipa::path(post, path = "/api/v1/activations/remove", tag = "application",
    request_body = RemoveRequest,
    responses((status = 204, description = "Removed; the licence is free"),
        (status = 200, description = "Removed without the machine's latest code: the licence frees at `frees_at`", body = Removal),
        Problems))]
async fn remove(
    axum::extract::State(services): Services,
    ApiJson(req): ApiJson<RemoveRequest>,
) -> Result<Response, ApiError> {
    let licence = req.licence().map_err(licensing::Error::from)?;
    let proof = req.activation_code.as_deref();
    let removal = services
        .remove_ref(&licence, &req.fingerprint, proof)
        .await?;
    Ok(match removal.frees_at {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(_) => Json(removal).into_response(),
    })
}
