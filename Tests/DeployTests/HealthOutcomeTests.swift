import Testing

@testable import Deploy

/// The health check's last log line, as the pusher reads it.
@Suite struct HealthOutcomeTests {
    @Test func triesAreCountedInWords() {
        #expect(HealthProbe.Outcome(passed: true, tries: 1).summary == "passed on try 1")
        #expect(HealthProbe.Outcome(passed: false, tries: 1).summary == "gave up after 1 try")
        #expect(HealthProbe.Outcome(passed: false, tries: 5).summary == "gave up after 5 tries")
    }
}
