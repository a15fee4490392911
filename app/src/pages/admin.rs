//! The administrator area: overview, clients and their portal users.

use super::catalog::{address_list, address_text, SearchFilter};
use crate::components::{
    by_text, created_here, list_address, loaded, match_count, or_dash, reset_on_success, sort_head,
    time_or, ActionDone, ActionError, CsvLink, DeleteZone, DeletedBanner, DoneBanner, Field,
    LinkPager, LinkSentNotice, LoadError, LocalTime, PageAndSortFields, RowAction, Sort,
    SortDefaults, SortHeads, TextArea,
};
use crate::components::{Said, SaidBanner};
use crate::pages::errors::NotAllowed;
use crate::server_fns::accounts::{
    CreateClient, CreateClientUser, DeleteClient, DeleteClientUser, InviteAdmin, ResetUserPassword,
    SendPasswordLink, UpdateClient,
};
use crate::Auth;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Outlet, Redirect};
use leptos_router::hooks::use_params_map;
use protocol::account::{ClientFilter, LinkPurpose, LinkSent, Role, UserAdded, UserSummary};
use protocol::input::{ClientName, Email, Password, PersonName};

/// Renders the nested page only for a signed-in user of `role`; others are sent to sign in or
/// told they are not allowed.
#[component]
pub fn RoleGate(role: Role) -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(user)) if user.role == role => view! { <Outlet/> }.into_any(),
                    Ok(Some(_)) => view! { <NotAllowed/> }.into_any(),
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn AdminArea() -> impl IntoView {
    view! { <RoleGate role=Role::Admin/> }
}

#[component]
pub fn Overview() -> impl IntoView {
    let overview = Resource::new(|| (), |_| crate::server_fns::accounts::get_admin_overview());
    let invite = ServerAction::<InviteAdmin>::new();
    let resend = ServerAction::<SendPasswordLink>::new();
    let invite_form = NodeRef::<leptos::html::Form>::new();
    reset_on_success(invite, invite_form);
    let admins = Resource::new(
        move || invite.version().get(),
        |_| crate::server_fns::accounts::list_admins(),
    );
    view! {
        <Title text="Overview · Licentia"/>
        <h1>"Overview"</h1>
        {loaded(overview, move |o| view! {
                <div class="tiles">
                    <a class="tile" href="/admin/clients">
                        <span class="tile-figure">{o.clients}</span>
                        <span class="tile-label">"Clients"</span>
                    </a>
                    <a class="tile" href="/admin/clients">
                        <span class="tile-figure">{o.client_users}</span>
                        <span class="tile-label">"Client users"</span>
                    </a>
                    <div class="tile">
                        <span class="tile-figure">{o.administrators}</span>
                        <span class="tile-label">"Administrators"</span>
                    </div>
                </div>
            }
                .into_any())}
        <super::dashboard::DashboardCards admin=true/>
        <super::history::UsageOverTime pool_id=None/>
        <section class="card">
            <h2>"Administrators"</h2>
            <p class="hint">
                "Invite another administrator below (they choose their own password through the link), or add one with "
                <code>"server admin create"</code>" on the server."
            </p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match admins.await {
                        Ok(list) => view! {
                            <table>
                                <thead><tr><th scope="col">"Name"</th><th scope="col">"E-mail address"</th><th scope="col">"Last sign-in"</th><th scope="col">"Actions"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|a| view! {
                                        <tr>
                                            <td>{a.name}</td>
                                            <td>{a.email}</td>
                                            <td>{if a.invited { view! { <span class="muted">"Invited, not yet arrived"</span> }.into_any() } else { time_or(a.last_sign_in_at, "Never") }}</td>
                                            <td class="actions">
                                                {a.invited.then(|| view! {
                                                    <ActionForm action=resend>
                                                        <input type="hidden" name="user_id" value=a.id/>
                                                        <button type="submit" class="small">"Send invitation again"</button>
                                                    </ActionForm>
                                                })}
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }
                            .into_any(),
                        Err(e) => view! { <LoadError error=e/> }.into_any(),
                    }
                })}
            </Suspense>
            <h3>"Invite an administrator"</h3>
            <ActionForm action=invite node_ref=invite_form>
                <Field label="Name" name="name" id="invite-admin-name".to_owned() autocomplete="off" maxlength=PersonName::MAX_LEN/>
                <Field label="E-mail address" name="email" id="invite-admin-email".to_owned() kind="email" autocomplete="off" maxlength=Email::MAX_LEN/>
                <ActionError action=invite/>
                {move || invite.value().get().and_then(Result::ok).map(|sent| view! { <LinkSentNotice sent/> })}
                <ActionError action=resend/>
                {move || resend.value().get().and_then(Result::ok).map(|sent| view! { <LinkSentNotice sent/> })}
                <button type="submit" class="primary" disabled=invite.pending()>"Send invitation"</button>
            </ActionForm>
        </section>
    }
}

/// The clients list's filters as the address gives them.
fn client_filter(q: &leptos_router::params::ParamsMap) -> ClientFilter {
    ClientFilter {
        q: address_text(q, "q"),
        sort: address_text(q, "sort"),
        order: address_text(q, "order"),
    }
}

/// The clients: searched, sorted and paged by the server, the search in the address, exported
/// as CSV with the same search.
#[component]
pub fn ClientsPage() -> impl IntoView {
    let create = ServerAction::<CreateClient>::new();
    let (filter, after, limit) = address_list(client_filter);
    let table = Resource::new(
        move || {
            (
                filter.get(),
                after.get(),
                limit.get(),
                create.version().get(),
            )
        },
        |(f, after, limit, _)| crate::server_fns::accounts::clients_page(f, after, limit),
    );
    let link = move |f: &ClientFilter, after: Option<&str>| {
        list_address(
            "/admin/clients",
            f.query_string(),
            limit.get_untracked(),
            after,
        )
    };
    let csv = move || list_address("/clients.csv", filter.get().query_string(), None, None);
    view! {
        <Title text="Clients · Licentia"/>
        <h1>"Clients"</h1>
        <DeletedBanner kind="Client"/>
        <section class="card">
            <leptos_router::components::Form method="get" action="/admin/clients">
                <div class="filters" role="search">
                    <SearchFilter id="clients-q" placeholder="name, contact or notes" q=Signal::derive(move || filter.get().q)/>
                    <PageAndSortFields id="clients-limit" limit default=crate::server_fns::accounts::CLIENTS_PER_PAGE filter/>
                    <div class="field"><button type="submit" class="primary">"Search"</button></div>
                </div>
            </leptos_router::components::Form>
            <div class="table-tools">
                <CsvLink href=Signal::derive(csv) test_id="clients-csv"/>
                <a class="button primary" href="/admin/clients/new">"New client"</a>
            </div>
            {loaded(table, move |t| {
                let f = filter.get_untracked();
                let next = t.next.as_deref().map(|n| link(&f, Some(n)));
                let first = after.get_untracked().is_some().then(|| link(&f, None));
                let head = |key: &'static str, label: &'static str| {
                    sort_head(&f, &SortDefaults { key: "name", descending: |key| key == "created" }, key, label, key == "name", |to| link(to, None))
                };
                view! {
                    <p class="muted" data-testid="clients-count">{match t.total {
                        0 if f == ClientFilter::default() => "No clients yet. Create the first one with New client (or the form below).".to_owned(),
                        total => match_count(total, t.rows.len(), "client", "clients"),
                    }}</p>
                    <table>
                        <caption class="visually-hidden">"Clients"</caption>
                        <thead>
                            <tr>
                                {head("name", "Name")}
                                <th scope="col">"Contact"</th>
                                <th scope="col" class="num">"Users"</th>
                                <th scope="col" class="num">"Orders"</th>
                                {head("created", "Created")}
                            </tr>
                        </thead>
                        <tbody>
                            {t.rows.into_iter().map(|c| view! {
                                <tr>
                                    <td class="wrap"><a href=format!("/admin/clients/{}", c.id)>{c.name.clone()}</a></td>
                                    <td class="wrap">{or_dash(c.contact_email.clone())}</td>
                                    <td class="num">{c.user_count}</td>
                                    <td class="num">{c.order_count}</td>
                                    <td><LocalTime unix_secs=c.created_at/></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <LinkPager label="Clients pages" first next next_testid="clients-next"/>
                }
                .into_any()
            })}
        </section>
        <NewClientForm create/>
    }
}

#[component]
fn NewClientForm(create: ServerAction<CreateClient>) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"New client"</h2>
            <ActionForm action=create>
                <Field label="Client name" name="client[name]" id="new-client-name".to_owned() maxlength=ClientName::MAX_LEN/>
                <Field label="Contact e-mail (optional)" name="client[contact_email]" id="new-client-contact".to_owned() kind="email" required=false maxlength=Email::MAX_LEN/>
                <TextArea label="Notes (optional)" name="client[notes]" id="new-client-notes".to_owned() maxlength=2000/>
                <ActionError action=create/>
                <button type="submit" class="primary" disabled=create.pending()>"Create client"</button>
            </ActionForm>
        </section>
    }
}

/// `/admin/clients/new`: the creation form alone; on success the new client's page opens.
#[component]
pub fn NewClientPage() -> impl IntoView {
    let create = ServerAction::<CreateClient>::new();
    view! {
        <Title text="New client · Licentia"/>
        <p class="breadcrumb"><a href="/admin/clients">"Clients"</a></p>
        <h1>"New client"</h1>
        <NewClientForm create/>
    }
}

#[component]
pub fn ClientPage() -> impl IntoView {
    let created = created_here();
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let update = ServerAction::<UpdateClient>::new();
    let delete = ServerAction::<DeleteClient>::new();
    let add_user = ServerAction::<CreateClientUser>::new();
    let reset = ServerAction::<ResetUserPassword>::new();
    let remove_user = ServerAction::<DeleteClientUser>::new();
    let removed_user = Said::new();
    let send_link = ServerAction::<SendPasswordLink>::new();
    let add_user_form = NodeRef::<leptos::html::Form>::new();
    reset_on_success(add_user, add_user_form);
    let detail = Resource::new(
        move || {
            (
                id(),
                update.version().get(),
                add_user.version().get(),
                remove_user.version().get(),
                send_link.version().get(),
            )
        },
        |(id, ..)| crate::server_fns::accounts::get_client_detail(id),
    );
    view! {
        <Title text="Client · Licentia"/>
        <p class="breadcrumb"><a href="/admin/clients">"Clients"</a></p>
        {loaded(detail, move |d| {
                let c = d.client;
                let users = d.users;
                let user_count = users.len();
                let delete_message = format!(
                    "Delete the client \u{201c}{}\u{201d}? Its {} portal user(s) will no longer be able to sign in, and its {} order(s) go with it: {} activated licence(s) will stop working at their next validation. This cannot be undone.",
                    c.name, user_count, c.order_count, c.active_licences
                );
                view! {
                    <Title text=format!("{} · Licentia", c.name)/>
                    <h1>{c.name.clone()}</h1>
                    <DoneBanner created what=format!("Client {}", c.name)/>
                    <section class="card">
                        <h2>"Details"</h2>
                        <ActionForm action=update>
                            <input type="hidden" name="id" value=c.id/>
                            <Field label="Client name" name="client[name]" id="client-name".to_owned() value=c.name.clone() maxlength=ClientName::MAX_LEN/>
                            <Field label="Contact e-mail (optional)" name="client[contact_email]" id="client-contact".to_owned() kind="email" required=false value=c.contact_email.clone() maxlength=Email::MAX_LEN/>
                            <TextArea label="Notes (optional)" name="client[notes]" id="client-notes".to_owned() value=c.notes.clone() maxlength=2000/>
                            <ActionError action=update/>
                            <ActionDone action=update message=format!("Client {} was saved.", c.name)/>
                            <button type="submit" class="primary">"Save"</button>
                        </ActionForm>
                    </section>
                    <section class="card">
                        <h2>"Portal users"</h2>
                        // Beside the table: deleting the last user leaves no table to say it in.
                        <SaidBanner action=remove_user said=removed_user/>
                        <UsersTable users reset remove_user removed_user send_link/>
                        <h3>"Add a user"</h3>
                        <ActionForm action=add_user node_ref=add_user_form>
                            <input type="hidden" name="client_id" value=c.id/>
                            <Field label="Name" name="name" id="new-user-name".to_owned() autocomplete="off" maxlength=PersonName::MAX_LEN/>
                            <Field label="E-mail address" name="email" id="new-user-email".to_owned() kind="email" autocomplete="off" maxlength=Email::MAX_LEN/>
                            <Field
                                label="First password (optional)"
                                name="password"
                                id="new-user-password".to_owned()
                                kind="password"
                                autocomplete="new-password"
                                required=false
                                minlength=Password::MIN_LEN
                                maxlength=Password::MAX_LEN
                                hint="Leave it empty to invite them: they get a link by e-mail and choose their own password. Or set one of at least 12 characters and pass it on."
                            />
                            <ActionError action=add_user/>
                            {move || match add_user.value().get() {
                                Some(Ok(UserAdded { user, invitation: Some(delivery) })) => {
                                    let sent = LinkSent { user, purpose: LinkPurpose::Invitation, delivery };
                                    Some(view! { <LinkSentNotice sent/> }.into_any())
                                }
                                Some(Ok(UserAdded { invitation: None, .. })) => Some(view! { <p class="notice" role="status">"User added."</p> }.into_any()),
                                _ => None,
                            }}
                            <button type="submit" class="primary" disabled=add_user.pending()>"Add user"</button>
                        </ActionForm>
                    </section>
                    <DeleteZone title="Delete client" explain=format!("Deletes the client, its portal users and its {} order(s) with their licences ({} activated).", c.order_count, c.active_licences)>
                        <ActionError action=delete/>
                        <RowAction action=delete id=c.id question=delete_message label="Delete client" class="danger"/>
                    </DeleteZone>
                }
                    .into_any()
            })}
    }
}

fn compare_users(key: &'static str, a: &UserSummary, b: &UserSummary) -> std::cmp::Ordering {
    match key {
        "email" => a.email.cmp(&b.email),
        "last" => a.last_sign_in_at.cmp(&b.last_sign_in_at),
        _ => by_text(&a.name, &b.name),
    }
}

#[component]
fn UsersTable(
    users: Vec<UserSummary>,
    reset: ServerAction<ResetUserPassword>,
    remove_user: ServerAction<DeleteClientUser>,
    removed_user: Said,
    send_link: ServerAction<SendPasswordLink>,
) -> impl IntoView {
    if users.is_empty() {
        return view! { <p class="muted">"No users yet: add one below so the client can sign in."</p> }
            .into_any();
    }
    let sort = Sort::new("name");
    let rows = move || {
        let mut rows = users.clone();
        sort.apply(&mut rows, compare_users);
        rows
    };
    view! {
        <ActionError action=reset/>
        <ActionDone action=reset message="The password was reset. The user's sessions were signed out."/>
        <ActionError action=remove_user/>
        <ActionError action=send_link/>
        {move || send_link.value().get().and_then(Result::ok).map(|sent| view! { <LinkSentNotice sent/> })}
        <table>
            <caption class="visually-hidden">"Portal users"</caption>
            <thead>
                <tr>
                    <SortHeads sort columns=&[("name", "Name"), ("email", "E-mail address"), ("last", "Last sign-in")]/>
                    <th scope="col">"Actions"</th>
                </tr>
            </thead>
            <tbody>
                <For each=rows key=|u| u.id let:u>
                    {
                        let pw_id = format!("reset-password-{}", u.id);
                        let reset_form = NodeRef::<leptos::html::Form>::new();
                        reset_on_success(reset, reset_form);
                        let remove_message = format!("Delete the user {} ({})? They will no longer be able to sign in.", u.name, u.email);
                        view! {
                            <tr>
                                <td>{u.name.clone()}</td>
                                <td>{u.email.clone()}</td>
                                <td>{if u.invited { view! { <span class="muted">"Invited, not yet arrived"</span> }.into_any() } else { time_or(u.last_sign_in_at, "Never") }}</td>
                                <td class="actions">
                                    <ActionForm action=send_link>
                                        <input type="hidden" name="user_id" value=u.id/>
                                        <button type="submit" class="small">{if u.invited { "Send invitation again" } else { "Send reset link" }}</button>
                                    </ActionForm>
                                    <details>
                                        <summary>"Reset password"</summary>
                                        <ActionForm action=reset node_ref=reset_form>
                                            <input type="hidden" name="user_id" value=u.id/>
                                            <Field
                                                label="New password"
                                                name="password"
                                                id=pw_id
                                                kind="password"
                                                autocomplete="new-password"
                                                minlength=Password::MIN_LEN
                                                maxlength=Password::MAX_LEN
                                            />
                                            <button type="submit">"Set password"</button>
                                        </ActionForm>
                                    </details>
                                    <RowAction action=remove_user field="user_id" id=u.id question=remove_message label="Delete" said=(removed_user, format!("The user {} ({}) was deleted.", u.name, u.email))/>
                                </td>
                            </tr>
                        }
                    }
                </For>
            </tbody>
        </table>
    }
    .into_any()
}
