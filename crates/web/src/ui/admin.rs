//! Administration pages (filled in below).

use crate::routes::Route;

pub fn routes() -> Vec<Route> {
    vec![]
}
