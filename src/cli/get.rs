//! `replog get`: one entry by its sequence number.


use crate::client::{ClientError, ConnectOptions};

use super::common::*;

/// Prints the message at `seq`, or says why there is none.
pub(super) async fn get(
    nodes: &[String],
    seq: u64,
    (json, committed): (bool, bool),
    conn: &ConnectOptions,
) -> Result<(), ClientError> {
    let client = connect_any(nodes, conn).await?;
    let (entries, visible) = client.list_entries(seq, 1, false, committed).await?;
    let Some((_, message)) = entries.into_iter().find(|(s, _)| *s == seq) else {
        let what = if committed { "committed" } else { "stored" };
        let first = client.welcome().first;
        let why = if seq != 0 && seq < first {
            format!(
                "retention deleted the entries before {first} on {} (--retention-bytes, --retention-age)",
                client.addr()
            )
        } else if seq == 0 || seq <= visible {
            format!("{seq} holds no message (sequence numbers start at 1, and an epoch marker holds one without a message)")
        } else {
            format!("{} has {what} only up to {visible}", client.addr())
        };
        return Err(ClientError::NotFound {
            what: format!("no message at sequence number {seq}: {why}"),
        });
    };
    let text = if json {
        format!("{}\n", entry_json(seq, &message))
    } else {
        let mut raw = message.to_vec();
        raw.push(b'\n');
        return emit(&mut std::io::stdout().lock(), raw, || {
            "the message was read".into()
        })
        .map(|_| ());
    };
    emit(&mut std::io::stdout().lock(), text, || {
        "the message was read".into()
    })
    .map(|_| ())
}
