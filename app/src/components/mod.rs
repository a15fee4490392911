//! Small pieces the pages share: the top bar, form fields, error and notice boxes, confirmed
//! actions, local times; tables in `tables`.

mod address_list;
mod tables;
pub use address_list::*;
pub use tables::*;

use crate::error::PortalError;
use crate::server_fns::accounts::home_of;
use crate::Auth;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos::server_fn::client::Client;
use leptos::server_fn::codec::PostUrl;
use leptos::server_fn::request::ClientReq;
use leptos::server_fn::{Http, ServerFn};
use leptos_router::components::A;
use protocol::account::Role;
use protocol::input::Password;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The main navigation of each role, grouped by area: a group's name (empty: no heading) and
/// its pages, where and their names.
type NavGroups = &'static [(&'static str, &'static [(&'static str, &'static str)])];

const ADMIN_NAV: NavGroups = &[
    ("", &[("/admin", "Overview")]),
    ("Catalogue", &[("/admin/products", "Products")]),
    ("Customers", &[("/admin/clients", "Clients")]),
    (
        "Licences",
        &[
            ("/admin/orders", "Orders"),
            ("/admin/licences", "Licences"),
            ("/admin/activations", "Activations"),
            ("/admin/activation", "Offline activation"),
            ("/admin/serials", "Serial numbers"),
        ],
    ),
    (
        "Floating",
        &[
            ("/admin/pools", "Floating pools"),
            ("/admin/usage", "Usage"),
        ],
    ),
    (
        "Web API",
        &[
            ("/admin/tokens", "API tokens"),
            ("/admin/webhooks", "Webhooks"),
        ],
    ),
    (
        "Settings",
        &[
            ("/admin/audit", "Audit log"),
            ("/admin/account", "My account"),
        ],
    ),
];
const CLIENT_NAV: NavGroups = &[
    ("", &[("/client", "My organisation")]),
    (
        "Licences",
        &[
            ("/client/orders", "My orders"),
            ("/client/licences", "My licences"),
            ("/client/activations", "Activations"),
            ("/client/activation", "Offline activation"),
        ],
    ),
    (
        "Floating",
        &[
            ("/client/pools", "Floating pools"),
            ("/client/usage", "Usage"),
        ],
    ),
    ("Web API", &[("/client/tokens", "API tokens")]),
    (
        "Settings",
        &[
            ("/client/audit", "Audit log"),
            ("/client/account", "My account"),
        ],
    ),
];

/// Whether the main navigation is open on a narrow screen (on a wide one it always shows).
#[derive(Clone, Copy)]
pub struct NavOpen(pub RwSignal<bool>);

/// Where the signed-in person's pages are: `/admin` or `/client`.
pub fn area(admin: bool) -> &'static str {
    if admin {
        "/admin"
    } else {
        "/client"
    }
}

#[component]
pub fn TopBar() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let NavOpen(open) = expect_context::<NavOpen>();
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Licentia"</a>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match auth.user.await {
                        Ok(Some(user)) => {
                            let who = match &user.client {
                                Some(c) => format!("{} · {}", user.name, c.name),
                                None => format!("{} · Administrator", user.name),
                            };
                            view! {
                                <button
                                    type="button"
                                    class="menu-toggle"
                                    aria-controls="main-nav"
                                    aria-expanded=move || open.get().to_string()
                                    on:click=move |_| open.update(|o| *o = !*o)
                                    on:keydown=move |ev| {
                                        if ev.key() == "Escape" {
                                            open.set(false);
                                        }
                                    }
                                >
                                    {move || if open.get() { "Close menu" } else { "Menu" }}
                                </button>
                                <div class="who">
                                    <span class="who-name" data-testid="signed-in-as">{who}</span>
                                    <ActionForm action=auth.sign_out>
                                        <button type="submit" class="link">"Sign out"</button>
                                    </ActionForm>
                                </div>
                            }
                                .into_any()
                        }
                        _ => ().into_any(),
                    }
                })}
            </Transition>
        </header>
    }
}

/// The main navigation, grouped by area, beside the page on a wide screen; on a phone it opens
/// from the top bar's Menu button and closes when a page is chosen.
#[component]
pub fn SideNav() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let NavOpen(open) = expect_context::<NavOpen>();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(user)) => {
                        let groups = match user.role {
                            Role::Admin => ADMIN_NAV,
                            Role::Client => CLIENT_NAV,
                        };
                        let groups = groups
                            .iter()
                            .map(|(title, pages)| {
                                let heading_id = format!("nav-{}", title.to_lowercase().replace(' ', "-"));
                                let links = pages
                                    .iter()
                                    .map(|(href, label)| view! { <li><A href=*href exact=href.matches('/').count() == 1>{*label}</A></li> })
                                    .collect_view();
                                let heading = (!title.is_empty()).then(|| view! { <h2 class="nav-title" id=heading_id.clone()>{*title}</h2> });
                                let labelled = (!title.is_empty()).then_some(heading_id.clone());
                                view! {
                                    <div class="nav-group">
                                        {heading}
                                        <ul aria-labelledby=labelled>{links}</ul>
                                    </div>
                                }
                            })
                            .collect_view();
                        view! {
                            <nav
                                id="main-nav"
                                aria-label="Main"
                                class=move || if open.get() { "sidenav open" } else { "sidenav" }
                                on:click=move |ev| {
                                    // A page was chosen (a link, not the space around them).
                                    if event_target_is_link(&ev) {
                                        open.set(false);
                                    }
                                }
                                on:keydown=move |ev| {
                                    if ev.key() == "Escape" {
                                        open.set(false);
                                    }
                                }
                            >
                                {groups}
                            </nav>
                        }
                        .into_any()
                    }
                    _ => ().into_any(),
                }
            })}
        </Transition>
    }
}

#[cfg(feature = "hydrate")]
fn event_target_is_link(ev: &leptos::ev::MouseEvent) -> bool {
    use wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
        .and_then(|e| e.closest("a").ok().flatten())
        .is_some()
}

#[cfg(not(feature = "hydrate"))]
fn event_target_is_link(_: &leptos::ev::MouseEvent) -> bool {
    false
}

/// The code from the signed-in person's authenticator app, asked (as `code`) beside their
/// password where a second factor must back it; nothing for someone without one.
#[component]
pub fn SecondFactorCode(id: &'static str) -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                auth.user.await.ok().flatten().filter(|u| u.second_factor).map(|_| view! {
                    <Field label="Code from your authenticator app" name="code" id=id.to_owned() autocomplete="one-time-code" hint="Or one of your recovery codes."/>
                })
            })}
        </Transition>
    }
}

/// A labelled input. `id` must be unique on the page; it defaults to the field name.
#[component]
pub fn Field(
    #[prop(into)] label: String,
    #[prop(into)] name: String,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] id: Option<String>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(default = true)] required: bool,
    #[prop(optional)] minlength: Option<usize>,
    #[prop(optional)] maxlength: Option<usize>,
    /// The least a number field takes.
    #[prop(optional)]
    min: Option<i64>,
    #[prop(optional, into)] value: Option<String>,
    #[prop(optional)] hint: Option<&'static str>,
    /// The id of a `<datalist>` of suggestions (free text still allowed).
    #[prop(optional)]
    list: Option<&'static str>,
) -> impl IntoView {
    let id = id.unwrap_or_else(|| format!("field-{name}"));
    let hint_id = format!("{id}-hint");
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                required=required
                minlength=minlength.map(|n| n.to_string())
                maxlength=maxlength.map(|n| n.to_string())
                min=min.map(|n| n.to_string())
                value=value
                list=list
                aria-describedby=hint.map(|_| hint_id.clone())
            />
            {hint.map(|h| view! { <small id=hint_id.clone() class="hint">{h}</small> })}
        </div>
    }
}

/// A new password with its confirmation ("Repeat the …", sent as `{name}_confirm`), both held
/// to the password rules before sending.
#[component]
pub fn NewPasswordFields(
    label: &'static str,
    name: &'static str,
    hint: &'static str,
) -> impl IntoView {
    let confirm_label = format!("Repeat the {}", label.to_lowercase());
    let confirm_name = format!("{name}_confirm");
    view! {
        <Field
            label
            name
            kind="password"
            autocomplete="new-password"
            minlength=Password::MIN_LEN
            maxlength=Password::MAX_LEN
            hint
        />
        <Field
            label=confirm_label
            name=confirm_name
            kind="password"
            autocomplete="new-password"
            minlength=Password::MIN_LEN
            maxlength=Password::MAX_LEN
        />
    }
}

/// A multi-line text input.
#[component]
pub fn TextArea(
    label: &'static str,
    name: &'static str,
    #[prop(optional)] id: Option<String>,
    #[prop(optional)] maxlength: Option<usize>,
    #[prop(optional, into)] value: Option<String>,
) -> impl IntoView {
    let id = id.unwrap_or_else(|| format!("field-{name}"));
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <textarea id=id name=name rows="3" maxlength=maxlength.map(|n| n.to_string())>
                {value.unwrap_or_default()}
            </textarea>
        </div>
    }
}

/// A server function of the portal, as the components that show its runs need it.
pub trait PortalFn:
    ServerFn<Error = PortalError, Output: Send + Sync + 'static> + Clone + Send + Sync + 'static
{
}

impl<S> PortalFn for S where
    S: ServerFn<Error = PortalError, Output: Send + Sync + 'static> + Clone + Send + Sync + 'static
{
}

/// A portal server function an `ActionForm` can send: its arguments come form-encoded.
pub trait FormFn<P>:
    PortalFn<
        Protocol = Http<PostUrl, P>,
        Client: Client<
            PortalError,
            Request: ClientReq<PortalError, FormData: From<leptos::web_sys::FormData>>,
        >,
    > + DeserializeOwned
{
}

impl<S, P> FormFn<P> for S where
    S: PortalFn<
            Protocol = Http<PostUrl, P>,
            Client: Client<
                PortalError,
                Request: ClientReq<PortalError, FormData: From<leptos::web_sys::FormData>>,
            >,
        > + DeserializeOwned
{
}

/// The error of the last run of an action, announced to screen readers.
#[component]
pub fn ActionError<S>(action: ServerAction<S>) -> impl IntoView
where
    S: PortalFn,
{
    // An invalid field is also marked where it is: the browser says the message beside it and
    // moves the focus there (until the field is changed).
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        action.value().with(|v| {
            if let Some(Err(e @ PortalError::Invalid { .. })) = v {
                if let Some(field) = e.field() {
                    mark_invalid(field, &e.to_string());
                }
            }
        })
    });
    move || {
        action.value().with(|v| match v {
            Some(Err(e)) => Some(view! { <p class="error" role="alert">{e.to_string()}</p> }),
            _ => None,
        })
    }
}

/// Marks the first field named `field` (or `…[field]`) on the page invalid with `message`, shows
/// it beside the field and focuses it; typing in it clears the mark.
#[cfg(feature = "hydrate")]
fn mark_invalid(field: &str, message: &str) {
    use wasm_bindgen::JsCast;
    if field.contains(['"', '\\', ']']) {
        return;
    }
    let selector = format!(r#"[name="{field}"], [name$="[{field}]"]"#);
    let Some(input) = document()
        .query_selector(&selector)
        .ok()
        .flatten()
        .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return;
    };
    input.set_custom_validity(message);
    let _ = input.set_attribute("aria-invalid", "true");
    input.report_validity();
    let cleared = input.clone();
    let clear = wasm_bindgen::closure::Closure::once_into_js(move || {
        cleared.set_custom_validity("");
        let _ = cleared.remove_attribute("aria-invalid");
    });
    let options = web_sys::AddEventListenerOptions::new();
    options.set_once(true);
    let _ = input.add_event_listener_with_callback_and_add_event_listener_options(
        "input",
        clear.unchecked_ref(),
        &options,
    );
}

/// A message shown once an action succeeded (naming what it changed, where the page knows it).
#[component]
pub fn ActionDone<S>(action: ServerAction<S>, #[prop(into)] message: String) -> impl IntoView
where
    S: PortalFn,
{
    move || {
        action.value().with(|v| match v {
            Some(Ok(_)) => Some(view! { <p class="notice" role="status">{message.clone()}</p> }),
            _ => None,
        })
    }
}

/// Whether the page was opened by the creation of its thing (`?done=created`, the address a
/// creating server function leads to). Call it once at the top of the page (outside anything
/// that renders again): in the browser the parameter is then dropped from the address, so a
/// reload does not say it again, while the page keeps saying it until one leaves it.
pub fn created_here() -> bool {
    once_from_address("done").as_deref() == Some("created")
}

/// The banner of a page opened by the creation of its thing (`created_here`), naming it.
#[component]
pub fn DoneBanner(created: bool, #[prop(into)] what: String) -> impl IntoView {
    created.then(|| view! { <p class="notice" data-testid="done-banner">{format!("{what} was created.")}</p> })
}

/// On a list after a deletion (`?deleted=<id>`): a banner saying which `kind` #id went.
#[component]
pub fn DeletedBanner(kind: &'static str) -> impl IntoView {
    let id = once_from_address("deleted")?.parse::<i64>().ok()?;
    Some(
        view! { <p class="notice" data-testid="done-banner">{format!("{kind} #{id} was deleted.")}</p> },
    )
}

/// The query parameter `name` of the address the page opened at; in the browser it is then
/// dropped from the address (the history entry replaced, the router not told: nothing reloads).
fn once_from_address(name: &'static str) -> Option<String> {
    let value = leptos_router::hooks::use_query_map().with_untracked(|q| q.get(name));
    if value.is_some() {
        Effect::new(move |_| {
            #[cfg(feature = "hydrate")]
            forget_query_param(name);
        });
    }
    value
}

#[cfg(feature = "hydrate")]
fn forget_query_param(name: &str) {
    let Some(window) = leptos::web_sys::window() else {
        return;
    };
    let location = window.location();
    let (Ok(path), Ok(search), Ok(hash)) =
        (location.pathname(), location.search(), location.hash())
    else {
        return;
    };
    let kept: Vec<&str> = search
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(name))
        .collect();
    let url = match kept.is_empty() {
        true => format!("{path}{hash}"),
        false => format!("{path}?{}{hash}", kept.join("&")),
    };
    if let Ok(history) = window.history() {
        let _ =
            history.replace_state_with_url(&leptos::wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// Clears a form once its action has succeeded, so the next entry starts empty.
pub fn reset_on_success<S>(action: ServerAction<S>, form: NodeRef<leptos::html::Form>)
where
    S: PortalFn,
{
    Effect::new(move |_| {
        if action.value().with(|v| matches!(v, Some(Ok(_)))) {
            if let Some(f) = form.get_untracked() {
                f.reset();
            }
        }
    });
}

/// Text for a table cell: an em dash for an empty value. (An empty text node also trips up
/// hydration, which expects the node the server rendered.)
pub fn or_dash(s: impl Into<String>) -> String {
    let s = s.into();
    if s.trim().is_empty() {
        "\u{2014}".to_owned()
    } else {
        s
    }
}

/// What a page shows for data loaded from the server: "Loading…" at first, the previous content
/// while it reloads, the data once it is there, or the error in words.
pub fn loaded<T, V>(
    resource: Resource<Result<T, PortalError>>,
    show: impl Fn(T) -> V + Clone + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: IntoView + 'static,
{
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let show = show.clone();
                Suspend::new(async move {
                    match resource.await {
                        Ok(data) => show(data).into_any(),
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// A button that asks the person to confirm `question` in the page first (no browser pop-up):
/// it opens a small dialog beside it stating the consequence, whose *Yes, …* button sends the
/// form and whose *Cancel* (or Escape) closes it with nothing sent.
#[component]
pub fn ConfirmButton(
    #[prop(into)] question: String,
    label: &'static str,
    #[prop(default = "danger small")] class: &'static str,
    /// Where to say what was asked for once *Yes* is pressed (a [`Said`] the page shows when
    /// the action succeeds), and the words.
    #[prop(optional_no_strip)]
    said: Option<(Said, String)>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let cancel = NodeRef::<leptos::html::Button>::new();
    let opener = NodeRef::<leptos::html::Button>::new();
    // The dialog takes the focus once it shows, so a keyboard user lands on Cancel.
    let ask = move || {
        open.set(true);
        request_animation_frame(move || {
            if let Some(b) = cancel.get_untracked() {
                let _ = b.focus();
            }
        });
    };
    let close = move || {
        open.set(false);
        if let Some(b) = opener.get() {
            let _ = b.focus();
        }
    };
    // Escape closes it, from the dialog or from the button that opened it.
    let escape = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" && open.get_untracked() {
            close();
        }
    };
    let yes = format!("Yes, {}", label.to_lowercase());
    // Its name says the action and its consequence, read out as it opens.
    let name = format!("{label}: {question}");
    view! {
        <button type="button" class=class node_ref=opener aria-haspopup="dialog" aria-expanded=move || open.get().to_string() on:click=move |_| ask() on:keydown=escape>{label}</button>
        <div class="confirm" role="alertdialog" aria-label=name hidden=move || !open.get() on:keydown=escape>
            <p>{question}</p>
            // Sends the form around it; the dialog closes once it is sent (on the next frame:
            // the click must reach the form first). Disabled while closed, so that Enter in a
            // field of the form, which presses its first submit button, cannot skip the question.
            <button type="submit" class=class disabled=move || !open.get()
                on:click=move |_| {
                    if let Some((Said(to), words)) = &said {
                        to.set(words.clone());
                    }
                    request_animation_frame(move || open.set(false))
                }>{yes}</button>
            " "
            <button type="button" class="small" node_ref=cancel on:click=move |_| close()>"Cancel"</button>
        </div>
    }
}

/// A one-button form that runs `action` for one row (its id sent as `field`), once the person
/// confirms `question`.
#[component]
pub fn RowAction<S, P>(
    action: ServerAction<S>,
    #[prop(default = "id")] field: &'static str,
    id: i64,
    #[prop(into)] question: String,
    label: &'static str,
    #[prop(default = "danger small")] class: &'static str,
    /// What to say once it succeeded, naming the row's thing (shown by a [`SaidBanner`]).
    #[prop(optional)]
    said: Option<(Said, String)>,
    #[prop(marker)] _protocol: std::marker::PhantomData<P>,
) -> impl IntoView
where
    S: FormFn<P>,
{
    view! {
        <ActionForm action=action>
            <input type="hidden" name=field value=id/>
            <ConfirmButton question label class said/>
        </ActionForm>
    }
}

/// What the last row action asked for said it would do ("Token ci was revoked."), kept by the
/// page so the banner can name the row's thing after the row is gone.
#[derive(Clone, Copy)]
pub struct Said(pub RwSignal<String>);

impl Said {
    pub fn new() -> Self {
        Self(RwSignal::new(String::new()))
    }
}

/// The banner after a row action succeeded, in the words its row gave ([`Said`]).
#[component]
pub fn SaidBanner<S>(action: ServerAction<S>, said: Said) -> impl IntoView
where
    S: PortalFn,
{
    move || {
        let words = said.0.get();
        if action.pending().get() {
            return None;
        }
        action.value().with(|v| match v {
            Some(Ok(_)) if !words.is_empty() => Some(
                view! { <p class="notice" role="status" data-testid="done-banner">{words}</p> },
            ),
            _ => None,
        })
    }
}

/// The last card of a record's page: what deleting it takes with it, and (as `children`) the
/// error of the last try and the button that does it.
#[component]
pub fn DeleteZone(
    title: &'static str,
    #[prop(into)] explain: String,
    children: Children,
) -> impl IntoView {
    view! {
        <section class="card danger-zone">
            <h2>{title}</h2>
            <p class="hint">{explain}</p>
            {children()}
        </section>
    }
}

/// A highest release number, where 0 means any release.
pub fn release_or_any(max_release_number: i64) -> String {
    match max_release_number {
        0 => "any".to_owned(),
        n => n.to_string(),
    }
}

/// A failed page load, in words.
#[component]
pub fn LoadError(error: PortalError) -> impl IntoView {
    view! {
        <div class="error-panel" role="alert">
            <p>{error.to_string()}</p>
        </div>
    }
}

/// A moment in time: UTC in the server's HTML, the viewer's local time once the page is live.
#[component]
pub fn LocalTime(unix_secs: i64) -> impl IntoView {
    // The text is a signal the framework owns: set after hydration, never written to the DOM by
    // hand (which would race the hydration walk).
    let text = RwSignal::new(protocol::time::format_utc(unix_secs));
    Effect::new(move |_| text.set(local_time_text(unix_secs)));
    view! { <time datetime=protocol::time::format_rfc3339(unix_secs)>{move || text.get()}</time> }
}

#[cfg(feature = "hydrate")]
fn local_time_text(unix_secs: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix_secs as f64 * 1000.0));
    String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

#[cfg(not(feature = "hydrate"))]
fn local_time_text(unix_secs: i64) -> String {
    protocol::time::format_utc(unix_secs)
}

/// A moment that may not have happened yet: its local time, or `none` (muted).
pub fn time_or(at: Option<i64>, none: &'static str) -> AnyView {
    match at {
        Some(t) => view! { <LocalTime unix_secs=t/> }.into_any(),
        None => view! { <span class="muted">{none}</span> }.into_any(),
    }
}

/// A button that copies `text` to the clipboard and says so. Browsers give pages the clipboard
/// only over HTTPS (or on this machine); elsewhere the button says to copy by hand.
#[component]
pub fn CopyButton(text: String, #[prop(default = "Copy")] label: &'static str) -> impl IntoView {
    let said = RwSignal::new(label);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            if !window().is_secure_context() {
                said.set("Select it and copy by hand: the clipboard needs HTTPS");
                return;
            }
            let promise = window().navigator().clipboard().write_text(&text);
            leptos::task::spawn_local(async move {
                let done = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
                said.set(if done {
                    "Copied"
                } else {
                    "Copying was refused: select it and copy by hand"
                });
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <button type="button" class="small copy" on:click=copy>{move || said.get()}</button>
    }
}

/// How an invitation or password link went out: to whose mailbox, or the link itself with what
/// kept it from being mailed, for the administrator to pass on.
#[component]
pub fn LinkSentNotice(sent: protocol::account::LinkSent) -> impl IntoView {
    use protocol::account::{LinkDelivery, LinkPurpose};
    let what = match sent.purpose {
        LinkPurpose::Invitation => "An invitation",
        LinkPurpose::Reset => "A password reset link",
    };
    match sent.delivery {
        LinkDelivery::Mailed { to } => view! {
            <p class="notice" role="status">{format!("{what} was sent to {to}.")}</p>
        }
        .into_any(),
        LinkDelivery::PassOn {
            link,
            expires_at,
            why,
        } => view! {
            <div class="notice" role="status">
                <p>
                    {format!("{what} for {} is ready. {why} Pass this link on to them yourself — it works once, until ", sent.user.name)}
                    <LocalTime unix_secs=expires_at/>":"
                </p>
                <p class="code-line"><code class="link-to-pass-on">{link.clone()}</code>" "<CopyButton text=link label="Copy link"/></p>
            </div>
        }
        .into_any(),
    }
}

/// A wide, required field to paste a code into (a request, return or removal code).
#[component]
pub fn PasteField(id: &'static str, name: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <div class="field wide">
            <label for=id>{label}</label>
            <textarea id=id name=name rows="3" required spellcheck="false"></textarea>
            <CodeFileInput target=id what=label/>
        </div>
    }
}

/// "Or load it from a file": a code file (one a portal or the CLI saved) read into the
/// text area `target`, as if pasted there (its input listeners hear of it).
#[component]
pub fn CodeFileInput(
    target: &'static str,
    /// The code's name, as its field's label says it ("Request code").
    what: &'static str,
) -> impl IntoView {
    let said = RwSignal::new(String::new());
    let load = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return;
            };
            // Emptied, so choosing the same file again loads it again.
            input.set_value("");
            if file.size() > CODE_FILE_MAX_BYTES {
                said.set(
                    "That file is too large to be a code: choose the code file itself.".into(),
                );
                return;
            }
            let promise = file.text();
            leptos::task::spawn_local(async move {
                let text = wasm_bindgen_futures::JsFuture::from(promise)
                    .await
                    .ok()
                    .and_then(|v| v.as_string());
                let area = document()
                    .get_element_by_id(target)
                    .and_then(|e| e.dyn_into::<web_sys::HtmlTextAreaElement>().ok());
                match (text, area) {
                    (Some(text), Some(area)) => {
                        area.set_value(text.trim());
                        if let Ok(input) = web_sys::Event::new("input") {
                            let _ = area.dispatch_event(&input);
                        }
                        said.set(format!("Loaded from {}.", file.name()));
                    }
                    _ => said.set("That file could not be read as text.".into()),
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, target);
    };
    let id = format!("{target}-file");
    view! {
        <label class="file-load">"Or load it from a file: "
            <input id=id type="file" accept=".txt,text/plain" aria-controls=target
                title=format!("Load the {} from a file", what.to_lowercase()) on:change=load/>
        </label>
        <small class="hint" aria-live="polite">{move || said.get()}</small>
    }
}

/// The largest file taken for a code (codes are a few kilobytes at most).
#[cfg(feature = "hydrate")]
const CODE_FILE_MAX_BYTES: f64 = 64.0 * 1024.0;

/// A `data:` address holding `text` as a plain-text file (a link's `download` saves it,
/// with or without WebAssembly).
pub fn text_file_href(text: &str) -> String {
    format!(
        "data:text/plain;charset=utf-8,{}",
        protocol::audit::percent_encode(&format!("{text}\n"))
    )
}

/// A code to hand to someone (a response code for a machine), read-only, with a button that
/// copies it and a hint on what to do with it.
#[component]
pub fn CodeToSend(
    code: String,
    id: &'static str,
    label: &'static str,
    copy_label: &'static str,
    /// The name the code's file is saved under.
    file: &'static str,
    children: Children,
) -> impl IntoView {
    let href = text_file_href(&code);
    view! {
        <div class="field wide">
            <label for=id>{label}</label>
            <textarea id=id readonly rows="6" spellcheck="false">{code.clone()}</textarea>
            <span class="code-actions">
                <CopyButton text=code label=copy_label/>
                <a class="button small" href=href download=file data-testid=format!("{id}-file")>"Download as a file"</a>
            </span>
            <small class="hint">{children()}</small>
        </div>
    }
}

/// A link to the signed-in user's own area.
#[component]
pub fn HomeLink() -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let href = match auth.user.await {
                    Ok(Some(u)) => home_of(u.role),
                    _ => "/login",
                };
                view! { <a href=href>"Go to your start page"</a> }
            })}
        </Transition>
    }
}

/// Counters edited as rows (a name, a whole number), added and removed in place; each row is
/// sent as `counter_name[]` and `counter_value[]` (so a form sent before the WebAssembly loads
/// sends what was typed). A row left blank is dropped; the server refuses a name twice or a
/// value that is not a whole number, naming it.
#[component]
pub fn CounterRows(counters: std::collections::BTreeMap<String, i64>) -> impl IntoView {
    let start: Vec<(u32, String, String)> = counters
        .into_iter()
        .zip(0u32..)
        .map(|((n, v), i)| (i, n, v.to_string()))
        .collect();
    let next = StoredValue::new(start.len() as u32);
    let rows = RwSignal::new(start);
    let set = move |key: u32, first: bool, value: String| {
        rows.update(|r| {
            if let Some(row) = r.iter_mut().find(|x| x.0 == key) {
                if first {
                    row.1 = value;
                } else {
                    row.2 = value;
                }
            }
        })
    };
    let position =
        move |key: u32| rows.with(|r| r.iter().position(|x| x.0 == key).map_or(0, |p| p + 1));
    view! {
        <fieldset class="counters">
            <legend>"Counters"</legend>
            <table class="pairs">
                <thead><tr><th scope="col">"Name"</th><th scope="col">"Value"</th><th scope="col"><span class="visually-hidden">"Remove"</span></th></tr></thead>
                <tbody>
                    <For each=move || rows.get() key=|r| r.0 let:row>
                        {
                            let key = row.0;
                            view! {
                                <tr>
                                    <td><input name="counter_name[]" autocomplete="off" aria-label=move || format!("Name of counter {}", position(key)) value=row.1.clone() maxlength="64" on:input=move |ev| set(key, true, event_target_value(&ev))/></td>
                                    <td><input name="counter_value[]" autocomplete="off" type="number" step="1" aria-label=move || format!("Value of counter {}", position(key)) value=row.2.clone() on:input=move |ev| set(key, false, event_target_value(&ev))/></td>
                                    <td><button type="button" class="small" aria-label=move || format!("Remove counter {}", position(key)) on:click=move |_| rows.update(|r| r.retain(|x| x.0 != key))>"Remove"</button></td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
            <button type="button" class="small" on:click=move |_| {
                let key = next.get_value();
                next.set_value(key + 1);
                rows.update(|r| r.push((key, String::new(), String::new())));
            }>"Add a counter"</button>
        </fieldset>
    }
}
