//! The Licentia server: builds the services from the configuration, serves the portal (rendered
//! by Leptos) and the HTTP endpoints, and runs the background jobs beside them.

mod api;
pub mod config;
mod guards;
mod jobs;
mod metrics;
pub mod telemetry;
pub mod webhooks;

use anyhow::Context;
use app::ssr::WebSettings;
use app::{shell, App};
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use config::Config;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use licensing::{Clock, Database, Licentia};
use secrecy::ExposeSecret;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The Web API's OpenAPI document as pretty JSON (what `/api/v1/openapi.json` serves).
pub fn openapi_json() -> anyhow::Result<String> {
    Ok(api::openapi().to_pretty_json()?)
}

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub services: Licentia,
    pub web: WebSettings,
    pub origins: guards::Origins,
    /// What this process counted, for `/metrics`.
    pub metrics: metrics::Metrics,
    pub metrics_access: metrics::Access,
    /// The database pool's most connections (a metric).
    pub db_max: u32,
}

/// Connects to the database and applies the migrations; a failure says what went wrong.
pub async fn open_services(config: &Config, clock: Clock) -> anyhow::Result<Licentia> {
    let master_key = config.master_key.load()?;
    let db = Database::connect(&config.database_url, config.db_max_connections).await?;
    db.migrate().await?;
    let issuer = config.public_url_for(config.listen);
    let services = Licentia::new(db, config.auth.clone(), clock, master_key, &issuer);
    let services = match &config.mailer {
        Some(mailer) => services.with_mailer(mailer.clone()),
        None => services,
    };
    // The master key must open the keys already stored before anything is sealed under it.
    services
        .check_signing_keys()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    services
        .ensure_signing_key()
        .await
        .map_err(|e| anyhow::anyhow!("cannot prepare the activation-code signing key: {e}"))?;
    services
        .ensure_pool_keys_hashed()
        .await
        .map_err(|e| anyhow::anyhow!("cannot turn the stored pool keys into digests: {e}"))?;
    Ok(services)
}

/// A server bound to its port, ready to run.
pub struct Server {
    listener: TcpListener,
    router: Router,
    pub services: Licentia,
    pub addr: SocketAddr,
    jobs: jobs::JobSettings,
    /// How webhook deliveries go out from here, if they do.
    webhooks: Option<webhooks::Sender>,
    /// The metrics' own address and what serves it, when configured.
    metrics: Option<(TcpListener, Router)>,
}

impl Server {
    pub async fn bind(config: &Config, services: Licentia) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let leptos_options = LeptosOptions::builder()
            .output_name(app::OUTPUT_NAME)
            .site_root(config.site_root.to_string_lossy().as_ref())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build();
        let state = AppState {
            leptos_options,
            services: services.clone(),
            web: WebSettings {
                secure_cookies: config.secure_cookies(),
                trust_forwarded_for: config.trust_forwarded_for,
                session_max_age_secs: config.auth.session_absolute_secs,
            },
            origins: guards::Origins::from_public_url(config.public_url.as_deref()),
            metrics: metrics::Metrics::default(),
            metrics_access: metrics::Access {
                token: config
                    .metrics_token
                    .as_ref()
                    .map(|t| t.expose_secret().into()),
            },
            db_max: config.db_max_connections,
        };
        let metrics = match config.metrics_listen {
            Some(at) => Some(
                TcpListener::bind(at)
                    .await
                    .with_context(|| format!("cannot listen for the metrics on {at}"))?,
            ),
            None => None,
        };
        let metrics = metrics.map(|listener| (listener, metrics_router(state.clone())));
        Ok(Self {
            metrics,
            listener,
            router: router(state, &config.site_root),
            services,
            addr,
            jobs: config.jobs,
            webhooks: config.webhooks.clone(),
        })
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let jobs = tokio::spawn(jobs::run(
            self.services.clone(),
            self.jobs,
            self.webhooks.clone(),
        ));
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics address stopped serving");
                }
            })
        });
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        jobs.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        self.services.db().close().await;
        served.context("the HTTP server failed")
    }
}

/// The portal's routes, listed once per process. Listing renders the app with resource loading
/// switched off by a process-wide flag (leptos_router's `SuppressResourceLoad`); a page rendering
/// meanwhile on another server of the same process (the integration tests run many) would have
/// its resources wait forever, so no server lists them again while others serve.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

fn router(state: AppState, site_root: &std::path::Path) -> Router {
    let routes = route_list();
    let context = {
        let services = state.services.clone();
        let web = state.web.clone();
        move || {
            provide_context(services.clone());
            provide_context(web.clone());
        }
    };
    let options = state.leptos_options.clone();
    // Browsers remember to use https for a year, once they have reached the server over it.
    let hsts = state
        .web
        .secure_cookies
        .then(|| HeaderValue::from_static("max-age=31536000"));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::scrape_with_token))
        .route(
            "/admin/serial-batches/{id}/serials.csv",
            get(api::batch_csv_download),
        )
        .route("/audit.csv", get(api::audit_csv_download))
        .route("/activations.csv", get(api::activations_csv_download))
        .route("/licences.csv", get(api::downloads::licences))
        .route("/clients.csv", get(api::downloads::clients))
        .route("/orders.csv", get(api::downloads::orders))
        .route(
            "/orders/{id}/licences.csv",
            get(api::downloads::order_licences),
        )
        .route("/serials.csv", get(api::downloads::serials))
        .route("/usage.csv", get(api::downloads::usage))
        .route("/pools/{id}/history.csv", get(api::history_csv_download))
        .route(
            "/pools/{id}/usage-history.csv",
            get(api::pool_chart_csv_download),
        )
        .route("/usage-history.csv", get(api::chart_csv_download))
        .route(
            "/casual-reports/{month}/{format}",
            get(api::casual_report_download),
        )
        .merge(api::routes())
        // The WebAssembly bundle, script and stylesheet, compressed ahead of time by the build
        // (brotli and gzip: whichever the browser takes).
        .nest_service(
            "/pkg",
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-cache"),
                ))
                // Which precompressed file was sent depends on Accept-Encoding: caches must know.
                .layer(SetResponseHeaderLayer::appending(
                    header::VARY,
                    HeaderValue::from_static("accept-encoding"),
                ))
                .service(
                    ServeDir::new(site_root.join("pkg"))
                        .precompressed_br()
                        .precompressed_gzip(),
                ),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(axum::middleware::from_fn(rpc_error_status))
        .layer(axum::middleware::from_fn(guards::refuse_nul_in_rpc))
        .layer(axum::middleware::from_fn_with_state(
            state.origins.clone(),
            guards::refuse_cross_site,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            area_gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit_origin,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        // Pages get a policy naming their scripts' nonce; everything else runs nothing.
        .layer(axum::middleware::from_fn(guards::page_policy))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(guards::STRICT_POLICY),
        ))
        // Pages and answers are about someone: no cache keeps them (the bundle says otherwise).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            hsts,
        ))
        // Every other text answer (pages, JSON) compressed on the fly; already-compressed files
        // pass through as they are.
        .layer(CompressionLayer::new().br(true).gzip(true))
        // No request holds a connection, a database connection or a hashing slot for ever.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// The metrics' own address: `/metrics` without a token, nothing else.
fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move {
                metrics::scrape(&s.metrics, &s.services, s.db_max).await
            }),
        )
        .with_state(state)
}

/// The longest any request may take before the server answers 503 in its place.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Page loads of the signed-in areas: decides the redirect to sign in, or the 403 for the other
/// role, before the page renders. Pages stream, so the status cannot wait for the page to know
/// who asks; the pages themselves show the same outcome (and do for client-side navigation).
async fn area_gate(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use protocol::account::Role;
    let path = req.uri().path();
    let area = if path == "/admin" || path.starts_with("/admin/") {
        Some(Role::Admin)
    } else if path == "/client" || path.starts_with("/client/") {
        Some(Role::Client)
    } else if path == "/" {
        None
    } else {
        return next.run(req).await;
    };
    let user = match state.web.session_token(req.headers()) {
        Some(token) => match state.services.session_user(&token).await {
            Ok(user) => user,
            Err(e) => {
                tracing::error!(error = %e, "cannot look up the session of a page load");
                None
            }
        },
        None => None,
    };
    let to = |location: &'static str| {
        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
    };
    match (area, user) {
        (None, Some(u)) => to(app::server_fns::accounts::home_of(u.role)),
        (_, None) => to("/login"),
        (Some(role), Some(u)) if u.role != role => {
            let mut res = next.run(req).await;
            *res.status_mut() = StatusCode::FORBIDDEN;
            res
        }
        _ => next.run(req).await,
    }
}

/// Marks the request for the audit log: the portal or the API, and the caller's address. Every
/// entry the services add while serving it says so.
async fn audit_origin(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use protocol::audit::Channel;
    let channel = if req.uri().path().starts_with("/api/") {
        Channel::Api
    } else {
        Channel::Portal
    };
    let (parts, body) = req.into_parts();
    let address = state.web.client_address(&parts);
    let req = axum::extract::Request::from_parts(parts, body);
    licensing::audit::Origin::new(channel, Some(address))
        .scope(next.run(req))
        .await
}

/// Server functions answer every error with 500; this gives each error its own status (401, 403,
/// 422, …), taken from the error itself, so clients and logs can tell them apart, and a
/// `Retry-After` to the ones that say when to try again.
async fn rpc_error_status(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_rpc = req.uri().path().starts_with("/rpc/");
    let res = next.run(req).await;
    if !is_rpc || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    if let Ok(err) = serde_json::from_slice::<app::error::PortalError>(&bytes) {
        parts.status =
            StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(secs) = err.retry_after_secs() {
            parts
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// `GET /healthz`: 200 when the database answers, 503 otherwise.
async fn healthz(State(services): State<Licentia>) -> Response {
    // A load balancer's probe waits a short while; a database that has not answered in 2 s
    // is as good as away.
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), services.db().ping());
    let failure = match ping.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer within 2 s".to_owned()),
    };
    match failure {
        None => Json(serde_json::json!({ "status": "ok", "database": "ok" })).into_response(),
        Some(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(
                    header::RETRY_AFTER,
                    HeaderValue::from(licensing::error::UNAVAILABLE_RETRY_SECS),
                )],
                Json(serde_json::json!({ "status": "unavailable", "database": "unreachable" })),
            )
                .into_response()
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
