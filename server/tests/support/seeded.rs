//! A database seeded with an administrator, a client and its pool, shared by the concurrency
//! test and the seat benchmark (included by path in both).

use licensing::accounts::ClientInput;
use licensing::{Clock, CurrentUser, Licentia};
use protocol::floating::{Pool, PoolKeyInput};
use server::config::Config;

/// Opens the services on `config`'s database and creates the administrator `email`, a client
/// and its pool with the given lease, plus one ConcurrentUser key of feature F per quantity.
pub async fn seeded_pool(
    config: &Config,
    email: &str,
    password: &str,
    lease_secs: i64,
    quantities: &[i64],
) -> (Licentia, CurrentUser, Pool) {
    let services = server::open_services(config, Clock::system())
        .await
        .expect("database");
    services
        .create_admin("Ada", email, password)
        .await
        .expect("admin");
    let admin = services
        .sign_in(email, password, "t", None)
        .await
        .expect("sign in")
        .user;
    let pool = acme_pool_of(&services, &admin, lease_secs).await;
    for &quantity in quantities {
        let key = PoolKeyInput {
            editor: "Vendor".into(),
            feature: "F".into(),
            model: "ConcurrentUser".into(),
            quantity,
            commercial_type: "STD".into(),
            ..PoolKeyInput::default()
        };
        services
            .add_pool_key(&admin, pool.id, key)
            .await
            .expect("key");
    }
    (services, admin, pool)
}

/// A client "Acme" and its floating pool with `lease_secs`, made by `admin`.
pub async fn acme_pool_of(services: &Licentia, admin: &CurrentUser, lease_secs: i64) -> Pool {
    let client = services
        .create_client(
            admin,
            ClientInput::parse(&protocol::account::ClientBody {
                name: "Acme".into(),
                ..Default::default()
            })
            .expect("input"),
        )
        .await
        .expect("client");
    services
        .create_pool(
            admin,
            protocol::floating::PoolOwner::Client(client.id),
            "",
            Some(lease_secs),
        )
        .await
        .expect("pool")
}
