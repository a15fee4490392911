//! Server-side plumbing for the server functions: the services, who is calling, the session cookie
//! and the caller's address. Every server function goes through `caller()` or `admin()`.

use crate::error::PortalError;
use http::header::{COOKIE, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use licensing::{CurrentUser, Licentia, Role};
use std::net::SocketAddr;

/// How the web layer is deployed: decided by the server at start and provided as context.
#[derive(Clone, Debug, Default)]
pub struct WebSettings {
    /// Served over TLS (directly or by a proxy): cookies get `Secure` and the `__Host-` prefix.
    pub secure_cookies: bool,
    /// Take the caller's address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// A session cookie's lifetime: the session's absolute timeout.
    pub session_max_age_secs: i64,
}

impl WebSettings {
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-licentia_session"
        } else {
            "licentia_session"
        }
    }

    /// The cookie that holds a right password's ticket while its second factor is asked.
    pub fn challenge_cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-licentia_challenge"
        } else {
            "licentia_challenge"
        }
    }

    fn cookie(&self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
    }

    /// The session token from a request's `Cookie` headers. Malformed headers and cookies are
    /// ignored: they mean "not signed in", never an error.
    pub fn session_token(&self, headers: &HeaderMap) -> Option<String> {
        self.cookie_value(headers, self.cookie_name())
    }

    /// The value of the cookie `name`, if the request has one.
    fn cookie_value(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The caller's network address, for sign-in throttling and the session record.
    pub fn client_address(&self, parts: &Parts) -> String {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip());
        let forwarded = self
            .trust_forwarded_for
            .then(|| forwarded_for(&parts.headers))
            .flatten();
        forwarded
            .or(peer)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// The address the proxy in front saw, from `X-Forwarded-For`: the last entry of the last such
/// header (the proxy appends — in the same header or in one of its own — so anything before it
/// is whatever the caller wrote). An entry that is not an address (`ip:port` is read as its
/// address) counts as none, so the peer's address is used instead: a caller cannot make up a
/// new group for every request.
fn forwarded_for(headers: &HeaderMap) -> Option<std::net::IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim();
    last.parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The Content-Security-Policy of the portal's pages: scripts only from the server and the
/// page's own inline hydration scripts (by the nonce leptos gives each response), WebAssembly
/// compiled, no other inline code or style, never framed. (The server sets it: it reads the
/// nonce from the page's head.)
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

pub fn services() -> Result<Licentia, PortalError> {
    use_context::<Licentia>().ok_or_else(|| {
        tracing::error!("the services are missing from the server function context");
        PortalError::Server
    })
}

fn settings() -> WebSettings {
    use_context::<WebSettings>().unwrap_or_default()
}

/// The session token the caller presented, if any.
pub fn session_token() -> Option<String> {
    let parts = use_context::<Parts>()?;
    settings().session_token(&parts.headers)
}

pub fn client_address() -> String {
    use_context::<Parts>()
        .map(|p| settings().client_address(&p))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The ticket of a sign-in waiting for its second factor, if any.
pub fn challenge_ticket() -> Option<String> {
    let parts = use_context::<Parts>()?;
    let settings = settings();
    settings.cookie_value(&parts.headers, settings.challenge_cookie_name())
}

/// Sets (or, with an empty value and no age, clears) the challenge cookie.
pub fn set_challenge_cookie(ticket: &str, max_age: i64) {
    let settings = settings();
    add_named_cookie(settings.challenge_cookie_name(), ticket, max_age);
}

fn add_cookie(value: &str, max_age: i64) {
    add_named_cookie(settings().cookie_name(), value, max_age);
}

fn add_named_cookie(name: &str, value: &str, max_age: i64) {
    let cookie = settings().cookie(name, value, max_age);
    match (
        use_context::<ResponseOptions>(),
        HeaderValue::from_str(&cookie),
    ) {
        (Some(res), Ok(v)) => res.append_header(SET_COOKIE, v),
        _ => tracing::error!("could not set the session cookie"),
    }
}

pub fn set_session_cookie(token: &str) {
    add_cookie(token, settings().session_max_age_secs);
}

pub fn clear_session_cookie() {
    add_cookie("", 0);
}

/// The signed-in caller, or `NotSignedIn` (HTTP 401). An administrator who must set up a
/// second factor first (the server requires one) is refused everything but that
/// (`caller_setting_up`).
pub async fn caller() -> Result<(Licentia, CurrentUser), PortalError> {
    let (services, user) = caller_setting_up().await?;
    if user.must_set_up_second_factor {
        return Err(PortalError::Refused(
            licensing::accounts::second_factor::SET_UP_FIRST.to_owned(),
        ));
    }
    Ok((services, user))
}

/// The signed-in caller, even one who must set up a second factor before anything else: for
/// their own account's functions.
pub async fn caller_setting_up() -> Result<(Licentia, CurrentUser), PortalError> {
    let services = services()?;
    let user = match session_token() {
        Some(token) => services.session_user(&token).await?,
        None => None,
    };
    match user {
        Some(user) => Ok((services, user)),
        None => Err(PortalError::NotSignedIn),
    }
}

/// The signed-in caller if an administrator, else `NotAllowed` (HTTP 403).
pub async fn admin() -> Result<(Licentia, CurrentUser), PortalError> {
    let (services, user) = caller().await?;
    if user.role == Role::Admin {
        Ok((services, user))
    } else {
        tracing::warn!(
            user_id = user.id,
            "a client user called an administrator function"
        );
        Err(PortalError::NotAllowed)
    }
}

/// Maps the domain's errors to the portal's; causes of server-side failures go to the log only.
/// (The HTTP status follows from the variant: see `PortalError::status`.)
impl From<licensing::Error> for PortalError {
    fn from(e: licensing::Error) -> Self {
        use licensing::Error as E;
        match e {
            E::Invalid(i) => i.into(),
            E::NotFound(what) => PortalError::NotFound(what.to_owned()),
            E::Conflict(m) | E::ActivatedElsewhere(m) => PortalError::Conflict(m),
            E::Refused(_, m) => PortalError::Refused(m),
            E::Gone(m)
            | E::Revoked(m)
            | E::KeyRetired(m)
            | E::PoolKeyReplaced(m)
            | E::LeaseExpired(m) => PortalError::Gone(m),
            E::RateLimited { message, .. } | E::TooManyRequests { message, .. } => {
                PortalError::Refused(message)
            }
            E::NotSignedIn => PortalError::NotSignedIn,
            E::NotAllowed => PortalError::NotAllowed,
            E::BadCredentials => PortalError::BadCredentials,
            E::Throttled { retry_after_secs } => PortalError::Throttled { retry_after_secs },
            E::Busy { retry_after_secs } => PortalError::Busy { retry_after_secs },
            E::SetupLink(why) => PortalError::SetupLink(why.to_owned()),
            E::Database(cause) => {
                tracing::error!(error = %cause, "database error in a server function");
                PortalError::Server
            }
            E::Unavailable(cause) => {
                tracing::warn!(error = %cause, "the database is unavailable (portal)");
                PortalError::Unavailable {
                    retry_after_secs: licensing::error::UNAVAILABLE_RETRY_SECS,
                }
            }
            E::Internal(cause) => {
                tracing::error!(error = %cause, "internal error in a server function");
                PortalError::Server
            }
        }
    }
}

/// The page a portal table asks for: `limit` rows (`default` when not said) after `after`.
pub fn table_page(
    after: Option<String>,
    limit: Option<i64>,
    default: i64,
) -> Result<licensing::page::Page, PortalError> {
    Ok(licensing::page::Page::asked(protocol::page::PageQuery {
        limit: Some(limit.unwrap_or(default)),
        after,
    })?)
}

/// A page of a table with how many rows match in all.
pub fn table<T>(list: licensing::page::Paged<T>, total: i64) -> protocol::catalog::Table<T> {
    protocol::catalog::Table {
        rows: list.items,
        total,
        next: list.next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).expect("header"));
        }
        h
    }

    #[test]
    fn the_proxys_entry_is_the_last_one_and_must_be_an_address() {
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 198.51.100.7"),
        );
        assert_eq!(forwarded_for(&h), "198.51.100.7".parse().ok());
        // A proxy adding a header of its own after the caller's.
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert_eq!(forwarded_for(&h), "203.0.113.9".parse().ok());
        let one = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", HeaderValue::from_static(v));
            forwarded_for(&h)
        };
        assert_eq!(one("203.0.113.9:4711"), "203.0.113.9".parse().ok());
        assert_eq!(one("[2001:db8::1]:443"), "2001:db8::1".parse().ok());
        assert_eq!(one("made-up-for-this-request"), None);
        assert_eq!(one(""), None);
    }

    #[test]
    fn the_page_policy_allows_no_inline_code_but_the_nonce() {
        let p = page_policy("abc");
        assert!(p.contains("'nonce-abc'") && p.contains("'wasm-unsafe-eval'"));
        assert!(!p.contains("unsafe-inline") && !p.contains("'unsafe-eval'"));
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let s = WebSettings::default();
        let h = headers(&["a=1; licentia_session=tok; b=2"]);
        assert_eq!(s.session_token(&h).as_deref(), Some("tok"));
        let h = headers(&["a=1", "licentia_session=\"quoted\""]);
        assert_eq!(s.session_token(&h).as_deref(), Some("quoted"));
    }

    #[test]
    fn malformed_cookies_mean_no_session() {
        let s = WebSettings::default();
        for c in [
            "",
            ";;;",
            "licentia_session",
            "licentia_session=",
            "=x",
            "other=1",
        ] {
            assert_eq!(s.session_token(&headers(&[c])), None, "{c:?}");
        }
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_bytes(b"licentia_session=\xff").expect("bytes"),
        );
        assert_eq!(s.session_token(&h), None);
    }

    #[test]
    fn secure_cookies_use_the_host_prefix() {
        let s = WebSettings {
            secure_cookies: true,
            ..Default::default()
        };
        let c = s.cookie(s.cookie_name(), "v", 60);
        assert!(c.starts_with("__Host-licentia_session=v; Path=/; HttpOnly; SameSite=Strict"));
        assert!(c.ends_with("; Secure"));
        let t = s.cookie(s.challenge_cookie_name(), "t", 300);
        assert!(t.starts_with("__Host-licentia_challenge=t; Path=/; HttpOnly; SameSite=Strict"));
        let plain = WebSettings::default().cookie("licentia_session", "v", 60);
        assert!(!plain.contains("Secure"));
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
    }
}
