#!/usr/bin/python3
"""A small GraphQL server for the fixture recordings: graphene 2 (Debian's
python3-graphene) behind Python's http.server.

Schema: Query.hello(name), Query.user(id) {id name friends}, Query.boom (always
raises), Mutation.addUser(name) {id name}. Transport (GraphQL over HTTP):
  POST application/json  {"query", "operationName", "variables"} or a list of them (batch)
  POST application/graphql  the document itself
  GET  ?query=...&operationName=...&variables=...
Usage: graphql_server.py [PORT] (0 = a free port). Prints "listening on PORT"
once ready; serves until killed.
"""
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import graphene


class User(graphene.ObjectType):
    id = graphene.ID()
    name = graphene.String()
    friends = graphene.List(lambda: User)


USERS = {"1": "Ada", "2": "Grace"}


class Query(graphene.ObjectType):
    hello = graphene.String(name=graphene.String(default_value="world"))
    user = graphene.Field(User, id=graphene.ID(required=True))
    boom = graphene.String()

    def resolve_hello(self, info, name):
        return "Hello " + name

    def resolve_user(self, info, id):
        if id not in USERS:
            return None
        return User(id=id, name=USERS[id], friends=[User(id=k, name=v) for k, v in USERS.items() if k != id])

    def resolve_boom(self, info):
        raise Exception("boom: this field always fails")


class AddUser(graphene.Mutation):
    class Arguments:
        name = graphene.String(required=True)

    Output = User

    def mutate(self, info, name):
        new_id = str(len(USERS) + 1)
        USERS[new_id] = name
        return User(id=new_id, name=name)


class Mutation(graphene.ObjectType):
    add_user = AddUser.Field()


schema = graphene.Schema(query=Query, mutation=Mutation)


def execute(req):
    if not isinstance(req, dict) or not isinstance(req.get("query"), str):
        return {"errors": [{"message": "Must provide query string."}]}
    variables = req.get("variables")
    if isinstance(variables, str):
        variables = json.loads(variables) if variables else None
    result = schema.execute(req["query"], variables=variables, operation_name=req.get("operationName"))
    out = {}
    if result.errors:
        out["errors"] = [format_error(e) for e in result.errors]
    out["data"] = result.data
    return out


def format_error(e):
    d = {"message": str(e)}
    locations = getattr(e, "locations", None)
    if locations:
        d["locations"] = [{"line": l.line, "column": l.column} for l in locations]
    path = getattr(e, "path", None)
    if path:
        d["path"] = list(path)
    d["extensions"] = {"code": "INTERNAL_SERVER_ERROR" if path else "GRAPHQL_VALIDATION_FAILED"}
    return d


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, payload, status=200):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/graphql":
            self.reply({"error": "not found"}, 404)
            return
        params = dict(urllib.parse.parse_qsl(url.query))
        self.reply(execute(params))

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/graphql":
            self.reply(execute({"query": raw.decode()}))
            return
        try:
            req = json.loads(raw)
        except ValueError:
            self.reply({"errors": [{"message": "Body is not JSON."}]}, 400)
            return
        if self.path.startswith("/api/"):
            self.reply({"ok": True, "echo": req})  # a plain JSON API next to GraphQL
        elif isinstance(req, list):
            self.reply([execute(r) for r in req])
        else:
            self.reply(execute(req))


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = HTTPServer(("127.0.0.1", port), Handler)
    print("listening on %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
