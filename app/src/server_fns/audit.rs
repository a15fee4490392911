//! Server function of the audit log page (both roles): a page of entries, filtered. An
//! administrator reads every entry; a client user their own client's (the service decides).

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::audit::AuditPage;

#[cfg(feature = "ssr")]
use crate::ssr::caller;

/// Empty texts are no filter; `before` is the previous page's `next_before`.
#[server(prefix = "/rpc", endpoint = "audit_log")]
pub async fn audit_log(
    #[server(default)] action: String,
    #[server(default)] actor: String,
    #[server(default)] subject: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] before: Option<i64>,
) -> Result<AuditPage, PortalError> {
    let (services, user) = caller().await?;
    let text = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    let q = protocol::audit::AuditQuery {
        action: text(action),
        actor: text(actor),
        subject: text(subject),
        from: text(from),
        to: text(to),
        before,
        ..protocol::audit::AuditQuery::default()
    };
    Ok(services.audit_log(&user, &q).await?)
}
