//! Server functions of the floating licence pages: pools and their keys (administrators; a
//! client user reads its own), explanations, and the usage monitor (everyone, for what they may
//! see). Each checks the caller, then calls the shared services.

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::access::{AccessGroup, AccessGroupForm, AccessRule, AccessRuleForm, PoolAccess};
use protocol::floating::{
    Bundle, FeatureUsage, KeyVerdict, Pool, PoolKey, PoolKeyInput, SeatDetail,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::ssr::{admin, caller};

/// A pool's page: the pool, its keys and its bundles (feature → also feature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolPage {
    pub pool: Pool,
    pub keys: Vec<PoolKey>,
    pub bundles: Vec<Bundle>,
    /// Its mobile licences (borrowed seats), soonest end first.
    pub mobile: Vec<SeatDetail>,
    /// Its access rules and groups.
    pub access: PoolAccess,
}

#[server(prefix = "/rpc", endpoint = "list_pools")]
pub async fn list_pools() -> Result<Vec<Pool>, PortalError> {
    let (services, user) = caller().await?;
    Ok(services
        .list_pools(&user, &licensing::page::Page::ALL)
        .await?
        .items)
}

/// `owner`: "client" (with `client_id`) or "serial" (with `serial`, as typed).
#[server(prefix = "/rpc", endpoint = "create_pool")]
pub async fn create_pool(
    owner: String,
    #[server(default)] client_id: Option<i64>,
    #[server(default)] serial: String,
    #[server(default)] name: String,
    lease_secs: i64,
) -> Result<Pool, PortalError> {
    let (services, user) = admin().await?;
    let owner = match (owner.as_str(), client_id) {
        ("serial", _) => {
            protocol::floating::PoolOwner::Serial(services.find_serial(&user, &serial).await?.id)
        }
        (_, Some(id)) => protocol::floating::PoolOwner::Client(id),
        (_, None) => {
            return Err(PortalError::Invalid {
                field: "client_id".into(),
                message: "Choose the client the pool is for.".into(),
            })
        }
    };
    // The answer holds the new pool key, shown this once: the page shows it rather than
    // moving on.
    Ok(services
        .create_pool(&user, owner, &name, Some(lease_secs))
        .await?)
}

/// Caps what one checkout may take from the pool's Token and Credit keys; empty lifts the cap.
#[server(prefix = "/rpc", endpoint = "set_checkout_cap")]
pub async fn set_checkout_cap(
    pool_id: i64,
    #[server(default)] max_tokens: String,
) -> Result<Pool, PortalError> {
    let (services, user) = caller().await?;
    let cap = match max_tokens.trim() {
        "" => None,
        text => Some(text.parse::<i64>().map_err(|_| PortalError::Invalid {
            field: "max_tokens".into(),
            message: "Give a whole number of tokens, or leave it empty for no limit.".into(),
        })?),
    };
    Ok(services.set_checkout_cap(&user, pool_id, cap).await?)
}

/// How the pool ends a seat whose application went silent: `lease` or `held`.
#[server(prefix = "/rpc", endpoint = "set_silent_seats")]
pub async fn set_silent_seats(pool_id: i64, silent_seats: String) -> Result<Pool, PortalError> {
    let (services, user) = caller().await?;
    let mode = protocol::floating::SilentSeats::parse(silent_seats.trim()).ok_or_else(|| {
        PortalError::Invalid {
            field: "silent_seats".into(),
            message: "Choose whether a silent seat is given back or kept.".into(),
        }
    })?;
    Ok(services.set_silent_seats(&user, pool_id, mode).await?)
}

/// Replaces a pool's key; the old one keeps working `grace_hours`. The answer holds the new key,
/// shown this once.
#[server(prefix = "/rpc", endpoint = "rotate_pool_key")]
pub async fn rotate_pool_key(pool_id: i64, grace_hours: i64) -> Result<Pool, PortalError> {
    let (services, user) = caller().await?;
    Ok(services
        .rotate_pool_key(&user, pool_id, grace_hours)
        .await?)
}

#[server(prefix = "/rpc", endpoint = "get_pool_page")]
pub async fn get_pool_page(id: i64) -> Result<PoolPage, PortalError> {
    let (services, user) = caller().await?;
    Ok(PoolPage {
        pool: services.pool(&user, id).await?,
        keys: services.pool_keys(&user, id).await?,
        bundles: services.pool_bundles(&user, id).await?,
        mobile: services.mobile_licences(&user, id).await?,
        access: services.pool_access(&user, id).await?,
    })
}

#[server(prefix = "/rpc", endpoint = "add_pool_key")]
pub async fn add_pool_key(pool_id: i64, key: PoolKeyInput) -> Result<PoolKey, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.add_pool_key(&user, pool_id, key).await?)
}

#[server(prefix = "/rpc", endpoint = "delete_pool_key")]
pub async fn delete_pool_key(id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    Ok(services.delete_pool_key(&user, id).await?)
}

/// Deletes a pool (none of its seats may be in use) and returns to the list of pools.
#[server(prefix = "/rpc", endpoint = "delete_pool")]
pub async fn delete_pool(id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    services.delete_pool(&user, id).await?;
    leptos_axum::redirect(&format!("/admin/pools?deleted={id}"));
    Ok(())
}

/// Adds a bundle to the pool, or removes it (`remove`).
#[server(prefix = "/rpc", endpoint = "change_bundle")]
pub async fn change_bundle(pool_id: i64, bundle: Bundle, remove: bool) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    if remove {
        services.remove_bundle(&user, pool_id, &bundle).await?;
    } else {
        services.add_bundle(&user, pool_id, &bundle).await?;
    }
    Ok(())
}

/// Every key of the pool with the filter that removed it, or its rank, for a checkout like this.
#[server(prefix = "/rpc", endpoint = "explain_checkout")]
pub async fn explain_checkout(
    pool_id: i64,
    form: protocol::seats::ExplainForm,
) -> Result<Vec<KeyVerdict>, PortalError> {
    let (services, user) = caller().await?;
    let req = form.request()?;
    Ok(services.explain_checkout(&user, pool_id, &req).await?)
}

/// Usage Per Feature: every pool's for an administrator, the own pool's for a client user.
#[server(prefix = "/rpc", endpoint = "usage_per_feature")]
pub async fn usage_per_feature() -> Result<Vec<FeatureUsage>, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.usage_per_feature(&user).await?)
}

#[server(prefix = "/rpc", endpoint = "detailed_usage")]
pub async fn detailed_usage(
    pool_id: i64,
    editor: String,
    feature: String,
) -> Result<Vec<SeatDetail>, PortalError> {
    let (services, user) = caller().await?;
    Ok(services
        .detailed_usage(&user, pool_id, &editor, &feature)
        .await?)
}

/// Frees a stuck seat: administrators any, a client user its own pool's (never one out on a
/// mobile licence).
#[server(prefix = "/rpc", endpoint = "disconnect_seat")]
pub async fn disconnect_seat(seat_id: i64) -> Result<(), PortalError> {
    let (services, user) = caller().await?;
    Ok(services.disconnect_seat(&user, seat_id, false).await?)
}

/// Administrators: frees a seat out on a mobile licence (a machine lost for good), although
/// its machine may use it offline until its end.
#[server(prefix = "/rpc", endpoint = "force_return")]
pub async fn force_return(seat_id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    Ok(services.disconnect_seat(&user, seat_id, true).await?)
}

/// Adds an access rule to a pool (its owner, an administrator).
#[server(prefix = "/rpc", endpoint = "add_access_rule")]
pub async fn add_access_rule(
    pool_id: i64,
    rule: AccessRuleForm,
) -> Result<AccessRule, PortalError> {
    let (services, user) = caller().await?;
    let input = rule.input()?;
    Ok(services.add_access_rule(&user, pool_id, input).await?)
}

/// Removes an access rule of a pool (its owner, an administrator).
#[server(prefix = "/rpc", endpoint = "remove_access_rule")]
pub async fn remove_access_rule(pool_id: i64, rule_id: i64) -> Result<(), PortalError> {
    let (services, user) = caller().await?;
    Ok(services.remove_access_rule(&user, pool_id, rule_id).await?)
}

/// Makes or replaces a group of users or hosts of a pool (its owner, an administrator).
#[server(prefix = "/rpc", endpoint = "save_access_group")]
pub async fn save_access_group(
    pool_id: i64,
    group: AccessGroupForm,
) -> Result<AccessGroup, PortalError> {
    let (services, user) = caller().await?;
    let (name, input) = group.input()?;
    Ok(services
        .save_access_group(&user, pool_id, &name, input)
        .await?)
}

/// Removes a group of a pool that no rule names (its owner, an administrator).
#[server(prefix = "/rpc", endpoint = "remove_access_group")]
pub async fn remove_access_group(pool_id: i64, name: String) -> Result<(), PortalError> {
    let (services, user) = caller().await?;
    Ok(services.remove_access_group(&user, pool_id, &name).await?)
}

/// From the monitor: denies the user (`what` = "user") or the machine ("host") of a seat every
/// feature of its pool; their seats end at their next heartbeat.
#[server(prefix = "/rpc", endpoint = "block_seat_holder")]
pub async fn block_seat_holder(seat_id: i64, what: String) -> Result<AccessRule, PortalError> {
    let (services, user) = caller().await?;
    let kind = match what.trim() {
        "user" => protocol::access::SubjectKind::User,
        "host" => protocol::access::SubjectKind::Host,
        _ => {
            return Err(PortalError::Invalid {
                field: "what".into(),
                message: "Block the seat's user or its machine.".into(),
            })
        }
    };
    Ok(services.block_seat_holder(&user, seat_id, kind).await?)
}
