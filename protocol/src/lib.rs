//! Types that cross a boundary: between the server and the portal running in the browser, and (later)
//! between the server and the client library. No I/O here, and nothing that cannot build for wasm32.

pub mod account;
pub mod activation;
pub mod catalog;
pub mod floating;
pub mod input;
pub mod time;
