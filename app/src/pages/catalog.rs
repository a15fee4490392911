//! Activation Center pages: products (administrators), orders with their licences and
//! activations (administrators: all; client users: their own), and answering offline requests.

use crate::catalog_api::{
    AnswerRequest, CreateOrder, DeleteOrder, DeleteProduct, EditLicence, RemoveActivation,
    SaveProduct, UpdateOrder,
};
use crate::components::{
    confirm, matches, or_dash, time_or, ActionDone, ActionError, CopyButton, Field, LoadError,
    LocalTime, SearchBox, Sort, SortHeader,
};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use protocol::catalog::{
    counter_lines, feature_lines, ActivationRow, Licence, Order, Product, ProductForm,
};

pub(crate) fn id_param(
    name: &'static str,
) -> impl Fn() -> Option<i64> + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get(name).and_then(|s| s.parse::<i64>().ok())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

fn compare_products(key: &'static str, a: &Product, b: &Product) -> std::cmp::Ordering {
    match key {
        "name" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
        "editor" => a.editor.cmp(&b.editor),
        "release" => a.release_number.cmp(&b.release_number),
        _ => a.code.cmp(&b.code),
    }
}

#[component]
pub fn ProductsPage() -> impl IntoView {
    let products = Resource::new(|| (), |_| crate::catalog_api::list_products());
    let query = RwSignal::new(String::new());
    let sort = Sort::new("code");
    view! {
        <Title text="Products · Licentia"/>
        <h1>"Products"</h1>
        <section class="card">
            <div class="table-tools">
                <SearchBox query label="Search products"/>
                <a class="button primary" href="/admin/products/new">"New product"</a>
            </div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match products.await {
                        Ok(all) => {
                            let total = all.len();
                            let rows = Memo::new(move |_| {
                                let needle = query.get().trim().to_lowercase();
                                let mut rows: Vec<Product> = all.iter().filter(|p| matches(&needle, &[&p.code, &p.name, &p.editor])).cloned().collect();
                                sort.apply(&mut rows, compare_products);
                                rows
                            });
                            view! {
                                <table>
                                    <caption class="visually-hidden">"Products"</caption>
                                    <thead><tr>
                                        <SortHeader sort key="code" label="Code"/>
                                        <SortHeader sort key="name" label="Name"/>
                                        <SortHeader sort key="editor" label="Editor"/>
                                        <SortHeader sort key="release" label="Release" numeric=true/>
                                        <th scope="col">"Limited"</th>
                                        <th scope="col">"Features"</th>
                                    </tr></thead>
                                    <tbody>
                                        <For each=move || rows.get() key=|p| p.id let:p>
                                            <tr>
                                                <td><a href=format!("/admin/products/{}", p.id)>{p.code.clone()}</a></td>
                                                <td>{p.name.clone()}</td>
                                                <td>{or_dash(p.editor.clone())}</td>
                                                <td class="num">{p.release_number}</td>
                                                <td>{yes_no(p.settings.limited)}</td>
                                                <td>{or_dash(p.features.iter().map(|f| f.code.clone()).collect::<Vec<_>>().join(", "))}</td>
                                            </tr>
                                        </For>
                                    </tbody>
                                </table>
                                <p class="muted">{move || match (total, rows.with(Vec::len)) {
                                    (0, _) => "No products yet. Create the first with New product: its code is what applications name.",
                                    (_, 0) => "No products match.",
                                    _ => "",
                                }}</p>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The product editor: `/admin/products/new` or `/admin/products/:id`.
#[component]
pub fn ProductPage() -> impl IntoView {
    let id = id_param("id");
    let save = ServerAction::<SaveProduct>::new();
    let delete = ServerAction::<DeleteProduct>::new();
    let product = Resource::new(
        move || (id(), save.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => crate::catalog_api::get_product(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <p class="breadcrumb"><a href="/admin/products">"Products"</a></p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match product.await {
                    Ok(p) => {
                        let title = p.as_ref().map_or("New product".to_owned(), |p| format!("{} · {}", p.code, p.name));
                        let form = p.as_ref().map(product_form).unwrap_or_else(|| ProductForm {
                            end_user_removal: Some("on".into()),
                            max_activations: "3".into(),
                            validate_every_days: "7".into(),
                            licences_per_serial: "1".into(),
                            heartbeat_secs: "120".into(),
                            max_borrow_days: "30".into(),
                            ..Default::default()
                        });
                        let pid = p.as_ref().map(|p| p.id);
                        view! {
                            <Title text=format!("{title} · Licentia")/>
                            <h1>{title}</h1>
                            <ProductEditor save id=pid form/>
                            {pid.map(|pid| view! {
                                <section class="card danger-zone">
                                    <h2>"Delete product"</h2>
                                    <p>"Only a product no order uses can be deleted."</p>
                                    <ActionForm action=delete>
                                        <input type="hidden" name="id" value=pid/>
                                        <ActionError action=delete/>
                                        <button type="submit" class="danger" on:click=move |ev| {
                                            if !confirm("Delete this product? This cannot be undone.") { ev.prevent_default(); }
                                        }>"Delete product"</button>
                                    </ActionForm>
                                </section>
                            })}
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn product_form(p: &Product) -> ProductForm {
    let s = &p.settings;
    let on = |b: bool| b.then(|| "on".to_owned());
    ProductForm {
        code: p.code.clone(),
        name: p.name.clone(),
        editor: p.editor.clone(),
        release_number: p.release_number.to_string(),
        release_date: p.release_date.clone().unwrap_or_default(),
        features: feature_lines(&p.features),
        default_features: p.default_features.join(", "),
        default_counters: counter_lines(&p.default_counters),
        limited: on(s.limited),
        validity_days: s.validity_days.map(|d| d.to_string()).unwrap_or_default(),
        fixed_start: s.fixed_start.clone().unwrap_or_default(),
        fixed_end: s.fixed_end.clone().unwrap_or_default(),
        expire_day_of_month: s
            .expire_day_of_month
            .map(|d| d.to_string())
            .unwrap_or_default(),
        end_user_removal: on(s.end_user_removal),
        max_activations: s.max_activations.to_string(),
        validate_every_days: s.validate_every_days.to_string(),
        licences_per_serial: s.licences_per_serial.to_string(),
        heartbeat_secs: s.heartbeat_secs.to_string(),
        borrowing_allowed: on(s.borrowing_allowed),
        max_borrow_days: s.max_borrow_days.to_string(),
    }
}

#[component]
fn Text(
    label: &'static str,
    name: &'static str,
    value: String,
    #[prop(default = false)] required: bool,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
) -> impl IntoView {
    let id = format!(
        "product-{}",
        name.trim_start_matches("form[").trim_end_matches(']')
    );
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input id=id name=name type=kind value=value required=required/>
            {hint.map(|h| view! { <small class="hint">{h}</small> })}
        </div>
    }
}

#[component]
fn Lines(
    label: &'static str,
    name: &'static str,
    value: String,
    hint: &'static str,
) -> impl IntoView {
    let id = format!(
        "product-{}",
        name.trim_start_matches("form[").trim_end_matches(']')
    );
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <textarea id=id name=name rows="4">{value}</textarea>
            <small class="hint">{hint}</small>
        </div>
    }
}

#[component]
fn Check(label: &'static str, name: &'static str, checked: bool) -> impl IntoView {
    let id = format!(
        "product-{}",
        name.trim_start_matches("form[").trim_end_matches(']')
    );
    view! {
        <div class="check">
            <input id=id.clone() name=name type="checkbox" checked=checked/>
            <label for=id>{label}</label>
        </div>
    }
}

#[component]
fn ProductEditor(
    save: ServerAction<SaveProduct>,
    id: Option<i64>,
    form: ProductForm,
) -> impl IntoView {
    let f = form;
    let limited = RwSignal::new(f.limited.is_some());
    let removal = RwSignal::new(f.end_user_removal.is_some());
    let removal_at_first = removal.get_untracked() && !limited.get_untracked();
    view! {
        <ActionForm action=save>
            {id.map(|id| view! { <input type="hidden" name="id" value=id/> })}
            <section class="card">
                <h2>"Product"</h2>
                <div class="grid-2">
                    <Text label="Code" name="form[code]" value=f.code required=true hint="Letters, digits, - _ . (e.g. ELEC-CALC); applications name the product by it."/>
                    <Text label="Name" name="form[name]" value=f.name required=true/>
                    <Text label="Editor" name="form[editor]" value=f.editor/>
                    <Text label="Release number" name="form[release_number]" value=f.release_number kind="number"/>
                    <Text label="Release date" name="form[release_date]" value=f.release_date kind="date"/>
                </div>
            </section>
            <section class="card">
                <h2>"Features and counters"</h2>
                <Lines label="Feature catalogue" name="form[features]" value=f.features hint="One per line: code: Name (e.g. print: Printing)."/>
                <Text label="Default features" name="form[default_features]" value=f.default_features hint="Feature codes new orders get, separated by commas."/>
                <Lines label="Default counters" name="form[default_counters]" value=f.default_counters hint="One per line: name = number (e.g. users = 5)."/>
            </section>
            <section class="card">
                <h2>"Licensing"</h2>
                <div class="check">
                    <input id="product-limited" name="form[limited]" type="checkbox" checked=f.limited.is_some()
                        on:change=move |ev| limited.set(event_target_checked(&ev))/>
                    <label for="product-limited">"Limited licences (they expire)"</label>
                </div>
                <div class="grid-2">
                    <Text label="Validity in days" name="form[validity_days]" value=f.validity_days kind="number" hint="Counted from the first activation."/>
                    <Text label="Expire on day of the month" name="form[expire_day_of_month]" value=f.expire_day_of_month kind="number" hint="1-31: the end moves forward to this day."/>
                    <Text label="Fixed window: from" name="form[fixed_start]" value=f.fixed_start kind="date"/>
                    <Text label="Fixed window: until" name="form[fixed_end]" value=f.fixed_end kind="date"/>
                </div>
                // A limited licence's users never remove it (its period would start again on
                // another machine): the box is off and says so while "Limited" is ticked.
                <div class="check">
                    <input id="product-end_user_removal" name="form[end_user_removal]" type="checkbox"
                        checked=removal_at_first prop:checked=move || removal.get() && !limited.get() disabled=move || limited.get()
                        on:change=move |ev| removal.set(event_target_checked(&ev))/>
                    <label for="product-end_user_removal">"End users may remove (transfer) their licences"</label>
                </div>
                <Show when=move || limited.get()>
                    <small class="hint" id="removal-hint">"Not for limited licences: their users cannot remove them (only an administrator can)."</small>
                </Show>
                <div class="grid-2">
                    <Text label="Activations per licence" name="form[max_activations]" value=f.max_activations kind="number" hint="Over the licence's life; a transfer uses one."/>
                    <Text label="Validate every (days)" name="form[validate_every_days]" value=f.validate_every_days kind="number"/>
                    <Text label="Licences per serial" name="form[licences_per_serial]" value=f.licences_per_serial kind="number" hint="Web model: 1-100."/>
                    <Text label="Heartbeat (seconds)" name="form[heartbeat_secs]" value=f.heartbeat_secs kind="number"/>
                </div>
                <Check label="Borrowing allowed" name="form[borrowing_allowed]" checked=f.borrowing_allowed.is_some()/>
                <Text label="Longest borrowing (days)" name="form[max_borrow_days]" value=f.max_borrow_days kind="number"/>
            </section>
            <ActionError action=save/>
            <ActionDone action=save message="Saved."/>
            <button type="submit" class="primary" disabled=save.pending()>"Save product"</button>
        </ActionForm>
    }
}

fn compare_orders(key: &'static str, a: &Order, b: &Order) -> std::cmp::Ordering {
    match key {
        "client" => a
            .client_name
            .to_lowercase()
            .cmp(&b.client_name.to_lowercase()),
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
    let create = ServerAction::<CreateOrder>::new();
    let orders = Resource::new(
        move || create.version().get(),
        |_| crate::catalog_api::list_orders(),
    );
    let query = RwSignal::new(String::new());
    let sort = Sort::new("id");
    sort.ascending.set(false);
    let base = if admin {
        "/admin/orders"
    } else {
        "/client/orders"
    };
    view! {
        <Title text="Orders · Licentia"/>
        <h1>{if admin { "Orders" } else { "My orders" }}</h1>
        <section class="card">
            <div class="table-tools"><SearchBox query label="Search orders"/></div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match orders.await {
                        Ok(all) => {
                            let total = all.len();
                            let rows = Memo::new(move |_| {
                                let needle = query.get().trim().to_lowercase();
                                let mut rows: Vec<Order> = all.iter().filter(|o| matches(&needle, &[&o.client_name, &o.product_code, &o.product_name, &o.reference, &o.id.to_string()])).cloned().collect();
                                sort.apply(&mut rows, compare_orders);
                                rows
                            });
                            view! {
                                <table>
                                    <caption class="visually-hidden">"Orders"</caption>
                                    <thead><tr>
                                        <SortHeader sort key="id" label="Order"/>
                                        <SortHeader sort key="client" label="Client"/>
                                        <SortHeader sort key="product" label="Product"/>
                                        <th scope="col">"Reference"</th>
                                        <SortHeader sort key="quantity" label="Licences" numeric=true/>
                                        <SortHeader sort key="active" label="Activated" numeric=true/>
                                        <SortHeader sort key="created" label="Created"/>
                                    </tr></thead>
                                    <tbody>
                                        <For each=move || rows.get() key=|o| (o.id, o.active, o.quantity) let:o>
                                            <tr>
                                                <td><a href=format!("{base}/{}", o.id)>{format!("#{}", o.id)}</a></td>
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
                                <p class="muted">{move || if total == 0 { "No orders yet.".to_owned() } else { format!("{} of {total} orders", rows.with(Vec::len)) }}</p>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        {admin.then(|| view! { <NewOrder create/> })}
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
        let clients = crate::api::list_clients().await?;
        let products = crate::catalog_api::list_products().await?;
        Ok::<_, crate::error::PortalError>((clients, products))
    });
    view! {
        <section class="card">
            <h2>"New order"</h2>
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
    let id = id_param("id");
    let update = ServerAction::<UpdateOrder>::new();
    let delete = ServerAction::<DeleteOrder>::new();
    let edit = ServerAction::<EditLicence>::new();
    let remove = ServerAction::<RemoveActivation>::new();
    let page = Resource::new(
        move || {
            (
                id(),
                update.version().get(),
                edit.version().get(),
                remove.version().get(),
            )
        },
        |(id, ..)| crate::catalog_api::get_order_page(id.unwrap_or(0)),
    );
    view! {
        <p class="breadcrumb"><a href=if admin { "/admin/orders" } else { "/client/orders" }>"Orders"</a></p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => {
                        let o = p.order.clone();
                        let title = format!("Order #{} · {} · {}", o.id, o.product_code, o.client_name);
                        view! {
                            <Title text=format!("{title} · Licentia")/>
                            <h1>{title}</h1>
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
                                <h2>"Licences"</h2>
                                <LicencesSection licences=p.licences.clone() product=p.product.clone() admin edit remove/>
                            </section>
                            {admin.then(|| view! {
                                <section class="card danger-zone">
                                    <h2>"Delete order"</h2>
                                    <p>{format!("Deletes the order and its {} licences. {} activated machine(s) will be told at their next validation that their licence is gone.", o.quantity, o.active)}</p>
                                    <ActionForm action=delete>
                                        <input type="hidden" name="id" value=o.id/>
                                        <ActionError action=delete/>
                                        <button type="submit" class="danger" on:click={
                                            let msg = format!("Delete order #{}? {} activated machine(s) will stop working at their next validation.", o.id, o.active);
                                            move |ev| if !confirm(&msg) { ev.prevent_default(); }
                                        }>"Delete order"</button>
                                    </ActionForm>
                                </section>
                            })}
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
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

#[component]
fn OrderTerms(update: ServerAction<UpdateOrder>, order: Order, product: Product) -> impl IntoView {
    view! {
        <details>
            <summary>"Change the terms"</summary>
            <ActionForm action=update>
                <input type="hidden" name="id" value=order.id/>
                <fieldset>
                    <legend>"Features"</legend>
                    <FeatureChecks catalogue=product.features enabled=order.features prefix="order-feature".into()/>
                </fieldset>
                <div class="field">
                    <label for="order-counters">"Counters"</label>
                    <textarea id="order-counters" name="counters" rows="3">{counter_lines(&order.counters)}</textarea>
                    <small class="hint">"One per line: name = number."</small>
                </div>
                <Field label="Reference" name="reference" id="order-ref".to_owned() required=false value=order.reference.clone() maxlength=100/>
                <div class="field">
                    <label for="order-notes">"Notes"</label>
                    <textarea id="order-notes" name="notes" rows="2">{order.notes.clone()}</textarea>
                </div>
                <ActionError action=update/>
                <ActionDone action=update message="Saved. Licences without terms of their own follow these."/>
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
) -> impl IntoView {
    view! {
        <ActionError action=remove/>
        <ActionDone action=remove message="The licence was removed from its machine."/>
        <ActionError action=edit/>
        <ActionDone action=edit message="The licence was changed; the application picks it up at its next validation."/>
        <table>
            <caption class="visually-hidden">"Licences"</caption>
            <thead><tr>
                <th scope="col">"Licence key"</th>
                <th scope="col">"Machine"</th>
                <th scope="col">"Activated"</th>
                <th scope="col">"Expires"</th>
                <th scope="col">"Features"</th>
                <th scope="col">"Activations used"</th>
                <th scope="col">"Actions"</th>
            </tr></thead>
            <tbody>
                {licences.into_iter().map(|l| {
                    let catalogue = product.features.clone();
                    let max = product.settings.max_activations;
                    let act = l.activation.clone();
                    view! {
                        <tr data-licence=l.key.clone()>
                            <td><code>{l.key.clone()}</code></td>
                            <td>{act.as_ref().map_or_else(|| view! { <span class="muted">"Not activated"</span> }.into_any(), |a| view! { <span>{a.hostname.clone()}</span> }.into_any())}</td>
                            <td>{act.as_ref().map(|a| view! { <LocalTime unix_secs=a.activated_at/> })}</td>
                            <td>{if l.open_ended { "No end date".to_owned() } else { or_dash(l.expires_on.clone().unwrap_or_default()) }}</td>
                            <td>{or_dash(l.features.join(", "))}</td>
                            <td class="num">{format!("{} of {max}", l.activation_count)}</td>
                            <td class="actions">
                                // Shown to client users too: where the rules forbid it, the refusal says why.
                                {act.is_some().then(|| {
                                    let msg = format!("Remove licence {} from {}? The application there stops working at its next validation.", l.key, act.as_ref().map(|a| a.hostname.clone()).unwrap_or_default());
                                    view! {
                                        <ActionForm action=remove>
                                            <input type="hidden" name="licence_id" value=l.id/>
                                            <button type="submit" class="danger small" on:click=move |ev| if !confirm(&msg) { ev.prevent_default(); }>"Remove"</button>
                                        </ActionForm>
                                    }
                                })}
                                {admin.then(|| view! {
                                    <details>
                                        <summary>"Edit"</summary>
                                        <ActionForm action=edit>
                                            <input type="hidden" name="licence_id" value=l.id/>
                                            <fieldset>
                                                <legend>"Features"</legend>
                                                <FeatureChecks catalogue enabled=l.features.clone() prefix=format!("licence-{}", l.id)/>
                                            </fieldset>
                                            <div class="field">
                                                <label for=format!("licence-{}-counters", l.id)>"Counters"</label>
                                                <textarea id=format!("licence-{}-counters", l.id) name="counters" rows="2">{counter_lines(&l.counters)}</textarea>
                                            </div>
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
    }
}

fn compare_activations(
    key: &'static str,
    a: &ActivationRow,
    b: &ActivationRow,
) -> std::cmp::Ordering {
    match key {
        "client" => a
            .client_name
            .to_lowercase()
            .cmp(&b.client_name.to_lowercase()),
        "product" => a.product_code.cmp(&b.product_code),
        "host" => a
            .activation
            .hostname
            .to_lowercase()
            .cmp(&b.activation.hostname.to_lowercase()),
        "validated" => a
            .activation
            .last_validated_at
            .cmp(&b.activation.last_validated_at),
        _ => a.activation.activated_at.cmp(&b.activation.activated_at),
    }
}

/// Which machine holds which licence: searchable by licence key, host, client or product.
#[component]
pub fn ActivationsPage(admin: bool) -> impl IntoView {
    let list = Resource::new(|| (), |_| crate::catalog_api::list_activations());
    let query = RwSignal::new(String::new());
    let sort = Sort::new("activated");
    sort.ascending.set(false);
    let orders = if admin {
        "/admin/orders"
    } else {
        "/client/orders"
    };
    view! {
        <Title text="Activations · Licentia"/>
        <h1>"Activations"</h1>
        <section class="card">
            <div class="table-tools"><SearchBox query label="Search by licence key, serial, machine, client or product"/></div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(all) => {
                            let total = all.len();
                            let rows = Memo::new(move |_| {
                                let needle = query.get().trim().to_lowercase();
                                let mut rows: Vec<ActivationRow> = all.iter().filter(|r| matches(&needle, &[&r.licence_key, &r.activation.hostname, &r.client_name, &r.product_code, r.activation.serial.as_deref().unwrap_or("")])).cloned().collect();
                                sort.apply(&mut rows, compare_activations);
                                rows
                            });
                            view! {
                                <table>
                                    <caption class="visually-hidden">"Activations"</caption>
                                    <thead><tr>
                                        <th scope="col">"Licence key"</th>
                                        <SortHeader sort key="client" label="Client"/>
                                        <SortHeader sort key="product" label="Product"/>
                                        <SortHeader sort key="host" label="Machine"/>
                                        <th scope="col">"Mode"</th>
                                        <SortHeader sort key="activated" label="Activated"/>
                                        <SortHeader sort key="validated" label="Last validated"/>
                                        <th scope="col">"Expires"</th>
                                    </tr></thead>
                                    <tbody>
                                        <For each=move || rows.get() key=|r| r.activation.id let:r>
                                            <tr>
                                                <td>{match (r.order_id, r.serial_id) {
                                                    (Some(o), _) => view! { <a href=format!("{orders}/{o}")><code>{r.licence_key.clone()}</code></a> }.into_any(),
                                                    (None, Some(sid)) => view! { <a href=format!("/admin/serials/{sid}")><code>{r.activation.serial.clone().unwrap_or_default()}</code></a> }.into_any(),
                                                    _ => view! { <code>{r.licence_key.clone()}</code> }.into_any(),
                                                }}</td>
                                                <td>{if r.serial_id.is_some() { view! { <span class="muted">"Web licence"</span> }.into_any() } else { view! { {r.client_name.clone()} }.into_any() }}</td>
                                                <td>{r.product_code.clone()}</td>
                                                <td>{r.activation.hostname.clone()}</td>
                                                <td>{r.activation.mode.clone()}</td>
                                                <td><LocalTime unix_secs=r.activation.activated_at/></td>
                                                <td>{time_or(r.activation.last_validated_at, "Not yet")}</td>
                                                <td>{or_dash(r.expires_on.clone().unwrap_or_default())}</td>
                                            </tr>
                                        </For>
                                    </tbody>
                                </table>
                                <p class="muted">{move || if total == 0 { "No licence is activated on any machine.".to_owned() } else { format!("{} of {total} activations", rows.with(Vec::len)) }}</p>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Offline activation: paste a request code from a machine, get its response code. Administrators
/// may give the licence other terms on the way (an activation code "with overrides").
#[component]
pub fn OfflineActivationPage(admin: bool) -> impl IntoView {
    let answer = ServerAction::<AnswerRequest>::new();
    // What the pasted request is for, read by the server as soon as it is pasted or typed.
    let request = RwSignal::new(String::new());
    let summary = Resource::new(
        move || request.get(),
        |code| async move {
            if code.trim().is_empty() {
                Ok(None)
            } else {
                crate::catalog_api::describe_request(code).await.map(Some)
            }
        },
    );
    view! {
        <Title text="Offline activation · Licentia"/>
        <h1>"Offline activation"</h1>
        <section class="card">
            <p>"On a machine without internet access, the application shows a request code (with the CLI: "
               <code>"licentia-client request-code"</code>"). Paste it here, then give the response code back to that machine."</p>
            <ActionForm action=answer>
                <div class="field wide">
                    <label for="request-code">"Request code"</label>
                    <textarea id="request-code" name="request_code" rows="4" required spellcheck="false"
                        on:input=move |ev| request.set(event_target_value(&ev))></textarea>
                </div>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match summary.await {
                            Ok(None) => ().into_any(),
                            Ok(Some(r)) => view! {
                                <section class="request-summary" aria-label="The request" data-testid="request-summary">
                                    <h2>"This request is for"</h2>
                                    <dl class="facts">
                                        <dt>"Product"</dt><dd>{r.product.clone()}</dd>
                                        <dt>{if r.by_serial { "Serial number" } else { "Licence" }}</dt><dd><code>{r.licence.clone()}</code></dd>
                                        <dt>"Machine"</dt><dd>{r.host.clone()}</dd>
                                        <dt>"Made"</dt><dd><LocalTime unix_secs=r.requested_at/></dd>
                                    </dl>
                                    <p class="hint" data-testid="request-state">{r.state.clone()}</p>
                                </section>
                            }.into_any(),
                            // Said quietly: answering says it again, as the alert.
                            Err(e) => view! { <p class="hint" data-testid="request-unreadable">{format!("This request cannot be read: {e}")}</p> }.into_any(),
                        }
                    })}
                </Transition>
                {admin.then(|| view! {
                    <details>
                        <summary>"Override the licence's terms"</summary>
                        <div class="check">
                            <input type="checkbox" id="override-terms" name="override_terms"/>
                            <label for="override-terms">"Give the licence these terms before answering"</label>
                        </div>
                        <Field label="Features" name="features" id="override-features".to_owned() required=false hint="Feature codes, separated by commas."/>
                        <div class="field">
                            <label for="override-counters">"Counters"</label>
                            <textarea id="override-counters" name="counters" rows="2"></textarea>
                            <small class="hint">"One per line: name = number."</small>
                        </div>
                        <Field label="Expires on" name="expires_on" id="override-expires".to_owned() kind="date" required=false hint="Today or later; empty keeps the current end."/>
                        <div class="check">
                            <input type="checkbox" id="override-no-end" name="no_end"/>
                            <label for="override-no-end">"No end date"</label>
                        </div>
                    </details>
                })}
                <ActionError action=answer/>
                <button type="submit" class="primary" disabled=answer.pending()>"Make the response code"</button>
            </ActionForm>
            {move || answer.value().get().and_then(Result::ok).map(|code| view! {
                <div class="field wide">
                    <label for="response-code">"Response code"</label>
                    <textarea id="response-code" readonly rows="6" spellcheck="false">{code.clone()}</textarea>
                    <CopyButton text=code label="Copy the response code"/>
                    <small class="hint">"It works once, on the machine that made the request: there, run "<code>"licentia-client --product … --jwks keys.json import"</code>" and paste it."</small>
                </div>
            })}
        </section>
    }
}
