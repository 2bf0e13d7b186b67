//! At most one master per epoch: two nodes that both believed they were
//! master of the same epoch would assign the same sequence numbers to
//! different entries.

use std::collections::HashMap;

use replog::entry::Epoch;

use super::NodeView;

/// Every (epoch, master) seen so far.
#[derive(Default)]
pub struct Check {
    masters: HashMap<Epoch, String>,
}

impl Check {
    pub fn check(&mut self, nodes: &[NodeView]) -> Result<(), String> {
        for n in nodes {
            let Some(core) = n.core.filter(|c| c.is_master()) else {
                continue;
            };
            let epoch = core.epoch();
            let first = self
                .masters
                .entry(epoch)
                .or_insert_with(|| n.id.to_string());
            if first != n.id {
                return Err(format!(
                    "{} and {} were both master of epoch {epoch}",
                    first, n.id
                ));
            }
        }
        Ok(())
    }
}
