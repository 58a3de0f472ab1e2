import Foundation
import Host

/// The Kubernetes objects of a deployment, from its configuration: what
/// `kubeshark manifests` prints, `kubeshark tap` applies and `kubeshark clean`
/// deletes, and what the Helm chart under `helm-chart/` renders the same way.
///
/// Least privilege: the ClusterRole only reads pods, namespaces, nodes, services
/// and endpoints; the Role only touches the deployment's own ConfigMap; the worker
/// is not privileged: NET_RAW and NET_ADMIN, plus BPF, PERFMON and SYS_RESOURCE
/// with AF_XDP (and `/sys/fs/bpf` mounted), plus SYS_PTRACE when TLS capture reads
/// other processes' memory.
public struct Manifests: Sendable {
    public let config: DeployConfig
    /// The tokens the hub and the workers require (kept in the Secret).
    public let hubToken: String
    public let workerToken: String

    public init(config: DeployConfig, hubToken: String, workerToken: String) {
        self.config = config
        self.hubToken = hubToken
        self.workerToken = workerToken
    }

    public var namespace: String { config.string("tap.release.namespace") }
    public var release: String { config.string("tap.release.name") }
    public var image: String { "\(config.string("tap.docker.registry"))/kubeshark:\(config.string("tap.docker.tag"))" }

    /// Names of the objects, shared with `clean` and the chart.
    public static let serviceAccount = "kubeshark-service-account"
    public static let selfConfigRole = "kubeshark-self-config-role"
    public static let configMap = "kubeshark-config-map"
    public static let secret = "kubeshark-secret"
    public static let hub = "kubeshark-hub"
    public static let workers = "kubeshark-worker-daemon-set"
    public var clusterRole: String { "kubeshark-cluster-role-\(namespace)" }

    /// Every object, in the order they are applied (and the reverse of deletion).
    public var objects: [JSONValue] {
        [serviceAccountObject, clusterRoleObject, clusterRoleBindingObject, roleObject, roleBindingObject,
         secretObject, configMapObject, hubDeployment, hubService, workerDaemonSet]
    }

    // MARK: Pieces

    func labels(_ component: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("app.kubernetes.io/name", .string("kubeshark")),
            ("app.kubernetes.io/instance", .string(release)),
            ("app.kubernetes.io/version", .string(config.string("tap.docker.tag"))),
            ("app.kubernetes.io/managed-by", .string("kubeshark-cli")),
        ]
        if let component { members.append(("app.kubernetes.io/component", .string(component))) }
        return obj(members)
    }

    func selector(_ component: String) -> JSONValue {
        obj([("app.kubernetes.io/name", .string("kubeshark")), ("app.kubernetes.io/instance", .string(release)),
             ("app.kubernetes.io/component", .string(component))])
    }

    func metadata(_ name: String, namespaced: Bool = true, component: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("name", .string(name))]
        if namespaced { members.append(("namespace", .string(namespace))) }
        members.append(("labels", labels(component)))
        return obj(members)
    }

    func object(_ apiVersion: String, _ kind: String, _ metadata: JSONValue, _ rest: [(String, JSONValue)]) -> JSONValue {
        obj([("apiVersion", .string(apiVersion)), ("kind", .string(kind)), ("metadata", metadata)] + rest)
    }

    var pullSecrets: [JSONValue] { config.strings("tap.docker.imagePullSecrets").map { obj([("name", .string($0))]) } }

    var serviceAccountObject: JSONValue {
        object("v1", "ServiceAccount", metadata(Self.serviceAccount),
               pullSecrets.isEmpty ? [] : [("imagePullSecrets", .array(pullSecrets))])
    }

    var clusterRoleObject: JSONValue {
        object("rbac.authorization.k8s.io/v1", "ClusterRole", metadata(clusterRole, namespaced: false), [
            ("rules", .array([obj([
                ("apiGroups", strings([""])),
                ("resources", strings(["pods", "namespaces", "nodes", "services", "endpoints"])),
                ("verbs", strings(["get", "list", "watch"])),
            ])])),
        ])
    }

    var subjects: JSONValue {
        .array([obj([("kind", .string("ServiceAccount")), ("name", .string(Self.serviceAccount)),
                     ("namespace", .string(namespace))])])
    }

    var clusterRoleBindingObject: JSONValue {
        object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", metadata(clusterRole, namespaced: false), [
            ("roleRef", obj([("apiGroup", .string("rbac.authorization.k8s.io")), ("kind", .string("ClusterRole")),
                             ("name", .string(clusterRole))])),
            ("subjects", subjects),
        ])
    }

    var roleObject: JSONValue {
        object("rbac.authorization.k8s.io/v1", "Role", metadata(Self.selfConfigRole), [
            ("rules", .array([obj([
                ("apiGroups", strings([""])),
                ("resources", strings(["configmaps"])),
                ("resourceNames", strings([Self.configMap])),
                ("verbs", strings(["get", "list", "watch", "update", "patch"])),
            ])])),
        ])
    }

    var roleBindingObject: JSONValue {
        object("rbac.authorization.k8s.io/v1", "RoleBinding", metadata(Self.selfConfigRole), [
            ("roleRef", obj([("apiGroup", .string("rbac.authorization.k8s.io")), ("kind", .string("Role")),
                             ("name", .string(Self.selfConfigRole))])),
            ("subjects", subjects),
        ])
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    var secretObject: JSONValue {
        object("v1", "Secret", metadata(Self.secret), [
            ("type", .string("Opaque")),
            // `data` (base64), not `stringData`: what the API server stores and gives back, so a
            // later tap can read the tokens again.
            ("data", obj([("HUB_TOKEN", .string(Self.base64(hubToken))), ("WORKER_TOKEN", .string(Self.base64(workerToken))),
                          ("SCRIPTING_ENV", .string(Self.base64(scriptingEnv)))])),
        ])
    }

    /// `scripting.env` as compact JSON with sorted keys (as Helm's `toJson` writes it): the
    /// scripts' `env` object, which the workers read from the Secret.
    var scriptingEnv: String {
        guard case .object(let members)? = config.value("scripting.env") else { return "{}" }
        let sorted = JSONValue.object(members.sorted { $0.key < $1.key })
        return String(decoding: sorted.jsonBytes, as: UTF8.self)
    }

    /// The scope and the capture settings the hub and workers read.
    var configMapObject: JSONValue {
        object("v1", "ConfigMap", metadata(Self.configMap), [
            ("data", obj([
                ("POD_REGEX", .string(config.string("tap.regex"))),
                ("NAMESPACES", .string(config.strings("tap.namespaces").joined(separator: ","))),
                ("EXCLUDED_NAMESPACES", .string(config.strings("tap.excludedNamespaces").joined(separator: ","))),
                ("PACKET_CAPTURE", .string(config.string("tap.packetCapture"))),
                ("STORAGE_LIMIT", .string(config.string("tap.storageLimit"))),
                ("ENABLED_DISSECTORS", .string(config.strings("tap.enabledDissectors").joined(separator: ","))),
                ("PLUGIN_IMAGES", .string(config.strings("tap.pluginImages").joined(separator: ","))),
                ("TLS", .string(config.bool("tap.tls") ? "true" : "false")),
                ("LOG_LEVEL", .string(config.string("logLevel"))),
            ])),
        ])
    }

    func secretEnv(_ name: String, key: String) -> JSONValue {
        obj([("name", .string(name)), ("valueFrom", obj([("secretKeyRef", obj([
            ("name", .string(Self.secret)), ("key", .string(key)),
        ]))]))])
    }

    func fieldEnv(_ name: String, _ path: String) -> JSONValue {
        obj([("name", .string(name)), ("valueFrom", obj([("fieldRef", obj([("fieldPath", .string(path))]))]))])
    }

    func probe(_ path: String, port: Int, period: Int) -> JSONValue {
        obj([("httpGet", obj([("path", .string(path)), ("port", .number(Double(port)))])),
             ("initialDelaySeconds", .number(5)), ("periodSeconds", .number(Double(period))),
             ("failureThreshold", .number(3))])
    }

    /// - Parameter readiness: the hub is ready once a worker answers (`/readyz`); a worker
    ///   is ready when it serves (`/healthz`): on a node without targeted pods it captures nothing.
    func container(_ name: String, args: [String], port: Int, env: [JSONValue], resources: String,
                   securityContext: JSONValue, mounts: [JSONValue], readiness: String) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(name)),
            ("image", .string(image)),
            ("imagePullPolicy", .string(config.string("tap.docker.imagePullPolicy"))),
            ("args", strings(args)),
            ("env", .array(env)),
            ("ports", .array([obj([("name", .string("api")), ("containerPort", .number(Double(port)))])])),
            ("readinessProbe", probe(readiness, port: port, period: 5)),
            ("livenessProbe", probe("/healthz", port: port, period: 10)),
            ("resources", config.value("tap.resources.\(resources)") ?? obj([])),
            ("securityContext", securityContext),
        ]
        if !mounts.isEmpty { members.append(("volumeMounts", .array(mounts))) }
        return obj(members)
    }

    var hubPort: Int { config.int("tap.proxy.hub.srvPort") }
    var workerPort: Int { config.int("tap.proxy.worker.srvPort") }

    var hubDeployment: JSONValue {
        let args = ["hub", "--kube", "--release-namespace", namespace, "--host", "0.0.0.0", "--port", "\(hubPort)",
                    "--token", "$(HUB_TOKEN)", "--worker-token", "$(WORKER_TOKEN)", "--log-level", config.string("logLevel")]
        let hub = container("hub", args: args, port: hubPort,
                            env: [secretEnv("HUB_TOKEN", key: "HUB_TOKEN"), secretEnv("WORKER_TOKEN", key: "WORKER_TOKEN")],
                            resources: "hub",
                            securityContext: obj([("allowPrivilegeEscalation", .bool(false)), ("runAsNonRoot", .bool(true)),
                                                  ("runAsUser", .number(65532)),
                                                  ("capabilities", obj([("drop", strings(["ALL"]))]))]),
                            mounts: [], readiness: "/readyz")
        var podSpec: [(String, JSONValue)] = [("serviceAccountName", .string(Self.serviceAccount))]
        podSpec.append(("nodeSelector", obj([("kubernetes.io/os", .string("linux"))])))
        podSpec.append(("containers", .array([hub])))
        return object("apps/v1", "Deployment", metadata(Self.hub, component: "hub"), [
            ("spec", obj([
                ("replicas", .number(1)),
                ("selector", obj([("matchLabels", selector("hub"))])),
                ("template", obj([("metadata", obj([("labels", labels("hub"))])), ("spec", obj(podSpec))])),
            ])),
        ])
    }

    var hubService: JSONValue {
        object("v1", "Service", metadata(Self.hub, component: "hub"), [
            ("spec", obj([
                ("type", .string("ClusterIP")),
                ("selector", selector("hub")),
                ("ports", .array([obj([("name", .string("api")), ("port", .number(80)),
                                       ("targetPort", .number(Double(hubPort)))])])),
            ])),
        ])
    }

    /// The ring's share of the emptyDir: sessions' retained packets and the segment
    /// being written live there too, and a pod that outgrows its emptyDir's
    /// sizeLimit is evicted.
    static let ringShare = 80

    var capabilities: [String] {
        var caps = ["NET_RAW", "NET_ADMIN"]
        if config.string("tap.packetCapture") == "af_xdp" { caps += ["BPF", "PERFMON", "SYS_RESOURCE"] }
        if config.bool("tap.tls") {
            for cap in ["BPF", "PERFMON", "SYS_PTRACE", "SYS_RESOURCE"] where !caps.contains(cap) { caps.append(cap) }
        }
        return caps
    }

    var workerDaemonSet: JSONValue {
        let afXDP = config.string("tap.packetCapture") == "af_xdp"
        let mountsBpf = (afXDP || config.bool("tap.tls")) && config.bool("tap.mountBpf")
        let images = config.strings("tap.pluginImages")
        // Each worker registers with the hub through its Service, at its node's address.
        var args = ["worker", "--pods", "--by-address", "--host", "0.0.0.0", "--port", "\(workerPort)",
                    "--name", "$(NODE_NAME)", "--token", "$(WORKER_TOKEN)",
                    "--hub", "http://\(Self.hub).\(namespace).svc:80", "--hub-token", "$(HUB_TOKEN)",
                    "--advertise", "http://$(HOST_IP):\(workerPort)",
                    "--data-dir", "/app/data", "--storage-limit", config.string("tap.storageLimit"), "--ring-share", "\(Self.ringShare)",
                    "--capture", config.string("tap.packetCapture")]
        // TLS capture is on by default in a worker; without its capabilities it would only say it cannot.
        if !config.bool("tap.tls") { args.append("--no-tls") }
        let plugins = config.strings("tap.enabledDissectors")
        if !plugins.isEmpty { args += ["--plugins", plugins.joined(separator: ",")] }
        if !images.isEmpty { args += ["--plugins-dir", "/app/plugins"] }
        var mounts = [obj([("name", .string("data")), ("mountPath", .string("/app/data"))])]
        if !images.isEmpty { mounts.append(obj([("name", .string("plugins")), ("mountPath", .string("/app/plugins"))])) }
        if mountsBpf { mounts.append(obj([("name", .string("bpffs")), ("mountPath", .string("/sys/fs/bpf"))])) }
        // TLS capture's syscall tracepoints are found in the host's tracefs (no SYS_ADMIN to mount one).
        if config.bool("tap.tls") {
            mounts.append(obj([("name", .string("tracefs")), ("mountPath", .string("/sys/kernel/tracing")), ("readOnly", .bool(true))]))
        }
        let worker = container(
            "worker", args: args, port: workerPort,
            env: [fieldEnv("NODE_NAME", "spec.nodeName"), fieldEnv("POD_NAME", "metadata.name"),
                  fieldEnv("HOST_IP", "status.hostIP"), secretEnv("WORKER_TOKEN", key: "WORKER_TOKEN"),
                  secretEnv("HUB_TOKEN", key: "HUB_TOKEN"), secretEnv("SCRIPTING_ENV", key: "SCRIPTING_ENV")],
            resources: "worker",
            securityContext: obj([("privileged", .bool(false)),
                                  ("capabilities", obj([("drop", strings(["ALL"])), ("add", strings(capabilities))]))]),
            mounts: mounts, readiness: "/healthz")
        var volumes = [obj([("name", .string("data")),
                            ("emptyDir", obj([("sizeLimit", .string(config.string("tap.storageLimit")))]))])]
        if !images.isEmpty { volumes.append(obj([("name", .string("plugins")), ("emptyDir", obj([]))])) }
        if mountsBpf {
            volumes.append(obj([("name", .string("bpffs")),
                                ("hostPath", obj([("path", .string("/sys/fs/bpf")), ("type", .string("Directory"))]))]))
        }
        if config.bool("tap.tls") {
            volumes.append(obj([("name", .string("tracefs")),
                                ("hostPath", obj([("path", .string("/sys/kernel/tracing")), ("type", .string("Directory"))]))]))
        }
        var podSpec: [(String, JSONValue)] = [
            ("serviceAccountName", .string(Self.serviceAccount)),
            ("hostNetwork", .bool(true)),
        ]
        // TLS capture finds the targeted pods' processes in /proc and attaches to their libssl.
        if config.bool("tap.tls") { podSpec.append(("hostPID", .bool(true))) }
        podSpec += [
            ("dnsPolicy", .string("ClusterFirstWithHostNet")),
            ("nodeSelector", obj([("kubernetes.io/os", .string("linux"))])),
            ("tolerations", .array([obj([("operator", .string("Exists"))])])),
        ]
        // A third party's plugin image: its .so files, under /plugins, copied into the volume the worker loads from.
        if !images.isEmpty {
            podSpec.append(("initContainers", .array(images.enumerated().map { i, image in
                obj([("name", .string("plugins-\(i)")), ("image", .string(image)),
                     ("command", strings(["sh", "-c", "cp /plugins/*.so /app/plugins/"])),
                     ("volumeMounts", .array([obj([("name", .string("plugins")), ("mountPath", .string("/app/plugins"))])]))])
            })))
        }
        podSpec.append(("containers", .array([worker])))
        podSpec.append(("volumes", .array(volumes)))
        return object("apps/v1", "DaemonSet", metadata(Self.workers, component: "worker"), [
            ("spec", obj([
                ("selector", obj([("matchLabels", selector("worker"))])),
                ("updateStrategy", obj([("type", .string("RollingUpdate"))])),
                ("template", obj([("metadata", obj([("labels", labels("worker"))])), ("spec", obj(podSpec))])),
            ])),
        ])
    }
}

func obj(_ members: [(String, JSONValue)]) -> JSONValue { .object(members.map { JSONMember(key: $0.0, value: $0.1) }) }

func strings(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }
