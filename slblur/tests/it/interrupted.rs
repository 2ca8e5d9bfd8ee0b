//! The pipeline asks between its stages whether anybody still waits (the server's
//! `Context::interrupted`), and stops with the server's answer as soon as nobody does.

use crate::support;

use std::cell::Cell;

use faas_server::Problem;
use slblur::detect::Detector;
use slblur::pipeline::{FrameError, Input, process_until};

#[test]
fn work_stops_at_the_first_stage_boundary_after_an_interruption() {
    let detector = Detector::load(&support::model_path(), 2).expect("model");
    let options = support::test_config().frame_options();
    let jpeg = support::fixture("group_1280x720.jpg");
    for stop_at in 1..=3 {
        let asked = Cell::new(0);
        let interrupted = || {
            asked.set(asked.get() + 1);
            (asked.get() >= stop_at).then(Problem::abandoned)
        };
        let result = process_until(
            &detector,
            Input::raw(&jpeg),
            &options,
            u64::MAX,
            &interrupted,
        );
        match result {
            Err(FrameError::Interrupted(p)) => assert_eq!(p.status.as_u16(), 499),
            other => panic!("stop at check {stop_at}: {other:?}"),
        }
        assert_eq!(asked.get(), stop_at, "no stage ran after the interruption");
    }
    let asked = Cell::new(0);
    let never = || {
        asked.set(asked.get() + 1);
        None
    };
    let done =
        process_until(&detector, Input::raw(&jpeg), &options, u64::MAX, &never).expect("processed");
    assert_eq!(done.faces.len(), 3);
    assert_eq!(
        asked.get(),
        3,
        "asked after decode, detection and anonymization"
    );
}
