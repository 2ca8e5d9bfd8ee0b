//! The function's handler: edit [`Greeter::handle`]. It runs on a worker thread with the whole
//! body in hand; the server around it does health, limits, queueing, deadlines and metrics.

use faas_server::http::StatusCode;
use faas_server::{Function, Invocation, Problem, Reply, Variable};

/// The function's name: the prefix of its variables (`HANDLER_…`) and metrics.
pub const NAME: &str = "handler";

/// `HANDLER_GREETING`.
pub const GREETING: Variable = Variable {
    name: "GREETING",
    default: "Hello",
    what: "the greeting",
};

/// The function's own variables, for `--help`.
pub const VARIABLES: &[Variable] = &[GREETING];

/// The function. Fields loaded once at start-up (models, clients, settings) go here.
pub struct Greeter {
    pub greeting: String,
}

impl Greeter {
    /// Reads the function's own variables (`HANDLER_GREETING`); runs once, before ready.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Greeter {
        Greeter {
            greeting: lookup(&GREETING.for_function(NAME))
                .unwrap_or_else(|| GREETING.default.into()),
        }
    }
}

impl Function for Greeter {
    fn handle(&self, invocation: Invocation) -> Result<Reply, Problem> {
        let name = std::str::from_utf8(&invocation.body)
            .map_err(|_| Problem::bad_request("not_utf8", "the body must be UTF-8 text"))?
            .trim();
        if name.is_empty() {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "empty_name",
                "send a name in the body",
            ));
        }
        Ok(Reply::new(
            "text/plain; charset=utf-8",
            format!("{}, {name}!\n", self.greeting),
        )
        .kind("greeting"))
    }
}
