//! Products (administrators): the list, and one product's editor — its feature catalogue,
//! defaults, counters and licensing settings.

use crate::components::{
    by_text, loaded, or_dash, shown_rows, ActionDone, ActionError, DeleteZone, RowAction,
    SearchBox, Sort, SortHeads, TableCount,
};
use crate::server_fns::catalog::{DeleteProduct, SaveProduct};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::catalog::{counter_lines, feature_lines, Product, ProductForm};

use super::catalog::{id_param, yes_no};

fn compare_products(key: &'static str, a: &Product, b: &Product) -> std::cmp::Ordering {
    match key {
        "name" => by_text(&a.name, &b.name),
        "editor" => a.editor.cmp(&b.editor),
        "release" => a.release_number.cmp(&b.release_number),
        _ => a.code.cmp(&b.code),
    }
}

#[component]
pub fn ProductsPage() -> impl IntoView {
    let products = Resource::new(|| (), |_| crate::server_fns::catalog::list_products());
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
            {loaded(products, move |all| {
                    let total = all.len();
                    let rows = shown_rows(all, query, sort, |p: &Product| vec![p.code.clone(), p.name.clone(), p.editor.clone()], compare_products);
                    view! {
                        <table>
                            <caption class="visually-hidden">"Products"</caption>
                            <thead><tr>
                                <SortHeads sort columns=&[("code", "Code"), ("name", "Name"), ("editor", "Editor"), ("release", "Release")] numeric=&["release"]/>
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
                        <TableCount total shown=Signal::derive(move || rows.with(Vec::len)) noun="products" empty="No products yet. Create the first with New product: its code is what applications name."/>
                    }
                        .into_any()
                })}
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
                Some(id) => crate::server_fns::catalog::get_product(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <p class="breadcrumb"><a href="/admin/products">"Products"</a></p>
        {loaded(product, move |p| {
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
                        <DeleteZone title="Delete product" explain="Only a product no order uses can be deleted.">
                            <ActionError action=delete/>
                            <RowAction action=delete id=pid question="Delete this product? This cannot be undone." label="Delete product" class="danger"/>
                        </DeleteZone>
                    })}
                }
                    .into_any()
            })}
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
    let id = field_id(name);
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input id=id name=name type=kind value=value required=required/>
            {hint.map(|h| view! { <small class="hint">{h}</small> })}
        </div>
    }
}

/// The element id of a product form field named `form[x]`.
fn field_id(name: &str) -> String {
    format!(
        "product-{}",
        name.trim_start_matches("form[").trim_end_matches(']')
    )
}

#[component]
fn Lines(
    label: &'static str,
    name: &'static str,
    value: String,
    hint: &'static str,
) -> impl IntoView {
    let id = field_id(name);
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
    let id = field_id(name);
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
