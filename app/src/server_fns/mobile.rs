//! Server functions of a pool's mobile licences: the owner's switch (and, for administrators,
//! the pool's longest borrowing), *Assign a mobile licence* (answering a borrow request code),
//! *Extend*, and *Release a mobile licence* (a return code). The pool's client users and
//! administrators; the services check who may touch which pool.

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::borrow::{AssignMobile, Borrowed, MobileForm};
use protocol::floating::Pool;

#[cfg(feature = "ssr")]
use crate::ssr::caller;

#[server(prefix = "/rpc", endpoint = "set_mobile")]
pub async fn set_mobile(pool_id: i64, form: MobileForm) -> Result<Pool, PortalError> {
    let (services, user) = caller().await?;
    let settings = form.settings()?;
    Ok(services.set_mobile(&user, pool_id, &settings).await?)
}

/// Answers a borrow request code: the response code (the borrow token) to send back.
#[server(prefix = "/rpc", endpoint = "assign_mobile_licence")]
pub async fn assign_mobile_licence(
    pool_id: i64,
    assign: AssignMobile,
) -> Result<Borrowed, PortalError> {
    let (services, user) = caller().await?;
    Ok(services
        .answer_borrow_request(&user, pool_id, &assign.request_code, assign.days)
        .await?)
}

/// Extends a mobile licence: a new response code for its machine to import.
#[server(prefix = "/rpc", endpoint = "extend_mobile")]
pub async fn extend_mobile(seat_id: i64, days: i64) -> Result<Borrowed, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.extend_mobile(&user, seat_id, days).await?)
}

/// Takes a machine's return code: the seat is back in the pool at once.
#[server(prefix = "/rpc", endpoint = "return_mobile")]
pub async fn return_mobile(pool_id: i64, return_code: String) -> Result<(), PortalError> {
    let (services, user) = caller().await?;
    Ok(services
        .accept_return_code(&user, pool_id, &return_code)
        .await?)
}
