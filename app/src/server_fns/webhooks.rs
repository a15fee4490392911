//! Server functions of the Webhooks page (administrators): register, list, remove, and read a
//! webhook's deliveries. The services check the role again.

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::webhooks::{NewWebhook, Webhook, WebhookDelivery};

#[cfg(feature = "ssr")]
use crate::ssr::admin;

#[server(prefix = "/rpc", endpoint = "list_webhooks")]
pub async fn list_webhooks() -> Result<Vec<Webhook>, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.list_webhooks(&user).await?)
}

/// `events`: codes such as `activation.created`.
#[server(prefix = "/rpc", endpoint = "create_webhook")]
pub async fn create_webhook(
    url: String,
    #[server(default)] events: Vec<String>,
) -> Result<NewWebhook, PortalError> {
    let (services, user) = admin().await?;
    let input = protocol::webhooks::WebhookInput { url, events };
    Ok(services.create_webhook(&user, &input).await?)
}

#[server(prefix = "/rpc", endpoint = "remove_webhook")]
pub async fn remove_webhook(id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    Ok(services.remove_webhook(&user, id).await?)
}

/// The webhook's latest deliveries (100), newest first.
#[server(prefix = "/rpc", endpoint = "webhook_deliveries")]
pub async fn webhook_deliveries(id: i64) -> Result<Vec<WebhookDelivery>, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.webhook_deliveries(&user, id, None, None).await?.0)
}
