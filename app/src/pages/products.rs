//! Products (administrators): the list, and one product's editor — its feature catalogue,
//! defaults, counters and licensing settings.

use crate::components::{
    by_text, created_here, loaded, or_dash, shown_rows, ActionError, DeleteZone, DeletedBanner,
    DoneBanner, RowAction, SearchBox, Sort, SortHeads, TableCount,
};
use crate::error::PortalError;
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
        <DeletedBanner kind="Product"/>
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
    let created = created_here();
    let id = id_param("id");
    let save = ServerAction::<SaveProduct>::new();
    let delete = ServerAction::<DeleteProduct>::new();
    // Reloaded after a save that worked only: a refused one keeps what was typed, beside its
    // error.
    let saved = RwSignal::new(0u32);
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) {
            saved.update(|n| *n += 1);
        }
    });
    let product = Resource::new(
        move || (id(), saved.get()),
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
                    site_refresh_days: protocol::site::DEFAULT_REFRESH_DAYS.to_string(),
                    ..Default::default()
                });
                let pid = p.as_ref().map(|p| p.id);
                view! {
                    <Title text=format!("{title} · Licentia")/>
                    <h1>{title}</h1>
                    {p.as_ref().map(|p| view! { <DoneBanner created what=format!("Product {}", p.code)/> })}
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
        site_server: on(s.site_refresh_days.is_some()),
        site_refresh_days: s
            .site_refresh_days
            .unwrap_or(protocol::site::DEFAULT_REFRESH_DAYS)
            .to_string(),
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
    let field = field_of(name);
    let error = field_error(field);
    let described = format!("{id}-error");
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                value=value
                required=required
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby=move || error.get().is_some().then(|| described.clone())
            />
            <FieldError field/>
            {hint.map(|h| view! { <small class="hint">{h}</small> })}
        </div>
    }
}

/// The field a product form input named `form[x]` is: `x`, as the server names it in errors.
fn field_of(name: &'static str) -> &'static str {
    name.trim_start_matches("form[").trim_end_matches(']')
}

/// The message of the last save's error if it is about `field`.
fn field_error(field: &'static str) -> Signal<Option<String>> {
    let save = expect_context::<ServerAction<SaveProduct>>();
    Signal::derive(move || {
        save.value().with(|v| match v {
            Some(Err(PortalError::Invalid { field: f, message })) if f == field => {
                Some(message.clone())
            }
            _ => None,
        })
    })
}

/// The last save's error about `field`, beside it.
#[component]
fn FieldError(field: &'static str) -> impl IntoView {
    let error = field_error(field);
    let id = format!("product-{field}-error");
    move || {
        error.get().map(|message| {
            view! { <small class="field-error" id=id.clone() role="alert">{message}</small> }
        })
    }
}

/// The fields the editor shows errors beside; any other error is shown under the form.
const EDITOR_FIELDS: &[&str] = &[
    "code",
    "name",
    "editor",
    "release_number",
    "release_date",
    "features",
    "counters",
    "validity_days",
    "expire_day_of_month",
    "fixed_start",
    "fixed_end",
    "end_user_removal",
    "max_activations",
    "validate_every_days",
    "licences_per_serial",
    "heartbeat_secs",
    "max_borrow_days",
    "site_refresh_days",
];

/// One editable row of the feature catalogue or of the counters.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    key: u32,
    first: String,
    second: String,
}

fn rows_of(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<Row> {
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, (first, second))| Row {
            key: i as u32,
            first,
            second,
        })
        .collect()
}

/// Rows edited in place: each input writes its own row's field.
#[component]
fn PairRows(
    rows: RwSignal<Vec<Row>>,
    /// "feature" or "counter": names the inputs ("Code of feature 2").
    what: &'static str,
    first: &'static str,
    second: &'static str,
    #[prop(default = "text")] second_kind: &'static str,
    field: &'static str,
) -> impl IntoView {
    let next_key = StoredValue::new(rows.with_untracked(|r| r.len() as u32));
    let set = move |key: u32, which: u8, value: String| {
        rows.update(|rows| {
            if let Some(row) = rows.iter_mut().find(|r| r.key == key) {
                match which {
                    0 => row.first = value,
                    _ => row.second = value,
                }
            }
        })
    };
    let position =
        move |key: u32| rows.with(|r| r.iter().position(|x| x.key == key).map_or(0, |p| p + 1));
    view! {
        <table class="pairs">
            <thead><tr><th scope="col">{first}</th><th scope="col">{second}</th><th scope="col"><span class="visually-hidden">"Remove"</span></th></tr></thead>
            <tbody>
                <For each=move || rows.get() key=|r| r.key let:row>
                    {
                        let key = row.key;
                        let first_label = move || format!("{first} of {what} {}", position(key));
                        let second_label = move || format!("{second} of {what} {}", position(key));
                        let remove_label = move || format!("Remove {what} {}", position(key));
                        let id = move || (position(key) == 1).then(|| format!("product-{field}"));
                        view! {
                            <tr>
                                <td><input id=id aria-label=first_label value=row.first.clone() on:input=move |ev| set(key, 0, event_target_value(&ev))/></td>
                                <td><input type=second_kind aria-label=second_label value=row.second.clone() on:input=move |ev| set(key, 1, event_target_value(&ev))/></td>
                                <td><button type="button" class="small" aria-label=remove_label on:click=move |_| rows.update(|r| r.retain(|x| x.key != key))>"Remove"</button></td>
                            </tr>
                        }
                    }
                </For>
            </tbody>
        </table>
        <button type="button" class="small" on:click=move |_| {
            let key = next_key.get_value();
            next_key.set_value(key + 1);
            rows.update(|r| r.push(Row { key, first: String::new(), second: String::new() }));
        }>{format!("Add a {what}")}</button>
        <FieldError field/>
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
    provide_context(save);
    let features = RwSignal::new(rows_of(
        f.features
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (code, name) = l.split_once(':').unwrap_or((l, ""));
                (code.trim().to_owned(), name.trim().to_owned())
            }),
    ));
    let counters = RwSignal::new(rows_of(
        f.default_counters
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (name, value) = l.split_once('=').unwrap_or((l, ""));
                (name.trim().to_owned(), value.trim().to_owned())
            }),
    ));
    let defaults = RwSignal::new(
        f.default_features
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<String>>(),
    );
    let features_text = move || {
        features.with(|rows| {
            rows.iter()
                .filter(|r| !r.first.trim().is_empty() || !r.second.trim().is_empty())
                .map(|r| format!("{}: {}", r.first.trim(), r.second.trim()))
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    let named_features = move || {
        features.with(|rows| {
            rows.iter()
                .filter(|r| !r.first.trim().is_empty())
                .cloned()
                .collect::<Vec<Row>>()
        })
    };
    // Only the defaults still in the catalogue.
    let defaults_text = move || {
        let codes: Vec<String> = features.with(|rows| {
            rows.iter()
                .map(|r| r.first.trim().to_owned())
                .filter(|c| defaults.with(|d| d.contains(c)))
                .collect()
        });
        codes.join(", ")
    };
    let counters_text = move || {
        counters.with(|rows| {
            rows.iter()
                .filter(|r| !r.first.trim().is_empty() || !r.second.trim().is_empty())
                .map(|r| format!("{} = {}", r.first.trim(), r.second.trim()))
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    // The first field in error gets the focus.
    Effect::new(move |_| {
        if let Some(Err(PortalError::Invalid { field, .. })) = save.value().get() {
            focus_field(&field);
        }
    });
    let limited = RwSignal::new(f.limited.is_some());
    let (validity_days, expire_day, fixed_start, fixed_end) = (
        f.validity_days.clone(),
        f.expire_day_of_month.clone(),
        f.fixed_start.clone(),
        f.fixed_end.clone(),
    );
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
                <h3 id="features-title">"Feature catalogue"</h3>
                <p class="hint">"What a licence of this product may switch on: a code applications check (letters, digits, - _ .) and a name people read."</p>
                <PairRows rows=features what="feature" first="Code" second="Name" field="features"/>
                <input type="hidden" name="form[features]" value=f.features.clone() prop:value=features_text/>
                <fieldset class="defaults">
                    <legend>"Default features"</legend>
                    <p class="hint">"What new orders get switched on."</p>
                    <For each=named_features key=|r| (r.key, r.first.clone(), r.second.clone()) let:row>
                        {
                            let code = row.first.trim().to_owned();
                            let id = format!("default-feature-{}", row.key);
                            let label = if row.second.trim().is_empty() { code.clone() } else { format!("{code} ({})", row.second.trim()) };
                            let is_on = { let code = code.clone(); move || defaults.with(|d| d.contains(&code)) };
                            let is_on_now = is_on.clone();
                            let toggle = move |ev| {
                                let on = event_target_checked(&ev);
                                defaults.update(|d| { if on { d.insert(code.clone()); } else { d.remove(&code); } });
                            };
                            view! {
                                <div class="check">
                                    <input id=id.clone() type="checkbox" checked=is_on_now() prop:checked=is_on on:change=toggle/>
                                    <label for=id>{label}</label>
                                </div>
                            }
                        }
                    </For>
                </fieldset>
                <input type="hidden" name="form[default_features]" value=f.default_features.clone() prop:value=defaults_text/>
                <h3>"Default counters"</h3>
                <p class="hint">"Numbers new orders get, e.g. users = 5."</p>
                <PairRows rows=counters what="counter" first="Name" second="Value" second_kind="number" field="counters"/>
                <input type="hidden" name="form[default_counters]" value=f.default_counters.clone() prop:value=counters_text/>
            </section>
            <section class="card">
                <h2>"Licensing"</h2>
                <div class="check">
                    <input id="product-limited" name="form[limited]" type="checkbox" checked=f.limited.is_some()
                        on:change=move |ev| limited.set(event_target_checked(&ev))/>
                    <label for="product-limited">"Limited licences (they expire)"</label>
                </div>
                // The terms of a limited licence, shown once "limited" is ticked.
                <Show when=move || limited.get()>
                    <div class="grid-2">
                        <Text label="Validity in days" name="form[validity_days]" value=validity_days.clone() kind="number" hint="Counted from the first activation."/>
                        <Text label="Expire on day of the month" name="form[expire_day_of_month]" value=expire_day.clone() kind="number" hint="1-31: the end moves forward to this day."/>
                        <Text label="Fixed window: from" name="form[fixed_start]" value=fixed_start.clone() kind="date"/>
                        <Text label="Fixed window: until" name="form[fixed_end]" value=fixed_end.clone() kind="date"/>
                    </div>
                </Show>
                // A limited licence's users never remove it (its period would start again on
                // another machine): the box is off and says so while "Limited" is ticked.
                <div class="check">
                    <input id="product-end_user_removal" name="form[end_user_removal]" type="checkbox"
                        checked=removal_at_first prop:checked=move || removal.get() && !limited.get() disabled=move || limited.get()
                        on:change=move |ev| removal.set(event_target_checked(&ev))/>
                    <label for="product-end_user_removal">"End users may remove (transfer) their licences"</label>
                </div>
                <FieldError field="end_user_removal"/>
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
                <Check label="Sold for site licence servers (each licence links a customer's own server, which serves its seats)" name="form[site_server]" checked=f.site_server.is_some()/>
                <Text label="Site servers refresh within (days)" name="form[site_refresh_days]" value=f.site_refresh_days kind="number" hint="Past it, a site grants no new seats until it refreshes (1-365)."/>
            </section>
            {move || save.value().with(|v| match v {
                Some(Err(PortalError::Invalid { field, message })) if EDITOR_FIELDS.contains(&field.as_str()) => Some(view! {
                    <p class="error">{format!("Not saved: {message}")}</p>
                }.into_any()),
                Some(Err(e)) => Some(view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any()),
                _ => None,
            })}
            {move || save.value().get().and_then(Result::ok).map(|p| view! {
                <p class="notice" role="status">{format!("Product {} was saved.", p.code)}</p>
            })}
            <button type="submit" class="primary" disabled=save.pending()>"Save product"</button>
        </ActionForm>
    }
}

/// Puts the focus on the input of `field` (the first row's, for the catalogue and counters).
#[cfg(feature = "hydrate")]
fn focus_field(field: &str) {
    use wasm_bindgen::JsCast;
    if let Some(input) = document()
        .get_element_by_id(&format!("product-{field}"))
        .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok())
    {
        let _ = input.focus();
    }
}

#[cfg(not(feature = "hydrate"))]
fn focus_field(_: &str) {}
