//! JSON over HTTP, shared by the API and the outputs' routes: request bodies that must say
//! they are JSON ([`JsonBody`]) and errors sent as `{"error": "..."}` ([`ApiError`]).

pub mod body;
pub mod error;

pub use body::JsonBody;
pub use error::{ApiError, not_found};
