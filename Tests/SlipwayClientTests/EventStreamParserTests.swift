import SlipwayClient
import Testing

@Suite struct EventStreamParserTests {
    static let wire = Array(
        """
        : keep-alive

        id: 1
        data: ==> hello: deploy

        data: two\r
        data: lines ✓\r
        \r
        event: end
        data: {"status":"succeeded"}

        data: not finished
        """.utf8)

    static let expected = [
        EventStreamParser.Event(name: nil, id: "1", data: "==> hello: deploy"),
        EventStreamParser.Event(name: nil, data: "two\nlines ✓"),
        EventStreamParser.Event(name: "end", data: #"{"status":"succeeded"}"#),
    ]

    @Test func eventsComeOutWholeWhereverTheBytesAreCut() {
        for cut in 0...Self.wire.count {
            var parser = EventStreamParser()
            let events = parser.feed(Self.wire[..<cut]) + parser.feed(Self.wire[cut...])
            #expect(events == Self.expected, "cut at byte \(cut)")
        }
    }

    @Test func aByteAtATime() {
        var parser = EventStreamParser()
        let events = Self.wire.flatMap { parser.feed([$0]) }
        #expect(events == Self.expected)
        // The unfinished event is sent once its blank line comes.
        #expect(parser.feed(Array("\n\n".utf8)) == [EventStreamParser.Event(name: nil, data: "not finished")])
    }
}
