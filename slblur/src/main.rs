//! The `slblur` binary: the template's server around [`slblur::Slblur`].

use std::process::ExitCode;

fn main() -> ExitCode {
    slblur::detect::memory::tune_allocator();
    let about = faas_server::About {
        name: slblur::config::NAME,
        version: env!("CARGO_PKG_VERSION"),
        summary: "CenterFace face blur: POST a frame, get it back anonymized with per-stage timings",
        variables: "  SLBLUR_MODEL            CenterFace ONNX file (default: assets/centerface.onnx beside\n                          \
                    the binary if present, else models/centerface.onnx)\n  \
                    SLBLUR_ML_THREADS       threads per inference (default: all cores)\n  \
                    SLBLUR_INFERENCE_WIDTH  detection width, 0 = full resolution (default 640)\n  \
                    SLBLUR_MAX_INFERENCE_PIXELS  largest network input area (default 942080 = 1280x736)\n  \
                    SLBLUR_THRESHOLD        detection score threshold (default 0.2)\n  \
                    SLBLUR_MODE             blur | mosaic | solid | none (default blur)\n  \
                    SLBLUR_MASK             ellipse | box (default ellipse)\n  \
                    SLBLUR_MASK_SCALE       mask size around each face box (default 1.3)\n  \
                    SLBLUR_JPEG_QUALITY     JPEG output quality (default 90)\n  \
                    SLBLUR_MAX_PIXELS       largest decoded image (default 35389440)\n",
    };
    faas_server::run(about, |lookup, registry| {
        let config = slblur::Config::from_lookup(lookup)?;
        slblur::Slblur::start(config, registry).map_err(faas_server::InitError::from)
    })
}
