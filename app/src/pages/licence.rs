//! One licence's page: its terms, every activation it had, what the audit log recorded about it
//! and the vendor's notes, with the actions on it (edit, extend, make permanent, remove from its
//! machine, free). Administrators see any licence; a client user their organisation's.

use super::audit::AuditTable;
use super::catalog::{id_param, yes_no, TermsFields};
use crate::components::{
    area, loaded, time_or, ActionDone, ActionError, CopyButton, LocalTime, RowAction, WideTable,
};
use crate::server_fns::catalog::{
    EditLicence, ExtendLicence, FreeLicenceNow, MakeLicencePermanent, RemoveActivation,
    SetLicenceNotes,
};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::catalog::{counter_lines, Activation, Licence, LicencePage as Page};

/// How a removed activation ended, in words.
fn removed_by(a: &Activation) -> String {
    match a.removed_by.as_deref() {
        Some("user") => "by its user".to_owned(),
        Some(by) if by.starts_with("admin") => "by an administrator".to_owned(),
        Some(by) if by.starts_with("client") => "by the client".to_owned(),
        Some(by) => format!("by {by}"),
        None => String::new(),
    }
}

fn end_text(l: &Licence, expired: bool) -> String {
    match (&l.expires_on, l.open_ended, expired) {
        (_, true, _) => "No end date".to_owned(),
        (Some(end), _, true) => format!("{end} (expired)"),
        (Some(end), _, false) => end.clone(),
        (None, _, _) => "—".to_owned(),
    }
}

#[component]
pub fn LicencePage(admin: bool) -> impl IntoView {
    let id = id_param("id");
    let edit = ServerAction::<EditLicence>::new();
    let extend = ServerAction::<ExtendLicence>::new();
    let permanent = ServerAction::<MakeLicencePermanent>::new();
    let notes = ServerAction::<SetLicenceNotes>::new();
    let remove = ServerAction::<RemoveActivation>::new();
    let free_now = ServerAction::<FreeLicenceNow>::new();
    let page = Resource::new(
        move || {
            (
                id(),
                edit.version().get(),
                extend.version().get(),
                permanent.version().get(),
                notes.version().get(),
                remove.version().get(),
                free_now.version().get(),
            )
        },
        |(id, ..)| crate::server_fns::catalog::get_licence_page(id.unwrap_or(0)),
    );
    let base = area(admin);
    view! {
        <p class="breadcrumb"><a href=format!("{base}/activations")>"Activations"</a></p>
        {loaded(page, move |p: Page| {
            let l = p.licence.clone();
            let title = format!("Licence {} · {}", l.key, p.product.code);
            let belongs = match (l.order_id, l.serial_id) {
                (Some(o), _) => view! {
                    <a href=format!("{base}/orders/{o}")>{format!("Order #{o}")}</a>
                    {p.order_reference.clone().filter(|r| !r.is_empty()).map(|r| format!(" · {r}"))}
                }.into_any(),
                (None, Some(s)) => view! {
                    <a href=format!("/admin/serials/{s}")><code>{p.serial.clone().unwrap_or_default()}</code></a>
                }.into_any(),
                _ => view! { "—" }.into_any(),
            };
            let live = l.activation.clone();
            view! {
                <Title text=format!("{title} · Licentia")/>
                <h1>"Licence " <code data-testid="licence-key">{l.key.clone()}</code></h1>
                <p><CopyButton text=l.key.clone() label="Copy the key"/></p>
                <ActionError action=edit/>
                <ActionDone action=edit message="The licence was changed; the application picks it up at its next validation."/>
                <ActionError action=extend/>
                <ActionDone action=extend message="The licence was extended; the application picks up its new end at its next validation."/>
                <ActionError action=permanent/>
                <ActionDone action=permanent message="The licence has no end date now; the application picks that up at its next validation."/>
                <section class="card">
                    <h2>"Terms"</h2>
                    <dl class="facts" data-testid="licence-terms">
                        <dt>"Product"</dt><dd>{format!("{} · {}", p.product.code, p.product.name)}</dd>
                        <dt>"Client"</dt><dd>{match p.client.clone() {
                            Some(c) if admin => view! { <a href=format!("/admin/clients/{}", c.id)>{c.name}</a> }.into_any(),
                            Some(c) => view! { {c.name} }.into_any(),
                            None => view! { <span class="muted">"Web licence (no client)"</span> }.into_any(),
                        }}</dd>
                        <dt>{if l.serial_id.is_some() { "Serial" } else { "Order" }}</dt><dd>{belongs}</dd>
                        <dt>"Features"</dt><dd>{if l.features.is_empty() { "(none)".to_owned() } else { l.features.join(", ") }}</dd>
                        <dt>"Counters"</dt><dd>{if l.counters.is_empty() { "(none)".to_owned() } else { counter_lines(&l.counters).replace('\n', ", ") }}</dd>
                        <dt>"Expires"</dt><dd data-testid="licence-end">{end_text(&l, p.expired)}</dd>
                        <dt>"Limited product"</dt><dd>{yes_no(p.product.settings.limited)}</dd>
                        <dt>"Activations used"</dt><dd>{format!("{} of {}", l.activation_count, p.product.settings.max_activations)}</dd>
                        <dt>"Machine now"</dt><dd data-testid="licence-machine">{match (&live, &l.pending_free) {
                            (Some(a), _) => view! { {a.hostname.clone()} }.into_any(),
                            (None, Some(f)) => view! {
                                <span class="muted">{format!("Removed from {} without it; frees on ", f.hostname)}<LocalTime unix_secs=f.frees_at/></span>
                            }.into_any(),
                            (None, None) => view! { <span class="muted">"Not activated"</span> }.into_any(),
                        }}</dd>
                    </dl>
                    {admin.then(|| view! {
                        <LicenceActions licence=l.clone() catalogue=p.product.features.clone() edit extend permanent free_now/>
                    })}
                </section>
                <section class="card">
                    <h2>"Activations"</h2>
                    <ActionError action=remove/>
                    <ActionDone action=remove message="The licence was removed from its machine."/>
                    <ActionError action=free_now/>
                    <ActionDone action=free_now message="The licence is free now."/>
                    {if p.activations.is_empty() {
                        view! { <p class="muted">"Never activated."</p> }.into_any()
                    } else {
                        view! { <ActivationHistory activations=p.activations.clone() licence=l.clone() remove/> }.into_any()
                    }}
                </section>
                <section class="card">
                    <h2>"Changes"</h2>
                    {if p.changes.is_empty() {
                        view! { <p class="muted">"The audit log has no entry about this licence."</p> }.into_any()
                    } else {
                        view! { <AuditTable entries=p.changes.clone()/> }.into_any()
                    }}
                </section>
                {p.notes.clone().map(|text| view! { <LicenceNotes licence_id=l.id text notes/> })}
            }
            .into_any()
        })}
    }
}

/// Every activation of the licence, newest first: where, how, when, how often validated, and
/// how it ended; the live one can be removed from here.
#[component]
fn ActivationHistory(
    activations: Vec<Activation>,
    licence: Licence,
    remove: ServerAction<RemoveActivation>,
) -> impl IntoView {
    view! {
        <WideTable caption="Activations of this licence" heads=&["Machine", "Fingerprint", "Mode", "Activated", "Last validated", "Validations", "Ended"] numeric=&["Validations"] actions=true>
            {activations.into_iter().map(|a| {
                let live = a.removed_at.is_none();
                let question = format!("Remove licence {} from {}? The application there stops working at its next validation.", licence.key, a.hostname);
                view! {
                    <tr data-activation=a.id data-live=live.to_string()>
                        <td class="wrap">{a.hostname.clone()}</td>
                        <td><code title=a.fingerprint.clone()>{a.fingerprint.chars().take(12).collect::<String>()}"…"</code></td>
                        <td>{a.mode.clone()}</td>
                        <td><LocalTime unix_secs=a.activated_at/></td>
                        <td>{time_or(a.last_validated_at, "Not yet")}</td>
                        <td class="num">{a.validations}</td>
                        <td>{match a.removed_at {
                            Some(at) => view! { <LocalTime unix_secs=at/>" "{removed_by(&a)} }.into_any(),
                            None => view! { <span class="badge ok">"In use"</span> }.into_any(),
                        }}</td>
                        <td class="actions">{live.then(|| view! {
                            <RowAction action=remove field="licence_id" id=licence.id question label="Remove"/>
                        })}</td>
                    </tr>
                }
            }).collect_view()}
        </WideTable>
    }
}

/// An administrator's actions on the licence: extend, make permanent, free a pending removal,
/// and edit its terms.
#[component]
fn LicenceActions(
    licence: Licence,
    catalogue: Vec<protocol::catalog::Feature>,
    edit: ServerAction<EditLicence>,
    extend: ServerAction<ExtendLicence>,
    permanent: ServerAction<MakeLicencePermanent>,
    free_now: ServerAction<FreeLicenceNow>,
) -> impl IntoView {
    let id = licence.id;
    let has_end = licence.expires_on.is_some() && !licence.open_ended;
    view! {
        <div class="actions" data-testid="licence-actions">
            {has_end.then(|| view! {
                <ActionForm action=extend>
                    <input type="hidden" name="licence_id" value=id/>
                    <input type="hidden" name="days" value="30"/>
                    <button type="submit">"Extend by 30 days"</button>
                </ActionForm>
                <ActionForm action=extend>
                    <input type="hidden" name="licence_id" value=id/>
                    <input type="hidden" name="days" value="365"/>
                    <button type="submit">"Extend by a year"</button>
                </ActionForm>
                <RowAction action=permanent field="licence_id" id question=format!("Make licence {} a full licence without an end date? Its features and counters stay as they are.", licence.key) label="Make it permanent" class="small"/>
            })}
            {licence.pending_free.is_some().then(|| view! {
                <RowAction action=free_now field="licence_id" id question=format!("Free licence {} now? The machine it was removed from may keep working offline until its code lapses.", licence.key) label="Free now"/>
            })}
        </div>
        <details>
            <summary>"Edit the terms"</summary>
            <ActionForm action=edit>
                <input type="hidden" name="licence_id" value=id/>
                <TermsFields catalogue enabled=licence.features.clone() counters=licence.counters.clone() prefix=format!("licence-{id}")/>
                <div class="field">
                    <label for="licence-expires">"Expires on"</label>
                    <input id="licence-expires" name="expires_on" type="date" value=licence.expires_on.clone().unwrap_or_default()/>
                    <small class="hint">"Today or later: a past date is refused (remove the licence from its machine to end it now). Empty keeps the current end."</small>
                </div>
                <div class="check">
                    <input type="checkbox" id="licence-no-end" name="no_end" checked=licence.open_ended/>
                    <label for="licence-no-end">"No end date (never expires, even for a limited product)"</label>
                </div>
                <button type="submit" class="primary">"Save licence"</button>
            </ActionForm>
        </details>
    }
}

/// The vendor's notes on the licence (administrators only).
#[component]
fn LicenceNotes(
    licence_id: i64,
    text: String,
    notes: ServerAction<SetLicenceNotes>,
) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Notes"</h2>
            <p class="hint">"For your team only: client users never see them."</p>
            <ActionForm action=notes>
                <input type="hidden" name="licence_id" value=licence_id/>
                <div class="field">
                    <label for="licence-notes">"Notes"</label>
                    <textarea id="licence-notes" name="notes" rows="4" maxlength="4000">{text}</textarea>
                </div>
                <ActionError action=notes/>
                <ActionDone action=notes message="Notes saved."/>
                <button type="submit">"Save notes"</button>
            </ActionForm>
        </section>
    }
}
