//! Usage over time. A pool's *History* page: per feature, the peak in use against the count and
//! the refusals, by hour, day or month (SVG drawn here — no charting library in the WebAssembly),
//! with the figures as a table and CSV; then the session history: every ended seat, filtered,
//! with durations, totals per user and per feature, pages and CSV. `UsageOverTime` without a
//! pool is the administrator's overview across pools. `CasualReports` lists the monthly casual
//! usage reports with their downloads.

use super::catalog::id_param;
use crate::components::{area, loaded, CursorPager, LocalTime, WideTable};
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::history::{
    duration_text, FeatureSeries, Period, SeatSession, SessionQuery, UsageTotal,
};

#[component]
pub fn PoolHistoryPage(admin: bool) -> impl IntoView {
    let id = id_param("id");
    view! {
        <Title text="Pool history · Licentia"/>
        {move || id().map(|pool_id| view! {
            <p class="breadcrumb">
                <a href=format!("{}/pools", area(admin))>"Floating pools"</a>" › "
                <a href=format!("{}/pools/{pool_id}", area(admin))>{format!("Pool {pool_id}")}</a>
            </p>
            <h1>{format!("History of pool {pool_id}")}</h1>
            <p class="lead">"How much of each feature was used, against what there was, and who used it: to decide purchases and renewals."</p>
            <UsageOverTime pool_id=Some(pool_id)/>
            <Sessions pool_id/>
        })}
    }
}

/// The charts of a pool (or, without one, of every pool the viewer reads) with the period
/// picker, each feature's figures as a table, and the CSV.
#[component]
pub fn UsageOverTime(pool_id: Option<i64>) -> impl IntoView {
    let period = RwSignal::new(Period::default());
    let chart = Resource::new(
        move || period.get(),
        move |p| crate::server_fns::history::chart_usage(pool_id, p.code().to_owned()),
    );
    let csv = move || {
        let code = period.get().code();
        match pool_id {
            Some(id) => format!("/pools/{id}/usage-history.csv?period={code}"),
            None => format!("/usage-history.csv?period={code}"),
        }
    };
    let title = if pool_id.is_some() {
        "Use over time"
    } else {
        "Use over time, every pool"
    };
    view! {
        <section class="card" data-testid="usage-over-time">
            <h2>{title}</h2>
            <div class="table-tools">
                <div class="field">
                    <label for="chart-period">"Period"</label>
                    <select id="chart-period" on:change=move |ev| {
                        if let Some(p) = Period::parse(&event_target_value(&ev)) {
                            period.set(p);
                        }
                    }>
                        {Period::ALL.iter().map(|p| view! {
                            <option value=p.code() selected=*p == Period::default()>{p.label()}</option>
                        }).collect_view()}
                    </select>
                </div>
                <a class="button small" href=csv download="" data-testid="chart-csv">"Download CSV"</a>
            </div>
            <p class="hint">"Bars: the most seats in use at once. Dashed line: the seats there were. Outlined bars below: checkouts refused for want of a seat. Times are UTC."</p>
            {loaded(chart, move |c| if c.series.is_empty() {
                view! { <p class="muted">"No licence key and no use in this period."</p> }.into_any()
            } else {
                let period = c.period;
                view! {
                    <div class="charts">
                        {c.series.into_iter().enumerate().map(|(i, s)| view! { <FeatureChart series=s period index=i/> }).collect_view()}
                    </div>
                }.into_any()
            })}
        </section>
    }
}

/// One feature's chart and, under it, its figures.
#[component]
fn FeatureChart(series: FeatureSeries, period: Period, index: usize) -> impl IntoView {
    let name = format!("{} ({})", series.feature, series.editor);
    let peak = series.points.iter().map(|p| p.peak).max().unwrap_or(0);
    let refused: i64 = series.points.iter().map(|p| p.refusals).sum();
    let summary = format!(
        "{name}: at most {peak} in use at once, {refused} refused, {}.",
        period.label().to_lowercase()
    );
    let rows = series.points.clone();
    let feature = series.feature.clone();
    view! {
        <figure class="chart" data-feature=feature>
            <figcaption><strong>{name.clone()}</strong>" · "{format!("peak {peak}, refused {refused}")}</figcaption>
            <UsageSvg series period title=summary index/>
            <details>
                <summary>{format!("Figures of {name}")}</summary>
                <div class="scroll">
                    <table data-testid="chart-figures">
                        <caption class="visually-hidden">{format!("Use of {name} by {}", step_noun(period))}</caption>
                        <thead><tr>
                            <th scope="col">{step_noun(period)}" (UTC)"</th>
                            <th scope="col" class="num">"Peak in use"</th>
                            <th scope="col" class="num">"Count"</th>
                            <th scope="col" class="num">"Refused"</th>
                        </tr></thead>
                        <tbody>
                            {rows.into_iter().rev().map(|p| view! {
                                <tr class:full={p.count > 0 && p.peak >= p.count}>
                                    <td>{period.step_label(p.start)}</td>
                                    <td class="num">{p.peak}</td>
                                    <td class="num">{p.count}</td>
                                    <td class="num">{p.refusals}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </details>
        </figure>
    }
}

fn step_noun(period: Period) -> &'static str {
    match period {
        Period::Hours48 => "Hour",
        Period::Days30 => "Day",
        Period::Months12 => "Month",
    }
}

const WIDTH: f64 = 720.0;
const PLOT_TOP: f64 = 10.0;
const PLOT_HEIGHT: f64 = 150.0;
const STRIP_TOP: f64 = 178.0;
const STRIP_HEIGHT: f64 = 30.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 8.0;
const HEIGHT: f64 = 232.0;

/// The chart: peak bars, the count as a dashed step line, refusals as outlined bars in a strip
/// of their own; axis figures and a title and description for screen readers.
#[component]
fn UsageSvg(series: FeatureSeries, period: Period, title: String, index: usize) -> impl IntoView {
    let points = series.points;
    let n = points.len().max(1) as f64;
    let band = (WIDTH - LEFT - RIGHT) / n;
    let top = points
        .iter()
        .map(|p| p.peak.max(p.count))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let top_refused = points.iter().map(|p| p.refusals).max().unwrap_or(0).max(1) as f64;
    let y = move |v: i64| PLOT_TOP + PLOT_HEIGHT - (v as f64) / top * PLOT_HEIGHT;
    let x = move |i: usize| LEFT + i as f64 * band;
    let mut count_line = String::new();
    for (i, p) in points.iter().enumerate() {
        let (x0, x1, yc) = (x(i), x(i) + band, y(p.count));
        if i == 0 {
            count_line.push_str(&format!("M{x0:.1},{yc:.1}"));
        } else {
            count_line.push_str(&format!(" L{x0:.1},{yc:.1}"));
        }
        count_line.push_str(&format!(" L{x1:.1},{yc:.1}"));
    }
    let title_id = format!("chart-title-{index}");
    let labelled_by = title_id.clone();
    let labels: Vec<(f64, String)> = [0, points.len() / 2, points.len().saturating_sub(1)]
        .into_iter()
        .filter(|i| *i < points.len())
        .map(|i| (x(i) + band / 2.0, period.step_label(points[i].start)))
        .collect();
    let top_label = top as i64;
    view! {
        <svg class="usage-chart" viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-labelledby=labelled_by preserveAspectRatio="xMidYMid meet">
            <title id=title_id>{title}</title>
            // Axes and their figures.
            <line class="axis" x1=LEFT y1=PLOT_TOP x2=LEFT y2=PLOT_TOP + PLOT_HEIGHT/>
            <line class="axis" x1=LEFT y1=PLOT_TOP + PLOT_HEIGHT x2=WIDTH - RIGHT y2=PLOT_TOP + PLOT_HEIGHT/>
            <text class="tick" x=LEFT - 4.0 y=PLOT_TOP + 4.0 text-anchor="end">{top_label}</text>
            <text class="tick" x=LEFT - 4.0 y=PLOT_TOP + PLOT_HEIGHT text-anchor="end">"0"</text>
            <text class="tick" x=LEFT - 4.0 y=STRIP_TOP + 10.0 text-anchor="end">"refused"</text>
            {points.iter().enumerate().map(|(i, p)| {
                let bar_w = (band * 0.7).max(1.0);
                let bx = x(i) + (band - bar_w) / 2.0;
                let h = (p.peak as f64) / top * PLOT_HEIGHT;
                let rh = (p.refusals as f64) / top_refused * STRIP_HEIGHT;
                let tip = format!("{}: peak {} of {}, {} refused", period.step_label(p.start), p.peak, p.count, p.refusals);
                view! {
                    <g>
                        <title>{tip}</title>
                        <rect class="peak" x=format!("{bx:.1}") y=format!("{:.1}", PLOT_TOP + PLOT_HEIGHT - h) width=format!("{bar_w:.1}") height=format!("{h:.1}")/>
                        {(p.refusals > 0).then(|| view! {
                            <rect class="refused" x=format!("{bx:.1}") y=format!("{:.1}", STRIP_TOP + STRIP_HEIGHT - rh) width=format!("{bar_w:.1}") height=format!("{rh:.1}")/>
                        })}
                    </g>
                }
            }).collect_view()}
            <path class="count" d=count_line/>
            <line class="axis" x1=LEFT y1=STRIP_TOP + STRIP_HEIGHT x2=WIDTH - RIGHT y2=STRIP_TOP + STRIP_HEIGHT/>
            {labels.into_iter().map(|(lx, text)| view! {
                <text class="tick" x=format!("{lx:.1}") y=HEIGHT - 4.0 text-anchor="middle">{text}</text>
            }).collect_view()}
        </svg>
    }
}

/// The filters as typed (empty: none).
#[derive(Clone, Default, PartialEq)]
struct Filters {
    feature: String,
    user: String,
    host: String,
    from: String,
    to: String,
}

impl Filters {
    fn query(&self) -> SessionQuery {
        let text = |s: &String| Some(s.clone()).filter(|s| !s.trim().is_empty());
        SessionQuery {
            feature: text(&self.feature),
            user: text(&self.user),
            host: text(&self.host),
            from: text(&self.from),
            to: text(&self.to),
            ..SessionQuery::default()
        }
    }
}

/// The session history's filters: field id, label, input type, what it sets.
type FilterField = (
    &'static str,
    &'static str,
    &'static str,
    fn(&mut Filters, String),
);
const FILTERS: [FilterField; 5] = [
    ("history-feature", "Feature", "search", |f, v| f.feature = v),
    ("history-user", "User", "search", |f, v| f.user = v),
    ("history-host", "Host", "search", |f, v| f.host = v),
    ("history-from", "Ended from", "date", |f, v| f.from = v),
    ("history-to", "Ended to", "date", |f, v| f.to = v),
];

/// The session history of a pool: filters, totals, the sessions a page at a time, CSV.
#[component]
fn Sessions(pool_id: i64) -> impl IntoView {
    let filters = RwSignal::new(Filters::default());
    let newer = RwSignal::new(Vec::<Option<i64>>::new());
    let before = RwSignal::new(None::<i64>);
    let page = Resource::new(
        move || (filters.get(), before.get()),
        move |(f, before)| {
            crate::server_fns::history::session_history(
                pool_id, f.feature, f.user, f.host, f.from, f.to, before,
            )
        },
    );
    let set = move |apply: fn(&mut Filters, String)| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            filters.update(|f| apply(f, value));
            newer.set(Vec::new());
            before.set(None);
        }
    };
    let csv = move || {
        let q = filters.get().query().filter_query();
        if q.is_empty() {
            format!("/pools/{pool_id}/history.csv")
        } else {
            format!("/pools/{pool_id}/history.csv?{q}")
        }
    };
    view! {
        <section class="card">
            <h2>"Sessions"</h2>
            <p class="hint">"Every seat that ended: who held it, where, for how long and how it ended. Kept for the retention period the server is set to (400 days unless changed)."</p>
            <div class="filters" role="search">
                {FILTERS.iter().map(|(id, label, kind, apply)| view! {
                    <div class="field">
                        <label for=*id>{*label}</label>
                        <input id=*id type=*kind on:change=set(*apply)/>
                    </div>
                }).collect_view()}
            </div>
            <p><a class="button small" href=csv download="" data-testid="history-csv">"Download CSV"</a></p>
            {loaded(page, move |page| {
                let next = page.next_before;
                view! {
                    <div class="grid-2 totals">
                        <Totals caption="Per user" head="User" rows=page.per_user.clone() testid="per-user"/>
                        <Totals caption="Per feature" head="Feature" rows=page.per_feature.clone() testid="per-feature"/>
                    </div>
                    {if page.sessions.is_empty() {
                        view! { <p class="muted">"No ended seat matches."</p> }.into_any()
                    } else {
                        view! { <SessionTable sessions=page.sessions/> }.into_any()
                    }}
                    <CursorPager label="Session history pages" noun="sessions" newer before next/>
                }
                .into_any()
            })}
        </section>
    }
}

#[component]
fn Totals(
    caption: &'static str,
    head: &'static str,
    rows: Vec<UsageTotal>,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <div class="scroll">
            <table data-testid=testid>
                <caption>{caption}</caption>
                <thead><tr>
                    <th scope="col">{head}</th>
                    <th scope="col" class="num">"Sessions"</th>
                    <th scope="col" class="num">"Time"</th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|t| view! {
                        <tr>
                            <td>{t.name.clone()}</td>
                            <td class="num">{t.sessions}</td>
                            <td class="num" title=format!("{} s", t.seconds)>{duration_text(t.seconds)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn SessionTable(sessions: Vec<SeatSession>) -> impl IntoView {
    view! {
        <WideTable caption="Ended seats" heads=&["User", "Host", "Process", "Feature", "Key", "Granted", "Ended", "Duration", "How it ended"] numeric=&["Key", "Duration"]>
            {sessions.into_iter().map(|s| {
                let duration = duration_text(s.seconds());
                view! {
                    <tr data-session=s.id>
                        <td>{s.user.clone()}</td>
                        <td>{s.host.clone()}</td>
                        <td>{s.process.clone()}</td>
                        <td>{s.feature.clone()}{s.bundle_of.map(|_| view! { " "<small class="muted">"(bundled)"</small> })}</td>
                        <td class="num">{s.key_id}</td>
                        <td><LocalTime unix_secs=s.granted_at/></td>
                        <td><LocalTime unix_secs=s.ended_at/></td>
                        <td class="num">{duration}</td>
                        <td class="wrap">{s.ended_how.clone()}{s.borrowed_until.map(|_| view! { " "<span class="badge">"Mobile"</span> })}</td>
                    </tr>
                }
            }).collect_view()}
        </WideTable>
    }
}

/// The monthly casual usage reports, with their CSV and JSON.
#[component]
pub fn CasualReports() -> impl IntoView {
    let reports = Resource::new(|| (), |_| crate::server_fns::history::casual_reports());
    view! {
        <section class="card" data-testid="casual-reports">
            <h2>"Casual usage reports"</h2>
            <p class="hint">"Made at 00:00 UTC on the 1st of each month once a casual key is enrolled: each casual key, each user's minutes in the month and who went past its maximum (which is reported, not refused)."</p>
            {loaded(reports, |list| if list.is_empty() {
                view! { <p class="muted">"No report yet."</p> }.into_any()
            } else {
                view! {
                    <WideTable caption="Casual usage reports" heads=&["Month", "Produced", "Casual keys", "Users", "Over the maximum", "Download"] numeric=&["Casual keys", "Users", "Over the maximum"]>
                        {list.into_iter().map(|r| view! {
                            <tr data-month=r.month.clone()>
                                <td>{r.month.clone()}</td>
                                <td><LocalTime unix_secs=r.produced_at/></td>
                                <td class="num">{r.keys}</td>
                                <td class="num">{r.users}</td>
                                <td class="num" class:over={r.over_use > 0}>{r.over_use}</td>
                                <td>
                                    <a href=format!("/casual-reports/{}/report.csv", r.month) download="">"CSV"</a>" · "
                                    <a href=format!("/casual-reports/{}/report.json", r.month) download="">"JSON"</a>
                                </td>
                            </tr>
                        }).collect_view()}
                    </WideTable>
                }.into_any()
            })}
        </section>
    }
}
