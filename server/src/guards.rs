//! What every request passes before it reaches a page, a server function or an API handler:
//! cross-site requests refused, NUL characters kept out of forms, and the security headers.

use crate::api::ApiError;
use app::error::PortalError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::problem::ProblemKind;

/// Where the portal is served from, as browsers name it in `Origin`.
#[derive(Clone, Debug)]
pub struct Origins {
    /// `scheme://host[:port]` of the public URL, when one is configured; without it, a request's
    /// own `Host` is the origin it may come from.
    pub public: Option<String>,
}

impl Origins {
    pub fn from_public_url(public_url: Option<&str>) -> Self {
        Self {
            public: public_url.map(origin_of),
        }
    }
}

/// `scheme://authority` of a URL, lower-cased, without a path, a trailing slash or the
/// scheme's default port (browsers never send `:443` for https).
fn origin_of(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    let authority = authority
        .strip_suffix(default_port)
        .filter(|_| !default_port.is_empty())
        .unwrap_or(&authority);
    format!("{scheme}://{authority}")
}

/// Whether a state-changing request may go on, judged by what browsers send: `Origin` if present
/// (`null` never matches), else `Sec-Fetch-Site`. A request with neither did not come from a
/// browser's page (a CLI, an application, a script with its own credentials) and carries no
/// ambient cookie of a victim, so it goes on. Safe methods always go on.
pub fn same_site(
    method: &Method,
    headers: &HeaderMap,
    origins: &Origins,
) -> Result<(), &'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map(origin_of).unwrap_or_default();
        let allowed = match &origins.public {
            Some(public) => origin == *public,
            None => headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| {
                    origin == origin_of(&format!("http://{host}"))
                        || origin == origin_of(&format!("https://{host}"))
                }),
        };
        return if allowed { Ok(()) } else { Err("origin") };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin") | Some("none") => Ok(()),
        Some(_) => Err("sec-fetch-site"),
    }
}

const CROSS_SITE: &str = "This request came from another site and was refused: changes are only \
     accepted from the portal's own pages.";

/// Refuses state-changing requests sent by another site's page (cross-site request forgery,
/// login CSRF included): the portal's cookie is `SameSite=Strict` as well, but a browser is not
/// the only judge of what is the same site.
pub async fn refuse_cross_site(
    State(origins): State<Origins>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(by) = same_site(req.method(), req.headers(), &origins) {
        tracing::warn!(
            path = req.uri().path(),
            by,
            origin = ?req.headers().get(header::ORIGIN),
            "refused a cross-site request"
        );
        return if req.uri().path().starts_with("/rpc/") {
            portal_error(PortalError::Refused(CROSS_SITE.into()))
        } else {
            ApiError::new(ProblemKind::Forbidden, CROSS_SITE).into_response()
        };
    }
    next.run(req).await
}

fn portal_error(err: PortalError) -> Response {
    (
        StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST),
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&err).unwrap_or_default(),
    )
        .into_response()
}

/// Server functions' forms may not carry NUL characters (PostgreSQL cannot store them): refused
/// up front with the portal's usual error, for every function at once.
pub async fn refuse_nul_in_rpc(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/rpc/") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response();
    };
    let query_has_nul = parts.uri.query().is_some_and(|q| q.contains("%00"));
    if query_has_nul || bytes.contains(&0) || bytes.windows(3).any(|w| w == b"%00") {
        return portal_error(PortalError::Invalid {
            field: String::new(),
            message: "Text may not contain NUL characters.".into(),
        });
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Gives a portal page its Content-Security-Policy, naming the nonce leptos put on the page's
/// inline scripts (a fresh one per response). The nonce is read from the page's first bytes —
/// the head, with the hydration script, comes first — so the page still streams; a page whose
/// head holds no nonce gets a policy allowing no inline script at all.
pub async fn page_policy(req: Request, next: Next) -> Response {
    use futures_util::StreamExt;
    use http_body_util::BodyExt;
    let res = next.run(req).await;
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_html || res.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        return res;
    }
    let (mut parts, mut body) = res.into_parts();
    let mut head: Vec<axum::body::Bytes> = Vec::new();
    let mut text = String::new();
    let mut nonce = None;
    let mut failed = None;
    while nonce.is_none() && text.len() < HEAD_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    text.push_str(&String::from_utf8_lossy(&data));
                    head.push(data);
                    nonce = nonce_in(&text);
                }
            }
            Some(Err(e)) => {
                // Passed on as it came: the page's connection breaks rather than ending short.
                failed = Some(e);
                break;
            }
            None => break,
        }
    }
    let policy = app::ssr::page_policy(nonce.as_deref().unwrap_or("none-given"));
    if let Ok(value) = axum::http::HeaderValue::from_str(&policy) {
        parts.headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    let head = futures_util::stream::iter(head.into_iter().map(Ok::<_, axum::Error>));
    let body = match failed {
        Some(e) => axum::body::Body::from_stream(head.chain(futures_util::stream::iter([Err(e)]))),
        None => axum::body::Body::from_stream(head.chain(body.into_data_stream())),
    };
    Response::from_parts(parts, body)
}

/// How much of a page is read looking for its nonce before giving up.
const HEAD_LIMIT: usize = 64 * 1024;

/// The first `nonce="…"` of a page's text, if it is one leptos makes (base64url).
fn nonce_in(html: &str) -> Option<String> {
    let start = html.find("nonce=\"")? + "nonce=\"".len();
    let len = html[start..].find('"')?;
    let nonce = &html[start..start + len];
    let valid = !nonce.is_empty()
        && nonce.len() <= 64
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'='));
    valid.then(|| nonce.to_owned())
}

/// Everything that is not a page (JSON, files) runs nothing and is framed by nobody.
pub const STRICT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_pages_nonce_is_read_from_its_head() {
        let head = r#"<head><script type="module" nonce="K14Oot6fTr4hMRF5537qGw">x</script>"#;
        assert_eq!(nonce_in(head).as_deref(), Some("K14Oot6fTr4hMRF5537qGw"));
        assert_eq!(nonce_in("<head><script>"), None);
        assert_eq!(
            nonce_in(r#"nonce="a'b""#),
            None,
            "nothing that could break out"
        );
        assert_eq!(nonce_in(r#"nonce="half"#), None);
    }

    #[test]
    fn the_public_urls_origin_is_its_scheme_and_authority() {
        assert_eq!(
            origin_of("https://Licences.Example.com/portal/"),
            "https://licences.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(
            origin_of("https://lic.example.com:443/"),
            "https://lic.example.com"
        );
        assert_eq!(
            origin_of("http://lic.example.com:80"),
            "http://lic.example.com"
        );
        assert_eq!(
            origin_of("https://lic.example.com:8443"),
            "https://lic.example.com:8443"
        );
    }

    #[test]
    fn posts_from_the_portal_or_from_no_browser_go_on() {
        let public = Origins::from_public_url(Some("https://lic.example.com"));
        let post = Method::POST;
        assert!(same_site(
            &post,
            &headers(&[("origin", "https://lic.example.com")]),
            &public
        )
        .is_ok());
        assert!(same_site(&post, &headers(&[]), &public).is_ok());
        assert!(same_site(
            &post,
            &headers(&[("sec-fetch-site", "same-origin")]),
            &public
        )
        .is_ok());
        assert!(same_site(&post, &headers(&[("sec-fetch-site", "none")]), &public).is_ok());
        let by_host = Origins::from_public_url(None);
        let h = headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000"),
        ]);
        assert!(same_site(&post, &h, &by_host).is_ok());
    }

    #[test]
    fn posts_from_another_site_are_refused() {
        let public = Origins::from_public_url(Some("https://lic.example.com"));
        let post = Method::POST;
        for h in [
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://lic.example.com")]),
            headers(&[("origin", "https://lic.example.com.evil.example")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(same_site(&post, &h, &public).is_err(), "{h:?}");
            assert!(same_site(&Method::DELETE, &h, &public).is_err(), "{h:?}");
            assert!(same_site(&Method::GET, &h, &public).is_ok(), "{h:?}");
        }
        let by_host = Origins::from_public_url(None);
        let h = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:3000"),
        ]);
        assert!(same_site(&post, &h, &by_host).is_err());
        let no_host = headers(&[("origin", "http://127.0.0.1:3000")]);
        assert!(same_site(&post, &no_host, &by_host).is_err());
    }
}
