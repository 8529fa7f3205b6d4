//! Turning spans into calls: the compact half of a call kept while it waits for its
//! partner, and the [`EdgeCall`] built from a pair, from a database/messaging client span
//! alone, from an expired client span (virtual node) or from a root server span (`user`).

use crate::model::{
    ConnectionType, EdgeCall, Name, NodeKind, Peer, Resource, SpanKind, SpanRecord,
};
use std::sync::Arc;

/// Name of the node that root server spans hang under.
pub const USER_NODE: &str = "user";

/// One side of a call, reduced to what an edge needs.
#[derive(Debug, Clone)]
pub struct Half {
    pub resource: Arc<Resource>,
    pub kind: SpanKind,
    pub duration_ns: Option<u64>,
    pub end_unix_nano: u64,
    pub error: bool,
    /// Only kept for client/producer spans (virtual-node naming).
    pub peer: Option<Box<Peer>>,
}

impl Half {
    pub fn of(span: &SpanRecord) -> Self {
        Self {
            resource: span.resource.clone(),
            kind: span.kind,
            duration_ns: span.duration_ns(),
            end_unix_nano: span.end_unix_nano,
            error: span.error,
            peer: if span.kind.is_outgoing() {
                span.peer.clone().map(Box::new)
            } else {
                None
            },
        }
    }

    /// Whether this client span completes an edge on its own (database, messaging).
    pub fn completes_alone(&self) -> bool {
        self.kind.is_outgoing()
            && matches!(
                self.peer.as_deref().map(|p| p.kind),
                Some(NodeKind::Database | NodeKind::Messaging)
            )
    }
}

/// A client span paired with the server span it called.
pub fn paired(client: &Half, server: &Half, trace_id: [u8; 16]) -> EdgeCall {
    let messaging =
        matches!(client.kind, SpanKind::Producer) || matches!(server.kind, SpanKind::Consumer);
    EdgeCall {
        environment: client.resource.environment.clone(),
        caller: client.resource.service.clone(),
        caller_version: client.resource.version.clone(),
        callee: server.resource.service.clone(),
        callee_version: server.resource.version.clone(),
        callee_kind: NodeKind::Service,
        connection_type: if messaging {
            ConnectionType::MessagingSystem
        } else {
            ConnectionType::Direct
        },
        client_ns: client.duration_ns,
        server_ns: server.duration_ns,
        failed: client.error || server.error,
        trace_id,
        time_unix_nano: client.end_unix_nano,
    }
}

/// A database or messaging client span: the edge to its system, completed at once.
pub fn alone(client: &Half, trace_id: [u8; 16]) -> Option<EdgeCall> {
    let peer = client.peer.as_deref()?;
    let connection_type = match peer.kind {
        NodeKind::Database => ConnectionType::Database,
        NodeKind::Messaging => ConnectionType::MessagingSystem,
        _ => return None,
    };
    Some(to_node(client, peer, connection_type, trace_id))
}

/// A client span whose server never came: the edge to the node its attributes name.
/// None when the span names no peer (counted unpaired instead).
pub fn virtual_node(client: &Half, trace_id: [u8; 16]) -> Option<EdgeCall> {
    let peer = client.peer.as_deref()?;
    Some(to_node(client, peer, ConnectionType::VirtualNode, trace_id))
}

fn to_node(
    client: &Half,
    peer: &Peer,
    connection_type: ConnectionType,
    trace_id: [u8; 16],
) -> EdgeCall {
    EdgeCall {
        environment: client.resource.environment.clone(),
        caller: client.resource.service.clone(),
        caller_version: client.resource.version.clone(),
        callee: peer.name.clone(),
        callee_version: Name::default(),
        callee_kind: peer.kind,
        connection_type,
        client_ns: client.duration_ns,
        server_ns: None,
        failed: client.error,
        trace_id,
        time_unix_nano: client.end_unix_nano,
    }
}

/// A root server span: a call from the `user` node.
pub fn from_user(server: &Half, trace_id: [u8; 16]) -> EdgeCall {
    EdgeCall {
        environment: server.resource.environment.clone(),
        caller: Name::new_static(USER_NODE),
        caller_version: Name::default(),
        callee: server.resource.service.clone(),
        callee_version: server.resource.version.clone(),
        callee_kind: NodeKind::Service,
        connection_type: ConnectionType::VirtualNode,
        client_ns: None,
        server_ns: server.duration_ns,
        failed: server.error,
        trace_id,
        time_unix_nano: server.end_unix_nano,
    }
}
