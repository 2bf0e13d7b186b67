//! Logs are equal on their common prefix: if two logs hold an entry of the
//! same epoch at the same sequence number, they are identical up to it
//! (Raft's log matching). This is what lets a master find where a
//! secondary's log parts from its own from their epochs alone.

use super::NodeView;

pub fn check(nodes: &[NodeView]) -> Result<(), String> {
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            let common = a.log.len().min(b.log.len());
            // The newest position where both hold the same epoch.
            let Some(at) = (0..common)
                .rev()
                .find(|&k| a.log[k].epoch == b.log[k].epoch)
            else {
                continue;
            };
            if let Some(k) = (0..=at).find(|&k| a.log[k] != b.log[k]) {
                return Err(format!(
                    "{} and {} both hold an entry of epoch {} at seq {}, but differ at seq {}: {:?} against {:?}",
                    a.id,
                    b.id,
                    a.log[at].epoch,
                    at + 1,
                    k + 1,
                    a.log[k],
                    b.log[k]
                ));
            }
        }
    }
    Ok(())
}
