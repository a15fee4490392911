//! The Web API under `/api/v1` (JSON; errors as `application/problem+json`, RFC 9457) and the
//! public keys at `/.well-known/jwks.json`. Handlers only translate HTTP to the services and back.

use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use licensing::activation::{Channel, Issued, Remover};
use licensing::Licentia;
use protocol::activation::Claims;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/v1/activations", post(activate))
        .route("/api/v1/activations/validate", post(validate))
        .route("/api/v1/activations/remove", post(remove))
        .route("/api/{*rest}", axum::routing::any(not_found))
}

/// An API error, written as problem+json. Server-side causes are logged, never sent.
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    field: Option<String>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: format!("/problems/{}", self.kind),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            field: self.field.as_deref(),
        };
        let mut res = (self.status, Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: String) -> Self {
        Self {
            status,
            kind,
            title,
            detail,
            field: None,
        }
    }
}

impl From<licensing::Error> for ApiError {
    fn from(e: licensing::Error) -> Self {
        use licensing::Error as E;
        match e {
            E::Invalid(i) => Self {
                field: Some(i.field.to_owned()),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "Invalid input",
                    i.message,
                )
            },
            E::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("{what} was not found."),
            ),
            E::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", "Conflict", m),
            E::Refused(m) => Self::new(StatusCode::FORBIDDEN, "refused", "Refused", m),
            E::Gone(m) => Self::new(StatusCode::GONE, "gone", "Gone", m),
            E::NotSignedIn | E::BadCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                e.to_string(),
            ),
            E::NotAllowed => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "You are not allowed to do this.".into(),
            ),
            E::Throttled { retry_after_secs } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "Too many requests",
                format!("Try again in {retry_after_secs} seconds."),
            ),
            E::SetupLink(why) => Self::new(StatusCode::GONE, "gone", "Gone", why.to_owned()),
            E::Database(cause) => {
                tracing::error!(error = %cause, "database error in the Web API");
                Self::internal()
            }
            E::Internal(cause) => {
                tracing::error!(error = %cause, "internal error in the Web API");
                Self::internal()
            }
        }
    }
}

impl ApiError {
    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "Something went wrong on the server; it has been logged.".into(),
        )
    }
}

/// `Json<T>` whose rejections (wrong content type, malformed JSON, missing fields) are problems too.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "bad-request",
                "The request body could not be read",
                rejection.body_text(),
            )),
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "There is no such API endpoint.".into(),
    )
}

async fn jwks(State(services): State<Licentia>) -> Result<Response, ApiError> {
    let set = services.jwks().await?;
    let mut res = Json(set).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub struct ActivateRequest {
    pub licence_key: String,
    pub fingerprint: String,
    pub hostname: String,
}

#[derive(Serialize)]
pub struct CodeResponse {
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

/// `POST /api/v1/activations`: binds a licence to a machine and answers with its activation code.
async fn activate(
    State(services): State<Licentia>,
    ApiJson(req): ApiJson<ActivateRequest>,
) -> Result<(StatusCode, Json<CodeResponse>), ApiError> {
    let issued = services
        .activate(
            &req.licence_key,
            &req.fingerprint,
            &req.hostname,
            Channel::Online,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

#[derive(Deserialize)]
pub struct ValidateRequest {
    pub activation_code: String,
    pub fingerprint: String,
}

/// `POST /api/v1/activations/validate`: a fresh code with the licence as it is now, or 410.
async fn validate(
    State(services): State<Licentia>,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> Result<Json<CodeResponse>, ApiError> {
    Ok(Json(
        services
            .validate(&req.activation_code, &req.fingerprint)
            .await?
            .into(),
    ))
}

#[derive(Deserialize)]
pub struct RemoveRequest {
    pub licence_key: String,
    pub fingerprint: String,
}

/// `POST /api/v1/activations/remove`: the application frees its licence (where the product allows).
async fn remove(
    State(services): State<Licentia>,
    ApiJson(req): ApiJson<RemoveRequest>,
) -> Result<StatusCode, ApiError> {
    services
        .remove_activation(&req.licence_key, Some(&req.fingerprint), Remover::EndUser)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
