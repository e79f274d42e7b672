//! Proxy choice from the usual environment variables, with the semantics of Python
//! `requests` (which the official tool uses): the scheme's own variable first
//! (`https_proxy`/`HTTPS_PROXY` for https, `http_proxy`/`HTTP_PROXY` for http), then
//! `all_proxy`/`ALL_PROXY`; lower case wins over upper case; `no_proxy`/`NO_PROXY` bypasses.

/// The proxy URL to use for `url`, or `None` for a direct connection.
///
/// `env` looks a variable up (empty values count as unset). `NO_PROXY` is a comma-separated
/// list of host names (a leading `.` or `*.` is optional: `example.com` matches
/// `example.com` and `a.example.com`), optionally with `:port`, or `*` for all hosts.
///
/// ```
/// use totalseg_io::weights::proxy_for_url;
/// let env = |k: &str| match k {
///     "HTTPS_PROXY" => Some("http://proxy:3128".to_string()),
///     "NO_PROXY" => Some("localhost,.internal".to_string()),
///     _ => None,
/// };
/// assert_eq!(proxy_for_url("https://github.com/x.zip", &env).as_deref(), Some("http://proxy:3128"));
/// assert_eq!(proxy_for_url("https://mirror.internal/x.zip", &env), None);
/// assert_eq!(proxy_for_url("http://github.com/x.zip", &env), None);
/// ```
pub fn proxy_for_url(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let lookup = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (host, port) = host_and_port(rest, &scheme);
    if let Some(no_proxy) = lookup("no_proxy").or_else(|| lookup("NO_PROXY")) {
        if bypasses(&no_proxy, &host, port) {
            return None;
        }
    }
    let scheme_var = format!("{scheme}_proxy");
    lookup(&scheme_var)
        .or_else(|| lookup(&scheme_var.to_ascii_uppercase()))
        .or_else(|| lookup("all_proxy"))
        .or_else(|| lookup("ALL_PROXY"))
        .map(|p| p.trim().to_string())
}

/// Host (lower case, without brackets) and port of the authority that starts `rest`.
fn host_and_port(rest: &str, scheme: &str) -> (String, Option<u16>) {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
        // IPv6 literal: [::1]:8080
        match stripped.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => (stripped, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let default_port = match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    let port = port.and_then(|p| p.parse().ok()).or(default_port);
    (host.to_ascii_lowercase(), port)
}

fn bypasses(no_proxy: &str, host: &str, port: Option<u16>) -> bool {
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.to_ascii_lowercase();
            let (entry_host, entry_port) = match entry.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, p.parse::<u16>().ok()),
                _ => (entry.as_str(), None),
            };
            if entry_port.is_some() && entry_port != port {
                return false;
            }
            let entry_host = entry_host
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_start_matches('[')
                .trim_end_matches(']');
            host == entry_host || host.ends_with(&format!(".{entry_host}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn scheme_variable_then_all_proxy() {
        let env = env_of(&[
            ("HTTP_PROXY", "http://p1:1"),
            ("ALL_PROXY", "socks5://p2:2"),
        ]);
        assert_eq!(
            proxy_for_url("http://h/x", &env).as_deref(),
            Some("http://p1:1")
        );
        assert_eq!(
            proxy_for_url("https://h/x", &env).as_deref(),
            Some("socks5://p2:2")
        );
        assert_eq!(proxy_for_url("https://h/x", &env_of(&[])), None);
    }

    #[test]
    fn lower_case_wins() {
        let env = env_of(&[
            ("https_proxy", "http://low:1"),
            ("HTTPS_PROXY", "http://up:1"),
        ]);
        assert_eq!(
            proxy_for_url("https://h/x", &env).as_deref(),
            Some("http://low:1")
        );
    }

    #[test]
    fn no_proxy_matches_domains_ports_and_star() {
        let base = [("HTTPS_PROXY", "http://p:1"), ("HTTP_PROXY", "http://p:1")];
        let with = |np: &str| {
            let mut v = base.to_vec();
            v.push(("no_proxy", np));
            env_of(&v)
        };
        assert_eq!(
            proxy_for_url("https://github.com/x", &with("github.com")),
            None
        );
        assert_eq!(
            proxy_for_url("https://api.github.com/x", &with(".github.com")),
            None
        );
        assert_eq!(
            proxy_for_url("https://api.github.com/x", &with("*.github.com")),
            None
        );
        assert!(proxy_for_url("https://notgithub.com/x", &with("github.com")).is_some());
        assert_eq!(
            proxy_for_url("http://127.0.0.1:8080/x", &with("127.0.0.1")),
            None
        );
        assert_eq!(
            proxy_for_url("http://127.0.0.1:8080/x", &with("127.0.0.1:8080")),
            None
        );
        assert!(proxy_for_url("http://127.0.0.1:8080/x", &with("127.0.0.1:9")).is_some());
        assert_eq!(proxy_for_url("http://[::1]:8080/x", &with("::1")), None);
        assert_eq!(proxy_for_url("https://anything/x", &with("a, *")), None);
        assert_eq!(
            proxy_for_url("https://user:pw@github.com:443/x", &with("github.com:443")),
            None
        );
    }
}
