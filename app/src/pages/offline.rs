//! Offline activation: a machine's request code pasted in, what it is for shown before
//! answering, and the response code to carry back (administrators may give other terms).

use crate::components::{
    ActionError, CodeFileInput, CodeToSend, CounterRows, Field, LocalTime, PasteField,
};
use crate::server_fns::catalog::{AcceptRemovalCode, AnswerRequest};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

/// Offline activation: paste a request code from a machine, get its response code. Administrators
/// may give the licence other terms on the way (an activation code "with overrides").
#[component]
pub fn OfflineActivationPage(admin: bool) -> impl IntoView {
    let answer = ServerAction::<AnswerRequest>::new();
    // What the pasted request is for, read by the server as soon as it is pasted or typed.
    let request = RwSignal::new(String::new());
    let summary = Resource::new(
        move || request.get(),
        |code| async move {
            if code.trim().is_empty() {
                Ok(None)
            } else {
                crate::server_fns::catalog::describe_request(code)
                    .await
                    .map(Some)
            }
        },
    );
    view! {
        <Title text="Offline activation · Licentia"/>
        <h1>"Offline activation"</h1>
        <section class="card">
            <p>"On a machine without internet access, the application shows a request code (with the CLI: "
               <code>"licentia-client request-code"</code>"). Paste it here, then give the response code back to that machine."</p>
            <ActionForm action=answer>
                <div class="field wide">
                    <label for="request-code">"Request code"</label>
                    <textarea id="request-code" name="request_code" rows="4" required spellcheck="false"
                        on:input=move |ev| request.set(event_target_value(&ev))></textarea>
                    <CodeFileInput target="request-code" what="Request code"/>
                </div>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match summary.await {
                            Ok(None) => ().into_any(),
                            Ok(Some(r)) => view! {
                                <section class="request-summary" aria-label="The request" data-testid="request-summary">
                                    <h2>"This request is for"</h2>
                                    <dl class="facts">
                                        <dt>"Product"</dt><dd>{r.product.clone()}</dd>
                                        <dt>{if r.by_serial { "Serial number" } else { "Licence" }}</dt><dd><code>{r.licence.clone()}</code></dd>
                                        <dt>"Machine"</dt><dd>{r.host.clone()}</dd>
                                        <dt>"Made"</dt><dd><LocalTime unix_secs=r.requested_at/></dd>
                                    </dl>
                                    <p class="hint" data-testid="request-state">{r.state.clone()}</p>
                                </section>
                            }.into_any(),
                            // Said quietly: answering says it again, as the alert.
                            Err(e) => view! { <p class="hint" data-testid="request-unreadable">{format!("This request cannot be read: {e}")}</p> }.into_any(),
                        }
                    })}
                </Transition>
                {admin.then(|| view! {
                    <details>
                        <summary>"Override the licence's terms"</summary>
                        <div class="check">
                            <input type="checkbox" id="override-terms" name="override_terms"/>
                            <label for="override-terms">"Give the licence these terms before answering"</label>
                        </div>
                        <Field label="Features" name="features" id="override-features".to_owned() required=false hint="Feature codes, separated by commas."/>
                        <CounterRows counters=Default::default()/>
                        <Field label="Expires on" name="expires_on" id="override-expires".to_owned() kind="date" required=false hint="Today or later; empty keeps the current end."/>
                        <div class="check">
                            <input type="checkbox" id="override-no-end" name="no_end"/>
                            <label for="override-no-end">"No end date"</label>
                        </div>
                    </details>
                })}
                <ActionError action=answer/>
                <button type="submit" class="primary" disabled=answer.pending()>"Make the response code"</button>
            </ActionForm>
            {move || answer.value().get().and_then(Result::ok).map(|code| view! {
                <CodeToSend code id="response-code" label="Response code" copy_label="Copy the response code" file="licentia-response-code.txt">
                    "It works once, on the machine that made the request: there, run "<code>"licentia-client --product … import"</code>" and paste it (or give it the file: "<code>"import < licentia-response-code.txt"</code>")."
                </CodeToSend>
            })}
        </section>
        <RemovalCodeForm/>
    }
}

/// The offline transfer: a machine without internet access gives its licence up and shows a
/// removal code; pasted here, it frees the licence at once (instead of when the machine's code
/// would have stopped working offline).
#[component]
fn RemovalCodeForm() -> impl IntoView {
    let free = ServerAction::<AcceptRemovalCode>::new();
    view! {
        <section class="card">
            <h2>"Transfer: a machine's removal code"</h2>
            <p>"To move a licence off a machine that cannot reach the server, give it up there (with the CLI: "
               <code>"licentia-client removal-code"</code>") and paste the removal code it shows here: the licence is free for another machine at once."</p>
            <ActionForm action=free>
                <PasteField id="removal-code" name="removal_code" label="Removal code"/>
                <ActionError action=free/>
                <button type="submit">"Free the licence"</button>
            </ActionForm>
            {move || free.value().get().and_then(Result::ok).map(|host| view! {
                <p class="notice" role="status">{format!("The licence was freed from {host}: another machine can activate it now.")}</p>
            })}
        </section>
    }
}
