import Foundation

/// The wall clock in milliseconds since 1970 (KFL's `now()`).
func wallClockMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
