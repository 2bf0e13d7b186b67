//! Who a data directory belongs to: `DATA_DIR/identity` holds the node's
//! id, its incarnation (random, chosen when the file is first written) and,
//! while it is one, that the node is a learner.
//!
//! The file is written at a node's first start on the directory, synced
//! with the directory before the node goes on. A node that finds none
//! beside an empty log is a new incarnation (a new node, a replaced or
//! wiped disk) and starts as a learner: it votes only once it holds
//! everything committed (`replication::role` decides when, and the node
//! then records it here). One that finds none beside a log it holds (a
//! release without the file) keeps voting. A log kept in memory is a new
//! incarnation at every start.
//!
//! It also holds, once known, the id of the cluster the directory belongs
//! to: the fingerprint of the `--cluster` list the cluster was started
//! with (as etcd derives its cluster id from its initial members), taken
//! by a node of a new cluster when it first becomes master or takes one,
//! by a node started with `--join` (or back with an empty directory) from
//! the first master it takes, and by a log of an older release from its
//! `--cluster` list. A node refuses a master or candidate that names
//! another (`node::connection`).
//!
//! ```text
//! node n2
//! incarnation 4f3a9c0e5d2b7a18
//! cluster 9c1e4b7d2a0f3e65
//! learner
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const FILE: &str = "identity";

/// A data directory's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The node the directory belongs to.
    pub node: String,
    /// Chosen at random when the file was first written: a node back with
    /// an empty directory has another.
    pub incarnation: u64,
    /// The node does not yet hold everything committed.
    pub learner: bool,
    /// The cluster the directory belongs to, once known.
    pub cluster: Option<u64>,
    /// Where it is kept (none for a log in memory).
    path: Option<PathBuf>,
}

impl Identity {
    /// The identity of a node whose log is kept in memory: a new
    /// incarnation, a learner.
    pub fn in_memory(node: &str) -> Identity {
        Identity {
            node: node.to_string(),
            incarnation: rand::random(),
            learner: true,
            cluster: None,
            path: None,
        }
    }

    /// Reads the identity in `dir`, or writes a new one (a learner if the
    /// log is `empty`). Refuses a directory that belongs to another node.
    pub fn open(dir: &Path, node: &str, empty: bool) -> io::Result<Identity> {
        let path = dir.join(FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let identity = parse(&text, path.clone())?;
                if identity.node != node {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} belongs to node '{}', not '{node}': give each node its own --data-dir",
                            dir.display(),
                            identity.node
                        ),
                    ));
                }
                Ok(identity)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let identity = Identity {
                    node: node.to_string(),
                    incarnation: rand::random(),
                    learner: empty,
                    cluster: None,
                    path: Some(path),
                };
                identity.write()?;
                Ok(identity)
            }
            Err(e) => Err(e),
        }
    }

    /// Records that the node votes again (no more a learner), durably.
    pub fn promote(&mut self) -> io::Result<()> {
        if !self.learner {
            return Ok(());
        }
        let promoted = Identity {
            learner: false,
            ..self.clone()
        };
        promoted.write()?;
        *self = promoted;
        Ok(())
    }

    /// Records the cluster the directory belongs to, durably; once known
    /// it never changes (a call with another id is ignored).
    pub fn settle(&mut self, cluster: u64) -> io::Result<()> {
        if self.cluster.is_some() {
            return Ok(());
        }
        let settled = Identity {
            cluster: Some(cluster),
            ..self.clone()
        };
        settled.write()?;
        *self = settled;
        Ok(())
    }

    /// Makes this node a new incarnation and a learner, durably: its log
    /// was cut by damage, and it may lack what it acknowledged.
    pub fn renew(&mut self) -> io::Result<()> {
        let renewed = Identity {
            incarnation: rand::random(),
            learner: true,
            ..self.clone()
        };
        renewed.write()?;
        *self = renewed;
        Ok(())
    }

    /// Writes the file, so that a crash leaves the old one or the new one.
    fn write(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut text = format!(
            "node {}\nincarnation {:016x}\n",
            self.node, self.incarnation
        );
        if let Some(cluster) = self.cluster {
            text.push_str(&format!("cluster {cluster:016x}\n"));
        }
        if self.learner {
            text.push_str("learner\n");
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        super::files::replace_file(dir, FILE, &text)
    }
}

/// The file's text, as written by [`Identity::write`].
fn parse(text: &str, path: PathBuf) -> io::Result<Identity> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is damaged (expected 'node ID', 'incarnation HEX', maybe 'cluster HEX' and maybe 'learner')",
                path.display()
            ),
        )
    };
    let mut lines = text.lines();
    let node = lines
        .next()
        .and_then(|l| l.strip_prefix("node "))
        .ok_or_else(bad)?;
    let incarnation = (lines.next())
        .and_then(|l| l.strip_prefix("incarnation "))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(bad)?;
    let mut next = lines.next();
    // Written by this release and later only.
    let cluster = match next.and_then(|l| l.strip_prefix("cluster ")) {
        Some(hex) => {
            next = lines.next();
            Some(u64::from_str_radix(hex, 16).map_err(|_| bad())?)
        }
        None => None,
    };
    let learner = match next {
        None => false,
        Some("learner") => true,
        Some(_) => return Err(bad()),
    };
    if lines.next().is_some() || node.is_empty() {
        return Err(bad());
    }
    Ok(Identity {
        node: node.to_string(),
        incarnation,
        learner,
        cluster,
        path: Some(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_gets_a_new_incarnation_that_learns_until_promoted() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::open(dir.path(), "n2", true).unwrap();
        assert!(first.learner);
        // Read back as written, also after a restart.
        let again = Identity::open(dir.path(), "n2", false).unwrap();
        assert_eq!(again, first);
        let mut promoted = again;
        promoted.promote().unwrap();
        let after = Identity::open(dir.path(), "n2", false).unwrap();
        assert_eq!(
            (after.incarnation, after.learner),
            (first.incarnation, false)
        );
        // Wiped: another incarnation.
        let wiped = tempfile::tempdir().unwrap();
        let other = Identity::open(wiped.path(), "n2", true).unwrap();
        assert_ne!(other.incarnation, first.incarnation);
    }

    #[test]
    fn the_cluster_once_known_is_kept_and_never_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut learner = Identity::open(dir.path(), "n2", true).unwrap();
        assert_eq!(learner.cluster, None);
        learner.settle(0x9c1e).unwrap();
        learner.settle(0x1234).unwrap();
        let again = Identity::open(dir.path(), "n2", false).unwrap();
        assert_eq!((again.cluster, again.learner), (Some(0x9c1e), true));
        // Kept by a promotion and by a renewal (a heal).
        let mut again = again;
        again.promote().unwrap();
        again.renew().unwrap();
        let after = Identity::open(dir.path(), "n2", false).unwrap();
        assert_eq!((after.cluster, after.learner), (Some(0x9c1e), true));
        assert_ne!(after.incarnation, learner.incarnation);
        // A damaged line is refused.
        std::fs::write(
            dir.path().join(FILE),
            "node n2\nincarnation 01\ncluster zz\n",
        )
        .unwrap();
        assert!(Identity::open(dir.path(), "n2", false).is_err());
    }

    #[test]
    fn a_log_without_the_file_keeps_voting_and_another_nodes_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!Identity::open(dir.path(), "n1", false).unwrap().learner);
        let err = Identity::open(dir.path(), "n3", false).unwrap_err();
        assert!(
            err.to_string().contains("belongs to node 'n1', not 'n3'"),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "",
            "node \n",
            "node n1\nincarnation zz\n",
            "node n1\nincarnation 1\nother\n",
        ] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            let err = Identity::open(dir.path(), "n1", false).unwrap_err();
            assert!(err.to_string().contains("is damaged"), "{text:?}: {err}");
        }
    }
}
