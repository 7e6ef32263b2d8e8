//! What the group policy says: in.mpathd's log lines, and why an event or
//! request was refused.
use std::fmt;

use super::group::LINK_UP_HISTORY;

/// An operator-facing log line; `Display` gives in.mpathd's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    LinkDown {
        group: String,
        member: String,
    },
    LinkUp {
        group: String,
        member: String,
    },
    /// A link-only member's link came up too often: repair is held back.
    LinkFlapping {
        group: String,
        member: String,
    },
    InterfaceFailure {
        group: String,
        member: String,
    },
    InterfaceRepair {
        group: String,
        member: String,
    },
    /// No member is usable any more.
    GroupFailure {
        group: String,
    },
    /// Some member (`member`, the first to be) is usable again.
    GroupRepair {
        group: String,
        member: String,
    },
    TakenOffline {
        group: String,
        member: String,
    },
    BroughtOnline {
        group: String,
        member: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::LinkDown { member, .. } => write!(f, "The link has gone down on {member}"),
            Notice::LinkUp { member, .. } => write!(f, "The link has come up on {member}"),
            Notice::LinkFlapping { member, .. } => write!(
                f,
                "The link has come up on {member} more than {LINK_UP_HISTORY} times in the last \
                 minute; disabling repair until it stabilizes"
            ),
            Notice::InterfaceFailure { group, member } => {
                write!(
                    f,
                    "IP interface failure detected on {member} of group {group}"
                )
            }
            Notice::InterfaceRepair { group, member } => {
                write!(
                    f,
                    "IP interface repair detected on {member} of group {group}"
                )
            }
            Notice::GroupFailure { group } => {
                write!(f, "All IP interfaces in group {group} are now unusable")
            }
            Notice::GroupRepair { group, member } => {
                write!(
                    f,
                    "At least 1 IP interface ({member}) in group {group} is now usable"
                )
            }
            Notice::TakenOffline { member, .. } => write!(f, "Interface {member} taken offline"),
            Notice::BroughtOnline { member, .. } => write!(f, "Interface {member} brought online"),
        }
    }
}

impl Notice {
    /// in.mpathd's severity: failures are LOG_ERR (error), so alerts keyed
    /// on severity fire; repairs and operator actions are LOG_NOTICE (info).
    pub fn level(&self) -> tracing::Level {
        match self {
            Notice::LinkDown { .. }
            | Notice::LinkFlapping { .. }
            | Notice::InterfaceFailure { .. }
            | Notice::GroupFailure { .. } => tracing::Level::ERROR,
            _ => tracing::Level::INFO,
        }
    }

    /// A short name of the notice, for scripts (`ipmpctl events --json`).
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::LinkDown { .. } => "link_down",
            Notice::LinkUp { .. } => "link_up",
            Notice::LinkFlapping { .. } => "link_flapping",
            Notice::InterfaceFailure { .. } => "interface_failure",
            Notice::InterfaceRepair { .. } => "interface_repair",
            Notice::GroupFailure { .. } => "group_failure",
            Notice::GroupRepair { .. } => "group_repair",
            Notice::TakenOffline { .. } => "offline",
            Notice::BroughtOnline { .. } => "online",
        }
    }

    /// The member the notice is about, if it is about one.
    pub fn member(&self) -> Option<&str> {
        match self {
            Notice::GroupFailure { .. } => None,
            Notice::LinkDown { member, .. }
            | Notice::LinkUp { member, .. }
            | Notice::LinkFlapping { member, .. }
            | Notice::InterfaceFailure { member, .. }
            | Notice::InterfaceRepair { member, .. }
            | Notice::GroupRepair { member, .. }
            | Notice::TakenOffline { member, .. }
            | Notice::BroughtOnline { member, .. } => Some(member),
        }
    }
}

/// Why an event or request was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// No member of the group has this name.
    UnknownMember { group: String, member: String },
    /// A member of this name is already in the group.
    DuplicateMember { group: String, member: String },
    /// Offline refused: it would leave the group without a usable member.
    OfflineRefused { member: String },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::UnknownMember { group, member } => {
                write!(f, "{member} is not a member of group {group}")
            }
            PolicyError::DuplicateMember { group, member } => {
                write!(f, "{member} is already a member of group {group}")
            }
            // The reason is libipmp's text for IPMP_EMINRED.
            PolicyError::OfflineRefused { member } => write!(
                f,
                "cannot offline {member}: no other functioning interfaces are in its IPMP group"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}
