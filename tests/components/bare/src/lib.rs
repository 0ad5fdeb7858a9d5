//! The smallest useful `wasi:http@0.3.0` service: answers `ok`.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

wasip3::http::service::export!(Bare);

struct Bare;

impl wasip3::exports::http::handler::Guest for Bare {
    async fn handle(_request: Request) -> Result<Response, ErrorCode> {
        let (mut body_tx, body_rx) = wit_stream::new();
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
        drop(trailers_tx);
        wit_bindgen::spawn(async move {
            let _unwritten = body_tx.write_all(b"ok".to_vec()).await;
        });
        Ok(response)
    }
}
