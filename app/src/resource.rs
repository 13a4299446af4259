//! Resources whose hydration reads JSON the way server function answers do.
//!
//! A resource made on the server is sent to the browser as JSON inside the page; when the
//! page's data is fetched again, the same type comes back as a server function's JSON body.
//! Leptos reads the first with `serde_json::from_str` and the second with
//! `serde_json::from_slice`, and serde_json compiles each type's deserializer once per
//! reader: every result type was in the browser bundle twice. [`load`] makes resources read
//! through `from_slice` too, so one copy serves both.

use leptos::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;

/// JSON written by `serde_json`, read back through its byte-slice reader.
pub struct JsonBytes;

impl<T: Serialize> codee::Encoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> codee::Decoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// A resource loaded on the server and hydrated in the browser (see the module comment).
pub type Loaded<T> = Resource<T, JsonBytes>;

/// Like `Resource::new`: runs `fetcher` for each value of `source`, on the server first.
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
    Resource::new_with_options(source, fetcher, false)
}
