//! Who the cluster's members are: each one's id, address and standing
//! (a voter, or a learner that receives entries but neither votes nor
//! counts toward `w`, a majority or the commit mark).
//!
//! A change of membership is an entry of the replicated log, a
//! *configuration entry* ([`Entry::config`]), so that every node agrees on
//! it and it survives failover like any entry. A node acts on the newest
//! configuration entry its log holds, committed or not (Raft's rule for
//! changes of one server at a time): two configurations that differ by
//! one voter always share a majority, so one change at a time, each
//! committed before the next, never lets two majorities decide apart.
//! Until the first change, the members are those `--cluster` gave, all
//! voters.
//!
//! The entry's message is text, one member a line, in the order the
//! cluster lists them: `voter ID ADDR` or `learner ID ADDR`.

use bytes::Bytes;

use crate::entry::{Entry, Epoch, Seq};

/// Most members a cluster may have: a bound on what a configuration entry
/// from the wire can make a node hold.
pub const MAX_MEMBERS: usize = 64;

/// Longest id or address a member may have, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Votes, may be elected, and counts toward `w`, a majority and the
    /// commit mark.
    Voter,
    /// Receives entries and heartbeats, and does nothing else until the
    /// master promotes it.
    Learner,
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its node id.
    pub id: String,
    /// Where it listens for other nodes.
    pub addr: String,
    /// What it may do.
    pub standing: Standing,
}

/// The cluster's members, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    members: Vec<Member>,
}

/// Why a membership, or a change to one, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The entry's text is not a membership.
    #[error("a configuration entry is unreadable: {0}")]
    Unreadable(String),
    /// The id is already a member.
    #[error("node {0} is already a member")]
    AlreadyMember(String),
    /// No member has this id.
    #[error("node {0} is not a member")]
    NotMember(String),
    /// Another member listens there.
    #[error("node {0} already listens at {1}")]
    AddressTaken(String, String),
    /// The last voter cannot go.
    #[error("node {0} is the last voter: a cluster needs one")]
    LastVoter(String),
    /// Past [`MAX_MEMBERS`].
    #[error("a cluster has at most {MAX_MEMBERS} members")]
    TooMany,
    /// An id or address that is empty, too long, or holds a space or a
    /// control character.
    #[error("'{0}' is not a valid node id or address (1 to {MAX_NAME_BYTES} bytes, no spaces or control characters)")]
    BadName(String),
}

impl Membership {
    /// Every node of `nodes` (`--cluster`), a voter.
    pub fn voters(nodes: &[(String, String)]) -> Membership {
        Membership {
            members: nodes
                .iter()
                .map(|(id, addr)| Member {
                    id: id.clone(),
                    addr: addr.clone(),
                    standing: Standing::Voter,
                })
                .collect(),
        }
    }

    /// The members, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member `id`, if it is one.
    pub fn get(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Whether `id` is a voter.
    pub fn is_voter(&self, id: &str) -> bool {
        self.get(id).is_some_and(|m| m.standing == Standing::Voter)
    }

    /// How many members vote.
    pub fn voter_count(&self) -> usize {
        (self.members.iter())
            .filter(|m| m.standing == Standing::Voter)
            .count()
    }

    /// This membership with `id` at `addr` added as a learner.
    pub fn with_learner(&self, id: &str, addr: &str) -> Result<Membership, MembershipError> {
        check_name(id)?;
        check_name(addr)?;
        if self.get(id).is_some() {
            return Err(MembershipError::AlreadyMember(id.into()));
        }
        if let Some(m) = self.members.iter().find(|m| m.addr == addr) {
            return Err(MembershipError::AddressTaken(m.id.clone(), addr.into()));
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(MembershipError::TooMany);
        }
        let mut next = self.clone();
        next.members.push(Member {
            id: id.into(),
            addr: addr.into(),
            standing: Standing::Learner,
        });
        Ok(next)
    }

    /// This membership with learner `id` made a voter.
    pub fn promoted(&self, id: &str) -> Result<Membership, MembershipError> {
        let mut next = self.clone();
        let m = (next.members.iter_mut())
            .find(|m| m.id == id)
            .ok_or_else(|| MembershipError::NotMember(id.into()))?;
        m.standing = Standing::Voter;
        Ok(next)
    }

    /// This membership without `id`.
    pub fn without(&self, id: &str) -> Result<Membership, MembershipError> {
        if self.get(id).is_none() {
            return Err(MembershipError::NotMember(id.into()));
        }
        if self.is_voter(id) && self.voter_count() == 1 {
            return Err(MembershipError::LastVoter(id.into()));
        }
        let mut next = self.clone();
        next.members.retain(|m| m.id != id);
        Ok(next)
    }

    /// The configuration entry recording this membership.
    pub fn entry(&self, epoch: Epoch, seq: Seq) -> Entry {
        Entry::config(epoch, seq, self.encode())
    }

    /// The text a configuration entry holds.
    pub fn encode(&self) -> Bytes {
        let mut text = String::new();
        for m in &self.members {
            let standing = match m.standing {
                Standing::Voter => "voter",
                Standing::Learner => "learner",
            };
            text.push_str(&format!("{standing} {} {}\n", m.id, m.addr));
        }
        Bytes::from(text)
    }

    /// Reads what [`Membership::encode`] wrote; refuses anything else,
    /// past [`MAX_MEMBERS`], with a repeated id or address, or without a
    /// voter.
    pub fn decode(bytes: &[u8]) -> Result<Membership, MembershipError> {
        let bad = |why: &str| MembershipError::Unreadable(why.to_string());
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let mut members = Membership {
            members: Vec::new(),
        };
        for line in text.lines() {
            let mut words = line.split(' ');
            let (standing, id, addr) = match (words.next(), words.next(), words.next()) {
                (Some(s), Some(id), Some(addr)) if words.next().is_none() => (s, id, addr),
                _ => return Err(bad(&format!("'{line}' is not 'STANDING ID ADDR'"))),
            };
            let standing = match standing {
                "voter" => Standing::Voter,
                "learner" => Standing::Learner,
                other => return Err(bad(&format!("unknown standing '{other}'"))),
            };
            members = members.with_learner(id, addr)?;
            if standing == Standing::Voter {
                members = members.promoted(id)?;
            }
        }
        if members.voter_count() == 0 {
            return Err(bad("no voter"));
        }
        Ok(members)
    }
}

/// Refuses an id or address the entry's text could not carry, or that no
/// operator meant.
fn check_name(name: &str) -> Result<(), MembershipError> {
    let fine = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    match fine {
        true => Ok(()),
        false => Err(MembershipError::BadName(name.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Membership {
        Membership::voters(&[
            ("a".into(), "h:1".into()),
            ("b".into(), "h:2".into()),
            ("c".into(), "h:3".into()),
        ])
    }

    #[test]
    fn a_membership_reads_back_as_written_in_its_entry() {
        let m = three().with_learner("d", "h:4").unwrap();
        let e = m.entry(3, 17);
        assert!(e.is_config() && !e.is_marker());
        assert_eq!((e.epoch, e.seq), (3, 17));
        assert_eq!(
            &e.message[..],
            b"voter a h:1\nvoter b h:2\nvoter c h:3\nlearner d h:4\n"
        );
        assert_eq!(Membership::decode(&e.message).unwrap(), m);
    }

    #[test]
    fn a_learner_is_added_promoted_and_removed_one_change_at_a_time() {
        let m = three().with_learner("d", "h:4").unwrap();
        assert_eq!((m.voter_count(), m.members().len()), (3, 4));
        assert!(!m.is_voter("d") && m.get("d").is_some());
        let m = m.promoted("d").unwrap();
        assert_eq!(m.voter_count(), 4);
        let m = m.without("a").unwrap();
        assert_eq!(m.voter_count(), 3);
        assert_eq!(m.get("a"), None);
    }

    #[test]
    fn impossible_changes_are_refused_with_their_reason() {
        let m = three();
        assert_eq!(
            m.with_learner("b", "h:9"),
            Err(MembershipError::AlreadyMember("b".into()))
        );
        assert_eq!(
            m.with_learner("d", "h:2"),
            Err(MembershipError::AddressTaken("b".into(), "h:2".into()))
        );
        for bad in ["", "d e", "d\n", &"x".repeat(256)] {
            assert!(matches!(
                m.with_learner(bad, "h:9"),
                Err(MembershipError::BadName(_))
            ));
        }
        assert_eq!(m.without("z"), Err(MembershipError::NotMember("z".into())));
        assert_eq!(m.promoted("z"), Err(MembershipError::NotMember("z".into())));
        let one = Membership::voters(&[("a".into(), "h:1".into())]);
        assert_eq!(
            one.without("a"),
            Err(MembershipError::LastVoter("a".into()))
        );
        let mut full = one.clone();
        for i in 1..MAX_MEMBERS {
            full = full
                .with_learner(&format!("n{i}"), &format!("h:{}", 100 + i))
                .unwrap();
        }
        assert_eq!(full.with_learner("z", "h:9"), Err(MembershipError::TooMany));
    }

    #[test]
    fn an_entry_that_is_not_a_membership_is_refused() {
        for text in [
            &b"\xff"[..],
            b"voter a\n",
            b"voter a h:1 more\n",
            b"boss a h:1\n",
            b"learner a h:1\n",
            b"voter a h:1\nvoter a h:2\n",
            b"",
        ] {
            assert!(Membership::decode(text).is_err(), "{text:?}");
        }
    }
}
