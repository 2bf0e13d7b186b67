//! Quorum arithmetic, in one place: how many nodes make a majority, and
//! how many nodes a write concern asks for.

use crate::wire::WriteConcern;

/// Nodes that make a majority of `n`: ⌊n/2⌋+1.
pub fn majority(n: usize) -> u32 {
    (n / 2 + 1) as u32
}

/// The number of nodes `w` asks for in a cluster of `n` nodes (it may be
/// out of range: checking that is the caller's part).
pub fn nodes_for(w: WriteConcern, n: usize) -> u32 {
    match w {
        WriteConcern::Nodes(w) => w,
        WriteConcern::Majority => majority(n),
        WriteConcern::All => n as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_and_write_concerns_resolve_as_documented() {
        assert_eq!(
            (1..=6).map(majority).collect::<Vec<_>>(),
            [1, 2, 2, 3, 3, 4]
        );
        assert_eq!(nodes_for(WriteConcern::Majority, 5), 3);
        assert_eq!(nodes_for(WriteConcern::All, 5), 5);
        assert_eq!(nodes_for(WriteConcern::Nodes(7), 5), 7);
    }
}
