//! "Not found" and "not allowed", with the right HTTP status when rendered on the server.

use crate::components::HomeLink;
use leptos::prelude::*;
use leptos_meta::Title;

fn set_status(_code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(res), Ok(code)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(_code),
    ) {
        res.set_status(code);
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Page not found · Licentia"/>
        <section class="message-page">
            <h1>"Page not found"</h1>
            <p>"There is no page at this address. It may have moved, or the link may be mistyped."</p>
            <HomeLink/>
        </section>
    }
}

#[component]
pub fn NotAllowed() -> impl IntoView {
    set_status(403);
    view! {
        <Title text="Not allowed · Licentia"/>
        <section class="message-page">
            <h1>"Not allowed"</h1>
            <p>"Your account does not give access to this page. If you think it should, ask your administrator."</p>
            <HomeLink/>
        </section>
    }
}
