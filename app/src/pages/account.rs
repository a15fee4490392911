//! "My account": who you are signed in as, changing your own password, and where you are
//! signed in (ending any session but this one).

use crate::components::{
    loaded, reset_on_success, ActionDone, ActionError, ColumnHeads, ConfirmButton, Field,
    LocalTime, NewPasswordFields,
};
use crate::server_fns::accounts::{ChangePassword, EndOwnSession};
use crate::Auth;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::input::Password;

#[component]
pub fn AccountPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let change = ServerAction::<ChangePassword>::new();
    let pending = change.pending();
    let form = NodeRef::<leptos::html::Form>::new();
    reset_on_success(change, form);
    view! {
        <Title text="My account · Licentia"/>
        <h1>"My account"</h1>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                auth.user.await.ok().flatten().map(|u| view! {
                    <dl class="facts">
                        <dt>"Name"</dt><dd>{u.name}</dd>
                        <dt>"E-mail address"</dt><dd>{u.email}</dd>
                        {u.client.map(|c| view! { <dt>"Organisation"</dt><dd>{c.name}</dd> })}
                    </dl>
                })
            })}
        </Suspense>
        <section class="card">
            <h2>"Change password"</h2>
            <ActionForm action=change node_ref=form>
                <Field label="Current password" name="current_password" kind="password" autocomplete="current-password" maxlength=Password::MAX_LEN/>
                <NewPasswordFields label="New password" name="new_password" hint="At least 12 characters. Your other sessions will be signed out."/>
                <span class="check">
                    <input type="checkbox" id="revoke-tokens" name="revoke_tokens"/>
                    <label for="revoke-tokens">"Also revoke my API tokens (do this if someone else may have known the old password)"</label>
                </span>
                <ActionError action=change/>
                <ActionDone action=change message="Your password was changed."/>
                <button type="submit" class="primary" disabled=pending>"Change password"</button>
            </ActionForm>
        </section>
        <OwnSessions/>
    }
}

/// Where the caller is signed in: each session's start, last use and address; any but this one
/// can be ended.
#[component]
fn OwnSessions() -> impl IntoView {
    let end = ServerAction::<EndOwnSession>::new();
    let sessions = Resource::new(
        move || end.version().get(),
        |_| crate::server_fns::accounts::list_own_sessions(),
    );
    view! {
        <section class="card">
            <h2>"Where you are signed in"</h2>
            <ActionError action=end/>
            {loaded(sessions, move |list| view! {
                <table>
                    <caption class="visually-hidden">"Your sessions"</caption>
                    <thead><tr><ColumnHeads names=&["Signed in", "Last active", "From", "Actions"]/></tr></thead>
                    <tbody>
                        {list.into_iter().map(|s| { let id = s.id.clone(); view! {
                            <tr data-session=s.id.clone()>
                                <td><LocalTime unix_secs=s.created_at/></td>
                                <td><LocalTime unix_secs=s.last_seen_at/></td>
                                <td>{s.address.clone()}</td>
                                <td class="actions">{if s.current {
                                    view! { <span class="badge ok">"This browser"</span> }.into_any()
                                } else {
                                    view! {
                                        <ActionForm action=end>
                                            <input type="hidden" name="id" value=id.clone()/>
                                            <ConfirmButton question="Sign this session out?" label="Sign out"/>
                                        </ActionForm>
                                    }.into_any()
                                }}</td>
                            </tr>
                        }}).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}
