//! The fake sidecar (seictl) and seid RPC of each pod: the task table and process memory as data ([`table`]), how the
//! process runs tasks ([`process`]), the HTTP API computed
//! from it with the shared wire types ([`api`]), the hyper servers on the worker hosts ([`server`]), and the
//! operator's client ([`client`]).

pub mod api;
pub mod client;
pub mod process;
pub mod server;
pub mod table;
