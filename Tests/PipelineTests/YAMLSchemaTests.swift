@testable import Pipeline
import Testing
import Yams

@Suite struct YAMLSchemaTests {
    static let samples = [
        "yes", "No", "TRUE", "off", "On", "yEs", "true ", "", "~", "null", "NULL", "nUll", "0", "-0", "+12", "1_000",
        "012", "0o17", "0b101", "0x1F", "0xg", "1:30", "190:20:30", "1.5", "-.5", "1e3", "1.5e-3", ".inf", "-.Inf",
        ".NaN", ".nan ", "1:30.5", "<<", "=", "==", "2026-11-25", "2026-11-25 10:00:00", "2026-1-5T1:02:03.5Z",
        "2026-11-25t10:00:00 +01:00", "2026-11-25x", "30s", "5m", "make build", "https://example.com", "$(rm -rf /)",
        "0.0.1", "1_", "_1", "+", "-", ".", "0x", "1:60", "ß", "٣", "2026-1-5 \t1:02:03", "2026-11-25 10:00:00Z",
        "2026-11-2510:00:00", "0b1_0", "+0x_F", "1_000.5e3", "1 000", "true false",
    ]

    @Test(arguments: samples) func plainScalarsResolveAsYamsDefaultResolverDoes(text: String) {
        #expect(YAMLSchema.tag(of: Node(text)) == Resolver.default.resolveTag(of: Node(text)))
    }

    @Test func explicitTagsAndQuotesWin() throws {
        let root = try #require(try Yams.compose(yaml: "a: !!str 5\nb: '5'\nc: 5\nd: [x]\ne: {f: g}\n", .basic))
        guard case .mapping(let mapping) = root else { Issue.record("not a mapping"); return }
        let tags = Dictionary(uniqueKeysWithValues: mapping.map { ($0.key.string ?? "", YAMLSchema.tag(of: $0.value)) })
        #expect(tags == ["a": .str, "b": .str, "c": .int, "d": .seq, "e": .map])
    }
}
