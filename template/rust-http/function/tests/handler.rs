//! The handler called directly, as the server calls it.

use faas_server::http::{HeaderMap, Method};
use faas_server::{Function, Invocation};
use handler::Greeter;

fn call(body: &str) -> Result<faas_server::Reply, faas_server::Problem> {
    let greeter = Greeter::from_env(&|_| None);
    greeter.handle(Invocation::new(
        Method::POST,
        "/",
        HeaderMap::new(),
        body.to_string(),
    ))
}

#[test]
fn greets_the_name_in_the_body() {
    let reply = call("world\n").expect("a reply");
    assert_eq!(reply.body, "Hello, world!\n");
    assert_eq!(reply.kind, "greeting");
}

#[test]
fn an_empty_body_is_a_precise_error() {
    let problem = call("  ").expect_err("refused");
    assert_eq!(problem.status, 422);
    assert_eq!(problem.code, "empty_name");
}
