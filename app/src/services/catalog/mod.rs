//! What operators list: sites, capacity pools and their availability windows.
//! Every write is scoped to the operator's own sites.
//!
//! One file per part: the inputs and their checks, sites, pools, the
//! interconnect limit they share, and sale windows. Everything public is re-exported here,
//! so callers name `services::catalog::X`.

mod inputs;
mod interconnect;
mod pools;
mod sites;
mod windows;

pub use inputs::{PoolInput, PoolSpec, SiteInput};
pub use pools::{create_pool, pool_input, update_pool};
pub use sites::{create_site, site_input, update_site};
pub use windows::open_window;
