//! Self-healing from damage: a node that finds its log damaged at start
//! keeps the longest valid prefix, sets the rest aside in
//! `DATA_DIR/damaged/`, and comes back as a learner (`--on-damage heal`,
//! the default in a cluster of several nodes).
//!
//! A damaged log has lost entries the node may have acknowledged, so the
//! node must not vote as if it held them: before anything is moved, its
//! identity becomes a new incarnation and a learner, synced
//! ([`Identity::renew`]). A crash at any point after that leaves either the
//! damage in place (found and set aside again at the next start) or a
//! shorter valid log, and a learner either way. What the log held from the
//! damaged record on is moved, never deleted: the damaged segment whole,
//! every later segment and an unfinished roll, into one directory named
//! for the time and the segment. The records before the damage, all
//! checked, are copied back as the segment.
//!
//! Only [`Damage`] is healed: a disk that fails to read, a permission, a
//! damaged `epoch`, `base` or `identity` file stop the node as before.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::damage::{damage_of, Damage};
use super::files::{lock_dir, segment_first, segment_firsts, segment_name, sync_dir};
use super::identity::Identity;
use super::{roll, Log};
use crate::entry::Seq;

/// Where damaged parts of a log are moved, in the data directory.
pub const DIR: &str = "damaged";

/// Damage healed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healed {
    /// What was found.
    pub damage: Damage,
    /// Where what the log held from the damage on now is.
    pub set_aside: PathBuf,
}

/// Most damage healed in one start. Recovery reports the first damage in
/// the log, and everything before it was checked, so once it is set aside
/// the log opens; the second is for a segment named 0, which goes alone.
const MAX_HEALS: usize = 2;

/// Opens the log in `dir` as [`Log::open`] does. If it is damaged and
/// `heal` is set, makes node `node` a learner, sets the damage aside and
/// opens the log again. A torn last record is cut as always, and with
/// `heal` the node becomes a learner first: a record torn by a crash and a
/// last record damaged on the disk look the same. Without `heal`, or for
/// anything but damage, the error is returned and nothing changed.
pub fn open(
    dir: &Path,
    segment_bytes: u64,
    node: &str,
    heal: bool,
) -> io::Result<(Log, Vec<Healed>)> {
    let mut healed: Vec<Healed> = Vec::new();
    let mut renew = || match heal {
        true => Identity::open(dir, node, false)?.renew(),
        false => Ok(()),
    };
    loop {
        let err = match Log::open_with(dir, segment_bytes, &mut renew) {
            Ok(log) => return Ok((log, healed)),
            Err(e) => e,
        };
        let damage = match damage_of(&err) {
            Some(d) if heal && healed.len() < MAX_HEALS => d.clone(),
            _ => return Err(err),
        };
        let _lock = lock_dir(dir)?;
        // What was found must still be there, now that this process holds
        // the directory: nothing is touched on a stale finding.
        let len = fs::metadata(&damage.path).map(|m| m.len());
        if !len.is_ok_and(|len| len >= damage.offset) {
            return Err(err);
        }
        // A learner before anything is cut: the node may have acknowledged
        // what it is about to lose.
        Identity::open(dir, node, false)?.renew()?;
        let set_aside = set_aside(dir, &damage)?;
        tracing::warn!(damage = %damage, moved_to = %set_aside.display(),
                       "the log is damaged: kept every record before the damage, moved the rest aside; this node comes back as a learner and takes what it lacks from the master");
        healed.push(Healed { damage, set_aside });
    }
}

/// Moves the damaged segment and everything after it into a new directory
/// under [`DIR`], then copies the checked records before the damage back
/// as the segment. Returns the directory.
fn set_aside(dir: &Path, damage: &Damage) -> io::Result<PathBuf> {
    let refuse = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{damage}; it cannot be set aside: {why}"),
        )
    };
    if damage.path.parent() != Some(dir) {
        return Err(refuse("the file is not in the data directory"));
    }
    let name = damage.path.file_name().expect("a segment file").to_owned();
    let first = segment_first(&name.to_string_lossy())
        .ok_or_else(|| refuse("the file is not a segment"))?;
    let target = new_target(dir, first)?;
    // The later segments, then an unfinished roll, then the damaged one: a
    // crash in between leaves the damage where the next start finds it.
    // A segment named 0 is none of ours, and goes alone.
    let mut later: Vec<Seq> = segment_firsts(dir)?
        .into_iter()
        .filter(|&f| first > 0 && f > first)
        .collect();
    later.sort_unstable_by(|a, b| b.cmp(a));
    for f in later {
        let name = segment_name(f);
        fs::rename(dir.join(&name), target.join(&name))?;
    }
    if first > 0 && dir.join(roll::NEXT).exists() {
        fs::rename(dir.join(roll::NEXT), target.join(roll::NEXT))?;
    }
    // Durable before the damaged segment goes: otherwise a power cut could
    // keep that move and lose these, and an unfinished roll left behind a
    // shorter log is removed at start.
    sync_dir(&target)?;
    sync_dir(dir)?;
    fs::rename(&damage.path, target.join(&name))?;
    sync_dir(&target)?;
    sync_dir(dir)?;
    if damage.offset > 0 {
        // Copied beside the damaged file, then moved into place: a crash
        // during the copy leaves a partial copy among what was set aside,
        // never in the log.
        let copy = target.join(format!("{}.kept", name.to_string_lossy()));
        let mut from = File::open(target.join(&name))?;
        let mut to = File::create(&copy)?;
        let copied = io::copy(&mut io::Read::take(&mut from, damage.offset), &mut to)?;
        if copied != damage.offset {
            return Err(refuse("the file is shorter than the damage's offset"));
        }
        to.sync_all()?;
        fs::rename(&copy, &damage.path)?;
        sync_dir(dir)?;
        sync_dir(&target)?;
    }
    Ok(target)
}

/// A new directory for what is set aside from segment `first`, named for
/// the time (seconds since 1970) and the segment; created and synced.
fn new_target(dir: &Path, first: Seq) -> io::Result<PathBuf> {
    let root = dir.join(DIR);
    fs::create_dir_all(&root)?;
    sync_dir(dir)?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("{secs}-{first}");
    let mut target = root.join(&base);
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = root.join(format!("{base}-{n}"));
    }
    fs::create_dir(&target)?;
    sync_dir(&root)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    fn entry(seq: Seq) -> Entry {
        Entry {
            seq,
            log: crate::entry::DEFAULT_LOG,
            number: seq,
            epoch: 1,
            message: format!("m{seq}").into(),
            key: None,
        }
    }

    /// A node's directory holding entries 1..=n in segments of about
    /// `segment_bytes`, as node `n2` left it.
    fn node_dir(n: Seq, segment_bytes: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), segment_bytes).unwrap();
        // One at a time: a segment rolls between appends.
        for seq in 1..=n {
            log.append(&[entry(seq)]).unwrap();
        }
        drop(log);
        Identity::open(dir.path(), "n2", false).unwrap();
        dir
    }

    fn read_all(log: &Log) -> Vec<Entry> {
        let last = log.last().seq;
        log.read(1, last, last as usize + 1, usize::MAX).unwrap()
    }

    fn set_aside_dirs(dir: &Path) -> Vec<PathBuf> {
        match fs::read_dir(dir.join(DIR)) {
            Ok(items) => items.map(|i| i.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn damage_in_the_middle_keeps_the_records_before_it_and_moves_the_rest_aside() {
        let dir = node_dir(300, 2_000);
        let firsts = segment_firsts(dir.path()).unwrap();
        assert!(firsts.len() > 4, "{firsts:?}");
        let before = Identity::open(dir.path(), "n2", false).unwrap();
        // A flipped byte in the middle of the second segment.
        let damaged = dir.path().join(segment_name(firsts[1]));
        let original = fs::read(&damaged).unwrap();
        let mut bytes = original.clone();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        fs::write(&damaged, &bytes).unwrap();

        let (log, healed) = open(dir.path(), 2_000, "n2", true).unwrap();
        assert_eq!(healed.len(), 1, "{healed:?}");
        let h = &healed[0];
        assert_eq!(h.damage.path, damaged);
        assert!(h.damage.offset > 0 && h.damage.offset <= at as u64, "{h:?}");
        // Everything before the damaged record, nothing after it.
        let kept = log.last().seq;
        assert!(kept >= firsts[1] && kept < firsts[2], "{kept}");
        assert_eq!(read_all(&log), (1..=kept).map(entry).collect::<Vec<_>>());
        // Nothing lost: the damaged file as it was found, and every later
        // segment, are in one directory under damaged/.
        assert_eq!(set_aside_dirs(dir.path()), vec![h.set_aside.clone()]);
        assert_eq!(
            fs::read(h.set_aside.join(segment_name(firsts[1]))).unwrap(),
            bytes
        );
        for f in &firsts[2..] {
            assert!(h.set_aside.join(segment_name(*f)).exists(), "{f}");
            assert!(!dir.path().join(segment_name(*f)).exists(), "{f}");
        }
        // A learner now, and another incarnation, recorded.
        let after = Identity::open(dir.path(), "n2", false).unwrap();
        assert!(after.learner);
        assert_ne!(after.incarnation, before.incarnation);
        // The healed log opens as it is, and takes new entries after what
        // it kept.
        drop(log);
        let mut log = Log::open(dir.path(), 2_000).unwrap();
        assert_eq!(log.last().seq, kept);
        log.append(&[entry(kept + 1)]).unwrap();
    }

    #[test]
    fn a_missing_segment_keeps_the_segments_before_it() {
        let dir = node_dir(300, 2_000);
        let firsts = segment_firsts(dir.path()).unwrap();
        fs::remove_file(dir.path().join(segment_name(firsts[2]))).unwrap();
        let (log, healed) = open(dir.path(), 2_000, "n2", true).unwrap();
        assert_eq!(log.last().seq, firsts[2] - 1);
        assert_eq!(healed.len(), 1);
        // The segment that no longer followed went whole.
        assert_eq!(
            healed[0].damage.path,
            dir.path().join(segment_name(firsts[3]))
        );
        assert_eq!(healed[0].damage.offset, 0);
        for f in &firsts[3..] {
            assert!(healed[0].set_aside.join(segment_name(*f)).exists());
        }
        assert!(Identity::open(dir.path(), "n2", false).unwrap().learner);
    }

    #[test]
    fn damage_in_the_first_record_leaves_an_empty_learner() {
        let dir = node_dir(20, 1 << 20);
        let seg = dir.path().join(segment_name(1));
        let mut bytes = fs::read(&seg).unwrap();
        bytes[20] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        let (log, healed) = open(dir.path(), 1 << 20, "n2", true).unwrap();
        assert_eq!((log.last().seq, healed.len()), (0, 1));
        assert_eq!(healed[0].damage.offset, 0);
        assert_eq!(
            fs::read(healed[0].set_aside.join(segment_name(1))).unwrap(),
            bytes
        );
    }

    #[test]
    fn without_heal_or_for_anything_but_damage_nothing_is_touched() {
        let dir = node_dir(300, 2_000);
        let firsts = segment_firsts(dir.path()).unwrap();
        let seg = dir.path().join(segment_name(firsts[1]));
        let mut bytes = fs::read(&seg).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        fs::write(&seg, &bytes).unwrap();
        let identity = Identity::open(dir.path(), "n2", false).unwrap();
        let err = open(dir.path(), 2_000, "n2", false).unwrap_err();
        assert!(damage_of(&err).is_some(), "{err}");
        assert_eq!(fs::read(&seg).unwrap(), bytes);
        assert_eq!(segment_firsts(dir.path()).unwrap(), firsts);
        assert!(set_aside_dirs(dir.path()).is_empty());
        assert_eq!(Identity::open(dir.path(), "n2", false).unwrap(), identity);

        // A damaged epoch file is no damage of the log: refused, even when
        // healing.
        let dir = node_dir(10, 1 << 20);
        fs::write(dir.path().join("epoch"), "twelve").unwrap();
        let err = open(dir.path(), 1 << 20, "n2", true).unwrap_err();
        assert!(damage_of(&err).is_none(), "{err}");
        assert!(set_aside_dirs(dir.path()).is_empty());
        assert!(!Identity::open(dir.path(), "n2", false).unwrap().learner);

        // Nor a damaged base file, nor a damaged identity (nothing moves
        // before the node is recorded a learner).
        let dir = node_dir(10, 1 << 20);
        fs::write(dir.path().join("base"), "nonsense").unwrap();
        let err = open(dir.path(), 1 << 20, "n2", true).unwrap_err();
        assert!(damage_of(&err).is_none(), "{err}");
        let dir = node_dir(10, 1 << 20);
        let seg = dir.path().join(segment_name(1));
        let mut bytes = fs::read(&seg).unwrap();
        bytes[20] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        fs::write(
            dir.path().join(super::super::identity::FILE),
            "node n2
",
        )
        .unwrap();
        let err = open(dir.path(), 1 << 20, "n2", true).unwrap_err();
        assert!(err.to_string().contains("identity is damaged"), "{err}");
        assert_eq!(fs::read(&seg).unwrap(), bytes);
        assert!(set_aside_dirs(dir.path()).is_empty());

        // Another node's directory is not healed either.
        let dir = node_dir(10, 1 << 20);
        let seg = dir.path().join(segment_name(1));
        let mut bytes = fs::read(&seg).unwrap();
        bytes[20] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        let err = open(dir.path(), 1 << 20, "n3", true).unwrap_err();
        assert!(err.to_string().contains("belongs to node 'n2'"), "{err}");
        assert_eq!(fs::read(&seg).unwrap(), bytes);
    }

    #[test]
    fn a_crash_after_the_move_but_before_the_copy_back_leaves_a_valid_shorter_log() {
        // What set_aside leaves if the process dies right after moving the
        // damaged segment: the log up to the segment before it, a learner.
        let dir = node_dir(300, 2_000);
        let firsts = segment_firsts(dir.path()).unwrap();
        let damage = Damage {
            path: dir.path().join(segment_name(firsts[1])),
            offset: 0,
            what: "test".into(),
        };
        Identity::open(dir.path(), "n2", false)
            .unwrap()
            .renew()
            .unwrap();
        set_aside(dir.path(), &damage).unwrap();
        let (log, healed) = open(dir.path(), 2_000, "n2", true).unwrap();
        assert_eq!((log.last().seq, healed.len()), (firsts[1] - 1, 0));
        assert!(Identity::open(dir.path(), "n2", false).unwrap().learner);
    }

    #[test]
    fn a_torn_last_record_is_cut_and_makes_a_learner_only_when_healing() {
        for heal in [false, true] {
            let dir = node_dir(20, 1 << 20);
            let seg = dir.path().join(segment_name(1));
            let len = fs::metadata(&seg).unwrap().len();
            // The last record's last bytes never reached the disk, or its
            // end was damaged: the two look the same.
            let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
            f.set_len(len - 3).unwrap();
            drop(f);
            let (log, healed) = open(dir.path(), 1 << 20, "n2", heal).unwrap();
            assert_eq!((log.last().seq, healed.len()), (19, 0));
            let identity = Identity::open(dir.path(), "n2", false).unwrap();
            assert_eq!(identity.learner, heal, "heal: {heal}");
        }
    }

    #[test]
    fn a_stray_file_named_like_a_segment_is_none_of_the_logs() {
        let dir = node_dir(300, 2_000);
        let firsts = segment_firsts(dir.path()).unwrap();
        for stray in [
            "150.log",
            "+101.log",
            &format!("0{}", segment_name(firsts[1])),
        ] {
            fs::write(dir.path().join(stray), b"stray").unwrap();
        }
        let (log, healed) = open(dir.path(), 2_000, "n2", true).unwrap();
        assert_eq!((log.last().seq, healed.len()), (300, 0));
        assert_eq!(segment_firsts(dir.path()).unwrap(), firsts);
        assert!(dir.path().join("150.log").exists());
        assert!(!Identity::open(dir.path(), "n2", false).unwrap().learner);
    }
}
