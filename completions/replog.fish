# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_replog_global_optspecs
    string join \n h/help V/version
end

function __fish_replog_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_replog_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_replog_using_subcommand
    set -l cmd (__fish_replog_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c replog -n "__fish_replog_needs_command" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_needs_command" -s V -l version -d 'Print version'
complete -c replog -n "__fish_replog_needs_command" -f -a "append" -d 'Append a message (or, with "-", one message per line of standard input)'
complete -c replog -n "__fish_replog_needs_command" -f -a "list" -d 'Print the messages of a node, in order'
complete -c replog -n "__fish_replog_needs_command" -f -a "get" -d 'Print the message at one sequence number'
complete -c replog -n "__fish_replog_needs_command" -f -a "health" -d 'Show the health of a node and, on the master, of every secondary. Exit 0 when every node shown is healthy, 4 when the master is read-only (appends are refused), 7 when appends are taken but some node is not healthy. With --wait, exit 0 as soon as appends are taken'
complete -c replog -n "__fish_replog_needs_command" -f -a "log" -d 'Create, list and delete the cluster\'s named logs (append, list, get and bench take --log NAME)'
complete -c replog -n "__fish_replog_needs_command" -f -a "group" -d 'List, show, set and delete consumer groups\' positions (replog list --group GROUP reads from after its group\'s position and moves it as it prints)'
complete -c replog -n "__fish_replog_needs_command" -f -a "member" -d 'See and change the cluster\'s members'
complete -c replog -n "__fish_replog_needs_command" -f -a "verify" -d 'Check that every node holds the same log: compares digests of ranges of each node\'s log and reports the first sequence number where two disagree, or that all agree up to the last entry every node holds. Exit 0 when they agree, 8 when they do not. Given one node, every node of its cluster is checked'
complete -c replog -n "__fish_replog_needs_command" -f -a "bench" -d 'Measure appends per second and their latency against a cluster: C connections to the master each keep K appends in flight; prints throughput, latency percentiles (an HDR histogram) and outcomes by kind'
complete -c replog -n "__fish_replog_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c replog -n "__fish_replog_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c replog -n "__fish_replog_using_subcommand append" -l node -d 'Node(s) to send to, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE). A secondary redirects to the master; with several nodes the master is found, followed through failovers, and an append whose outcome is unknown is retried with the same key' -r
complete -c replog -n "__fish_replog_using_subcommand append" -s w -l write-concern -d 'Write concern: voting nodes (master included) that must store the message: a number, "majority" or "all". Only an append acknowledged with a majority (or more) is never lost when a new master is elected; one acknowledged by fewer nodes may be' -r
complete -c replog -n "__fish_replog_using_subcommand append" -l timeout -d 'Stop waiting after this long (e.g. 500ms, 5s), counted from the start (connecting included). A message the master took stays in its log: exit 3 if no failover can cut it (it is on a majority, or --failover off and the master stored it), 5 if not yet (a failover may still cut it: retry with the key printed)' -r
complete -c replog -n "__fish_replog_using_subcommand append" -l key -d 'Request key: an append retried with the same key (and message) returns the original sequence number while its entry is in the log (within --dedup-window); one a failover cut is appended again' -r
complete -c replog -n "__fish_replog_using_subcommand append" -l log -d 'The log to append to or read (replog log list shows them); default: the log named default' -r
complete -c replog -n "__fish_replog_using_subcommand append" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand append" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand append" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand append" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand append" -s 0 -l null-data -d 'With "-": messages are separated by NUL bytes instead of newlines, so a message may contain newlines'
complete -c replog -n "__fish_replog_using_subcommand append" -l json -d 'Print one JSON object per message instead of sequence numbers: {"key": K, "seq": N} when appended, or {"definite": B, "error": KIND, "key": K, "reason": "...", "seq": N or null} when not, where definite is true when the outcome is settled (nothing was appended, or the message is on a majority at seq and survives any failover) and false when it may or may not be kept: retry with key K (the exit code is as without --json)'
complete -c replog -n "__fish_replog_using_subcommand append" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand list" -l node -d 'Node to read from (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers' -r
complete -c replog -n "__fish_replog_using_subcommand list" -l from -d 'First sequence number to print' -r
complete -c replog -n "__fish_replog_using_subcommand list" -l to -d 'Last sequence number to print' -r
complete -c replog -n "__fish_replog_using_subcommand list" -l max -d 'Print at most this many messages' -r
complete -c replog -n "__fish_replog_using_subcommand list" -l group -d 'Read as consumer group GROUP, from the master: start after the group\'s position in the log (replog group list shows them; a group with none is given 0 first, refused past the nodes\' --max-groups before anything is printed) and move it as each page is printed, so that a consumer killed and started again prints at most its last page again and misses nothing (but what retention deleted before it read it, skipped with a warning). Only committed messages are read (as with --committed); with --json, one object per line. One consumer per group and log at a time: if anything else moves the position meanwhile (another consumer, group set, group delete), the next commit is refused and it stops (exit 2)' -r
complete -c replog -n "__fish_replog_using_subcommand list" -l timeout -d 'Give up (exit 5) if the listing has not finished after this long, connecting included' -r
complete -c replog -n "__fish_replog_using_subcommand list" -l log -d 'The log to append to or read (replog log list shows them); default: the log named default' -r
complete -c replog -n "__fish_replog_using_subcommand list" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand list" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand list" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand list" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand list" -l json -d 'Print a JSON array of {"message": "...", "seq": N} (with --follow, one such object per line); a message that is not UTF-8 comes as "message_base64"'
complete -c replog -n "__fish_replog_using_subcommand list" -l follow -d 'Keep printing messages as they become visible, like tail -f; if the node goes away, reconnect (to it or another listed node) and resume after the last message printed'
complete -c replog -n "__fish_replog_using_subcommand list" -l committed -d 'Only messages known to be stored on a majority of nodes: these are never lost by a failover (a plain list shows everything the node holds, which after a failover may lose messages acknowledged with w below a majority). A secondary learns the mark with the master\'s next heartbeat'
complete -c replog -n "__fish_replog_using_subcommand list" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand get" -l node -d 'Node to read from (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers' -r
complete -c replog -n "__fish_replog_using_subcommand get" -l timeout -d 'Give up (exit 5) if the node has not answered after this long, connecting included' -r
complete -c replog -n "__fish_replog_using_subcommand get" -l log -d 'The log to append to or read (replog log list shows them); default: the log named default' -r
complete -c replog -n "__fish_replog_using_subcommand get" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand get" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand get" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand get" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand get" -l json -d 'Print {"message": "...", "seq": N} ("message_base64" when not UTF-8)'
complete -c replog -n "__fish_replog_using_subcommand get" -l committed -d 'Only if the message is known to be on a majority of nodes'
complete -c replog -n "__fish_replog_using_subcommand get" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand health" -l node -d 'Node to ask (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers' -r
complete -c replog -n "__fish_replog_using_subcommand health" -l wait -d 'Wait until the cluster can take appends (a master with a quorum), then print; give up after DUR if given (exit 4)' -r
complete -c replog -n "__fish_replog_using_subcommand health" -l timeout -d 'Give up (exit 5) if the node has not answered after this long, connecting included' -r
complete -c replog -n "__fish_replog_using_subcommand health" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand health" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand health" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand health" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand health" -l json -d 'Print JSON instead of a table'
complete -c replog -n "__fish_replog_using_subcommand health" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand log; and not __fish_seen_subcommand_from create list delete help" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand log; and not __fish_seen_subcommand_from create list delete help" -f -a "create" -d 'Create a log: a sequence of messages of its own, numbered from 1, on the same cluster (append and list take --log NAME). Names are 1 to 200 ASCII letters, digits, \'.\', \'_\' and \'-\' (not \'.\' or \'..\'): any other exits 2 and creates nothing; one that exists exits 1'
complete -c replog -n "__fish_replog_using_subcommand log; and not __fish_seen_subcommand_from create list delete help" -f -a "list" -d 'List the logs, default first: name, the first message held and the last visible one (0: none), the bytes of its messages the node holds, and its own retention; --json prints [{name, first, last, bytes, retention_bytes, retention_age_secs}] (null: none)'
complete -c replog -n "__fish_replog_using_subcommand log; and not __fish_seen_subcommand_from create list delete help" -f -a "delete" -d 'Delete a log: its messages are no longer listed and appends to it are refused, on every node; a log created again under its name starts again from 1. The log named default cannot be deleted (exit 2); a name with no log exits 1'
complete -c replog -n "__fish_replog_using_subcommand log; and not __fish_seen_subcommand_from create list delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -l retention-bytes -d 'Its own retention: the master deletes its oldest messages, a segment\'s share at a time, while it would still hold at least this much without them (e.g. 1GiB), on every node alike. Its last message always stays (it numbers the next)' -r
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -l retention-age -d 'Its own retention: the master deletes its messages in segments last written longer ago than this (e.g. 7d), on every node alike. Its last message always stays (it numbers the next)' -r
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -l node -d 'Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master' -r
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -l timeout -d 'How long to wait for a master (through an election) and for the answer; past it: exit 4 (no master) or 5 (sent, may or may not be made)' -r
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from list" -l node -d 'Node(s) to ask, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the first that answers is asked' -r
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from list" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from list" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from list" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from list" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from list" -l json -d 'Print a JSON array of {"name", "first", "last", "bytes", "retention_bytes", "retention_age_secs"}'
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from delete" -l node -d 'Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master' -r
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from delete" -l timeout -d 'How long to wait for a master (through an election) and for the answer; past it: exit 4 (no master) or 5 (sent, may or may not be made)' -r
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from delete" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from delete" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from delete" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from delete" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a log: a sequence of messages of its own, numbered from 1, on the same cluster (append and list take --log NAME). Names are 1 to 200 ASCII letters, digits, \'.\', \'_\' and \'-\' (not \'.\' or \'..\'): any other exits 2 and creates nothing; one that exists exits 1'
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the logs, default first: name, the first message held and the last visible one (0: none), the bytes of its messages the node holds, and its own retention; --json prints [{name, first, last, bytes, retention_bytes, retention_age_secs}] (null: none)'
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a log: its messages are no longer listed and appends to it are refused, on every node; a log created again under its name starts again from 1. The log named default cannot be deleted (exit 2); a name with no log exits 1'
complete -c replog -n "__fish_replog_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c replog -n "__fish_replog_using_subcommand group; and not __fish_seen_subcommand_from list show set delete help" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand group; and not __fish_seen_subcommand_from list show set delete help" -f -a "list" -d 'List every consumer group\'s position in each log it reads: the last message it has read, the log\'s last visible one, and the lag between them; --json prints [{group, log, position, last, lag}]. Asked of the master, which holds every position committed'
complete -c replog -n "__fish_replog_using_subcommand group; and not __fish_seen_subcommand_from list show set delete help" -f -a "show" -d 'Show one group\'s positions, as group list does; a group with no position exits 1'
complete -c replog -n "__fish_replog_using_subcommand group; and not __fish_seen_subcommand_from list show set delete help" -f -a "set" -d 'Set a group\'s position in a log: the group has read it up to message SEQ, and its next consumer starts at SEQ+1 (--to 0 reads the log again from its start). SEQ past the log\'s last message exits 2. Creates the group if it has no position yet (past the nodes\' --max-groups: exit 2)'
complete -c replog -n "__fish_replog_using_subcommand group; and not __fish_seen_subcommand_from list show set delete help" -f -a "delete" -d 'Delete a group, with its positions in every log: a consumer of that name starts again from each log\'s start. A name with no group exits 1'
complete -c replog -n "__fish_replog_using_subcommand group; and not __fish_seen_subcommand_from list show set delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from list" -l node -d 'Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the master is asked' -r
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from list" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from list" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from list" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from list" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from list" -l json -d 'Print a JSON array of {"group", "log", "position", "last", "lag"}'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from show" -l node -d 'Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the master is asked' -r
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from show" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from show" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from show" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from show" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from show" -l json -d 'Print a JSON array of {"group", "log", "position", "last", "lag"}'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -l log -d 'The log to append to or read (replog log list shows them); default: the log named default' -r
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -l to -d 'The number of the last message the group has read' -r
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -l node -d 'Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master' -r
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -l timeout -d 'How long to wait for a master (through an election) and for the answer; past it: exit 4 (no master) or 5 (sent, may or may not be made)' -r
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from delete" -l node -d 'Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master' -r
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from delete" -l timeout -d 'How long to wait for a master (through an election) and for the answer; past it: exit 4 (no master) or 5 (sent, may or may not be made)' -r
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from delete" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from delete" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from delete" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from delete" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "list" -d 'List every consumer group\'s position in each log it reads: the last message it has read, the log\'s last visible one, and the lag between them; --json prints [{group, log, position, last, lag}]. Asked of the master, which holds every position committed'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one group\'s positions, as group list does; a group with no position exits 1'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "set" -d 'Set a group\'s position in a log: the group has read it up to message SEQ, and its next consumer starts at SEQ+1 (--to 0 reads the log again from its start). SEQ past the log\'s last message exits 2. Creates the group if it has no position yet (past the nodes\' --max-groups: exit 2)'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a group, with its positions in every log: a consumer of that name starts again from each log\'s start. A name with no group exits 1'
complete -c replog -n "__fish_replog_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c replog -n "__fish_replog_using_subcommand member; and not __fish_seen_subcommand_from list add remove help" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand member; and not __fish_seen_subcommand_from list add remove help" -f -a "list" -d 'List the members as the master sees them: id, address, whether it votes ("learner": a member not yet promoted, or a voter back with an empty or healed disk that does not vote yet), status and how far behind it is; --json prints [{id, addr, voter, master, status, lag}]'
complete -c replog -n "__fish_replog_using_subcommand member; and not __fish_seen_subcommand_from list add remove help" -f -a "add" -d 'Add node ID, listening at HOST:PORT for other nodes: it joins as a learner, receives the log, and votes once the master promotes it (when it holds everything committed). Start the node with replogd --join first'
complete -c replog -n "__fish_replog_using_subcommand member; and not __fish_seen_subcommand_from list add remove help" -f -a "remove" -d 'Remove node ID: it stops counting at once, and stops taking part. The master may remove itself: it steps down once the change is committed'
complete -c replog -n "__fish_replog_using_subcommand member; and not __fish_seen_subcommand_from list add remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from list" -l node -d 'Node(s) to ask, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the master they name is asked' -r
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from list" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from list" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from list" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from list" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from list" -l json -d 'Print a JSON array of {"id", "addr", "voter", "master", "status", "lag"}'
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from add" -l node -d 'Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master' -r
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from add" -l cluster-key-file -d 'The cluster key, for a cluster started with --cluster-key-file: a change needs it' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from add" -l timeout -d 'How long to wait for a master (through an election), for a change under way to be committed before this one is taken, and for this one\'s answer; past it: exit 4 (no master), 2 (still under way) or 5 (sent, may or may not be made)' -r
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from add" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from add" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from add" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from add" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from remove" -l node -d 'Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master' -r
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from remove" -l cluster-key-file -d 'The cluster key, for a cluster started with --cluster-key-file: a change needs it' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from remove" -l timeout -d 'How long to wait for a master (through an election), for a change under way to be committed before this one is taken, and for this one\'s answer; past it: exit 4 (no master), 2 (still under way) or 5 (sent, may or may not be made)' -r
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from remove" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from remove" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from remove" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from remove" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the members as the master sees them: id, address, whether it votes ("learner": a member not yet promoted, or a voter back with an empty or healed disk that does not vote yet), status and how far behind it is; --json prints [{id, addr, voter, master, status, lag}]'
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add node ID, listening at HOST:PORT for other nodes: it joins as a learner, receives the log, and votes once the master promotes it (when it holds everything committed). Start the node with replogd --join first'
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove node ID: it stops counting at once, and stops taking part. The master may remove itself: it steps down once the change is committed'
complete -c replog -n "__fish_replog_using_subcommand member; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c replog -n "__fish_replog_using_subcommand verify" -l node -d 'The nodes to compare (comma-separated), or one node of the cluster (default 127.0.0.1:7001, or REPLOG_NODE)' -r
complete -c replog -n "__fish_replog_using_subcommand verify" -l timeout -d 'Give up (exit 5) if the nodes have not answered after this long, connecting included' -r
complete -c replog -n "__fish_replog_using_subcommand verify" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand verify" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand verify" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand verify" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand verify" -l json -d 'Print {"agree": B, "agreed_upto": N, "compared_from": N, "first_difference": N or null, "groups": [[ID...]...], "nodes": [{"id","addr","last"}...]}'
complete -c replog -n "__fish_replog_using_subcommand verify" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand bench" -l node -d 'Node(s) of the cluster (default 127.0.0.1:7001, or REPLOG_NODE); connections go to its master' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l connections -d 'Connections to the master' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l inflight -d 'Appends in flight on each connection' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l size -d 'Message size in bytes' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l count -d 'Stop after this many appends (warm-up included) instead of after --duration' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l duration -d 'Measure for this long after the warm-up' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l warmup -d 'Appends in this first period are not measured' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -s w -l write-concern -d 'Write concern of every append' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l fsync-probe -d 'Also time fdatasync of a probe file in DIR (give a directory on the data directory\'s filesystem), one fdatasync per node at once there (what a w=N append waits for when every node shares that disk), and a round trip to the master; for a serial run (--connections 1 --inflight 1), print append p50 over the sum of the first and the last' -r -F
complete -c replog -n "__fish_replog_using_subcommand bench" -l readers -d 'Also run this many followers on the master beside the writers, each reading every new committed message as `replog list --follow --committed` does; the report adds what they read per second and how long after an append\'s answer they saw it' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l log -d 'The log to append to (replog log list shows them), or several, comma-separated: connection i appends to the i-th, round the list (create them first with replog log create); default: the log named default' -r
complete -c replog -n "__fish_replog_using_subcommand bench" -l token-file -d 'File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself)' -r -F
complete -c replog -n "__fish_replog_using_subcommand bench" -l tls-ca -d 'Use TLS, verifying the node\'s certificate against this CA (PEM): for a cluster started with --tls-ca' -r -F
complete -c replog -n "__fish_replog_using_subcommand bench" -l tls-cert -d 'With --tls-ca: a client certificate (PEM) to present' -r -F
complete -c replog -n "__fish_replog_using_subcommand bench" -l tls-key -d 'With --tls-cert: its private key (PEM)' -r -F
complete -c replog -n "__fish_replog_using_subcommand bench" -l key-every-append -d 'Send a fresh request key with every append (as `replog append` does); by default benchmark appends carry none'
complete -c replog -n "__fish_replog_using_subcommand bench" -l json -d 'Print the report as JSON'
complete -c replog -n "__fish_replog_using_subcommand bench" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand completions" -s h -l help -d 'Print help'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "append" -d 'Append a message (or, with "-", one message per line of standard input)'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "list" -d 'Print the messages of a node, in order'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "get" -d 'Print the message at one sequence number'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "health" -d 'Show the health of a node and, on the master, of every secondary. Exit 0 when every node shown is healthy, 4 when the master is read-only (appends are refused), 7 when appends are taken but some node is not healthy. With --wait, exit 0 as soon as appends are taken'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "log" -d 'Create, list and delete the cluster\'s named logs (append, list, get and bench take --log NAME)'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "group" -d 'List, show, set and delete consumer groups\' positions (replog list --group GROUP reads from after its group\'s position and moves it as it prints)'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "member" -d 'See and change the cluster\'s members'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "verify" -d 'Check that every node holds the same log: compares digests of ranges of each node\'s log and reports the first sequence number where two disagree, or that all agree up to the last entry every node holds. Exit 0 when they agree, 8 when they do not. Given one node, every node of its cluster is checked'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "bench" -d 'Measure appends per second and their latency against a cluster: C connections to the master each keep K appends in flight; prints throughput, latency percentiles (an HDR histogram) and outcomes by kind'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c replog -n "__fish_replog_using_subcommand help; and not __fish_seen_subcommand_from append list get health log group member verify bench completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from log" -f -a "create" -d 'Create a log: a sequence of messages of its own, numbered from 1, on the same cluster (append and list take --log NAME). Names are 1 to 200 ASCII letters, digits, \'.\', \'_\' and \'-\' (not \'.\' or \'..\'): any other exits 2 and creates nothing; one that exists exits 1'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from log" -f -a "list" -d 'List the logs, default first: name, the first message held and the last visible one (0: none), the bytes of its messages the node holds, and its own retention; --json prints [{name, first, last, bytes, retention_bytes, retention_age_secs}] (null: none)'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from log" -f -a "delete" -d 'Delete a log: its messages are no longer listed and appends to it are refused, on every node; a log created again under its name starts again from 1. The log named default cannot be deleted (exit 2); a name with no log exits 1'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "list" -d 'List every consumer group\'s position in each log it reads: the last message it has read, the log\'s last visible one, and the lag between them; --json prints [{group, log, position, last, lag}]. Asked of the master, which holds every position committed'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "show" -d 'Show one group\'s positions, as group list does; a group with no position exits 1'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "set" -d 'Set a group\'s position in a log: the group has read it up to message SEQ, and its next consumer starts at SEQ+1 (--to 0 reads the log again from its start). SEQ past the log\'s last message exits 2. Creates the group if it has no position yet (past the nodes\' --max-groups: exit 2)'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "delete" -d 'Delete a group, with its positions in every log: a consumer of that name starts again from each log\'s start. A name with no group exits 1'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from member" -f -a "list" -d 'List the members as the master sees them: id, address, whether it votes ("learner": a member not yet promoted, or a voter back with an empty or healed disk that does not vote yet), status and how far behind it is; --json prints [{id, addr, voter, master, status, lag}]'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from member" -f -a "add" -d 'Add node ID, listening at HOST:PORT for other nodes: it joins as a learner, receives the log, and votes once the master promotes it (when it holds everything committed). Start the node with replogd --join first'
complete -c replog -n "__fish_replog_using_subcommand help; and __fish_seen_subcommand_from member" -f -a "remove" -d 'Remove node ID: it stops counting at once, and stops taking part. The master may remove itself: it steps down once the change is committed'
