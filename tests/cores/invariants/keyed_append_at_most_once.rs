//! A keyed append appears at most once: no log holds a key twice, and once
//! a key is acknowledged to a majority every later acknowledgement of it
//! names the same seq. (A key acknowledged to fewer nodes may be lost in a
//! failover, and its retry then appends again.)

use std::collections::HashMap;

use replog::entry::Seq;

use super::NodeView;

#[derive(Default)]
pub struct Check {
    /// Keys acknowledged to a majority, and their seq.
    keys: HashMap<String, Seq>,
}

impl Check {
    /// `key` was acknowledged as `seq`, to a majority or not.
    pub fn acknowledged(&mut self, key: &str, seq: Seq, majority: bool) -> Result<(), String> {
        match self.keys.get(key) {
            Some(first) if *first != seq => Err(format!(
                "key {key} acknowledged to a majority as seq {first}, later as seq {seq}"
            )),
            Some(_) => Ok(()),
            None => {
                if majority {
                    self.keys.insert(key.to_string(), seq);
                }
                Ok(())
            }
        }
    }

    pub fn check(nodes: &[NodeView]) -> Result<(), String> {
        for n in nodes {
            let mut seen = HashMap::new();
            for e in n.log {
                // Markers' and configuration entries' keys are the log's.
                let Some(k) = e.key.as_deref().filter(|_| !e.is_control()) else {
                    continue;
                };
                if let Some(first) = seen.insert(k, e.seq) {
                    return Err(format!(
                        "{} holds key {k} at seq {first} and {}",
                        n.id, e.seq
                    ));
                }
            }
        }
        Ok(())
    }
}
