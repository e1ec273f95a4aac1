//! The production sidecar client (reqwest) against the simulator's own fake sidecar and seid RPC, served on real
//! loopback TCP: the two sides share only the wire types, so this is where a drift between them would show.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sei_operator::api::{SeiNode, SeiNodePhase};
use sei_operator::backend::{HttpSidecar, HttpSidecarConfig};
use sei_operator::cluster::ObjectRef;
use sei_operator::manifest::{Manifest, ManifestValidator};
use sei_operator::sidecar::wire::{ReadinessStatus, TaskRequest, TaskState};
use sei_operator::sidecar::{PodAddress, SEID_RPC_PORT, Sidecar};
use sei_sim::World;
use sei_sim::kube::pod::Seid;
use sei_sim::node::chain::Chain;
use sei_sim::node::registry::{Binary, ImageRegistry};
use sei_sim::node::sidecar::api;
use sei_sim::operator_host::reconcilers::SeiOperator;
use tokio::net::TcpListener;
use uuid::Uuid;

const NS: &str = "sei";

/// A world in which the standalone fixture node runs, stepped until seid serves its RPC.
fn running_node() -> World {
    let registry =
        ImageRegistry::default().with("sei:v6.3.0", Binary::new("v6.3.0")).with("seictl:v0.9.0", Binary::new("seictl"));
    let chain = Chain::new("pacific-1", 1_000);
    let mut world = World::builder(11).workers(1).chain(chain).registry(registry).build().expect("world");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/standalone-seinode.yaml"))
        .expect("fixture");
    for manifest in ManifestValidator::new().expect("schemas").admit_yaml(&text).expect("valid") {
        if let Manifest::SeiNode(node) = manifest {
            world.create(&*node).expect("created");
        }
    }
    world.start_operator(SeiOperator::default);
    world
        .run_until("explorer running", std::time::Duration::from_secs(600), |w| {
            let running =
                w.get::<SeiNode>(NS, "explorer").ok().and_then(|n| n.status?.phase) == Some(SeiNodePhase::Running);
            running && w.pod(NS, "explorer-0").is_some_and(|p| matches!(p.seid, Seid::Running { .. }))
        })
        .expect("the node runs");
    world
}

/// Serves one endpoint of the frozen world's pod on a loopback listener, answering with the simulator's API.
async fn serve(listener: TcpListener, world: &World, pod: ObjectRef, rpc: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let service = service_fn(|request: Request<hyper::body::Incoming>| {
            let pod = pod.clone();
            async move {
                let method = request.method().as_str().to_owned();
                let path = request.uri().path().to_owned();
                let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let (status, text) = world.modify(|state| {
                    let runtime = state.plane.pods.get(&pod).cloned();
                    if rpc {
                        let incarnation = match runtime.map(|p| p.seid) {
                            Some(Seid::Running { rpc_incarnation, .. }) => rpc_incarnation,
                            _ => 0,
                        };
                        api::rpc(state, &pod, incarnation, &path)
                    } else {
                        let incarnation = runtime.and_then(|p| p.sidecar).map_or(0, |s| s.incarnation);
                        api::sidecar(state, &pod, incarnation, "production-client", &method, &path, &body)
                    }
                });
                let response = Response::builder().status(status).body(Full::new(Bytes::from(text)));
                Ok::<_, Infallible>(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
            }
        });
        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
    }
}

#[test]
fn the_production_sidecar_client_speaks_the_simulated_sidecars_language() {
    let world = running_node();
    let pod = ObjectRef::new("Pod", NS, "explorer-0");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let sidecar_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let rpc_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sidecar_port = sidecar_listener.local_addr().expect("addr").port();
        let rpc_port = rpc_listener.local_addr().expect("addr").port();
        let resolve = Arc::new(move |_: &PodAddress, port: u16| {
            let local = if port == SEID_RPC_PORT { rpc_port } else { sidecar_port };
            format!("http://127.0.0.1:{local}")
        });
        let client = HttpSidecar::with_resolver(HttpSidecarConfig::default(), resolve).expect("client");
        let address = PodAddress::for_node(NS, "explorer", 7777);

        let calls = async {
            assert!(client.healthz(&address).await.expect("healthz"), "marked ready by the operator");
            assert_eq!(client.status(&address).await.expect("status"), ReadinessStatus::Ready);

            let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, b"loopback-config-validate");
            let request = TaskRequest { id: Some(id), type_: "config-validate".into(), params: None };
            assert_eq!(client.submit_task(&address, &request).await.expect("submit"), id);
            assert_eq!(client.submit_task(&address, &request).await.expect("resubmit"), id, "a known id is a no-op");
            let task = client.get_task(&address, id).await.expect("get").expect("known");
            assert_eq!((task.id, task.type_.as_str(), task.status), (id, "config-validate", TaskState::Running));
            assert_eq!(client.get_task(&address, Uuid::nil()).await.expect("get"), None, "404 is None");

            let bad = TaskRequest { id: None, type_: "reboot-the-world".into(), params: None };
            let rejected = client.submit_task(&address, &bad).await.expect_err("unknown type");
            assert!(!rejected.is_transient(), "a 400 is final: {rejected}");

            // The fixture has no snapshot source: seid block-syncs from genesis toward the tip at 1000+.
            let chain = client.chain_status(&address).await.expect("seid answers");
            assert!(chain.latest_height > 0 && chain.catching_up, "{chain:?}");
        };
        tokio::select! {
            () = serve(sidecar_listener, &world, pod.clone(), false) => unreachable!("the server never stops"),
            () = serve(rpc_listener, &world, pod.clone(), true) => unreachable!("the server never stops"),
            () = calls => {}
        }
    });
}
