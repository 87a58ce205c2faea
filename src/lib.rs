//! The aries image service: DescribeImage of the aries cloud API.
//!
//! A request takes this path: [`http::routes`] authenticates it
//! ([`http::auth`]), parses the id ([`http::ImageId`]) and asks the
//! [`cache`], which reads the [`db`] on a miss.

pub mod cache;
pub mod config;
pub mod db;
pub mod freshness;
pub mod http;
pub mod log_limit;
pub mod metrics;
pub mod openapi;
pub mod record;
pub mod startup;
pub mod tls;
