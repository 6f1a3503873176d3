//! The `log` crate's logger: each record becomes one `proxy_log` line in Envoy's `wasm` logger.
//!
//! Records below `log::max_level()` are dropped inside the VM, unformatted; the root context
//! follows the level of Envoy's `wasm` logger (`Host::follow_log_level`), so debug lines cost
//! nothing unless Envoy would print them.

use crate::proxy::hostio;
use alloc::{format, string::ToString};
use log::{Level, LevelFilter, Log, Metadata, Record};

struct EnvoyLog;

static LOGGER: EnvoyLog = EnvoyLog;

impl Log for EnvoyLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Trace => 0,
            Level::Debug => 1,
            Level::Info => 2,
            Level::Warn => 3,
            Level::Error => 4,
        };
        match record.args().as_str() {
            Some(text) => hostio::log(level, text),
            None => hostio::log(level, &record.args().to_string()),
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (everything passes until the root reads Envoy's level).
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Trace);
    }
}

/// A panic (the plugin has none: `src/lib.rs` denies the panicking constructs) is logged as
/// critical, then the VM traps and Envoy fails the plugin instead of running on broken state.
#[panic_handler]
fn on_panic(panic: &::core::panic::PanicInfo) -> ! {
    hostio::log(5, &format!("easy-jwt: panic: {panic}"));
    ::core::arch::wasm32::unreachable()
}
