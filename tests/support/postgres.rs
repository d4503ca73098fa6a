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
