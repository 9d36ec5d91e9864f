//! Roles, not legs: which channel of the recording a source belongs to.
//!
//! The role of a source is always told by the caller of the media core
//! (signalling, SIPREC metadata, a command-line option). Nothing here may
//! guess it from packet arrival order or call direction.

use std::fmt;

/// Which side of the call a source carries, and so which channel it is mixed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The customer, caller or callee: channel 1, left.
    EndUser,
    /// The agent and every party the agent adds (third parties, emergency
    /// numbers): channel 2, right.
    Agent,
}

impl Role {
    /// The index of this role's channel in an interleaved stereo frame (0 = left).
    pub const fn channel_index(self) -> usize {
        match self {
            Role::EndUser => 0,
            Role::Agent => 1,
        }
    }

    /// The channel number as the spec counts them (1 = left, 2 = right).
    pub const fn channel_number(self) -> u8 {
        self.channel_index() as u8 + 1
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::EndUser => "end_user",
            Role::Agent => "agent",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_user_is_left_and_agent_is_right() {
        assert_eq!(Role::EndUser.channel_index(), 0);
        assert_eq!(Role::Agent.channel_index(), 1);
        assert_eq!(Role::EndUser.channel_number(), 1);
        assert_eq!(Role::Agent.channel_number(), 2);
    }
}
