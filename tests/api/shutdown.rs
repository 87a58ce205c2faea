//! The real binary: graceful shutdown on SIGTERM, and its log output.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::helpers::{
    Backend, SECRET_PATH, TOKEN, TestDatabase, mariadb_available, service_command,
    wait_for_ready_address,
};

/// SIGTERM while a request waits for a locked table: the service stops
/// accepting connections, lets the request finish, logs each step and
/// exits 0.
#[actix_web::test]
async fn sigterm_finishes_requests_in_flight() {
    if !mariadb_available() {
        return;
    }
    let database = TestDatabase::create(Backend::Mariadb);
    let (mut command, address) = service_command(&database.url, "trace");
    let mut service = command
        .env("ARIES__SERVER__WORKERS", "2")
        .env("ARIES__SERVER__SHUTDOWN_TIMEOUT_S", "20")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the service binary starts");
    let client = crate::helpers::http_client();
    wait_for_ready_address(&address, Duration::from_secs(20)).await;
    database.insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    let cached = client
        .get(format!("{address}/aries/api/v1/image/1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 200);
    database.insert_image(2, "two", "image two", "2024-01-01 00:00:00");

    let mut lock = MysqlConnection::establish(&database.url).unwrap();
    lock.batch_execute("LOCK TABLES images WRITE").unwrap();
    let in_flight = actix_web::rt::spawn({
        let client = client.clone();
        let url = format!("{address}/aries/api/v1/image/2");
        async move { client.get(url).bearer_auth(TOKEN).send().await }
    });
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    let status = Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    actix_web::rt::time::sleep(Duration::from_millis(1000)).await;

    let refused = crate::helpers::http_client()
        .get(format!("{address}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "a new request was served after SIGTERM");
    lock.batch_execute("UNLOCK TABLES").unwrap();

    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight finishes");
    assert_eq!(response.status(), 200);
    let exit = wait_with_timeout(&mut service, Duration::from_secs(20));
    assert_eq!(exit.code(), Some(0));

    let mut log = String::new();
    service
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    service
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    for step in [
        "SIGTERM received",
        "HTTP server stopped",
        "database monitor stopped",
    ] {
        assert!(log.contains(step), "no {step:?} in the log:\n{log}");
    }
    assert!(!log.contains(TOKEN), "the token is in the log");
    assert!(!log.contains(SECRET_PATH), "a source path is in the log");
    assert!(log.contains("request_id="), "no access log line:\n{log}");
}

fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the service did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
