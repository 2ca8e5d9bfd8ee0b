//! The function's binary: the template's server around [`handler::Greeter`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let about = faas_server::About {
        name: handler::NAME,
        version: env!("CARGO_PKG_VERSION"),
        summary: "greets whoever is named in the body",
        variables: handler::VARIABLES,
    };
    faas_server::run(about, |lookup, _metrics| {
        Ok::<_, std::convert::Infallible>(handler::Greeter::from_env(lookup))
    })
}
