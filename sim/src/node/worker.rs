//! A worker node's host software: it runs the servers of the pods scheduled on it, starting and stopping them
//! as the kubelet's pod states change. It sleeps until woken, so an idle worker costs only turmoil's tick.

use std::collections::BTreeMap;

use sei_operator_core::cluster::ObjectRef;
use tokio::task::JoinHandle;

use crate::harness::state::{SharedWorld, lock};
use crate::kube::kubelet::Seid;
use crate::node::sidecar::server::{Endpoint, serve};

/// The host software of worker `index`; restarted from scratch when the worker reboots.
pub async fn run_worker(shared: SharedWorld, index: usize) -> turmoil::Result {
    let Some(wake) = lock(&shared).plane.workers.get(index).map(|w| w.wake.clone()) else { return Ok(()) };
    let mut running: BTreeMap<u16, (u64, JoinHandle<()>)> = BTreeMap::new();
    loop {
        let desired = desired_servers(&shared, index);
        running.retain(|port, (incarnation, handle)| {
            let keep = desired.get(port).is_some_and(|(_, _, wanted)| wanted == incarnation);
            if !keep {
                handle.abort();
            }
            keep
        });
        for (port, (key, endpoint, incarnation)) in desired {
            running.entry(port).or_insert_with(|| {
                (incarnation, tokio::task::spawn_local(serve(shared.clone(), key, endpoint, incarnation, port)))
            });
        }
        wake.notified().await;
    }
}

/// The servers worker `index` should run: port → (pod, endpoint, incarnation).
fn desired_servers(shared: &SharedWorld, index: usize) -> BTreeMap<u16, (ObjectRef, Endpoint, u64)> {
    let world = lock(shared);
    if !world.plane.workers.get(index).is_some_and(|w| w.up) {
        return BTreeMap::new();
    }
    let mut desired = BTreeMap::new();
    for pod in world.plane.pods.values().filter(|p| p.worker == index) {
        if let Some(sidecar) = &pod.sidecar {
            desired.insert(pod.sidecar_worker_port(), (pod.key.clone(), Endpoint::Sidecar, sidecar.incarnation));
        }
        if let Seid::Running { rpc_incarnation, .. } = &pod.seid {
            desired.insert(pod.rpc_worker_port(), (pod.key.clone(), Endpoint::Rpc, *rpc_incarnation));
        }
    }
    desired
}
