//! Signing in, creating the first administrator from the one-time setup link, and setting a
//! password through an invitation or reset link.

use crate::components::{ActionError, Field, NewPasswordFields};
use crate::Auth;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use protocol::input::{Email, Password, PersonName};

#[component]
pub fn SignInPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let pending = auth.sign_in.pending();
    view! {
        <Title text="Sign in · Licentia"/>
        <section class="auth-card">
            <h1>"Sign in"</h1>
            <ActionForm action=auth.sign_in>
                <Field
                    label="E-mail address"
                    name="email"
                    kind="email"
                    autocomplete="username"
                    maxlength=Email::MAX_LEN
                />
                <Field
                    label="Password"
                    name="password"
                    kind="password"
                    autocomplete="current-password"
                    maxlength=Password::MAX_LEN
                />
                <ActionError action=auth.sign_in/>
                <button type="submit" class="primary" disabled=pending>
                    {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
            <p class="hint"><a href="/password-reset">"Forgot your password?"</a></p>
        </section>
    }
}

/// The second step of signing in, for an account with a second factor: the code the
/// authenticator app shows, or one of the recovery codes.
#[component]
pub fn SecondFactorPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let pending = auth.sign_in_code.pending();
    view! {
        <Title text="Authentication code · Licentia"/>
        <section class="auth-card">
            <h1>"Authentication code"</h1>
            <p>"Your password was right. Enter the six-digit code your authenticator app shows for Licentia."</p>
            <ActionForm action=auth.sign_in_code>
                <div class="field">
                    <label for="code">"Code"</label>
                    <input id="code" name="code" autocomplete="one-time-code" inputmode="text" maxlength="20" required=true autofocus=true aria-describedby="code-hint"/>
                    <small id="code-hint" class="hint">"No phone at hand? Enter one of your recovery codes instead (each works once)."</small>
                </div>
                <ActionError action=auth.sign_in_code/>
                <button type="submit" class="primary" disabled=pending>
                    {move || if pending.get() { "Checking…" } else { "Verify" }}
                </button>
            </ActionForm>
            <p class="hint"><a href="/login">"Start again"</a>" · Lost your phone and your recovery codes? Ask an administrator to reset your second factor."</p>
        </section>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let usable = Resource::new(token, crate::server_fns::accounts::setup_link_usable);
    let pending = auth.setup.pending();
    view! {
        <Title text="Create the first administrator · Licentia"/>
        <section class="auth-card">
            <h1>"Create the first administrator"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Checking the link…"</p> }>
                {move || Suspend::new(async move {
                    match usable.await {
                        Ok(true) => view! {
                            <p>"This link works once. The account you create here manages everything in Licentia."</p>
                            <ActionForm action=auth.setup>
                                <input type="hidden" name="token" value=params.read_untracked().get("token").unwrap_or_default()/>
                                <Field label="Your name" name="name" autocomplete="name" maxlength=PersonName::MAX_LEN/>
                                <Field label="E-mail address" name="email" kind="email" autocomplete="username" maxlength=Email::MAX_LEN/>
                                <NewPasswordFields label="Password" name="password" hint="At least 12 characters. A few unrelated words make a strong one."/>
                                <ActionError action=auth.setup/>
                                <button type="submit" class="primary" disabled=pending>"Create administrator"</button>
                            </ActionForm>
                        }
                            .into_any(),
                        Ok(false) => view! {
                            <p class="error" role="alert">
                                "This setup link has expired or was already used. If no administrator exists yet, restart the server to get a new link, or create one with "
                                <code>"server admin create"</code>"."
                            </p>
                            <a href="/login">"Go to sign in"</a>
                        }
                            .into_any(),
                        Err(e) => view! { <crate::components::LoadError error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// "Forgot your password?": asks for a reset link by e-mail. The answer is the same whether the
/// address has an account.
#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let ask = ServerAction::<crate::server_fns::accounts::RequestPasswordReset>::new();
    let mails = Resource::new(|| (), |_| crate::server_fns::accounts::sends_mail());
    view! {
        <Title text="Forgot your password · Licentia"/>
        <section class="auth-card">
            <h1>"Forgot your password?"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match mails.await {
                        Ok(true) => view! {
                            <Show
                                when=move || matches!(ask.value().get(), Some(Ok(())))
                                fallback=move || view! {
                                    <p>"Enter the e-mail address you sign in with. We send a link there that lets you choose a new password."</p>
                                    <ActionForm action=ask>
                                        <Field label="E-mail address" name="email" kind="email" autocomplete="username" maxlength=Email::MAX_LEN/>
                                        <ActionError action=ask/>
                                        <button type="submit" class="primary" disabled=ask.pending()>"Send me a link"</button>
                                    </ActionForm>
                                }
                            >
                                <p class="notice" role="status">
                                    "If an account uses that address, a link to choose a new password is on its way. It works once, for an hour. Nothing arrived? Look in your spam folder, or ask again in a few minutes."
                                </p>
                            </Show>
                        }
                            .into_any(),
                        Ok(false) => view! {
                            <p>"This server does not send e-mail. Ask an administrator: they can set a new password for you or give you a reset link."</p>
                        }
                            .into_any(),
                        Err(e) => view! { <crate::components::LoadError error=e/> }.into_any(),
                    }
                })}
            </Suspense>
            <p class="hint"><a href="/login">"Back to sign in"</a></p>
        </section>
    }
}

/// Choosing a password through an invitation or a reset link.
#[component]
pub fn PasswordLinkPage() -> impl IntoView {
    use protocol::account::LinkPurpose;
    let auth = expect_context::<Auth>();
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let info = Resource::new(token, crate::server_fns::accounts::check_password_link);
    let set = auth.use_link;
    view! {
        <Title text="Choose your password · Licentia"/>
        <section class="auth-card">
            <Suspense fallback=|| view! { <p class="loading">"Checking the link…"</p> }>
                {move || Suspend::new(async move {
                    match info.await {
                        Ok(Some(link)) => {
                            let (title, intro) = match link.purpose {
                                LinkPurpose::Invitation => ("Welcome to Licentia", format!("Hello {}: choose the password you will sign in with as {}.", link.name, link.email)),
                                LinkPurpose::Reset => ("Choose a new password", format!("Hello {}: choose a new password for {}. Your sessions and API tokens end, and you sign in again with it.", link.name, link.email)),
                            };
                            view! {
                                <h1>{title}</h1>
                                <Show
                                    when=move || matches!(set.value().get(), Some(Ok(LinkPurpose::Reset)))
                                    fallback=move || view! {
                                        <p>{intro.clone()}</p>
                                        <ActionForm action=set>
                                            <input type="hidden" name="token" value=params.read_untracked().get("token").unwrap_or_default()/>
                                            <NewPasswordFields label="Password" name="password" hint="At least 12 characters. A few unrelated words make a strong one."/>
                                            <ActionError action=set/>
                                            <button type="submit" class="primary" disabled=set.pending()>"Set password"</button>
                                        </ActionForm>
                                    }
                                >
                                    <p class="notice" role="status">"Your new password is set. Sign in with it."</p>
                                    <a class="button primary" href="/login">"Sign in"</a>
                                </Show>
                            }
                                .into_any()
                        }
                        Ok(None) => view! {
                            <h1>"This link cannot be used"</h1>
                            <p class="error" role="alert">
                                "It has expired, was already used, or a newer link replaced it. Ask for a new one: "
                                <a href="/password-reset">"reset your password"</a>
                                ", or ask the administrator who invited you to send the invitation again."
                            </p>
                        }
                            .into_any(),
                        Err(e) => view! { <crate::components::LoadError error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
