//! The portal's server functions, one file per area. Each is a public HTTP endpoint,
//! `POST /rpc/<function name>` (the names are stable): it checks the caller first (`caller()` /
//! `admin()`), then calls the shared services in `licensing`. Not to be confused with the Web API
//! (`server/src/api/`), which serves applications and automation.

pub mod accounts;
pub mod audit;
pub mod catalog;
pub mod floating;
pub mod history;
pub mod mobile;
pub mod tokens;
pub mod web;
pub mod webhooks;
