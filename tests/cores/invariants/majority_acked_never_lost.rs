//! An append acknowledged with w ≥ majority is never lost: every master of
//! a later epoch holds it where it was acknowledged (Raft's leader
//! completeness), and after the cluster heals every node does.

use std::collections::BTreeMap;

use replog::entry::{Entry, Epoch, Seq};

use super::NodeView;

#[derive(Default)]
pub struct Check {
    /// seq -> (epoch of the master that acknowledged it, the entry).
    acked: BTreeMap<Seq, (Epoch, Entry)>,
}

impl Check {
    /// A master of `epoch` acknowledged `entry` to a majority.
    pub fn acknowledged(&mut self, epoch: Epoch, entry: Entry) -> Result<(), String> {
        if let Some((_, earlier)) = self.acked.get(&entry.seq) {
            if *earlier != entry {
                return Err(format!(
                    "seq {} acknowledged to a majority as {earlier:?} and as {entry:?}",
                    entry.seq
                ));
            }
        }
        self.acked.entry(entry.seq).or_insert((epoch, entry));
        Ok(())
    }

    /// Every master holds what masters of its epoch or older acknowledged.
    pub fn check(&self, nodes: &[NodeView]) -> Result<(), String> {
        for n in nodes {
            let Some(core) = n.core.filter(|c| c.is_master()) else {
                continue;
            };
            for (seq, (epoch, entry)) in &self.acked {
                if *epoch <= core.epoch() && n.log.get((*seq - 1) as usize) != Some(entry) {
                    return Err(format!(
                        "{} is master of epoch {} without seq {seq}, acknowledged to a majority in epoch {epoch}",
                        n.id,
                        core.epoch()
                    ));
                }
            }
        }
        Ok(())
    }

    /// After healing: every node holds every such entry.
    pub fn check_final(&self, nodes: &[NodeView]) -> Result<(), String> {
        for n in nodes {
            for (seq, (_, entry)) in &self.acked {
                if n.log.get((*seq - 1) as usize) != Some(entry) {
                    return Err(format!(
                        "{} lost seq {seq}, acknowledged to a majority",
                        n.id
                    ));
                }
            }
        }
        Ok(())
    }
}
