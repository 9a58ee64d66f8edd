//! Helpers for tests in other crates that need a database of their own.
//!
//! Tests across the workspace share one throwaway PostgreSQL server (named
//! by `WANI_TEST_POSTGRES_URL`; `scripts/postgres.sh` starts one). Each test
//! takes a fresh database on it, so tests never see each other's rows.

use crate::error::StoreError;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "WANI_TEST_POSTGRES_URL";

/// The admin URL of the test PostgreSQL server, if one is configured.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())
}

/// Creates an empty database on the server at `admin_url`; returns its URL
/// and its name (for [`drop_postgres_database`]).
pub async fn create_postgres_database(admin_url: &str) -> Result<(String, String), StoreError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "wani_t_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    sqlx::any::install_default_drivers();
    let mut admin = AnyConnection::connect(admin_url)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let _ = admin.close().await;
    Ok((replace_database(admin_url, &name), name))
}

/// The URL of database `name` on the server at `admin_url`.
pub fn database_url(admin_url: &str, name: &str) -> String {
    replace_database(admin_url, name)
}

/// Drops a database made by [`create_postgres_database`], closing whatever
/// connections are still open on it.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let mut admin = AnyConnection::connect(admin_url)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let _ = admin.close().await;
    Ok(())
}

/// The process id of the server's postmaster, read from its data
/// directory (so only for a server on this machine), for benchmarks that
/// confine the server to a CPU quota.
pub async fn postgres_postmaster_pid(admin_url: &str) -> Result<u32, StoreError> {
    sqlx::any::install_default_drivers();
    let mut admin = AnyConnection::connect(admin_url)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let dir: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut admin)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let _ = admin.close().await;
    let path = std::path::Path::new(&dir).join("postmaster.pid");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| StoreError::Unavailable(format!("{}: no pid", path.display())))
}

/// `postgres://u@h:p/old?x` with the database replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            super::replace_database("postgres://p@h:5/postgres", "x"),
            "postgres://p@h:5/x"
        );
        assert_eq!(
            super::replace_database("postgres://p@h:5", "x"),
            "postgres://p@h:5/x"
        );
        assert_eq!(
            super::replace_database("postgres://p@h/db?sslmode=disable", "x"),
            "postgres://p@h/x?sslmode=disable"
        );
    }
}
