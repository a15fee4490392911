//! Activation Center pages: orders with their licences and activations (administrators: all;
//! client users: their own), and the activations list. Products and the offline exchange have
//! pages of their own (`products`, `offline`).

use crate::components::{
    area, created_here, list_address, loaded, match_count, options, or_dash, sort_head,
    text_options, time_or, ActionDone, ActionError, AddressFilter, ChoiceField, ColumnHeads,
    ConfirmButton, CounterRows, CsvLink, DeleteZone, DeletedBanner, DoneBanner, Field, LinkPager,
    LoadError, LocalTime, PageAndSortFields, RowAction, SortDefaults,
};
use crate::server_fns::catalog::{
    BulkLicences, CreateOrder, DeleteOrder, EditLicence, FreeLicenceNow, RemoveActivation,
    UpdateOrder,
};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use protocol::catalog::{
    counter_lines, ActivationFilter, Licence, Order, OrderFilter, Product, Removal,
};
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

/// The orders list's filters as the address gives them.
fn order_filter(q: &leptos_router::params::ParamsMap) -> OrderFilter {
    OrderFilter {
        q: address_text(q, "q"),
        client_id: address_number(q, "client_id"),
        product: address_text(q, "product"),
        sort: address_text(q, "sort"),
        order: address_text(q, "order"),
    }
}

/// Orders: every client's for an administrator, one's own otherwise; filtered, sorted and paged
/// by the server with the filters in the address, exported as CSV with the same filters.
/// (The area's gate has already checked the role; `admin` only chooses what to show.)
#[component]
pub fn OrdersPage(admin: bool) -> impl IntoView {
    let (filter, after, limit) = address_list(order_filter);
    let table = Resource::new(
        move || (filter.get(), after.get(), limit.get()),
        |(f, after, limit)| crate::server_fns::catalog::orders_page(f, after, limit),
    );
    let choices = filter_choices(admin);
    let base = area(admin);
    let here = format!("{base}/orders");
    let action = here.clone();
    let link = move |f: &OrderFilter, after: Option<&str>| {
        list_address(&here, f.query_string(), limit.get_untracked(), after)
    };
    let csv = move || list_address("/orders.csv", filter.get().query_string(), None, None);
    view! {
        <Title text="Orders · Licentia"/>
        <h1>{if admin { "Orders" } else { "My orders" }}</h1>
        {admin.then(|| view! { <DeletedBanner kind="Order"/> })}
        <section class="card">
            <leptos_router::components::Form method="get" action=action>
                <div class="filters" role="search">
                    <SearchFilter id="orders-q" placeholder="client, product or reference" q=Signal::derive(move || filter.get().q)/>
                    <ProductFilter id="orders-product" admin choices current=Signal::derive(move || filter.get().product.unwrap_or_default())/>
                    {admin.then(|| view! {
                        <ClientFilter id="orders-client" choices current=Signal::derive(move || filter.get().client_id)/>
                    })}
                    <PageAndSortFields id="orders-limit" limit default=crate::server_fns::catalog::ORDERS_PER_PAGE filter/>
                    <div class="field"><button type="submit" class="primary">"Filter"</button></div>
                </div>
            </leptos_router::components::Form>
            <div class="table-tools">
                <CsvLink href=Signal::derive(csv) test_id="orders-csv"/>
                {admin.then(|| view! { <a class="button primary" href="/admin/orders/new">"New order"</a> })}
            </div>
            {loaded(table, move |t| {
                let f = filter.get_untracked();
                let next = t.next.as_deref().map(|n| link(&f, Some(n)));
                let first = after.get_untracked().is_some().then(|| link(&f, None));
                let head = |key: &'static str, label: &'static str| {
                    sort_head(&f, &SortDefaults { key: "created", descending: SortDefaults::DESCENDING }, key, label, key != "created", |to| link(to, None))
                };
                view! {
                    <p class="muted" data-testid="orders-count">{match t.total {
                        0 if f == OrderFilter::default() => "No orders yet.".to_owned(),
                        total => match_count(total, t.rows.len(), "order", "orders"),
                    }}</p>
                    <table>
                        <caption class="visually-hidden">"Orders"</caption>
                        <thead><tr>
                            {head("created", "Order")}
                            {head("client", "Client")}
                            {head("product", "Product")}
                            <th scope="col">"Reference"</th>
                            <th scope="col" class="num">"Licences"</th>
                            <th scope="col" class="num">"Activated"</th>
                            <th scope="col">"Created"</th>
                        </tr></thead>
                        <tbody>
                            {t.rows.into_iter().map(|o| view! {
                                <tr>
                                    <td><a href=format!("{base}/orders/{}", o.id)>{format!("#{}", o.id)}</a></td>
                                    <td class="wrap">{o.client_name.clone()}</td>
                                    <td class="wrap">{format!("{} · {}", o.product_code, o.product_name)}</td>
                                    <td class="wrap">{or_dash(o.reference.clone())}</td>
                                    <td class="num">{o.quantity}</td>
                                    <td class="num">{o.active}</td>
                                    <td><LocalTime unix_secs=o.created_at/></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <LinkPager label="Orders pages" first next next_testid="orders-next"/>
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
                                    <Field label="Number of licences" name="quantity" id="order-quantity".to_owned() kind="number" min=1 value="1"/>
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
    view! {
        <fieldset>
            <legend>"Features"</legend>
            <FeatureChecks catalogue enabled prefix=format!("{prefix}-feature")/>
        </fieldset>
        <CounterRows counters/>
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
        <BulkOutcome bulk/>
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

/// What the last bulk action did, or why it did nothing.
#[component]
pub(crate) fn BulkOutcome(bulk: ServerAction<BulkLicences>) -> impl IntoView {
    view! {
        <ActionError action=bulk/>
        {move || bulk.value().with(|v| match v {
            Some(Ok(n)) => Some(view! { <p class="notice" role="status">{format!("Done for {n} licence{}.", if *n == 1 { "" } else { "s" })}</p> }),
            _ => None,
        })}
    }
}

/// What to do to the ticked licences of a table, all at once (administrators): the licences'
/// checkboxes belong to this form (`form="bulk-licences"`). Every ticked licence is checked
/// before any is changed.
#[component]
pub(crate) fn BulkForm(
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

/// A filter's text in the address (an empty field, as a filter form sends one it was not
/// given, is no filter).
pub(crate) fn address_text(q: &leptos_router::params::ParamsMap, k: &str) -> Option<String> {
    q.get(k).filter(|v| !v.trim().is_empty())
}

/// A filter's number in the address.
pub(crate) fn address_number(q: &leptos_router::params::ParamsMap, k: &str) -> Option<i64> {
    address_text(q, k).and_then(|v| v.trim().parse::<i64>().ok())
}

/// The activations list's filters as the address gives them.
fn activation_filter(q: &leptos_router::params::ParamsMap) -> ActivationFilter {
    let text = |k: &str| address_text(q, k);
    ActivationFilter {
        q: text("q"),
        product: text("product"),
        client_id: address_number(q, "client_id"),
        mode: text("mode"),
        status: text("status"),
        expiring_within_days: address_number(q, "expiring_within_days"),
        sort: text("sort"),
        order: text("order"),
    }
}

/// A list's filters, page size and cursor as the address gives them (`filter` reads the
/// filters).
pub(crate) fn address_list<F: AddressFilter + PartialEq>(
    filter: fn(&leptos_router::params::ParamsMap) -> F,
) -> (Memo<F>, Memo<Option<String>>, Memo<Option<i64>>) {
    let asked = leptos_router::hooks::use_query_map();
    let filter = Memo::new(move |_| asked.with(filter));
    let after = Memo::new(move |_| asked.with(|q| q.get("after")));
    let limit = Memo::new(move |_| asked.with(|q| address_number(q, "limit")));
    (filter, after, limit)
}

/// Which machine holds which licence, and which held one before: filtered, sorted and paged by
/// the server, the filters in the address (a link or a reload keeps them), exported as CSV
/// with the same filters.
#[component]
pub fn ActivationsPage(admin: bool) -> impl IntoView {
    let (filter, after, limit) = address_list(activation_filter);
    let table = Resource::new(
        move || (filter.get(), after.get(), limit.get()),
        |(f, after, limit)| crate::server_fns::catalog::activations_page(f, after, limit),
    );
    let base = area(admin);
    let here = format!("{base}/activations");
    let action = here.clone();
    let link = move |f: &ActivationFilter, after: Option<&str>| {
        list_address(&here, f.query_string(), limit.get_untracked(), after)
    };
    let csv = move || list_address("/activations.csv", filter.get().query_string(), None, None);
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
                let head = |key: &'static str, label: &'static str| {
                    sort_head(&f, &SortDefaults { key: "activated", descending: SortDefaults::DESCENDING }, key, label, matches!(key, "machine" | "client" | "product"), |to| link(to, None))
                };
                view! {
                    <p class="muted" data-testid="activations-count">{match_count(t.total, t.rows.len(), "activation", "activations")}</p>
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
                    <LinkPager label="Activations pages" first next next_testid="activations-next"/>
                }
                .into_any()
            })}
        </section>
    }
}

/// The clients and products of a list filter's selects, once fetched.
pub(crate) type FilterChoices =
    RwSignal<Option<(Vec<protocol::account::ClientSummary>, Vec<Product>)>>;

/// The clients and products an administrator's filter selects offer, fetched once the page is
/// interactive (none for a client user, who types a product code). Not a resource: one read
/// inside the area's loading boundary would hold it back in the browser and break hydration.
pub(crate) fn filter_choices(admin: bool) -> FilterChoices {
    let choices = RwSignal::new(None);
    Effect::new(move |_| {
        if admin {
            leptos::task::spawn_local(async move {
                let clients = crate::server_fns::accounts::list_clients().await;
                let products = crate::server_fns::catalog::list_products().await;
                if let (Ok(clients), Ok(products)) = (clients, products) {
                    choices.set(Some((clients, products)));
                }
            });
        }
    });
    choices
}

/// A list filter's product: a select of the products for an administrator, a product code
/// typed otherwise. `current` follows the address.
#[component]
pub(crate) fn ProductFilter(
    id: &'static str,
    admin: bool,
    choices: FilterChoices,
    current: Signal<String>,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>"Product"</label>
            {move || {
                let current = current.get();
                match choices.get() {
                    Some((_, products)) if admin => {
                        let mut items = vec![(String::new(), "All products".to_owned())];
                        items.extend(products.iter().map(|p| (p.code.clone(), format!("{} · {}", p.code, p.name))));
                        view! { <select id=id name="product" inner_html=text_options(&items, &current)/> }.into_any()
                    }
                    _ => view! { <input id=id name="product" value=current placeholder="product code"/> }.into_any(),
                }
            }}
        </div>
    }
}

/// A list filter's client (administrators).
#[component]
pub(crate) fn ClientFilter(
    id: &'static str,
    choices: FilterChoices,
    current: Signal<Option<i64>>,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>"Client"</label>
            {move || {
                let current = current.get().map(|c| c.to_string()).unwrap_or_default();
                let mut items = vec![(String::new(), "All clients".to_owned())];
                if let Some((clients, _)) = choices.get() {
                    items.extend(clients.iter().map(|c| (c.id.to_string(), c.name.clone())));
                }
                view! { <select id=id name="client_id" inner_html=text_options(&items, &current)/> }
            }}
        </div>
    }
}

/// A list filter's search box, following the address.
#[component]
pub(crate) fn SearchFilter(
    id: &'static str,
    placeholder: &'static str,
    q: Signal<Option<String>>,
) -> impl IntoView {
    let now = move || q.get().unwrap_or_default();
    view! {
        <div class="field">
            <label for=id>"Search"</label>
            <input id=id name="q" type="search" maxlength="100" value=q.get_untracked().unwrap_or_default() prop:value=now placeholder=placeholder/>
        </div>
    }
}

/// A list filter's "ending within so many days", following the address.
#[component]
pub(crate) fn EndingFilter(id: &'static str, days: Signal<Option<i64>>) -> impl IntoView {
    let shown = move || days.get().map(|d| d.to_string()).unwrap_or_default();
    view! {
        <div class="field">
            <label for=id>"Ending within (days)"</label>
            <input id=id name="expiring_within_days" type="number" min="0" max="3650" value=days.get_untracked().map(|d| d.to_string()).unwrap_or_default() prop:value=shown/>
        </div>
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
    let choices = filter_choices(admin);
    view! {
        <leptos_router::components::Form method="get" action=action>
            <div class="filters" role="search">
                // The address is the truth: every field follows it (a sort header clicked, Back).
                <SearchFilter id="activations-q" placeholder="licence key, serial, machine, client or product" q=Signal::derive(move || filter.get().q)/>
                <ProductFilter id="activations-product" admin choices current=Signal::derive(move || filter.get().product.unwrap_or_default())/>
                {admin.then(|| view! {
                    <ClientFilter id="activations-client" choices current=Signal::derive(move || filter.get().client_id)/>
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
                <EndingFilter id="activations-expiring" days=Signal::derive(move || filter.get().expiring_within_days)/>
                <PageAndSortFields id="activations-limit" limit default=crate::server_fns::catalog::ACTIVATIONS_PER_PAGE filter/>
                <div class="field"><button type="submit" class="primary">"Filter"</button></div>
            </div>
        </leptos_router::components::Form>
    }
}
