//! API tokens for the management API: create (the secret is shown once), list with their last
//! use, revoke. A client user's tokens reach only its own client's data.

use crate::components::{
    loaded, reset_on_success, time_or, ActionError, ColumnHeads, CopyButton, Field, LocalTime,
    RowAction, SecondFactorCode,
};
use crate::components::{Said, SaidBanner};
use crate::server_fns::tokens::{CreateApiToken, RevokeApiToken};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::catalog::ApiToken;

#[component]
pub fn TokensPage(admin: bool) -> impl IntoView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let revoked = Said::new();
    let form = NodeRef::<leptos::html::Form>::new();
    reset_on_success(create, form);
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| crate::server_fns::tokens::list_api_tokens(),
    );
    let scope = if admin {
        "An administrator's token reaches all data, like its owner."
    } else {
        "Your tokens reach only your organisation's data."
    };
    view! {
        <Title text="API tokens · Licentia"/>
        <h1>"API tokens"</h1>
        <p class="lead">
            "Tokens let your own systems use the management API ("
            <a href="/api/v1/openapi.json">"OpenAPI document"</a>
            "). Send one as "<code>"Authorization: Bearer lic_…"</code>". "{scope}
        </p>
        <section class="card">
            <h2>"New token"</h2>
            <ActionForm action=create node_ref=form>
                <Field label="Name" name="name" id="token-name".to_owned() maxlength=100 hint="What uses it, e.g. \u{201c}billing system\u{201d}"/>
                <div class="field">
                    <label for="token-days">"Lasts (days)"</label>
                    <input id="token-days" name="days" type="number" min="1" max="365" value="90" required=true aria-describedby="token-days-hint"/>
                    <small id="token-days-hint" class="hint">"1 to 365 days; it is refused after that."</small>
                </div>
                <fieldset>
                    <legend>"Access"</legend>
                    <span class="check"><input type="radio" id="token-read" name="access" value="read" checked=true/><label for="token-read">"Read only"</label></span>
                    <span class="check"><input type="radio" id="token-write" name="access" value="write"/><label for="token-write">"Read and write"</label></span>
                </fieldset>
                <Field label="Your password" name="password" id="token-password".to_owned() kind="password" autocomplete="current-password" hint="A token acts as you: confirm it is you."/>
                <SecondFactorCode id="token-code"/>
                <ActionError action=create/>
                {move || create.value().get().and_then(|r| r.ok()).map(|t| view! {
                    <div class="notice" role="status">
                        <p>{format!("Token \u{201c}{}\u{201d} created. Copy it now: it is not shown again.", t.token.name)}</p>
                        <p><code class="secret" data-testid="new-token">{t.secret.clone()}</code>" "<CopyButton text=t.secret label="Copy the token"/></p>
                    </div>
                })}
                <button type="submit" class="primary" disabled=create.pending()>"Create token"</button>
            </ActionForm>
        </section>
        <section class="card">
            <h2>"Tokens"</h2>
            <ActionError action=revoke/>
            <SaidBanner action=revoke said=revoked/>
            {loaded(tokens, move |list| if list.is_empty() {
                view! { <p class="muted">"No tokens yet."</p> }.into_any()
            } else {
                view! { <TokenTable list revoke revoked admin/> }.into_any()
            })}
        </section>
    }
}

#[component]
fn TokenTable(
    list: Vec<ApiToken>,
    revoke: ServerAction<RevokeApiToken>,
    revoked: Said,
    admin: bool,
) -> impl IntoView {
    view! {
        <table>
            <caption class="visually-hidden">"API tokens"</caption>
            <thead><tr>
                <ColumnHeads names=&["Name", "Token", "Access"]/>
                {admin.then(|| view! { <th scope="col">"Owner"</th> })}
                <ColumnHeads names=&["Created", "Expires", "Last used", "Status", "Actions"]/>
            </tr></thead>
            <tbody>
                {list.into_iter().map(|t| {
                    let msg = format!("Revoke the token \u{201c}{}\u{201d}? Whatever uses it is refused from now on.", t.name);
                    view! {
                        <tr data-token=t.name.clone()>
                            <td>{t.name.clone()}</td>
                            <td><code>{format!("{}…", t.prefix)}</code></td>
                            <td>{if t.can_write { "Read and write" } else { "Read only" }}</td>
                            {admin.then(|| view! { <td>{match &t.client_name { Some(c) => format!("{} ({c})", t.owner_email), None => t.owner_email.clone() }}</td> })}
                            <td><LocalTime unix_secs=t.created_at/></td>
                            <td><LocalTime unix_secs=t.expires_at/></td>
                            <td>{time_or(t.last_used_at, "Never")}</td>
                            <td>{match (t.revoked_at, t.expired) {
                                (Some(_), _) => view! { <span class="badge danger">"Revoked"</span> }.into_any(),
                                (None, true) => view! { <span class="badge muted">"Expired"</span> }.into_any(),
                                (None, false) => view! { <span class="badge ok">"Active"</span> }.into_any(),
                            }}</td>
                            <td class="actions">
                                {t.revoked_at.is_none().then(|| view! {
                                    <RowAction action=revoke id=t.id question=msg label="Revoke" said=(revoked, format!("The token \u{201c}{}\u{201d} was revoked.", t.name))/>
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
