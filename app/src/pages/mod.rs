//! The portal's pages, by area.

pub mod access;
pub mod account;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod client;
pub mod dashboard;
pub mod errors;
pub mod history;
pub mod licence;
pub mod licence_list;
pub mod mobile;
pub mod offline;
pub mod pools;
pub mod products;
pub mod serials;
pub mod tokens;
pub mod usage;
pub mod webhooks;

use crate::server_fns::accounts::home_of;
use crate::Auth;
use leptos::prelude::*;
use leptos_router::components::Redirect;

/// `/`: sends each person to their own area, or to sign in.
#[component]
pub fn Home() -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let to = match auth.user.await {
                    Ok(Some(user)) => home_of(user.role),
                    _ => "/login",
                };
                view! { <Redirect path=to/> }
            })}
        </Suspense>
    }
}
