//! The etcd side of `srvd announce`: one lease, kept alive, and the key present under it
//! exactly while it is wanted.
//!
//! A session connects, re-uses the lease it had (when it is still alive) or grants a new one,
//! then sends a keep-alive every TTL/3 and, after each one, checks the key (one linearizable
//! read) and puts or deletes it as needed, so a key deleted or changed behind our back is
//! restored. Any failure (etcd down, stream lost, a keep-alive unanswered within 3 s) ends the
//! session; the next one starts after a jittered backoff (0.1 s to 2 s). A lease found expired
//! (etcd was unreachable for longer than the TTL, or someone revoked it) is replaced at once
//! and the key written again. On stop the key is deleted (only if it is still ours) and the
//! lease revoked, within 3 s; if etcd cannot be reached the record expires with the lease.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
};
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::args::Announcement;
use crate::source::etcd::{EtcdConnection, EtcdError, connect_options};

/// Longest one etcd call may take.
const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest the final delete + revoke may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(3);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const KEEPALIVE_MIN: Duration = Duration::from_millis(100);

#[derive(Debug, Error)]
pub enum KeeperError {
    #[error(transparent)]
    Options(#[from] EtcdError),
    #[error("etcd: {0}")]
    Client(etcd_client::Error),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the lease expired or was revoked")]
    LeaseLost,
    #[error("the lease keep-alive stream ended")]
    StreamEnded,
    #[error("stopping")]
    Stopped,
}

/// Tell "the lease is gone" (put/revoke: NotFound; opening a keep-alive: etcd-client's
/// "lease not found") from every other failure.
fn classify(e: etcd_client::Error) -> KeeperError {
    match &e {
        etcd_client::Error::GRpcStatus(status)
            if status.code() == tonic::Code::NotFound
                && status.message().contains("lease not found") =>
        {
            KeeperError::LeaseLost
        }
        etcd_client::Error::LeaseKeepAliveError(message) if message.contains("lease not found") => {
            KeeperError::LeaseLost
        }
        _ => KeeperError::Client(e),
    }
}

/// One etcd call, bounded by [`OP_TIMEOUT`].
async fn op<T>(
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, KeeperError> {
    match tokio::time::timeout(OP_TIMEOUT, call).await {
        Ok(result) => result.map_err(classify),
        Err(_) => Err(KeeperError::Timeout(OP_TIMEOUT)),
    }
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    id: i64,
    /// TTL etcd granted (it may raise a too-small request to its minimum).
    granted: i64,
}

/// How often a lease of `granted` seconds is renewed: a third of its TTL.
fn keepalive_every(granted: i64) -> Duration {
    let ms = u64::try_from(granted.max(1))
        .unwrap_or(1)
        .saturating_mul(1000)
        / 3;
    Duration::from_millis(ms).max(KEEPALIVE_MIN)
}

/// Keeps one announcement in etcd.
pub struct Keeper {
    settings: EtcdConnection,
    key: String,
    value: String,
    ttl: i64,
    client: Option<Client>,
    lease: Option<Lease>,
    /// The key was last known present with our value (for logging transitions).
    announced: bool,
    backoff: Duration,
}

impl Keeper {
    pub fn new(announcement: &Announcement) -> Self {
        Keeper {
            settings: announcement.etcd.clone(),
            key: announcement.key.clone(),
            value: announcement.value.clone(),
            ttl: announcement.ttl,
            client: None,
            lease: None,
            announced: false,
            backoff: BACKOFF_MIN,
        }
    }

    fn next_backoff(&mut self) -> Duration {
        let current = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        current.mul_f64(rand::random_range(0.5..1.0))
    }

    /// Keep the key present while `wanted` is true (absent while false) until `stop`; then
    /// delete it and revoke the lease.
    pub async fn run(mut self, mut wanted: watch::Receiver<bool>, stop: CancellationToken) {
        loop {
            let error = tokio::select! {
                e = self.session(&mut wanted) => e,
                _ = stop.cancelled() => break,
            };
            let wait = match error {
                KeeperError::Stopped => break,
                KeeperError::LeaseLost => {
                    warn!(
                        key = %self.key,
                        "lease expired or was revoked; granting a new one and announcing again"
                    );
                    self.lease = None;
                    BACKOFF_MIN
                }
                e => {
                    self.client = None;
                    let wait = self.next_backoff();
                    warn!(error = %e, key = %self.key, "etcd unavailable; retrying in {wait:?}");
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {},
                _ = stop.cancelled() => break,
            }
        }
        self.withdraw_and_revoke().await;
    }

    async fn connect(&self) -> Result<Client, KeeperError> {
        let mut options = connect_options(&self.settings)?;
        if self.settings.user.is_some() {
            options = options.with_auto_token_refresh(true);
        }
        op(Client::connect(&self.settings.endpoints, Some(options))).await
    }

    /// One connection; returns only with the error that ended it.
    async fn session(&mut self, wanted: &mut watch::Receiver<bool>) -> KeeperError {
        match self.session_inner(wanted).await {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    async fn session_inner(
        &mut self,
        wanted: &mut watch::Receiver<bool>,
    ) -> Result<Infallible, KeeperError> {
        let mut client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let client = self.connect().await?;
                self.client = Some(client.clone());
                client
            }
        };
        let (mut keeper, mut stream, lease) = self.establish_lease(&mut client).await?;
        info!(
            key = %self.key,
            lease = %format!("{:x}", lease.id),
            ttl = lease.granted,
            "connected to etcd; lease alive"
        );
        let mut want = *wanted.borrow_and_update();
        self.reconcile(&mut client, lease.id, want).await?;
        self.backoff = BACKOFF_MIN;
        let every = keepalive_every(lease.granted);
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = wanted.changed() => {
                    if changed.is_err() {
                        return Err(KeeperError::Stopped);
                    }
                    want = *wanted.borrow_and_update();
                    self.reconcile(&mut client, lease.id, want).await?;
                }
                _ = tick.tick() => {
                    keep_alive_once(&mut keeper, &mut stream).await?;
                    self.reconcile(&mut client, lease.id, want).await?;
                }
            }
        }
    }

    /// Re-use the current lease when etcd still has it, else grant a new one; returns the
    /// keep-alive handles after one successful renewal.
    async fn establish_lease(
        &mut self,
        client: &mut Client,
    ) -> Result<(LeaseKeeper, LeaseKeepAliveStream, Lease), KeeperError> {
        for _ in 0..2 {
            let lease = match self.lease {
                Some(lease) => lease,
                None => {
                    let granted = op(client.lease_grant(self.ttl, None)).await?;
                    let lease = Lease {
                        id: granted.id(),
                        granted: granted.ttl(),
                    };
                    if lease.granted != self.ttl {
                        info!(
                            requested = self.ttl,
                            granted = lease.granted,
                            "etcd granted a different lease TTL"
                        );
                    }
                    self.lease = Some(lease);
                    lease
                }
            };
            // Opening the stream renews once and fails when etcd no longer has the lease.
            match op(client.lease_keep_alive(lease.id)).await {
                Ok((keeper, stream)) => return Ok((keeper, stream, lease)),
                Err(KeeperError::LeaseLost) => {
                    warn!(
                        key = %self.key,
                        lease = %format!("{:x}", lease.id),
                        "lease expired while etcd was unreachable; granting a new one"
                    );
                    self.lease = None;
                }
                Err(e) => return Err(e),
            }
        }
        Err(KeeperError::LeaseLost)
    }

    /// Make etcd match `want`: our value under our lease, or no key of ours.
    async fn reconcile(
        &mut self,
        client: &mut Client,
        lease: i64,
        want: bool,
    ) -> Result<(), KeeperError> {
        let current = op(client.get(self.key.as_str(), None)).await?;
        let kv = current.kvs().first();
        let ours = kv.is_some_and(|kv| kv.lease() == lease);
        let intact = ours && kv.is_some_and(|kv| kv.value() == self.value.as_bytes());
        if want && !intact {
            if let Some(kv) = kv.filter(|kv| kv.lease() != lease && kv.lease() != 0) {
                warn!(
                    key = %self.key,
                    other_lease = %format!("{:x}", kv.lease()),
                    "the key is held by another lease (another announcer with the same --id?); \
                     overwriting"
                );
            }
            let options = PutOptions::new().with_lease(lease);
            op(client.put(self.key.as_str(), self.value.as_str(), Some(options))).await?;
            if self.announced {
                warn!(key = %self.key, "the key was missing or changed in etcd; announced again");
            } else {
                info!(key = %self.key, value = %self.value, "announced");
            }
            self.announced = true;
        } else if !want && ours {
            let txn = Txn::new()
                .when([Compare::lease(self.key.as_str(), CompareOp::Equal, lease)])
                .and_then([TxnOp::delete(self.key.as_str(), None)]);
            op(client.txn(txn)).await?;
            info!(key = %self.key, "withdrawn");
            self.announced = false;
        } else if !want {
            self.announced = false;
        } else {
            debug!(key = %self.key, "announcement intact");
        }
        Ok(())
    }

    /// Delete the key (if it is still ours) and revoke the lease, within [`CLEANUP_TIMEOUT`].
    async fn withdraw_and_revoke(&mut self) {
        let Some(lease) = self.lease else {
            debug!("no lease was granted; nothing to withdraw");
            return;
        };
        let deadline = Instant::now() + CLEANUP_TIMEOUT;
        let mut last_error = None;
        for attempt in 0..2 {
            let client = if attempt == 0 {
                self.client.clone()
            } else {
                None
            };
            let result =
                tokio::time::timeout_at(deadline, self.try_withdraw(client, lease.id)).await;
            match result {
                Ok(Ok(())) => {
                    info!(
                        key = %self.key,
                        lease = %format!("{:x}", lease.id),
                        "withdrawn: key deleted and lease revoked"
                    );
                    return;
                }
                Ok(Err(e)) => last_error = Some(e.to_string()),
                Err(_) => {
                    last_error = Some(format!("no answer within {CLEANUP_TIMEOUT:?}"));
                    break;
                }
            }
        }
        warn!(
            key = %self.key,
            error = last_error.unwrap_or_default(),
            "could not withdraw; the record expires with its lease within {} s",
            lease.granted
        );
    }

    async fn try_withdraw(&self, client: Option<Client>, lease: i64) -> Result<(), KeeperError> {
        let mut client = match client {
            Some(client) => client,
            None => self.connect().await?,
        };
        let txn = Txn::new()
            .when([Compare::lease(self.key.as_str(), CompareOp::Equal, lease)])
            .and_then([TxnOp::delete(self.key.as_str(), None)]);
        op(client.txn(txn)).await?;
        match op(client.lease_revoke(lease)).await {
            Ok(_) | Err(KeeperError::LeaseLost) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Renew once and wait for etcd's answer; a TTL of 0 means the lease is gone.
async fn keep_alive_once(
    keeper: &mut LeaseKeeper,
    stream: &mut LeaseKeepAliveStream,
) -> Result<(), KeeperError> {
    op(keeper.keep_alive()).await?;
    match tokio::time::timeout(OP_TIMEOUT, stream.message()).await {
        Err(_) => Err(KeeperError::Timeout(OP_TIMEOUT)),
        Ok(Err(e)) => Err(classify(e)),
        Ok(Ok(None)) => Err(KeeperError::StreamEnded),
        Ok(Ok(Some(response))) if response.ttl() <= 0 => Err(KeeperError::LeaseLost),
        Ok(Ok(Some(_))) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_is_a_third_of_the_ttl() {
        assert_eq!(keepalive_every(3), Duration::from_secs(1));
        assert_eq!(keepalive_every(5), Duration::from_millis(1666));
        assert_eq!(keepalive_every(0), Duration::from_millis(333));
    }
}
