//! The token server as Envoy sees it: cluster name (Higress naming rules), `:authority`, path and
//! timeout of the auth call, all computed once at configure time.
//!
//! Higress names the clusters of its service sources as follows (`plugins/wasm-rust/src/
//! cluster_wrapper.rs`, `wasm-go` `cluster_wrapper.go`):
//!
//! | kind   | cluster name                                                  | default authority |
//! |--------|---------------------------------------------------------------|-------------------|
//! | fqdn   | `outbound\|<port>\|\|<fqdn>`                                   | fqdn              |
//! | static | `outbound\|<port>\|\|<serviceName>.static`                     | serviceName       |
//! | dns    | `outbound\|<port>\|\|<serviceName>.dns`                        | domain            |
//! | k8s    | `outbound\|<port>\|<version>\|<serviceName>.<namespace>.svc.cluster.local` | same FQDN |
//! | nacos  | `outbound\|<port>\|<version>\|<serviceName>.<group>.<namespaceId>.nacos` (`nacos-ext` for EDAS/SAE) | serviceName |
//! | consul | `outbound\|<port>\|\|<serviceName>.<datacenter>.consul`        | serviceName       |
//! | raw    | the name as given (plain Envoy `clusters:` entry)             | the cluster name  |

use serde_json::Map as JsonMap;
/// A JSON object.
type Map = JsonMap<String, serde_json::Value>;
use serde_json::Value;
use std::time::Duration;

/// Where and how the auth call is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenServer {
    /// Envoy cluster name passed to `proxy_http_call`.
    pub cluster: String,
    /// `:authority` of the auth call.
    pub authority: String,
    /// `:path` of the auth call.
    pub path: String,
    /// The budget of the whole exchange: every attempt gets what is left of it.
    pub timeout: Duration,
    /// Re-sends after a connection failure, a reset or a 502/503/504 (`tokenServerRetries`).
    pub retries: u8,
}

/// A Higress service source, as written in the `tokenService` key:
/// `{"type": "k8s", "serviceName": "auth", "namespace": "sec", "port": 8080}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    Fqdn {
        fqdn: String,
        port: u16,
    },
    Static {
        service_name: String,
        port: u16,
    },
    Dns {
        service_name: String,
        domain: String,
        port: u16,
    },
    K8s {
        service_name: String,
        namespace: String,
        port: u16,
        version: String,
    },
    Nacos {
        service_name: String,
        group: String,
        namespace_id: String,
        port: u16,
        is_ext_registry: bool,
        version: String,
    },
    Consul {
        service_name: String,
        datacenter: String,
        port: u16,
    },
}

/// The fields of one `tokenService` object, read with their camelCase names.
struct Source<'a>(&'a Map);

impl Source<'_> {
    fn text(&self, key: &str) -> Result<String, String> {
        match self.0.get(key) {
            Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
            Some(_) => Err(format!("`{key}` must be a non-empty string")),
            None => Err(format!("`{key}` is required")),
        }
    }

    fn optional(&self, key: &str) -> Result<String, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    }

    fn port(&self) -> Result<u16, String> {
        self.0
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|port| u16::try_from(port).ok())
            .filter(|port| *port > 0)
            .ok_or_else(|| "`port` must be an integer in 1..=65535".to_string())
    }

    fn flag(&self, key: &str) -> Result<bool, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(_) => Err(format!("`{key}` must be true or false")),
        }
    }
}

impl Service {
    /// Reads a `tokenService` object; the error says which field is wrong.
    pub fn from_json(value: &Value) -> Result<Service, String> {
        let object = value.as_object().ok_or("must be an object")?;
        let source = Source(object);
        let kind = source.text("type")?;
        let service = match kind.as_str() {
            "fqdn" => Service::Fqdn {
                fqdn: source.text("fqdn")?,
                port: source.port()?,
            },
            "static" => Service::Static {
                service_name: source.text("serviceName")?,
                port: source.port()?,
            },
            "dns" => Service::Dns {
                service_name: source.text("serviceName")?,
                domain: source.text("domain")?,
                port: source.port()?,
            },
            "k8s" => Service::K8s {
                service_name: source.text("serviceName")?,
                namespace: source.optional("namespace")?,
                port: source.port()?,
                version: source.optional("version")?,
            },
            "nacos" => Service::Nacos {
                service_name: source.text("serviceName")?,
                group: source.optional("group")?,
                namespace_id: source.text("namespaceId")?,
                port: source.port()?,
                is_ext_registry: source.flag("isExtRegistry")?,
                version: source.optional("version")?,
            },
            "consul" => Service::Consul {
                service_name: source.text("serviceName")?,
                datacenter: source.text("datacenter")?,
                port: source.port()?,
            },
            other => {
                return Err(format!(
                    "unknown `type` `{other}` (fqdn, static, dns, k8s, nacos, consul)"
                ))
            }
        };
        Ok(service)
    }

    /// The Envoy cluster name Higress generates for this source.
    pub fn cluster_name(&self) -> String {
        match self {
            Service::Fqdn { fqdn, port } => higress_cluster(*port, "", fqdn),
            Service::Static { service_name, port } => {
                higress_cluster(*port, "", &format!("{service_name}.static"))
            }
            Service::Dns {
                service_name, port, ..
            } => higress_cluster(*port, "", &format!("{service_name}.dns")),
            Service::K8s { port, version, .. } => {
                higress_cluster(*port, version, &self.host_name())
            }
            Service::Nacos {
                service_name,
                group,
                namespace_id,
                port,
                is_ext_registry,
                version,
            } => {
                let group = if group.is_empty() {
                    "DEFAULT-GROUP".to_string()
                } else {
                    group.replace('_', "-")
                };
                let registry = if *is_ext_registry {
                    "nacos-ext"
                } else {
                    "nacos"
                };
                let host = format!("{service_name}.{group}.{namespace_id}.{registry}");
                higress_cluster(*port, version, &host)
            }
            Service::Consul {
                service_name,
                datacenter,
                port,
            } => higress_cluster(*port, "", &format!("{service_name}.{datacenter}.consul")),
        }
    }

    /// The default `:authority` for calls to this source.
    pub fn host_name(&self) -> String {
        match self {
            Service::Fqdn { fqdn, .. } => fqdn.clone(),
            Service::Dns { domain, .. } => domain.clone(),
            Service::K8s {
                service_name,
                namespace,
                ..
            } => {
                let namespace = if namespace.is_empty() {
                    "default"
                } else {
                    namespace
                };
                format!("{service_name}.{namespace}.svc.cluster.local")
            }
            Service::Static { service_name, .. }
            | Service::Nacos { service_name, .. }
            | Service::Consul { service_name, .. } => service_name.clone(),
        }
    }
}

/// Higress's cluster naming, `outbound|<port>|<subset>|<host>` (the one place it is spelled).
pub fn higress_cluster(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: &str) -> Service {
        Service::from_json(&crate::core::strict::from_slice(json.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn fqdn_matches_the_go_original() {
        let s = Service::Fqdn {
            fqdn: "token-server.dns".into(),
            port: 9090,
        };
        assert_eq!(s.cluster_name(), "outbound|9090||token-server.dns");
        assert_eq!(s.host_name(), "token-server.dns");
    }

    #[test]
    fn higress_source_kinds() {
        let cases = [
            (
                r#"{"type":"static","serviceName":"auth","port":80}"#,
                "outbound|80||auth.static",
                "auth",
            ),
            (
                r#"{"type":"dns","serviceName":"auth","domain":"auth.example.com","port":443}"#,
                "outbound|443||auth.dns",
                "auth.example.com",
            ),
            (
                r#"{"type":"k8s","serviceName":"auth","namespace":"sec","port":8080}"#,
                "outbound|8080||auth.sec.svc.cluster.local",
                "auth.sec.svc.cluster.local",
            ),
            (
                r#"{"type":"k8s","serviceName":"auth","port":8080,"version":"v1"}"#,
                "outbound|8080|v1|auth.default.svc.cluster.local",
                "auth.default.svc.cluster.local",
            ),
            (
                r#"{"type":"nacos","serviceName":"auth","namespaceId":"public","port":8848}"#,
                "outbound|8848||auth.DEFAULT-GROUP.public.nacos",
                "auth",
            ),
            (
                r#"{"type":"nacos","serviceName":"auth","group":"my_group","namespaceId":"ns","port":1,"isExtRegistry":true}"#,
                "outbound|1||auth.my-group.ns.nacos-ext",
                "auth",
            ),
            (
                r#"{"type":"consul","serviceName":"auth","datacenter":"dc1","port":8500}"#,
                "outbound|8500||auth.dc1.consul",
                "auth",
            ),
        ];
        for (json, cluster, host) in cases {
            let s = service(json);
            assert_eq!(s.cluster_name(), cluster, "{json}");
            assert_eq!(s.host_name(), host, "{json}");
        }
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let parse = |json: &str| {
            Service::from_json(&crate::core::strict::from_slice(json.as_bytes()).unwrap())
        };
        assert!(parse(r#"{"type":"eureka","port":1}"#)
            .unwrap_err()
            .contains("eureka"));
        assert!(parse(r#"{"type":"dns","serviceName":"a","port":1}"#)
            .unwrap_err()
            .contains("domain"));
        assert!(parse(r#"{"type":"static","serviceName":"a","port":0}"#)
            .unwrap_err()
            .contains("port"));
        assert!(parse(r#"{"type":"static","serviceName":"a","port":"80"}"#).is_err());
        assert!(parse(r#"[1]"#).is_err());
    }
}
