//! The client area's start page: the organisation's licences, pools and activity at a glance
//! (the dashboard, scoped to it), then the organisation and its portal users.

use crate::components::{loaded, LocalTime};
use crate::pages::admin::RoleGate;
use leptos::prelude::*;
use leptos_meta::Title;
use protocol::account::Role;

#[component]
pub fn ClientArea() -> impl IntoView {
    view! { <RoleGate role=Role::Client/> }
}

#[component]
pub fn Organisation() -> impl IntoView {
    let mine = Resource::new(|| (), |_| crate::server_fns::accounts::my_client());
    view! {
        <Title text="My organisation · Licentia"/>
        {loaded(mine, move |d| view! {
                <h1>{d.client.name.clone()}</h1>
                <p class="lead">"Your licences at a glance: each figure leads to the list behind it."</p>
            }
                .into_any())}
        // Beside, not inside, the organisation's loading: one suspense in another broke
        // hydration.
        <super::dashboard::DashboardCards admin=false/>
        {loaded(mine, move |d| view! {
                <section class="card">
                    <h2>"Organisation"</h2>
                    <dl class="facts">
                        <dt>"Name"</dt><dd>{d.client.name.clone()}</dd>
                        <dt>"Contact"</dt>
                        <dd>{if d.client.contact_email.is_empty() { "—".to_owned() } else { d.client.contact_email.clone() }}</dd>
                        <dt>"Customer since"</dt><dd><LocalTime unix_secs=d.client.created_at/></dd>
                    </dl>
                </section>
                <section class="card">
                    <h2>"Portal users"</h2>
                    <table>
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"E-mail address"</th></tr></thead>
                        <tbody>
                            {d.users.into_iter().map(|u| view! {
                                <tr><td>{u.name}</td><td>{u.email}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <p class="hint">"To add or remove users of your organisation, ask your vendor's administrator."</p>
                </section>
            }
                .into_any())}
    }
}
