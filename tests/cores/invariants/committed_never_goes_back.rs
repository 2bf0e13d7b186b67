//! The committed mark never goes back, and what it covers never changes:
//! `list --committed` shows only entries no failover removes. Per node and
//! per run of its process (the mark is learnt again after a restart).

use std::collections::BTreeMap;

use replog::entry::{Entry, Seq};

use super::NodeView;

#[derive(Default)]
pub struct Check {
    /// Each node's mark, since its last start.
    marks: Vec<Seq>,
    /// Every entry any node showed as committed, by seq.
    committed: BTreeMap<Seq, Entry>,
}

impl Check {
    /// Node `node` (re)started: its mark starts again from nothing.
    pub fn booted(&mut self, node: usize) {
        if self.marks.len() <= node {
            self.marks.resize(node + 1, 0);
        }
        self.marks[node] = 0;
    }

    pub fn check(&mut self, nodes: &[NodeView]) -> Result<(), String> {
        for (i, n) in nodes.iter().enumerate() {
            let Some(core) = n.core else { continue };
            let mark = core.committed();
            if self.marks.len() <= i {
                self.marks.resize(i + 1, 0);
            }
            if mark < self.marks[i] {
                return Err(format!(
                    "{}'s committed mark went back from {} to {mark}",
                    n.id, self.marks[i]
                ));
            }
            if mark as usize > n.durable {
                return Err(format!(
                    "{} shows seq {mark} as committed but has synced only {}",
                    n.id, n.durable
                ));
            }
            for seq in self.marks[i] + 1..=mark {
                let entry = &n.log[(seq - 1) as usize];
                let first = self.committed.entry(seq).or_insert_with(|| entry.clone());
                if first != entry {
                    return Err(format!(
                        "{} shows {entry:?} as committed at seq {seq}, where {first:?} was committed",
                        n.id
                    ));
                }
            }
            self.marks[i] = mark;
        }
        Ok(())
    }
}
