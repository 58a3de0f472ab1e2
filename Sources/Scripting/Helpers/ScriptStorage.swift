import Foundation
import Host
import Synchronization

/// The disk cap of the scripting directory (`--script-storage-limit`), shared
/// by every script writing there. What the directory holds is measured by
/// walking it (at most once a second); the bytes helpers add in between are
/// counted on top, so the figure only errs high until the next walk.
public final class ScriptStorage: Sendable {
    public let limitBytes: Int64
    private struct State {
        var usedBytes: Int64 = 0
        var measuredAtNs: Int64 = 0
        var measured = false
    }
    private let state = Mutex(State())
    static let remeasureNs: Int64 = 1_000_000_000

    public init(limitBytes: Int64) { self.limitBytes = limitBytes }

    /// Bytes under `root` now (files' sizes, as a walk finds them).
    public static func bytes(under root: String) -> Int64 {
        var total: Int64 = 0
        var info = stat()
        guard lstat(root, &info) == 0 else { return 0 }
        if (info.st_mode & S_IFMT) != S_IFDIR { return Int64(info.st_size) }
        guard let walk = FileManager.default.enumerator(atPath: root) else { return 0 }
        while let name = walk.nextObject() as? String {
            if lstat(root + "/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG { total += Int64(info.st_size) }
        }
        return total
    }

    /// Bytes the directory holds, walked again when the last walk is older than a second.
    func used(root: String) -> Int64 {
        let now = monotonicNanoseconds()
        if let known = state.withLock({ s -> Int64? in s.measured && now - s.measuredAtNs < Self.remeasureNs ? s.usedBytes : nil }) {
            return known
        }
        let walked = Self.bytes(under: root)
        return state.withLock { s in
            s.usedBytes = walked
            s.measuredAtNs = now
            s.measured = true
            return walked
        }
    }

    /// Counts `bytes` more (or fewer) under the root, or refuses when that
    /// would take the directory past its cap; `what` names the refused helper.
    func reserve(_ bytes: Int64, root: String, what: String) throws(HelperError) {
        let current = used(root: root)
        let refused = state.withLock { s -> Bool in
            if bytes > 0 && current + bytes > limitBytes { return true }
            s.usedBytes = max(0, s.usedBytes + bytes)
            return false
        }
        if refused { throw refusal(what, holding: current + bytes) }
    }

    /// Refuses when the directory is already at its cap (before writing something of unknown size).
    func ensureRoom(root: String, what: String) throws(HelperError) {
        let current = used(root: root)
        if current >= limitBytes { throw refusal(what, holding: current) }
    }

    private func refusal(_ what: String, holding bytes: Int64) -> HelperError {
        var error = HelperError("\(what): refused: the scripting directory would hold \(bytes) bytes, more than its "
                                + "storage limit of \(StorageQuantity(bytes: limitBytes)) (--script-storage-limit); delete files first")
        error.isStorageRefusal = true
        return error
    }

    /// Forgets the walk, so the next check walks the directory again (after a helper
    /// whose output size was only known once written).
    func remeasure() { state.withLock { $0.measured = false } }
}
