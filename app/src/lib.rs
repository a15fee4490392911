//! The Licentia portal: the page shell, routes, the signed-in user's context, and the pages.
//! Server-rendered by the `server` crate (feature `ssr`) and hydrated in the browser by `frontend`
//! (feature `hydrate`).

// The two builds never go together: a server built with `hydrate` too renders no page (every
// render panics in `spawn_local`). `cargo test --workspace` unifies them through `frontend`;
// run `cargo test` (the default members), as `scripts/test` does.
#[cfg(all(feature = "ssr", feature = "hydrate"))]
compile_error!(
    "app's `ssr` and `hydrate` features were both enabled: build the server without `frontend` \
     (`cargo test`, not `cargo test --workspace`)"
);

mod components;
pub mod error;
mod pages;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;

use error::PortalError;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};
use pages::catalog::{ActivationsPage, OrderDetail, OrdersPage};
use pages::offline::OfflineActivationPage;
use pages::pools::{PoolDetailPage, PoolsPage};
use pages::tokens::TokensPage;
use pages::usage::UsagePage;
use protocol::account::CurrentUser;
use server_fns::accounts::{CompleteSetup, SignIn, SignInCode, SignOut};

/// The name of the generated JavaScript, WebAssembly and CSS files under `/pkg`.
pub const OUTPUT_NAME: &str = "licentia";

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.ico"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Who is signed in, and the actions that change it. Provided once, at the top of the app.
#[derive(Clone, Copy)]
pub struct Auth {
    pub user: Resource<Result<Option<CurrentUser>, PortalError>>,
    pub sign_in: ServerAction<SignIn>,
    pub sign_in_code: ServerAction<SignInCode>,
    pub sign_out: ServerAction<SignOut>,
    pub setup: ServerAction<CompleteSetup>,
    /// Setting a password through an invitation (which signs in) or a reset link.
    pub use_link: ServerAction<server_fns::accounts::UsePasswordLink>,
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let sign_in = ServerAction::<SignIn>::new();
    let sign_in_code = ServerAction::<SignInCode>::new();
    let sign_out = ServerAction::<SignOut>::new();
    let setup = ServerAction::<CompleteSetup>::new();
    let use_link = ServerAction::<server_fns::accounts::UsePasswordLink>::new();
    // Blocking, so pages render knowing who asks. (The server decides the redirect or 403 of a
    // page load before rendering: see `area_gate` in the server crate.)
    let user = Resource::new_blocking(
        move || {
            (
                sign_in.version().get(),
                sign_in_code.version().get(),
                sign_out.version().get(),
                setup.version().get(),
                use_link.version().get(),
            )
        },
        |_| server_fns::accounts::get_current_user(),
    );
    provide_context(components::NavOpen(RwSignal::new(false)));
    provide_context(Auth {
        user,
        sign_in,
        sign_in_code,
        sign_out,
        setup,
        use_link,
    });

    // Lets people and browser tests know the page is interactive.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="licentia" href=format!("/pkg/{OUTPUT_NAME}.css")/>
        <Title text="Licentia"/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <components::TopBar/>
            <div class="shell">
            <components::SideNav/>
            <main id="main" tabindex="-1">
                <Routes fallback=|| view! { <pages::errors::NotFound/> }>
                    <Route path=path!("/") view=pages::Home/>
                    <Route path=path!("/login") view=pages::auth::SignInPage/>
                    <Route path=path!("/login/code") view=pages::auth::SecondFactorPage/>
                    <Route path=path!("/setup/:token") view=pages::auth::SetupPage/>
                    <Route path=path!("/password-reset") view=pages::auth::ForgotPasswordPage/>
                    <Route path=path!("/password-link/:token") view=pages::auth::PasswordLinkPage/>
                    // The areas' pages stream in order: what each part loads is in the HTML as
                    // it arrives, so nothing jumps down the page when data lands after the first
                    // paint, and pages read without JavaScript.
                    <ParentRoute path=path!("/admin") view=pages::admin::AdminArea ssr=SsrMode::InOrder>
                        <Route path=path!("") view=pages::admin::Overview/>
                        <Route path=path!("clients") view=pages::admin::ClientsPage/>
                        <Route path=path!("clients/new") view=pages::admin::NewClientPage/>
                        <Route path=path!("clients/:id") view=pages::admin::ClientPage/>
                        <Route path=path!("products") view=pages::products::ProductsPage/>
                        <Route path=path!("products/new") view=pages::products::ProductPage/>
                        <Route path=path!("products/:id") view=pages::products::ProductPage/>
                        <Route path=path!("orders") view=|| view! { <OrdersPage admin=true/> }/>
                        <Route path=path!("orders/new") view=pages::catalog::NewOrderPage/>
                        <Route path=path!("orders/:id") view=|| view! { <OrderDetail admin=true/> }/>
                        <Route path=path!("activations") view=|| view! { <ActivationsPage admin=true/> }/>
                        <Route path=path!("licences") view=|| view! { <pages::licence_list::LicencesPage admin=true/> }/>
                        <Route path=path!("licences/:id") view=|| view! { <pages::licence::LicencePage admin=true/> }/>
                        <Route path=path!("activation") view=|| view! { <OfflineActivationPage admin=true/> }/>
                        <Route path=path!("serials") view=pages::serials::SerialsPage/>
                        <Route path=path!("serials/:id") view=pages::serials::SerialDetailPage/>
                        <Route path=path!("tokens") view=|| view! { <TokensPage admin=true/> }/>
                        <Route path=path!("webhooks") view=pages::webhooks::WebhooksPage/>
                        <Route path=path!("audit") view=|| view! { <pages::audit::AuditPage admin=true/> }/>
                        <Route path=path!("pools") view=|| view! { <PoolsPage admin=true/> }/>
                        <Route path=path!("pools/new") view=pages::pools::NewPoolPage/>
                        <Route path=path!("pools/:id") view=|| view! { <PoolDetailPage admin=true/> }/>
                        <Route path=path!("pools/:id/history") view=|| view! { <pages::history::PoolHistoryPage admin=true/> }/>
                        <Route path=path!("usage") view=|| view! { <UsagePage admin=true/> }/>
                        <Route path=path!("account") view=pages::account::AccountPage/>
                    </ParentRoute>
                    <ParentRoute path=path!("/client") view=pages::client::ClientArea ssr=SsrMode::InOrder>
                        <Route path=path!("") view=pages::client::Organisation/>
                        <Route path=path!("orders") view=|| view! { <OrdersPage admin=false/> }/>
                        <Route path=path!("orders/:id") view=|| view! { <OrderDetail admin=false/> }/>
                        <Route path=path!("activations") view=|| view! { <ActivationsPage admin=false/> }/>
                        <Route path=path!("licences") view=|| view! { <pages::licence_list::LicencesPage admin=false/> }/>
                        <Route path=path!("licences/:id") view=|| view! { <pages::licence::LicencePage admin=false/> }/>
                        <Route path=path!("activation") view=|| view! { <OfflineActivationPage admin=false/> }/>
                        <Route path=path!("tokens") view=|| view! { <TokensPage admin=false/> }/>
                        <Route path=path!("audit") view=|| view! { <pages::audit::AuditPage admin=false/> }/>
                        <Route path=path!("pools") view=|| view! { <PoolsPage admin=false/> }/>
                        <Route path=path!("pools/:id") view=|| view! { <PoolDetailPage admin=false/> }/>
                        <Route path=path!("pools/:id/history") view=|| view! { <pages::history::PoolHistoryPage admin=false/> }/>
                        <Route path=path!("usage") view=|| view! { <UsagePage admin=false/> }/>
                        <Route path=path!("account") view=pages::account::AccountPage/>
                    </ParentRoute>
                </Routes>
            </main>
            </div>
        </Router>
    }
}
