//! Log lines from a plugin go to the host's log, tagged with the plugin's name.
//! Natively (in `cargo test`) they go to standard error.

use crate::bindings::log::Level;

fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::log::write(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

pub fn debug(message: &str) {
    write(Level::Debug, message)
}

pub fn info(message: &str) {
    write(Level::Info, message)
}

pub fn warn(message: &str) {
    write(Level::Warn, message)
}

pub fn error(message: &str) {
    write(Level::Error, message)
}
