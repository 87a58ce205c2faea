//! Black-box tests over HTTP: each starts the real service on a fresh
//! database and sends it requests. Tests declared with `backend_tests!` run
//! once on SQLite and once on MariaDB.

mod helpers;
mod hostile;

mod cache;
mod conditional;
mod contract;
mod data;
mod faults;
mod freshness;
mod mariadb;
mod metrics;
mod openapi;
mod shutdown;
mod startup;
mod tls;
