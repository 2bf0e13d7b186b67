//! The consumer groups' positions a core acts on (checks requests
//! against, answers readers with) are those its log leaves: every group
//! entry it holds applied in order, whatever was cut, reset or elected.
//! A cut's positions are reported right after it (as the node loop does),
//! so a core found not knowing them has lost the report.

use super::NodeView;

pub fn check(nodes: &[NodeView]) -> Result<(), String> {
    for n in nodes {
        let Some(core) = n.core else { continue };
        let Some(positions) = core.groups() else {
            return Err(format!("{} does not know its groups' positions", n.id));
        };
        let want = crate::world::groups_of(n.log);
        if *positions != want {
            return Err(format!(
                "{} acts on positions {:?}, but its log leaves {:?}",
                n.id,
                positions.iter().collect::<Vec<_>>(),
                want.iter().collect::<Vec<_>>()
            ));
        }
    }
    Ok(())
}
