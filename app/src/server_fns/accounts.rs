//! Server functions of accounts: signing in and out, the setup link, one's password, the
//! administrator's overview, clients and their users.

use crate::error::PortalError;
use leptos::prelude::*;
use protocol::account::{
    AdminOverview, ClientBody, ClientDetail, ClientSummary, CurrentUser, LinkPurpose, LinkSent,
    OwnSession, PasswordLinkInfo, Role, SecondFactorSetup, SecondFactorState, UserAdded,
    UserSummary,
};

#[cfg(feature = "ssr")]
use crate::ssr::{admin, caller, caller_setting_up, services};

/// Where a user lands after signing in: an administrator on the Overview, a client user on
/// their licences (their organisation's figures are a link away).
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Client => "/client/licences",
    }
}

/// The signed-in user, or `None`.
#[server(prefix = "/rpc", endpoint = "get_current_user")]
pub async fn get_current_user() -> Result<Option<CurrentUser>, PortalError> {
    let services = services()?;
    match crate::ssr::session_token() {
        Some(token) => Ok(services.session_user(&token).await?),
        None => Ok(None),
    }
}

/// Where a user lands after signing in: their start page, or their account page when they must
/// set up a second factor first.
#[cfg(feature = "ssr")]
fn landing(user: &CurrentUser) -> &'static str {
    match (user.must_set_up_second_factor, user.role) {
        (true, _) => "/admin/account",
        (false, role) => home_of(role),
    }
}

/// The password step. An account with a second factor goes on to the code
/// (`/login/code`), its ticket kept in an HttpOnly cookie for five minutes.
#[server(prefix = "/rpc", endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<(), PortalError> {
    use licensing::accounts::second_factor::SignInStep;
    use licensing::ExposeSecret;
    let services = services()?;
    let previous = crate::ssr::session_token();
    let step = services
        .begin_sign_in(
            &email,
            &password,
            &crate::ssr::client_address(),
            previous.as_deref(),
        )
        .await?;
    match step {
        SignInStep::Done(signed) => {
            crate::ssr::set_session_cookie(signed.token.expose_secret());
            leptos_axum::redirect(landing(&signed.user));
        }
        SignInStep::SecondFactor { ticket } => {
            crate::ssr::set_challenge_cookie(ticket.expose_secret(), 300);
            leptos_axum::redirect("/login/code");
        }
    }
    Ok(())
}

/// The second step: the code from the authenticator app, or a recovery code.
#[server(prefix = "/rpc", endpoint = "sign_in_code")]
pub async fn sign_in_code(code: String) -> Result<(), PortalError> {
    use licensing::ExposeSecret;
    let services = services()?;
    let Some(ticket) = crate::ssr::challenge_ticket() else {
        return Err(PortalError::Gone(
            "This sign-in has expired: enter your password again.".into(),
        ));
    };
    let previous = crate::ssr::session_token();
    let signed = services
        .complete_sign_in(
            &ticket,
            &code,
            &crate::ssr::client_address(),
            previous.as_deref(),
        )
        .await?;
    crate::ssr::set_challenge_cookie("", 0);
    crate::ssr::set_session_cookie(signed.token.expose_secret());
    leptos_axum::redirect(landing(&signed.user));
    Ok(())
}

/// Whether the caller has a second factor, and how many recovery codes are left.
#[server(prefix = "/rpc", endpoint = "second_factor_status")]
pub async fn second_factor_status() -> Result<SecondFactorState, PortalError> {
    let (services, user) = caller_setting_up().await?;
    let (on, recovery_codes_left) = services.second_factor_status(&user).await?;
    Ok(SecondFactorState {
        on,
        recovery_codes_left,
        required: user.must_set_up_second_factor,
    })
}

/// Starts setting up an authenticator app: the key to type in (or the URI to import).
#[server(prefix = "/rpc", endpoint = "begin_second_factor")]
pub async fn begin_second_factor() -> Result<SecondFactorSetup, PortalError> {
    let (services, user) = caller_setting_up().await?;
    Ok(services.begin_second_factor(&user).await?)
}

/// Turns the second factor on with a code from the app and the password; the recovery codes,
/// shown this once.
#[server(prefix = "/rpc", endpoint = "confirm_second_factor")]
pub async fn confirm_second_factor(
    #[server(default)] password: String,
    code: String,
) -> Result<Vec<String>, PortalError> {
    // (The request's context is read before the first await: it may be gone after.)
    let address = crate::ssr::client_address();
    let keep = crate::ssr::session_token().unwrap_or_default();
    let (services, user) = caller_setting_up().await?;
    Ok(services
        .confirm_second_factor(&user, &password, &code, &address, &keep)
        .await?)
}

/// New recovery codes (the old ones stop working), with the password and a code.
#[server(prefix = "/rpc", endpoint = "new_recovery_codes")]
pub async fn new_recovery_codes(
    #[server(default)] password: String,
    code: String,
) -> Result<Vec<String>, PortalError> {
    let address = crate::ssr::client_address();
    let (services, user) = caller_setting_up().await?;
    Ok(services
        .new_recovery_codes(&user, &password, &code, &address)
        .await?)
}

/// Turns the caller's second factor off, with the password and a code.
#[server(prefix = "/rpc", endpoint = "remove_second_factor")]
pub async fn remove_second_factor(
    #[server(default)] password: String,
    code: String,
) -> Result<(), PortalError> {
    let address = crate::ssr::client_address();
    let (services, user) = caller_setting_up().await?;
    Ok(services
        .remove_own_second_factor(&user, &password, &code, &address)
        .await?)
}

#[server(prefix = "/rpc", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), PortalError> {
    let services = services()?;
    if let Some(token) = crate::ssr::session_token() {
        services.sign_out(&token).await?;
    }
    crate::ssr::clear_session_cookie();
    leptos_axum::redirect("/login");
    Ok(())
}

/// Whether a first-administrator setup link can still be used.
#[server(prefix = "/rpc", endpoint = "setup_link_usable")]
pub async fn setup_link_usable(token: String) -> Result<bool, PortalError> {
    Ok(services()?.setup_token_usable(&token).await?)
}

#[server(prefix = "/rpc", endpoint = "complete_setup")]
pub async fn complete_setup(
    token: String,
    name: String,
    email: String,
    password: String,
    password_confirm: String,
) -> Result<(), PortalError> {
    let services = services()?;
    if password != password_confirm {
        return Err(mismatch());
    }
    let signed = services
        .complete_setup(
            &token,
            &name,
            &email,
            &password,
            &crate::ssr::client_address(),
        )
        .await?;
    crate::ssr::set_session_cookie(licensing::ExposeSecret::expose_secret(&signed.token));
    leptos_axum::redirect("/admin");
    Ok(())
}

#[cfg(feature = "ssr")]
fn mismatch() -> PortalError {
    PortalError::Invalid {
        field: "password_confirm".into(),
        message: "The two passwords do not match.".into(),
    }
}

/// `revoke_tokens`: "on" (a ticked box) also revokes every API token the caller made.
#[server(prefix = "/rpc", endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    new_password_confirm: String,
    #[server(default)] revoke_tokens: Option<String>,
    #[server(default)] code: String,
) -> Result<(), PortalError> {
    let token = crate::ssr::session_token().unwrap_or_default();
    let address = crate::ssr::client_address();
    let (services, user) = caller_setting_up().await?;
    if new_password != new_password_confirm {
        return Err(mismatch());
    }
    let change = licensing::accounts::PasswordChange {
        current_password: &current_password,
        new_password: &new_password,
        current_token: &token,
        revoke_tokens: revoke_tokens.is_some(),
        code: &code,
    };
    services
        .change_own_password(&user, change, &address)
        .await?;
    Ok(())
}

/// The caller's own open sessions, to see where they are signed in.
#[server(prefix = "/rpc", endpoint = "list_own_sessions")]
pub async fn list_own_sessions() -> Result<Vec<OwnSession>, PortalError> {
    // (The request's context is read before the first await: it may be gone after, and a
    // page rendered without knowing its own session would not hydrate.)
    let token = crate::ssr::session_token().unwrap_or_default();
    let (services, user) = caller_setting_up().await?;
    Ok(services.own_sessions(&user, &token).await?)
}

/// Ends one of the caller's own sessions (signs that browser out).
#[server(prefix = "/rpc", endpoint = "end_own_session")]
pub async fn end_own_session(id: String) -> Result<(), PortalError> {
    let (services, user) = caller_setting_up().await?;
    Ok(services.end_own_session(&user, &id).await?)
}

#[server(prefix = "/rpc", endpoint = "get_admin_overview")]
pub async fn get_admin_overview() -> Result<AdminOverview, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.admin_overview(&user).await?)
}

/// The dashboard: figures, the activations of the last days, what expires soon, the pools and
/// recent activity — everything, with the first steps on an empty server, for an
/// administrator; a client user's organisation's own for a client user.
#[server(prefix = "/rpc", endpoint = "get_dashboard")]
pub async fn get_dashboard() -> Result<protocol::dashboard::Dashboard, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.dashboard(&user).await?)
}

/// Every client by name (for a select of them).
#[server(prefix = "/rpc", endpoint = "list_clients")]
pub async fn list_clients() -> Result<Vec<ClientSummary>, PortalError> {
    let (services, user) = admin().await?;
    Ok(services
        .list_clients(&user, &Default::default(), &licensing::page::Page::ALL)
        .await?
        .items)
}

/// A page of the clients `filter` picks, with how many match in all (administrators).
#[server(prefix = "/rpc", endpoint = "clients_page")]
pub async fn clients_page(
    // Every filter empty is sent as no field at all.
    #[server(default)] filter: protocol::account::ClientFilter,
    after: Option<String>,
    limit: Option<i64>,
) -> Result<protocol::account::ClientTable, PortalError> {
    let (services, user) = admin().await?;
    let page = crate::ssr::table_page(after, limit, CLIENTS_PER_PAGE)?;
    let list = services.list_clients(&user, &filter, &page).await?;
    let total = services.count_clients(&user, &filter).await?;
    Ok(crate::ssr::table(list, total))
}

/// Rows per page of the portal's clients table.
pub const CLIENTS_PER_PAGE: i64 = 50;

#[server(prefix = "/rpc", endpoint = "list_admins")]
pub async fn list_admins() -> Result<Vec<UserSummary>, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.list_admins(&user).await?)
}

#[server(prefix = "/rpc", endpoint = "create_client")]
pub async fn create_client(client: ClientBody) -> Result<ClientSummary, PortalError> {
    let (services, user) = admin().await?;
    let input = licensing::accounts::ClientInput::parse(&client)?;
    let client = services.create_client(&user, input).await?;
    leptos_axum::redirect(&format!("/admin/clients/{}?done=created", client.id));
    Ok(client)
}

#[server(prefix = "/rpc", endpoint = "update_client")]
pub async fn update_client(id: i64, client: ClientBody) -> Result<ClientSummary, PortalError> {
    let (services, user) = admin().await?;
    let input = licensing::accounts::ClientInput::parse(&client)?;
    Ok(services.update_client(&user, id, input).await?)
}

#[server(prefix = "/rpc", endpoint = "delete_client")]
pub async fn delete_client(id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    services.delete_client(&user, id).await?;
    leptos_axum::redirect(&format!("/admin/clients?deleted={id}"));
    Ok(())
}

/// A client with its users: any client for an administrator, only its own for a client user.
#[server(prefix = "/rpc", endpoint = "get_client_detail")]
pub async fn get_client_detail(id: i64) -> Result<ClientDetail, PortalError> {
    let (services, user) = caller().await?;
    Ok(services.client_detail(&user, id).await?)
}

/// The signed-in client user's own organisation.
#[server(prefix = "/rpc", endpoint = "my_client")]
pub async fn my_client() -> Result<ClientDetail, PortalError> {
    let (services, user) = caller().await?;
    let client_id = user
        .client
        .as_ref()
        .map(|c| c.id)
        .ok_or(PortalError::NotAllowed)?;
    Ok(services.client_detail(&user, client_id).await?)
}

/// Adds a user to a client: with a first password the administrator passes on, or with none,
/// invited (and how the invitation link goes out).
#[server(prefix = "/rpc", endpoint = "create_client_user")]
pub async fn create_client_user(
    client_id: i64,
    name: String,
    email: String,
    #[server(default)] password: String,
) -> Result<UserAdded, PortalError> {
    let (services, user) = admin().await?;
    if password.is_empty() {
        let invitee = licensing::accounts::links::Invitee {
            name: &name,
            email: &email,
            client_id: Some(client_id),
        };
        let sent = services.invite(&user, invitee).await?;
        return Ok(UserAdded {
            user: sent.user,
            invitation: Some(sent.delivery),
        });
    }
    let added = services
        .create_client_user(&user, client_id, &name, &email, &password)
        .await?;
    Ok(UserAdded {
        user: added,
        invitation: None,
    })
}

/// Invites another administrator.
#[server(prefix = "/rpc", endpoint = "invite_admin")]
pub async fn invite_admin(name: String, email: String) -> Result<LinkSent, PortalError> {
    let (services, user) = admin().await?;
    let invitee = licensing::accounts::links::Invitee {
        name: &name,
        email: &email,
        client_id: None,
    };
    Ok(services.invite(&user, invitee).await?)
}

/// A new invitation (not yet arrived) or password reset link for a user.
#[server(prefix = "/rpc", endpoint = "send_password_link")]
pub async fn send_password_link(user_id: i64) -> Result<LinkSent, PortalError> {
    let (services, user) = admin().await?;
    Ok(services.send_password_link(&user, user_id).await?)
}

/// Asks for a password reset link by e-mail (the same answer whether the account exists).
#[server(prefix = "/rpc", endpoint = "request_password_reset")]
pub async fn request_password_reset(email: String) -> Result<(), PortalError> {
    let services = services()?;
    Ok(services
        .request_password_reset(&email, &crate::ssr::client_address())
        .await?)
}

/// Whether this server sends e-mail (so people can reset their own password).
#[server(prefix = "/rpc", endpoint = "sends_mail")]
pub async fn sends_mail() -> Result<bool, PortalError> {
    Ok(services()?.sends_mail())
}

/// What a password link is for, while it can be used.
#[server(prefix = "/rpc", endpoint = "check_password_link")]
pub async fn check_password_link(token: String) -> Result<Option<PasswordLinkInfo>, PortalError> {
    Ok(services()?.password_link(&token).await?)
}

/// Sets the password through a link. An invitation signs the person in and takes them home; a
/// reset answers `Reset` and they sign in with the new password.
#[server(prefix = "/rpc", endpoint = "use_password_link")]
pub async fn use_password_link(
    token: String,
    password: String,
    password_confirm: String,
) -> Result<LinkPurpose, PortalError> {
    let services = services()?;
    if password != password_confirm {
        return Err(mismatch());
    }
    match services
        .use_password_link(&token, &password, &crate::ssr::client_address())
        .await?
    {
        licensing::accounts::links::LinkUsed::Arrived(signed) => {
            crate::ssr::set_session_cookie(licensing::ExposeSecret::expose_secret(&signed.token));
            leptos_axum::redirect(home_of(signed.user.role));
            Ok(LinkPurpose::Invitation)
        }
        licensing::accounts::links::LinkUsed::PasswordReset => Ok(LinkPurpose::Reset),
    }
}

#[server(prefix = "/rpc", endpoint = "reset_user_password")]
pub async fn reset_user_password(user_id: i64, password: String) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    Ok(services
        .reset_user_password(&user, user_id, &password)
        .await?)
}

#[server(prefix = "/rpc", endpoint = "delete_client_user")]
pub async fn delete_client_user(user_id: i64) -> Result<(), PortalError> {
    let (services, user) = admin().await?;
    Ok(services.delete_client_user(&user, user_id).await?)
}
