//! Every log's messages are numbered 1, 2, 3, ... without a gap or a
//! repeat, in every node's log, whatever was cut, reset or elected: no
//! control entry (an epoch's marker, a configuration entry) takes a number,
//! and a number a cut took back is given again to the next message of that
//! log, never skipped. (Log matching then makes the numbers agree between
//! nodes: they are part of the entries compared.)

use std::collections::BTreeMap;

use super::NodeView;

pub fn check(nodes: &[NodeView]) -> Result<(), String> {
    for n in nodes {
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for e in n.log {
            if e.is_control() {
                if e.number != 0 {
                    return Err(format!(
                        "{} holds a control entry at seq {} numbered {}",
                        n.id, e.seq, e.number
                    ));
                }
                continue;
            }
            let want = last.get(&e.log).copied().unwrap_or(0) + 1;
            if e.number != want {
                return Err(format!(
                    "{} holds message {} of log {} at seq {}, after {}",
                    n.id,
                    e.number,
                    e.log,
                    e.seq,
                    want - 1
                ));
            }
            last.insert(e.log, e.number);
        }
    }
    Ok(())
}
