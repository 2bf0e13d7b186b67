//! Entries that must never be lost, whatever the invariant that names them:
//! every master of the epoch they were vouched for in or a later one holds
//! each where it was vouched for (Raft's leader completeness), and after
//! the cluster heals every node does.

use std::collections::BTreeMap;

use replog::entry::{Entry, Epoch, Seq};

use super::NodeView;

pub struct Kept {
    /// Why these entries must be kept, for the failure's sentence
    /// ("acknowledged to a majority", "promised to its client").
    why: &'static str,
    /// seq -> (epoch of the master that vouched for it, the entry).
    entries: BTreeMap<Seq, (Epoch, Entry)>,
}

impl Kept {
    pub fn new(why: &'static str) -> Kept {
        Kept {
            why,
            entries: BTreeMap::new(),
        }
    }

    /// A master of `epoch` vouched for `entry`.
    pub fn vouched(&mut self, epoch: Epoch, entry: Entry) -> Result<(), String> {
        if let Some((_, earlier)) = self.entries.get(&entry.seq) {
            if *earlier != entry {
                return Err(format!(
                    "seq {} {} as {earlier:?} and as {entry:?}",
                    entry.seq, self.why
                ));
            }
        }
        self.entries.entry(entry.seq).or_insert((epoch, entry));
        Ok(())
    }

    /// Every master holds what masters of its epoch or older vouched for.
    pub fn check(&self, nodes: &[NodeView]) -> Result<(), String> {
        for n in nodes {
            let Some(core) = n.core.filter(|c| c.is_master()) else {
                continue;
            };
            for (seq, (epoch, entry)) in &self.entries {
                if *epoch <= core.epoch() && n.log.get((*seq - 1) as usize) != Some(entry) {
                    return Err(format!(
                        "{} is master of epoch {} without seq {seq}, {} in epoch {epoch}",
                        n.id,
                        core.epoch(),
                        self.why
                    ));
                }
            }
        }
        Ok(())
    }

    /// After healing: every node holds every such entry.
    pub fn check_final(&self, nodes: &[NodeView]) -> Result<(), String> {
        for n in nodes {
            for (seq, (_, entry)) in &self.entries {
                if n.log.get((*seq - 1) as usize) != Some(entry) {
                    return Err(format!("{} lost seq {seq}, {}", n.id, self.why));
                }
            }
        }
        Ok(())
    }
}
