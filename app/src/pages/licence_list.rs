//! Every licence in one list, across orders and serials: filtered (status, product, client,
//! feature, ending soon, a search), sorted and paged by the server with the filters in the
//! address, exported as CSV with the same filters, and changed in bulk by an administrator.

use super::catalog::{
    address_list, address_number, address_text, filter_choices, BulkForm, BulkOutcome,
    ClientFilter, EndingFilter, FilterChoices, ProductFilter, SearchFilter,
};
use crate::components::{
    area, list_address, loaded, match_count, or_dash, sort_head, text_options, ChoiceField,
    CsvLink, LinkPager, PageAndSortFields, SortDefaults,
};
use crate::server_fns::catalog::{BulkLicences, LICENCES_PER_PAGE};
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::catalog::{Feature, LicenceFilter, LicenceListRow, LicenceStatus};

/// The licences list's filters as the address gives them.
fn licence_filter(q: &leptos_router::params::ParamsMap) -> LicenceFilter {
    let text = |k: &str| address_text(q, k);
    LicenceFilter {
        q: text("q"),
        product: text("product"),
        client_id: address_number(q, "client_id"),
        status: text("status"),
        feature: text("feature"),
        expiring_within_days: address_number(q, "expiring_within_days"),
        time_limited: text("time_limited").map(|t| t == "true"),
        sort: text("sort"),
        order: text("order"),
    }
}

/// The features of every product, each code once (for the feature filter and bulk actions).
fn all_features(products: &[protocol::catalog::Product]) -> Vec<Feature> {
    let mut seen = std::collections::BTreeSet::new();
    products
        .iter()
        .flat_map(|p| p.features.iter())
        .filter(|f| seen.insert(f.code.clone()))
        .cloned()
        .collect()
}

#[component]
pub fn LicencesPage(admin: bool) -> impl IntoView {
    let (filter, after, limit) = address_list(licence_filter);
    let bulk = ServerAction::<BulkLicences>::new();
    let table = Resource::new(
        move || (filter.get(), after.get(), limit.get(), bulk.version().get()),
        |(f, after, limit, _)| crate::server_fns::catalog::licences_page(f, after, limit),
    );
    let choices = filter_choices(admin);
    let base = area(admin);
    let here = format!("{base}/licences");
    let action = here.clone();
    let link = move |f: &LicenceFilter, after: Option<&str>| {
        list_address(&here, f.query_string(), limit.get_untracked(), after)
    };
    let csv = move || list_address("/licences.csv", filter.get().query_string(), None, None);
    let title = if admin { "Licences" } else { "My licences" };
    view! {
        <Title text=format!("{title} · Licentia")/>
        <h1>{title}</h1>
        <section class="card">
            <LicenceFilters admin filter limit action choices/>
            <p><CsvLink href=Signal::derive(csv) test_id="licences-list-csv"/></p>
            {admin.then(|| view! { <BulkOutcome bulk/> })}
            {loaded(table, move |t| {
                let f = filter.get_untracked();
                let next = t.next.as_deref().map(|n| link(&f, Some(n)));
                let first = after.get_untracked().is_some().then(|| link(&f, None));
                let head = |key: &'static str, label: &'static str| {
                    sort_head(&f, &SortDefaults { key: "created", descending: SortDefaults::DESCENDING }, key, label, matches!(key, "client" | "product" | "expires"), |to| link(to, None))
                };
                view! {
                    <p class="muted" data-testid="licences-count">{match_count(t.total, t.rows.len(), "licence", "licences")}</p>
                    <div class="scroll">
                    <table>
                        <caption class="visually-hidden">{title}</caption>
                        <thead><tr>
                            {admin.then(|| view! { <th scope="col"><span class="visually-hidden">"Ticked"</span></th> })}
                            {head("created", "Licence")}
                            {head("client", "Client")}
                            {head("product", "Product")}
                            <th scope="col">"Status"</th>
                            <th scope="col">"Machine"</th>
                            {head("expires", "Expires")}
                            <th scope="col">"Features"</th>
                            <th scope="col" class="num">"Activations"</th>
                        </tr></thead>
                        <tbody>
                            {t.rows.into_iter().map(|r| view! { <LicenceRow row=r admin base/> }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                    <LinkPager label="Licences pages" first next next_testid="licences-next"/>
                }
                .into_any()
            })}
            {admin.then(|| view! {
                {move || choices.get().map(|(_, products)| view! {
                    <BulkForm bulk catalogue=all_features(&products)/>
                })}
            })}
        </section>
    }
}

#[component]
fn LicenceRow(row: LicenceListRow, admin: bool, base: &'static str) -> impl IntoView {
    let l = row.licence;
    // A web licence is known by its serial.
    let shown = row.serial.clone().unwrap_or_else(|| l.key.clone());
    let owner = match (&row.serial, l.order_id) {
        (Some(_), _) => view! { <span class="muted">"Web licence"</span> }.into_any(),
        (None, Some(order)) => view! {
            {row.client_name.clone()}" · "<a href=format!("{base}/orders/{order}")>{format!("order #{order}")}</a>
        }
        .into_any(),
        (None, None) => view! { {row.client_name.clone()} }.into_any(),
    };
    let machine = match (&l.activation, &l.pending_free) {
        (Some(a), _) => a.hostname.clone(),
        (None, Some(p)) => format!("Removed from {}, not freed yet", p.hostname),
        (None, None) => String::new(),
    };
    let expires = if l.open_ended {
        "No end date".to_owned()
    } else {
        or_dash(l.expires_on.clone().unwrap_or_default())
    };
    let status = row.status;
    view! {
        <tr data-licence-id=l.id>
            {admin.then(|| view! {
                <td><input type="checkbox" name="ids[]" value=l.id form="bulk-licences" aria-label=format!("Tick licence {shown} (#{})", l.id)/></td>
            })}
            <td><a href=format!("{base}/licences/{}", l.id)><code>{shown.clone()}</code></a></td>
            <td class="wrap">{owner}</td>
            <td>{row.product_code.clone()}</td>
            <td><span class=badge_class(status) data-status=status.as_str()>{status.label()}</span></td>
            <td class="wrap">{or_dash(machine)}</td>
            <td>{expires}</td>
            <td class="wrap">{or_dash(l.features.join(", "))}</td>
            <td class="num">{l.activation_count}</td>
        </tr>
    }
}

/// A status's badge: a licence that works green, one that no longer does red.
fn badge_class(status: LicenceStatus) -> &'static str {
    match status {
        LicenceStatus::InUse | LicenceStatus::Available => "badge ok",
        LicenceStatus::Expired | LicenceStatus::Revoked => "badge danger",
    }
}

/// The licences list's filters: a GET form, so the filters land in the address.
#[component]
fn LicenceFilters(
    admin: bool,
    filter: Memo<LicenceFilter>,
    limit: Memo<Option<i64>>,
    action: String,
    choices: FilterChoices,
) -> impl IntoView {
    const fn choice(s: LicenceStatus) -> (&'static str, &'static str) {
        (s.as_str(), s.label())
    }
    const STATUSES: &[(&str, &str)] = &[
        ("", "Every licence"),
        choice(LicenceStatus::Available),
        choice(LicenceStatus::InUse),
        choice(LicenceStatus::Expired),
        choice(LicenceStatus::Revoked),
    ];
    view! {
        <leptos_router::components::Form method="get" action=action>
            <div class="filters" role="search">
                // The address is the truth: every field follows it (a sort header clicked, Back).
                <SearchFilter id="licences-q" placeholder=if admin { "licence key, serial, client, product, machine or notes" } else { "licence key, product or machine" } q=Signal::derive(move || filter.get().q)/>
                <ProductFilter id="licences-product" admin choices current=Signal::derive(move || filter.get().product.unwrap_or_default())/>
                {admin.then(|| view! {
                    <ClientFilter id="licences-client" choices current=Signal::derive(move || filter.get().client_id)/>
                })}
                {move || view! {
                    <ChoiceField id="licences-status" label="Status" name="status" current=filter.get().status.unwrap_or_default() choices=STATUSES/>
                }}
                <div class="field">
                    <label for="licences-feature">"Feature"</label>
                    {move || {
                        let current = filter.get().feature.unwrap_or_default();
                        match choices.get() {
                            Some((_, products)) if admin => {
                                let mut items = vec![(String::new(), "Any feature".to_owned())];
                                items.extend(all_features(&products).into_iter().map(|f| (f.code.clone(), format!("{} ({})", f.name, f.code))));
                                view! { <select id="licences-feature" name="feature" inner_html=text_options(&items, &current)/> }.into_any()
                            }
                            _ => view! { <input id="licences-feature" name="feature" value=current placeholder="feature code"/> }.into_any(),
                        }
                    }}
                </div>
                <EndingFilter id="licences-expiring" days=Signal::derive(move || filter.get().expiring_within_days)/>
                <div class="check">
                    <input id="licences-time-limited" name="time_limited" type="checkbox" value="true"
                        checked=filter.get_untracked().time_limited == Some(true)
                        prop:checked=move || filter.get().time_limited == Some(true)/>
                    <label for="licences-time-limited">"Time-limited only (trials among them)"</label>
                </div>
                <PageAndSortFields id="licences-limit" limit default=LICENCES_PER_PAGE filter/>
                <div class="field"><button type="submit" class="primary">"Filter"</button></div>
            </div>
        </leptos_router::components::Form>
    }
}
