//! Who may take part, and at which epochs: only members of the cluster
//! open a master's connection, ask for a vote or have one counted, and
//! only at an epoch some election could have reached (below
//! [`EPOCH_LIMIT`]).
//!
//! Without a cluster key anyone who reaches a node can say anything in a
//! hello; these checks do not make such a cluster safe (a forger naming a
//! member at a plausible epoch is still believed), but one frame can no
//! longer push every node to an epoch at which the next one wraps to 0,
//! nor bring a stranger into an election. Everything refused here is said
//! in one log line by the runtime.

use super::{Action, Core};
use crate::entry::{Epoch, Position, EPOCH_LIMIT};

impl Core {
    /// Whether `id` is a member now, was one in a configuration entry the
    /// log holds, or was one in `--cluster`.
    pub(super) fn ever_named(&self, id: &str) -> bool {
        self.members.get(id).is_some()
            || self.configs.iter().any(|(_, m)| m.get(id).is_some())
            || self.cfg.nodes.iter().any(|(n, _)| n == id)
    }

    /// The members' ids (learners marked), for a refusal's sentence.
    fn member_list(&self) -> String {
        let ids: Vec<String> = (self.members.members().iter())
            .map(|m| match self.members.is_voter(&m.id) {
                true => m.id.clone(),
                false => format!("{} (learner)", m.id),
            })
            .collect();
        ids.join(", ")
    }
}

/// Why an epoch is refused, if it is: none at or above [`EPOCH_LIMIT`].
pub(super) fn absurd_epoch(epoch: Epoch, what: &str) -> Option<String> {
    (epoch >= EPOCH_LIMIT).then(|| {
        format!(
            "{what} claims epoch {epoch}, which no election can reach (epochs stay below {EPOCH_LIMIT}): a forged or corrupt frame, refused"
        )
    })
}

impl Core {
    /// Why node `who`, speaking for `epoch`, may not take part as `what`
    /// ("a master connection", "a vote request"), if it may not: a node
    /// neither the log nor `--cluster` ever named is a stranger. Whom the
    /// log names but no longer counts (a learner, a node removed) is
    /// answered as any node: a vote request is judged on its log and
    /// epoch (the candidate counts by its own configuration), its answer
    /// to one counts for nothing but its epoch (`on_vote_answered`), and
    /// as a master it leads until its own removal is committed.
    pub(super) fn refusal(&self, who: &str, epoch: Epoch, what: &str) -> Option<String> {
        // A node joining (`--join`) knows no member yet: it learns them
        // from the log its first master sends.
        let joining = self.members.members().is_empty() && self.configs.is_empty();
        if !joining && !self.ever_named(who) {
            return Some(format!(
                "{what} from node '{who}', which is not a member of this cluster (members: {}), refused",
                self.member_list()
            ));
        }
        absurd_epoch(epoch, &format!("{what} from node '{who}'"))
    }

    /// Why a candidate's request is refused, if it is: a stranger, an
    /// absurd epoch, or a last entry no candidate for `epoch` can hold (its
    /// entries are all of older epochs than the one it asks for).
    pub(super) fn candidate_refusal(
        &self,
        candidate: &str,
        epoch: Epoch,
        last: Position,
    ) -> Option<String> {
        self.refusal(candidate, epoch, "a vote request").or_else(|| {
            (last.epoch >= epoch).then(|| {
                format!(
                    "a vote request from node '{candidate}' for epoch {epoch} claims a last entry of epoch {}: a forged or corrupt frame, refused",
                    last.epoch
                )
            })
        })
    }

    /// Says, through the runtime's log, that an input was disregarded.
    pub(super) fn disregard(reason: String, out: &mut Vec<Action>) {
        out.push(Action::Disregard { reason });
    }
}
