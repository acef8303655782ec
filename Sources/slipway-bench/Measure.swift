import Foundation

/// Runs `body` and returns how long it took, in milliseconds.
func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let elapsed = try clock.measure(body)
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

/// Runs `body`, which may suspend, and returns how long it took, in milliseconds.
func asyncMilliseconds(_ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try await body()
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Prints one result line: `{"case":…,…,"slipway_ms":…,"git_ms":…,"ratio":…}` with keys in a stable order.
func report(_ name: String, _ fields: KeyValuePairs<String, Any>) {
    var parts = ["\"case\":\"\(name)\""]
    for (key, value) in fields {
        switch value {
        case let number as Double: parts.append("\"\(key)\":\((number * 1000).rounded() / 1000)")
        case let number as Int: parts.append("\"\(key)\":\(number)")
        case let flag as Bool: parts.append("\"\(key)\":\(flag)")
        default: parts.append("\"\(key)\":\"\(value)\"")
        }
    }
    print("{" + parts.joined(separator: ",") + "}")
}

/// Why a case could not measure what it set out to: the peer misbehaved, or Slipway did not do what it should.
struct BenchFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
