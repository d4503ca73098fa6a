//! A PostgreSQL database of its own for a test, on the server the machine runs
//! (`AUTOCLOSE_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/postgres`,
//! trust authentication), dropped at the end; `.ci/run` makes sure one answers.

use tokio_postgres::NoTls;

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("AUTOCLOSE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped with it.
pub struct TestDatabase {
    runtime: tokio::runtime::Runtime,
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

async fn execute(url: &str, sql: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("PostgreSQL at {url}: {e}"))?;
    tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .map_err(|e| format!("{sql}: {e:?}"))
}

impl TestDatabase {
    /// Creates `autoclose_<test>_<pid>`, dropping a leftover of that name first.
    pub fn create(test: &str) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
        let name = format!("autoclose_{test}_{}", std::process::id());
        let admin = admin_url();
        runtime
            .block_on(async {
                // One statement each: CREATE DATABASE cannot run in a transaction.
                execute(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await?;
                execute(&admin, &format!("CREATE DATABASE {name}")).await
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("{admin}: no database in the URL"),
        };
        TestDatabase { runtime, name, url }
    }

    /// Runs `sql` in this database.
    pub fn execute(&self, sql: &str) {
        self.runtime
            .block_on(execute(&self.url, sql))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The first column of the first row of `sql`, as a number.
    pub fn count(&self, sql: &str) -> i64 {
        self.runtime
            .block_on(async {
                let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                let row = client
                    .query_one(sql, &[])
                    .await
                    .map_err(|e| format!("{sql}: {e:?}"))?;
                Ok::<i64, String>(row.get(0))
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = self.runtime.block_on(execute(&admin_url(), &sql));
    }
}

/// A PostgreSQL server of a test's own, for a test that stops and starts it (the
/// machine's server is shared with the other tests and must stay up): `initdb` in a
/// scratch directory, started with `pg_ctl` on a free port of 127.0.0.1 with trust
/// authentication. The server programs come from `AUTOCLOSE_TEST_PG_BIN`, else the
/// newest `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package, which `.ci/run`
/// installs when it is missing). Run as user `postgres` when the tests run as root,
/// since PostgreSQL refuses to run as root.
pub struct PrivateServer {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Whether it takes TLS connections only.
    tls: bool,
}

impl PrivateServer {
    /// Creates and starts a server named after `test`.
    pub fn start(test: &str) -> Self {
        Self::start_with(test, false)
    }

    /// A server that takes TLS connections only (`hostssl` in its `pg_hba.conf`, every
    /// other connection rejected), with a certificate for 127.0.0.1 signed by a CA made
    /// with `openssl`; [`PrivateServer::certificate`] is the CA's.
    pub fn start_tls(test: &str) -> Self {
        Self::start_with(test, true)
    }

    /// The certificate (PEM) of the CA that signed a TLS server's.
    pub fn certificate(&self) -> std::path::PathBuf {
        self.dir.join("ca.crt")
    }

    fn start_with(test: &str, tls: bool) -> Self {
        let bin = std::env::var_os("AUTOCLOSE_TEST_PG_BIN")
            .map(std::path::PathBuf::from)
            .or_else(newest_bin)
            .unwrap_or_else(|| {
                panic!(
                    "no PostgreSQL server programs: install Debian's postgresql package or set AUTOCLOSE_TEST_PG_BIN"
                )
            });
        let dir = std::env::temp_dir().join(format!("autoclose-pg-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let server = PrivateServer {
            bin,
            dir,
            port,
            tls,
        };
        if is_root() {
            server.run(
                "chown",
                &["-R", "postgres:postgres", &server.dir_str()],
                false,
            );
        }
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
            true,
        );
        if tls {
            // A private CA and a server certificate it signed, as an operator's would be
            // (a self-signed server certificate is a CA certificate, which TLS clients
            // refuse as a server's).
            let file = |name: &str| server.dir.join(name).display().to_string();
            let (ca_key, ca, key, csr, cert, ext) = (
                file("ca.key"),
                file("ca.crt"),
                file("server.key"),
                file("server.csr"),
                file("server.crt"),
                file("server.ext"),
            );
            std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n")
                .unwrap_or_else(|e| panic!("{ext}: {e}"));
            let openssl = |args: &[&str]| server.run("openssl", args, false);
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=autoclose test CA",
                "-keyout",
                &ca_key,
                "-out",
                &ca,
            ]);
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                &key,
                "-out",
                &csr,
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ]);
            std::fs::write(
                server.dir.join("data/pg_hba.conf"),
                "hostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\nlocal all all trust\n",
            )
            .unwrap_or_else(|e| panic!("pg_hba.conf: {e}"));
            server.run("chmod", &["600", &file("server.key")], false);
            if is_root() {
                server.run(
                    "chown",
                    &["-R", "postgres:postgres", &server.dir_str()],
                    false,
                );
            }
        }
        server.up();
        server
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again); returns once it accepts connections.
    pub fn up(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir_str()
        );
        if self.tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                self.dir_str()
            ));
        }
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
            true,
        );
    }

    /// Stops the server at once, as a crash would (`immediate`: no checkpoint; what
    /// was committed is recovered from the write-ahead log at the next start).
    pub fn down(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            true,
        );
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    /// Runs `program` (from the server's bin directory when `server`), as `postgres`
    /// when we are root; panics with its output when it fails.
    fn run(&self, program: &str, args: &[&str], server: bool) {
        let program = if server {
            self.bin.join(program).display().to_string()
        } else {
            program.to_owned()
        };
        let mut command = if server && is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &program]);
            c
        } else {
            std::process::Command::new(&program)
        };
        let output = command
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.data();
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c.arg(self.bin.join("pg_ctl"));
            c
        } else {
            std::process::Command::new(self.bin.join("pg_ctl"))
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `pg_ctl`.
fn newest_bin() -> Option<std::path::PathBuf> {
    let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
