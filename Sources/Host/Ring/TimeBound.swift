#if canImport(Glibc)
import Glibc
#endif

/// Points in time as users write them for `--from`/`--to` and the API's
/// `from`/`to`: Unix seconds (`1700000000`, `1700000000.25`), Unix
/// nanoseconds (16 digits or more), RFC 3339 (`2026-11-29T01:02:03Z`,
/// `...03.5+01:00`), or relative to now (`-5m`, `-30s`, `-2h`, `-1d`).
public enum TimeBound {
    /// Unix nanoseconds, or nil when `text` is none of the forms above.
    public static func parse(_ text: String, nowNs: Int64 = wallClockNanoseconds()) -> Int64? {
        let t = String(text.trimmedWhitespace)
        if t.hasPrefix("-"), let unit = t.last, let amount = Double(t.dropFirst().dropLast()), amount >= 0 {
            let scale: Double
            switch unit {
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            case "d": scale = 86400e9
            default: return nil
            }
            return nowNs - Int64(amount * scale)
        }
        if t.allSatisfy(\.isNumber), !t.isEmpty {
            guard let v = Int64(t) else { return nil }
            return t.count >= 16 ? v : v * 1_000_000_000
        }
        if let seconds = Double(t), t.first?.isNumber == true, seconds.isFinite, seconds >= 0, seconds < 1e11 {
            return Int64((seconds * 1e9).rounded())
        }
        return rfc3339(t)
    }

    private static func rfc3339(_ t: String) -> Int64? {
        let b = Array(t.utf8)
        func digits(_ at: Int, _ n: Int) -> Int? {
            guard at + n <= b.count else { return nil }
            var v = 0
            for c in b[at..<at + n] {
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard b.count >= 20, let year = digits(0, 4), b[4] == 45, let month = digits(5, 2), b[7] == 45,
            let day = digits(8, 2), b[10] == 84 || b[10] == 116 || b[10] == 32, let hour = digits(11, 2), b[13] == 58,
            let minute = digits(14, 2), b[16] == 58, let second = digits(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        var nanos: Int64 = 0
        if i < b.count, b[i] == 46 {
            i += 1
            var scale: Int64 = 100_000_000
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                nanos += Int64(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            if i == start { return nil }
        }
        var offsetSeconds = 0
        guard i < b.count else { return nil }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let oh = digits(i + 1, 2), b.count > i + 3, b[i + 3] == 58,
            let om = digits(i + 4, 2)
        {
            offsetSeconds = (oh * 3600 + om * 60) * (b[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return seconds * 1_000_000_000 + nanos
    }
}

/// The wall clock, Unix nanoseconds.
public func wallClockNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

