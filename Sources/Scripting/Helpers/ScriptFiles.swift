import Foundation
import Host

/// The `file` helpers' file system: every path a script gives is taken inside
/// one root directory (absolute paths must already point inside it, relative
/// ones are relative to it), and `..` or symbolic links never lead out.
/// What the helpers add to it counts against `storage`'s cap.
public struct ScriptFiles: Sendable {
    public let root: String
    public let storage: ScriptStorage

    public init(root: String, storage: ScriptStorage = ScriptStorage(limitBytes: .max)) throws(HelperError) {
        self.storage = storage
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw HelperError("cannot create the scripting directory \(root): \(error.localizedDescription)")
        }
        // The real path, so the confinement check compares like with like.
        guard let real = realpath(root, nil) else { throw HelperError("scripting directory \(root): \(String(cString: strerror(errno)))") }
        self.root = String(cString: real)
        free(real)
    }

    /// `path` as an absolute path inside the root, or an error naming it.
    public func resolve(_ path: String) throws(HelperError) -> String {
        guard !path.isEmpty else { throw HelperError("empty path") }
        guard !path.utf8.contains(0) else { throw HelperError("path contains a NUL byte") }
        var parts: [Substring] = []
        let relative: Substring
        if path.hasPrefix("/") {
            guard path == root || path.hasPrefix(root + "/") else {
                throw HelperError("\(path): outside the scripting directory \(root)")
            }
            relative = path.dropFirst(root.count)
        } else {
            relative = Substring(path)
        }
        for component in relative.split(separator: "/") {
            switch component {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { throw HelperError("\(path): leads outside the scripting directory") }
                parts.removeLast()
            default: parts.append(component)
            }
        }
        let full = ([root] + parts.map(String.init)).joined(separator: "/")
        // A symbolic link already in the tree must not lead out either.
        var existing = full
        while !FileManager.default.fileExists(atPath: existing), existing.count > root.count {
            existing = (existing as NSString).deletingLastPathComponent
        }
        if let real = realpath(existing, nil) {
            let r = String(cString: real)
            free(real)
            guard r == root || r.hasPrefix(root + "/") else {
                throw HelperError("\(path): a link leads outside the scripting directory")
            }
        }
        return full
    }

    func write(_ path: String, _ content: String, append: Bool) throws(HelperError) {
        let full = try resolve(path)
        let replaced = append ? 0 : ScriptStorage.bytes(under: full)
        try storage.reserve(Int64(content.utf8.count) - replaced, root: root, what: append ? "file.append" : "file.write")
        try makeParent(of: full)
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
        let fd = open(full, flags, 0o644)
        guard fd >= 0 else { throw HelperError("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var failure: Int32 = 0
        content.utf8.withContiguousStorageIfAvailable { b in
            var offset = 0
            while offset < b.count {
                let n = Glibc.write(fd, b.baseAddress! + offset, b.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += n
            }
        }
        if failure != 0 { throw HelperError("\(path): \(String(cString: strerror(failure)))") }
    }

    func mkdir(_ path: String) throws(HelperError) -> String {
        let full = try resolve(path)
        do { try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true) } catch {
            throw HelperError("\(path): \(error.localizedDescription)")
        }
        return full
    }

    func makeParent(of full: String) throws(HelperError) {
        let parent = (full as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw HelperError("\(parent): \(error.localizedDescription)")
        }
    }

    func delete(_ path: String) throws(HelperError) {
        let full = try resolve(path)
        guard full != root else { throw HelperError("the scripting directory itself cannot be deleted") }
        guard FileManager.default.fileExists(atPath: full) else { return }
        let freed = ScriptStorage.bytes(under: full)
        do { try FileManager.default.removeItem(atPath: full) } catch {
            storage.remeasure()
            throw HelperError("\(path): \(error.localizedDescription)")
        }
        try? storage.reserve(-freed, root: root, what: "file.delete")
    }

    func move(_ from: String, _ to: String, copy: Bool) throws(HelperError) {
        let a = try resolve(from), b = try resolve(to)
        // A move stays inside the directory (it adds nothing); a copy adds the source's bytes.
        if copy {
            try storage.reserve(ScriptStorage.bytes(under: a) - ScriptStorage.bytes(under: b), root: root, what: "file.copy")
        }
        try makeParent(of: b)
        if FileManager.default.fileExists(atPath: b) { try delete(to) }
        do {
            if copy { try FileManager.default.copyItem(atPath: a, toPath: b) } else { try FileManager.default.moveItem(atPath: a, toPath: b) }
        } catch {
            throw HelperError("\(from) -> \(to): \(error.localizedDescription)")
        }
    }

    /// A new, empty file (or directory) with a unique name: `dir/name-XXXXXX.ext`.
    func temp(name: String, directory: String?, ext: String?, makeDirectory: Bool) throws(HelperError) -> String {
        let dir = try mkdir(directory ?? "tmp")
        let safeName = name.isEmpty ? "tmp" : String(name.map { $0 == "/" ? "_" : $0 })
        for _ in 0..<100 {
            let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
            var path = "\(dir)/\(safeName)-\(suffix)"
            if let ext, !ext.isEmpty, !makeDirectory { path += ext.hasPrefix(".") ? ext : ".\(ext)" }
            if makeDirectory {
                if Glibc.mkdir(path, 0o755) == 0 { return path }
            } else {
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                if fd >= 0 { close(fd); return path }
            }
            guard errno == EEXIST else { throw HelperError("\(path): \(String(cString: strerror(errno)))") }
        }
        throw HelperError("no free temporary name in \(dir)")
    }

    /// Packs a directory (or file) into `<path>.tar.gz` beside it; returns that path.
    func tar(_ path: String) throws(HelperError) -> String {
        let full = try resolve(path)
        guard full != root else { throw HelperError("the scripting directory itself cannot be packed") }
        guard FileManager.default.fileExists(atPath: full) else { throw HelperError("\(path): no such file or directory") }
        let out = full + ".tar.gz"
        try produce(out, what: "file.tar") { () throws(HelperError) in
            let r = SystemCommand.run("tar", ["-czf", out, "-C", (full as NSString).deletingLastPathComponent,
                                               (full as NSString).lastPathComponent])
            guard r.ok else { throw HelperError("tar \(path): \(r.output)") }
        }
        return out
    }

    /// Runs `write`, which makes the file `full` (replacing any), of a size known
    /// only once written: refused before when the directory is already full,
    /// and removed (and refused) when it took the directory past its cap.
    func produce(_ full: String, what: String, _ write: () throws(HelperError) -> Void) throws(HelperError) {
        let replaced = ScriptStorage.bytes(under: full)
        try storage.ensureRoom(root: root, what: what)
        do throws(HelperError) { try write() } catch {
            storage.remeasure()
            throw error
        }
        do throws(HelperError) {
            try storage.reserve(ScriptStorage.bytes(under: full) - replaced, root: root, what: what)
        } catch {
            unlink(full)
            storage.remeasure()
            throw error
        }
    }
}
