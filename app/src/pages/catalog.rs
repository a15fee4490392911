//! Activation Center pages: orders with their licences and activations (administrators: all;
//! client users: their own), and the activations list. Products and the offline exchange have
//! pages of their own (`products`, `offline`).

use crate::components::{
    area, by_text, created_here, loaded, or_dash, shown_rows, time_or, ActionDone, ActionError,
    ColumnHeads, ConfirmButton, CsvLink, DeleteZone, DeletedBanner, DoneBanner, Field, LoadError,
    LocalTime, RowAction, SearchBox, Sort, SortHeads, TableCount,
};
use crate::server_fns::catalog::{
    BulkLicences, CreateOrder, DeleteOrder, EditLicence, FreeLicenceNow, RemoveActivation,
    UpdateOrder,
};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use protocol::catalog::{counter_lines, ActivationFilter, Licence, Order, Product, Removal};
use std::collections::BTreeMap;

pub(crate) fn id_param(
    name: &'static str,
) -> impl Fn() -> Option<i64> + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get(name).and_then(|s| s.parse::<i64>().ok())
}

pub(crate) fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

fn compare_orders(key: &'static str, a: &Order, b: &Order) -> std::cmp::Ordering {
    match key {
        "client" => by_text(&a.client_name, &b.client_name),
        "product" => a.product_code.cmp(&b.product_code),
        "quantity" => a.quantity.cmp(&b.quantity),
        "active" => a.active.cmp(&b.active),
        "created" => a.created_at.cmp(&b.created_at),
        _ => a.id.cmp(&b.id),
    }
}

/// Orders: every client's for an administrator (with a form for a new one), one's own otherwise.
/// (The area's gate has already checked the role; `admin` only chooses what to show.)
#[component]
pub fn OrdersPage(admin: bool) -> impl IntoView {
    let orders = Resource::new(|| (), |_| crate::server_fns::catalog::list_orders());
    let query = RwSignal::new(String::new());
    let sort = Sort::descending("id");
    let base = area(admin);
    view! {
        <Title text="Orders · Licentia"/>
        <h1>{if admin { "Orders" } else { "My orders" }}</h1>
        {admin.then(|| view! { <DeletedBanner kind="Order"/> })}
        <section class="card">
            <div class="table-tools">
                <SearchBox query label="Search orders"/>
                <CsvLink href="/orders.csv".to_owned() test_id="orders-csv"/>
                {admin.then(|| view! { <a class="button primary" href="/admin/orders/new">"New order"</a> })}
            </div>
            {loaded(orders, move |all| {
                    let total = all.len();
                    let rows = shown_rows(all, query, sort, |o: &Order| vec![o.client_name.clone(), o.product_code.clone(), o.product_name.clone(), o.reference.clone(), o.id.to_string()], compare_orders);
                    view! {
                        <table>
                            <caption class="visually-hidden">"Orders"</caption>
                            <thead><tr>
                                <SortHeads sort columns=&[("id", "Order"), ("client", "Client"), ("product", "Product")]/>
                                <th scope="col">"Reference"</th>
                                <SortHeads sort columns=&[("quantity", "Licences"), ("active", "Activated"), ("created", "Created")] numeric=&["quantity", "active"]/>
                            </tr></thead>
                            <tbody>
                                <For each=move || rows.get() key=|o| (o.id, o.active, o.quantity) let:o>
                                    <tr>
                                        <td><a href=format!("{base}/orders/{}", o.id)>{format!("#{}", o.id)}</a></td>
                                        <td>{o.client_name.clone()}</td>
                                        <td>{format!("{} · {}", o.product_code, o.product_name)}</td>
                                        <td>{or_dash(o.reference.clone())}</td>
                                        <td class="num">{o.quantity}</td>
                                        <td class="num">{o.active}</td>
                                        <td><LocalTime unix_secs=o.created_at/></td>
                                    </tr>
                                </For>
                            </tbody>
                        </table>
                        <TableCount total shown=Signal::derive(move || rows.with(Vec::len)) noun="orders" empty="No orders yet."/>
                    }
                        .into_any()
                })}
        </section>
    }
}

/// The page that creates an order (from the list's *New order*); the order's page follows.
#[component]
pub fn NewOrderPage() -> impl IntoView {
    let create = ServerAction::<CreateOrder>::new();
    view! {
        <Title text="New order · Licentia"/>
        <p class="breadcrumb"><a href="/admin/orders">"Orders"</a></p>
        <h1>"New order"</h1>
        <NewOrder create/>
    }
}

/// `<option>`s as HTML. Chromium's parser treats text inside `<select>` differently from the
/// hydration walk (names with quotes broke it), so options are set as inner HTML, escaped here.
pub(crate) fn options(items: impl Iterator<Item = (i64, String)>) -> String {
    items
        .map(|(id, label)| format!("<option value=\"{id}\">{}</option>", escape_html(&label)))
        .collect()
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

#[component]
fn NewOrder(create: ServerAction<CreateOrder>) -> impl IntoView {
    // Fetched in the browser only: the form is not needed before the page is interactive.
    let choices = LocalResource::new(|| async {
        let clients = crate::server_fns::accounts::list_clients().await?;
        let products = crate::server_fns::catalog::list_products().await?;
        Ok::<_, crate::error::PortalError>((clients, products))
    });
    view! {
        <section class="card">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match choices.await {
                        Ok((clients, products)) if !clients.is_empty() && !products.is_empty() => view! {
                            <ActionForm action=create>
                                <div class="grid-2">
                                    <div class="field">
                                        <label for="order-client">"Client"</label>
                                        <select id="order-client" name="client_id" required inner_html=options(clients.iter().map(|c| (c.id, c.name.clone())))/>
                                    </div>
                                    <div class="field">
                                        <label for="order-product">"Product"</label>
                                        <select id="order-product" name="product_id" required inner_html=options(products.iter().map(|p| (p.id, format!("{} · {}", p.code, p.name))))/>
                                    </div>
                                    <Field label="Number of licences" name="quantity" id="order-quantity".to_owned() kind="number" value="1"/>
                                    <Field label="Reference (optional)" name="reference" id="order-reference".to_owned() required=false maxlength=100/>
                                </div>
                                <p class="hint">"Features and counters start from the product's defaults; change them on the order's page."</p>
                                <ActionError action=create/>
                                <button type="submit" class="primary" disabled=create.pending()>"Create order"</button>
                            </ActionForm>
                        }
                            .into_any(),
                        Ok(_) => view! { <p class="muted">"Create a client and a product first."</p> }.into_any(),
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// One order with its licences and their activations.
#[component]
pub fn OrderDetail(admin: bool) -> impl IntoView {
    let created = created_here();
    let id = id_param("id");
    let update = ServerAction::<UpdateOrder>::new();
    let delete = ServerAction::<DeleteOrder>::new();
    let edit = ServerAction::<EditLicence>::new();
    let remove = ServerAction::<RemoveActivation>::new();
    let free_now = ServerAction::<FreeLicenceNow>::new();
    let bulk = ServerAction::<BulkLicences>::new();
    let page = Resource::new(
        move || {
            (
                id(),
                update.version().get(),
                edit.version().get(),
                remove.version().get(),
                free_now.version().get(),
                bulk.version().get(),
            )
        },
        |(id, ..)| crate::server_fns::catalog::get_order_page(id.unwrap_or(0)),
    );
    view! {
        <p class="breadcrumb"><a href=format!("{}/orders", area(admin))>"Orders"</a></p>
        {loaded(page, move |p| {
                let o = p.order.clone();
                let title = format!("Order #{} · {} · {}", o.id, o.product_code, o.client_name);
                view! {
                    <Title text=format!("{title} · Licentia")/>
                    <h1>{title}</h1>
                    <DoneBanner created what=format!("Order #{} for {} ({} × {})", o.id, o.client_name, o.quantity, o.product_code)/>
                    <section class="card">
                        <h2>"Terms"</h2>
                        <dl class="facts">
                            <dt>"Product"</dt><dd>{format!("{} · {}", p.product.code, p.product.name)}</dd>
                            <dt>"Client"</dt><dd>{o.client_name.clone()}</dd>
                            <dt>"Reference"</dt><dd>{if o.reference.is_empty() { "—".to_owned() } else { o.reference.clone() }}</dd>
                            <dt>"Features"</dt><dd>{if o.features.is_empty() { "(none)".to_owned() } else { o.features.join(", ") }}</dd>
                            <dt>"Counters"</dt><dd>{if o.counters.is_empty() { "(none)".to_owned() } else { counter_lines(&o.counters).replace('\n', ", ") }}</dd>
                            <dt>"Licences"</dt><dd>{format!("{} ({} activated)", o.quantity, o.active)}</dd>
                            <dt>"Limited"</dt><dd>{yes_no(p.product.settings.limited)}</dd>
                            <dt>"Users may remove"</dt><dd>{if p.product.settings.limited { "No (limited licences: only an administrator removes them)" } else { yes_no(p.product.settings.end_user_removal) }}</dd>
                        </dl>
                        {admin.then(|| view! { <OrderTerms update order=o.clone() product=p.product.clone()/> })}
                    </section>
                    <section class="card">
                        <div class="section-head">
                            <h2>"Licences"</h2>
                            <CsvLink href=format!("/orders/{}/licences.csv", o.id) test_id="licences-csv"/>
                        </div>
                        <LicencesSection licences=p.licences.clone() product=p.product.clone() admin edit remove free_now bulk/>
                    </section>
                    {admin.then(|| view! {
                        <DeleteZone title="Delete order" explain=format!("Deletes the order and its {} licences. {} activated machine(s) will be told at their next validation that their licence is gone.", o.quantity, o.active)>
                            <ActionError action=delete/>
                            <RowAction action=delete id=o.id question=format!("Delete order #{}? {} activated machine(s) will stop working at their next validation.", o.id, o.active) label="Delete order" class="danger"/>
                        </DeleteZone>
                    })}
                }
                    .into_any()
            })}
    }
}

#[component]
pub(crate) fn FeatureChecks(
    catalogue: Vec<protocol::catalog::Feature>,
    enabled: Vec<String>,
    prefix: String,
) -> impl IntoView {
    catalogue
        .into_iter()
        .map(|f| {
            let id = format!("{prefix}-{}", f.code);
            let on = enabled.contains(&f.code);
            view! {
                <span class="check">
                    <input type="checkbox" id=id.clone() name="features[]" value=f.code.clone() checked=on/>
                    <label for=id>{format!("{} ({})", f.name, f.code)}</label>
                </span>
            }
        })
        .collect_view()
}

/// A licence's features (ticks over the product's catalogue) and counters, as a form edits them.
#[component]
pub(crate) fn TermsFields(
    catalogue: Vec<protocol::catalog::Feature>,
    enabled: Vec<String>,
    counters: BTreeMap<String, i64>,
    prefix: String,
) -> impl IntoView {
    let counters_id = format!("{prefix}-counters");
    view! {
        <fieldset>
            <legend>"Features"</legend>
            <FeatureChecks catalogue enabled prefix=format!("{prefix}-feature")/>
        </fieldset>
        <div class="field">
            <label for=counters_id.clone()>"Counters"</label>
            <textarea id=counters_id name="counters" rows="2">{counter_lines(&counters)}</textarea>
            <small class="hint">"One per line: name = number."</small>
        </div>
    }
}

#[component]
fn OrderTerms(update: ServerAction<UpdateOrder>, order: Order, product: Product) -> impl IntoView {
    view! {
        <details>
            <summary>"Change the terms"</summary>
            <ActionForm action=update>
                <input type="hidden" name="id" value=order.id/>
                <TermsFields catalogue=product.features enabled=order.features counters=order.counters prefix="order".into()/>
                <Field label="Reference" name="reference" id="order-ref".to_owned() required=false value=order.reference.clone() maxlength=100/>
                <div class="field">
                    <label for="order-notes">"Notes"</label>
                    <textarea id="order-notes" name="notes" rows="2">{order.notes.clone()}</textarea>
                </div>
                <ActionError action=update/>
                <ActionDone action=update message=format!("Order #{} was saved. Licences without terms of their own follow these.", order.id)/>
                <button type="submit" class="primary">"Save terms"</button>
            </ActionForm>
        </details>
    }
}

/// A licence table with the outcome of the last edit or removal above it.
#[component]
pub(crate) fn LicencesSection(
    licences: Vec<Licence>,
    product: Product,
    admin: bool,
    edit: ServerAction<EditLicence>,
    remove: ServerAction<RemoveActivation>,
    free_now: ServerAction<FreeLicenceNow>,
    bulk: ServerAction<BulkLicences>,
) -> impl IntoView {
    let catalogue = product.features.clone();
    view! {
        <ActionError action=bulk/>
        {move || bulk.value().with(|v| match v {
            Some(Ok(n)) => Some(view! { <p class="notice" role="status">{format!("Done for {n} licence{}.", if *n == 1 { "" } else { "s" })}</p> }),
            _ => None,
        })}
        <ActionError action=remove/>
        {move || remove.value().with(|v| match v {
            Some(Ok(Removal { frees_at: Some(at) })) => Some(view! {
                <p class="notice" role="status">
                    "The licence was removed from its machine. It frees on " <LocalTime unix_secs=*at/>
                    ", when that machine's code stops working offline; a removal code made on that machine frees it at once (Offline activation, Transfer)."
                </p>
            }.into_any()),
            Some(Ok(Removal { frees_at: None })) => Some(view! {
                <p class="notice" role="status">"The licence was removed from its machine and is free."</p>
            }.into_any()),
            _ => None,
        })}
        <ActionError action=free_now/>
        <ActionDone action=free_now message="The licence is free now. The removed machine may keep working offline until its code lapses."/>
        <ActionError action=edit/>
        <ActionDone action=edit message="The licence was changed; the application picks it up at its next validation."/>
        <table>
            <caption class="visually-hidden">"Licences"</caption>
            <thead><tr>
                {admin.then(|| view! { <th scope="col"><span class="visually-hidden">"Ticked"</span></th> })}
                <ColumnHeads names=&["Licence key", "Machine", "Activated", "Expires", "Features", "Activations used", "Actions"]/>
            </tr></thead>
            <tbody>
                {licences.into_iter().map(|l| {
                    let catalogue = product.features.clone();
                    let max = product.settings.max_activations;
                    let act = l.activation.clone();
                    view! {
                        <tr data-licence=l.key.clone()>
                            {admin.then(|| view! {
                                <td><input type="checkbox" name="ids[]" value=l.id form="bulk-licences" aria-label=format!("Tick licence {}", l.key)/></td>
                            })}
                            <td><a href=format!("{}/licences/{}", area(admin), l.id)><code>{l.key.clone()}</code></a></td>
                            <td>{match (act.as_ref(), l.pending_free.clone()) {
                                (Some(a), _) => view! { <span>{a.hostname.clone()}</span> }.into_any(),
                                (None, Some(p)) => view! {
                                    <span class="muted" data-testid="pending-free">
                                        {format!("Removed from {} without it; frees on ", p.hostname)}<LocalTime unix_secs=p.frees_at/>
                                    </span>
                                }.into_any(),
                                (None, None) => view! { <span class="muted">"Not activated"</span> }.into_any(),
                            }}</td>
                            <td>{act.as_ref().map(|a| view! { <LocalTime unix_secs=a.activated_at/> })}</td>
                            <td>{if l.open_ended { "No end date".to_owned() } else { or_dash(l.expires_on.clone().unwrap_or_default()) }}</td>
                            <td>{or_dash(l.features.join(", "))}</td>
                            <td class="num">{format!("{} of {max}", l.activation_count)}</td>
                            <td class="actions">
                                // Shown to client users too: where the rules forbid it, the refusal says why.
                                {act.is_some().then(|| {
                                    let msg = format!("Remove licence {} from {}? The application there stops working at its next validation.", l.key, act.as_ref().map(|a| a.hostname.clone()).unwrap_or_default());
                                    view! {
                                        <RowAction action=remove field="licence_id" id=l.id question=msg label="Remove"/>
                                    }
                                })}
                                {(admin && l.pending_free.is_some()).then(|| {
                                    let msg = format!("Free licence {} now? The machine it was removed from may keep working offline until its code lapses.", l.key);
                                    view! {
                                        <RowAction action=free_now field="licence_id" id=l.id question=msg label="Free now"/>
                                    }
                                })}
                                {admin.then(|| view! {
                                    <details>
                                        <summary>"Edit"</summary>
                                        <ActionForm action=edit>
                                            <input type="hidden" name="licence_id" value=l.id/>
                                            <TermsFields catalogue enabled=l.features.clone() counters=l.counters.clone() prefix=format!("licence-{}", l.id)/>
                                            <div class="field">
                                                <label for=format!("licence-{}-expires", l.id)>"Expires on"</label>
                                                <input id=format!("licence-{}-expires", l.id) name="expires_on" type="date" value=l.expires_on.clone().unwrap_or_default()/>
                                                <small class="hint">"Today or later. Empty keeps the current end."</small>
                                            </div>
                                            <div class="check">
                                                <input type="checkbox" id=format!("licence-{}-no-end", l.id) name="no_end" checked=l.open_ended/>
                                                <label for=format!("licence-{}-no-end", l.id)>"No end date (never expires, even for a limited product)"</label>
                                            </div>
                                            <button type="submit">"Save licence"</button>
                                        </ActionForm>
                                    </details>
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        {admin.then(|| view! { <BulkForm bulk catalogue/> })}
    }
}

/// What to do to the ticked licences of a table, all at once (administrators). Every ticked
/// licence is checked before any is changed.
#[component]
fn BulkForm(
    bulk: ServerAction<BulkLicences>,
    catalogue: Vec<protocol::catalog::Feature>,
) -> impl IntoView {
    let features: Vec<(String, String)> =
        std::iter::once((String::new(), "(for a feature action)".to_owned()))
            .chain(
                catalogue
                    .into_iter()
                    .map(|f| (f.code.clone(), format!("{} ({})", f.name, f.code))),
            )
            .collect();
    view! {
        <ActionForm action=bulk attr:id="bulk-licences">
            <fieldset class="bulk">
                <legend>"With the ticked licences"</legend>
                <ChoiceField id="bulk-action" label="Action" name="action" current=String::new()
                    choices=&[("", "Choose…"), ("extend-30", "Extend by 30 days"), ("extend-365", "Extend by a year"), ("add-feature", "Add a feature"), ("remove-feature", "Remove a feature"), ("remove", "Remove from their machines")]/>
                <div class="field">
                    <label for="bulk-feature">"Feature"</label>
                    <select id="bulk-feature" name="feature" inner_html=text_options(&features, "")/>
                </div>
                <ConfirmButton question="Apply this to every ticked licence? The applications pick the change up at their next validation; a removed machine stops working then." label="Apply" class="small"/>
            </fieldset>
        </ActionForm>
    }
}

/// The activations list's filters as the address gives them.
/// (An empty field, as the filter form sends one it was not given, is no filter.)
fn activation_filter(q: &leptos_router::params::ParamsMap) -> ActivationFilter {
    let text = |k: &str| q.get(k).filter(|v| !v.trim().is_empty());
    let number = |k: &str| text(k).and_then(|v| v.trim().parse::<i64>().ok());
    ActivationFilter {
        q: text("q"),
        product: text("product"),
        client_id: number("client_id"),
        mode: text("mode"),
        status: text("status"),
        expiring_within_days: number("expiring_within_days"),
        sort: text("sort"),
        order: text("order"),
    }
}

/// Which machine holds which licence, and which held one before: filtered, sorted and paged by
/// the server, the filters in the address (a link or a reload keeps them), exported as CSV
/// with the same filters.
#[component]
pub fn ActivationsPage(admin: bool) -> impl IntoView {
    let asked = leptos_router::hooks::use_query_map();
    let filter = Memo::new(move |_| asked.with(activation_filter));
    let after = Memo::new(move |_| asked.with(|q| q.get("after")));
    let limit =
        Memo::new(move |_| asked.with(|q| q.get("limit").and_then(|l| l.parse::<i64>().ok())));
    let table = Resource::new(
        move || (filter.get(), after.get(), limit.get()),
        |(f, after, limit)| crate::server_fns::catalog::activations_page(f, after, limit),
    );
    let base = area(admin);
    let here = format!("{base}/activations");
    let action = here.clone();
    let link = move |f: &ActivationFilter, after: Option<&str>| {
        let mut q = f.query_string();
        let page = limit
            .get_untracked()
            .map(|l| format!("limit={l}"))
            .into_iter()
            .chain(after.map(|a| format!("after={}", protocol::audit::percent_encode(a))));
        for part in page {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(&part);
        }
        if q.is_empty() {
            here.to_owned()
        } else {
            format!("{here}?{q}")
        }
    };
    let csv = move || {
        let q = filter.get().query_string();
        if q.is_empty() {
            "/activations.csv".to_owned()
        } else {
            format!("/activations.csv?{q}")
        }
    };
    view! {
        <Title text="Activations · Licentia"/>
        <h1>"Activations"</h1>
        <section class="card">
            <ActivationFilters admin filter limit action/>
            <p><CsvLink href=Signal::derive(csv) test_id="activations-csv"/></p>
            {loaded(table, move |t| {
                let f = filter.get_untracked();
                let removed = matches!(f.status.as_deref(), Some("removed" | "all"));
                let next = t.next.as_deref().map(|n| link(&f, Some(n)));
                let first = after.get_untracked().is_some().then(|| link(&f, None));
                let shown = t.rows.len();
                let head = |key: &'static str, label: &'static str| {
                    let on = f.sort.as_deref().unwrap_or("activated") == key;
                    let descending = f.order.as_deref() != Some("asc");
                    let mut to = f.clone();
                    to.sort = Some(key.to_owned());
                    // Again on the sorted column reverses it; a new column starts with its
                    // natural order (names A–Z, times newest first).
                    let ascending = if on { descending } else { matches!(key, "machine" | "client" | "product") };
                    to.order = Some(if ascending { "asc" } else { "desc" }.to_owned());
                    let state = match (on, descending) {
                        (false, _) => "none",
                        (true, true) => "descending",
                        (true, false) => "ascending",
                    };
                    let arrow = match state { "ascending" => " ▲", "descending" => " ▼", _ => "" };
                    view! { <th scope="col" aria-sort=state><a class="sort" href=link(&to, None)>{label}{arrow}</a></th> }
                };
                view! {
                    <p class="muted" data-testid="activations-count">{match (t.total, shown) {
                        (0, _) => "No activation matches.".to_owned(),
                        (1, _) => "1 activation".to_owned(),
                        (n, s) if s as i64 == n => format!("{n} activations"),
                        (n, s) => format!("{n} activations match; {s} on this page"),
                    }}</p>
                    <div class="scroll">
                    <table>
                        <caption class="visually-hidden">"Activations"</caption>
                        <thead><tr>
                            <th scope="col">"Licence"</th>
                            {head("client", "Client")}
                            {head("product", "Product")}
                            {head("machine", "Machine")}
                            <th scope="col">"Mode"</th>
                            {head("activated", "Activated")}
                            {head("validated", "Last validated")}
                            <th scope="col" class="num">"Validations"</th>
                            <th scope="col">"Expires"</th>
                            {removed.then(|| view! { <th scope="col">"Removed"</th> })}
                        </tr></thead>
                        <tbody>
                            {t.rows.into_iter().map(|r| {
                                let shown_key = match &r.activation.serial { Some(serial) => serial.clone(), None => r.licence_key.clone() };
                                view! {
                                    <tr data-activation=r.activation.id>
                                        <td><a href=format!("{base}/licences/{}", r.activation.licence_id)><code>{shown_key}</code></a></td>
                                        <td class="wrap">{if r.serial_id.is_some() { view! { <span class="muted">"Web licence"</span> }.into_any() } else { view! { {r.client_name.clone()} }.into_any() }}</td>
                                        <td>{r.product_code.clone()}</td>
                                        <td class="wrap">{r.activation.hostname.clone()}</td>
                                        <td>{r.activation.mode.clone()}</td>
                                        <td><LocalTime unix_secs=r.activation.activated_at/></td>
                                        <td>{time_or(r.activation.last_validated_at, "Not yet")}</td>
                                        <td class="num">{r.activation.validations}</td>
                                        <td>{or_dash(r.expires_on.clone().unwrap_or_default())}</td>
                                        {removed.then(|| view! { <td>{time_or(r.activation.removed_at, "In use")}</td> })}
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                    <nav class="pager" aria-label="Activations pages">
                        {first.map(|href| view! { <a href=href>"← First page"</a> })}
                        {next.map(|href| view! { <a href=href data-testid="activations-next">"Next page →"</a> })}
                    </nav>
                }
                .into_any()
            })}
        </section>
    }
}

/// The activations list's filters: a GET form, so the filters land in the address.
#[component]
fn ActivationFilters(
    admin: bool,
    filter: Memo<ActivationFilter>,
    limit: Memo<Option<i64>>,
    action: String,
) -> impl IntoView {
    // Choices for administrators' selects, fetched in the browser once the page is up.
    let choices = LocalResource::new(move || async move {
        if !admin {
            return Ok::<_, crate::error::PortalError>((Vec::new(), Vec::new()));
        }
        let clients = crate::server_fns::accounts::list_clients().await?;
        let products = crate::server_fns::catalog::list_products().await?;
        Ok((clients, products))
    });
    view! {
        <leptos_router::components::Form method="get" action=action>
            <div class="filters" role="search">
                // The address is the truth: every field follows it (a sort header clicked, Back).
                <div class="field">
                    <label for="activations-q">"Search"</label>
                    <input id="activations-q" name="q" type="search" maxlength="100" value=filter.get_untracked().q.unwrap_or_default() prop:value=move || filter.get().q.unwrap_or_default() placeholder="licence key, serial, machine, client or product"/>
                </div>
                <div class="field">
                    <label for="activations-product">"Product"</label>
                    {move || {
                        let current = filter.get().product.unwrap_or_default();
                        match choices.get().map(|c| c.ok()) {
                            Some(Some((_, products))) if admin => {
                                let mut items = vec![(String::new(), "All products".to_owned())];
                                items.extend(products.iter().map(|p| (p.code.clone(), format!("{} · {}", p.code, p.name))));
                                view! { <select id="activations-product" name="product" inner_html=text_options(&items, &current)/> }.into_any()
                            }
                            _ => view! { <input id="activations-product" name="product" value=current placeholder="product code"/> }.into_any(),
                        }
                    }}
                </div>
                {admin.then(|| view! {
                    <div class="field">
                        <label for="activations-client">"Client"</label>
                        {move || {
                            let current = filter.get().client_id.map(|c| c.to_string()).unwrap_or_default();
                            let mut items = vec![(String::new(), "All clients".to_owned())];
                            if let Some(Ok((clients, _))) = choices.get() {
                                items.extend(clients.iter().map(|c| (c.id.to_string(), c.name.clone())));
                            }
                            view! { <select id="activations-client" name="client_id" inner_html=text_options(&items, &current)/> }
                        }}
                    </div>
                })}
                {move || {
                    let f = filter.get();
                    view! {
                        <ChoiceField id="activations-status" label="Status" name="status" current=f.status.clone().unwrap_or_else(|| "live".into())
                            choices=&[("live", "In use now"), ("removed", "Removed"), ("all", "All, past ones too")]/>
                        <ChoiceField id="activations-mode" label="Mode" name="mode" current=f.mode.clone().unwrap_or_default()
                            choices=&[("", "Online and offline"), ("online", "Online"), ("offline", "Offline")]/>
                    }
                }}
                <div class="field">
                    <label for="activations-expiring">"Ending within (days)"</label>
                    <input id="activations-expiring" name="expiring_within_days" type="number" min="0" max="3650" value=filter.get_untracked().expiring_within_days.map(|d| d.to_string()).unwrap_or_default() prop:value=move || filter.get().expiring_within_days.map(|d| d.to_string()).unwrap_or_default()/>
                </div>
                <div class="field">
                    <label for="activations-limit">"Rows per page"</label>
                    {move || {
                        let current = limit.get().unwrap_or(crate::server_fns::catalog::ACTIVATIONS_PER_PAGE).to_string();
                        let mut items: Vec<(String, String)> = ["25", "50", "100", "500"].iter().map(|n| (n.to_string(), n.to_string())).collect();
                        if !items.iter().any(|(v, _)| *v == current) {
                            items.push((current.clone(), current.clone()));
                        }
                        view! { <select id="activations-limit" name="limit" inner_html=text_options(&items, &current)/> }
                    }}
                </div>
                <input type="hidden" name="sort" value=filter.get_untracked().sort.unwrap_or_default() prop:value=move || filter.get().sort.unwrap_or_default()/>
                <input type="hidden" name="order" value=filter.get_untracked().order.unwrap_or_default() prop:value=move || filter.get().order.unwrap_or_default()/>
                <div class="field"><button type="submit" class="primary">"Filter"</button></div>
            </div>
        </leptos_router::components::Form>
    }
}

/// A labelled `<select>` of fixed `(value, label)` choices, `current` selected.
#[component]
fn ChoiceField(
    id: &'static str,
    label: &'static str,
    name: &'static str,
    choices: &'static [(&'static str, &'static str)],
    current: String,
) -> impl IntoView {
    let items: Vec<(String, String)> = choices
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .collect();
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <select id=id name=name inner_html=text_options(&items, &current)/>
        </div>
    }
}

/// `<option>`s of `(value, label)` as HTML, `current` selected (see `options`).
pub(crate) fn text_options(items: &[(String, String)], current: &str) -> String {
    items
        .iter()
        .map(|(value, label)| {
            let on = if value == current { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{on}>{}</option>",
                escape_html(value),
                escape_html(label)
            )
        })
        .collect()
}
