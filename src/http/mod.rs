//! The HTTP layer: routes, authentication, the id parser, errors and the
//! request id middleware.

pub mod auth;
pub mod error;
mod image_id;
pub mod request_id;
pub mod routes;

pub use image_id::{ImageId, ImageIdError};
