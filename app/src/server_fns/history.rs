//! Server functions of usage over time (both roles, for what they may read — the services
//! decide): a pool's session history, the usage charts and the casual usage reports.

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::history::{CasualReportSummary, SessionPage, UsageChart};

#[cfg(feature = "ssr")]
use crate::ssr::caller;

/// A page of a pool's session history. Empty texts are no filter; `before` is the previous
/// page's `next_before`.
#[server(prefix = "/rpc", endpoint = "session_history")]
pub async fn session_history(
    pool_id: i64,
    #[server(default)] feature: String,
    #[server(default)] user: String,
    #[server(default)] host: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] before: Option<i64>,
) -> Result<SessionPage, PortalError> {
    let (services, caller_user) = caller().await?;
    let text = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    let q = protocol::history::SessionQuery {
        feature: text(feature),
        user: text(user),
        host: text(host),
        from: text(from),
        to: text(to),
        before,
        limit: None,
    };
    Ok(services.session_history(&caller_user, pool_id, &q).await?)
}

/// A pool's use over `period` (`48h`, `30d`, `12m`); without a pool, every pool the caller
/// reads, added up.
#[server(prefix = "/rpc", endpoint = "chart_usage")]
pub async fn chart_usage(
    #[server(default)] pool_id: Option<i64>,
    period: String,
) -> Result<UsageChart, PortalError> {
    let (services, user) = caller().await?;
    let period = protocol::history::ChartQuery {
        period: Some(period),
    }
    .period()
    .map_err(licensing::Error::from)?;
    Ok(services.usage_chart(&user, pool_id, period).await?)
}

/// The monthly casual usage reports the caller may read, newest first.
#[server(prefix = "/rpc", endpoint = "casual_reports")]
pub async fn casual_reports() -> Result<Vec<CasualReportSummary>, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.casual_reports(&user).await?)
}
