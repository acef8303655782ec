import TestSupport
import Testing
import Yams

@testable import Pipeline

@Suite struct YAMLSchemaTests {
    static let samples = [
        "yes", "No", "TRUE", "off", "On", "yEs", "true ", "", "~", "null", "NULL", "nUll", "0", "-0", "+12", "1_000",
        "012", "0o17", "0b101", "0x1F", "0xg", "1:30", "190:20:30", "1.5", "-.5", "1e3", "1.5e-3", ".inf", "-.Inf",
        ".NaN", ".nan ", "1:30.5", "<<", "=", "==", "2026-11-25", "2026-11-25 10:00:00", "2026-1-5T1:02:03.5Z",
        "2026-11-25t10:00:00 +01:00", "2026-11-25x", "30s", "5m", "make build", "https://example.com", "$(rm -rf /)",
        "0.0.1", "1_", "_1", "+", "-", ".", "0x", "1:60", "ß", "٣", "2026-1-5 \t1:02:03", "2026-11-25 10:00:00Z",
        "2026-11-2510:00:00", "2026-1-5", "2026-11-5", "0b1_0", "+0x_F", "1_000.5e3", "1 000", "true false",
    ]

    @Test(arguments: samples) func plainScalarsResolveAsYamsDefaultResolverDoes(text: String) {
        #expect(YAMLSchema.tag(of: Node(text)) == Resolver.default.resolveTag(of: Node(text)))
    }

    /// Thousands of scalars built from the pieces the rules are made of, each resolved both ways.
    @Test func generatedScalarsResolveAsYamsDefaultResolverDoes() {
        let pieces = [
            "0", "1", "5", "7", "9", "12", "60", "2026", "_", "+", "-", ".", ":", "e", "E", "x", "b", "o", "0x", "0b",
            "0o",
            "T", "t", "Z", " ", "\t", "inf", "Inf", "nan", "NaN", "<<", "=", "~", "null", "true", "ON", "a", "f", "F",
            "ß",
            // Larger pieces, so that times and numbers with more parts come up often.
            "2026-", "11-", "1-", "25", "10:00", ":00", ":5", ".5", "+01", "-1:30", "e-3",
        ]
        // Every part of a timestamp, each with its good forms and near misses.
        let timestampParts = [
            ["2026", "202", "20261"], ["-"], ["11", "1", "123", ""], ["-", ":"], ["25", "5", "255"],
            ["", "T", "t", " ", " \t", "x"], ["10", "1", "100", ""], [":"], ["00", "0"], [":", ""], ["00", "5"],
            ["", ".5", "."], ["", "Z", " Z", "+01", "-1:30", "+1:3", " ", "z"],
        ]
        var generator = SplitMix64(state: 2026)
        var mismatches: [String] = []
        for index in 0..<20_000 {
            let text =
                index.isMultiple(of: 2)
                ? (0..<Int.random(in: 1...9, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }
                    .joined()
                : timestampParts.map { $0.randomElement(using: &generator)! }.joined()
            if YAMLSchema.tag(of: Node(text)) != Resolver.default.resolveTag(of: Node(text)) { mismatches.append(text) }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
    }

    @Test func explicitTagsAndQuotesWin() throws {
        let root = try #require(try Yams.compose(yaml: "a: !!str 5\nb: '5'\nc: 5\nd: [x]\ne: {f: g}\n", .basic))
        guard case .mapping(let mapping) = root else {
            Issue.record("not a mapping")
            return
        }
        let tags = Dictionary(uniqueKeysWithValues: mapping.map { ($0.key.string ?? "", YAMLSchema.tag(of: $0.value)) })
        #expect(tags == ["a": .str, "b": .str, "c": .int, "d": .seq, "e": .map])
    }
}
