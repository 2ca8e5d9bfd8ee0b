//! The `slblur` binary: the template's server around [`slblur::Slblur`].

use std::process::ExitCode;

fn main() -> ExitCode {
    slblur::runtime::memory::tune_allocator();
    let about = faas_server::About {
        name: slblur::config::NAME,
        version: env!("CARGO_PKG_VERSION"),
        summary: "CenterFace face blur: POST a frame, get it back anonymized with per-stage timings",
        variables: slblur::config::var::ALL,
    };
    faas_server::run(about, |lookup, registry| {
        let config = slblur::Config::from_lookup(lookup)?;
        slblur::Slblur::start(config, registry).map_err(faas_server::InitError::from)
    })
}
