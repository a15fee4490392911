//! Accounts: who may sign in and what they may touch. Client organisations and their users
//! (`clients`), sessions and sign-in (`sessions`), throttling of failed attempts (`throttle`),
//! password hashing (`password`), the first administrator (`setup`), management-API tokens
//! (`tokens`), the second factor (`second_factor`, its rules in `totp`), invitation and
//! password reset links (`links`).

mod clients;
pub mod links;
pub mod password;
pub mod second_factor;
pub mod sessions;
pub mod setup;
pub mod throttle;
pub mod tokens;
pub mod totp;

pub use clients::{ClientInput, PasswordChange};
pub use tokens::NewApiToken;
