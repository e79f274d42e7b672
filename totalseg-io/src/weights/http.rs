//! HTTP client settings: `ureq` 3 over rustls (no OpenSSL), timeouts, retry policy, proxy.

use std::time::Duration;

use super::error::DownloadError;
use super::proxy::proxy_for_url;

/// Which proxy to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxySetting {
    /// From `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` (and lower case), see
    /// [`proxy_for_url`]. Supported proxy schemes: `http`, `https`, `socks4`, `socks5`.
    #[default]
    FromEnv,
    /// Always connect directly.
    Direct,
    /// Always use this proxy URL.
    Url(String),
}

/// Timeouts, retries and proxy of the downloader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Limit for establishing a connection (DNS excluded).
    pub connect_timeout: Duration,
    /// Limit for each read from the connection: a stalled transfer fails after this long.
    pub read_timeout: Duration,
    /// Attempts in a row that may fail without making progress before giving up.
    pub max_attempts: u32,
    /// Upper bound on all attempts of one download, progress or not.
    pub max_total_attempts: u32,
    /// Delay before the first retry; doubled after each failure without progress.
    pub initial_backoff: Duration,
    /// Ceiling of the delay.
    pub max_backoff: Duration,
    /// Proxy choice.
    pub proxy: ProxySetting,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            max_attempts: 5,
            max_total_attempts: 50,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            proxy: ProxySetting::FromEnv,
            user_agent: concat!("totalsegmentator-rs/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl HttpOptions {
    /// The delay before retry number `failures` (1-based count of failures in a row).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The proxy URL for `url` under this setting.
    pub fn proxy_for(&self, url: &str) -> Option<String> {
        match &self.proxy {
            ProxySetting::FromEnv => proxy_for_url(url, &|name| std::env::var(name).ok()),
            ProxySetting::Direct => None,
            ProxySetting::Url(p) => Some(p.clone()),
        }
    }

    /// An agent for requests to `url`: statuses are returned (not errors), gzip is not
    /// requested (byte offsets must be those of the file for `Range` to work).
    pub(crate) fn agent_for(&self, url: &str) -> Result<ureq::Agent, DownloadError> {
        let proxy = match self.proxy_for(url) {
            Some(p) => Some(
                ureq::Proxy::new(&p)
                    .map_err(|e| DownloadError::Request(format!("proxy {p:?}: {e}")))?,
            ),
            None => None,
        };
        let config = ureq::Agent::config_builder()
            .proxy(proxy)
            .http_status_as_error(false)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .user_agent(self.user_agent.as_str())
            .build();
        Ok(config.into())
    }
}

/// Whether a transport error is worth retrying, and how to describe it.
pub(crate) enum Failure {
    /// Connect errors, timeouts, broken connections: retry.
    Transient { timeout: bool, detail: String },
    /// Bad URL, TLS/certificate failures, proxy syntax: do not retry.
    Fatal(String),
}

pub(crate) fn classify(error: &ureq::Error) -> Failure {
    use ureq::Error as E;
    let detail = error.to_string();
    match error {
        E::Timeout(_) => Failure::Transient {
            timeout: true,
            detail,
        },
        E::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Failure::Transient {
            timeout: true,
            detail,
        },
        E::Io(_)
        | E::HostNotFound
        | E::ConnectionFailed
        | E::Protocol(_)
        | E::ConnectProxyFailed(_)
        | E::BodyStalled => Failure::Transient {
            timeout: false,
            detail,
        },
        _ => Failure::Fatal(detail),
    }
}

/// Whether an HTTP status is worth retrying.
pub(crate) fn status_is_transient(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let o = HttpOptions {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..HttpOptions::default()
        };
        assert_eq!(o.backoff(1), Duration::from_millis(100));
        assert_eq!(o.backoff(2), Duration::from_millis(200));
        assert_eq!(o.backoff(3), Duration::from_millis(400));
        assert_eq!(o.backoff(4), Duration::from_millis(500));
        assert_eq!(o.backoff(60), Duration::from_millis(500));
    }

    #[test]
    fn transient_statuses() {
        assert!(status_is_transient(503));
        assert!(status_is_transient(429));
        assert!(!status_is_transient(404));
        assert!(!status_is_transient(403));
    }
}
