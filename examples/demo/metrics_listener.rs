//! `METRICS_BIND=127.0.0.1:<port>`: the crate's metrics (see `actix_apple_music::audit`) in
//! Prometheus text, `GET /metrics`, on a listener of their own — keep it off the public one.

use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the Prometheus recorder and serves it when `METRICS_BIND` is set.
pub(crate) fn start() -> Result<(), String> {
    let bind = match std::env::var("METRICS_BIND") {
        Ok(bind) if !bind.trim().is_empty() => bind.trim().to_owned(),
        _ => return Ok(()),
    };
    let listener = std::net::TcpListener::bind(&bind)
        .map_err(|e| format!("METRICS_BIND={bind}: cannot listen there: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| format!("METRICS_BIND: {e}"))?;
    let served = handle.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(served.clone()))
            .route("/metrics", web::get().to(render))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|e| format!("METRICS_BIND={bind}: {e}"))?
    .run();
    actix_web::rt::spawn(server);
    // Histograms are kept in buckets the exporter drains now and then.
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    });
    println!("Metrics: Prometheus text on http://{local}/metrics (METRICS_BIND).");
    Ok(())
}

async fn render(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}
