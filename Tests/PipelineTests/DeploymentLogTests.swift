import Foundation
import Pipeline
import TestSupport
import Testing

/// What a deployment's log keeps of what a step prints.
@Suite struct DeploymentLogTests {
    @Test(arguments: [
        ("plain", "plain"), ("windows\r", "windows"), ("old mac\r\r", "old mac"), ("10%\r50%\r100%", "100%"),
        ("bar\r\rend", "end"), ("\r", ""), ("a\rb\r", "b"),
    ])
    func aLineKeepsWhatATerminalWouldShow(printed: String, kept: String) throws {
        let scratch = ScratchDirectory("slipway-log")
        let log = try DeploymentLog(path: scratch("log"))
        var bytes = Array((printed + "\n").utf8)
        bytes.withUnsafeMutableBytes { log.output(UnsafeRawBufferPointer($0)) }
        log.flush()
        #expect(try String(contentsOfFile: scratch("log"), encoding: .utf8) == kept + "\n")
    }

    @Test func linesAreNumberedAsTheFileHoldsThem() throws {
        let scratch = ScratchDirectory("slipway-log")
        let seen = Locked<[Int]>([])
        let log = try DeploymentLog(path: scratch("log"), onLine: { number, _ in seen.withLock { $0.append(number) } })
        var bytes = Array("one\r\ntwo\r50%\rthree\r\r\n".utf8)
        bytes.withUnsafeMutableBytes { log.output(UnsafeRawBufferPointer($0)) }
        log.note("==> done")
        #expect(seen.value == [1, 2, 3])
        #expect(try String(contentsOfFile: scratch("log"), encoding: .utf8) == "one\nthree\n==> done\n")
    }

    /// A line longer than 64 KiB is written in pieces, but never cut inside a secret or a UTF-8 character, wherever
    /// the secret falls and however the output arrives.
    @Test(arguments: [-20, -11, -1, 0, 1, 5])
    func aSecretAcrossTheLineCutIsStillMasked(shift: Int) throws {
        let scratch = ScratchDirectory("slipway-log")
        let secret = "s3cr3t-token-value"
        let log = try DeploymentLog(path: scratch("log"), secrets: [secret])
        let line = String(repeating: "a", count: 64 * 1024 + shift - 8) + secret + String(repeating: "é", count: 40_000)
        var bytes = Array((line + "\n").utf8)
        for start in stride(from: 0, to: bytes.count, by: 4096) {
            let end = min(start + 4096, bytes.count)
            bytes[start..<end].withUnsafeMutableBytes { log.output(UnsafeRawBufferPointer($0)) }
        }
        log.flush()
        let written = try String(contentsOfFile: scratch("log"), encoding: .utf8)
        #expect(!written.contains(secret) && !written.contains("s3cr3t"), "the secret is masked whole")
        #expect(written.contains("***"))
        #expect(!written.contains("\u{FFFD}"), "no character was split")
        #expect(written.split(separator: "\n").count >= 2, "the line was cut")
    }
}
