//! Floating pools in the portal: pools and their licence keys and bundles (administrators manage,
//! client users read their own), and the explanation of which key a checkout would take.

use super::catalog::id_param;
use crate::components::{
    area, loaded, options, or_dash, release_or_any, text_options, ActionDone, ActionError,
    ColumnHeads, ConfirmButton, CopyButton, DeleteZone, DeletedBanner, Field, LocalTime, RowAction,
    WideTable,
};
use crate::components::{by_text, shown_rows, SearchBox, Sort, SortHeads, TableCount};
use crate::components::{Said, SaidBanner};
use crate::server_fns::floating::{
    AddPoolKey, ChangeBundle, CreatePool, DeletePool, DeletePoolKey, ExplainCheckout,
    RotatePoolKey, SetCheckoutCap, SetSilentSeats,
};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::floating::{
    CommercialType, KeyVerdict, Model, Pool, PoolKey, PricingStructure, SilentSeats,
};

#[component]
pub fn PoolsPage(admin: bool) -> impl IntoView {
    let pools = Resource::new(|| (), |_| crate::server_fns::floating::list_pools());
    let base = area(admin);
    let query = RwSignal::new(String::new());
    let sort = Sort::new("pool");
    view! {
        <Title text="Floating pools · Licentia"/>
        <h1>"Floating pools"</h1>
        {admin.then(|| view! { <DeletedBanner kind="Pool"/> })}
        <p class="lead">"A pool holds licence keys whose seats workstations share: checked out when the application starts, given back when it closes (or when its lease runs out)."</p>
        <section class="card">
            <div class="table-tools">
                                <SearchBox query label="Search pools"/>
                {admin.then(|| view! {
                    <a class="button primary" href="/admin/pools/new">"New pool"</a>
                })}
            </div>
            {loaded(pools, move |list| if list.is_empty() {
                view! { <p class="muted">"No floating pool yet."</p> }.into_any()
            } else {
                let total = list.len();
                let rows = shown_rows(list, query, sort, |p: &Pool| vec![pool_name(p), p.owner.clone()], compare_pools);
                view! {
                        <table>
                            <caption class="visually-hidden">"Pools"</caption>
                            <thead><tr>
                                <SortHeads sort columns=&[("pool", "Pool"), ("owner", "Owner")]/>
                                <ColumnHeads names=&["Pool key"]/>
                                <SortHeads sort columns=&[("keys", "Keys"), ("in_use", "In use")] numeric=&["keys", "in_use"]/>
                                <ColumnHeads names=&["Lease (s)"] numeric=&["Lease (s)"]/>
                            </tr></thead>
                            <tbody>
                                <For each=move || rows.get() key=|p| p.id let:p>
                                    <tr data-pool=p.label()>
                                        <td><a href=format!("{base}/pools/{}", p.id)>{pool_name(&p)}</a></td>
                                        <td>{p.owner.clone()}</td>
                                        <td><code>{p.access_key.clone()}</code></td>
                                        <td class="num">{p.keys}</td>
                                        <td class="num">{p.in_use}</td>
                                        <td class="num">{p.lease_secs}</td>
                                    </tr>
                                </For>
                            </tbody>
                        </table>
                        <TableCount total shown=Signal::derive(move || rows.with(Vec::len)) noun="pools" empty="No floating pool yet."/>
                    }.into_any()
            })}
        </section>
    }
}

/// The page that creates a pool (from the list's *New pool*): its key is shown here, once.
#[component]
pub fn NewPoolPage() -> impl IntoView {
    let create = ServerAction::<CreatePool>::new();
    view! {
        <Title text="New pool · Licentia"/>
        <p class="breadcrumb"><a href="/admin/pools">"Floating pools"</a></p>
        <h1>"New pool"</h1>
        <NewPool create/>
    }
}

#[component]
fn NewPool(create: ServerAction<CreatePool>) -> impl IntoView {
    let clients = LocalResource::new(crate::server_fns::accounts::list_clients);
    view! {
        <section class="card">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let clients = clients.await.unwrap_or_default();
                    view! {
                        <ActionForm action=create>
                            <fieldset>
                                <legend>"Owner"</legend>
                                <span class="check"><input type="radio" id="owner-client" name="owner" value="client" checked=true/><label for="owner-client">"A client"</label></span>
                                <span class="check"><input type="radio" id="owner-serial" name="owner" value="serial"/><label for="owner-serial">"A serial number (web / cloud-concurrent)"</label></span>
                            </fieldset>
                            <div class="grid-2">
                                <div class="field">
                                    <label for="pool-client">"Client"</label>
                                    <select id="pool-client" name="client_id" inner_html=options(clients.iter().map(|c| (c.id, c.name.clone())))/>
                                </div>
                                <Field label="Serial number" name="serial" id="pool-serial".to_owned() required=false hint="Only for a serial's pool"/>
                                <Field label="Name" name="name" id="pool-name".to_owned() required=false hint="Tells a client's pools apart, e.g. a site or a department"/>
                                <Field label="Lease in seconds" name="lease_secs" id="pool-lease".to_owned() kind="number" value="300" hint="A seat without heartbeat for this long is freed (30 to 86400)"/>
                            </div>
                            <ActionError action=create/>
                            {move || create.value().get().and_then(|r| r.ok()).map(|p| view! {
                                <div class="notice" role="status">
                                    <p>{format!("{} of {} was created.", if p.name.is_empty() { format!("Pool #{}", p.id) } else { format!("Pool {}", p.name) }, p.owner)}</p>
                                    <p>"Its key is shown this once: copy it now (only a digest of it is kept; if it is lost, replace it on the pool's page)."</p>
                                    <p><code class="secret" data-testid="pool-key">{p.access_key.clone()}</code>" "<CopyButton text=p.access_key.clone() label="Copy the pool key"/></p>
                                    <p><a href=format!("/admin/pools/{}", p.id)>"Open the pool"</a></p>
                                </div>
                            })}
                            // Made once: another pool starts again from the list (its key would
                            // replace this one's, shown only here).
                            <button type="submit" class="primary" disabled=move || create.pending().get() || matches!(create.value().get(), Some(Ok(_)))>"Create pool"</button>
                        </ActionForm>
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The most one checkout may take from the pool's Token and Credit keys (empty: no limit).
#[component]
fn CheckoutCap(
    cap: ServerAction<SetCheckoutCap>,
    pool_id: i64,
    current: Option<i64>,
) -> impl IntoView {
    view! {
        <ActionForm action=cap>
            <input type="hidden" name="pool_id" value=pool_id/>
            <div class="field">
                <label for="max-tokens">"Most tokens one checkout may take"</label>
                <input id="max-tokens" name="max_tokens" type="number" min="1" max="1000000" value=current.map(|c| c.to_string()).unwrap_or_default() aria-describedby="max-tokens-hint"/>
                <small id="max-tokens-hint" class="hint">"From Token and Credit keys. Empty: as many as a key has. A leaked pool key then cannot empty a key in one checkout."</small>
            </div>
            <ActionError action=cap/>
            <ActionDone action=cap message="The limit was saved."/>
            <button type="submit" class="small" disabled=cap.pending()>"Save limit"</button>
        </ActionForm>
    }
}

/// What happens to a seat whose application stops sending heartbeats.
#[component]
fn SilentSeatsChoice(
    action: ServerAction<SetSilentSeats>,
    pool_id: i64,
    current: SilentSeats,
    lease_secs: i64,
) -> impl IntoView {
    let option = move |mode: SilentSeats, text: String| {
        view! { <option value=mode.code() selected=current == mode>{text}</option> }
    };
    view! {
        <ActionForm action>
            <input type="hidden" name="pool_id" value=pool_id/>
            <div class="field">
                <label for="silent-seats">"A seat whose application goes silent"</label>
                <select id="silent-seats" name="silent_seats" aria-describedby="silent-seats-hint">
                    {option(SilentSeats::Lease, format!("is given back when its lease ends ({lease_secs} s)"))}
                    {option(SilentSeats::Held, "is kept until the application comes back".to_owned())}
                </select>
                <small id="silent-seats-hint" class="hint">"Kept: work survives a network outage of any length, and the usage page shows such a seat as not heard from since its last heartbeat — free it there if its machine is gone for good."</small>
            </div>
            <ActionError action/>
            <ActionDone action message="The pool's silent-seat choice was saved."/>
            <button type="submit" class="small" disabled=action.pending()>"Save silent-seat choice"</button>
        </ActionForm>
    }
}

/// Replacing the pool key: the grace the old one keeps, and the new key, shown this once.
#[component]
fn RotateKey(rotate: ServerAction<RotatePoolKey>, pool_id: i64) -> impl IntoView {
    view! {
        {move || rotate.value().get().and_then(|r| r.ok()).map(|p| view! {
            <div class="notice" role="status">
                <p>"The pool key was replaced. The new key is shown this once: copy it now."</p>
                <p><code class="secret" data-testid="new-pool-key">{p.access_key.clone()}</code>" "<CopyButton text=p.access_key.clone() label="Copy the pool key"/></p>
            </div>
        })}
        <ActionError action=rotate/>
        <details>
            <summary>"Replace the pool key"</summary>
            <ActionForm action=rotate>
                <input type="hidden" name="pool_id" value=pool_id/>
                <div class="field">
                    <label for="grace-hours">"The old key keeps working for (hours)"</label>
                    <input id="grace-hours" name="grace_hours" type="number" min="0" max="720" value="24" required=true aria-describedby="grace-hours-hint"/>
                    <small id="grace-hours-hint" class="hint">"0 to 720 (30 days): time to give workstations the new key. After it, the old key is refused."</small>
                </div>
                <ConfirmButton question="Replace the pool key? Workstations need the new key once the old one stops working." label="Replace key" class="danger"/>
            </ActionForm>
        </details>
    }
}

fn key_term(k: &PoolKey) -> String {
    match (&k.fields.start_date, &k.fields.end_date) {
        (None, None) => "always".into(),
        (s, e) => format!(
            "{} to {}",
            s.clone().unwrap_or_else(|| "…".into()),
            e.clone().unwrap_or_else(|| "…".into())
        ),
    }
}

#[component]
pub fn PoolDetailPage(admin: bool) -> impl IntoView {
    let id = id_param("id");
    let add = ServerAction::<AddPoolKey>::new();
    let delete = ServerAction::<DeletePoolKey>::new();
    let deleted = Said::new();
    let bundle = ServerAction::<ChangeBundle>::new();
    let unbundle = ServerAction::<ChangeBundle>::new();
    let delete_pool = ServerAction::<DeletePool>::new();
    let rotate = ServerAction::<RotatePoolKey>::new();
    let cap = ServerAction::<SetCheckoutCap>::new();
    let silent = ServerAction::<SetSilentSeats>::new();
    let mobile = super::mobile::MobileActions::new();
    let access = super::access::AccessActions::new();
    let page = Resource::new(
        move || {
            (
                id(),
                add.version().get(),
                delete.version().get(),
                bundle.version().get(),
                unbundle.version().get(),
                mobile.version(),
                rotate.version().get(),
                cap.version().get(),
                silent.version().get(),
                access.version(),
            )
        },
        |(id, ..)| crate::server_fns::floating::get_pool_page(id.unwrap_or(0)),
    );
    view! {
        <p class="breadcrumb"><a href=format!("{}/pools", area(admin))>"Floating pools"</a></p>
        {loaded(page, move |p| {
                let pool_id = p.pool.id;
                view! {
                    <Title text=format!("Pool {} · Licentia", p.pool.label())/>
                    <h1>{if p.pool.name.is_empty() { format!("Pool of {}", p.pool.owner) } else { format!("Pool {} of {}", p.pool.name, p.pool.owner) }}</h1>
                    <section class="card">
                        <dl class="facts">
                            <dt>"Pool key"</dt><dd><code data-testid="pool-key-head">{p.pool.access_key.clone()}</code></dd>
                            {p.pool.key_rotated_at.map(|at| view! {
                                <dt>"Replaced"</dt>
                                <dd><LocalTime unix_secs=at/>{p.pool.previous_key_until.map(|until| view! { "; the key before works until " <LocalTime unix_secs=until/> })}</dd>
                            })}
                            <dt>"Lease"</dt><dd>{format!("{} s without a heartbeat", p.pool.lease_secs)}</dd>
                            <dt>"A silent seat"</dt><dd data-testid="silent-seats">{p.pool.silent_seats.describe()}</dd>
                            <dt>"In use"</dt><dd>{p.pool.in_use}</dd>
                            <dt>"History"</dt><dd><a href=format!("{}/pools/{pool_id}/history", area(admin))>"Use over time and ended seats"</a></dd>
                        </dl>
                        <p class="hint">"Workstations check out with the pool key: "<code>"licentia-client --server … checkout --pool-key POOL-… --feature …"</code>". It is shown whole only when the pool is made or its key replaced."</p>
                        <RotateKey rotate pool_id/>
                        <CheckoutCap cap pool_id current=p.pool.max_tokens_per_checkout/>
                        <SilentSeatsChoice action=silent pool_id current=p.pool.silent_seats lease_secs=p.pool.lease_secs/>
                    </section>
                    <section class="card">
                        <h2>"Licence keys"</h2>
                        <ActionError action=delete/>
                        <SaidBanner action=delete said=deleted/>
                        <KeyTable keys=p.keys.clone() admin delete deleted/>
                    </section>
                    {admin.then(|| view! { <NewKey add pool_id/> })}
                    <section class="card">
                        <h2>"Bundles"</h2>
                        <ActionError action=unbundle/>
                        <ActionDone action=unbundle message="The bundle was removed."/>
                        {if p.bundles.is_empty() {
                            view! { <p class="muted">"No bundle: each feature is checked out alone."</p> }.into_any()
                        } else {
                            view! { <ul class="bundles">{p.bundles.clone().into_iter().map(|b| {
                                let (tag, text) = (format!("{}>{}", b.feature, b.also_feature), format!("Checking out {} also takes {}", b.feature, b.also_feature));
                                view! {
                                <li data-bundle=tag>
                                    {text}
                                    {admin.then(|| view! {
                                        <ActionForm action=unbundle>
                                            <input type="hidden" name="pool_id" value=pool_id/>
                                            <input type="hidden" name="remove" value="true"/>
                                            <input type="hidden" name="bundle[feature]" value=b.feature.clone()/>
                                            <input type="hidden" name="bundle[also_feature]" value=b.also_feature.clone()/>
                                            <button type="submit" class="small">"Remove"</button>
                                        </ActionForm>
                                    })}
                                </li>
                            }}).collect_view()}</ul> }.into_any()
                        }}
                        {admin.then(|| view! {
                            <ActionForm action=bundle>
                                <input type="hidden" name="pool_id" value=pool_id/>
                                <input type="hidden" name="remove" value="false"/>
                                <div class="grid-2">
                                    <Field label="Feature" name="bundle[feature]" id="bundle-feature".to_owned()/>
                                    <Field label="Also takes" name="bundle[also_feature]" id="bundle-also".to_owned()/>
                                </div>
                                <ActionError action=bundle/>
                                <button type="submit">"Add bundle"</button>
                            </ActionForm>
                        })}
                    </section>
                    {
                        let mut features: Vec<String> = p.keys.iter().map(|k| k.fields.feature.clone()).collect();
                        features.sort();
                        features.dedup();
                        view! { <super::access::AccessRules pool_id features access=p.access.clone() actions=access/> }
                    }
                    <super::mobile::MobileLicences pool=p.pool.clone() mobile=p.mobile.clone() admin actions=mobile/>
                    <Explain pool_id/>
                    {admin.then(|| {
                        let msg = format!("Delete the pool {} with its keys, bundles and usage history? Workstations can no longer check out with its pool key.", p.pool.label());
                        view! {
                            <DeleteZone title="Delete the pool" explain="Possible once none of its seats is in use; its keys, bundles and usage history go with it.">
                                <ActionError action=delete_pool/>
                                <RowAction action=delete_pool id=pool_id question=msg label="Delete pool" class="danger"/>
                            </DeleteZone>
                        }
                    })}
                }
                    .into_any()
            })}
    }
}

#[component]
fn KeyTable(
    keys: Vec<PoolKey>,
    admin: bool,
    delete: ServerAction<DeletePoolKey>,
    deleted: Said,
) -> impl IntoView {
    if keys.is_empty() {
        return view! { <p class="muted">"No licence key yet."</p> }.into_any();
    }
    view! {
        <WideTable caption="Licence keys" actions=admin
            heads=&["Editor", "Feature", "Model", "In use / quantity", "Active", "Group", "Max release", "Max release date", "Type", "Customer", "Pricing", "Additional info", "File", "Generated"]
            numeric=&["In use / quantity", "Group", "Max release", "File"]>
                {keys.into_iter().map(|k| {
                    let f = k.fields.clone();
                    let msg = format!("Remove the {} key of {} ({} seats)?", f.model, f.feature, f.quantity);
                    view! {
                        <tr data-key=k.id>
                            <td>{f.editor.clone()}</td>
                            <td>{f.feature.clone()}</td>
                            <td>{f.model.clone()}{f.casual_max_minutes.map(|m| view! { <br/><small class="muted">{format!("casual: {m} mn per user per month")}</small> })}</td>
                            <td class="num">{format!("{} / {}", k.in_use, f.quantity)}</td>
                            <td>{key_term(&k)}</td>
                            <td class="num">{f.group_index}</td>
                            <td class="num">{release_or_any(f.max_release_number)}</td>
                            <td>{or_dash(f.max_release_date.clone().unwrap_or_default())}</td>
                            <td>{f.commercial_type.clone()}</td>
                            <td>{or_dash(f.customer_id.clone())}</td>
                            <td>{or_dash(f.pricing_structure.clone())}</td>
                            <td>{or_dash(f.additional_info.clone())}</td>
                            <td class="num">{f.file_index}</td>
                            <td>{or_dash(f.generation_date.clone().unwrap_or_default())}</td>
                            {admin.then(|| view! {
                                <td class="actions">
                                    <RowAction action=delete id=k.id question=msg label="Remove" said=(deleted, format!("The {} key of {} ({} seats) was removed.", f.model, f.feature, f.quantity))/>
                                </td>
                            })}
                        </tr>
                    }
                }).collect_view()}
        </WideTable>
    }
    .into_any()
}

fn choice_options<'a>(items: impl IntoIterator<Item = &'a str>, selected: &str) -> String {
    let items: Vec<(String, String)> = items
        .into_iter()
        .map(|i| {
            (
                i.to_owned(),
                if i.is_empty() { "(none)" } else { i }.to_owned(),
            )
        })
        .collect();
    text_options(&items, selected)
}

/// The products' features as suggestions for a key's feature (administrators; the field takes
/// any name, for another editor's features).
#[component]
fn FeatureChoices() -> impl IntoView {
    // Fetched once the page is interactive, outside any loading boundary (a resource read here
    // would hold the page's own loading back in the browser and break hydration); as HTML,
    // like the selects' options.
    let html = RwSignal::new(String::new());
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            if let Ok(products) = crate::server_fns::catalog::list_products().await {
                let mut codes: Vec<(String, String)> = products
                    .into_iter()
                    .flat_map(|p| {
                        p.features
                            .into_iter()
                            .map(move |f| (f.code, format!("{} ({})", f.name, p.code)))
                    })
                    .collect();
                codes.sort();
                codes.dedup_by(|a, b| a.0 == b.0);
                html.set(text_options(&codes, ""));
            }
        });
    });
    view! { <datalist id="key-feature-choices" inner_html=html/> }
}

#[component]
fn NewKey(add: ServerAction<AddPoolKey>, pool_id: i64) -> impl IntoView {
    // A NamedUser key may be casual: only then is its monthly maximum asked for (a field left
    // out of the form is "not casual").
    let named = RwSignal::new(false);
    let casual = RwSignal::new(false);
    view! {
        <section class="card">
            <h2>"Add a licence key"</h2>
            <ActionForm action=add>
                <input type="hidden" name="pool_id" value=pool_id/>
                <div class="grid-3">
                    <Field label="Editor" name="key[editor]" id="key-editor".to_owned() maxlength=100 hint="The publisher, as the application names it (e.g. Dassault Systèmes)."/>
                    <Field label="Feature" name="key[feature]" id="key-feature".to_owned() maxlength=100 list="key-feature-choices" hint="What the application checks out: a product's feature, or any other editor's name."/>
                    <FeatureChoices/>
                    <div class="field">
                        <label for="key-model">"Model"</label>
                        <select id="key-model" name="key[model]" aria-describedby="key-model-hint" inner_html=choice_options(Model::ALL.iter().map(|m| m.as_str()), "ConcurrentUser")
                            on:change=move |ev| named.set(event_target_value(&ev) == Model::NamedUser.as_str())/>
                        <small id="key-model-hint" class="hint">"ConcurrentUser: a seat per user and machine while in use. NamedUser: the seat stays its user's. Token: a checkout takes tokens from the quantity. Credit: used up, never given back."</small>
                    </div>
                    {move || named.get().then(|| view! {
                        <div class="field">
                            <label class="check"><input type="checkbox" id="key-casual" prop:checked=casual on:change=move |ev| casual.set(event_target_checked(&ev))/>" Casual (DSLS)"</label>
                            <p class="hint">"Each user's use is metered per calendar month (UTC); past the maximum it is logged and reported, not refused."</p>
                        </div>
                    })}
                    {move || (named.get() && casual.get()).then(|| view! {
                        <Field label="Monthly maximum per user (minutes)" name="key[casual_max_minutes]" id="key-casual-max".to_owned() kind="number" value="2400" hint="2400 = 40 hours"/>
                    })}
                    <Field label="Quantity" name="key[quantity]" id="key-quantity".to_owned() kind="number" min=1 value="1" hint="Seats (or tokens, or credits) this key grants, 1 or more."/>
                    <Field label="Start date" name="key[start_date]" id="key-start".to_owned() kind="date" required=false hint="Grants nothing before this day (UTC). Empty: at once."/>
                    <Field label="End date" name="key[end_date]" id="key-end".to_owned() kind="date" required=false hint="Its last day (UTC); a seat on it moves to another key. Empty: no end."/>
                    <Field label="Group index" name="key[group_index]" id="key-group".to_owned() kind="number" value="0" hint="Renewals of a feature: while a higher group is valid, lower ones grant nothing."/>
                    <Field label="Max release number" name="key[max_release_number]" id="key-max-release".to_owned() kind="number" value="0" hint="Only applications of this release or lower; 0: any release."/>
                    <Field label="Max release date" name="key[max_release_date]" id="key-max-release-date".to_owned() kind="date" required=false hint="Only application builds released on or before this day. Empty: any."/>
                    <div class="field">
                        <label for="key-type">"Commercial type"</label>
                        <select id="key-type" name="key[commercial_type]" aria-describedby="key-type-hint" inner_html=choice_options(CommercialType::ALL.iter().map(|c| c.as_str()), "STD")/>
                        <small id="key-type-hint" class="hint">"STD standard, EDU education, DEMO demonstration; when several keys fit, this order decides first."</small>
                    </div>
                    <Field label="Customer ID" name="key[customer_id]" id="key-customer".to_owned() required=false maxlength=100 hint="The customer's id in the licence contract; an application may ask for it."/>
                    <div class="field">
                        <label for="key-pricing">"Pricing structure"</label>
                        <select id="key-pricing" name="key[pricing_structure]" aria-describedby="key-pricing-hint" inner_html=choice_options(std::iter::once("").chain(PricingStructure::ALL.iter().map(|p| p.as_str())), "")/>
                        <small id="key-pricing-hint" class="hint">"The contract's terms: PLC primary, TBL term-based, ALC annual, YLC yearly, QLC quarterly charge."</small>
                    </div>
                    <Field label="Additional info" name="key[additional_info]" id="key-info".to_owned() required=false maxlength=500 hint="Fields separated by ; — keys with fewer fields are preferred."/>
                    <Field label="File index" name="key[file_index]" id="key-file".to_owned() kind="number" value="0" hint="Which licence file it came from; between equal keys, the lower is granted first."/>
                    <Field label="Generation date" name="key[generation_date]" id="key-generated".to_owned() kind="date" required=false hint="When the key was made; between equal keys, the newer is granted first. Empty: today."/>
                </div>
                <ActionError action=add/>
                {move || add.value().get().and_then(|r| r.ok()).map(|k| view! {
                    <p class="notice" role="status">{format!("Added {} × {} ({}).", k.fields.quantity, k.fields.feature, k.fields.model)}</p>
                })}
                <button type="submit" class="primary" disabled=add.pending()>"Add key"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn Explain(pool_id: i64) -> impl IntoView {
    let explain = ServerAction::<ExplainCheckout>::new();
    view! {
        <section class="card">
            <h2>"Explain a checkout"</h2>
            <p class="hint">"Which key would a checkout like this get, and why not the others?"</p>
            <ActionForm action=explain>
                <input type="hidden" name="pool_id" value=pool_id/>
                <div class="grid-3">
                    <Field label="Feature" name="form[feature]" id="explain-feature".to_owned()/>
                    <Field label="Editor" name="form[editor]" id="explain-editor".to_owned() required=false/>
                    <Field label="Release number" name="form[release_number]" id="explain-release".to_owned() kind="number" required=false/>
                    <Field label="Release date" name="form[release_date]" id="explain-release-date".to_owned() kind="date" required=false/>
                    <Field label="Commercial type" name="form[commercial_type]" id="explain-type".to_owned() required=false/>
                    <Field label="Customer ID" name="form[customer_id]" id="explain-customer".to_owned() required=false/>
                    <Field label="Pricing structure" name="form[pricing_structure]" id="explain-pricing".to_owned() required=false/>
                    <Field label="Tokens" name="form[tokens]" id="explain-tokens".to_owned() kind="number" required=false/>
                    <Field label="User" name="form[user]" id="explain-user".to_owned() required=false maxlength=255 hint="With a user or host, the access rules are judged too."/>
                    <Field label="Host" name="form[host]" id="explain-host".to_owned() required=false maxlength=255/>
                </div>
                <ActionError action=explain/>
                <button type="submit">"Explain"</button>
            </ActionForm>
            {move || explain.value().get().and_then(|r| r.ok()).map(|verdicts| view! { <Verdicts verdicts/> })}
        </section>
    }
}

#[component]
fn Verdicts(verdicts: Vec<KeyVerdict>) -> impl IntoView {
    let granted = verdicts.iter().any(|v| v.rank == Some(1));
    view! {
        <p role="status" class=if granted { "notice" } else { "error" }>{if granted { "The key ranked 1 would be granted." } else { "No key fits: the checkout would be refused." }}</p>
        <table data-testid="explain">
            <caption class="visually-hidden">"Explanation"</caption>
            <thead><tr><th scope="col">"Key"</th><th scope="col">"Feature"</th><th scope="col">"Model"</th><th scope="col">"Verdict"</th></tr></thead>
            <tbody>
                {verdicts.into_iter().map(|v| view! {
                    <tr>
                        <td>{format!("#{}", v.key.id)}</td>
                        <td>{v.key.fields.feature.clone()}</td>
                        <td>{v.key.fields.model.clone()}</td>
                        <td>{match (v.rank, v.filtered_by) {
                            (Some(r), _) => format!("rank {r}"),
                            (None, Some(why)) => format!("filtered: {why}"),
                            _ => "—".into(),
                        }}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The pools list's order for a sort column (then by id, so equal rows keep one order).
fn compare_pools(column: &'static str, a: &Pool, b: &Pool) -> std::cmp::Ordering {
    match column {
        "owner" => by_text(&a.owner, &b.owner),
        "keys" => a.keys.cmp(&b.keys),
        "in_use" => a.in_use.cmp(&b.in_use),
        _ => by_text(&pool_name(a), &pool_name(b)),
    }
    .then(a.id.cmp(&b.id))
}

/// A pool's name as the list shows it: its own, else its number.
fn pool_name(p: &Pool) -> String {
    if p.name.is_empty() {
        format!("Pool {}", p.id)
    } else {
        p.name.clone()
    }
}
