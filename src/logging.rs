//! Logging set-up shared by every subcommand: a tracing filter from the configured level,
//! with the chatty libraries (hickory's per-request log, HTTP/2 internals) held at `warn`, to
//! stderr, coloured only on a terminal.

use std::io::IsTerminal;

/// Install the global subscriber (a second call is a no-op).
pub fn init(level: &str) {
    let filter = format!(
        "{level},hickory_server=warn,hickory_proto=warn,hickory_net=warn,h2=warn,tower=warn"
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
