//! What a node that is not the master does with an append, a consumer
//! group's change or a health question sent to its HTTP port: it asks the master itself, as a client of
//! the binary protocol with the node's own client token and TLS, so that a
//! plain `curl` needs no redirect handling. One connection to the master is
//! kept and shared by every request (the protocol multiplexes them), and
//! made again when the master changes or the connection breaks.

use tokio::sync::Mutex;

use crate::client::{Client, ClientError, ConnectOptions};
use crate::entry::Seq;
use crate::wire::{AppendError, AppendItem, GroupChangeRequest, HealthReport};

/// How long a connection to the master may take to open.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Most connections to the master kept for named logs (each connection is
/// for one log); past it they are made again as needed.
const MAX_LOG_CONNECTIONS: usize = 16;

/// The connection to the master, made when first needed; and one for each
/// named log appended to lately.
pub(crate) struct Forwarder {
    opts: ConnectOptions,
    master: Mutex<Option<Client>>,
    logs: Mutex<std::collections::HashMap<String, Client>>,
}

impl Forwarder {
    /// Connects with the node's client token, and its TLS if it has one.
    pub(crate) fn new(cfg: &super::super::config::NodeConfig) -> Forwarder {
        Forwarder {
            opts: ConnectOptions {
                token: cfg.client_token.clone(),
                tls: cfg.tls.as_ref().map(|t| t.connector.clone()),
                cluster_key: None,
                log: None,
            },
            master: Mutex::new(None),
            logs: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// A connection to `addr` for the named log `log`: the one kept if it
    /// is there and open.
    async fn client_for(&self, addr: &str, log: &str) -> Result<Client, ClientError> {
        let mut kept = self.logs.lock().await;
        if let Some(c) = kept.get(log).filter(|c| c.addr() == addr && !c.is_closed()) {
            return Ok(c.clone());
        }
        let opts = ConnectOptions {
            log: Some(log.to_string()),
            ..self.opts.clone()
        };
        let client =
            match tokio::time::timeout(CONNECT_TIMEOUT, Client::connect_with(addr, &opts)).await {
                Ok(connected) => connected?,
                Err(_) => {
                    return Err(ClientError::Unreachable {
                        addr: addr.into(),
                        reason: format!("no welcome within {CONNECT_TIMEOUT:?}"),
                    })
                }
            };
        if kept.len() >= MAX_LOG_CONNECTIONS {
            kept.clear();
        }
        kept.insert(log.to_string(), client.clone());
        Ok(client)
    }

    /// A connection to `addr`: the one kept if it is there and open.
    async fn client(&self, addr: &str) -> Result<Client, ClientError> {
        let mut kept = self.master.lock().await;
        if let Some(c) = kept.as_ref().filter(|c| c.addr() == addr && !c.is_closed()) {
            return Ok(c.clone());
        }
        let connecting = Client::connect_with(addr, &self.opts);
        let client = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(ClientError::Unreachable {
                    addr: addr.into(),
                    reason: format!("no welcome within {CONNECT_TIMEOUT:?}"),
                })
            }
        };
        *kept = Some(client.clone());
        Ok(client)
    }

    /// Sends `item` to the master at `addr`, and once more, with the same
    /// key, to the master that one names if it is no longer the master.
    pub(crate) async fn append(
        &self,
        addr: &str,
        item: AppendItem,
        log: Option<&str>,
    ) -> Result<Seq, ClientError> {
        let mut addr = addr.to_string();
        let mut tries = 2;
        loop {
            let client = match log {
                Some(log) => self.client_for(&addr, log).await?,
                None => self.client(&addr).await?,
            };
            let sent = client
                .append_bytes(
                    item.message.clone(),
                    item.key.clone(),
                    item.w,
                    item.timeout_ms.map(std::time::Duration::from_millis),
                )
                .await;
            tries -= 1;
            match sent {
                Err(ClientError::Append(AppendError::NotMaster { master_addr }))
                    if tries > 0 && !master_addr.is_empty() && master_addr != addr =>
                {
                    addr = master_addr;
                }
                other => return other,
            }
        }
    }

    /// Sends a consumer group's request to the master at `addr`, and once
    /// more to the master that one names if it is no longer the master
    /// (setting a position twice is the same as once).
    pub(crate) async fn change_groups(
        &self,
        addr: &str,
        change: GroupChangeRequest,
    ) -> Result<Seq, ClientError> {
        let mut addr = addr.to_string();
        let mut tries = 2;
        loop {
            let sent = self
                .client(&addr)
                .await?
                .change_groups(change.clone())
                .await;
            tries -= 1;
            match sent {
                Err(ClientError::Append(AppendError::NotMaster { master_addr }))
                    if tries > 0 && !master_addr.is_empty() && master_addr != addr =>
                {
                    addr = master_addr;
                }
                other => return other,
            }
        }
    }

    /// The health report of the master at `addr`.
    pub(crate) async fn health(&self, addr: &str) -> Result<HealthReport, ClientError> {
        self.client(addr).await?.health().await
    }
}
