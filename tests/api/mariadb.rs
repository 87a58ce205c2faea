//! A MariaDB server of one test, which the test can stop and start again on
//! the same port and data directory.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;

pub struct MariadbServer {
    pub port: u16,
    directory: tempfile::TempDir,
    process: Option<Child>,
}

fn mariadbd_path() -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", "command -v mariadbd"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/mariadbd"))
}

/// Returns a loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("the loopback address can be bound")
        .port()
}

impl MariadbServer {
    /// Creates a data directory with an `aries` database, without starting
    /// the server.
    pub fn install() -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory can be created");
        let status = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
            ])
            .arg("--skip-test-db")
            .arg(format!(
                "--datadir={}",
                directory.path().join("data").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db runs");
        assert!(status.success(), "mariadb-install-db failed");
        Self {
            port: free_port(),
            directory,
            process: None,
        }
    }

    /// Installs, starts and creates the `aries` database.
    pub fn start_new() -> Self {
        let mut server = Self::install();
        server.start();
        server.create_database();
        server
    }

    /// Creates the `aries` database on the running server.
    pub fn create_database(&self) {
        let mut connection =
            MysqlConnection::establish(&self.root_url()).expect("the server accepts connections");
        diesel::connection::SimpleConnection::batch_execute(
            &mut connection,
            "CREATE DATABASE aries CHARACTER SET utf8mb4",
        )
        .expect("the database can be created");
    }

    fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// URL of the `aries` database.
    pub fn url(&self) -> String {
        format!("{}/aries", self.root_url())
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.process.is_none(), "the server is already running");
        let data = self.directory.path().join("data");
        let child = Command::new(mariadbd_path())
            .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1"])
            .arg("--skip-name-resolve")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--socket={}",
                self.directory.path().join("sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.directory.path().join("pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                self.directory.path().join("error.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        self.process = Some(child);

        let started = Instant::now();
        while MysqlConnection::establish(&self.root_url()).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "MariaDB did not accept connections within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server at once, like a crash, and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MariadbServer {
    fn drop(&mut self) {
        self.stop();
    }
}
