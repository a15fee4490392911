//! Webhooks (administrators): register a URL for events (the signing secret is shown once),
//! see each webhook's deliveries with their attempts and answers, remove one.

use crate::components::{
    loaded, ActionError, CopyButton, LocalTime, RowAction, Said, SaidBanner, WideTable,
};
use crate::server_fns::webhooks::{CreateWebhook, RemoveWebhook};
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::webhooks::{Webhook, WebhookDelivery, WebhookEvent, SIGNATURE_HEADER};

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let create = ServerAction::<CreateWebhook>::new();
    let remove = ServerAction::<RemoveWebhook>::new();
    let removed = Said::new();
    let hooks = Resource::new(
        move || (create.version().get(), remove.version().get()),
        |_| crate::server_fns::webhooks::list_webhooks(),
    );
    let url = RwSignal::new(String::new());
    let events = RwSignal::new(Vec::<WebhookEvent>::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateWebhook {
            url: url.get_untracked(),
            events: events
                .get_untracked()
                .iter()
                .map(|e| e.code().to_owned())
                .collect(),
        });
    };
    view! {
        <Title text="Webhooks · Licentia"/>
        <h1>"Webhooks"</h1>
        <p class="lead">
            "Your own systems told of events as they happen: each is POSTed as JSON "
            <code>"{\"id\", \"type\", \"created_at\", \"data\"}"</code>
            " with "<code>{SIGNATURE_HEADER}": t=…,v1=…"</code>
            " — the HMAC-SHA256 of "<code>"t.body"</code>" keyed with the webhook's secret: check it, and drop an "
            <code>"id"</code>" seen before. Anything but a 2xx within 10 s is tried again after 30 s, 2 min, 10 min, 1 h, 3 h, 6 h and 12 h."
        </p>
        <section class="card">
            <h2>"New webhook"</h2>
            <form on:submit=submit>
                <div class="field">
                    <label for="webhook-url">"URL"</label>
                    <input id="webhook-url" type="url" required=true maxlength="2000" placeholder="https://hooks.example.com/licentia"
                        on:input=move |ev| url.set(event_target_value(&ev))/>
                </div>
                <fieldset>
                    <legend>"Events"</legend>
                    {WebhookEvent::ALL.iter().map(|e| {
                        let e = *e;
                        let id = format!("webhook-event-{}", e.code().replace('.', "-"));
                        view! {
                            <span class="check">
                                <input type="checkbox" id=id.clone() on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    events.update(|list| {
                                        list.retain(|x| *x != e);
                                        if on {
                                            list.push(e);
                                        }
                                    });
                                }/>
                                <label for=id>{format!("{} ({})", e.describe(), e.code())}</label>
                            </span>
                        }
                    }).collect_view()}
                </fieldset>
                <ActionError action=create/>
                {move || create.value().get().and_then(|r| r.ok()).map(|made| view! {
                    <div class="notice" role="status">
                        <p>{format!("Webhook {} registered for {}. Copy its secret now: it is not shown again.", made.webhook.url, made.webhook.events.iter().map(|e| e.code()).collect::<Vec<_>>().join(", "))}</p>
                        <p><code class="secret" data-testid="webhook-secret">{made.secret.clone()}</code>" "<CopyButton text=made.secret label="Copy the secret"/></p>
                    </div>
                })}
                <button type="submit" class="primary" disabled=create.pending()>"Register webhook"</button>
            </form>
        </section>
        <section class="card">
            <h2>"Registered"</h2>
            <ActionError action=remove/>
            <SaidBanner action=remove said=removed/>
            {loaded(hooks, move |list| if list.is_empty() {
                view! { <p class="muted">"No webhook yet."</p> }.into_any()
            } else {
                view! { <div>{list.into_iter().map(|w| view! { <WebhookCard hook=w remove removed/> }).collect_view()}</div> }.into_any()
            })}
        </section>
    }
}

#[component]
fn WebhookCard(hook: Webhook, remove: ServerAction<RemoveWebhook>, removed: Said) -> impl IntoView {
    let id = hook.id;
    let shown = RwSignal::new(false);
    let question = format!(
        "Remove the webhook {}? Its waiting deliveries are dropped.",
        hook.url
    );
    view! {
        <article class="webhook" data-webhook=hook.url.clone()>
            <h3 class="wrap">{hook.url.clone()}</h3>
            <p>
                {hook.events.iter().map(|e| e.code()).collect::<Vec<_>>().join(", ")}
                " · registered "<LocalTime unix_secs=hook.created_at/>
                " · "{format!("{} waiting", hook.pending)}
                {(hook.failed > 0).then(|| view! { " · "<span class="badge danger">{format!("{} given up", hook.failed)}</span> })}
            </p>
            // A div: the remove button is a form, which a paragraph cannot hold (the browser
            // would close the paragraph first, and hydration would not find its elements).
            <div class="table-tools">
                <button type="button" on:click=move |_| shown.update(|s| *s = !*s)>
                    {move || if shown.get() { "Hide deliveries" } else { "Show deliveries" }}
                </button>
                <RowAction action=remove id question label="Remove" said=(removed, format!("The webhook {} was removed.", hook.url))/>
            </div>
            {move || shown.get().then(|| view! { <Deliveries id/> })}
        </article>
    }
}

#[component]
fn Deliveries(id: i64) -> impl IntoView {
    let list = Resource::new(
        || (),
        move |_| crate::server_fns::webhooks::webhook_deliveries(id),
    );
    view! {
        {loaded(list, |list| if list.is_empty() {
            view! { <p class="muted">"Nothing sent yet."</p> }.into_any()
        } else {
            view! {
                <WideTable caption="Deliveries" heads=&["Event", "Made", "Attempts", "Last answer", "State"] numeric=&["Attempts"]>
                    {list.into_iter().map(|d| view! { <DeliveryRow d/> }).collect_view()}
                </WideTable>
            }.into_any()
        })}
    }
}

#[component]
fn DeliveryRow(d: WebhookDelivery) -> impl IntoView {
    let answer = match (d.last_status, &d.last_answer) {
        (Some(s), Some(a)) => format!("{s} {a}"),
        (Some(s), None) => s.to_string(),
        (None, Some(a)) => a.clone(),
        (None, None) => "—".to_owned(),
    };
    let state = match (d.delivered_at, d.failed_at, d.next_attempt_at) {
        (Some(at), ..) => view! { "delivered "<LocalTime unix_secs=at/> }.into_any(),
        (_, Some(at), _) => {
            view! { <span class="badge danger">"given up"</span>" "<LocalTime unix_secs=at/> }
                .into_any()
        }
        (_, _, Some(at)) => view! { "next try "<LocalTime unix_secs=at/> }.into_any(),
        _ => view! { "—" }.into_any(),
    };
    view! {
        <tr data-delivery=d.id>
            <td><code>{d.event.clone()}</code></td>
            <td><LocalTime unix_secs=d.created_at/></td>
            <td class="num">{d.attempts}</td>
            <td class="wrap">{answer}</td>
            <td>{state}</td>
        </tr>
    }
}
