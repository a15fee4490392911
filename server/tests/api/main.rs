//! The server's integration tests: each spawns the whole app on port 0 with a fresh database, on
//! SQLite and on PostgreSQL, and talks to it over HTTP as a browser or a script would.

mod helpers;
#[path = "../support/seeded.rs"]
mod seeded;

mod access_rules;
mod accounts;
mod activation;
mod audit;
mod auth;
mod backup;
mod borrowing;
mod catalog_pages;
mod cli;
mod concurrency;
mod contract;
mod exports;
mod floating;
mod history;
mod licence_list;
mod licence_pages;
mod mail;
mod manage;
mod notices;
mod outages;
mod pages;
mod pagination;
mod replicas;
mod second_factor;
mod security;
mod silent_seats;
mod sites;
mod web;
mod webhooks;
mod workstation;
