//! Who may do what: the role checks of slips, and the badge a post shows.
//!
//! Admins do everything; mods moderate every board; volunteers moderate
//! the boards listed on their slip. Only admins create and edit boards.

use wani_store::{BoardId, Slip};

/// Whether `slip` may moderate `board` (delete, ban, lock…).
pub fn can_moderate(slip: &Slip, board: BoardId) -> bool {
    slip.is_admin || slip.is_mod || slip.boards.contains(&board)
}

/// Whether `slip` moderates at least one board (sees the mod pages).
pub fn is_staff(slip: &Slip) -> bool {
    slip.is_admin || slip.is_mod || !slip.boards.is_empty()
}

/// The boards whose moderation `slip` may see: `None` for admins and mods
/// (every board, and site-wide entries), a volunteer's own boards otherwise.
pub fn held_boards(slip: &Slip) -> Option<&[BoardId]> {
    (!(slip.is_admin || slip.is_mod)).then_some(slip.boards.as_slice())
}

/// Whether `slip` may create and edit boards.
pub fn can_admin(slip: &Slip) -> bool {
    slip.is_admin
}

/// The role badge (capcode) on posts made with `slip`.
pub fn capcode(slip: &Slip) -> Option<&'static str> {
    if slip.is_admin {
        Some("Admin")
    } else if slip.is_mod {
        Some("Mod")
    } else if !slip.boards.is_empty() {
        Some("Volunteer")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slip(admin: bool, moderator: bool, boards: &[i64]) -> Slip {
        Slip {
            id: 1,
            name: "x".into(),
            is_admin: admin,
            is_mod: moderator,
            boards: boards.iter().copied().map(BoardId).collect(),
        }
    }

    #[test]
    fn roles() {
        let user = slip(false, false, &[]);
        let vol = slip(false, false, &[2]);
        let moderator = slip(false, true, &[]);
        let admin = slip(true, false, &[]);
        assert!(!can_moderate(&user, BoardId(2)) && !is_staff(&user));
        assert!(can_moderate(&vol, BoardId(2)) && !can_moderate(&vol, BoardId(3)));
        assert!(can_moderate(&moderator, BoardId(3)) && !can_admin(&moderator));
        assert!(can_admin(&admin) && can_moderate(&admin, BoardId(9)));
        assert_eq!(capcode(&user), None);
        assert_eq!(capcode(&vol), Some("Volunteer"));
        assert_eq!(capcode(&moderator), Some("Mod"));
        assert_eq!(capcode(&admin), Some("Admin"));
    }
}
