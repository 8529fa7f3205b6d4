//! The attribute keys normalization reads (old and new semantic-convention names), and the
//! borrowed views the decoders fill before the rules in `normalize` run. Both the wire
//! decoder and the prost-based paths fill the same views, so there is one set of rules.

/// An attribute value as far as normalization cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Val<'a> {
    Str(&'a [u8]),
    Int(i64),
    /// Bool, double, array, map, bytes or empty: never used for keying.
    Other,
}

impl<'a> Val<'a> {
    /// The string payload, when the value is a string.
    pub fn str(self) -> Option<&'a [u8]> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer: int values, or strings holding a decimal integer.
    pub fn int(self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(i),
            Val::Str(s) => std::str::from_utf8(s).ok()?.trim().parse().ok(),
            Val::Other => None,
        }
    }
}

/// Resource attributes normalization reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceKey {
    EnvironmentName,
    Environment,
    ServiceName,
    ServiceVersion,
    InstanceId,
    PodName,
    K8sDeployment,
}

impl ResourceKey {
    #[inline]
    pub fn parse(key: &[u8]) -> Option<Self> {
        Some(match key {
            b"deployment.environment.name" => Self::EnvironmentName,
            b"deployment.environment" => Self::Environment,
            b"service.name" => Self::ServiceName,
            b"service.version" => Self::ServiceVersion,
            b"service.instance.id" => Self::InstanceId,
            b"k8s.pod.name" => Self::PodName,
            b"k8s.deployment.name" => Self::K8sDeployment,
            _ => return None,
        })
    }
}

/// Borrowed resource attributes (string values only; last occurrence wins).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ResourceAttrs<'a> {
    pub environment_name: Option<&'a [u8]>,
    pub environment: Option<&'a [u8]>,
    pub service: Option<&'a [u8]>,
    pub version: Option<&'a [u8]>,
    pub instance_id: Option<&'a [u8]>,
    pub pod_name: Option<&'a [u8]>,
    pub k8s_deployment: Option<&'a [u8]>,
}

impl<'a> ResourceAttrs<'a> {
    /// Records one attribute; non-string values clear nothing and are ignored.
    pub fn set(&mut self, key: ResourceKey, value: Val<'a>) {
        let Some(s) = value.str() else { return };
        let slot = match key {
            ResourceKey::EnvironmentName => &mut self.environment_name,
            ResourceKey::Environment => &mut self.environment,
            ResourceKey::ServiceName => &mut self.service,
            ResourceKey::ServiceVersion => &mut self.version,
            ResourceKey::InstanceId => &mut self.instance_id,
            ResourceKey::PodName => &mut self.pod_name,
            ResourceKey::K8sDeployment => &mut self.k8s_deployment,
        };
        *slot = Some(s);
    }
}

/// Span (and metric point) attributes normalization reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKey {
    HttpRoute,
    HttpRequestMethod,
    HttpMethod,
    HttpResponseStatusCode,
    HttpStatusCode,
    RpcService,
    RpcMethod,
    RpcGrpcStatusCode,
    RpcResponseStatusCode,
    ErrorType,
    ServicePeerName,
    PeerService,
    DbSystemName,
    DbSystem,
    DbNamespace,
    DbName,
    ServerAddress,
    NetPeerName,
    MessagingSystem,
    MessagingDestinationName,
    MessagingDestination,
}

impl SpanKey {
    /// Matches a key. Dispatches on the first byte so unrelated keys cost one compare.
    #[inline]
    pub fn parse(key: &[u8]) -> Option<Self> {
        match key.first()? {
            b'h' => Self::parse_http(key),
            b'r' => Self::parse_rpc(key),
            b'd' => Self::parse_db(key),
            b'm' => Self::parse_messaging(key),
            b's' | b'p' | b'n' | b'e' => Self::parse_other(key),
            _ => None,
        }
    }

    fn parse_http(key: &[u8]) -> Option<Self> {
        Some(match key {
            b"http.route" => Self::HttpRoute,
            b"http.request.method" => Self::HttpRequestMethod,
            b"http.method" => Self::HttpMethod,
            b"http.response.status_code" => Self::HttpResponseStatusCode,
            b"http.status_code" => Self::HttpStatusCode,
            _ => return None,
        })
    }

    fn parse_rpc(key: &[u8]) -> Option<Self> {
        Some(match key {
            b"rpc.service" => Self::RpcService,
            b"rpc.method" => Self::RpcMethod,
            b"rpc.grpc.status_code" => Self::RpcGrpcStatusCode,
            b"rpc.response.status_code" => Self::RpcResponseStatusCode,
            _ => return None,
        })
    }

    fn parse_db(key: &[u8]) -> Option<Self> {
        Some(match key {
            b"db.system.name" => Self::DbSystemName,
            b"db.system" => Self::DbSystem,
            b"db.namespace" => Self::DbNamespace,
            b"db.name" => Self::DbName,
            _ => return None,
        })
    }

    fn parse_messaging(key: &[u8]) -> Option<Self> {
        Some(match key {
            b"messaging.system" => Self::MessagingSystem,
            b"messaging.destination.name" => Self::MessagingDestinationName,
            b"messaging.destination" => Self::MessagingDestination,
            _ => return None,
        })
    }

    fn parse_other(key: &[u8]) -> Option<Self> {
        Some(match key {
            b"service.peer.name" => Self::ServicePeerName,
            b"peer.service" => Self::PeerService,
            b"server.address" => Self::ServerAddress,
            b"net.peer.name" => Self::NetPeerName,
            b"error.type" => Self::ErrorType,
            _ => return None,
        })
    }
}

/// Borrowed span attributes (last occurrence wins).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SpanAttrs<'a> {
    pub http_route: Option<&'a [u8]>,
    pub http_request_method: Option<&'a [u8]>,
    pub http_method: Option<&'a [u8]>,
    pub http_response_status_code: Option<i64>,
    pub http_status_code: Option<i64>,
    pub rpc_service: Option<&'a [u8]>,
    pub rpc_method: Option<&'a [u8]>,
    pub rpc_grpc_status_code: Option<i64>,
    pub rpc_response_status_code: Option<Val<'a>>,
    pub error_type: Option<&'a [u8]>,
    pub service_peer_name: Option<&'a [u8]>,
    pub peer_service: Option<&'a [u8]>,
    pub db_system_name: Option<&'a [u8]>,
    pub db_system: Option<&'a [u8]>,
    pub db_namespace: Option<&'a [u8]>,
    pub db_name: Option<&'a [u8]>,
    pub server_address: Option<&'a [u8]>,
    pub net_peer_name: Option<&'a [u8]>,
    pub messaging_system: Option<&'a [u8]>,
    pub messaging_destination_name: Option<&'a [u8]>,
    pub messaging_destination: Option<&'a [u8]>,
}

impl<'a> SpanAttrs<'a> {
    /// Records one attribute. String keys take string values only; status codes take ints
    /// or decimal strings. A value of the wrong type leaves the slot unchanged.
    pub fn set(&mut self, key: SpanKey, value: Val<'a>) {
        use SpanKey as K;
        match key {
            K::HttpResponseStatusCode => set_opt(&mut self.http_response_status_code, value.int()),
            K::HttpStatusCode => set_opt(&mut self.http_status_code, value.int()),
            K::RpcGrpcStatusCode => set_opt(&mut self.rpc_grpc_status_code, value.int()),
            K::RpcResponseStatusCode => {
                if value != Val::Other {
                    self.rpc_response_status_code = Some(value);
                }
            }
            _ => {
                if let Some(s) = value.str() {
                    *self.str_slot(key) = Some(s);
                }
            }
        }
    }

    fn str_slot(&mut self, key: SpanKey) -> &mut Option<&'a [u8]> {
        use SpanKey as K;
        match key {
            K::HttpRoute => &mut self.http_route,
            K::HttpRequestMethod => &mut self.http_request_method,
            K::HttpMethod => &mut self.http_method,
            K::RpcService => &mut self.rpc_service,
            K::RpcMethod => &mut self.rpc_method,
            K::ErrorType => &mut self.error_type,
            K::ServicePeerName => &mut self.service_peer_name,
            K::PeerService => &mut self.peer_service,
            K::DbSystemName => &mut self.db_system_name,
            K::DbSystem => &mut self.db_system,
            K::DbNamespace => &mut self.db_namespace,
            K::DbName => &mut self.db_name,
            K::ServerAddress => &mut self.server_address,
            K::NetPeerName => &mut self.net_peer_name,
            K::MessagingSystem => &mut self.messaging_system,
            K::MessagingDestinationName => &mut self.messaging_destination_name,
            // Integer-valued keys are handled in `set`; this arm is the old destination name.
            _ => &mut self.messaging_destination,
        }
    }

    /// HTTP status code, new name first.
    pub fn http_status(&self) -> Option<i64> {
        self.http_response_status_code.or(self.http_status_code)
    }

    /// HTTP method, new name first.
    pub fn method(&self) -> Option<&'a [u8]> {
        self.http_request_method.or(self.http_method)
    }
}

fn set_opt(slot: &mut Option<i64>, v: Option<i64>) {
    if v.is_some() {
        *slot = v;
    }
}

/// Converts a prost `AnyValue` into a [`Val`] (used by the metric path and the reference
/// decoder in tests).
pub(crate) fn val_of(v: &opentelemetry_proto::tonic::common::v1::AnyValue) -> Val<'_> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match &v.value {
        Some(Value::StringValue(s)) => Val::Str(s.as_bytes()),
        Some(Value::IntValue(i)) => Val::Int(*i),
        _ => Val::Other,
    }
}

/// Fills a [`SpanAttrs`] from prost key-values.
pub(crate) fn span_attrs_of(
    kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> SpanAttrs<'_> {
    let mut attrs = SpanAttrs::default();
    for kv in kvs {
        if let (Some(key), Some(v)) = (SpanKey::parse(kv.key.as_bytes()), kv.value.as_ref()) {
            attrs.set(key, val_of(v));
        }
    }
    attrs
}

/// Fills a [`ResourceAttrs`] from prost key-values.
pub(crate) fn resource_attrs_of(
    kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> ResourceAttrs<'_> {
    let mut attrs = ResourceAttrs::default();
    for kv in kvs {
        if let (Some(key), Some(v)) = (ResourceKey::parse(kv.key.as_bytes()), kv.value.as_ref()) {
            attrs.set(key, val_of(v));
        }
    }
    attrs
}
