//! Every integration test of the `lockbox` binary, in one test binary: one module per area (the
//! files beside this one), sharing the harness in `common`. One binary links once, where sixteen
//! links were the largest single cost of a clean CI build. Run one area with
//! `cargo test --release -p lockbox --test suite web_hostile::`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

mod at_rest;
mod audit_tamper;
mod backup;
mod cli;
mod durability;
mod exposure;
mod full_disk;
mod hostile_input;
mod inventory;
mod sftp_clients;
mod sftp_permissions;
mod sftp_totp;
mod sftp_transfer;
mod web_api;
mod web_browser;
mod web_contract;
mod web_flood;
mod web_hostile;
mod web_matrix;
