//! A pool's mobile licences on its page: the owner's switch (*Allow the mobile licence
//! conversion*) and, for administrators, the pool's longest borrowing; the borrowed seats with
//! *Extend*; *Assign a mobile licence* (a workstation's borrow request code answered with a
//! response code) and *Release a mobile licence* (its return code).

use crate::components::{ActionDone, ActionError, CodeToSend, FormFn, LocalTime, PasteField};
use crate::server_fns::mobile::{AssignMobileLicence, ExtendMobile, ReturnMobile, SetMobile};
use leptos::form::ActionForm;
use leptos::prelude::*;
use protocol::floating::{Pool, SeatDetail};

/// The actions of the mobile licence card, made by the page so that it reloads after each.
#[derive(Clone, Copy)]
pub struct MobileActions {
    pub set: ServerAction<SetMobile>,
    pub assign: ServerAction<AssignMobileLicence>,
    pub extend: ServerAction<ExtendMobile>,
    pub give_back: ServerAction<ReturnMobile>,
}

impl MobileActions {
    pub fn new() -> Self {
        Self {
            set: ServerAction::new(),
            assign: ServerAction::new(),
            extend: ServerAction::new(),
            give_back: ServerAction::new(),
        }
    }

    /// Changes whenever one of them ran.
    pub fn version(&self) -> (usize, usize, usize, usize) {
        (
            self.set.version().get(),
            self.assign.version().get(),
            self.extend.version().get(),
            self.give_back.version().get(),
        )
    }
}

fn lending_text(pool: &Pool) -> String {
    match (pool.borrow_days, &pool.lending_off) {
        (Some(d), _) => format!("Workstations may borrow a seat for up to {d} days."),
        (None, Some(why)) => format!("No mobile licence now: {why}."),
        (None, None) => "No mobile licence now.".into(),
    }
}

#[component]
pub fn MobileLicences(
    pool: Pool,
    mobile: Vec<SeatDetail>,
    admin: bool,
    actions: MobileActions,
) -> impl IntoView {
    let MobileActions {
        set,
        assign,
        extend,
        give_back,
    } = actions;
    let pool_id = pool.id;
    let max = pool
        .max_borrow_days
        .map(|d| d.to_string())
        .unwrap_or_default();
    view! {
        <section class="card" id="mobile-licences">
            <h2>"Mobile licences"</h2>
            <p data-testid="lending">{lending_text(&pool)}</p>
            <ActionForm action=set>
                <input type="hidden" name="pool_id" value=pool_id/>
                <div class="check">
                    <input type="checkbox" id="mobile-allowed" name="form[allowed]" checked=pool.mobile_allowed/>
                    <label for="mobile-allowed">"Allow the mobile licence conversion"</label>
                </div>
                {if admin {
                    view! {
                        <div class="field">
                            <label for="mobile-days">"Longest borrowing (days)"</label>
                            <input id="mobile-days" name="form[max_borrow_days]" type="number" min="0" max="3650" value=max aria-describedby="mobile-days-hint"/>
                            <small id="mobile-days-hint" class="hint">"Empty: the product's (a serial's pool); 0: none. Borrows already out run to their end."</small>
                        </div>
                    }.into_any()
                } else {
                    view! { <input type="hidden" name="form[max_borrow_days]" value=max/> }.into_any()
                }}
                <ActionError action=set/>
                <ActionDone action=set message="The pool's mobile licence settings were saved."/>
                <button type="submit">"Save"</button>
            </ActionForm>
            {if mobile.is_empty() {
                view! { <p class="muted">"No seat is out on a mobile licence."</p> }.into_any()
            } else {
                view! { <MobileTable mobile extend/> }.into_any()
            }}
            <ActionError action=extend/>
            {move || extend.value().get().and_then(Result::ok).map(|b| view! {
                <CodeToSend code=b.borrow_token id="extension-code" label="Response code of the extension" copy_label="Copy the response code" file="licentia-mobile-extension.txt">
                    {format!("Valid until {}. On the machine, run ", protocol::time::format_utc(b.claims.exp))}<code>"licentia-client --product … borrow-import"</code>" and paste it (an online workstation can also run "<code>"extend"</code>" itself)."
                </CodeToSend>
            })}
            <h3>"Release a mobile licence"</h3>
            <p class="hint">"A seat comes back before its end only with its machine's word: there, run "<code>"licentia-client return-code"</code>" and paste the return code here."</p>
            <PoolCodeForm action=give_back pool_id id="return-code" name="return_code" label="Return code">
                <ActionDone action=give_back message="The seat is back in the pool."/>
                <button type="submit">"Return the seat"</button>
            </PoolCodeForm>
            <h3>"Assign a mobile licence"</h3>
            <p class="hint">"For a workstation that cannot reach the server: paste the borrow request code it shows ("<code>"licentia-client borrow-request"</code>"), choose for how long, and send back the response code."</p>
            <PoolCodeForm action=assign pool_id id="borrow-request" name="assign[request_code]" label="Borrow request code">
                <div class="field">
                    <label for="borrow-days">"Days"</label>
                    <input id="borrow-days" name="assign[days]" type="number" min="1" required value=pool.borrow_days.unwrap_or(1).min(7)/>
                </div>
                <button type="submit" class="primary" disabled=assign.pending()>"Assign a licence to the user"</button>
            </PoolCodeForm>
            {move || assign.value().get().and_then(Result::ok).map(|b| view! {
                <CodeToSend code=b.borrow_token id="borrow-response" label="Response code" copy_label="Copy the response code" file="licentia-mobile-licence.txt">
                    {format!("A mobile licence of {} for {} until {}. It works once, on the machine that asked: there, run ", b.claims.feature, b.claims.host, protocol::time::format_utc(b.claims.exp))}<code>"licentia-client --product … borrow-import"</code>" and paste it."
                </CodeToSend>
            })}
        </section>
    }
}

/// A form of the pool's card that takes a pasted code (and `children`: more fields, buttons),
/// with the error of its last run.
#[component]
fn PoolCodeForm<S, P>(
    action: ServerAction<S>,
    pool_id: i64,
    id: &'static str,
    name: &'static str,
    label: &'static str,
    children: Children,
    #[prop(marker)] _protocol: std::marker::PhantomData<P>,
) -> impl IntoView
where
    S: FormFn<P>,
{
    view! {
        <ActionForm action=action>
            <input type="hidden" name="pool_id" value=pool_id/>
            <PasteField id name label/>
            {children()}
            <ActionError action=action/>
        </ActionForm>
    }
}

#[component]
fn MobileTable(mobile: Vec<SeatDetail>, extend: ServerAction<ExtendMobile>) -> impl IntoView {
    view! {
        <table data-testid="mobile-licences">
            <caption class="visually-hidden">"Mobile licences"</caption>
            <thead><tr>
                <th scope="col">"Feature"</th>
                <th scope="col">"User"</th>
                <th scope="col">"Host"</th>
                <th scope="col">"Until"</th>
                <th scope="col">"Extend"</th>
            </tr></thead>
            <tbody>
                {mobile.into_iter().map(|s| {
                    let days_id = format!("extend-{}", s.id);
                    let days_label = format!("Days to extend {} by", s.host);
                    view! {
                        <tr data-mobile=s.host.clone()>
                            <td>{s.feature.clone()}</td>
                            <td>{s.user.clone()}</td>
                            <td>{s.host.clone()}</td>
                            <td>{s.borrowed_until.map(|u| view! { <LocalTime unix_secs=u/> })}</td>
                            <td class="actions">
                                <ActionForm action=extend>
                                    <input type="hidden" name="seat_id" value=s.id/>
                                    <label for=days_id.clone() class="visually-hidden">{days_label}</label>
                                    <input id=days_id name="days" type="number" min="1" value="1" required class="small"/>
                                    <button type="submit" class="small">"Extend"</button>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
