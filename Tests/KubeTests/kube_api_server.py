#!/usr/bin/env python3
"""A stand-in Kubernetes API server for the Kube client's tests (stdlib only).

No real API server can run on the test machines, so this one answers with the
shapes of the real one, taken from the Kubernetes API reference and API concepts
documents (kubernetes.io/docs/reference/kubernetes-api/ and
/docs/reference/using-api/api-concepts/):

  * lists (PodList, NamespaceList, "List Metadata"): {"kind": "PodList",
    "apiVersion": "v1", "metadata": {"resourceVersion", "continue",
    "remainingItemCount"}, "items": [...]}; `limit`/`continue` paging, and a
    continue token older than the compaction answered 410 Expired;
  * watches ("Efficient detection of changes", WatchEvent): `?watch=true`,
    newline-delimited {"type": "ADDED|MODIFIED|DELETED|BOOKMARK|ERROR",
    "object": ...} over chunked transfer; BOOKMARK objects carry only
    metadata.resourceVersion; a resourceVersion older than the compaction gets
    either an HTTP 410 Status or (as kube-apiserver does) 200 and an ERROR event
    whose object is a Status with code 410 ("too old resource version");
  * errors (Status, meta/v1): {"kind": "Status", "apiVersion": "v1",
    "metadata": {}, "status": "Failure", "message", "reason", "details", "code"}
    -- 401 Unauthorized, 403 Forbidden with the RBAC authorizer's message, 404
    NotFound, 409 AlreadyExists, 400 BadRequest;
  * server-side apply ("Server-Side Apply"): PATCH with Content-Type
    application/apply-patch+yaml, fieldManager required, force=true; the stored
    object comes back with metadata.managedFields, uid, resourceVersion;
  * merge patch (application/merge-patch+json, RFC 7386) of an existing object;
  * delete (DeleteOptions): propagationPolicy from the query or the body.

The server knows each kind's group, resource name and scope independently of
the client, so a wrong REST path is refused (404/400) as a real server would.

Usage: kube_api_server.py --cert C --key K [--client-ca CA] [--token T ...]
Prints one JSON line {"port": N, "control": M} once listening. The control
listener (plain HTTP on 127.0.0.1) lets a test change the cluster while
watches are open: POST /pods (add or modify), DELETE /pods/NS/NAME, POST
/expire (ERROR 410 to open watches, compaction), POST /compact, POST /drop
(break open watch connections), POST /bookmark, POST /inject
({"text", "repeat"}: raw bytes into open watches), POST /config ({"forbid":
[resources], "tokens": [...], "goneMode": "http"|"event", "failLists": N,
"services": {"NS/NAME:PORT": "HOST:PORT"}}: backends of the service proxy), GET /stats.
"""
import argparse
import base64
import json
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# kind -> (group, resource, namespaced), as the API server's discovery has them.
KINDS = {
    "Namespace": ("", "namespaces", False),
    "Node": ("", "nodes", False),
    "Pod": ("", "pods", True),
    "Service": ("", "services", True),
    "ServiceAccount": ("", "serviceaccounts", True),
    "ConfigMap": ("", "configmaps", True),
    "Secret": ("", "secrets", True),
    "Deployment": ("apps", "deployments", True),
    "DaemonSet": ("apps", "daemonsets", True),
    "Role": ("rbac.authorization.k8s.io", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings", False),
}
RESOURCES = {(g, r): (kind, ns) for kind, (g, r, ns) in KINDS.items()}
VERSIONS = {"": "v1", "apps": "v1", "rbac.authorization.k8s.io": "v1"}


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class State:
    def __init__(self, tokens):
        self.cond = threading.Condition()
        self.rv = 1000
        self.objects = {}       # (group, resource, namespace or "", name) -> object
        self.events = []        # (rv, type, pod) for pods
        self.compacted = 0      # watches and continue tokens from rv < compacted get 410
        self.generation = 0     # bumped by /expire, /drop, /bookmark
        self.signal = None      # ("expire"|"drop"|"bookmark"|"inject", generation)
        self.inject = b""       # raw bytes /inject writes into open watches
        self.tokens = set(tokens)
        self.forbid = set()
        self.gone_mode = "event"
        self.fail_lists = 0     # the next N lists answer 500 InternalError
        self.stats = {"lists": [], "watches": [], "deletes": [], "applies": [], "patches": [], "creates": [], "unauthorized": 0,
                      "proxied": 0}
        self.services = {}      # "ns/name:port" -> "host:port", for the service proxy

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def upsert_pod(self, pod):
        with self.cond:
            meta = pod.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            key = ("", "pods", meta["namespace"], meta["name"])
            old = self.objects.get(key)
            meta["uid"] = old["metadata"]["uid"] if old else meta.get("uid") or str(uuid.uuid4())
            meta.setdefault("creationTimestamp", now())
            meta["resourceVersion"] = self.next_rv()
            pod["kind"], pod["apiVersion"] = "Pod", "v1"
            self.objects[key] = pod
            self.events.append((self.rv, "MODIFIED" if old else "ADDED", json.loads(json.dumps(pod))))
            self.cond.notify_all()
            return pod

    def delete_key(self, key):
        with self.cond:
            obj = self.objects.pop(key, None)
            if obj is None:
                return None
            obj["metadata"]["resourceVersion"] = self.next_rv()
            if key[1] == "pods":
                self.events.append((self.rv, "DELETED", obj))
            self.cond.notify_all()
            return obj

    def compact(self):
        """Forgets the history up to now: a compaction is a new resourceVersion, and
        every older one is too old to watch from or to continue a list at."""
        self.next_rv()
        self.compacted = self.rv

    def send_signal(self, kind):
        with self.cond:
            self.generation += 1
            self.signal = (kind, self.generation)
            if kind == "expire":
                self.compact()
            self.cond.notify_all()


def selector_match(selector, labels):
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k) != v.lstrip("="):
                return False
        elif labels.get(term) is None:
            return False
    return True


def field_value(pod, field):
    node = pod
    for part in field.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def field_match(selector, pod):
    for term in filter(None, (selector or "").split(",")):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        if (field_value(pod, k) == v.lstrip("=")) == neg:
            return False
    return True


class JSONHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, quiet, answering JSON; `state` is the cluster."""
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class API(JSONHandler):

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def user(self):
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
        return "system:serviceaccount:kubeshark:kubeshark"

    def authorized(self):
        st = self.state
        if not st.tokens:
            return True
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in st.tokens:
            return True
        if isinstance(self.connection, ssl.SSLSocket) and self.connection.getpeercert():
            return True  # a verified client certificate authenticates on its own
        with st.cond:
            st.stats["unauthorized"] += 1
        self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        return False

    def route(self, method):
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in url.path.split("/") if p]
        if not self.authorized():
            return
        # The service proxy ("Proxy" in the core/v1 Service API, services/proxy subresource):
        # /api/v1/namespaces/NS/services/NAME[:PORT]/proxy/PATH, to a backend the test names.
        if len(parts) >= 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "services" and parts[6:7] == ["proxy"]:
            return self.service_proxy(method, parts[3], parts[5], "/" + "/".join(parts[7:]), url.query)
        if method == "PUT":
            return self.send_json(405, status(405, "MethodNotAllowed", "PUT is only proxied here"))
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        resource, name = rest[0], (rest[1] if len(rest) == 2 else None)
        known = RESOURCES.get((group, resource))
        if known is None or VERSIONS.get(group) != version or (namespace is not None and not known[1]):
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        kind, namespaced = known
        verb = {"GET": "watch" if q.get("watch") in ("true", "1") else ("get" if name else "list"),
                "POST": "create", "PATCH": "patch", "DELETE": "delete"}[method]
        if resource in self.state.forbid:
            where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            gr = f"{resource}.{group}" if group else resource
            msg = f'{gr} is forbidden: User "{self.user()}" cannot {verb} resource "{resource}" in API group "{group}" {where}'
            return self.send_json(403, status(403, "Forbidden", msg, {"kind": resource}))
        if method == "GET" and name is None:
            if verb == "watch":
                return self.watch(namespace, q)
            return self.list(group, resource, kind, namespace, q)
        if name is None and method != "POST":
            return self.send_json(405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
        key = (group, resource, namespace or "", name)
        gr = f"{resource}.{group}" if group else resource
        if method == "GET":
            obj = self.state.objects.get(key)
            if obj is None:
                return self.send_json(404, status(404, "NotFound", f'{gr} "{name}" not found',
                                                  {"name": name, "group": group, "kind": resource}))
            return self.send_json(200, obj)
        if method == "DELETE":
            raw = self.body()
            policy = q.get("propagationPolicy") or (json.loads(raw).get("propagationPolicy") if raw else None)
            with self.state.cond:
                self.state.stats["deletes"].append({"path": url.path, "propagationPolicy": policy})
            obj = self.state.delete_key(key)
            if obj is None:
                return self.send_json(404, status(404, "NotFound", f'{gr} "{name}" not found',
                                                  {"name": name, "group": group, "kind": resource}))
            return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                        "details": {"name": name, "group": group, "kind": resource, "uid": obj["metadata"]["uid"]}})
        if method == "PATCH" and self.headers.get("Content-Type", "") == "application/merge-patch+json":
            return self.merge_patch(key, gr, name, resource, group, q)
        # POST (create) and PATCH (server-side apply)
        raw = self.body()
        try:
            obj = json.loads(raw)
        except ValueError:
            return self.send_json(400, status(400, "BadRequest", "the body is not JSON (this test server reads JSON apply bodies)"))
        meta = obj.get("metadata") or {}
        expected_api = f"{group}/{version}" if group else version
        if obj.get("kind") != kind or obj.get("apiVersion") != expected_api:
            return self.send_json(400, status(400, "BadRequest",
                                              f'the kind "{obj.get("kind")}" ({obj.get("apiVersion")}) does not match the path\'s "{kind}" ({expected_api})'))
        if method == "POST":
            name = meta.get("name")
            key = (group, resource, namespace or "", name)
        elif meta.get("name") != name:
            return self.send_json(400, status(400, "BadRequest", "the name of the object does not match the name on the URL"))
        if namespaced and meta.get("namespace", namespace) != namespace:
            return self.send_json(400, status(400, "BadRequest", "the namespace of the object does not match the namespace on the request"))
        if method == "PATCH":
            ctype = self.headers.get("Content-Type", "")
            if ctype != "application/apply-patch+yaml":
                return self.send_json(415, status(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml ({ctype})'))
            if not q.get("fieldManager"):
                return self.send_json(400, status(400, "BadRequest", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'))
            with self.state.cond:
                self.state.stats["applies"].append({"path": url.path, "fieldManager": q.get("fieldManager"), "force": q.get("force")})
        else:
            with self.state.cond:
                if key in self.state.objects:
                    return self.send_json(409, status(409, "AlreadyExists", f'{gr} "{name}" already exists',
                                                      {"name": name, "group": group, "kind": resource}))
                self.state.stats["creates"].append({"path": url.path})
        if namespaced:
            meta["namespace"] = namespace
        if kind == "Pod":
            obj["metadata"] = meta
            existed = key in self.state.objects
            return self.send_json(200 if existed else 201, self.state.upsert_pod(obj))
        with self.state.cond:
            old = self.state.objects.get(key)
            meta["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"] if old else now()
            meta["resourceVersion"] = self.state.next_rv()
            meta["generation"] = (old["metadata"].get("generation", 0) + 1) if old else 1
            if method == "PATCH":
                meta["managedFields"] = [{"manager": q["fieldManager"], "operation": "Apply", "apiVersion": expected_api,
                                          "time": now(), "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]
            obj["metadata"] = meta
            self.state.objects[key] = obj
        return self.send_json(200 if old else 201, obj)

    def merge_patch(self, key, gr, name, resource, group, q):
        """JSON merge patch (RFC 7386): maps merge, null removes; the object must exist."""
        try:
            patch = json.loads(self.body())
        except ValueError:
            return self.send_json(400, status(400, "BadRequest", "the body is not JSON"))
        if not isinstance(patch, dict):
            return self.send_json(400, status(400, "BadRequest", "a merge patch must be a JSON object"))

        def merge(target, change):
            if not isinstance(change, dict):
                return change
            out = dict(target) if isinstance(target, dict) else {}
            for k, v in change.items():
                if v is None:
                    out.pop(k, None)
                else:
                    out[k] = merge(out.get(k), v)
            return out

        with self.state.cond:
            old = self.state.objects.get(key)
            if old is None:
                return self.send_json(404, status(404, "NotFound", f'{gr} "{name}" not found',
                                                  {"name": name, "group": group, "kind": resource}))
            self.state.stats["patches"].append({"path": self.path.split("?")[0], "fieldManager": q.get("fieldManager")})
            patch.pop("metadata", None)
            obj = merge(old, patch)
            obj["metadata"] = dict(old["metadata"])
            obj["metadata"]["resourceVersion"] = self.state.next_rv()
            self.state.objects[key] = obj
        return self.send_json(200, obj)

    def pods(self, namespace, q):
        items = [o for (g, r, ns, n), o in self.state.objects.items()
                 if r == "pods" and (namespace is None or ns == namespace)]
        items = [p for p in items if selector_match(q.get("labelSelector"), p["metadata"].get("labels") or {})
                 and field_match(q.get("fieldSelector"), p)]
        return sorted(items, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))

    def list(self, group, resource, kind, namespace, q):
        st = self.state
        with st.cond:
            st.stats["lists"].append({"resource": resource, "namespace": namespace, "limit": q.get("limit"),
                                      "continue": q.get("continue"), "labelSelector": q.get("labelSelector"),
                                      "fieldSelector": q.get("fieldSelector")})
            start, rv = 0, st.rv
            if st.fail_lists > 0:
                st.fail_lists -= 1
                return self.send_json(500, status(500, "InternalError", "Internal error occurred: etcdserver: leader changed"))
            if q.get("continue"):
                try:
                    token = json.loads(base64.b64decode(q["continue"]))
                    start, rv = int(token["start"]), int(token["rv"])
                except (ValueError, KeyError):
                    return self.send_json(400, status(400, "BadRequest", "continue key is not valid"))
                if rv < st.compacted:
                    return self.send_json(410, status(410, "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."))
            if resource == "pods":
                items = self.pods(namespace, q)
            elif resource == "namespaces":
                names = {"default", "kube-system"} | {k[2] for k in st.objects if k[2]} | \
                        {k[3] for k in st.objects if k[1] == "namespaces"}
                items = [st.objects.get(("", "namespaces", "", n)) or
                         {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": n, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, n)),
                          "resourceVersion": "1"}, "status": {"phase": "Active"}} for n in sorted(names)]
            else:
                items = [o for (g, r, ns, n), o in st.objects.items() if (g, r) == (group, resource)
                         and (namespace is None or ns == namespace)]
            limit = int(q.get("limit") or 0)
            page = items[start:start + limit] if limit else items[start:]
            meta = {"resourceVersion": str(rv)}
            if limit and start + limit < len(items):
                meta["continue"] = base64.b64encode(json.dumps({"rv": rv, "start": start + limit}).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
        self.send_json(200, {"kind": f"{kind}List", "apiVersion": "v1" if not group else f"{group}/v1",
                             "metadata": meta, "items": page})

    def chunk(self, obj):
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, namespace, q):
        st = self.state
        rv_param = q.get("resourceVersion") or ""
        bookmarks = q.get("allowWatchBookmarks") == "true"
        deadline = time.time() + int(q.get("timeoutSeconds") or 1800)
        with st.cond:
            st.stats["watches"].append({"resourceVersion": rv_param, "namespace": namespace,
                                        "allowWatchBookmarks": q.get("allowWatchBookmarks")})
            too_old = rv_param not in ("", "0") and int(rv_param) < st.compacted
            if too_old and st.gone_mode == "http":
                return self.send_json(410, status(410, "Gone", f"too old resource version: {rv_param} ({st.compacted})"))
            generation = st.generation
            if rv_param in ("", "0"):
                initial = [("ADDED", p) for p in self.pods(namespace, q)]
                cursor = st.rv
            else:
                initial, cursor = [], int(rv_param)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if too_old:
            self.chunk({"type": "ERROR", "object": status(410, "Expired", f"too old resource version: {rv_param} ({st.compacted})")})
            return self.end_chunks()
        for kind, pod in initial:
            self.chunk({"type": kind, "object": pod})
        while True:
            with st.cond:
                pending = [(r, t, p) for (r, t, p) in st.events if r > cursor
                           and (namespace is None or p["metadata"]["namespace"] == namespace)
                           and selector_match(q.get("labelSelector"), p["metadata"].get("labels") or {})
                           and field_match(q.get("fieldSelector"), p)]
                signal = st.signal if st.signal and st.signal[1] > generation else None
                if not pending and not signal:
                    if time.time() >= deadline:
                        break
                    st.cond.wait(0.2)
                    continue
                if signal:
                    generation = signal[1]
                cursor = st.rv if not pending else pending[-1][0]
                latest = st.rv
                compacted = st.compacted
            for _, t, p in pending:
                self.chunk({"type": t, "object": p})
            if signal and signal[0] == "bookmark" and bookmarks:
                cursor = latest
                self.chunk({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(latest)}}})
            elif signal and signal[0] == "expire":
                self.chunk({"type": "ERROR", "object": status(410, "Expired", f"too old resource version: {cursor} ({compacted})")})
                return self.end_chunks()
            elif signal and signal[0] == "inject":
                self.wfile.write(b"%x\r\n%s\r\n" % (len(st.inject), st.inject))
                self.wfile.flush()
            elif signal and signal[0] == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
        self.end_chunks()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def service_proxy(self, method, namespace, service, path, query):
        name = service if ":" in service else service + ":80"
        backend = self.state.services.get(namespace + "/" + name)
        if backend is None:
            return self.send_json(503, status(503, "ServiceUnavailable", 'no endpoints available for service "%s"' % service))
        self.state.stats["proxied"] += 1
        host, port = backend.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=10)
        target = path + ("?" + query if query else "")
        # The API server authenticates the client itself and does not pass its credentials on.
        upgrade = self.headers.get("Upgrade", "").lower() == "websocket"
        dropped = ("authorization", "host") if upgrade else ("authorization", "host", "connection", "keep-alive")
        headers = "".join("%s: %s\r\n" % (k, v) for k, v in self.headers.items() if k.lower() not in dropped)
        if not upgrade:
            headers += "Connection: close\r\n"  # one request per relayed connection
        length = int(self.headers.get("Content-Length") or 0)
        upstream.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (method, target, backend, headers)).encode()
                         + (self.rfile.read(length) if length else b""))
        self.close_connection = True
        # Relay both ways until either side closes (plain answers and WebSocket upgrades alike).
        client = self.connection
        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        if upgrade:
            pump(client, upstream)
        back.join()
        upstream.close()

    def do_GET(self): self.route("GET")
    def do_POST(self): self.route("POST")
    def do_PUT(self): self.route("PUT")
    def do_PATCH(self): self.route("PATCH")
    def do_DELETE(self): self.route("DELETE")


class Control(JSONHandler):
    def reply(self, obj, code=200):
        self.send_json(code, obj)

    def do_GET(self):
        with self.state.cond:
            self.reply(dict(self.state.stats, rv=self.state.rv))

    def do_DELETE(self):
        parts = [p for p in self.path.split("/") if p]
        obj = self.state.delete_key(("", "pods", parts[1], parts[2])) if len(parts) == 3 else None
        self.reply(obj or {}, 200 if obj else 404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        st = self.state
        if self.path == "/pods":
            return self.reply(st.upsert_pod(body))
        if self.path in ("/expire", "/drop", "/bookmark"):
            st.send_signal(self.path[1:])
            return self.reply({"rv": st.rv})
        if self.path == "/inject":
            st.inject = body["text"].encode() * int(body.get("repeat", 1))
            st.send_signal("inject")
            return self.reply({})
        if self.path == "/compact":
            with st.cond:
                st.compact()
            return self.reply({"compacted": st.compacted})
        if self.path == "/config":
            with st.cond:
                if "forbid" in body:
                    st.forbid = set(body["forbid"])
                if "tokens" in body:
                    st.tokens = set(body["tokens"])
                if "failLists" in body:
                    st.fail_lists = int(body["failLists"])
                if "goneMode" in body:
                    st.gone_mode = body["goneMode"]
                if "services" in body:
                    st.services.update(body["services"])
            return self.reply({})
        self.reply({"error": "unknown control " + self.path}, 404)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--token", action="append", default=[])
    args = ap.parse_args()
    state = State(args.token)
    API.state = Control.state = state
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    api = ThreadingHTTPServer(("127.0.0.1", 0), API)
    api.daemon_threads = True
    # The handshake happens in the request thread, so a client that fails it blocks no one.
    api.socket = ctx.wrap_socket(api.socket, server_side=True, do_handshake_on_connect=False)
    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print(json.dumps({"port": api.server_address[1], "control": control.server_address[1]}), flush=True)
    # Exit with the test: stdin closes when the test process ends.
    threading.Thread(target=lambda: (sys.stdin.read(), api.shutdown()), daemon=True).start()
    api.serve_forever()


if __name__ == "__main__":
    main()
