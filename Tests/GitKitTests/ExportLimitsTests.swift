import Foundation
import GitKit
import TestSupport
import Testing

/// Trees and blobs at the edges: a tree nested far too deep, and blobs too large to hold twice in memory.
@Suite struct ExportLimitsTests {
    /// Writes, with Python's zlib and hashlib, a pack holding a commit whose tree nests `depth` directories, and
    /// indexes it with `git index-pack`: git's own commands refuse to build such a tree, or take minutes. Returns the
    /// commit's sha.
    static func writeDeepTree(depth: Int, into repository: String) throws -> String {
        let script = """
            import hashlib, struct, sys, zlib
            def oid(kind, body):
                return hashlib.sha1(kind + b" " + str(len(body)).encode() + b"\\0" + body).digest()
            def entry(number, body):
                size = len(body)
                header = bytearray([(number << 4) | (size & 15)])
                size >>= 4
                while size:
                    header[-1] |= 0x80
                    header.append(size & 0x7f)
                    size >>= 7
                return bytes(header) + zlib.compress(body, 1)
            objects = []
            blob = b"at the bottom\\n"
            objects.append((3, blob))
            tree = b"100644 f\\0" + oid(b"blob", blob)
            objects.append((2, tree))
            for _ in range(int(sys.argv[2])):
                tree = b"40000 d\\0" + oid(b"tree", tree)
                objects.append((2, tree))
            commit = b"tree " + oid(b"tree", tree).hex().encode()
            commit += b"\\nauthor A <a@b> 0 +0000\\ncommitter A <a@b> 0 +0000\\n\\ndeep\\n"
            objects.append((1, commit))
            data = b"PACK" + struct.pack(">II", 2, len(objects)) + b"".join(entry(n, b) for n, b in objects)
            data += hashlib.sha1(data).digest()
            with open(sys.argv[1], "wb") as f:
                f.write(data)
            print(oid(b"commit", commit).hex())
            """
        let pack = repository + "/objects/pack/pack-deep-\(depth).pack"
        let result = try runProcess("/usr/bin/python3", ["-c", script, pack, String(depth)])
        guard result.status == 0 else { throw LoopbackError("python3 failed: \(result.output)") }
        try GitCLI.run(["index-pack", pack], in: repository)
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.enabled(if: Loopback.hasProgram("/usr/bin/python3"), "needs python3 to write the deep tree"))
    func refusesATreeNestedThirtyThousandDeep() throws {
        let scratch = ScratchDirectory()
        let repository = try Repository.createBare(at: scratch("deep.git"))
        let sha = try Self.writeDeepTree(depth: 30_000, into: scratch("deep.git"))
        let error = #expect(throws: GitError.self) {
            try repository.export(OID(hex: sha)!, to: scratch("out"))
        }
        #expect(error?.code == .invalid)
        #expect(error?.message.contains("\(Repository.maximumTreeDepth)") == true, "\(error?.message ?? "")")

        // Within the limit, a deep tree exports like any other (as deep as paths may be long).
        let shallow = try Self.writeDeepTree(depth: 100, into: scratch("deep.git"))
        let summary = try repository.export(OID(hex: shallow)!, to: scratch("out-100"))
        #expect(summary.directories == 100)
        #expect(summary.files == 1)
    }

    @Test func streamsLargeBlobsLooseAndPacked() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        var generator = SplitMix64(state: 23)
        var random = [UInt8](repeating: 0, count: 24 << 20)
        for index in stride(from: 0, to: random.count, by: 8) {
            withUnsafeBytes(of: generator.next()) { bytes in
                for offset in 0..<8 { random[index + offset] = bytes[offset] }
            }
        }
        try Data(random).write(to: URL(fileURLWithPath: work.path + "/large.bin"))
        // Text large enough to stream, which compresses well: a different path through zlib's buffers.
        let text = String(repeating: "a line of text that repeats\n", count: 100_000)
        let sha = try work.commit("large", files: ["large.txt": text, "small": "small\n"])
        let bare = scratch("bare.git")
        try GitCLI.run(["init", "-q", "--bare", bare])
        // Fewer than transfer.unpackLimit objects: the push leaves them loose.
        try work.git("push", "-q", bare, "main")
        #expect(try GitCLI.run(["count-objects", "-v"], in: bare).contains("count: 5"))
        let theirs = try TreeSnapshot(gitArchiveOf: sha, in: bare, scratch: scratch)
        try Repository(at: bare).export(OID(hex: sha)!, to: scratch("loose"))
        #expect(try TreeSnapshot(scratch("loose")) == theirs)

        try GitCLI.run(["repack", "-a", "-d", "-q"], in: bare)
        try Repository(at: bare).export(OID(hex: sha)!, to: scratch("packed"))
        #expect(try TreeSnapshot(scratch("packed")) == theirs)
    }
}
