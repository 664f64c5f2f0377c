//! A throwaway PostgreSQL cluster for the tests: Debian's `postgresql` binaries
//! (`/usr/lib/postgresql/*/bin`), a data directory and a port of its own, password (SCRAM) auth
//! only, listening on 127.0.0.1 and on the docker bridge address so containers reach it. As root
//! it runs as the `postgres` user (the server refuses root). Stopped and removed when dropped.

#![allow(dead_code)]

use crate::hex_kit::{BRIDGE, check};
use crate::util::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cluster's superuser and its password (the containers connect with them, over TCP).
pub const USER: &str = "app";
pub const PASSWORD: &str = "test-only-pg-password";
/// The user the server runs as when the tests run as root (Debian's package creates it).
const SYSTEM_USER: &str = "postgres";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<&'static str>,
    pub port: u16,
}

/// The `bin` directory of the newest PostgreSQL installed; panics (never skips) without one.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is missing (no /usr/lib/postgresql/*/bin/initdb): these tests need Debian's \
             `postgresql` package; run `make setup` (scripts/setup.sh installs it)"
        ),
    }
}

/// A port free on both addresses the cluster listens on.
fn free_port() -> u16 {
    for _ in 0..20 {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
        let port = l.local_addr().expect("addr").port();
        if std::net::TcpListener::bind((BRIDGE, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.1 and {BRIDGE}");
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

impl Postgres {
    /// initdb, then `pg_ctl start` on a free port; waits until it accepts connections.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let run_as = is_root().then_some(SYSTEM_USER);
        let dir = tempfile::Builder::new().prefix("release-oci-postgres-").tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pw"), PASSWORD).expect("write the password file");
        std::fs::create_dir(dir.path().join("sock")).expect("mkdir");
        if let Some(user) = run_as {
            let mut c = Command::new("chown");
            c.args(["-R", &format!("{user}:{user}")]).arg(dir.path());
            check(c);
        }
        let pg = Postgres { dir, bin, run_as, port: free_port() };
        let data = pg.data().display().to_string();
        let pwfile = format!("--pwfile={}", pg.dir.path().join("pw").display());
        check(pg.as_user(
            "initdb",
            &["-D", &data, "-U", USER, &pwfile, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"],
        ));
        pg.configure();
        let log = pg.dir.path().join("log").display().to_string();
        let o = run(pg.as_user("pg_ctl", &["-D", &data, "-l", &log, "-w", "-t", "60", "start"]));
        let server_log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            o.status.success(),
            "pg_ctl start failed: {}{}\n--- log\n{server_log}",
            text(&o.stdout),
            text(&o.stderr)
        );
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The cluster's own settings: port, addresses, socket directory, password auth from the
    /// containers' networks (Docker's default pools are in 172.16.0.0/12), no fsync (throwaway).
    fn configure(&self) {
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1,{BRIDGE}'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            self.port,
            self.dir.path().join("sock").display()
        );
        append(&self.data().join("postgresql.conf"), &conf);
        append(&self.data().join("pg_hba.conf"), "\nhost all all 172.16.0.0/12 scram-sha-256\n");
    }

    /// A program of the cluster's `bin/`, run as the cluster's owner.
    fn as_user(&self, program: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(program);
        let mut c = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        c.args(args).current_dir(self.dir.path());
        c
    }

    /// `ecto://USER:PASSWORD@HOST:PORT/DB`, what DATABASE_URL of a Phoenix app takes.
    pub fn url(&self, host: &str, db: &str) -> String {
        format!("ecto://{USER}:{PASSWORD}@{host}:{}/{db}", self.port)
    }

    /// psql over TCP on 127.0.0.1 as [`USER`] with `password`, in `db`, running `sql`.
    fn psql_command(&self, db: &str, password: &str, sql: &str) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", "127.0.0.1", "-U", USER])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10");
        c
    }

    /// Runs `sql` in `db` (password auth over TCP); returns the rows, unaligned, `|` between
    /// columns.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        check(self.psql_command(db, PASSWORD, sql)).trim_end().to_string()
    }

    /// A new, empty database.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f =
        std::fs::OpenOptions::new().append(true).open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(line.as_bytes()).expect("append");
}

impl Drop for Postgres {
    /// Stops the server (fast shutdown: connections are cut), then the temp dir goes with it.
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.as_user("pg_ctl", &["-D", &data, "-m", "fast", "-w", "-t", "30", "stop"]).output();
    }
}

#[test]
fn a_throwaway_cluster_takes_passwords_over_tcp_and_goes_away_when_dropped() {
    let pg = Postgres::start();
    let data = pg.data();
    assert_eq!(pg.psql("postgres", "SELECT 40 + 2"), "42");
    pg.create_db("probe");
    assert_eq!(pg.psql("probe", "SELECT current_database()"), "probe");
    // A wrong password is refused: the cluster is not open to anyone who asks.
    let c = pg.psql_command("postgres", "wrong", "SELECT 1");
    let o = run(c);
    assert!(!o.status.success() && text(&o.stderr).contains("password authentication failed"), "{}", text(&o.stderr));
    let port = pg.port;
    drop(pg);
    assert!(!data.exists(), "the data directory {} is still there", data.display());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "something still listens on {port}");
}
