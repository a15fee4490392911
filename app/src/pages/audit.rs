//! The audit log: who changed what, when and from where, newest first, filtered by action, who,
//! what and period, a page at a time, and exported as CSV with the same filters. Administrators
//! read every entry; a client user their own organisation's.

use crate::components::{loaded, CursorPager, LocalTime, WideTable};
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::audit::{AuditAction, AuditEntry, AuditQuery, Channel};

/// The filters as typed (empty: none).
#[derive(Clone, Default, PartialEq)]
struct Filters {
    action: String,
    actor: String,
    subject: String,
    from: String,
    to: String,
}

impl Filters {
    fn query(&self) -> AuditQuery {
        let text = |s: &String| Some(s.clone()).filter(|s| !s.trim().is_empty());
        AuditQuery {
            action: text(&self.action),
            actor: text(&self.actor),
            subject: text(&self.subject),
            from: text(&self.from),
            to: text(&self.to),
            ..AuditQuery::default()
        }
    }
}

#[component]
pub fn AuditPage(admin: bool) -> impl IntoView {
    let filters = RwSignal::new(Filters::default());
    // The pages before this one (their `before`), to go back to newer entries.
    let newer = RwSignal::new(Vec::<Option<i64>>::new());
    let before = RwSignal::new(None::<i64>);
    let entries = Resource::new(
        move || (filters.get(), before.get()),
        |(f, before)| {
            crate::server_fns::audit::audit_log(f.action, f.actor, f.subject, f.from, f.to, before)
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
            "/audit.csv".to_owned()
        } else {
            format!("/audit.csv?{q}")
        }
    };
    let scope = if admin {
        "Every change made in the portal, through the API or with the admin command line, with sign-ins, failed attempts, lockouts, API tokens and secrets revealed. Entries are never changed or deleted."
    } else {
        "What was done to your organisation's licences, pools, users and tokens, and your users' sign-ins. Entries are never changed or deleted."
    };
    view! {
        <Title text="Audit log · Licentia"/>
        <h1>"Audit log"</h1>
        <p class="lead">{scope}</p>
        <section class="card">
            <h2>"Filter"</h2>
            <div class="filters" role="search">
                <div class="field">
                    <label for="audit-action">"Action"</label>
                    <select id="audit-action" on:change=set(|f, v| f.action = v)>
                        <option value="">"All actions"</option>
                        {AuditAction::ALL.iter().map(|a| view! { <option value=a.code()>{a.code()}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="audit-actor">"Who"</label>
                    <input id="audit-actor" type="search" placeholder="e-mail address, application, admin CLI" on:change=set(|f, v| f.actor = v)/>
                </div>
                <div class="field">
                    <label for="audit-subject">"What"</label>
                    <input id="audit-subject" type="search" placeholder="licence, pool, client, order…" on:change=set(|f, v| f.subject = v)/>
                </div>
                <div class="field">
                    <label for="audit-from">"From"</label>
                    <input id="audit-from" type="date" on:change=set(|f, v| f.from = v)/>
                </div>
                <div class="field">
                    <label for="audit-to">"To"</label>
                    <input id="audit-to" type="date" on:change=set(|f, v| f.to = v)/>
                </div>
            </div>
            <p><a class="button small" href=csv download="" data-testid="audit-csv">"Download CSV"</a></p>
        </section>
        <section class="card">
            <h2>"Entries"</h2>
            {loaded(entries, move |page| {
                let next = page.next_before;
                let view_rows = if page.entries.is_empty() {
                    view! { <p class="muted">"No entry matches."</p> }.into_any()
                } else {
                    view! { <AuditTable entries=page.entries/> }.into_any()
                };
                view! {
                    {view_rows}
                    <CursorPager label="Audit log pages" noun="entries" newer before next older_testid="audit-older"/>
                }
                .into_any()
            })}
        </section>
    }
}

fn channel_text(c: Channel) -> &'static str {
    match c {
        Channel::Portal => "portal",
        Channel::Api => "API",
        Channel::Cli => "command line",
        Channel::Server => "server",
    }
}

#[component]
pub(crate) fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    view! {
        <WideTable caption="Audit log entries" heads=&["When", "Who", "From", "Action", "What", "Details"]>
            {entries.into_iter().map(|e| {
                let from = match &e.address {
                    Some(a) => format!("{} · {a}", channel_text(e.channel)),
                    None => channel_text(e.channel).to_owned(),
                };
                view! {
                    <tr data-action=e.action.clone()>
                        <td><LocalTime unix_secs=e.at/></td>
                        <td class="wrap">{e.actor.clone()}</td>
                        <td>{from}</td>
                        <td><code>{e.action.clone()}</code></td>
                        <td class="wrap">{e.subject.clone()}</td>
                        <td class="wrap">
                            {(!e.detail.is_empty()).then(|| view! { <p>{e.detail.clone()}</p> })}
                            {(!e.changes.is_empty()).then(|| view! {
                                <ul class="changes">
                                    {e.changes.iter().map(|c| view! {
                                        <li><strong>{c.field.clone()}</strong>": "{c.before.clone()}" → "{c.after.clone()}</li>
                                    }).collect_view()}
                                </ul>
                            })}
                        </td>
                    </tr>
                }
            }).collect_view()}
        </WideTable>
    }
}
