extension StringProtocol {
    /// The text without leading and trailing white space.
    var trimmedWhitespace: SubSequence {
        var s = self[...]
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return s
    }
}
