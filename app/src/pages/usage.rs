//! The usage monitor of floating licences — *Usage Per Feature* with *Detailed usage* — that
//! refreshes itself and can free a stuck seat.

use crate::components::{
    by_text, loaded, or_dash, release_or_any, ActionError, ConfirmButton, CsvLink, LocalTime,
    RowAction, WideTable,
};
use crate::server_fns::floating::{BlockSeatHolder, DisconnectSeat, ForceReturn};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::floating::{FeatureUsage, SeatDetail};
use std::cmp::Ordering;

/// Sort keys in priority order; a plain click sorts on one column (again to reverse), a
/// shift- or ctrl-click adds a column (or reverses it if it is there already).
#[derive(Clone, Copy)]
struct MultiSort(RwSignal<Vec<(&'static str, bool)>>);

impl MultiSort {
    fn click(&self, key: &'static str, add: bool) {
        self.0.update(|keys| {
            let at = keys.iter().position(|(k, _)| *k == key);
            match (add, at) {
                (true, Some(i)) => keys[i].1 = !keys[i].1,
                (true, None) => keys.push((key, true)),
                (false, Some(0)) if keys.len() == 1 => keys[0].1 = !keys[0].1,
                (false, _) => *keys = vec![(key, true)],
            }
        });
    }

    fn compare(&self, a: &FeatureUsage, b: &FeatureUsage) -> Ordering {
        self.0.with(|keys| {
            keys.iter().fold(Ordering::Equal, |o, (key, asc)| {
                o.then_with(|| {
                    let c = match *key {
                        "editor" => by_text(&a.editor, &b.editor),
                        "feature" => by_text(&a.feature, &b.feature),
                        "type" => a.commercial_type.cmp(&b.commercial_type),
                        "in_use" => a.in_use.cmp(&b.in_use),
                        "offline" => a.offline.cmp(&b.offline),
                        "count" => a.count.cmp(&b.count),
                        "refused" => a.refused_today.cmp(&b.refused_today),
                        _ => by_text(&a.owner, &b.owner),
                    };
                    if *asc {
                        c
                    } else {
                        c.reverse()
                    }
                })
            })
        })
    }
}

#[component]
fn UsageHeader(
    sort: MultiSort,
    key: &'static str,
    label: &'static str,
    #[prop(optional)] numeric: bool,
) -> impl IntoView {
    let state = move || {
        sort.0
            .with(|keys| match keys.iter().position(|(k, _)| *k == key) {
                None => ("none", String::new()),
                Some(i) => {
                    let asc = keys[i].1;
                    let order = if keys.len() > 1 {
                        format!("{}", i + 1)
                    } else {
                        String::new()
                    };
                    (
                        if asc { "ascending" } else { "descending" },
                        format!(" {}{order}", if asc { "▲" } else { "▼" }),
                    )
                }
            })
    };
    view! {
        <th scope="col" aria-sort=move || state().0 class:num=numeric>
            <button type="button" class="sort" title="Click to sort; Shift- or Ctrl-click to add a sort column"
                on:click=move |ev| sort.click(key, ev.shift_key() || ev.ctrl_key() || ev.meta_key())>
                {label}<span aria-hidden="true">{move || state().1}</span>
            </button>
        </th>
    }
}

/// What can be done to a seat from the monitor: disconnect it, or (administrators) force the
/// return of a mobile licence.
#[derive(Clone, Copy)]
struct SeatActions {
    disconnect: ServerAction<DisconnectSeat>,
    force: ServerAction<ForceReturn>,
    block: ServerAction<BlockSeatHolder>,
    admin: bool,
}

impl SeatActions {
    /// Changes whenever one of them ran.
    fn version(&self) -> (usize, usize, usize) {
        (
            self.disconnect.version().get(),
            self.force.version().get(),
            self.block.version().get(),
        )
    }
}

/// How often the monitor refreshes itself.
const REFRESH_SECS: u64 = 30;

#[component]
pub fn UsagePage(admin: bool) -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let actions = SeatActions {
        disconnect: ServerAction::new(),
        force: ServerAction::new(),
        block: ServerAction::new(),
        admin,
    };
    let usage = Resource::new(
        move || (tick.get(), actions.version()),
        |_| crate::server_fns::floating::usage_per_feature(),
    );
    let selected = RwSignal::new(None::<(i64, String, String)>);
    let sort = MultiSort(RwSignal::new(vec![("editor", true), ("feature", true)]));
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_secs(REFRESH_SECS),
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    });
    view! {
        <Title text="Usage · Licentia"/>
        <h1>"Usage per feature"</h1>
        <p class="lead">{if admin { "Every pool's features: who uses what, now." } else { "Your organisation's floating licences: who uses what, now." }}</p>
        <section class="card">
            <div class="table-tools">
                <button type="button" on:click=move |_| tick.update(|t| *t += 1)>"Refresh"</button>
                <CsvLink href="/usage.csv".to_owned() test_id="usage-csv"/>
                <span class="muted">{format!("Refreshes every {REFRESH_SECS} s. Select a line for its detailed usage.")}</span>
            </div>
            {loaded(usage, move |rows| if rows.is_empty() {
                view! { <p class="muted">"No floating licence key yet."</p> }.into_any()
            } else {
                {
                        let sorted = Memo::new(move |_| {
                            let mut r = rows.clone();
                            r.sort_by(|a, b| sort.compare(a, b));
                            r
                        });
                        view! {
                            <table data-testid="usage">
                                <caption class="visually-hidden">"Usage per feature"</caption>
                                <thead><tr>
                                    {admin.then(|| view! { <UsageHeader sort key="owner" label="Pool"/> })}
                                    <UsageHeader sort key="editor" label="Editor"/>
                                    <UsageHeader sort key="feature" label="Feature"/>
                                    <UsageHeader sort key="type" label="Commercial type"/>
                                    <UsageHeader sort key="in_use" label="In use" numeric=true/>
                                    <UsageHeader sort key="offline" label="Out offline" numeric=true/>
                                    <UsageHeader sort key="count" label="Count" numeric=true/>
                                    <UsageHeader sort key="refused" label="Refused today" numeric=true/>
                                </tr></thead>
                                <tbody>
                                    <For each=move || sorted.get() key=|u| (u.pool_id, u.editor.clone(), u.feature.clone(), u.commercial_type.clone(), u.in_use, u.offline, u.count, u.refused_today) let:u>
                                        {
                                            let full = u.in_use >= u.count && u.count > 0;
                                            let id = (u.pool_id, u.editor.clone(), u.feature.clone());
                                            let is_selected = { let id = id.clone(); move || selected.get().as_ref() == Some(&id) };
                                            view! {
                                                <tr data-feature=u.feature.clone() class:full=full class:selected=is_selected tabindex="0"
                                                    on:click={ let id = id.clone(); move |_| selected.set(Some(id.clone())) }
                                                    on:keydown={ let id = id.clone(); move |ev| if ev.key() == "Enter" { selected.set(Some(id.clone())) } }>
                                                    {admin.then(|| view! { <td>{u.owner.clone()}</td> })}
                                                    <td>{u.editor.clone()}</td>
                                                    <td>{u.feature.clone()}{full.then(|| view! { " "<span class="badge danger">"Full"</span> })}</td>
                                                    <td>{u.commercial_type.clone()}</td>
                                                    <td class="num">{u.in_use}</td>
                                                    <td class="num">{u.offline}</td>
                                                    <td class="num">{u.count}</td>
                                                    <td class="num" data-testid="refused-today">{u.refused_today}</td>
                                                </tr>
                                            }
                                        }
                                    </For>
                                </tbody>
                            </table>
                        }
                            .into_any()
                    }
            })}
        </section>
        <ActionError action=actions.disconnect/>
        <ActionError action=actions.force/>
        <ActionError action=actions.block/>
        {move || actions.block.value().get().and_then(|r| r.ok()).map(|r| view! {
            <p class="notice" role="status" data-testid="blocked">{format!("Added access {}: their seats end at their next heartbeat. Remove the rule on the pool's page to undo it.", r.describe())}</p>
        })}
        {move || selected.get().map(|(pool_id, editor, feature)| view! { <Detail pool_id editor feature tick actions/> })}
        <super::history::CasualReports/>
    }
}

#[component]
fn Detail(
    pool_id: i64,
    editor: String,
    feature: String,
    tick: RwSignal<u32>,
    actions: SeatActions,
) -> impl IntoView {
    let title = format!("Detailed usage of {feature}");
    let seats = Resource::new(
        move || (tick.get(), actions.version()),
        move |_| {
            crate::server_fns::floating::detailed_usage(pool_id, editor.clone(), feature.clone())
        },
    );
    view! {
        <section class="card" data-testid="detail">
            <h2>{title}</h2>
            {loaded(seats, move |list| if list.is_empty() {
                view! { <p class="muted">"No seat of this feature is in use."</p> }.into_any()
            } else {
                view! { <SeatTable list actions/> }.into_any()
            })}
        </section>
    }
}

#[component]
fn SeatTable(list: Vec<SeatDetail>, actions: SeatActions) -> impl IntoView {
    // DSLS shows *Casual usage (mn)* once a casual licence is granted: N/A on the others.
    let casual = list.iter().any(|s| s.casual.is_some());
    let heads: &'static [&'static str] = if casual {
        &SEAT_HEADS_CASUAL
    } else {
        &SEAT_HEADS
    };
    view! {
        <WideTable caption="Seats in use" actions=true heads
            numeric=&["Max release", "Process release", "Casual usage (mn)"]>
                {list.into_iter().map(|s| {
                    let msg = format!("Disconnect {} on {}? The seat is freed now; the application learns at its next heartbeat.", s.user, s.host);
                    view! {
                        <tr data-seat=s.host.clone()>
                            <td>{s.user.clone()}</td>
                            <td>{s.host.clone()}</td>
                            <td>{match &s.bundled_with { Some(main) => format!("{} (with {main})", s.process), None => s.process.clone() }}</td>
                            <td>
                                {s.borrowed_until.map(|_| view! { <span class="badge">"Offline"</span>" " })}
                                {if s.amount > 1 { format!("{} × {}", s.licence_type, s.amount) } else { s.licence_type.clone() }}
                                {s.borrowed_until.map(|until| view! { <br/><small>"until "<LocalTime unix_secs=until/></small> })}
                            </td>
                            {casual.then(|| match s.casual {
                                Some(c) => view! {
                                    <td class="num" class:over=c.over() data-testid="casual"
                                        title=format!("{} of {} minutes this month{}", c.minutes, c.maximum, if c.over() { ": past the maximum" } else { "" })>
                                        {c.minutes}{c.over().then(|| view! { " "<span class="visually-hidden">"(past the maximum of "{c.maximum}")"</span><span aria-hidden="true">"▲"</span> })}
                                    </td>
                                }.into_any(),
                                None => view! { <td class="num muted" data-testid="casual">"N/A"</td> }.into_any(),
                            })}
                            <td><LocalTime unix_secs=s.granted_since/></td>
                            <td><LocalTime unix_secs=s.granted_at/></td>
                            <td>
                                <LocalTime unix_secs=s.last_used_at/>
                                {s.silent_since.map(|since| view! { <br/><small class="warning" data-testid="silent">"not heard from since "<LocalTime unix_secs=since/></small> })}
                            </td>
                            <td class="num">{release_or_any(s.max_release_number)}</td>
                            <td>{or_dash(s.max_release_date.clone().unwrap_or_default())}</td>
                            <td>{or_dash(s.expiration_date.clone().unwrap_or_default())}</td>
                            <td>{or_dash(s.customer_id.clone())}</td>
                            <td>{or_dash(s.pricing_structure.clone())}</td>
                            <td class="num">{s.process_release}</td>
                            <td>{or_dash(s.session.clone())}</td>
                            <td>{s.server.clone()}</td>
                            <td class="actions">
                                {match s.borrowed_until {
                                    None => view! {
                                        <RowAction action=actions.disconnect field="seat_id" id=s.id question=msg label="Disconnect"/>
                                        <BlockButton action=actions.block seat_id=s.id what="user" label="Block user" question=format!("Block user {} from every feature of this pool? Their seats end at their next heartbeat and their checkouts are refused, naming the rule, until it is removed.", s.user)/>
                                        <BlockButton action=actions.block seat_id=s.id what="host" label="Block machine" question=format!("Block machine {} from every feature of this pool? Its seats end at their next heartbeat and its checkouts are refused, naming the rule, until it is removed.", s.host)/>
                                    }.into_any(),
                                    Some(_) => {
                                        let force = format!("Force the return of {}'s mobile licence on {}? Only for a machine lost for good: it may keep using the seat offline until its end, so the seat is lent twice until then.", s.user, s.host);
                                        view! {
                                            <span class="muted" title="Its machine works offline with it: it returns at its end, or earlier when its user returns it.">"Mobile licence"</span>
                                            {actions.admin.then(|| view! { <RowAction action=actions.force field="seat_id" id=s.id question=force label="Force return"/> })}
                                        }.into_any()
                                    }
                                }}
                            </td>
                        </tr>
                    }
                }).collect_view()}
        </WideTable>
    }
}

/// The heads with *Casual usage (mn)* after the licence type.
const SEAT_HEADS_CASUAL: [&str; 16] = [
    "User",
    "Host",
    "Active process",
    "Licence type",
    "Casual usage (mn)",
    "Granted since",
    "Granted at",
    "Last used at",
    "Max release",
    "Max release date",
    "Expiration date",
    "Customer ID",
    "Pricing",
    "Process release",
    "Session",
    "Server",
];

/// The heads without it.
const SEAT_HEADS: [&str; 15] = without(SEAT_HEADS_CASUAL, 4);

/// `all` without its `skip`th item.
const fn without(all: [&'static str; 16], skip: usize) -> [&'static str; 15] {
    let mut out = [""; 15];
    let (mut i, mut j) = (0, 0);
    while i < all.len() {
        if i != skip {
            out[j] = all[i];
            j += 1;
        }
        i += 1;
    }
    out
}

/// Blocks a seat's user or machine (`what`) from the pool, once confirmed.
#[component]
fn BlockButton(
    action: ServerAction<BlockSeatHolder>,
    seat_id: i64,
    what: &'static str,
    label: &'static str,
    question: String,
) -> impl IntoView {
    view! {
        <ActionForm action>
            <input type="hidden" name="seat_id" value=seat_id/>
            <input type="hidden" name="what" value=what/>
            <ConfirmButton question label/>
        </ActionForm>
    }
}
