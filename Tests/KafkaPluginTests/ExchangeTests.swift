import Foundation
import PluginAPI
import Testing

@testable import Host

/// Request/response exchanges built by hand: headers, correlation, bodies.
@Suite struct ExchangeTests {
    @Test func apiVersionsV3FlexibleWithHeaderV0Response() throws {
        let req = request(key: 18, version: 3, correlation: 1, client: "rdkafka", flexible: true) { e in
            e.str("librdkafka")
            e.str("2.0.2")
            e.tags()
        }
        // ApiVersions responses keep header v0 (no tagged fields) even when flexible.
        let resp = response(correlation: 1, flexible: true, taggedHeader: false) { e in
            e.i16(0)
            e.count(2)
            for (k, lo, hi) in [(Int16(0), Int16(0), Int16(9)), (Int16(18), Int16(0), Int16(3))] {
                e.i16(k); e.i16(lo); e.i16(hi); e.tags()
            }
            e.i32(0)
            e.tags()
        }
        let entries = try run([(c2s, req), (s2c, resp)])
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.method == "ApiVersions")
        #expect(e.str("statusText") == "NONE")
        #expect(e.flags.isEmpty, "\(e.flags)")
        let r = try #require(e.request)
        #expect(r.str("apiName") == "ApiVersions")
        #expect(r.int("apiKey") == 18)
        #expect(r.int("apiVersion") == 3)
        #expect(r.int("correlationId") == 1)
        #expect(r.str("clientId") == "rdkafka")
        #expect(r.obj("payload")?.str("clientSoftwareName") == "librdkafka")
        let keys = try #require(e.response?.obj("payload")?.arr("apiKeys"))
        #expect(keys.count == 2)
        #expect(keys[1].int("apiKey") == 18 && keys[1].int("maxVersion") == 3)
    }

    @Test func apiVersionsUnsupportedVersionHasV0Body() throws {
        let req = request(key: 18, version: 3, correlation: 1, flexible: true) { e in
            e.str("librdkafka"); e.str("2.0.2"); e.tags()
        }
        let resp = response(correlation: 1) { e in
            e.i16(35); e.count(1); e.i16(18); e.i16(0); e.i16(2)
        }
        let entries = try run([(c2s, req), (s2c, resp)])
        try #require(entries.count == 1)
        #expect(entries[0].str("statusText") == "UNSUPPORTED_VERSION")
        #expect(entries[0].flags.isEmpty, "\(entries[0].flags)")
        #expect(entries[0].response?.obj("payload")?.arr("apiKeys")?.first?.int("maxVersion") == 2)
    }

    @Test func metadataV1TopicsAndError() throws {
        let req = request(key: 3, version: 1, correlation: 7) { e in
            e.count(2); e.str("orders"); e.str("payments")
        }
        let resp = response(correlation: 7) { e in
            e.count(1); e.i32(1); e.str("broker-1"); e.i32(9092); e.str(nil)
            e.i32(1)
            e.count(2)
            e.i16(0); e.str("orders"); e.i8(0)
            e.count(1); e.i16(0); e.i32(0); e.i32(1); e.count(1); e.i32(1); e.count(1); e.i32(1)
            e.i16(3); e.str("payments"); e.i8(0); e.count(0)
        }
        let entries = try run([(c2s, req), (s2c, resp)])
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.method == "Metadata")
        #expect(e.str("summary") == "orders, payments")
        #expect(e.str("statusText") == "UNKNOWN_TOPIC_OR_PARTITION")
        #expect(e.response?.int("errorCode") == 3)
        #expect(e.response?.obj("payload")?.arr("brokers")?.first?.str("host") == "broker-1")
    }

    static func produce(version: Int16, correlation: Int32, acks: Int16 = 1, batch: [UInt8]) -> [UInt8] {
        let flexible = version >= 9
        return request(key: 0, version: version, correlation: correlation, flexible: flexible) { e in
            if version >= 3 { e.str(nil) }
            e.i16(acks)
            e.i32(30000)
            e.count(1)
            e.str("events")
            e.count(1)
            e.i32(0)
            e.bytes(batch)
            e.tags()
            e.tags()
            e.tags()
        }
    }

    static func produceResponse(version: Int16, correlation: Int32, error: Int16 = 0) -> [UInt8] {
        let flexible = version >= 9
        return response(correlation: correlation, flexible: flexible) { e in
            e.count(1); e.str("events"); e.count(1)
            e.i32(0); e.i16(error); e.i64(42)
            if version >= 2 { e.i64(-1) }
            if version >= 5 { e.i64(0) }
            if version >= 8 { e.count(0); e.str(nil) }
            e.tags(); e.tags()
            e.i32(0)
            e.tags()
        }
    }

    /// Keys and values are text when they are printable UTF-8 (multi-byte included),
    /// base64 otherwise: control characters, bad continuations, overlong forms,
    /// surrogates, code points past U+10FFFF and cut sequences.
    @Test func recordValuesAreTextOnlyWhenPrintableUTF8() throws {
        let text: [[UInt8]] = [Array("héllo ✓ 🚀\tline\r\n".utf8), Array("plain".utf8), []]
        let binary: [[UInt8]] = [
            [0x61, 0x01], [0xC3], [0xC3, 0x28], [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80],
            [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, 0x9A], [0xFF], [0x80],
        ]
        let values = text + binary
        let recs = values.map { TestRecord(key: "k", value: nil, rawValue: $0) }
        let batch = recordBatch(count: recs.count, payload: recordsBytes(recs))
        let entries = try run([
            (c2s, Self.produce(version: 3, correlation: 5, batch: batch)),
            (s2c, Self.produceResponse(version: 3, correlation: 5)),
        ])
        let batches = entries.first?.request?.obj("payload")?.arr("topics")?.first?.arr("partitions")?.first?
            .arr("records")
        let records = batches?.first?.arr("records") ?? []
        try #require(records.count == values.count, "\(entries)")
        for (r, v) in zip(records, values) {
            if text.contains(v) {
                #expect(r.str("value") == String(decoding: v, as: UTF8.self), "\(v)")
            } else {
                #expect(r.str("value") == Data(v).base64EncodedString(), "\(v) should be base64")
            }
        }
    }

    @Test(arguments: [Int16(3), 7, 9, 11])
    func produceRecordBatch(version: Int16) throws {
        let recs = [
            TestRecord(key: "user-1", value: "{\"a\":1}", headers: [("trace", "abc")]),
            TestRecord(key: nil, value: "second"),
        ]
        let batch = recordBatch(baseOffset: 100, count: 2, payload: recordsBytes(recs))
        let entries = try run([
            (c2s, Self.produce(version: version, correlation: 5, batch: batch)),
            (s2c, Self.produceResponse(version: version, correlation: 5)),
        ])
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.method == "Produce")
        #expect(e.str("summary") == "events")
        #expect(e.flags.isEmpty, "\(e.flags)")
        let batches = try #require(e.request?.obj("payload")?.arr("topics")?.first?.arr("partitions")?.first?
            .arr("records"))
        #expect(batches.first?.str("compression") == "none")
        let records = try #require(batches.first?.arr("records"))
        #expect(records.count == 2)
        #expect(records[0].str("key") == "user-1")
        #expect(records[0].str("value") == "{\"a\":1}")
        #expect(records[0].int("offset") == 100)
        #expect(records[0].arr("headers")?.first?.str("key") == "trace")
        #expect(records[1]["key"] is NSNull)
        #expect(records[1].int("offset") == 101)
        #expect(e.response?.obj("payload")?.arr("responses")?.first?.arr("partitions")?.first?.int("baseOffset") == 42)
    }

    @Test func produceGzipBatchIsInflated() throws {
        let plain = recordsBytes([TestRecord(key: "k", value: "compressed hello")])
        let hex = plain.map { String(format: "%02x", $0) }.joined()
        let r = try Tools.run("/usr/bin/python3", ["-c",
            "import gzip,sys;sys.stdout.write(gzip.compress(bytes.fromhex(sys.stdin.read())).hex())"], stdin: hex)
        try #require(r.status == 0)
        var gz: [UInt8] = []
        var it = r.stdout.makeIterator()
        while let a = it.next(), let b = it.next() { gz.append(UInt8(String([a, b]), radix: 16)!) }
        let batch = recordBatch(count: 1, payload: gz, codec: 1)
        let snappy = recordBatch(count: 1, payload: [1, 2, 3], codec: 2)
        let entries = try run([
            (c2s, Self.produce(version: 7, correlation: 1, batch: batch)),
            (c2s, Self.produce(version: 7, correlation: 2, batch: snappy)),
            (s2c, Self.produceResponse(version: 7, correlation: 1)),
            (s2c, Self.produceResponse(version: 7, correlation: 2)),
        ])
        try #require(entries.count == 2)
        let b0 = entries[0].request?.obj("payload")?.arr("topics")?.first?.arr("partitions")?.first?.arr("records")?.first
        #expect(b0?.str("compression") == "gzip")
        #expect(b0?.arr("records")?.first?.str("value") == "compressed hello")
        let b1 = entries[1].request?.obj("payload")?.arr("topics")?.first?.arr("partitions")?.first?.arr("records")?.first
        #expect(b1?.str("compression") == "snappy")
        #expect(b1?.str("recordsNotDecoded") != nil)
    }

    @Test func acksZeroProduceHasNoResponse() throws {
        let batch = recordBatch(count: 1, payload: recordsBytes([TestRecord(key: "a", value: "b")]))
        let meta = request(key: 3, version: 1, correlation: 2) { e in e.count(0) }
        let entries = try run([
            (c2s, Self.produce(version: 7, correlation: 1, acks: 0, batch: batch)),
            (c2s, meta),
            (s2c, response(correlation: 2) { e in e.count(0); e.i32(1); e.count(0) }),
        ])
        try #require(entries.count == 2)
        #expect(entries[0].method == "Produce")
        #expect(entries[0].flags.contains("requestOnly"))
        #expect(entries[0].request?.int("acks") == 0)
        #expect(entries[0].str("statusText") == "acks=0")
        #expect(entries[1].method == "Metadata")
        #expect(!entries[1].flags.contains("requestOnly"))
    }

    @Test func responsesMatchedByCorrelationOutOfOrder() throws {
        let reqs = (1...3).map { i in
            request(key: 12, version: 0, correlation: Int32(i)) { e in e.str("g"); e.i32(1); e.str("m") }
        }
        let resps = [3, 1, 2].map { i in response(correlation: Int32(i)) { e in e.i16(Int16(i == 2 ? 27 : 0)) } }
        let entries = try run(reqs.map { (c2s, $0) } + resps.map { (s2c, $0) })
        #expect(entries.count == 3)
        for e in entries {
            #expect(e.method == "Heartbeat")
            #expect(e.request?.int("correlationId") == e.response?.int("correlationId"))
        }
        #expect(entries.first { $0.response?.int("correlationId") == 2 }?.str("statusText") == "REBALANCE_IN_PROGRESS")
    }

    @Test func unmatchedRequestAndUnknownResponse() throws {
        let entries = try run([
            (c2s, request(key: 12, version: 0, correlation: 10) { e in e.str("g"); e.i32(1); e.str("m") }),
            (s2c, response(correlation: 99) { e in e.i16(0) }),
        ])
        try #require(entries.count == 2)
        let only = try #require(entries.first { $0.flags.contains("responseOnly") })
        #expect(only.response?.int("correlationId") == 99)
        #expect(only.response?.int("size") == 10)
        let req = try #require(entries.first { $0.flags.contains("requestOnly") })
        #expect(req.method == "Heartbeat")
    }

    /// A request unanswered for 60 s of capture time becomes a timed-out entry at the
    /// next tick; its late response is still decoded (the API is remembered) and
    /// requests still waiting are flushed unanswered at close.
    @Test func unansweredRequestsTimeOutAndLateResponsesAreDecoded() throws {
        let t0: Int64 = 1_700_000_000_000_000_000
        let heartbeat = { (id: Int32) in request(key: 12, version: 0, correlation: id) { e in e.str("g"); e.i32(1); e.str("m") } }
        let h = try makeHarness()
        let raw = h.run(events: [
            .data(c2s, heartbeat(1), timestampNs: t0),
            .data(c2s, heartbeat(2), timestampNs: t0 + 30_000_000_000),
            .tick(nowNs: t0 + 59_000_000_000),  // nothing old enough yet
            .data(c2s, heartbeat(3), timestampNs: t0 + 59_500_000_000),
            .data(s2c, response(correlation: 3) { e in e.i16(0) }, timestampNs: t0 + 59_600_000_000),
            .tick(nowNs: t0 + 60_000_000_000),  // request 1 times out
            .data(s2c, response(correlation: 1) { e in e.i16(27) }, timestampNs: t0 + 61_000_000_000),
        ], serverPort: 9092)
        let entries = raw.map(parseJSON)
        try #require(entries.count == 4, "\(raw)")
        // Request 3 answered in time.
        #expect(entries[0].request?.int("correlationId") == 3 && entries[0].flags.isEmpty)
        // Request 1: timed out, request only.
        #expect(entries[1].request?.int("correlationId") == 1)
        #expect(entries[1].flags.contains("timedOut") && entries[1].flags.contains("requestOnly"))
        #expect(entries[1].response == nil)
        // Its late response: decoded as a Heartbeat response, response only.
        #expect(entries[2].method == "Heartbeat" && entries[2].flags == ["responseOnly"])
        #expect(entries[2].str("statusText") == "REBALANCE_IN_PROGRESS")
        #expect(entries[2].response?.int("errorCode") == 27)
        // Request 2 never answered nor timed out: flushed at close.
        #expect(entries[3].request?.int("correlationId") == 2)
        #expect(entries[3].flags == ["requestOnly"])
    }

    /// Every API key's request header is decoded, with the body decoded or named undecoded.
    @Test func everyApiKeyHeader() throws {
        let names = ["Produce", "Fetch", "ListOffsets", "Metadata"]
        var segments: [Segment] = []
        for k in 0..<76 {
            segments.append((c2s, request(key: Int16(k), version: 1, correlation: Int32(1000 + k), client: "c\(k)") { e in
                // acks = 1 for Produce (acks = 0 would expect no response).
                e.b += [0, 1] + [UInt8](repeating: 0, count: 62)
            }))
            segments.append((s2c, response(correlation: Int32(1000 + k)) { e in e.b += [UInt8](repeating: 0, count: 64) }))
        }
        let entries = try run(segments)
        #expect(entries.count == 76)
        for (k, e) in entries.enumerated() {
            #expect(e.request?.int("apiKey") == k)
            #expect(e.request?.int("correlationId") == 1000 + k)
            #expect(e.request?.str("clientId") == "c\(k)")
            #expect(e.response?.int("correlationId") == 1000 + k)
            #expect(e.method == e.request?.str("apiName"))
            if k < names.count { #expect(e.method == names[k]) }
        }
        #expect(entries[75].method == "DescribeTopicPartitions")
    }

    @Test func groupApisFlexible() throws {
        let join = request(key: 11, version: 7, correlation: 3, flexible: true) { e in
            e.str("grp"); e.i32(10000); e.i32(300000); e.str(""); e.str(nil); e.str("consumer")
            e.count(1); e.str("range"); e.bytes([0, 1, 2]); e.tags()
            e.tags()
        }
        let joinResp = response(correlation: 3, flexible: true) { e in
            e.i32(0); e.i16(79); e.i32(-1); e.str("consumer"); e.str(nil); e.str(""); e.str("member-1")
            e.count(0); e.tags()
        }
        let entries = try run([(c2s, join), (s2c, joinResp)])
        try #require(entries.count == 1)
        #expect(entries[0].method == "JoinGroup")
        #expect(entries[0].request?.obj("payload")?.str("groupId") == "grp")
        #expect(entries[0].str("statusText") == "MEMBER_ID_REQUIRED")
        #expect(entries[0].response?.obj("payload")?.str("memberId") == "member-1")
        #expect(entries[0].flags.isEmpty, "\(entries[0].flags)")
    }
}
