import Logging
import Pipeline
import Server
import Testing

/// The daemon's log handler writes what swift-log's stream handler writes, with the logger's metadata merged in.
@Suite struct DeferredMetadataLogHandlerTests {
    final class Lines: TextOutputStream, Sendable {
        let text = Locked("")
        func write(_ string: String) { text.withLock { $0 += string } }
    }

    @Test func theLoggersMetadataIsWrittenWithEachMessageAndAMessagesOwnKeysWin() {
        let lines = Lines()
        var logger = Logger(label: "slipway") { label in
            DeferredMetadataLogHandler(StreamLogHandler(label: label, stream: lines, metadataProvider: nil))
        }
        logger.logLevel = .info
        logger[metadataKey: "hb.request.id"] = "7"
        logger[metadataKey: "app"] = "web"
        logger.info("deploying", metadata: ["app": "worker"])
        logger.debug("not written")
        logger[metadataKey: "hb.request.id"] = nil
        logger.warning("plain")

        let written = lines.text.value.split(separator: "\n").map(String.init)
        #expect(written.count == 2)
        #expect(
            written.first?.hasSuffix("info slipway: app=worker hb.request.id=7 [ServerTests] deploying") == true,
            "\(written)")
        #expect(written.last?.hasSuffix("warning slipway: app=web [ServerTests] plain") == true, "\(written)")
        #expect(logger[metadataKey: "app"] == "web")
        #expect(logger.logLevel == .info)
    }
}
