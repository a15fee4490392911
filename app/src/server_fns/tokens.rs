//! Server functions of the API tokens page (both roles): list, create (the secret shown once),
//! revoke. Each checks the caller, then calls the shared services.

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::catalog::ApiToken;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::ssr::caller;

/// A token just created: its secret is in this answer and nowhere else, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub token: ApiToken,
    pub secret: String,
}

/// The caller's tokens (an administrator sees everyone's).
#[server(prefix = "/rpc", endpoint = "list_api_tokens")]
pub async fn list_api_tokens() -> Result<Vec<ApiToken>, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.list_api_tokens(&user).await?)
}

/// `access`: "read" or "write"; `days`: how long it lasts (empty: 90); `password`: the
/// caller's own, again — a session left open is not enough to mint a credential.
#[server(prefix = "/rpc", endpoint = "create_api_token")]
pub async fn create_api_token(
    name: String,
    access: String,
    #[server(default)] days: String,
    #[server(default)] password: String,
    #[server(default)] code: String,
) -> Result<NewToken, PortalError> {
    let address = crate::ssr::client_address();
    let (services, user) = caller().await?;
    let can_write = match access.as_str() {
        "write" => true,
        "read" => false,
        _ => {
            return Err(PortalError::Invalid {
                field: "access".into(),
                message: "Choose read-only or read-write access.".into(),
            })
        }
    };
    let days = match days.trim() {
        "" => None,
        text => Some(text.parse::<i64>().map_err(|_| PortalError::Invalid {
            field: "days".into(),
            message: "Give the number of days the token lasts, such as 90.".into(),
        })?),
    };
    let new = licensing::accounts::NewApiToken {
        name: &name,
        can_write,
        days,
        password: &password,
        code: &code,
    };
    let (token, secret) = services.create_api_token(&user, new, &address).await?;
    Ok(NewToken { token, secret })
}

#[server(prefix = "/rpc", endpoint = "revoke_api_token")]
pub async fn revoke_api_token(id: i64) -> Result<ApiToken, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.revoke_api_token(&user, id).await?)
}
