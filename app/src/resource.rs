//! How pages load their data.
//!
//! Pages are rendered by the server only (the browser runs the islands, which load nothing
//! themselves), and every route renders completely before its first byte (async mode), so a
//! page's resources run their fetchers on the server and the page waits for them.

use leptos::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;

/// A page's data, loaded while the server renders the page.
pub type Loaded<T> = Resource<T>;

/// Like `Resource::new`: runs `fetcher` for each value of `source`.
#[track_caller]
pub fn load<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Loaded<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new(source, fetcher)
}
