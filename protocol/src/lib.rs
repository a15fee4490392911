//! Types that cross a boundary: between the server and the portal running in the browser, and
//! between the server and the client library (the application API, the seat protocol, problems).
//! No I/O here, and nothing that cannot build for wasm32.

pub mod access;
pub mod account;
pub mod activation;
pub mod application;
pub mod audit;
pub mod borrow;
pub mod catalog;
pub mod dashboard;
pub mod floating;
pub mod history;
pub mod input;
pub mod page;
pub mod problem;
pub mod redact;
pub mod seats;
pub mod site;
pub mod time;
pub mod trust;
pub mod webhooks;
