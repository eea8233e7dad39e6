//! The baseline of the API bench: the standard tonic health service alone, on a loopback
//! port, in its own process like lqx-server. Prints `listening on http://ADDR` and serves
//! until killed.

#[tokio::main]
async fn main() {
    let (_reporter, svc) = tonic_health::server::health_reporter();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    println!("listening on http://{}", l.local_addr().expect("local address"));
    tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l))
        .await
        .expect("serve");
}
