//! The HTTPS door: a REST API for scripts (`/api/v1`), a server-rendered browser UI for people,
//! and `/healthz`, `/readyz`, `/metrics`. Like the SFTP door it only translates HTTP into calls on
//! the vault core: every login goes through `Vault::authenticate`, every file operation through a
//! vault `Session`, every admin change through an `AdminActor` the vault hands out.
//!
//! Every route is declared once in [`routes::table`] with the access it needs; the router is built
//! from that table, so a route cannot exist without an access decision (deny by default), and the
//! authorization matrix test enumerates the same table.
#![forbid(unsafe_code)]

mod access;
mod api;
mod assets;
mod body_guard;
mod connections;
mod error;
mod exposure;
mod headers;
mod health;
mod openapi;
mod routes;
mod server;
mod state;
mod tls;
mod ui;
mod uploads;

pub use error::WebError;
pub use exposure::{packages_dir, ExposureParams, ExposureRunner, ExposureSummary, PackageListing};
pub use routes::{table as route_table, Access, RouteInfo};
pub use server::{WebConfig, WebServer};
pub use tls::CertificateReport;
