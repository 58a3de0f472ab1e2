#if canImport(Glibc)
import Glibc
#endif

/// When a job runs: a cron expression as Kubeshark's scheduler reads them,
/// in UTC. Five fields (minute hour day-of-month month day-of-week) or six
/// (seconds first); each `*`, `N`, `A-B`, `*/S`, `A-B/S` or a comma list of
/// those. Also `@every 30s` (s, m, h), `@hourly`, `@daily`, `@weekly`,
/// `@monthly`, `@yearly`.
public struct CronSchedule: Sendable, Equatable {
    private var seconds: Set<Int>
    private var minutes: Set<Int>
    private var hours: Set<Int>
    private var days: Set<Int>
    private var months: Set<Int>
    private var weekdays: Set<Int>
    /// Either field restricted: cron runs when either day field matches.
    private var dayRestricted: Bool
    private var weekdayRestricted: Bool
    /// `@every`: a fixed interval instead.
    private var interval: Int64?

    public let text: String

    public init(_ text: String) throws(HelperError) {
        self.text = text
        let trimmed = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let aliases = ["@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                       "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"]
        var fields = trimmed
        interval = nil
        if fields.first == "@every" {
            guard fields.count == 2, let every = Self.duration(fields[1]), every > 0 else {
                throw HelperError("cron '\(text)': @every needs a duration such as 30s, 5m or 1h")
            }
            interval = every
            fields = ["*", "*", "*", "*", "*"]
        } else if fields.count == 1, let alias = aliases[fields[0]] {
            fields = alias.split(separator: " ").map(String.init)
        }
        if fields.count == 5 { fields.insert("0", at: 0) }
        guard fields.count == 6 else {
            throw HelperError("cron '\(text)': expected 5 or 6 fields (sec? min hour dom month dow), got \(trimmed.count)")
        }
        seconds = try Self.field(fields[0], 0...59, text)
        minutes = try Self.field(fields[1], 0...59, text)
        hours = try Self.field(fields[2], 0...23, text)
        days = try Self.field(fields[3], 1...31, text)
        months = try Self.field(fields[4], 1...12, text)
        var dow = try Self.field(fields[5], 0...7, text)
        if dow.remove(7) != nil { dow.insert(0) }
        weekdays = dow
        dayRestricted = fields[3] != "*" && fields[3] != "?"
        weekdayRestricted = fields[5] != "*" && fields[5] != "?"
    }

    private static func duration(_ s: String) -> Int64? {
        guard let unit = s.last, let n = Int64(s.dropLast()) else { return nil }
        switch unit {
        case "s": return n * 1_000_000_000
        case "m": return n * 60_000_000_000
        case "h": return n * 3_600_000_000_000
        default: return nil
        }
    }

    private static func field(_ text: String, _ range: ClosedRange<Int>, _ whole: String) throws(HelperError) -> Set<Int> {
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw HelperError("cron '\(whole)': bad field '\(text)'") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw HelperError("cron '\(whole)': bad step in '\(text)'") }
                step = s
            }
            var low = range.lowerBound, high = range.upperBound
            let base = pieces[0]
            if base != "*" && base != "?" {
                let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2, let a = Int(bounds[0]), let b = Int(bounds.last!), range.contains(a),
                      range.contains(b), a <= b
                else { throw HelperError("cron '\(whole)': '\(text)' is not within \(range.lowerBound)-\(range.upperBound)") }
                low = a
                high = pieces.count == 2 && bounds.count == 1 ? range.upperBound : b
            }
            values.formUnion(stride(from: low, through: high, by: step))
        }
        return values
    }

    /// The first time strictly after `afterNs` (Unix nanoseconds) the schedule fires.
    public func next(afterNs: Int64) -> Int64? {
        if let interval { return afterNs + interval }
        var t = time_t(afterNs / 1_000_000_000) + 1
        // Five years of days is more than any valid expression needs.
        let limit = t + 5 * 366 * 86_400
        var parts = tm()
        while t < limit {
            gmtime_r(&t, &parts)
            let month = Int(parts.tm_mon) + 1
            if !months.contains(month) {
                parts.tm_mon += 1; parts.tm_mday = 1; parts.tm_hour = 0; parts.tm_min = 0; parts.tm_sec = 0
                t = timegm(&parts)
                continue
            }
            let dayMatch: Bool
            let dom = days.contains(Int(parts.tm_mday)), dow = weekdays.contains(Int(parts.tm_wday))
            if dayRestricted && weekdayRestricted { dayMatch = dom || dow } else { dayMatch = dom && dow }
            if !dayMatch {
                parts.tm_mday += 1; parts.tm_hour = 0; parts.tm_min = 0; parts.tm_sec = 0
                t = timegm(&parts)
                continue
            }
            if !hours.contains(Int(parts.tm_hour)) {
                parts.tm_hour += 1; parts.tm_min = 0; parts.tm_sec = 0
                t = timegm(&parts)
                continue
            }
            if !minutes.contains(Int(parts.tm_min)) {
                parts.tm_min += 1; parts.tm_sec = 0
                t = timegm(&parts)
                continue
            }
            if !seconds.contains(Int(parts.tm_sec)) {
                t += 1
                continue
            }
            return Int64(t) * 1_000_000_000
        }
        return nil
    }
}
