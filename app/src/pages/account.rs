//! "My account": who you are signed in as, and changing your own password.

use crate::components::{reset_on_success, ActionDone, ActionError, Field, NewPasswordFields};
use crate::server_fns::accounts::ChangePassword;
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
                <ActionError action=change/>
                <ActionDone action=change message="Your password was changed."/>
                <button type="submit" class="primary" disabled=pending>"Change password"</button>
            </ActionForm>
        </section>
    }
}
