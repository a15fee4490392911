//! The dashboard: on the administrator's Overview, the first steps on an empty server, then
//! figures that each link to the list they sum up; on a client user's start page, the same
//! figures about their organisation's licences and pools.

use crate::components::{area, loaded, LocalTime};
use leptos::prelude::*;
use protocol::dashboard::{Checklist, Dashboard, DayCount, DASHBOARD_DAYS};
use protocol::time::format_date;

#[component]
pub fn DashboardCards(admin: bool) -> impl IntoView {
    let dashboard = Resource::new(|| (), |_| crate::server_fns::accounts::get_dashboard());
    let base = area(admin);
    view! {
        {loaded(dashboard, move |d: Dashboard| {
            let checklist = d.checklist.filter(|c| !c.all_done()).map(|steps| view! { <GettingStarted steps/> });
            view! {
                {checklist}
                <div class="tiles">
                    <a class="tile" href=format!("{base}/activations")>
                        <span class="tile-figure" data-testid="activations-30-days">{d.activations_per_day.iter().map(|c| c.count).sum::<i64>()}</span>
                        <span class="tile-label">{format!("Activations in the last {DASHBOARD_DAYS} days")}</span>
                    </a>
                    <a class="tile" href=format!("{base}/licences?expiring_within_days={}&sort=expires&order=asc", DASHBOARD_DAYS - 1)>
                        <span class="tile-figure" data-testid="expiring-count">{d.expiring_count}</span>
                        <span class="tile-label">{format!("Licences expiring within {DASHBOARD_DAYS} days")}</span>
                    </a>
                    <a class="tile" href=format!("{base}/licences?time_limited=true&sort=expires&order=asc")>
                        <span class="tile-figure" data-testid="time-limited-count">{d.limited_running}</span>
                        <span class="tile-label">"Time-limited licences running (trials among them)"</span>
                    </a>
                </div>
                <ActivationsChart days=d.activations_per_day.clone()/>
                <ProductsCard d=d.clone() admin/>
                <ExpiringCard d=d.clone() admin/>
                <PoolsCard d=d.clone() admin/>
                <RecentCard d admin/>
            }
            .into_any()
        })}
    }
}

/// The four first steps, each a link to where it is done, ticked once done.
#[component]
fn GettingStarted(steps: Checklist) -> impl IntoView {
    let step = |done: bool, href: &'static str, what: &'static str, why: &'static str| {
        let class = if done { "done" } else { "todo" };
        view! {
            <li class=class>
                <span class="visually-hidden">{if done { "Done: " } else { "To do: " }}</span>
                <span aria-hidden="true">{if done { "✓ " } else { "○ " }}</span>
                <a href=href>{what}</a>" — "{why}
            </li>
        }
    };
    view! {
        <section class="card" aria-labelledby="getting-started">
            <h2 id="getting-started">"Getting started"</h2>
            <p>"Four steps from an empty server to a licensed application:"</p>
            <ol class="checklist">
                {step(steps.product, "/admin/products/new", "Create a product", "what you sell: its features, terms and how many machines a licence may move between.")}
                {step(steps.client, "/admin/clients/new", "Add a client", "the organisation that buys it, with users who manage their own licences.")}
                {step(steps.order, "/admin/orders/new", "Make an order", "licences of a product for a client (or a batch of serial numbers for web sales).")}
                {step(steps.activation, "/admin/activation", "Activate a licence", "from the application with its key, or here from an offline request code.")}
            </ol>
        </section>
    }
}

/// Activations per day as bars, each titled with its day and count; a table says the same.
#[component]
fn ActivationsChart(days: Vec<DayCount>) -> impl IntoView {
    let most = days.iter().map(|d| d.count).max().unwrap_or(0).max(1);
    let total: i64 = days.iter().map(|d| d.count).sum();
    let (w, h, gap) = (12, 60, 2);
    let width = days.len() as i64 * (w + gap);
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let bar = d.count * h / most;
            let class = if d.count > 0 { "bar" } else { "bar empty" };
            let title = format!("{}: {} activation{}", format_date(d.day), d.count, if d.count == 1 { "" } else { "s" });
            view! {
                <rect x=(i as i64 * (w + gap)).to_string() y=(h - bar).to_string() width=w.to_string() height=bar.max(1).to_string() class=class>
                    <title>{title}</title>
                </rect>
            }
        })
        .collect_view();
    let rows = days
        .iter()
        .filter(|d| d.count > 0)
        .map(|d| view! { <tr><td>{format_date(d.day)}</td><td class="num">{d.count}</td></tr> })
        .collect_view();
    view! {
        <section class="card">
            <h2>{format!("Activations per day, last {DASHBOARD_DAYS} days")}</h2>
            <figure class="chart">
                <svg role="img" viewBox=format!("0 0 {width} {h}") width="100%" height="80" preserveAspectRatio="none">
                    <title>{format!("{total} activations in the last {DASHBOARD_DAYS} days")}</title>
                    {bars}
                </svg>
            </figure>
            <details>
                <summary>"The figures"</summary>
                <table>
                    <thead><tr><th scope="col">"Day (UTC)"</th><th scope="col" class="num">"Activations"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        </section>
    }
}

#[component]
fn ProductsCard(d: Dashboard, admin: bool) -> impl IntoView {
    if d.products.is_empty() {
        return ().into_any();
    }
    view! {
        <section class="card" aria-labelledby="by-product">
            <h2 id="by-product">"Licences by product"</h2>
            <table>
                <thead><tr><th scope="col">"Product"</th><th scope="col" class="num">"Licences"</th><th scope="col" class="num">"Activated now"</th></tr></thead>
                <tbody>
                    {d.products.into_iter().map(|p| {
                        let search = format!("{}/activations?product={}", area(admin), protocol::audit::percent_encode(&p.code));
                        let name = format!("{} · {}", p.code, p.name);
                        view! {
                            <tr>
                                <td>{if admin { view! { <a href=format!("/admin/products/{}", p.id)>{name}</a> }.into_any() } else { view! { {name} }.into_any() }}</td>
                                <td class="num"><a href=format!("{}/licences?product={}", area(admin), protocol::audit::percent_encode(&p.code))>{p.licences}</a></td>
                                <td class="num"><a href=search>{p.active}</a></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

#[component]
fn ExpiringCard(d: Dashboard, admin: bool) -> impl IntoView {
    let body = if d.expiring.is_empty() {
        view! { <p class="muted">{format!("No licence ends within {DASHBOARD_DAYS} days.")}</p> }
            .into_any()
    } else {
        view! {
            <table>
                <thead><tr><th scope="col">"Last day"</th><th scope="col">"Licence"</th><th scope="col">"Client"</th><th scope="col">"Product"</th></tr></thead>
                <tbody>
                    {d.expiring.into_iter().map(|l| {
                        let href = format!("{}/licences/{}", area(admin), l.licence_id);
                        view! {
                            <tr>
                                <td>{format_date(l.expires_on)}</td>
                                <td><a href=href><code>{l.licence_key}</code></a></td>
                                <td>{if l.client_name.is_empty() { "—".to_owned() } else { l.client_name }}</td>
                                <td>{l.product_code}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {(d.expiring_count > 10).then(|| view! { <p class="hint">{format!("The first 10 of {}.", d.expiring_count)}</p> })}
        }
        .into_any()
    };
    view! {
        <section class="card" id="expiring">
            <h2>{format!("Expiring within {DASHBOARD_DAYS} days")}</h2>
            {body}
        </section>
    }
}

#[component]
fn PoolsCard(d: Dashboard, admin: bool) -> impl IntoView {
    let base = area(admin);
    if d.pools.is_empty() {
        return ().into_any();
    }
    let (pool_count, shown) = (d.pool_count, d.pools.len() as i64);
    view! {
        <section class="card">
            <h2>"Floating pools"</h2>
            <table>
                <thead><tr><th scope="col">"Pool"</th><th scope="col" class="num">"Seats in use (of those valid today)"</th><th scope="col" class="num">"Refused today (UTC)"</th></tr></thead>
                <tbody>
                    {d.pools.into_iter().map(|p| {
                        let name = if p.name.is_empty() { p.owner.clone() } else { format!("{} · {}", p.owner, p.name) };
                        view! {
                            <tr>
                                <td><a href=format!("{base}/pools/{}", p.id)>{name}</a></td>
                                <td class="num">{format!("{} of {}", p.in_use, p.count)}</td>
                                <td class="num"><a href=format!("{base}/pools/{}/history", p.id)>{p.refused_today}</a></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {(pool_count > shown).then(|| view! { <p class="hint">{format!("The newest {shown} of {pool_count}: ")}<a href=format!("{base}/pools")>"all pools"</a></p> })}
        </section>
    }
    .into_any()
}

#[component]
fn RecentCard(d: Dashboard, admin: bool) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Recent activity"</h2>
            <ul class="recent">
                {d.recent.into_iter().map(|e| view! {
                    <li><LocalTime unix_secs=e.at/>" · "{e.actor}" · "<code>{e.action}</code>" · "{e.subject}</li>
                }).collect_view()}
            </ul>
            <p><a href=format!("{}/audit", area(admin))>"The whole audit log"</a></p>
        </section>
    }
}
