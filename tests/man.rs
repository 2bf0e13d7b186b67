//! The man pages in `man/` are generated from the same clap definitions the
//! binaries use. This test fails when they are stale; regenerate them with
//!
//! ```sh
//! REPLOG_UPDATE_MAN=1 cargo test --test man
//! ```
//!
//! The shell completions in `completions/` are kept current the same way.

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::Man;

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
ok: the message was stored on \fIw\fR nodes; its sequence number is printed.
.TP
\fB1\fR
other error; the message on standard error says what happened.
.TP
\fB2\fR
bad request, nothing appended: \fIw\fR below 1 or above the number of voters, a membership change refused, message over \-\-max\-message\-bytes, key over 256 bytes, a key already used for another message, or malformed arguments.
.TP
\fB3\fR
timed out, but settled: \-\-timeout passed (or the master shut down or stepped down) before \fIw\fR nodes stored it, and the message is stored where no failover can cut it (on a majority; with \-\-failover off, by the master) with the sequence number given on standard error: it survives any failover and will still be replicated; do not append it again. Also: retention deleted it from the master's log before \fIw\fR nodes stored it; it is on a majority and will never reach \fIw\fR.
.TP
\fB4\fR
refused, nothing appended: fewer than a majority of nodes are reachable and the master is read\-only, or no master is known (an election).
.TP
\fB5\fR
unknown outcome: no node could be reached, or the connection broke before an answer; or the wait ended (\-\-timeout, the master shutting down or stepping down) before the message was known to be on a majority, so a failover may still cut it. If the request was sent it may or may not be (or stay) appended: retry with the key printed on standard error and the same message, which waits for the same entry if it is kept and appends it again if it was cut.
.TP
\fB6\fR
unauthorized, nothing done: the cluster requires a client token and it is missing or wrong (\-\-token\-file or REPLOG_TOKEN).
.TP
\fB7\fR
degraded (\fBhealth\fR only): appends are taken, but some node is not healthy (suspected, unhealthy, connecting, refused, or in configuration mismatch: started with another \fB\-\-cluster\fR list or \fB\-\-master\fR, the difference named); the report is printed and standard error names those nodes.
.TP
\fB8\fR
diverged (\fBverify\fR only): two nodes hold different entries at the sequence number printed.
.TP
\fB130\fR
interrupted (Ctrl\-C) while an append waited: standard error gives its sequence number if the master had assigned one, and the key to retry with (the same message), which waits for the same entry if it is kept and appends it again if a failover cut it.
"#;

const REPLOG_EXTRA: &str = r#".SH "SUBCOMMAND OPTIONS"
.TP
\fBappend\fR [\-\-node ADDR[,ADDR...]] [\-\-log NAME] [\-w N|majority|all] [\-\-timeout DUR] [\-\-key KEY] [\-0] [\-\-json] MESSAGE|\-
Appends MESSAGE, or one message per line of standard input with \fB\-\fR (pipelined; sequence numbers are printed in input order). Messages are bytes, stored exactly as given; with \fB\-0\fR (\fB\-\-null\-data\fR) standard input holds NUL\-separated messages, which may contain newlines. A failed read of standard input exits 1 and says how many messages were appended before it. \fB\-w\fR defaults to 1 and counts the master; only an append acknowledged with a majority or more is sure to survive a failover. \fB\-\-node\fR defaults to 127.0.0.1:7001 (environment: \fBREPLOG_NODES\fR, or \fBREPLOG_NODE\fR); a secondary redirects to the master once. Given several nodes, the CLI finds the master, waits through an election (up to \fB\-\-timeout\fR, or as long as it takes) and retries an append whose outcome is unknown with the same key. \fB\-\-json\fR prints one object per message: {"key": K, "seq": N} when appended, or {"definite": B, "error": KIND, "key": K, "reason": "...", "seq": N or null} when not (KIND is bad_request, key_reused, timed_out, deleted, uncommitted, refused, no_master, storage, shutting_down, unauthorized, unreachable, unknown_outcome, interrupted, no_such_log, usage or other); "definite" is true when the outcome is settled (nothing was appended, or the message is on a majority at "seq" and survives any failover) and false when it may or may not be kept (retry with key K); the exit status is the same as without it. On a terminal, a single\-message append that waits shows its sequence number and the nodes it still waits for; Ctrl\-C prints the sequence number (if the master assigned one) and the key to retry with, and exits 130.
.TP
\fBlist\fR [\-\-node ADDR[,ADDR...]] [\-\-log NAME] [\-\-from SEQ | \-\-group GROUP] [\-\-to SEQ] [\-\-max N] [\-\-json] [\-\-committed] [\-\-follow | \-\-timeout DUR]
Prints the node's messages in order (of a list of nodes, the first that answers), each message's bytes followed by a newline; \fB\-\-json\fR prints an array of {"message": "...", "seq": N} (keys in that order), with "message_base64" instead of "message" for a message that is not UTF\-8; \fB\-\-follow\fR keeps printing new messages as they become visible, reconnecting and resuming after the last one printed if the node goes away (with \fB\-\-json\fR, one object per line); \fB\-\-to\fR SEQ and \fB\-\-max\fR N bound what is printed; \fB\-\-committed\fR shows only messages known to be on a majority of nodes, which no failover removes. Epoch markers (one empty entry a newly elected master may write), configuration entries (one per membership change or promotion), and entries creating logs or moving groups are never shown and take no number: a log's messages are numbered 1, 2, 3, ... without a gap. With \fB\-\-group\fR GROUP it reads as that consumer group, from the master: it starts after the group's position in the log (a group with none is given 0 first, so one past \fB\-\-max\-groups\fR exits 2 before printing), reads only committed messages, and moves the position once each page is printed, so a consumer killed and started again prints at most its last page (up to 1000 messages) again and misses nothing but what retention deleted before it read it, which is skipped with a warning (with \fB\-\-json\fR, one object per line).
.TP
\fBget\fR [\-\-node ADDR[,ADDR...]] [\-\-log NAME] [\-\-json] [\-\-committed] [\-\-timeout DUR] SEQ
Prints the message at SEQ (its bytes and a newline, or {"message": "...", "seq": N} with \fB\-\-json\fR); exit 1, saying how far the node's log goes, if there is none.
.TP
\fBhealth\fR [\-\-node ADDR] [\-\-json] [\-\-wait [DUR] | \-\-timeout DUR]
Shows the node and, on the master (or, asked of a secondary, as the master it follows sees it), every node's role, status (healthy, suspected, unhealthy, connecting while the master has not heard from it since it started, refused, or configuration mismatch, with a line saying why), the first and last sequence number it holds (asked of each node), acknowledged sequence and lag, and whether the master is read\-only. \fB\-\-wait\fR blocks until the cluster can take appends (following a secondary to the master, waiting for nodes not up yet); with DUR it gives up after that long, with exit 4 (5 if no node answered). Exit status: 0 when every node shown is healthy, 4 when the master is read\-only or no master is known, 7 when appends are taken but some node is not healthy; with \fB\-\-wait\fR, 0 as soon as appends are taken.
.TP
\fBverify\fR [\-\-node ADDR[,ADDR...]] [\-\-json] [\-\-timeout DUR]
Compares the logs of the nodes given (or, given one, of every node of its cluster) by digests of ranges, never copying entries, and prints the first sequence number where two nodes hold different entries, and which nodes hold which version, or that all agree up to the last entry every node holds. Exit 0 when they agree, 8 when they do not.
.TP
\fBmember\fR list [\-\-node ADDR[,ADDR...]] [\-\-json] | add ID=HOST:PORT | remove ID [\-\-node ADDR[,ADDR...]] [\-\-cluster\-key\-file PATH] [\-\-timeout DUR]
Lists the members as the master sees them (id, address, voter or learner, status, lag; with \fB\-\-json\fR [{id, addr, voter, master, status, lag}]; "learner" also marks a voter back with an empty or healed disk that does not vote yet); adds node ID, listening at HOST:PORT for other nodes, as a learner that the master promotes to a voter once it holds everything committed (start it with \fBreplogd \-\-join\fR); removes node ID, the master included (it steps down once the change is committed). One change at a time: another one waits for the one before to be committed, up to \fB\-\-timeout\fR (30s), then exits 2; no master within it exits 4. The answer comes once the change is on a majority of the new voters; a change whose master stepped down before committing it, or unanswered within \fB\-\-timeout\fR, exits 5 (it may or may not be made). On a cluster with a key, a change needs it (\fB\-\-cluster\-key\-file\fR, environment \fBREPLOG_CLUSTER_KEY_FILE\fR; exit 6 without).
.TP
\fBbench\fR [\-\-node ADDR[,ADDR...]] [\-\-log NAME[,NAME...]] [\-\-connections C] [\-\-inflight K] [\-\-size B] [\-\-count N | \-\-duration D] [\-\-warmup D] [\-w W] [\-\-key\-every\-append] [\-\-fsync\-probe DIR] [\-\-json]
Measures appends against the cluster's master: C connections (default 4) each keep K appends (default 64) of B bytes (default 100) in flight, for \-\-duration (default 10s) after \-\-warmup (default 2s), or for N appends. Prints appends per second, latency percentiles (p50, p90, p99, p99.9, max, from an HDR histogram) and every answer counted by outcome; a progress bar on standard error. Appends carry no request key unless \-\-key\-every\-append. Given several logs, connection i appends to the i\-th, round the list. With \-\-fsync\-probe DIR it also times fdatasync of a probe file in DIR, one fdatasync per node at once there (what a w=N append waits for when every node shares that disk) and a round trip to the master, and, for a serial run (\-\-connections 1 \-\-inflight 1), prints append p50 over the sum of the first and the last. docs/benchmarks.md reproduces its figures.
.TP
\fBlog\fR create NAME [\-\-retention\-bytes SIZE] [\-\-retention\-age DUR] | list [\-\-json] | delete NAME [\-\-node ADDR[,ADDR...]] [\-\-timeout DUR]
Creates a log (a sequence of messages numbered from 1 on its own, on the same cluster), lists the logs (\fBdefault\fR first: name, first message held, last visible, the bytes of its messages the node holds, its own retention; with \fB\-\-json\fR [{name, first, last, bytes, retention_bytes, retention_age_secs}], null for none), or deletes one (gone on every node, its disk space freed; one created again under its name starts at 1). With \fB\-\-retention\-bytes\fR and \fB\-\-retention\-age\fR the log has a retention of its own: the master deletes its oldest messages, a segment's share at a time, while it would still hold SIZE without them, and those in segments last written more than DUR ago, on every node alike, never its last message. A name is 1 to 200 ASCII letters, digits, '.', '_' and '\-', neither '.' nor '..': any other exits 2 and creates nothing; a name that exists, or (delete) one with no log, exits 1; the log named \fBdefault\fR always exists and cannot be deleted (exit 2); past the nodes' \fB\-\-max\-logs\fR exits 2. \fBappend\fR, \fBlist\fR, \fBget\fR and \fBbench\fR take \fB\-\-log NAME\fR (environment: \fBREPLOG_LOG\fR; default: the log named default); an append to a log that does not exist is refused, saying so (exit 1), and creates none.
.TP
\fBgroup\fR list [\-\-json] | show GROUP [\-\-json] | set GROUP [\-\-log NAME] \-\-to SEQ [\-\-timeout DUR] | delete GROUP [\-\-timeout DUR] [\-\-node ADDR[,ADDR...]]
Lists every consumer group's position in each log it reads, as the master holds them (group, log, position: the last message read, last: the log's last visible message, lag; with \fB\-\-json\fR [{group, log, position, last, lag}]); shows one group's (none: exit 1); sets a group's position (it goes on at SEQ+1; \fB\-\-to 0\fR reads the log again from its start; SEQ past the log's last message exits 2); deletes a group with its positions. Positions are entries of the replicated log, written by the master and answered once a majority holds them: they survive failovers and restarts. Group names follow the rules of log names (exit 2 otherwise); positions past the nodes' \fB\-\-max\-groups\fR (a group counts once per log) exit 2; showing or deleting a group with no position, or setting one in a log that does not exist, exits 1. \fBlist\fR and \fBshow\fR wait up to 30 s for a master. Setting a position takes a token that may read, deleting a group one that may append. One consumer per group and log at a time: a consumer commits only from the position it read or last committed, and stops (exit 2) if another consumer, \fBgroup set\fR or \fBgroup delete\fR moved it meanwhile, leaving it as moved.
.TP
\fBcompletions\fR bash|zsh|fish
Prints a completion script.
.SH EXAMPLES
.nf
replog append \-w 3 "hello"
printf 'a\\nb\\n' | replog append \-w majority \-
replog list \-\-node 127.0.0.1:7003 \-\-json
REPLOG_NODES=10.0.0.1:7001,10.0.0.2:7001 replog append \-w majority "follows the master"
replog list \-\-committed
replog health
replog verify
replog member add n4=10.0.0.4:7001 \-\-cluster\-key\-file /etc/replog/cluster.key
.fi
.SH "SEE ALSO"
\fBreplogd\fR(8)
"#;

const REPLOGD_EXTRA: &str = r#".SH SIGNALS
SIGTERM or SIGINT: stop accepting, answer waiting appends ("shutting down", with their sequence numbers), sync the log and exit 0.
.SH ENVIRONMENT
Every flag can be set by the environment variable shown with it, so that one \fBEnvironmentFile=\fR serves the systemd template unit \fBreplogd@.service\fR. \fBRUST_LOG\fR filters the log (default info). Under systemd (\fBNOTIFY_SOCKET\fR), replogd sends READY=1 once its listener is bound and its log open, pings the watchdog (\fBWATCHDOG_USEC\fR) while its event loop runs, and sends STOPPING=1 on shutdown; logs go to journald.
.SH "EXIT STATUS"
0 after a clean shutdown; 1 when the node cannot start (a bad value, a port in use, a damaged log it may not heal, see \fB\-\-on\-damage\fR: the message names the file and offset); 2 for a command line clap cannot parse.
.SH FILES
.TP
\fIDATA_DIR\fR/identity
the node's id, its incarnation (random, chosen at the first start on the directory, and again when a damaged log is healed) and "learner" if the log was empty then or was healed, until the node holds everything committed or is elected; a directory of another node's id is refused at start (remove it with the rest of the directory to resync a node from scratch).
.TP
\fIDATA_DIR\fR/epoch
the node's epoch and, with failover, the node it voted for in it ("EPOCH" or "EPOCH VOTE"; taking a master counts as a vote for it); written to a new file, synced and renamed before a vote is answered or a master taken.
.TP
\fIDATA_DIR\fR/rollback/EPOCH\-FIRST\-LAST.log
entries this node held that a newly elected master did not (never on a majority), saved in the log's record format before they were cut.
.TP
\fIDATA_DIR\fR/base
once retention deleted segments or the node was reset: "SEQ EPOCH" of the entry before the first one kept, then an "EPOCH FIRST" line for each epoch begun up to it; written to a new file, synced and renamed before any segment is deleted.
.TP
\fIDATA_DIR\fR/base.members
once retention or a reset removed it from the segments: the newest configuration entry at or before the base (its sequence number, then the members it records).
.TP
\fIDATA_DIR\fR/damaged/TIME\-SEQ/
what a start set aside from a damaged log (\fB\-\-on\-damage heal\fR): the damaged segment as found, every later segment, an unfinished segment.next; never removed by replogd.
.TP
\fIDATA_DIR\fR/NNNNNNNNNNNNNNNNNNNN.log
log segments, named by their first sequence number; records carry a length and a CRC32C.
.TP
\fIDATA_DIR\fR/lock
locked by the replogd that has the log open: a second one given the same data directory refuses to start.
.TP
\fIDATA_DIR\fR/segment.next
the next segment, prepared ahead; written to as soon as a segment is full, and renamed to its number once the full segment is synced. One found at start is adopted if it continues the log, removed otherwise (nothing in it was ever synced).
.SH EXAMPLES
.nf
replogd \-\-dev
replogd \-\-id 1 \-\-cluster 1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001 \-\-cluster\-key\-file /etc/replog/cluster.key \-\-data\-dir /var/lib/replog/1
replogd \-\-id 1 \-\-cluster ... \-\-failover off    # a static master
replogd \-\-id 4 \-\-join 10.0.0.1:7001 \-\-listen 10.0.0.4:7001 \-\-cluster\-key\-file /etc/replog/cluster.key \-\-data\-dir /var/lib/replog/4
systemctl enable \-\-now replogd@1
.fi
.SH "SEE ALSO"
\fBreplog\fR(1), \fBsystemd.service\fR(5)
"#;

fn render(cmd: clap::Command, section: &str, extra: &[&str]) -> String {
    let man = Man::new(cmd)
        .section(section)
        .manual("replog")
        .source(format!("replog {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    // Not clap_mangen's subcommand section: it points at replog-append(1)
    // and the like, which do not exist; SUBCOMMAND OPTIONS covers them.
    for section in extra {
        out.write_all(section.as_bytes()).unwrap();
    }
    man.render_version_section(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn check(path: &str, page: String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("REPLOG_UPDATE_MAN").is_some() {
        std::fs::write(&path, &page).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == page,
        "{} is stale: regenerate it with REPLOG_UPDATE_MAN=1 cargo test --test man",
        path.display()
    );
}

#[test]
fn replog_1_is_current() {
    let page = render(
        replog::cli::Cli::command(),
        "1",
        &[REPLOG_EXTRA, EXIT_STATUS],
    );
    for needle in ["REPLOG_NODE", "append", "EXIT STATUS", "EXAMPLES"] {
        assert!(page.contains(needle), "replog.1 lacks {needle}");
    }
    check("man/replog.1", page);
}

#[test]
fn replogd_8_is_current() {
    let page = render(replog::daemon::DaemonArgs::command(), "8", &[REPLOGD_EXTRA]);
    // Every flag with its environment variable and default.
    let cmd = replog::daemon::DaemonArgs::command();
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                page.contains(&long.replace('-', "\\-")),
                "replogd.8 lacks --{long}"
            );
        }
        if let Some(env) = arg.get_env() {
            assert!(
                page.contains(env.to_str().unwrap()),
                "replogd.8 lacks {env:?}"
            );
        }
    }
    assert!(page.contains("[default: 200ms]"));
    check("man/replogd.8", page);
}

/// The shell completions the Debian package installs, generated like
/// `replog completions SHELL` prints them.
#[test]
fn the_shell_completions_are_current() {
    use clap_complete::Shell;
    for (shell, path) in [
        (Shell::Bash, "completions/replog.bash"),
        (Shell::Zsh, "completions/_replog"),
        (Shell::Fish, "completions/replog.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut replog::cli::Cli::command(),
            "replog",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("verify"), "{path} lacks a subcommand");
        check(path, script);
    }
}
