//! What protected applications call: activate, validate, remove, and the public keys. They
//! authenticate with what they hold — a licence key (standard model) or a product code and serial
//! number (web model) — and the machine's fingerprint.

use super::{ApiError, ApiJson, Problems, Services};
use crate::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use licensing::activation::{Channel, Issued, Remover};
use protocol::activation::{Claims, JwkSet};
use protocol::input::InputError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(activate, super::manage::list_activations))
        .routes(routes!(validate))
        .routes(routes!(remove))
        .routes(routes!(jwks))
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

/// The licence to act on: a licence key, or a product code with a serial number.
#[derive(Deserialize, ToSchema)]
pub struct LicenceRef {
    /// A standard-model licence key, `XXXXX-XXXXX-XXXXX-XXXXX`.
    #[serde(default)]
    pub licence_key: Option<String>,
    /// A web-model serial number (with `product`).
    #[serde(default)]
    pub serial: Option<String>,
    /// The application's product code: required with a serial; with a licence key, a key of
    /// another product is refused before anything changes.
    #[serde(default)]
    pub product: Option<String>,
}

enum Held<'a> {
    Key {
        key: &'a str,
        product: Option<&'a str>,
    },
    Serial {
        product: &'a str,
        serial: &'a str,
    },
}

impl LicenceRef {
    fn held(&self) -> Result<Held<'_>, ApiError> {
        match (&self.licence_key, &self.serial, &self.product) {
            (Some(key), None, product) => Ok(Held::Key {
                key,
                product: product.as_deref(),
            }),
            (None, Some(serial), Some(product)) => Ok(Held::Serial { product, serial }),
            (None, Some(_), None) => Err(licensing::Error::from(InputError::new(
                "product",
                "Send the product code with the serial number.",
            ))
            .into()),
            (Some(_), Some(_), _) => Err(licensing::Error::from(InputError::new(
                "serial",
                "Send a licence key or a serial number, not both.",
            ))
            .into()),
            (None, None, _) => Err(licensing::Error::from(InputError::new(
                "licence_key",
                "Send the licence key (or the product code and serial number).",
            ))
            .into()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ActivateRequest {
    #[serde(flatten)]
    pub licence: LicenceRef,
    /// The machine's fingerprint: 64 hexadecimal digits, as the client library makes it.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub fingerprint: String,
    /// The machine's name as people know it, 1 to 255 printable characters.
    #[schema(min_length = 1, max_length = 255)]
    pub hostname: String,
}

#[derive(Serialize, ToSchema)]
pub struct CodeResponse {
    /// A compact JWS (EdDSA) that the application verifies offline against the JWKS.
    pub activation_code: String,
    pub claims: Claims,
}

impl From<Issued> for CodeResponse {
    fn from(i: Issued) -> Self {
        Self {
            activation_code: i.code,
            claims: i.claims,
        }
    }
}

/// Binds a licence (or one of a serial's licences) to a machine and answers with its code.
/// Activating again on the same machine answers with a fresh code and uses nothing.
#[utoipa::path(post, path = "/api/v1/activations", tag = "application",
    request_body = ActivateRequest,
    responses((status = 201, description = "Activated", body = CodeResponse), Problems))]
async fn activate(
    axum::extract::State(services): Services,
    ApiJson(req): ApiJson<ActivateRequest>,
) -> Result<(StatusCode, Json<CodeResponse>), ApiError> {
    let issued = match req.licence.held()? {
        Held::Key { key, product } => {
            if let Some(product) = product {
                services.check_key_product(key, product).await?;
            }
            services
                .activate(key, &req.fingerprint, &req.hostname, Channel::Online)
                .await?
        }
        Held::Serial { product, serial } => {
            services
                .activate_serial(
                    product,
                    serial,
                    &req.fingerprint,
                    &req.hostname,
                    Channel::Online,
                )
                .await?
        }
    };
    Ok((StatusCode::CREATED, Json(issued.into())))
}

#[derive(Deserialize, ToSchema)]
pub struct ValidateRequest {
    /// The code the server gave at activation (or at the last validation).
    pub activation_code: String,
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub fingerprint: String,
}

/// The application's periodic check: a fresh code with the licence as it is now; 410 when the
/// licence was removed or expired, or (`/problems/serial-revoked`) when its serial was revoked
/// and the application must activate again with the replacement.
#[utoipa::path(post, path = "/api/v1/activations/validate", tag = "application",
    request_body = ValidateRequest,
    responses((status = 200, description = "Still valid: a fresh code", body = CodeResponse), Problems))]
async fn validate(
    axum::extract::State(services): Services,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> Result<Json<CodeResponse>, ApiError> {
    Ok(Json(
        services
            .validate(&req.activation_code, &req.fingerprint)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RemoveRequest {
    #[serde(flatten)]
    pub licence: LicenceRef,
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub fingerprint: String,
}

/// The application frees its licence, where the product allows end users to.
#[utoipa::path(post, path = "/api/v1/activations/remove", tag = "application",
    request_body = RemoveRequest,
    responses((status = 204, description = "Removed"), Problems))]
async fn remove(
    axum::extract::State(services): Services,
    ApiJson(req): ApiJson<RemoveRequest>,
) -> Result<StatusCode, ApiError> {
    match req.licence.held()? {
        Held::Key { key, product } => {
            if let Some(product) = product {
                services.check_key_product(key, product).await?;
            }
            services
                .remove_activation(key, Some(&req.fingerprint), Remover::EndUser)
                .await?
        }
        Held::Serial { product, serial } => {
            services
                .remove_serial_activation(product, serial, &req.fingerprint)
                .await?
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
