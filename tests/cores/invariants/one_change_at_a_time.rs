//! Never two majorities: a master writes a configuration entry only once
//! the one before it in its log is committed, that is durable on a
//! majority of the voters it names, and it changes one voter at most
//! (Raft's changes of one server at a time). Two configurations one change apart share a voter in any two
//! of their majorities; two changes apart they need not, and two masters
//! could then be elected in one epoch.

use replog::entry::Entry;
use replog::replication::membership::Membership;
use replog::replication::quorum;

/// A master is writing configuration entry `new`; `before` is the
/// configuration entry before it in its log, if any, and `holds(id)` says
/// whether node `id` holds `before` durably.
pub fn check(
    new: &Entry,
    before: Option<&Entry>,
    holds: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let Some(before) = before else {
        return Ok(());
    };
    let members = Membership::decode(&before.message)
        .map_err(|e| format!("configuration entry at seq {} unreadable: {e}", before.seq))?;
    let voters: Vec<&str> = (members.members().iter())
        .filter(|m| members.is_voter(&m.id))
        .map(|m| m.id.as_str())
        .collect();
    // One change: the voters of the two differ by one node at most.
    let next = Membership::decode(&new.message)
        .map_err(|e| format!("configuration entry at seq {} unreadable: {e}", new.seq))?;
    let changed = (members.members().iter().chain(next.members()))
        .map(|m| m.id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|id| members.is_voter(id) != next.is_voter(id))
        .count();
    if changed > 1 {
        return Err(format!(
            "the configuration entry at seq {} changes {changed} voters from the one at seq {}",
            new.seq, before.seq
        ));
    }
    let holding = voters.iter().filter(|id| holds(id)).count();
    let majority = quorum::majority(voters.len()) as usize;
    if holding < majority {
        return Err(format!(
            "a master of epoch {} wrote the configuration entry at seq {} while the one at seq {} was durable on {holding} of its {} voters only",
            new.epoch,
            new.seq,
            before.seq,
            voters.len()
        ));
    }
    Ok(())
}
