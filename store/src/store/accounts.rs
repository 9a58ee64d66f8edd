//! Slips (accounts) and their sessions.
//!
//! The store never sees a password or a session token: the node hashes the
//! password with argon2 and keeps only a SHA-256 of the cookie token as the
//! session's id, so a leaked database opens no session. Every query is one
//! autocommit statement on the read pool.
//!
//! Not here: password policy, hashing, cookies (the node's `http::auth`).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{db_err, read::flag, Store};
use crate::accounts::{Session, Slip};
use crate::error::StoreError;
use crate::model::BoardId;

/// Longest slip name, in characters (Maniwani's `String(20)`).
pub const MAX_SLIP_NAME: usize = 20;

fn slip_from_row(row: &AnyRow) -> Result<Slip, sqlx::Error> {
    let boards: String = row.try_get("boards")?;
    Ok(Slip {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_admin: flag(row, "is_admin")?,
        is_mod: flag(row, "is_mod")?,
        boards: boards
            .split(',')
            .filter_map(|b| b.trim().parse().ok())
            .map(BoardId)
            .collect(),
    })
}

fn boards_text(boards: &[BoardId]) -> String {
    boards
        .iter()
        .map(|b| b.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    /// Creates a slip. `Invalid` for a name that is empty, longer than 20
    /// characters, has control characters, `!` or `#` (a slip's name is
    /// shown where typed names are: `!` would pass for a tripcode, `#`
    /// starts one); `Conflict` if it is taken.
    pub async fn create_slip(
        &self,
        name: &str,
        pass_hash: &str,
        is_admin: bool,
        is_mod: bool,
    ) -> Result<Slip, StoreError> {
        let n = name.chars().count();
        if n == 0
            || n > MAX_SLIP_NAME
            || name.chars().any(|c| c.is_control() || c == '!' || c == '#')
            || name.trim() != name
        {
            return Err(StoreError::Invalid(format!(
                "a slip name has 1 to {MAX_SLIP_NAME} characters, no control characters, \
                 no ! or # and no surrounding spaces"
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO slip (name, pass_hash, is_admin, is_mod, boards) \
             VALUES ($1, $2, $3, $4, '') RETURNING id",
        )
        .bind(name)
        .bind(pass_hash)
        .bind(is_admin)
        .bind(is_mod)
        .fetch_one(self.pool())
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("the name {name:?} is already taken"))
            }
            other => other,
        })?;
        Ok(Slip {
            id,
            name: name.to_string(),
            is_admin,
            is_mod,
            boards: Vec::new(),
        })
    }

    /// A slip and its password hash, by name (for logging in).
    pub async fn slip_by_name(&self, name: &str) -> Result<Option<(Slip, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, pass_hash, is_admin, is_mod, boards FROM slip WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let slip = slip_from_row(&row).map_err(db_err)?;
        let hash: String = row.try_get("pass_hash").map_err(db_err)?;
        Ok(Some((slip, hash)))
    }

    /// Replaces a slip's password hash (a login re-hashing an imported one).
    pub async fn set_pass_hash(&self, id: i64, pass_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE slip SET pass_hash = $1 WHERE id = $2")
            .bind(pass_hash)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Every slip, by name.
    pub async fn slips(&self) -> Result<Vec<Slip>, StoreError> {
        let rows = sqlx::query("SELECT id, name, is_admin, is_mod, boards FROM slip ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(slip_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_err)
    }

    /// Sets a slip's roles. `NotFound` for a missing slip.
    pub async fn set_slip_roles(
        &self,
        id: i64,
        is_admin: bool,
        is_mod: bool,
        boards: &[BoardId],
    ) -> Result<(), StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "UPDATE slip SET is_admin = $1, is_mod = $2, boards = $3 WHERE id = $4 RETURNING id",
        )
        .bind(is_admin)
        .bind(is_mod)
        .bind(boards_text(boards))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        found
            .map(|_| ())
            .ok_or_else(|| StoreError::NotFound(format!("slip {id}")))
    }

    /// Records a session under the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        slip: i64,
        csrf: &str,
        now: i64,
        expires: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO session (id, slip, created, expires, csrf) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(slip)
        .bind(now)
        .bind(expires)
        .bind(csrf)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The live session with this token hash, with its slip.
    pub async fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id AS id, s.name AS name, s.is_admin AS is_admin, s.is_mod AS is_mod, \
             s.boards AS boards, x.csrf AS csrf, x.expires AS expires \
             FROM session x JOIN slip s ON s.id = x.slip WHERE x.id = $1 AND x.expires > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Session {
            slip: slip_from_row(&row).map_err(db_err)?,
            csrf: row.try_get("csrf").map_err(db_err)?,
            expires: row.try_get("expires").map_err(db_err)?,
        }))
    }

    /// Ends a session (logout, or the old session on a new login).
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM session WHERE id = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
