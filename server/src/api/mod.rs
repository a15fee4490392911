//! The Web API under `/api/v1` (JSON; errors as `application/problem+json`, RFC 9457), the
//! public keys at `/.well-known/jwks.json`, and the OpenAPI document at `/api/v1/openapi.json`,
//! generated from the handlers' own annotations. Handlers only translate HTTP to the services.
//!
//! Two audiences: protected applications (`application`: activate, validate, remove — they
//! authenticate with their licence key or serial and machine), and the vendor's automation
//! (`manage`: bearer API tokens created in the portal).

mod access;
mod application;
mod audit;
mod borrow;
mod floating;
mod history;
mod manage;
mod sites;
mod webhooks;

use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use licensing::accounts::tokens::TokenHolder;
use licensing::page::{Page, Paged};
use licensing::Licentia;
use protocol::account::CurrentUser;
use protocol::page::PageQuery;
use protocol::problem::{Problem, ProblemKind};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Licentia API",
        description = "Licensing for protected applications (activation, validation, removal) and \
            the management API for the vendor's automation. Errors are RFC 9457 problem+json.",
        license(name = "Proprietary"),
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    tags(
        (name = "application", description = "Called by protected applications; no token."),
        (name = "catalogue", description = "Products, clients, orders, licences (bearer token)."),
        (name = "web licences", description = "Serial numbers of the web licensing model (bearer token, administrators)."),
        (name = "activations", description = "Where licences are in use (bearer token)."),
        (name = "audit", description = "The audit log: who changed what, when and from where (bearer token)."),
        (name = "floating", description = "Floating seats: the seat protocol for applications (pool key or serial, then the lease token) and pools, keys and usage for automation (bearer token)."),
        (name = "webhooks", description = "Webhooks: URLs told of events, signed, with their deliveries (bearer token, administrators)."),
        (name = "sites", description = "Site licence servers: linking, refreshing and unlinking a customer's own server (its licence key and fingerprint; no token), and the vendor's view of them (bearer token)."),
        (name = "usage", description = "Usage over time: a pool's session history, the usage charts' figures and the monthly casual usage reports (bearer token)."),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token created in the portal (Account → API tokens), `lic_…`.",
                    ))
                    .build(),
            ),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(application::routes())
        .merge(manage::routes())
        .merge(floating::routes())
        .merge(access::routes())
        .merge(borrow::routes())
        .merge(audit::routes())
        .merge(history::routes())
        .merge(webhooks::routes())
        .merge(sites::routes())
}

/// The OpenAPI document, as generated from the handlers (also printed by `server openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

pub fn routes() -> Router<AppState> {
    let (router, doc) = api_router().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    router
        .route(
            OPENAPI_PATH,
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route("/api/{*rest}", axum::routing::any(not_found))
}

/// Every problem an endpoint may answer with, for the document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Problems {
    /// The request could not be read (malformed JSON, a path or query parameter of the wrong type).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid bearer token (management endpoints).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// Not allowed: a read-only token writing, a client's token reaching another client, a rule.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// What the request is about was removed, expired or revoked.
    #[response(status = 410, content_type = "application/problem+json")]
    Gone(Problem),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// The input breaks a rule; `field` names the field.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Too many activations or removals of a licence; `Retry-After` says when to try again.
    #[response(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Problem),
    /// The database cannot be reached for a moment (`/problems/unavailable`); `Retry-After`
    /// says when to try again, here or at another replica.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// An API error, written as problem+json. Server-side causes are logged, never sent. Its kind
/// decides the status and the problem type (`protocol::problem`), once for every boundary.
pub struct ApiError {
    kind: ProblemKind,
    /// The kind's status, except for a body too large (413, a bad request).
    status: StatusCode,
    detail: String,
    field: Option<String>,
    retry_after: Option<i64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            status: self.status.as_u16(),
            field: self.field,
            retry_after: self.retry_after,
            ..Problem::new(self.kind, self.detail)
        };
        let mut res = (self.status, Json(body)).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"licentia\""),
            );
        }
        res
    }
}

impl ApiError {
    pub(crate) fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status: StatusCode::from_u16(kind.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    fn internal() -> Self {
        Self::new(
            ProblemKind::Internal,
            "Something went wrong on the server; it has been logged.",
        )
    }

    /// A request that could not be read (`/problems/bad-request`), with the status its
    /// rejection chose: 400, 413 too large, 415 not JSON, 422 a field missing or of the wrong
    /// type.
    fn bad_request(status: StatusCode, detail: String) -> Self {
        Self {
            status,
            ..Self::new(ProblemKind::BadRequest, detail)
        }
    }
}

impl From<licensing::Error> for ApiError {
    fn from(e: licensing::Error) -> Self {
        use licensing::Error as E;
        let kind = e.kind();
        match e {
            E::Invalid(i) => Self {
                field: Some(i.field.to_owned()),
                ..Self::new(kind, i.message)
            },
            E::NotFound(what) => Self::new(kind, format!("{what} was not found.")),
            E::Conflict(m)
            | E::Refused(_, m)
            | E::ActivatedElsewhere(m)
            | E::Gone(m)
            | E::Revoked(m)
            | E::KeyRetired(m)
            | E::PoolKeyReplaced(m)
            | E::LeaseExpired(m) => Self::new(kind, m),
            E::RateLimited {
                message,
                retry_after_secs,
            }
            | E::TooManyRequests {
                message,
                retry_after_secs,
            } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(kind, message)
            },
            E::NotSignedIn | E::BadCredentials => {
                Self::new(kind, "Send a valid API token: Authorization: Bearer lic_…")
            }
            E::NotAllowed => Self::new(kind, "This token is not allowed to do this."),
            E::Throttled { retry_after_secs } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(kind, format!("Try again in {retry_after_secs} seconds."))
            },
            E::Busy { retry_after_secs } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    kind,
                    format!("The server is busy checking passwords: try again in {retry_after_secs} seconds."),
                )
            },
            E::SetupLink(why) => Self::new(kind, why),
            E::Database(cause) => {
                tracing::error!(error = %cause, "database error in the Web API");
                Self::internal()
            }
            E::Unavailable(cause) => {
                tracing::warn!(error = %cause, "the database is unavailable (Web API)");
                Self {
                    retry_after: Some(licensing::error::UNAVAILABLE_RETRY_SECS),
                    ..Self::new(
                        kind,
                        "The server cannot reach its database at the moment: try again in a few seconds.",
                    )
                }
            }
            E::Internal(cause) => {
                tracing::error!(error = %cause, "internal error in the Web API");
                Self::internal()
            }
        }
    }
}

/// Text with a NUL character cannot be stored (PostgreSQL refuses it): it is refused up front.
fn nul_refused() -> ApiError {
    ApiError::new(ProblemKind::Invalid, "Text may not contain NUL characters.")
}

/// A JSON data error (a field missing or of the wrong type) in the words of what refused it:
/// without axum's preamble and serde's position (`… at line 1 column 80`).
fn readable_rejection(text: &str) -> String {
    let text = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(text);
    let text = match text.rsplit_once(" at line ") {
        Some((head, tail))
            if tail
                .split(' ')
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok()) =>
        {
            head
        }
        _ => text,
    };
    text.strip_prefix(".: ").unwrap_or(text).to_owned()
}

/// `Json<T>` whose rejections (wrong content type, malformed JSON, missing fields) are problems too.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|e| ApiError::bad_request(e.status(), e.body_text()))?;
        if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
            return Err(nul_refused());
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection @ JsonRejection::JsonDataError(_)) => Err(ApiError::bad_request(
                StatusCode::UNPROCESSABLE_ENTITY,
                readable_rejection(&rejection.body_text()),
            )),
            Err(rejection) => Err(ApiError::bad_request(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

/// An axum extractor of the URI that answers its rejections as problem+json and refuses an
/// escaped NUL in the part it reads (PostgreSQL cannot store or compare NUL characters).
macro_rules! uri_extractor {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $part:expr, $refusal:expr) => {
        $(#[$doc])*
        pub struct $name<T>(pub T);

        impl<S, T> FromRequestParts<S> for $name<T>
        where
            T: DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                let part: fn(&Parts) -> Option<&str> = $part;
                if part(parts).is_some_and(|text| text.contains("%00")) {
                    return Err($refusal);
                }
                axum::extract::$inner::<T>::from_request_parts(parts, state)
                    .await
                    .map(|extracted| $name(extracted.0))
                    .map_err(|e| ApiError::bad_request(StatusCode::BAD_REQUEST, e.body_text()))
            }
        }
    };
}

uri_extractor!(
    /// `Path<T>` with problem+json rejections.
    ApiPath,
    Path,
    |parts| Some(parts.uri.path()),
    ApiError::bad_request(
        StatusCode::BAD_REQUEST,
        "A path may not contain NUL characters.".into()
    )
);

uri_extractor!(
    /// `Query<T>` with problem+json rejections.
    ApiQuery,
    Query,
    |parts| parts.uri.query(),
    nul_refused()
);

async fn holder(parts: &mut Parts, state: &AppState) -> Result<TokenHolder, ApiError> {
    if let Some(h) = parts.extensions.get::<TokenHolder>() {
        return Ok(h.clone());
    }
    let secret = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(licensing::Error::NotSignedIn)?;
    let h = state.services.token_holder(secret).await?;
    // A token acts as its owner: an administrator who must set up a second factor first has
    // nothing else the API could do for them.
    if h.user.must_set_up_second_factor {
        return Err(ApiError::new(
            ProblemKind::Forbidden,
            licensing::accounts::second_factor::SET_UP_FIRST,
        ));
    }
    parts.extensions.insert(h.clone());
    Ok(h)
}

/// What the caller's token may see of the secrets that act (licence keys, serials,
/// fingerprints, pool keys): all of them with a read-write token, masked with a read-only one —
/// reading is not a licence to activate, remove activations or drain pools. Seeing them whole
/// is recorded in the audit log (`secret.reveal`, naming the request).
pub enum Sight {
    /// Whole, and recorded once shown: who, and the request that showed them.
    Full {
        services: Licentia,
        holder: Box<CurrentUser>,
        request: String,
    },
    Masked,
}

impl Sight {
    /// `value`, its secrets masked if this sight does not reach them; shown whole, it is
    /// recorded in the audit log (an answer that fails shows nothing and is not).
    pub async fn show<T: protocol::redact::Redact>(
        self,
        mut value: T,
    ) -> Result<Json<T>, ApiError> {
        if self.is_masked() {
            value.redact();
        }
        self.record().await?;
        Ok(Json(value))
    }

    /// A page of a list, its secrets shown as `show` would.
    pub async fn show_page<T>(self, asked: &ApiPage, page: Paged<T>) -> Result<Listing<T>, ApiError>
    where
        Vec<T>: protocol::redact::Redact,
    {
        let Json(items) = self.show(page.items).await?;
        Ok(asked.answer(Paged {
            items,
            next: page.next,
        }))
    }

    /// Records that secrets were shown whole (an export), when this sight shows them.
    pub async fn record(self) -> Result<(), ApiError> {
        if let Sight::Full {
            services,
            holder,
            request,
        } = self
        {
            services.record_reveal(&holder, &request).await?;
        }
        Ok(())
    }

    pub fn is_masked(&self) -> bool {
        matches!(self, Sight::Masked)
    }
}

/// The page of a list a request asks for (`limit`, `after`; `protocol::page`), and where the
/// request was made, for the link to the next page.
pub struct ApiPage {
    pub page: Page,
    /// The request's path and query.
    here: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ApiPage {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiQuery(q) = ApiQuery::<PageQuery>::from_request_parts(parts, state).await?;
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        Ok(ApiPage {
            page: Page::asked(q)?,
            here: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
        })
    }
}

impl ApiPage {
    /// `page` as the answer: its items, and a `Link` to the next page when there is one.
    pub fn answer<T>(&self, page: Paged<T>) -> Listing<T> {
        let next = page
            .next
            .map(|cursor| next_link(&self.here, "after", &cursor));
        Listing {
            items: page.items,
            next,
        }
    }

    /// A list built in memory, paged by `key` (its order).
    pub fn slice<T, K>(&self, items: Vec<T>, key: impl Fn(&T) -> K) -> Result<Listing<T>, ApiError>
    where
        K: serde::Serialize + DeserializeOwned + Ord,
    {
        Ok(self.answer(self.page.slice(items, key)?))
    }
}

/// The `Link` to the next page: the request `here` (path and query) with `param` set to
/// `value`. The query is decoded and encoded again, so the link is plain ASCII whatever the
/// request held (a client may send UTF-8 unencoded) and names `param` once however it was
/// spelt; the path is percent-encoded likewise.
pub fn next_link(here: &str, param: &str, value: &str) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.retain(|(name, _)| name != param);
    pairs.push((param.to_owned(), value.to_owned()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let mut path_ascii = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            0x21..=0x7e if b != b'<' && b != b'>' => path_ascii.push(char::from(b)),
            _ => path_ascii.push_str(&format!("%{b:02X}")),
        }
    }
    format!("<{path_ascii}?{query}>; rel=\"next\"")
}

/// A page of a list as the answer: a JSON array, and `Link: <…>; rel="next"` (RFC 8288) when
/// more items follow.
pub struct Listing<T> {
    items: Vec<T>,
    next: Option<String>,
}

impl<T: serde::Serialize> IntoResponse for Listing<T> {
    fn into_response(self) -> Response {
        linked(Json(self.items), self.next)
    }
}

/// `body` as the answer, with the `Link` to the next page when there is one.
pub fn linked(body: impl IntoResponse, next: Option<String>) -> Response {
    let mut res = body.into_response();
    if let Some(link) = next {
        match HeaderValue::from_str(&link) {
            Ok(value) => {
                res.headers_mut().insert(header::LINK, value);
            }
            // `next_link` makes plain ASCII; a page without its link would read as the last.
            Err(_) => {
                tracing::error!(link, "a next-page link could not be sent");
                return ApiError::internal().into_response();
            }
        }
    }
    res
}

impl FromRequestParts<AppState> for Sight {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let holder = holder(parts, state).await?;
        if !holder.can_write {
            return Ok(Sight::Masked);
        }
        Ok(Sight::Full {
            services: state.services.clone(),
            holder: Box::new(holder.user),
            request: format!("{} {}", parts.method, parts.uri.path()),
        })
    }
}

/// The caller's network address (the proxy's `X-Forwarded-For` entry when trusted).
pub struct CallerAddress(pub String);

impl FromRequestParts<AppState> for CallerAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(CallerAddress(state.web.client_address(parts)))
    }
}

/// A caller authenticated with an API token (read-only or read-write).
pub struct Reader(pub CurrentUser);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Reader(holder(parts, state).await?.user))
    }
}

/// A caller authenticated with a read-write API token.
pub struct Writer(pub CurrentUser);

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let h = holder(parts, state).await?;
        if !h.can_write {
            return Err(ApiError::new(
                ProblemKind::ReadOnlyToken,
                "This API token is read-only: create a read-write token to make changes.",
            ));
        }
        Ok(Writer(h.user))
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ProblemKind::NotFound, "There is no such API endpoint.")
}

/// The portal's CSV download of a batch: the same export, for a signed-in administrator.
pub async fn batch_csv_download(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let user = session_user(&state, &headers).await?;
    let csv = state
        .services
        .serials_csv(&user, licensing::web::SerialQuery::of_batch(id))
        .await?;
    manage::csv_response(csv, id)
}

/// The portal's CSV downloads of its lists, as the signed-in user sees them (secrets whole, as
/// the portal shows them): `/clients.csv`, `/orders.csv?client_id=`, `/orders/{id}/licences.csv`,
/// `/serials.csv?batch_id=&product_id=&search=` and `/usage.csv`.
pub mod downloads {
    use super::{manage, session_user, ApiError, ApiPath, ApiQuery};
    use crate::AppState;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::response::Response;

    pub async fn clients(
        State(state): State<AppState>,
        headers: HeaderMap,
        ApiQuery(f): ApiQuery<protocol::account::ClientFilter>,
    ) -> Result<Response, ApiError> {
        let user = session_user(&state, &headers).await?;
        manage::csv_file(state.services.clients_csv(&user, &f).await?, "clients.csv")
    }

    pub async fn orders(
        State(state): State<AppState>,
        headers: HeaderMap,
        ApiQuery(f): ApiQuery<protocol::catalog::OrderFilter>,
    ) -> Result<Response, ApiError> {
        let user = session_user(&state, &headers).await?;
        manage::csv_file(state.services.orders_csv(&user, &f).await?, "orders.csv")
    }

    /// The licences list, filtered.
    pub async fn licences(
        State(state): State<AppState>,
        headers: HeaderMap,
        ApiQuery(filter): ApiQuery<protocol::catalog::LicenceFilter>,
    ) -> Result<Response, ApiError> {
        let user = session_user(&state, &headers).await?;
        let csv = state.services.licences_csv(&user, &filter, true).await?;
        manage::csv_file(csv, "licences.csv")
    }

    pub async fn order_licences(
        State(state): State<AppState>,
        headers: HeaderMap,
        ApiPath(id): ApiPath<i64>,
    ) -> Result<Response, ApiError> {
        let user = session_user(&state, &headers).await?;
        let csv = state.services.order_licences_csv(&user, id, true).await?;
        manage::csv_file(csv, &format!("order-{id}-licences.csv"))
    }

    pub async fn serials(
        State(state): State<AppState>,
        headers: HeaderMap,
        ApiQuery(f): ApiQuery<manage::SerialFilter>,
    ) -> Result<Response, ApiError> {
        let user = session_user(&state, &headers).await?;
        manage::csv_file(
            state.services.serials_csv(&user, f.into()).await?,
            "serials.csv",
        )
    }

    pub async fn usage(
        State(state): State<AppState>,
        headers: HeaderMap,
    ) -> Result<Response, ApiError> {
        let user = session_user(&state, &headers).await?;
        manage::csv_file(state.services.usage_csv(&user, true).await?, "usage.csv")
    }
}

/// The portal's CSV download of the audit log (the signed-in user's view of it, filtered).
pub async fn audit_csv_download(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    ApiQuery(q): ApiQuery<protocol::audit::AuditQuery>,
) -> Result<Response, ApiError> {
    let user = session_user(&state, &headers).await?;
    manage::csv_file(state.services.audit_csv(&user, &q).await?, "audit-log.csv")
}

/// The portal's CSV download of the activations list (the signed-in user's view, filtered).
pub async fn activations_csv_download(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    ApiQuery(filter): ApiQuery<protocol::catalog::ActivationFilter>,
) -> Result<Response, ApiError> {
    let user = session_user(&state, &headers).await?;
    let csv = state.services.activations_csv(&user, &filter, true).await?;
    manage::csv_file(csv, "activations.csv")
}

/// The portal's CSV download of a pool's session history (the signed-in user's view, filtered).
pub async fn history_csv_download(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<protocol::history::SessionQuery>,
) -> Result<Response, ApiError> {
    let user = session_user(&state, &headers).await?;
    let csv = state.services.session_history_csv(&user, id, &q).await?;
    manage::csv_file(csv, &format!("pool-{id}-history.csv"))
}

/// The portal's CSV download of a pool's chart figures.
pub async fn pool_chart_csv_download(
    state: axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath<i64>,
    q: ApiQuery<protocol::history::ChartQuery>,
) -> Result<Response, ApiError> {
    chart_csv(state, headers, Some(id), q).await
}

/// The portal's CSV download of the overview's chart figures.
pub async fn chart_csv_download(
    state: axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    q: ApiQuery<protocol::history::ChartQuery>,
) -> Result<Response, ApiError> {
    chart_csv(state, headers, None, q).await
}

async fn chart_csv(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    pool_id: Option<i64>,
    ApiQuery(q): ApiQuery<protocol::history::ChartQuery>,
) -> Result<Response, ApiError> {
    let user = session_user(&state, &headers).await?;
    let period = q.period().map_err(licensing::Error::from)?;
    let csv = state
        .services
        .usage_chart_csv(&user, pool_id, period)
        .await?;
    let name = match pool_id {
        Some(id) => format!("pool-{id}-usage-{}.csv", period.code()),
        None => format!("usage-{}.csv", period.code()),
    };
    manage::csv_file(csv, &name)
}

/// The portal's download of a month's casual usage report, as CSV or JSON (`format`).
pub async fn casual_report_download(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    ApiPath((month, format)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let user = session_user(&state, &headers).await?;
    let month = month.trim();
    match format.as_str() {
        "report.csv" => manage::csv_file(
            state.services.casual_report_csv(&user, month).await?,
            &format!("casual-usage-{month}.csv"),
        ),
        "report.json" => {
            let report = state.services.casual_report(&user, month).await?;
            let mut res = Json(report).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"casual-usage-{month}.json\""
            )) {
                res.headers_mut()
                    .insert(axum::http::header::CONTENT_DISPOSITION, v);
            }
            Ok(res)
        }
        _ => Err(not_found().await),
    }
}

/// The user of the portal session the request's cookie names.
async fn session_user(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<CurrentUser, ApiError> {
    let token = state
        .web
        .session_token(headers)
        .ok_or(licensing::Error::NotSignedIn)?;
    Ok(state
        .services
        .session_user(&token)
        .await?
        .ok_or(licensing::Error::NotSignedIn)?)
}

/// Services, for handlers that need only them.
type Services = axum::extract::State<Licentia>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_the_filters_and_replaces_the_cursor() {
        assert_eq!(
            next_link(
                "/api/v1/orders?client_id=3&limit=2&after=old",
                "after",
                "new_-1"
            ),
            "</api/v1/orders?client_id=3&limit=2&after=new_-1>; rel=\"next\""
        );
        assert_eq!(
            next_link("/api/v1/clients", "after", "c"),
            "</api/v1/clients?after=c>; rel=\"next\""
        );
        // However `after` was spelt, the link names it once.
        assert_eq!(
            next_link("/api/v1/orders?%61fter=old&limit=1", "after", "new"),
            "</api/v1/orders?limit=1&after=new>; rel=\"next\""
        );
    }

    #[test]
    fn the_next_link_is_ascii_whatever_the_request_held() {
        // Clients may send UTF-8 unencoded in the path and query (curl does).
        let link = next_link(
            "/api/v1/pools/1/usage/Vé/F?search=é ü&limit=1",
            "after",
            "x",
        );
        assert_eq!(
            link,
            "</api/v1/pools/1/usage/V%C3%A9/F?search=%C3%A9+%C3%BC&limit=1&after=x>; rel=\"next\""
        );
        assert!(HeaderValue::from_str(&link).is_ok());
    }
}
