//! "My account": who you are signed in as, changing your own password, two-factor
//! authentication, and where you are signed in (ending any session but this one).

use crate::components::{
    loaded, reset_on_success, ActionDone, ActionError, ColumnHeads, ConfirmButton, Field,
    LocalTime, NewPasswordFields, SecondFactorCode,
};
use crate::server_fns::accounts::{
    BeginSecondFactor, ChangePassword, ConfirmSecondFactor, EndOwnSession, NewRecoveryCodes,
    RemoveSecondFactor,
};
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
                <SecondFactorCode id="password-code"/>
                <span class="check">
                    <input type="checkbox" id="revoke-tokens" name="revoke_tokens"/>
                    <label for="revoke-tokens">"Also revoke my API tokens (do this if someone else may have known the old password)"</label>
                </span>
                <ActionError action=change/>
                <ActionDone action=change message="Your password was changed."/>
                <button type="submit" class="primary" disabled=pending>"Change password"</button>
            </ActionForm>
        </section>
        <SecondFactor/>
        <OwnSessions/>
    }
}

/// Two-factor authentication: set up an authenticator app (its key shown, confirmed with a
/// code and the password; recovery codes shown once), new recovery codes, or turn it off.
#[component]
fn SecondFactor() -> impl IntoView {
    let begin = ServerAction::<BeginSecondFactor>::new();
    let confirm = ServerAction::<ConfirmSecondFactor>::new();
    let renew = ServerAction::<NewRecoveryCodes>::new();
    let remove = ServerAction::<RemoveSecondFactor>::new();
    // After each change that succeeded — and only then: a wrong code leaves the form as typed —
    // the status is read again; the recovery codes shown are those of the latest change (none
    // once the factor is off), and a setup begun before is forgotten.
    let changed = RwSignal::new(0u32);
    let codes = RwSignal::new(None::<Vec<String>>);
    Effect::new(move |_| {
        confirm.version().track();
        if let Some(Ok(list)) = confirm.value().get_untracked() {
            codes.set(Some(list));
            changed.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        renew.version().track();
        if let Some(Ok(list)) = renew.value().get_untracked() {
            codes.set(Some(list));
            changed.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        remove.version().track();
        if let Some(Ok(())) = remove.value().get_untracked() {
            codes.set(None);
            begin.value().set(None);
            changed.update(|n| *n += 1);
        }
    });
    let status = Resource::new(
        move || changed.get(),
        |_| crate::server_fns::accounts::second_factor_status(),
    );
    view! {
        <section class="card" id="second-factor">
            <h2>"Two-factor authentication"</h2>
            {move || codes.get().map(|list| view! {
                <div class="notice" role="status">
                    <p>"Your recovery codes. Keep them somewhere safe: each signs you in once without your phone, and they are not shown again."</p>
                    <ul class="codes" data-testid="recovery-codes">
                        {list.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
                    </ul>
                </div>
            })}
            {loaded(status, move |s| if s.on {
                view! {
                    <p data-testid="second-factor-on"><span class="badge ok">"On"</span>{format!(" Signing in asks for a code from your authenticator app. Recovery codes left: {}.", s.recovery_codes_left)}</p>
                    <details>
                        <summary>"New recovery codes"</summary>
                        <ActionForm action=renew>
                            <Field label="Your password" name="password" id="renew-password".to_owned() kind="password" autocomplete="current-password"/>
                            <Field label="Code from your app" name="code" id="renew-code".to_owned() autocomplete="one-time-code"/>
                            <ActionError action=renew/>
                            <button type="submit">"Make new recovery codes"</button>
                        </ActionForm>
                    </details>
                    <details>
                        <summary>"Turn two-factor authentication off"</summary>
                        <ActionForm action=remove>
                            <Field label="Your password" name="password" id="off-password".to_owned() kind="password" autocomplete="current-password"/>
                            <Field label="Code from your app" name="code" id="off-code".to_owned() autocomplete="one-time-code"/>
                            <ActionError action=remove/>
                            <button type="submit" class="danger">"Turn off"</button>
                        </ActionForm>
                    </details>
                }.into_any()
            } else {
                view! {
                    {s.required.then(|| view! {
                        <p class="error" role="alert">"This server requires administrators to use a second factor: set it up here before anything else."</p>
                    })}
                    <p>"Off. With it on, signing in asks for a code from an authenticator app on your phone as well as your password."</p>
                    <SetUp begin confirm/>
                }.into_any()
            })}
        </section>
    }
}

#[component]
fn SetUp(
    begin: ServerAction<BeginSecondFactor>,
    confirm: ServerAction<ConfirmSecondFactor>,
) -> impl IntoView {
    view! {
        <ActionForm action=begin>
            <ActionError action=begin/>
            <button type="submit" disabled=begin.pending()>"Set up an authenticator app"</button>
        </ActionForm>
        {move || begin.value().get().and_then(|r| r.ok()).map(|setup| view! {
            <ol class="steps">
                <li>
                    "In your authenticator app, add an account with this key (or open the link on the phone): "
                    <code class="secret" data-testid="second-factor-secret">{setup.secret.clone()}</code>
                    " "<a href=setup.uri.clone()>"Open in the app"</a>
                </li>
                <li>
                    "Enter the code the app shows, and your password:"
                    <ActionForm action=confirm>
                        <Field label="Code from your app" name="code" id="confirm-code".to_owned() autocomplete="one-time-code"/>
                        <Field label="Your password" name="password" id="confirm-password".to_owned() kind="password" autocomplete="current-password"/>
                        <ActionError action=confirm/>
                        <button type="submit" class="primary" disabled=confirm.pending()>"Turn on"</button>
                    </ActionForm>
                </li>
            </ol>
        })}
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
