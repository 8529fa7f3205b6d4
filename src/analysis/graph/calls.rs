//! Turning spans into calls: the compact half of a call kept while it waits for its
//! partner, and the [`EdgeCall`] built from a pair, from a database/messaging client span
//! alone, from an expired client span (virtual node) or from a root server span (`user`).

use crate::model::{
    ConnectionType, EdgeCall, Name, NodeKind, Peer, Resource, SpanKind, SpanRecord,
};
use std::sync::Arc;

/// Name of the node that root server spans hang under.
pub const USER_NODE: &str = "user";

/// One side of a call, reduced to what an edge needs: owned while it waits in the store.
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

/// The same side borrowed from a span or from a waiting [`Half`]: a span that meets its
/// partner at once, or completes an edge alone, is never copied (no reference count, no
/// boxed peer).
#[derive(Debug, Clone, Copy)]
pub struct HalfRef<'a> {
    pub resource: &'a Arc<Resource>,
    pub kind: SpanKind,
    pub duration_ns: Option<u64>,
    pub end_unix_nano: u64,
    pub error: bool,
    pub peer: Option<&'a Peer>,
}

impl<'a> HalfRef<'a> {
    pub fn of(span: &'a SpanRecord) -> Self {
        Self {
            resource: &span.resource,
            kind: span.kind,
            duration_ns: span.duration_ns(),
            end_unix_nano: span.end_unix_nano,
            error: span.error,
            peer: if span.kind.is_outgoing() {
                span.peer.as_ref()
            } else {
                None
            },
        }
    }

    /// The owned copy kept while the span waits for its partner.
    pub fn to_owned(self) -> Half {
        Half {
            resource: self.resource.clone(),
            kind: self.kind,
            duration_ns: self.duration_ns,
            end_unix_nano: self.end_unix_nano,
            error: self.error,
            peer: self.peer.map(|p| Box::new(p.clone())),
        }
    }

    /// Whether this client span completes an edge on its own (database, messaging).
    pub fn completes_alone(&self) -> bool {
        self.kind.is_outgoing()
            && matches!(
                self.peer.map(|p| p.kind),
                Some(NodeKind::Database | NodeKind::Messaging)
            )
    }
}

impl Half {
    pub fn view(&self) -> HalfRef<'_> {
        HalfRef {
            resource: &self.resource,
            kind: self.kind,
            duration_ns: self.duration_ns,
            end_unix_nano: self.end_unix_nano,
            error: self.error,
            peer: self.peer.as_deref(),
        }
    }
}

/// A client span paired with the server span it called.
pub fn paired(client: HalfRef<'_>, server: HalfRef<'_>, trace_id: [u8; 16]) -> EdgeCall {
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
pub fn alone(client: HalfRef<'_>, trace_id: [u8; 16]) -> Option<EdgeCall> {
    let peer = client.peer?;
    let connection_type = match peer.kind {
        NodeKind::Database => ConnectionType::Database,
        NodeKind::Messaging => ConnectionType::MessagingSystem,
        _ => return None,
    };
    Some(to_node(client, peer, connection_type, trace_id))
}

/// A client span whose server never came: the edge to the node its attributes name.
/// None when the span names no peer (counted unpaired instead).
pub fn virtual_node(client: HalfRef<'_>, trace_id: [u8; 16]) -> Option<EdgeCall> {
    let peer = client.peer?;
    Some(to_node(client, peer, ConnectionType::VirtualNode, trace_id))
}

fn to_node(
    client: HalfRef<'_>,
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
pub fn from_user(server: HalfRef<'_>, trace_id: [u8; 16]) -> EdgeCall {
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
