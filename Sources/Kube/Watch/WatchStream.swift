import AsyncHTTPClient
import Foundation
import NIOCore

/// One event of a watch (`{"type": ..., "object": ...}`).
public enum WatchEvent<Object: Sendable>: Sendable {
    case added(Object)
    case modified(Object)
    case deleted(Object)
    /// The server's progress mark: no object changed, but the watch is now at this resourceVersion.
    case bookmark(resourceVersion: String)
}

/// Reads one watch connection: newline-delimited JSON events, each line bounded.
enum WatchStream<Object: Decodable & Sendable> {
    static func open(transport: KubeTransport, path: String,
                     query: [(String, String)]) -> AsyncThrowingStream<WatchEvent<Object>, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let response = try await transport.openStream(path, query: query)
                    var lines = LineSplitter(maxLine: transport.maxWatchEventBytes)
                    do {
                        for try await chunk in response.body {
                            for line in try lines.append(chunk) {
                                continuation.yield(try decode(line))
                            }
                        }
                    } catch let error as KubeAPIError {
                        throw error
                    } catch let error as KubeTransportError {
                        throw error
                    } catch {
                        throw transport.transportError(error)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private struct Envelope: Decodable { var type: String }
    private struct ObjectEnvelope<T: Decodable>: Decodable { var object: T }
    private struct BookmarkObject: Decodable {
        struct Meta: Decodable { var resourceVersion: String? }
        var metadata: Meta?
    }

    static func decode(_ line: [UInt8]) throws -> WatchEvent<Object> {
        let data = Data(line)
        let decoder = JSONDecoder()
        guard let type = try? decoder.decode(Envelope.self, from: data).type else {
            throw KubeTransportError("watch sent a line that is not an event: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        do {
            switch type {
            case "ADDED": return .added(try decoder.decode(ObjectEnvelope<Object>.self, from: data).object)
            case "MODIFIED": return .modified(try decoder.decode(ObjectEnvelope<Object>.self, from: data).object)
            case "DELETED": return .deleted(try decoder.decode(ObjectEnvelope<Object>.self, from: data).object)
            case "BOOKMARK":
                let rv = try decoder.decode(ObjectEnvelope<BookmarkObject>.self, from: data).object.metadata?.resourceVersion
                return .bookmark(resourceVersion: rv ?? "")
            case "ERROR":
                let status = try decoder.decode(ObjectEnvelope<Status>.self, from: data).object
                throw KubeAPIError(status: status, fallbackCode: 500)
            default:
                throw KubeTransportError("watch sent an event of unknown type '\(type)'")
            }
        } catch let error as KubeAPIError {
            throw error
        } catch let error as KubeTransportError {
            throw error
        } catch {
            throw KubeTransportError("watch sent a \(type) event that is not a \(Object.self): \(KubeconfigFile.oneLine(error))")
        }
    }
}

/// Splits a byte stream into lines, refusing any longer than `maxLine`.
struct LineSplitter {
    let maxLine: Int
    private var pending: [UInt8] = []

    init(maxLine: Int) { self.maxLine = maxLine }

    mutating func append(_ buffer: ByteBuffer) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        buffer.withUnsafeReadableBytes { raw in
            var start = 0
            for i in 0..<raw.count where raw[i] == UInt8(ascii: "\n") {
                pending.append(contentsOf: raw[start..<i])
                if !pending.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { lines.append(pending) }
                pending.removeAll(keepingCapacity: true)
                start = i + 1
            }
            pending.append(contentsOf: raw[start...])
        }
        guard pending.count <= maxLine else {
            throw KubeTransportError("watch event longer than \(maxLine) bytes")
        }
        return lines
    }
}
