//! A scratch database per test on the server named by `JUNCTION_TEST_POSTGRES_URL` (default: the
//! local server), created on demand and dropped with the guard.

use sqlx::{Connection, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The server's URL: the environment's, or the local default.
fn server_url() -> String {
    std::env::var("JUNCTION_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// One scratch database (`junction_test_<random>`), dropped when the guard is dropped.
pub struct ScratchDb {
    server: String,
    database: String,
    /// The URL of the scratch database.
    pub url: String,
}

impl ScratchDb {
    /// Creates the database, or panics with instructions when no server is reachable.
    pub async fn create() -> ScratchDb {
        let server = server_url();
        let mut admin = match PgConnection::connect(&server).await {
            Ok(conn) => conn,
            Err(err) => panic!(
                "cannot reach the PostgreSQL server for the PostgreSQL engine's tests at \
                 {server}: {err}. Start it (`service postgresql start`), point \
                 JUNCTION_TEST_POSTGRES_URL at one, or build the tests with \
                 JUNCTION_SKIP_POSTGRES=1 to leave them out."
            ),
        };
        let database = format!("junction_test_{:016x}", fastrand::u64(..));
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {database}").as_str())
            .await
            .expect("create scratch database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&server).expect("JUNCTION_TEST_POSTGRES_URL is not a URL");
        url.set_path(&format!("/{database}"));
        ScratchDb {
            server,
            database,
            url: url.to_string(),
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime: a fresh thread with its own runtime does the
        // cleanup. `WITH (FORCE)` ends connections a store dropped last may still hold.
        let server = self.server.clone();
        let database = self.database.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&server).await {
                    let sql = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
                    if let Err(err) = sqlx::Executor::execute(&mut admin, sql.as_str()).await {
                        eprintln!("cannot drop scratch database {database}: {err}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}
