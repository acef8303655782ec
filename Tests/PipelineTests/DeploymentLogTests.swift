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
}
