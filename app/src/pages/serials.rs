//! The web licensing model, for administrators: generate serial batches, export them, find a
//! serial by its number or by a machine holding it, see its licences and their history, edit
//! their terms, revoke and reissue it.

use super::catalog::{id_param, FeatureChecks, LicencesSection};
use crate::components::{
    loaded, match_count, options, or_dash, time_or, ActionError, ColumnHeads, ConfirmButton,
    CopyButton, CsvLink, Field, LoadError, LocalTime, SearchBox,
};
use crate::server_fns::catalog::{BulkLicences, EditLicence, FreeLicenceNow, RemoveActivation};
use crate::server_fns::web::{GenerateSerials, ReissueSerial};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::catalog::{Serial, SerialBatch};

fn features_text(f: &Option<Vec<String>>) -> String {
    match f {
        None => "Product defaults".to_owned(),
        Some(f) if f.is_empty() => "(none)".to_owned(),
        Some(f) => f.join(", "),
    }
}

fn status_view(s: &Serial) -> AnyView {
    match (&s.revoked_at, &s.replaced_by) {
        (Some(_), Some(by)) => {
            view! { <span class="badge danger">"Revoked"</span>" → "<code>{by.clone()}</code> }
                .into_any()
        }
        (Some(_), None) => view! { <span class="badge danger">"Revoked"</span> }.into_any(),
        _ => view! { <span class="badge ok">"Valid"</span> }.into_any(),
    }
}

/// The CSV download of the serials the page shows: the batch picked, the search typed.
fn serials_csv(batch: Option<i64>, search: &str) -> String {
    let mut q = Vec::new();
    if let Some(b) = batch {
        q.push(format!("batch_id={b}"));
    }
    if !search.trim().is_empty() {
        let search = protocol::audit::percent_encode(search.trim());
        q.push(format!("search={search}"));
    }
    match q.is_empty() {
        true => "/serials.csv".to_owned(),
        false => format!("/serials.csv?{}", q.join("&")),
    }
}

/// Where the serials list is: the search and batch its pages belong to, the cursor of the page
/// shown (none: the newest) and those of the pages before it.
#[derive(Default)]
struct Paging {
    search: String,
    batch_id: Option<i64>,
    after: Option<String>,
    before: Vec<Option<String>>,
}

impl Paging {
    fn is_for(&self, search: &str, batch_id: Option<i64>) -> bool {
        self.search == search && self.batch_id == batch_id
    }

    /// The cursor of the page to show for this search and batch.
    fn after_for(&self, search: &str, batch_id: Option<i64>) -> Option<String> {
        self.after.clone().filter(|_| self.is_for(search, batch_id))
    }

    fn has_newer(&self, search: &str, batch_id: Option<i64>) -> bool {
        self.is_for(search, batch_id) && !self.before.is_empty()
    }

    /// The newest page of this search and batch, unless already on them.
    fn start(&mut self, search: String, batch_id: Option<i64>) {
        if !self.is_for(&search, batch_id) {
            *self = Paging {
                search,
                batch_id,
                ..Paging::default()
            };
        }
    }

    /// On to the page after `next`, of this search and batch (a page of another search
    /// starts it over from there).
    fn older(&mut self, search: String, batch_id: Option<i64>, next: String) {
        if self.after.as_ref() == Some(&next) && self.is_for(&search, batch_id) {
            // A second click on the same button.
            return;
        }
        self.start(search, batch_id);
        self.before.push(self.after.replace(next));
    }

    /// Back to the page before.
    fn newer(&mut self) {
        self.after = self.before.pop().flatten();
    }
}

#[component]
pub fn SerialsPage() -> impl IntoView {
    let generate = ServerAction::<GenerateSerials>::new();
    let batches = Resource::new(
        move || generate.version().get(),
        |_| crate::server_fns::web::list_serial_batches(),
    );
    let query = RwSignal::new(String::new());
    let batch = RwSignal::new(None::<i64>);
    // A new batch is shown on its own right away.
    Effect::new(move |_| {
        if let Some(Ok(b)) = generate.value().get() {
            batch.set(Some(b.id));
        }
    });
    // The page shown, for the search and batch it was reached with: another search or batch
    // starts from the newest again.
    let paging = RwSignal::new(Paging::default());
    let current = move || (query.get(), batch.get());
    // Coming back to a search is coming back to its newest page.
    Effect::new(move |_| {
        let (search, batch_id) = current();
        paging.update(|p| p.start(search, batch_id));
    });
    let serials = Resource::new(
        move || {
            let (search, batch_id) = current();
            let after = paging.with(|p| p.after_for(&search, batch_id));
            (search, batch_id, after, generate.version().get())
        },
        // Each page says which search and batch it is of, for its "Older" button.
        |(search, batch_id, after, _)| async move {
            let page =
                crate::server_fns::web::serials_page(search.clone(), batch_id, after, None).await?;
            Ok((search, batch_id, page))
        },
    );
    view! {
        <Title text="Serial numbers · Licentia"/>
        <h1>"Serial numbers"</h1>
        <p class="lead">"Web licensing: a serial number alone activates its product, on as many machines as it grants licences. No client or order is needed."</p>
        <NewBatch generate/>
        <section class="card">
            <h2>"Batches"</h2>
            {loaded(batches, move |list| if list.is_empty() {
                view! { <p class="muted">"No serial numbers yet: generate a batch above."</p> }.into_any()
            } else {
                view! { <BatchTable list batch/> }.into_any()
            })}
        </section>
        <section class="card">
            <h2>"Serials"</h2>
            <div class="table-tools">
                <SearchBox query label="Search by serial number or machine name"/>
                <CsvLink href=Signal::derive(move || serials_csv(batch.get(), &query.get())) test_id="serials-csv"/>
                {move || batch.get().map(|b| view! {
                    <p class="filter" data-testid="batch-filter">
                        {format!("Batch #{b} only · ")}
                        <button type="button" class="link" on:click=move |_| batch.set(None)>"Show all batches"</button>
                    </p>
                })}
            </div>
            {loaded(serials, move |(of_search, of_batch, t)| {
                let next = t.next.clone();
                view! {
                    <p class="muted" data-testid="serials-count">{match_count(t.total, t.rows.len(), "serial number", "serial numbers")}</p>
                    <SerialTable list=t.rows/>
                    <nav class="pager" aria-label="Serial pages">
                        {move || {
                            let (search, batch_id) = current();
                            paging.with(|p| p.has_newer(&search, batch_id)).then(|| view! {
                                <button type="button" class="link" on:click=move |_| paging.update(Paging::newer)>"← Newer serials"</button>
                            })
                        }}
                        {next.map(|n| view! {
                            <button type="button" class="link" data-testid="serials-next" on:click=move |_| {
                                paging.update(|p| p.older(of_search.clone(), of_batch, n.clone()));
                            }>"Older serials →"</button>
                        })}
                    </nav>
                }
                .into_any()
            })}
        </section>
    }
}

#[component]
fn NewBatch(generate: ServerAction<GenerateSerials>) -> impl IntoView {
    let products = LocalResource::new(crate::server_fns::catalog::list_products);
    let chosen = RwSignal::new(None::<i64>);
    view! {
        <section class="card">
            <h2>"Generate serials"</h2>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match products.await {
                        Ok(products) if products.is_empty() => view! { <p class="muted">"Create a product first."</p> }.into_any(),
                        Ok(products) => {
                            let first = products.first().map(|p| p.id);
                            let catalogue = {
                                let products = products.clone();
                                move || {
                                    let id = chosen.get().or(first);
                                    let p = products.iter().find(|p| Some(p.id) == id).cloned();
                                    p.map(|p| {
                                        let hint = format!(
                                            "None ticked: the product's defaults ({}). Each serial grants {} licence(s) unless you say otherwise.",
                                            if p.default_features.is_empty() { "none".to_owned() } else { p.default_features.join(", ") },
                                            p.settings.licences_per_serial
                                        );
                                        view! {
                                            <fieldset>
                                                <legend>"Features stored in each serial"</legend>
                                                <FeatureChecks catalogue=p.features.clone() enabled=vec![] prefix=format!("batch-{}-feature", p.id)/>
                                                <small class="hint">{hint}</small>
                                            </fieldset>
                                        }
                                    })
                                }
                            };
                            view! {
                                <ActionForm action=generate>
                                    <div class="grid-2">
                                        <div class="field">
                                            <label for="batch-product">"Product"</label>
                                            <select id="batch-product" name="product_id" required
                                                on:change=move |ev| chosen.set(event_target_value(&ev).parse().ok())
                                                inner_html=options(products.iter().map(|p| (p.id, format!("{} · {}", p.code, p.name))))/>
                                        </div>
                                        <Field label="Number of serials" name="count" id="batch-count".to_owned() kind="number" min=1 value="10" hint="1 to 1000"/>
                                        <Field label="Licences per serial" name="licences_per_serial" id="batch-per-serial".to_owned() kind="number" min=1 required=false hint="1 to 100; empty: the product's setting"/>
                                        <Field label="Note (optional)" name="note" id="batch-note".to_owned() required=false maxlength=2000/>
                                    </div>
                                    {catalogue}
                                    <ActionError action=generate/>
                                    {move || generate.value().get().and_then(|r| r.ok()).map(|b| view! {
                                        <p class="notice" role="status">
                                            {format!("Generated batch #{}: {} serial(s) for {}. ", b.id, b.serials, b.product_code)}
                                            <a href=format!("/admin/serial-batches/{}/serials.csv", b.id) download="">"Download its CSV"</a>
                                        </p>
                                    })}
                                    <button type="submit" class="primary" disabled=generate.pending()>"Generate"</button>
                                </ActionForm>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn BatchTable(list: Vec<SerialBatch>, batch: RwSignal<Option<i64>>) -> impl IntoView {
    view! {
        <table>
            <caption class="visually-hidden">"Serial batches"</caption>
            <thead><tr>
                <ColumnHeads names=&["Batch", "Product", "Features", "Licences per serial", "Serials", "Created", "Note", "Actions"] numeric=&["Licences per serial", "Serials"]/>
            </tr></thead>
            <tbody>
                {list.into_iter().map(|b| {
                    let id = b.id;
                    view! {
                        <tr data-batch=id>
                            <td>{format!("#{id}")}</td>
                            <td>{b.product_code.clone()}</td>
                            <td>{features_text(&b.features)}</td>
                            <td class="num">{b.licences_per_serial}</td>
                            <td class="num">{b.serials}</td>
                            <td><LocalTime unix_secs=b.created_at/></td>
                            <td>{or_dash(b.note.clone())}</td>
                            <td class="actions">
                                <button type="button" class="small" on:click=move |_| batch.set(Some(id))>"Show serials"</button>
                                <a class="button small" href=format!("/admin/serial-batches/{id}/serials.csv") download="">"Export CSV"</a>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn SerialTable(list: Vec<Serial>) -> impl IntoView {
    view! {
        <table>
            <caption class="visually-hidden">"Serial numbers"</caption>
            <thead><tr>
                <ColumnHeads names=&["Serial number", "Product", "Features", "Licences in use", "Machines", "Status", "Created"] numeric=&["Licences in use"]/>
            </tr></thead>
            <tbody>
                {list.into_iter().map(|s| view! {
                    <tr data-serial=s.serial.clone()>
                        <td><a href=format!("/admin/serials/{}", s.id)><code>{s.serial.clone()}</code></a></td>
                        <td>{s.product_code.clone()}</td>
                        <td>{features_text(&s.features)}</td>
                        <td class="num">{format!("{} of {}", s.active, s.licences)}</td>
                        <td>{or_dash(s.hostnames.join(", "))}</td>
                        <td>{status_view(&s)}</td>
                        <td><LocalTime unix_secs=s.created_at/></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// One serial: its licences (with their machines and terms) and every activation they had.
#[component]
pub fn SerialDetailPage() -> impl IntoView {
    let id = id_param("id");
    let edit = ServerAction::<EditLicence>::new();
    let remove = ServerAction::<RemoveActivation>::new();
    let free_now = ServerAction::<FreeLicenceNow>::new();
    let bulk = ServerAction::<BulkLicences>::new();
    let reissue = ServerAction::<ReissueSerial>::new();
    let page = Resource::new(
        move || {
            (
                id(),
                edit.version().get(),
                remove.version().get(),
                free_now.version().get(),
                bulk.version().get(),
            )
        },
        |(id, ..)| crate::server_fns::web::get_serial_page(id.unwrap_or(0)),
    );
    view! {
        <p class="breadcrumb"><a href="/admin/serials">"Serial numbers"</a></p>
        {loaded(page, move |p| {
                let s = p.detail.serial.clone();
                let revoked = s.revoked_at.is_some();
                let history = p.detail.history.clone();
                // Just reissued: the page now shows the replacement; say what happened.
                let reissued = reissue
                    .value()
                    .get_untracked()
                    .and_then(Result::ok)
                    .filter(|n| n.id == s.id);
                view! {
                    <Title text=format!("{} · Licentia", s.serial)/>
                    {reissued.map(|n| view! {
                        <p class="notice" role="status" data-testid="reissued">
                            {format!(
                                "Serial {} was revoked. This is its replacement, {}: give it to the customer. Machines activated with the old serial must activate again with this one at their next validation.",
                                n.replaces.clone().unwrap_or_default(),
                                n.serial
                            )}
                        </p>
                    })}
                    <h1>"Serial "<code data-testid="serial">{s.serial.clone()}</code></h1>
                    <p><CopyButton text=s.serial.clone() label="Copy the serial number"/></p>
                    <section class="card">
                        <dl class="facts">
                            <dt>"Product"</dt><dd>{format!("{} · {}", p.product.code, p.product.name)}</dd>
                            <dt>"Batch"</dt><dd>{format!("#{}", s.batch_id)}</dd>
                            <dt>"Features"</dt><dd>{features_text(&s.features)}</dd>
                            <dt>"Licences"</dt><dd>{format!("{} ({} in use)", s.licences, s.active)}</dd>
                            <dt>"Status"</dt><dd data-testid="serial-status">{status_view(&s)}</dd>
                            {s.replaces.clone().map(|r| view! { <dt>"Replaces"</dt><dd><code>{r}</code></dd> })}
                            {(!s.revoke_note.is_empty()).then(|| view! { <dt>"Why revoked"</dt><dd>{s.revoke_note.clone()}</dd> })}
                        </dl>
                    </section>
                    <section class="card">
                        <h2>"Licences"</h2>
                        {if revoked {
                            view! { <p class="muted">"This serial was revoked: its licences moved to its replacement."</p> }.into_any()
                        } else {
                            view! {
                                <LicencesSection licences=p.detail.licences.clone() product=p.product.clone() admin=true edit remove free_now bulk/>
                            }.into_any()
                        }}
                    </section>
                    <section class="card">
                        <h2>"History"</h2>
                        <HistoryTable history/>
                    </section>
                    {(!revoked).then(|| view! {
                        // Folded away, so that it takes a deliberate step (and a fresh
                        // replacement is not revoked by a second click on the same spot).
                        <details class="card danger-zone" prop:open=move || { reissue.version().get(); false }>
                            <summary><h2>"Revoke and reissue…"</h2></summary>
                            <p>"For a serial that leaked: a new serial replaces it and takes over its licences, counters and history. Machines activated with this serial keep working until their next validation, which asks them to activate again with the new serial. New activations with this serial are refused."</p>
                            <ActionForm action=reissue>
                                <input type="hidden" name="id" value=s.id/>
                                <Field label="Why (kept with the revoked serial)" name="note" id="reissue-note".to_owned() required=false maxlength=2000/>
                                <ActionError action=reissue/>
                                <ConfirmButton question=format!("Revoke {} and issue a replacement? Its {} machine(s) in use must then activate with the new serial.", s.serial, s.active) label="Revoke and reissue" class="danger"/>
                            </ActionForm>
                        </details>
                    })}
                }
                    .into_any()
            })}
    }
}

#[component]
fn HistoryTable(history: Vec<protocol::catalog::Activation>) -> impl IntoView {
    if history.is_empty() {
        return view! { <p class="muted">"Never activated."</p> }.into_any();
    }
    view! {
        <table>
            <caption class="visually-hidden">"Activation history"</caption>
            <thead><tr>
                <ColumnHeads names=&["Machine", "Mode", "Activated with", "Activated", "Last validated", "Removed"]/>
            </tr></thead>
            <tbody>
                {history.into_iter().map(|a| view! {
                    <tr>
                        <td>{a.hostname.clone()}</td>
                        <td>{a.mode.clone()}</td>
                        <td><code>{or_dash(a.serial.clone().unwrap_or_default())}</code></td>
                        <td><LocalTime unix_secs=a.activated_at/></td>
                        <td>{time_or(a.last_validated_at, "Not yet")}</td>
                        <td>{match a.removed_at {
                            Some(t) => view! { <LocalTime unix_secs=t/>{format!(" by {}", a.removed_by.clone().unwrap_or_default())} }.into_any(),
                            None => view! { <span class="badge ok">"In use"</span> }.into_any(),
                        }}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::Paging;

    #[test]
    fn pages_belong_to_the_search_they_were_reached_with() {
        let mut p = Paging::default();
        assert_eq!(p.after_for("", None), None);
        p.older(String::new(), None, "c1".into());
        p.older(String::new(), None, "c2".into());
        assert_eq!(p.after_for("", None).as_deref(), Some("c2"));
        assert!(p.has_newer("", None));
        // Another search or batch starts from the newest.
        assert_eq!(p.after_for("abc", None), None);
        assert_eq!(p.after_for("", Some(3)), None);
        assert!(!p.has_newer("abc", None));
        p.newer();
        assert_eq!(p.after_for("", None).as_deref(), Some("c1"));
        p.newer();
        assert_eq!(
            (p.after_for("", None), p.has_newer("", None)),
            (None, false)
        );
        // Going on under a new search forgets the old pages; coming back starts it over.
        p.older(String::new(), None, "c1".into());
        p.older(String::new(), None, "c1".into());
        assert_eq!(p.before.len(), 1, "a double click moves one page");
        p.start("abc".into(), None);
        assert!(!p.has_newer("abc", None));
        p.start(String::new(), None);
        assert_eq!(
            p.after_for("", None),
            None,
            "a search typed and deleted starts over"
        );
        p.older("abc".into(), None, "d1".into());
        p.newer();
        assert_eq!(
            (p.after_for("abc", None), p.has_newer("abc", None)),
            (None, false)
        );
    }
}
